// Command linear generates the linear-layer microkernels of runtime/kernels
// (Linear, LinearChain, LinearBackData and LinearBackWeight; runtime/kernels/
// linear.go and chain.go are the contracts) for AVX-512 and AVX2 with avo. Every
// kernel keeps the contract's FMA order bit for bit, so its results equal
// linearGo's, linearChainGo's, linearBackDataGo's and linearBackWeightGo's
// exactly:
//
//   - Linear: one 16-lane accumulator per (sample, output), one zmm or two ymm
//     (lanes 0-7 and 8-15), one VFMADD231PS per 16 inputs, the K tail under a
//     mask that leaves lanes past the tail untouched, then the fixed tree
//     s[l]+s[l+8], +4, +2, +1 for up to a vector of outputs at once (a
//     transposing butterfly: each level adds the same lane pairs as the tree),
//     then adds the bias and clamps at lo (relu).
//   - LinearBackData / LinearBackWeight: lanes run over the input columns c, so
//     each lane is one element's FMA chain in the contract's order.
//
// The plan per kernel: pick a register tile per ISA (the tables below) → emit
// the loop over output rows (or columns) in whole tiles and a remainder tile →
// emit the tile's K loop, its masked tail and its epilogue. The dispatch in
// runtime/kernels/linear_amd64.go splits a call into sample blocks, row
// chunks and (Linear) input chunks whose lane sums wait in a buffer, or
// (LinearBackData) row blocks whose chains wait in dx; neither changes the
// order of any FMA chain.
package main

//go:generate go run . -out ../../runtime/kernels/linear_amd64.s -stubs ../../runtime/kernels/linear_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
)

// The Linear register tiles, one per sample count m of a call (index m-1): m
// samples × r outputs, run as groups of samples that each hold g·r 16-lane
// accumulators and read the tile's r W rows, the first group from L2, the
// later ones from L1. AVX-512 keeps a group's x vectors in registers and loads
// each W vector once per group (g·r + g + 1 ≤ 32 zmm): ~24 accumulators and
// ~10 loads per 24 FMAs. AVX2 needs two ymm per accumulator and goes a half
// (8 lanes) at a time (2·g·r + g + 1 ≤ 16 ymm), so it runs 4 to 8 samples as
// groups of 2 or 3 over the same W rows (up to 12 ymm accumulators each):
// ~10% to 30% faster than sample blocks of 4x1 tiles with W in L2. On AVX-512,
// 8 samples as 4+4 groups of 4x6 measured no faster than one 8x2 group (with
// the prefetch, which these tiles keep for a W beyond L2; linearL2AVX512 below).
//
// One sample reads W at the streaming-read rate without help; with more
// samples per W row the kernels fall behind the hardware prefetchers, and a
// software prefetch 1 KiB ahead in each row gains ~15% when W comes from
// DRAM (BenchmarkLinear, b8).
var (
	linearAVX512 = []linearTile{
		{m: 1, r: 8, groups: []int{1}, wMem: true},
		{m: 2, r: 8, groups: []int{2}, pf: 1024},
		{m: 3, r: 8, groups: []int{3}, pf: 1024},
		{m: 4, r: 6, groups: []int{4}, pf: 1024},
		{m: 5, r: 4, groups: []int{5}, pf: 1024},
		{m: 6, r: 4, groups: []int{6}, pf: 1024},
		{m: 7, r: 3, groups: []int{7}, pf: 1024},
		{m: 8, r: 2, groups: []int{8}, pf: 1024},
	}
	linearAVX2 = []linearTile{
		{m: 1, r: 6, groups: []int{1}, wMem: true},
		{m: 2, r: 3, groups: []int{2}, pf: 1024},
		{m: 3, r: 2, groups: []int{3}, pf: 1024},
		{m: 4, r: 3, groups: []int{2, 2}, pf: 1024},
		{m: 5, r: 2, groups: []int{3, 2}, pf: 1024},
		{m: 6, r: 3, groups: []int{2, 2, 2}, pf: 1024},
		{m: 7, r: 3, groups: []int{2, 2, 2, 1}, pf: 1024},
		{m: 8, r: 3, groups: []int{2, 2, 2, 2}, pf: 1024},
	}
)

// The Linear tiles for a W that stays in L2 across calls (linearL2_..., the
// dispatch picks them when 4·n·k ≤ 2 MiB; asm/linear/README.md). They have no
// W prefetch: with W in L2 the prefetch 1 KiB ahead costs ~10% (b4: ~85% →
// ~93% of the FMA peak without it), and shorter distances (256, 512 bytes)
// cost as much. On AVX-512 the K loop is unrolled twice (within noise, a
// little ahead at b16 and b32), and 8 samples run as groups 4+4 of 4x6:
// 10 loads per 24 FMAs instead of 10 per 16 for 8x2 (b8 256x1024: ~89% →
// ~91–92%, b8 64x128: ~54% → ~61%). AVX2 keeps its tiles (unrolling measured
// no gain there), and 2 samples keep the prefetching 2x3, which measured
// ~3% faster with W in L2 too.
var (
	linearL2AVX512 = []linearTile{
		{m: 2, r: 8, groups: []int{2}},
		{m: 3, r: 8, groups: []int{3}},
		{m: 4, r: 6, groups: []int{4}},
		{m: 5, r: 4, groups: []int{5}},
		{m: 6, r: 4, groups: []int{6}},
		{m: 7, r: 3, groups: []int{7}},
		{m: 8, r: 6, groups: []int{4, 4}},
	}
	linearL2AVX2 = []linearTile{
		{m: 3, r: 2, groups: []int{3}},
		{m: 4, r: 3, groups: []int{2, 2}},
		{m: 5, r: 2, groups: []int{3, 2}},
		{m: 6, r: 3, groups: []int{2, 2, 2}},
		{m: 7, r: 3, groups: []int{2, 2, 2, 1}},
		{m: 8, r: 3, groups: []int{2, 2, 2, 2}},
	}
)

