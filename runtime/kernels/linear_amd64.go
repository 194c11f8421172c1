//go:build amd64 && !purego

package kernels

import (
	"math"
	"sync"
)

// Dispatch of the linear-layer kernels: AVX-512 if useAVX512, else AVX2 if
// useAVX2, else the pure-Go twins. The assembly (linear_amd64.s) is generated
// by asm/linear; a kernel's name is op_tile_isa, where the Linear tile is
// samples × outputs and the backward tiles are samples (or dW rows) × columns.

// linearKernel is a generated Linear kernel for a fixed number of samples.
type linearKernel func(y *float32, ldy int, x *float32, ldx int, w *float32, ldw int, bias *float32, bstep int, n, k int, lo float32, part *float32, flags int)

// The flags of a kernel call that covers one chunk of the inputs
// (asm/linear/forward.go).
const (
	linearLoad  = 1 // continue the 16 lane sums of each output from part
	linearStore = 2 // store them to part instead of finishing the outputs
)

// linearKernels is one ISA's Linear kernels by samples per call (index m-1).
// rows is a common multiple of their tiles' output counts (the second number
// in each name): row chunks of that many outputs have no remainder tile.
type linearKernels struct {
	kern []linearKernel
	rows int
}

var (
	linearAVX512 = linearKernels{
		kern: []linearKernel{
			linear_1x8_avx512, linear_2x8_avx512, linear_3x8_avx512, linear_4x6_avx512,
			linear_5x4_avx512, linear_6x4_avx512, linear_7x3_avx512, linear_8x2_avx512,
		},
		rows: 24,
	}
	linearAVX2 = linearKernels{
		kern: []linearKernel{
			linear_1x6_avx2, linear_2x3_avx2, linear_3x2_avx2, linear_4x3_avx2,
			linear_5x2_avx2, linear_6x3_avx2, linear_7x3_avx2, linear_8x3_avx2,
		},
		rows: 6,
	}
)

// linearNoBias is what the kernels add when bias is nil: -0, which leaves
// every sum unchanged (+0 + -0 = +0, -0 + -0 = -0, NaN stays NaN). A kernel
// reads up to a tile's width of bias at once, and with bstep 0 always from
// linearNoBias[0].
var linearNoBias = func() (z [16]float32) {
	for i := range z {
		z[i] = math.Float32frombits(1 << 31)
	}
	return z
}()

const (
	// linearXBytes bounds the x of one sample block per input chunk: a
	// register tile then finds its x vectors in L1 for every row, instead of
	// re-reading whole x rows from L2 (one-sample blocks need no chunks). It
	// leaves a third of Zen 4's 32 KiB L1D to W and part; 32 KiB measures
	// ~5% faster still on the 48 KiB L1D of Sapphire Rapids.
	linearXBytes = 24 << 10
	// linearPartTiles is the number of row chunks of ks.rows outputs that
	// one input chunk covers; their 16 lane sums wait in part in between.
	linearPartTiles = 4
	// linearChunkBytes bounds the W rows that one sample block reads when m
	// needs several blocks but k needs no input chunks: the other blocks then
	// find those rows in L2.
	linearChunkBytes = 512 << 10
)

// linearParts holds the partial lane sums of chunked calls.
var linearParts = sync.Pool{New: func() any { return new([]float32) }}

