package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// streamRead emits the streaming-read probe the Linear benchmarks compare with:
// it reads n float32s with vector loads into 8 independent sums, the way a
// batch-1 Linear reads W, and discards the result.
//
//	for i := 0; i < n; i += 8*lanes { acc[a] += p[i+a*lanes:][:lanes] for each a }
func streamRead(i *isa) {
	name := "linearStreamRead_" + i.Name
	TEXT(name, NOSPLIT, "func(p *float32, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s reads p[:n] (n > 0 a multiple of %d) with %s loads into 8 sums and discards them:", name, 8*i.Lanes, i.Kind),
		"the streaming-read bandwidth probe of the Linear benchmarks.")
	p := GP64()
	MOVQ(simd.Arg("p"), p)
	end := simd.Load4("n")
	ADDQ(p, end)
	acc := i.Vecs(8)
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	Label(name + "_loop")
	Commentf("acc[a] += p[%d*a:][:%d]", i.Lanes, i.Lanes)
	for a, x := range acc {
		VADDPS(Mem{Base: p, Disp: a * i.VBytes()}, x, x)
	}
	ADDQ(U32(8*i.VBytes()), p)
	CMPQ(p, end)
	JB(LabelRef(name + "_loop"))
	for a := 1; a < len(acc); a++ {
		VADDPS(acc[a], acc[0], acc[0])
	}
	simd.Ret()
}
