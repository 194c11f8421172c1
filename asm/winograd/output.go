package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// outputTransform emits winoOutput_4x4_<isa>, the output transform of a run of
// nt tiles that follow each other along a row (4 pixels apart):
//
//	for t < nt { for each block of lanes channels c (the last one masked) {
//	    M[k][l] = m[(k*6+l)*ms + t*mt + c]                  (k, l < 6)
//	    for k < 6 { tmp[k][0..3] = at(M[k][0..5]) }        // M A, row by row
//	    for j < 4 { Y[0..3][j] = at(tmp[0..5][j]) }        // Aᵀ (M A), column by column
//	    y := Y[i][j] + bias[c]
//	    if relu && y < 0 { y = 0 }
//	    out[t*4*so + i*sy + j*so + c] = y                   (i, j < 4)
//	}}
//
// The ReLU is VMAXPS y, floor, y with floor = +0 (relu) or -Inf (none): Intel's
// max(src1=floor, src2=y) returns y unless floor > y, so NaN and -0 pass
// through, and with -Inf every value does.
func outputTransform(i *isa) {
	name := "winoOutput_4x4_" + i.Name
	TEXT(name, 0, "func(out *float32, so, sy int, m *float32, ms, mt, nt, nc int, bias *float32, relu bool)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the output transform Y = Aᵀ M A + bias, then the optional ReLU, on %s:", name, i.Name),
		"nt 4×4 tiles 4 pixels apart along a row of out (pixel stride so, row stride sy), position ξ = 6k+l of tile t,",
		fmt.Sprintf("channel c read from m[ξ*ms+t*mt+c]; channels in %s vectors and a masked one. Strides are in float32s;", i.Kind),
		"bias has nc values; nt, nc ≥ 1.")
	vb := i.VBytes()

	Comment("Byte strides: so, sy, 3sy address a 4×4 tile's pixels; ms the 36 positions")
	so := simd.Load4("so")
	sy := simd.Load4("sy")
	sy3 := GP64()
	LEAQ(Mem{Base: sy, Index: sy, Scale: 2}, sy3)
	ms := simd.Load4("ms")
	tmp := alignedLocal(24 * vb)

	Comment("floor = relu ? +0 : -Inf")
	floor := i.Vec()
	VBROADCASTSS(constant(cNegInf), floor)
	CMPB(simd.Arg("relu"), U8(0))
	JEQ(LabelRef(name + "_norelu"))
	VXORPS(floor, floor, floor)
	Label(name + "_norelu")

	Comment("nc = nfull*lanes + nrest")
	nfull, nrest := AllocLocal(8), AllocLocal(8)
	c := simd.LoadGP("nc")
	t := GP64()
	MOVQ(c, t)
	ANDQ(U8(i.Lanes-1), t)
	MOVQ(t, nrest)
	SHRQ(U8(i.Log2), c)
	MOVQ(c, nfull)
	tl := setupTail(i, t)

	outT, mT, cnt := AllocLocal(8), AllocLocal(8), AllocLocal(8)
	MOVQ(simd.LoadGP("out"), outT)
	MOVQ(simd.LoadGP("m"), mT)

	Label(name + "_tile")
	Comment("for each tile: o, p, b point at channel c of its output, M and bias")
	o, p, b := GP64(), GP64(), GP64()
	MOVQ(outT, o)
	MOVQ(mT, p)
	MOVQ(simd.Arg("bias"), b)
	MOVQ(nfull, t)
	MOVQ(t, cnt)
	Label(name + "_vec")
	CMPQ(cnt, U8(0))
	JEQ(LabelRef(name + "_tail"))
	outputBlock(i, vio{}, o, p, b, tmp, so, sy, sy3, ms, floor)
	ADDQ(U32(vb), o)
	ADDQ(U32(vb), p)
	ADDQ(U32(vb), b)
	DECQ(cnt)
	JMP(LabelRef(name + "_vec"))

	Label(name + "_tail")
	Comment("the last nc mod lanes channels, masked")
	CMPQ(nrest, U8(0))
	JEQ(LabelRef(name + "_next"))
	outputBlock(i, vio{masked: true, t: tl, mk: tl.mask()}, o, p, b, tmp, so, sy, sy3, ms, floor)

	Label(name + "_next")
	Comment("out += 4*so; m += mt: the next tile")
	r := GP64()
	MOVQ(outT, r)
	LEAQ(Mem{Base: r, Index: so, Scale: 4}, r)
	MOVQ(r, outT)
	MOVQ(mT, r)
	ADDQ(simd.Load4("mt"), r)
	MOVQ(r, mT)
	DECQ(simd.Arg("nt"))
	JNZ(LabelRef(name + "_tile"))
	simd.Ret()
}

// outputBlock emits the transform of one vector of channels of one tile: M at
// p (position stride ms), bias at b, Y to o (pixel stride so, row stride sy,
// in bytes).
func outputBlock(i *isa, io vio, o, p, b, tmp, so, sy, sy3, ms reg.GPVirtual, floor reg.VecVirtual) {
	vb := i.VBytes()
	Comment("pass 1, row by row: tmp[k][0..3] = at(M[k][0..5])")
	r := GP64()
	MOVQ(p, r)
	for k := 0; k < 6; k++ {
		var mv [6]reg.VecVirtual
		for l := range mv {
			mv[l] = i.Vec()
			io.load(Mem{Base: r}, mv[l])
			if k < 5 || l < 5 {
				ADDQ(ms, r)
			}
		}
		res := at(i, mv)
		for j := range res {
			VMOVAPS(res[j], Mem{Base: tmp, Disp: (k*4 + j) * vb})
		}
	}
	Comment("pass 2, column by column: Y[0..3][j] = at(tmp[0..5][j]); out = max(Y + bias, floor)")
	bv := i.Vec()
	io.load(Mem{Base: b}, bv)
	oj := GP64()
	MOVQ(o, oj)
	for j := 0; j < 4; j++ {
		var mv [6]reg.VecVirtual
		for k := range mv {
			mv[k] = i.Vec()
			VMOVAPS(Mem{Base: tmp, Disp: (k*4 + j) * vb}, mv[k])
		}
		res := at(i, mv)
		for row, m := range []Mem{{Base: oj}, {Base: oj, Index: sy, Scale: 1}, {Base: oj, Index: sy, Scale: 2}, {Base: oj, Index: sy3, Scale: 1}} {
			y := i.Vec()
			VADDPS(bv, res[row], y)
			VMAXPS(y, floor, y)
			io.store(y, m)
		}
		if j < 3 {
			ADDQ(so, oj)
		}
	}
}