func linear(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	var ks *linearKernels
	switch {
	case useAVX512:
		ks = &linearAVX512
	case useAVX2:
		ks = &linearAVX2
	default:
		linearGo(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
		return
	}
	lo := float32(math.Inf(-1))
	if relu {
		lo = 0
	}
	// m samples run in blocks of at most len(ks.kern), as even as possible: a
	// block reads each W element once for all its samples.
	blocks := (m + len(ks.kern) - 1) / len(ks.kern)
	mb := (m + blocks - 1) / blocks
	kc, nc := k, n
	var part []float32
	var pp *[]float32
	if mb > 1 && 4*mb*k > linearXBytes {
		// The inputs in chunks of kc: the sums run on in part.
		kc = linearXBytes / (4 * mb) &^ 15
		chunks := (k + kc - 1) / kc
		kc = ((k+chunks-1)/chunks + 15) &^ 15 // even chunks
		nc = min(n, ks.rows*linearPartTiles)
		pp = linearParts.Get().(*[]float32)
		if len(*pp) < nc*m*16 {
			*pp = make([]float32, nc*m*16)
		}
		part = *pp
	} else if blocks > 1 {
		nc = max(ks.rows, linearChunkBytes/(4*k)/ks.rows*ks.rows)
	}
	for j0 := 0; j0 < n; j0 += nc {
		nn := min(nc, n-j0)
		b, bstep := &linearNoBias[0], 0
		if bias != nil {
			b, bstep = &bias[j0], 1
		}
		for k0 := 0; k0 < k; k0 += kc {
			flags := 0
			if k0 > 0 {
				flags |= linearLoad
			}
			if k0+kc < k {
				flags |= linearStore
			}
			for i0, left := 0, blocks; i0 < m; left-- {
				mb := (m - i0 + left - 1) / left
				var p *float32
				if part != nil {
					p = &part[i0*nc*16]
				}
				ks.kern[mb-1](&y[i0*ldy+j0], ldy, &x[i0*ldx+k0], ldx, &w[j0*ldw+k0], ldw, b, bstep, nn, min(kc, k-k0), lo, p, flags)
				i0 += mb
			}
		}
	}
	if pp != nil {
		linearParts.Put(pp)
	}
}

// linearBackDataKernel is a generated LinearBackData kernel for a fixed number
// of samples.
type linearBackDataKernel func(dx *float32, ldx int, dy *float32, ldy int, w *float32, ldw int, n, k int, more bool)

// The LinearBackData kernels by samples per call (index m-1).
var (
	linearBackDataAVX512 = []linearBackDataKernel{
		linearBackData_1x128_avx512, linearBackData_2x128_avx512, linearBackData_3x112_avx512, linearBackData_4x96_avx512,
		linearBackData_5x80_avx512, linearBackData_6x64_avx512, linearBackData_7x48_avx512, linearBackData_8x48_avx512,
	}
	linearBackDataAVX2 = []linearBackDataKernel{
		linearBackData_1x56_avx2, linearBackData_2x40_avx2, linearBackData_3x24_avx2, linearBackData_4x24_avx2,
		linearBackData_5x16_avx2, linearBackData_6x16_avx2, linearBackData_7x8_avx2, linearBackData_8x8_avx2,
	}
)

func linearBackData(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, m, n, k int) {
	var ks []linearBackDataKernel
	switch {
	case useAVX512:
		ks = linearBackDataAVX512
	case useAVX2:
		ks = linearBackDataAVX2
	default:
		linearBackDataGo(dx, ldx, dy, ldy, w, ldw, m, n, k)
		return
	}
	// The chains run over W's rows in blocks of linearBackDataRows, continued
	// through dx: a call reads that many rows at once, as sequential streams,
	// and the sample blocks of one row block find its rows in L2.
	blocks := (m + len(ks) - 1) / len(ks)
	for j0 := 0; j0 < n; j0 += linearBackDataRows {
		nj := min(linearBackDataRows, n-j0)
		for i0, left := 0, blocks; i0 < m; left-- {
			mb := (m - i0 + left - 1) / left
			ks[mb-1](&dx[i0*ldx], ldx, &dy[i0*ldy+j0], ldy, &w[j0*ldw], ldw, nj, k, j0 > 0)
			i0 += mb
		}
	}
}

// linearBackDataRows is the number of W rows a LinearBackData kernel call
// reads together (8 measures a little slower from DRAM, 32 from L3).
const linearBackDataRows = 16

func linearBackWeight(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	switch {
	case useAVX512:
		linearBackWeight_4x96_avx512(&dw[0], ldw, &dy[0], ldy, &x[0], ldx, m, n, k)
	case useAVX2:
		linearBackWeight_2x32_avx2(&dw[0], ldw, &dy[0], ldy, &x[0], ldx, m, n, k)
	default:
		linearBackWeightGo(dw, ldw, dy, ldy, x, ldx, m, n, k)
	}
}
