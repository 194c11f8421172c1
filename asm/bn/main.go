// Command bn generates the batch-norm kernels of runtime/kernels (BNSum,
// BNSumSq, BNApply, BNBackSums, BNBackData, BNBackDataEval; the contract is
// runtime/kernels/bn.go) for AVX-512 and AVX2 with avo.
//
// The data is NHWC: a call walks np pixels (stride sx) of n contiguous
// channels, and each per-channel float64 chain (a sum, or a pixel's value)
// runs in pixel order. The lanes of a vector are channels, so vector
// arithmetic keeps every chain's order: one VCVTPS2PD widens a vector's
// float32s exactly, each operation of the contract is one VADDPD, VSUBPD or
// VMULPD (never an FMA: every product is rounded before it is added), and
// VCVTPD2PS rounds to nearest even as Go's float32() does. The results equal
// the pure-Go twins' bit for bit.
//
// The plan per kernel: split the channels into chunks (outer) of up to
// vecs vectors, whose accumulators stay in registers through the pixel loop
// (inner), then chunks of half as many down to one vector, then one vector
// under a mask for the last n%lanes channels (AVX-512 opmasks, AVX2
// VMASKMOVPS/VMASKMOVPD; no memory past the n channels is touched). The
// per-channel constants (mean, invstd, scale, ...) are memory operands,
// loaded from L1 at each pixel; in the masked tail they are loaded once,
// under the mask, into registers. Each pixel loop prefetches its streams a
// few KiB ahead (prefetchBytes).
package main

//go:generate go run . -out ../../runtime/kernels/bn_amd64.s -stubs ../../runtime/kernels/bn_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
)

// The chunk sizes (vectors per pixel of a chunk) are what the registers hold:
// AVX-512 keeps 16 accumulators (or kc/cnt values) in zmm registers, BackSums
// 2 × 8 (Σg and Σg·x̂); AVX2 half as many in its 16 ymm. A chunk of 16 zmm is
// 128 channels: the 64-512 channels a worker owns in a VGG layer take one to
// four passes over the pixels, each reading 512 contiguous bytes per pixel.
var kernels = []*kernel{
	bnSum,
	bnSumSq,
	bnApply(false),
	bnApply(true),
	bnBackSums(false),
	bnBackSums(true),
	bnBackData,
	bnBackDataEval,
}

// prefetchBytes is how far ahead, in bytes of a chunk's data per stream, each
// pixel loop prefetches (PREFETCHT1, into L2): prefetchBytes/(chunk bytes per
// pixel) pixels ahead, 4 to 32. A layer's activations come from L3 or memory,
// and a worker reads a strided part of each pixel (its channel range), where
// the hardware prefetchers alone fell well short of a streaming read: with
// the prefetch, 1.1-2× faster there (README.md), and within noise when the
// data is already in L1/L2. 2 KiB and 8 KiB measured the same; PREFETCHT0
// 0-20% slower than T1.
const prefetchBytes = 4096

func prefetchPixels(i *isa, v int) int {
	return min(max(prefetchBytes/(v*i.b32()), 4), 32)
}

func main() {
	ConstraintExpr("amd64,!purego") // printed as: //go:build amd64 && !purego
	tailTables()
	for _, i := range []*isa{avx512, avx2} {
		for _, k := range kernels {
			k.emit(i)
		}
	}
	Generate()
}
