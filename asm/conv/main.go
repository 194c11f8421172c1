// Command conv generates the convolution microkernels of runtime/kernels
// (ConvNHWC and ConvWgrad, see runtime/kernels/conv.go for the contract) for
// AVX-512 and AVX2 with avo. Every kernel follows the contract's FMA order bit
// for bit: one VFMADD231PS per (element, term), in the order of the pure-Go
// twin, so the results equal convNHWCGo's and convWgradGo's exactly.
//
// The pipeline is: choose a register tile per ISA (tiles below) → emit the
// pixel/channel tile loop with its remainder tiles → emit each tile's loop nest.
package main

//go:generate go run . -out ../../runtime/kernels/conv_amd64.s -stubs ../../runtime/kernels/conv_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
)

// nr is kernels.NR, the output-channel block.
const nr = 32

// The register tiles, chosen by measurement on the project's machine (an Intel
// Xeon with two 512-bit FMA pipes; figures in README.md).
//
// AVX-512 holds a 14-pixel × 32-channel block in 28 zmm accumulators, plus 2
// weight vectors and 2 broadcast registers: per input channel 2 weight loads
// and 14 VBROADCASTSS feed 28 FMAs. Embedded-broadcast FMAs (bcst: true, 28
// broadcast loads per 28 FMAs) measured 10-35% slower here: this core's load
// ports, not its FMA pipes, become the limit. Zen 4 may prefer them.
//
// AVX2 has 16 ymm: a 6-pixel × 16-channel half block (12 accumulators, 2
// weight vectors, 1 broadcast), run twice for the two halves of NR. It beat
// 3 pixels × 32 channels with the weights read by the FMAs from memory
// (wmem: true) by 2-5%. Tiles of at most 3 pixels (small) run all 32
// channels in one pass instead (3 × 32: 12 accumulators, 3 weight vectors,
// the fourth read by the FMAs), and a rest of 7 to 9 pixels runs as 4, 5 or
// 6 and then 3: 8 pixels in two 4 × 16 tiles had 8 accumulators per pass, at
// the edge of what two FMA pipes of latency 4 need (on Zen 5, 78–81% of the
// peak for the batch-8 GEMM; README.md).
//
// ConvWgrad is the same outer product with the roles of pixels and input
// channels exchanged: 14 input channels × 32 output channels per tile (6 × 16
// on AVX2), the row and pixel loops innermost, so that a tile stays in
// registers over all the rows of a call (the Go dispatch splits long runs into
// calls of about 96 pixels; see runtime/kernels/conv_amd64.go). Its dy loads
// are masked only in a partial block: a masked zmm load costs a uop on the FMA
// ports, and unmasking the full blocks took it from ~88% to ~94% of peak.
//
// runtime/kernels/conv_amd64.go paces the prefetches by these tiles
// (convTileP512, convTileP2, convPass2, convUnroll): change both together.
var (
	nhwcAVX512 = nhwcTile{isa: avx512, maxP: 14, vecs: 2, unroll: 4}
	nhwcAVX2   = nhwcTile{isa: avx2, maxP: 6, vecs: 2, unroll: 4, small: 3}

	wgradAVX512 = wgradTile{isa: avx512, maxC: 14, vecs: 2, unroll: 2}
	wgradAVX2   = wgradTile{isa: avx2, maxC: 6, vecs: 2, unroll: 2}
)

func main() {
	ConstraintExpr("amd64,!purego")
	maskTable()
	convNHWC(nhwcAVX512)
	convNHWC(nhwcAVX2)
	for _, t := range []nhwcTile{nhwcAVX512, nhwcAVX2} {
		t.nt = true
		convNHWC(t)
	}
	convWgrad(wgradAVX512)
	convWgrad(wgradAVX2)
	Generate()
}
