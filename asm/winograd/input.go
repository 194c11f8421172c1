package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// inputTransform emits winoInput_6x6_<isa>, the input transform of a run of
// nt tiles that follow each other along a row (4 pixels apart):
//
//	for t < nt { for each block of lanes channels c (the last one masked) {
//	    d[y][x] = in[t*4*sx + y*sy + x*sx + c]              (y, x < 6)
//	    for y < 6 { tmp[y][0..5] = bt(d[y][0..5]) }        // d B, row by row
//	    for l < 6 { V[0..5][l] = bt(tmp[0..5][l]) }        // Bᵀ (d B), column by column
//	    v[(k*6+l)*vs + t*vt + c] = V[k][l]                  (k, l < 6)
//	}}
//
// tmp is 36 vectors on the (64-byte aligned) stack: pass 1 leaves them there
// for pass 2 to read in the other direction.
func inputTransform(i *isa) {
	name := "winoInput_6x6_" + i.Name
	TEXT(name, 0, "func(v *float32, vs, vt int, in *float32, sx, sy, nt, nc int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the input transform V = Bᵀ d B on %s: nt 6×6 tiles 4 pixels apart", name, i.Name),
		fmt.Sprintf("along a row of in (pixel stride sx, row stride sy), channels in %s vectors and a masked one;", i.Kind),
		"position ξ = 6k+l of tile t, channel c goes to v[ξ*vs+t*vt+c]. Strides are in float32s; nt, nc ≥ 1.")
	vb := i.VBytes()

	Comment("Byte strides: sx, 3sx, 5sx address a tile row's 6 pixels; vs, 6vs a column's 6 positions")
	sx := simd.Load4("sx")
	sx3, sx5 := GP64(), GP64()
	LEAQ(Mem{Base: sx, Index: sx, Scale: 2}, sx3)
	LEAQ(Mem{Base: sx, Index: sx, Scale: 4}, sx5)
	sy := simd.Local4("sy")
	vs := simd.Load4("vs")
	vs6 := GP64()
	IMUL3Q(U8(6), vs, vs6)
	tmp := alignedLocal(36 * vb)

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

	inT, vT, cnt := AllocLocal(8), AllocLocal(8), AllocLocal(8)
	MOVQ(simd.LoadGP("in"), inT)
	MOVQ(simd.LoadGP("v"), vT)

	Label(name + "_tile")
	Comment("for each tile: p, q point at channel c of its input and output")
	p, q := GP64(), GP64()
	MOVQ(inT, p)
	MOVQ(vT, q)
	MOVQ(nfull, t)
	MOVQ(t, cnt)
	Label(name + "_vec")
	CMPQ(cnt, U8(0))
	JEQ(LabelRef(name + "_tail"))
	inputBlock(i, vio{}, p, q, tmp, sx, sx3, sx5, sy, vs, vs6)
	ADDQ(U32(vb), p)
	ADDQ(U32(vb), q)
	DECQ(cnt)
	JMP(LabelRef(name + "_vec"))

	Label(name + "_tail")
	Comment("the last nc mod lanes channels, masked")
	CMPQ(nrest, U8(0))
	JEQ(LabelRef(name + "_next"))
	inputBlock(i, vio{masked: true, t: tl, mk: tl.mask()}, p, q, tmp, sx, sx3, sx5, sy, vs, vs6)

	Label(name + "_next")
	Comment("in += 4*sx; v += vt: the next tile")
	r := GP64()
	MOVQ(inT, r)
	LEAQ(Mem{Base: r, Index: sx, Scale: 4}, r)
	MOVQ(r, inT)
	MOVQ(vT, r)
	ADDQ(local4vt(), r)
	MOVQ(r, vT)
	DECQ(simd.Arg("nt"))
	JNZ(LabelRef(name + "_tile"))
	simd.Ret()
}

// local4vt loads 4*vt (the tile stride of v in bytes) into a new register.
func local4vt() reg.GPVirtual { return simd.Load4("vt") }

// inputBlock emits the transform of one vector of channels of one tile: d at
// p (pixel stride sx, row stride sy in bytes), V to q (position stride vs).
func inputBlock(i *isa, io vio, p, q, tmp, sx, sx3, sx5 reg.GPVirtual, sy Mem, vs, vs6 reg.GPVirtual) {
	vb := i.VBytes()
	Comment("pass 1, row by row: tmp[y][0..5] = bt(d[y][0..5])")
	r := GP64()
	MOVQ(p, r)
	for y := 0; y < 6; y++ {
		var d [6]reg.VecVirtual
		for x, m := range []Mem{
			{Base: r}, {Base: r, Index: sx, Scale: 1}, {Base: r, Index: sx, Scale: 2},
			{Base: r, Index: sx3, Scale: 1}, {Base: r, Index: sx, Scale: 4}, {Base: r, Index: sx5, Scale: 1},
		} {
			d[x] = i.Vec()
			io.load(m, d[x])
		}
		res := bt(i, d)
		for l := range res {
			VMOVAPS(res[l], Mem{Base: tmp, Disp: (y*6 + l) * vb})
		}
		if y < 5 {
			ADDQ(sy, r)
		}
	}
	Comment("pass 2, column by column: V[0..5][l] = bt(tmp[0..5][l]), V[k][l] to q + (6k+l)*vs")
	w := GP64()
	MOVQ(q, w)
	for l := 0; l < 6; l++ {
		var d [6]reg.VecVirtual
		for y := range d {
			d[y] = i.Vec()
			VMOVAPS(Mem{Base: tmp, Disp: (y*6 + l) * vb}, d[y])
		}
		res := bt(i, d)
		w2 := GP64()
		MOVQ(w, w2)
		for k := range res {
			io.store(res[k], Mem{Base: w2})
			if k < 5 {
				ADDQ(vs6, w2)
			}
		}
		if l < 5 {
			ADDQ(vs, w)
		}
	}
}
