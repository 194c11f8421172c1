// Command peak generates the FMA-peak probes in runtime/kernels: loops of
// independent VFMADD231PS chains that measure this machine's float32 FMA
// throughput, so that kernel benchmarks can report efficiency as a ratio
// measured in the same run.
package main

//go:generate go run . -out ../../runtime/kernels/peak_amd64.s -stubs ../../runtime/kernels/peak_amd64_stubs.go -pkg kernels

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// chains is the number of independent FMA chains: more than latency × ports
// (4 × 2 on current x86 cores) so that the loop is throughput-bound; each
// iteration runs unroll FMAs per chain so that the loop counter costs little.
const chains, unroll = 12, 2

func main() {
	ConstraintExpr("amd64,!purego")
	peak("peakFMA_12x2_avx512", "zmm", func() reg.VecVirtual { return ZMM() })
	peak("peakFMA_12x2_avx2", "ymm", func() reg.VecVirtual { return YMM() })
	Generate()
}

// peak emits a loop of n iterations, each unroll VFMADD231PS on each of the
// independent accumulators (the operands are zero, so nothing overflows).
//
//	for i := 0; i < n*unroll; i++ { for k := range acc { acc[k] = fma(a, b, acc[k]) } }
func peak(name, kind string, vec func() reg.VecVirtual) {
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(fmt.Sprintf("%s runs n iterations of %d independent %s FMA chains, %d FMAs each (%d FMA instructions).", name, chains, kind, unroll, chains*unroll),
		"It measures the FMA peak; the result is discarded.")
	n := Load(Param("n"), GP64())
	a, b := vec(), vec()
	VXORPS(a, a, a)
	VXORPS(b, b, b)
	acc := make([]reg.VecVirtual, chains)
	for k := range acc {
		acc[k] = vec()
		VXORPS(acc[k], acc[k], acc[k])
	}
	Comment("for i := 0; i < n*unroll; i++ { acc[k] = fma(a, b, acc[k]) for every k }")
	TESTQ(n, n)
	JLE(LabelRef(name + "_done"))
	Label(name + "_loop")
	for range unroll {
		for k := range acc {
			VFMADD231PS(a, b, acc[k])
		}
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	// The accumulators must stay live to the end of the loop for the
	// register allocator: fold them into one (outside the timed loop).
	for k := 1; k < chains; k++ {
		VADDPS(acc[k], acc[0], acc[0])
	}
	VZEROUPPER()
	RET()
}
