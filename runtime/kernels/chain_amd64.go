//go:build amd64 && !purego

package kernels

import (
	"math"
	"sync"
)

// chainKernel is a generated LinearChain kernel for a fixed number of samples
// g: y[i][j0:j0+n] for i < g, from xt (x packed as xt[c][i]) and W's rows
// j0 … j0+n-1, each output's chain started from bias (or continued from y if
// more), clamped at lo.
type chainKernel func(y *float32, ldy int, xt *float32, w *float32, ldw int, bias *float32, n, k int, lo float32, more bool)

// The LinearChain kernels by samples per call (index g-1).
var (
	chainAVX512 = []chainKernel{
		linearChain_16x1_avx512, linearChain_16x2_avx512, linearChain_16x3_avx512,
		linearChain_16x4_avx512, linearChain_16x5_avx512, linearChain_16x6_avx512,
		linearChain_16x7_avx512, linearChain_16x8_avx512, linearChain_16x9_avx512,
		linearChain_16x10_avx512, linearChain_16x11_avx512, linearChain_16x12_avx512,
	}
	chainAVX2 = []chainKernel{
		linearChain_8x1_avx2, linearChain_8x2_avx2, linearChain_8x3_avx2,
		linearChain_8x4_avx2, linearChain_8x5_avx2,
	}
)

// chainL2 bounds the W (bytes) that the sample groups of one call may each
// read whole: beyond it, and with more than one group, the call runs in chunks
// of rows and inputs of at most chainChunkBytes of W, so that the groups after
// the first find the chunk in L2, the chains carried through y. It is the 2 MiB
// L2 of the machine measured (the plan's LinearGEMM bound too); a W just below
// it on a 1 MiB L2 (Zen 4) costs the later groups a re-read from L3.
var chainL2 = 2 << 20

// chainChunkBytes bounds the W of one such chunk: half of the smaller L2 that
// the kernels target (Zen 4's 1 MiB; the machine measured has 2 MiB), so that
// a chunk stays in L2 next to x and y on either (a variable so that the tests
// can force many small chunks).
var chainChunkBytes = 512 << 10

// chainPacks holds the packed inputs of LinearChain's calls with more than one
// sample (LinearChainBuf brings its own).
var chainPacks = sync.Pool{New: func() any { return new([]float32) }}

// linearChain runs LinearChain with buf (nil: a pooled buffer) for the packed
// inputs.
func linearChain(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool, buf []float32) {
	var ks []chainKernel
	lanes := 16
	switch {
	case useAVX512:
		ks = chainAVX512
	case useAVX2:
		ks, lanes = chainAVX2, 8
	default:
		linearChainGo(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
		return
	}
	lo := float32(math.Inf(-1))
	if relu {
		lo = 0
	}
	// Samples in groups of at most len(ks), as even as possible, each packed as
	// xt[c][i] (one sample is x's row itself).
	groups := (m + len(ks) - 1) / len(ks)
	var xt []float32
	var pp *[]float32
	switch {
	case m == 1:
		xt = x[:k]
	case buf != nil:
		xt = buf[:m*k]
	default:
		pp = chainPacks.Get().(*[]float32)
		if len(*pp) < m*k {
			*pp = make([]float32, m*k)
		}
		xt = *pp
	}
	if m > 1 {
		for i0, left := 0, groups; i0 < m; left-- {
			g := (m - i0 + left - 1) / left
			p := xt[i0*k : (i0+g)*k]
			for i := 0; i < g; i++ {
				xi := x[(i0+i)*ldx:]
				xi = xi[:k]
				for c, v := range xi {
					p[c*g+i] = v
				}
			}
			i0 += g
		}
	}
	// Without a bias every chain starts from +0 in y.
	var b *float32
	if bias == nil {
		for i := 0; i < m; i++ {
			clear(y[i*ldy : i*ldy+n])
		}
	}
	kc, rows := k, n
	if groups > 1 && 4*n*k > chainL2 {
		if 4*lanes*k <= chainChunkBytes {
			rows = max(lanes, chainChunkBytes/(4*k)/lanes*lanes)
		} else {
			rows = lanes
			kc = chainChunkBytes / (4 * lanes)
			chunks := (k + kc - 1) / kc
			kc = ((k+chunks-1)/chunks + lanes - 1) &^ (lanes - 1)
		}
	}
	for j0 := 0; j0 < n; j0 += rows {
		nn := min(rows, n-j0)
		if bias != nil {
			b = &bias[j0]
		}
		for k0 := 0; k0 < k; k0 += kc {
			kk := min(kc, k-k0)
			more := k0 > 0 || bias == nil
			l := lo
			if k0+kk < k {
				l = float32(math.Inf(-1))
			}
			for i0, left := 0, groups; i0 < m; left-- {
				g := (m - i0 + left - 1) / left
				ks[g-1](&y[i0*ldy+j0], ldy, &xt[i0*k+k0*g], &w[j0*ldw+k0], ldw, b, nn, kk, l, more)
				i0 += g
			}
		}
	}
	if pp != nil {
		chainPacks.Put(pp)
	}
}