// The LinearBackData tiles: m samples × c vectors of dx columns, m·c
// accumulators, c W vectors and one broadcast of dy (m·c + c + 1 registers);
// the loop over W's rows is unrolled twice (README.md). With W in L2 a call
// runs each chain over all n rows, and every tile reads W as short row
// segments 4·ldw bytes apart, which the hardware prefetchers do not follow:
// AVX-512 prefetches the rows 8 and 9 ahead (pf = -8; b4: ~70% → ~89% of
// the FMA peak), which costs nothing when W comes from DRAM in blocks of 16
// rows. On AMD (Zen 5) that prefetch costs with W in L2 (b8–b32/128x1024:
// 79–92% of the peak with it, 95–98% without) and gains from DRAM
// (b8/4096x9216: 16.2–17.1 against 14.4–14.7 GB/s), so these tiles have twins
// without it ("np"), which the dispatch runs on AMD with W in L2. On AVX2
// (Intel) the same prefetch gains ~2% from L2 and loses ~20% from DRAM, so
// AVX2 has none. AVX2 tiles hold at most 6 samples: larger sample
// blocks would have 1-vector tiles, 9 loads per 8 FMAs (~45% of the peak).
var (
	backDataAVX512 = []backDataTile{{1, 8, 0}, {2, 8, -8}, {3, 7, -8}, {4, 6, -8}, {5, 5, -8}, {6, 4, -8}, {7, 3, -8}, {8, 3, -8}}
	backDataAVX2   = []backDataTile{{1, 7, 0}, {2, 5, 0}, {3, 3, 0}, {4, 3, 0}, {5, 2, 0}, {6, 2, 0}}
)

// The LinearBackWeight tiles: r rows of dW × c vectors of columns, r·c
// accumulators, c x vectors and one broadcast of dy (r·c + c + 1 registers);
// the loop over the samples is unrolled twice. AVX2's 4×3 replaces 2×4,
// whose 8 accumulators only just cover the FMA latency (4 cycles × 2 ports).
var (
	backWeightAVX512 = backWeightTile{r: 4, c: 6}
	backWeightAVX2   = backWeightTile{r: 4, c: 3}
)

// The LinearChain kernels (chain.go): one vector of W rows (16 on AVX-512, 8
// on AVX2) × g samples, for g up to 12 on AVX-512 (16 registers for the rows,
// 2 for the transpose, 12 accumulators) and 5 on AVX2 (8 + 2 + 5, one for the
// broadcast). Every row is prefetched chainPF bytes ahead into L2: the step
// reads 16 rows at once, 64 bytes of each, and at batch 1 from DRAM the
// prefetch took AlexNet's fc6 (2 threads) from 7.7–8.1 ms to 6.8–7.3 ms.
// More row blocks per step (2 or 4, for independent chains at batch 1), a
// PREFETCHT0 and other distances (512 to 4096 bytes), and blocks built from
// 128-bit pieces of 4 rows (VINSERTF32X4, leaving only the in-lane stages of
// the transpose) measured no faster (asm/linear/README.md).
const (
	chainMaxAVX512 = 12
	chainMaxAVX2   = 5
	chainPF        = 1024
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
	for _, t := range linearL2AVX512 {
		t.l2, t.unroll = true, true
		linear(avx512, t)
	}
	for _, t := range linearL2AVX2 {
		t.l2 = true
		linear(avx2, t)
	}
	for _, t := range backDataAVX512 {
		backData(avx512, t, false)
	}
	for _, t := range backDataAVX512 {
		if t.pf != 0 {
			backData(avx512, t, true)
		}
	}
	for _, t := range backDataAVX2 {
		backData(avx2, t, false)
	}
	backWeight(avx512, backWeightAVX512)
	backWeight(avx2, backWeightAVX2)
	for g := 1; g <= chainMaxAVX512; g++ {
		chain(avx512, chainTile{g: g, pf: chainPF, t1: true})
	}
	for g := 1; g <= chainMaxAVX2; g++ {
		chain(avx2, chainTile{g: g, pf: chainPF, t1: true})
	}
	streamRead(avx512)
	streamRead(avx2)
	streamUpdate(avx512)
	streamUpdate(avx2)
	Generate()
}
