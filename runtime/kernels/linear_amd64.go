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

// linearKernels is one ISA's Linear kernels by samples per call (index m-1):
// kern prefetch W (for a W beyond L2), l2 do not (asm/linear/main.go). rows
// is a common multiple of all their tiles' output counts (the second number
// in each name): row chunks of that many outputs have no remainder tile.
type linearKernels struct {
	kern []linearKernel
	l2   []linearKernel
	rows int
}

var (
	linearAVX512 = linearKernels{
		kern: []linearKernel{
			linear_1x8_avx512, linear_2x8_avx512, linear_3x8_avx512, linear_4x6_avx512,
			linear_5x4_avx512, linear_6x4_avx512, linear_7x3_avx512, linear_8x2_avx512,
		},
		l2: []linearKernel{
			linear_1x8_avx512, linearL2_2x8_avx512, linearL2_3x8_avx512, linearL2_4x6_avx512,
			linearL2_5x4_avx512, linearL2_6x4_avx512, linearL2_7x3_avx512, linearL2_8x6_avx512,
		},
		rows: 24,
	}
	linearAVX2 = linearKernels{
		kern: []linearKernel{
			linear_1x6_avx2, linear_2x3_avx2, linear_3x2_avx2, linear_4x3_avx2,
			linear_5x2_avx2, linear_6x3_avx2, linear_7x3_avx2, linear_8x3_avx2,
		},
		l2: []linearKernel{
			linear_1x6_avx2, linear_2x3_avx2, linearL2_3x2_avx2, linearL2_4x3_avx2,
			linearL2_5x2_avx2, linearL2_6x3_avx2, linearL2_7x3_avx2, linearL2_8x3_avx2,
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
	// linearXL2 is the largest x of one sample block that runs without
	// input chunks when W stays in L2 (linearL2): the chunks' stores and
	// reloads of the lane sums through part cost more than the L1 conflicts
	// of a 32 KiB x (b8 256x1024 on AVX-512: ~80% in two chunks → ~88%
	// unchunked, with the 8x2 tile). Larger x still runs in chunks of
	// linearXBytes (28 and 32 KiB chunks measured the same within noise for
	// b8 64x4096, 16 and 20 KiB ~4% slower).
	linearXL2 = 32 << 10
	// linearPartTiles is the number of row chunks of ks.rows outputs that
	// one input chunk covers; their 16 lane sums wait in part in between.
	linearPartTiles = 4
	// linearChunkBytes bounds the W rows that one sample block reads when m
	// needs several blocks but k needs no input chunks: the other blocks then
	// find those rows in L2.
	linearChunkBytes = 512 << 10
)

// linearL2 bounds the W (bytes) that stays in a core's L2 across calls: the
// kernels then come from ks.l2, without the W prefetch, which costs ~10% there
// (b4 on AVX-512: ~85% → ~93% of the FMA peak) but gains ~15–25% when W comes
// from DRAM (b8 4096x4096: ~16 → ~19.6 GB/s). A variable so that the tests can
// run either set on any shape.
var linearL2 = 2 << 20

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
	kern, xmax := ks.kern, linearXBytes
	if 4*n*k <= linearL2 {
		kern, xmax = ks.l2, linearXL2
	}
	kc, nc := k, n
	var part []float32
	var pp *[]float32
	if mb > 1 && 4*mb*k > xmax {
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
				kern[mb-1](&y[i0*ldy+j0], ldy, &x[i0*ldx+k0], ldx, &w[j0*ldw+k0], ldw, b, bstep, nn, min(kc, k-k0), lo, p, flags)
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
	// The same tiles without the row prefetch, for a W in L2 on AMD.
	linearBackDataAVX512NP = []linearBackDataKernel{
		linearBackData_1x128_avx512, linearBackData_2x128np_avx512, linearBackData_3x112np_avx512, linearBackData_4x96np_avx512,
		linearBackData_5x80np_avx512, linearBackData_6x64np_avx512, linearBackData_7x48np_avx512, linearBackData_8x48np_avx512,
	}
	linearBackDataAVX2 = []linearBackDataKernel{
		linearBackData_1x56_avx2, linearBackData_2x40_avx2, linearBackData_3x24_avx2, linearBackData_4x24_avx2,
		linearBackData_5x16_avx2, linearBackData_6x16_avx2,
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
	// A W beyond L2 runs in blocks of linearBackDataRows rows, the chains
	// continued through dx: a call reads that many rows at once, as
	// sequential streams, and the sample blocks of one row block find its
	// rows in L2. A W within L2 runs in one block, on AMD without the AVX-512
	// tiles' row prefetch: on Zen 5 it cost there (b8–b32/128x1024: 79–92%
	// of the FMA peak with it, 95–98% without), and gained from DRAM
	// (b8/4096x9216: 16.2–17.1 against 14.4–14.7 GB/s); on the Intel Xeon it
	// gained b4 ~70% → ~89% from L2.
	blocks := (m + len(ks) - 1) / len(ks)
	rows := linearBackDataRows
	if 4*n*k <= linearBackDataL2 {
		rows = n
		if amd && useAVX512 {
			ks = linearBackDataAVX512NP
		}
	}
	for j0 := 0; j0 < n; j0 += rows {
		nj := min(rows, n-j0)
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

// linearBackDataL2 bounds the W (bytes) that stays in a core's L2 across
// calls: then each kernel call runs the chains over all n rows, so dx is
// written once instead of stored and reloaded every 16 rows, and the tiles
// prefetch W's next rows themselves (~97% of the FMA peak for b8 and up on
// AVX-512, against ~75% in blocks of 16 rows; asm/linear/README.md).
const linearBackDataL2 = 2 << 20

// linearBackWeightXBytes bounds the x that one LinearBackWeight kernel call
// reads (m samples × a chunk of the columns) when dW stays in L2 (within
// linearBackDataL2) and x is larger than linearBackWeightInPlace: the chunk
// then stays in L1 while the kernel sweeps all n rows of dW, instead of
// coming from L2 for every tile of rows (b32 256x1024 on AVX-512: 63–84% →
// ~88% of the FMA peak on the Xeon). A chunk is copied to a contiguous
// buffer first: x's rows are often 4 KiB multiples apart, and more than 12
// of them would fall into the same L1 sets. A dW beyond L2 bounds the kernel
// by its own traffic, and chunks only lose there (10–15%).
const linearBackWeightXBytes = 32 << 10

// linearBackWeightInPlace bounds the x that LinearBackWeight reads in place,
// unchunked, with dW in L2: chunks cut dW's rows into shorter runs, which
// cost more than they save up to about this size. On Zen 5, AVX-512, three
// alternated runs (% of the FMA peak, in place against 32 KiB chunks):
// b8/128x1040 (33 KiB of x) 90 against 71 (b8/128x1024, 32 KiB: 88–90
// against 72–73 in 24 KiB chunks), b16/128x640 (40 KiB) 94–95 against
// 84–85, b8/128x1280 (40 KiB) 68–70 against 71; beyond it chunks win:
// b8/128x1536 (48 KiB) 65–68 against 70–74, b16/128x1024 (64 KiB) 74–75
// against 85–86.
const linearBackWeightInPlace = 40 << 10

func linearBackWeight(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	if !useAVX512 && !useAVX2 {
		linearBackWeightGo(dw, ldw, dy, ldy, x, ldx, m, n, k)
		return
	}
	// kern calls the kernel directly (not through a func value, which would
	// make the stack chunk below escape to the heap).
	kern := func(dw *float32, x *float32, ldx, k int) {
		if useAVX512 {
			linearBackWeight_4x96_avx512(dw, ldw, &dy[0], ldy, x, ldx, m, n, k)
		} else {
			linearBackWeight_4x24_avx2(dw, ldw, &dy[0], ldy, x, ldx, m, n, k)
		}
	}
	width, lanes := 24, 8 // the kernel's tile width in columns, its vector
	if useAVX512 {
		width, lanes = 96, 16
	}
	if 4*m*k <= linearBackWeightInPlace || n < 4 || 4*n*k > linearBackDataL2 || 4*m*lanes > linearBackWeightXBytes {
		kern(&dw[0], &x[0], ldx, k)
		return
	}
	// The columns in chunks of kc (whole tiles if one fits): each dW
	// element's chain is still one call's loop over the samples.
	kc := linearBackWeightXBytes / (4 * m)
	if kc >= width {
		kc -= kc % width
	} else {
		kc = max(lanes, kc-kc%lanes)
	}
	// The chunk's copy lives on the stack: no heap allocation (a goroutine's
	// stack grows once to hold it), nothing shared between concurrent callers.
	var chunk [linearBackWeightXBytes / 4]float32
	buf := chunk[:m*kc]
	for k0 := 0; k0 < k; k0 += kc {
		kk := min(kc, k-k0)
		for i := 0; i < m; i++ {
			copy(buf[i*kk:(i+1)*kk], x[i*ldx+k0:])
		}
		kern(&dw[k0], &buf[0], kk, kk)
	}
}
