// Command linearbf16 generates the bfloat16-weight linear-layer microkernels
// of runtime/kernels (LinearBF16; runtime/kernels/linearbf16.go is the
// contract) for AVX-512 and AVX2 with avo. They are asm/linear's Linear
// kernels with W read as bfloat16 and widened exactly to float32 in registers
// (VPMOVZXWD, then VPSLLD $16), so each keeps Linear's FMA order bit for bit
// and returns linearBF16Go's results, which are Linear's on the widened W:
//
//   - one 16-lane accumulator per (sample, output), one zmm or two ymm (lanes
//     0-7 and 8-15), one widening and one VFMADD231PS per 16 inputs (per 8 on
//     AVX2), the K tail under a mask that leaves lanes past the tail
//     untouched, then the fixed tree s[l]+s[l+8], +4, +2, +1, + bias, relu.
//
// The plan per kernel: pick a register tile per ISA (the tables below) → emit
// the loop over output rows in whole tiles and single rows → emit the tile's
// K loop, its masked tail and its epilogue. The dispatch in
// runtime/kernels/linearbf16_amd64.go splits a call into sample blocks, row
// chunks and input chunks the way Linear's does; none changes the order of
// any FMA chain. README.md has the measurements.
package main

//go:generate go run . -out ../../runtime/kernels/linearbf16_amd64.s -stubs ../../runtime/kernels/linearbf16_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
)

// The register tiles, one per sample count m of a call (index m-1): m samples
// × r outputs, r·m 16-lane accumulators. AVX-512 keeps the m x vectors of a
// 16-input block in registers and widens each W vector once per block into a
// register (r·m + m + 1 ≤ 32 zmm; the tail's masked load needs one ymm more,
// which the allocator can share with the widened vector), so a call reads
// every W element once for all its samples. AVX2 needs two ymm per
// accumulator and one for the widened half of W (2·r·m + 2·m + 1 ≤ 16 with x
// in registers, 2·r·m + 1 without); its tail needs three more, so it stops at
// m = 6 (m = 7, 8 run as 4+3, 4+4).
//
// Every tile runs its K loop two blocks (32 inputs, one 64-byte line of each
// W row) at a time and prefetches each row 1 KiB ahead once per line. Unlike
// the float32 kernels, which reach the streaming-read rate at batch 1 without
// help, these stay ~15-20% below it without the prefetch and reach 94-100% of
// it with it, from DRAM; the batch-8 kernels run 1.8-2× faster with it
// (README.md).
var (
	linearAVX512 = []linearTile{
		{m: 1, r: 8, xReg: true, pf: 1024, u: 2},
		{m: 2, r: 8, xReg: true, pf: 1024, u: 2},
		{m: 3, r: 8, xReg: true, pf: 1024, u: 2},
		{m: 4, r: 6, xReg: true, pf: 1024, u: 2},
		{m: 5, r: 4, xReg: true, pf: 1024, u: 2},
		{m: 6, r: 4, xReg: true, pf: 1024, u: 2},
		{m: 7, r: 3, xReg: true, pf: 1024, u: 2},
		{m: 8, r: 2, xReg: true, pf: 1024, u: 2},
	}
	linearAVX2 = []linearTile{
		{m: 1, r: 6, xReg: true, pf: 1024, u: 2},
		{m: 2, r: 3, pf: 1024, u: 2},
		{m: 3, r: 2, pf: 1024, u: 2},
		{m: 4, r: 1, pf: 1024, u: 2},
		{m: 5, r: 1, pf: 1024, u: 2},
		{m: 6, r: 1, pf: 1024, u: 2},
	}
)

func main() {
	ConstraintExpr("amd64,!purego") // printed as: //go:build amd64 && !purego
	tailTables()
	for _, t := range linearAVX512 {
		linear(avx512, t)
	}
	for _, t := range linearAVX2 {
		linear(avx2, t)
	}
	Generate()
}
