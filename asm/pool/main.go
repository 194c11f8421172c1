// Command pool generates the max-pooling microkernels of runtime/kernels
// (MaxPoolNHWC; runtime/kernels/pool.go is the contract) for AVX-512 and AVX2
// with avo. Every kernel returns the bits of maxPoolNHWCGo exactly: pooling
// only selects one of its inputs, so there is no rounding, only the selection
// rule to reproduce (see fold in maxpool.go).
//
// The plan per kernel: take the tail masks from c → dispatch once on kw (2, 3,
// or a kx loop) → per output pixel, run the channels in blocks of 4 vectors,
// then 2, then 1, then one masked vector → per block, reduce each kernel row
// to its row maximum and fold the rows together (the fold is associative, so
// this tree selects what the contract's single chain selects).
package main

//go:generate go run . -out ../../runtime/kernels/pool_amd64.s -stubs ../../runtime/kernels/pool_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
)

// The channel block: 4 vectors (64 channels on AVX-512, 32 on AVX2), then
// blocks of 2 and 1 for what is left and a masked vector for the last c mod
// lanes channels. The models' channel counts (64 ... 512) are whole blocks on
// AVX-512 but 96 (4+2); a block of 8 measured no faster (README.md).
//
// AVX-512 folds every tap with VMAXPS + VFIXUPIMMPS, 2 uops: the kernel is
// bound by memory, not by them (without the fix-up, incorrect, it runs no
// faster). AVX2 needs VMAXPS + VCMPPS + VBLENDVPS per tap, which made it
// 1.5-2.5× slower than AVX-512 on the same loads; with nanCheck it runs plain
// VMAXPS and one VCMPPS per pair of taps, and reruns a block with the exact
// fold only if a tap is a NaN. On AVX-512 nanCheck gains nothing, so it keeps
// the branch-free kernel whose speed does not depend on the data.
var (
	poolAVX512 = poolKernel{isa: avx512, block: 4}
	poolAVX2   = poolKernel{isa: avx2, block: 4, nanCheck: true}
)

// MaxPoolNHWCArg (the training forward pass: the value and the position of
// the selected tap) folds every tap in the contract's order. Its fast step
// assumes no tap is a NaN: VCMPPS GT + VMAXPS for the value, and for the
// offset a masked VMOVDQA32 (AVX-512) or VPAND + VPMAXUD (AVX2, where
// VBLENDVPS is 3 uops), which is the select because the offsets grow along
// the window. A block with a NaN tap, or every block of a call whose offsets
// do not grow, takes the exact fold: VCMPPS GT and unordered, and masked
// moves (AVX-512) or VBLENDVPS (AVX2) of value and offset. The fast AVX2
// block is 4 ymm (maxima, offsets, tap, 1, NaN flags, a pending tap and two
// temporaries fit in 16 registers); the exact one 2.
var (
	argAVX512 = argKernel{isa: avx512, block: 4, exact: 4}
	argAVX2   = argKernel{isa: avx2, block: 4, exact: 2}
)

func main() {
	ConstraintExpr("amd64,!purego") // printed as: //go:build amd64 && !purego
	tailTables()
	maxPool(poolAVX512)
	maxPool(poolAVX2)
	argTables()
	maxPoolArg(argAVX512)
	maxPoolArg(argAVX2)
	Generate()
}
