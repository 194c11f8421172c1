package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// linearTile is a Linear register tile: m samples × r outputs.
type linearTile struct {
	m, r int
	xReg bool // keep the m x vectors of a 16-input block in registers
	wMem bool // (with xReg) W is the memory operand of each FMA, else it is loaded once into a register
	pf   int  // if > 0, prefetch W this many bytes ahead (PREFETCHT0)
}

const linearSig = "func(y *float32, ldy int, x *float32, ldx int, w *float32, ldw int, bias *float32, bstep int, n, k int, lo float32, part *float32, flags int)"

// The flags of a Linear kernel call that covers one chunk of the inputs.
const (
	linearLoad  = 1 // continue the sums from part instead of +0
	linearStore = 2 // store the sums to part instead of finishing the outputs
)

// linearGen holds the registers and stack slots that live across a Linear
// kernel's row tiles.
type linearGen struct {
	isa  *isa
	t    linearTile
	name string

	xp    []reg.GPVirtual // xp[i] = &x[i*ldx]
	kend  reg.GPVirtual   // 4*(k &^ 15): bytes of the whole 16-input blocks
	tail  tail
	ktail Mem // k & 15
	nrem  Mem // outputs left
	yrow  Mem // &y[j]
	wrow  Mem // &W[j][0]
	brow  Mem // &bias[j*bstep]
	ldw4  Mem
	ldy4  Mem
	bstp4 Mem
	part  Mem // &part[j*m*16]
}

/*
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			s := [16]float32{} // or part[(j*m+i)*16:][:16] if flags&linearLoad
			for k := l; k < K; k += 16 { s[l] = fma(x[i][k], W[j][k], s[l]) } // each lane l
			if flags&linearStore != 0 { part[(j*m+i)*16:][:16] = s; continue }
			v := Dot16's tree of s + bias[j*bstep]
			y[i*ldy+j] = lo > v ? lo : v
		}
	}
*/
func linear(i *isa, t linearTile) {
	g := &linearGen{isa: i, t: t, name: fmt.Sprintf("linear_%dx%d_%s", t.m, t.r, i.Name)}
	TEXT(g.name, NOSPLIT, linearSig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is Linear for %d sample(s) × n outputs (n, k ≥ 1) in tiles of %d output(s),", g.name, t.m, t.r),
		fmt.Sprintf("each a 16-lane FMA chain in %d %s, then single outputs. bias points at bias[0] and bstep is 1,", 16/i.Lanes, i.Kind),
		"or bias points at one -0 (adding it changes nothing) and bstep is 0; lo is 0 for relu,",
		"else -Inf: y = lo > y ? lo : y. A call may cover one chunk of the inputs (a multiple of 16",
		"but the last): flags&1 continues the 16 lane sums of each output from part[(j*m+i)*16:],",
		"flags&2 stores them there instead of finishing the outputs.")
	g.setup()
	g.rows()
	simd.Ret()
}

func (g *linearGen) setup() {
	Comment("xp[i] = &x[i*ldx]")
	ldx4 := simd.Load4("ldx")
	g.xp = make([]reg.GPVirtual, g.t.m)
	for s := range g.xp {
		g.xp[s] = GP64()
		if s == 0 {
			MOVQ(simd.Arg("x"), g.xp[s])
		} else {
			LEAQ(simd.At(g.xp[s-1], ldx4, 0), g.xp[s])
		}
	}
	Comment("kend = 4*(k &^ 15), the whole 16-input blocks; t = k & 15, the inputs of the tail")
	g.kend = GP64()
	MOVQ(simd.Arg("k"), g.kend)
	t := GP64()
	MOVQ(g.kend, t)
	ANDQ(U8(15), t)
	g.ktail = AllocLocal(8)
	MOVQ(t, g.ktail)
	ANDQ(I8(-16), g.kend)
	SHLQ(U8(2), g.kend)
	g.tail = setupTail(g.isa, t)
	g.nrem = simd.Local("n")
	g.yrow = simd.Local("y")
	g.wrow = simd.Local("w")
	g.brow = simd.Local("bias")
	g.ldw4 = simd.Local4("ldw")
	g.ldy4 = simd.Local4("ldy")
	g.bstp4 = simd.Local4("bstep")
	g.part = simd.Local("part")
}

// rows is the loop over the outputs: tiles of r, then single outputs.
func (g *linearGen) rows() {
	if g.t.r > 1 {
		Label(g.name + "_rows")
		Commentf("for ; n >= %d; n -= %d", g.t.r, g.t.r)
		CMPQ(g.nrem, U8(g.t.r))
		JL(LabelRef(g.name + "_row"))
		g.tile(g.t.r)
		JMP(LabelRef(g.name + "_rows"))
	}
	Label(g.name + "_row")
	Comment("for ; n > 0; n--")
	CMPQ(g.nrem, U8(0))
	JE(LabelRef(g.name + "_done"))
	g.tile(1)
	JMP(LabelRef(g.name + "_row"))
	Label(g.name + "_done")
}

// tile computes r outputs of the m samples and advances to the next outputs.
func (g *linearGen) tile(r int) {
	i, t := g.isa, g.t
	parts := 16 / i.Lanes
	lbl := fmt.Sprintf("%s_%dx%d", g.name, t.m, r)
	Commentf("Tile of %d sample(s) × %d output(s): s[j][i] holds the 16 lanes of output j of sample i", t.m, r)
	Comment("wp[j] = &W[j][0]")
	wp := make([]reg.GPVirtual, r)
	ldw4 := GP64()
	MOVQ(g.ldw4, ldw4)
	for j := range wp {
		wp[j] = GP64()
		if j == 0 {
			MOVQ(g.wrow, wp[j])
		} else {
			LEAQ(simd.At(wp[j-1], ldw4, 0), wp[j])
		}
	}
	Comment("next &W[j][0] = wp[r-1] + ldw")
	next := GP64()
	LEAQ(simd.At(wp[r-1], ldw4, 0), next)
	MOVQ(next, g.wrow)

	acc := make([][][]reg.VecVirtual, r)
	for j := range acc {
		acc[j] = make([][]reg.VecVirtual, t.m)
		for s := range acc[j] {
			acc[j][s] = i.Vecs(parts)
		}
	}
	Comment("s[j][i][l] = flags&linearLoad != 0 ? part[(j*m+i)*16+l] : +0")
	TESTQ(U32(linearLoad), simd.Arg("flags"))
	JZ(LabelRef(lbl + "_zero"))
	pp := GP64()
	MOVQ(g.part, pp)
	g.eachAcc(acc, func(a reg.VecVirtual, disp int) { VMOVUPS(Mem{Base: pp, Disp: disp}, a) })
	JMP(LabelRef(lbl + "_kloop"))
	Label(lbl + "_zero")
	g.eachAcc(acc, func(a reg.VecVirtual, _ int) { VXORPS(a, a, a) })
	Label(lbl + "_kloop")
	off := GP64()
	XORQ(off, off)
	TESTQ(g.kend, g.kend)
	JZ(LabelRef(lbl + "_tail"))
	Label(lbl + "_k")
	Comment("for k := 0; k < kend; k += 16 { s[j][i][l] = fma(x[i][k+l], W[j][k+l], s[j][i][l]) }")
	g.block(wp, off, acc)
	ADDQ(U8(64), off)
	CMPQ(off, g.kend)
	JB(LabelRef(lbl + "_k"))

	Label(lbl + "_tail")
	Comment("if t > 0 { for l := 0; l < t; l++ { s[j][i][l] = fma(x[i][k+l], W[j][k+l], s[j][i][l]) } }",
		"The lanes l >= t must not change (an added 0·0 would turn a -0 chain into +0).")
	CMPQ(g.ktail, U8(0))
	JE(LabelRef(lbl + "_sum"))
	if i == avx512 {
		g.tail512(wp, off, acc)
	} else {
		g.tail2(wp, off, acc)
	}
	Label(lbl + "_sum")
	Comment("if flags&linearStore != 0 { part[(j*m+i)*16+l] = s[j][i][l] } else { finish the outputs }")
	TESTQ(U32(linearStore), simd.Arg("flags"))
	JZ(LabelRef(lbl + "_out"))
	pp = GP64()
	MOVQ(g.part, pp)
	g.eachAcc(acc, func(a reg.VecVirtual, disp int) { VMOVUPS(a, Mem{Base: pp, Disp: disp}) })
	JMP(LabelRef(lbl + "_next"))
	Label(lbl + "_out")
	g.epilogue(acc)
	Label(lbl + "_next")
	Commentf("n -= %d; part += %d*m*16", r, r)
	ADDQ(U32(64*r*t.m), g.part)
	SUBQ(U8(r), g.nrem)
}

// eachAcc calls f for every accumulator register with its byte offset in part.
func (g *linearGen) eachAcc(acc [][][]reg.VecVirtual, f func(a reg.VecVirtual, disp int)) {
	for j := range acc {
		for s := range acc[j] {
			for p, a := range acc[j][s] {
				f(a, 64*(j*g.t.m+s)+p*g.isa.VBytes())
			}
		}
	}
}

// block is one 16-input block of the tile: x and W at byte offset off.
func (g *linearGen) block(wp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual) {
	i, t := g.isa, g.t
	vb := i.VBytes()
	var xv [][]reg.VecVirtual
	if t.xReg {
		xv = make([][]reg.VecVirtual, t.m)
		for s := range xv {
			xv[s] = i.Vecs(len(acc[0][s]))
			for p, x := range xv[s] {
				VMOVUPS(simd.At(g.xp[s], off, p*vb), x)
			}
		}
	}
	for j := range acc {
		if t.pf > 0 {
			PREFETCHT0(simd.At(wp[j], off, t.pf))
		}
		for p := range acc[j][0] {
			wm := simd.At(wp[j], off, p*vb)
			if t.xReg && t.wMem {
				for s := range acc[j] {
					VFMADD231PS(wm, xv[s][p], acc[j][s][p])
				}
				continue
			}
			wv := i.Vec()
			VMOVUPS(wm, wv)
			for s := range acc[j] {
				if t.xReg {
					VFMADD231PS(xv[s][p], wv, acc[j][s][p])
				} else {
					VFMADD231PS(simd.At(g.xp[s], off, p*vb), wv, acc[j][s][p])
				}
			}
		}
	}
}

// tail512 is the K tail on AVX-512: zero-masked loads (no access past the
// tail) and merge-masked FMAs (the lanes >= t keep their sums).
func (g *linearGen) tail512(wp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual) {
	k := g.tail.k
	var xv []reg.VecVirtual
	if g.t.xReg {
		xv = g.isa.Vecs(g.t.m)
		for s, x := range xv {
			VMOVUPS_Z(simd.At(g.xp[s], off, 0), k, x)
		}
	}
	for j := range acc {
		if g.t.xReg && g.t.wMem {
			for s := range acc[j] {
				VFMADD231PS(simd.At(wp[j], off, 0), xv[s], k, acc[j][s][0])
			}
			continue
		}
		wv := g.isa.Vec()
		VMOVUPS_Z(simd.At(wp[j], off, 0), k, wv)
		for s := range acc[j] {
			if g.t.xReg {
				VFMADD231PS(xv[s], wv, k, acc[j][s][0])
			} else {
				VFMADD231PS(simd.At(g.xp[s], off, 0), wv, k, acc[j][s][0])
			}
		}
	}
}

// tail2 is the K tail on AVX2, a half (8 lanes) at a time: VMASKMOVPS loads
// W with +0 and x with -0 in the lanes >= t, so their FMA adds the product -0,
// which leaves every sum (+0 and -0 included) unchanged.
func (g *linearGen) tail2(wp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual) {
	tp := g.tail.avx2Ptr()
	for p := 0; p < 2; p++ {
		Commentf("lanes %d..%d: W[j][k+l] (+0 past the tail), x[i][k+l] (-0 past the tail)", 8*p, 8*p+7)
		mk := YMM()
		VMOVUPS(Mem{Base: tp, Disp: 32 * p}, mk)
		for j := range acc {
			wv := YMM()
			VMASKMOVPS(simd.At(wp[j], off, 32*p), mk, wv)
			for s := range acc[j] {
				xv := YMM()
				VMASKMOVPS(simd.At(g.xp[s], off, 32*p), mk, xv)
				VORPS(Mem{Base: tp, Disp: 128 + 32*p}, xv, xv)
				VFMADD231PS(xv, wv, acc[j][s][p])
			}
		}
	}
}

// epilogue reduces, biases, clamps and stores the tile's outputs.
func (g *linearGen) epilogue(acc [][][]reg.VecVirtual) {
	Comment("y = Dot16's tree of s + bias[j]; y = lo > y ? lo : y; y[i*ldy+j] = y")
	lo := XMM()
	VMOVSS(simd.Arg("lo"), lo)
	bp := GP64()
	MOVQ(g.brow, bp)
	for j := range acc {
		b := XMM()
		VMOVSS(Mem{Base: bp}, b)
		ADDQ(g.bstp4, bp)
		yp := GP64()
		MOVQ(g.yrow, yp)
		for s := range acc[j] {
			y := g.reduce(acc[j][s])
			VADDSS(b, y, y)
			VMAXSS(y, lo, y)
			VMOVSS(y, Mem{Base: yp, Disp: 4 * j})
			if s+1 < len(acc[j]) {
				ADDQ(g.ldy4, yp)
			}
		}
	}
	MOVQ(bp, g.brow)
	ADDQ(U8(4*len(acc)), g.yrow)
}

// reduce sums the 16 lanes of one accumulator (one zmm, or two ymm) in Dot16's
// order and returns the sum in lane 0 of a new register.
func (g *linearGen) reduce(s []reg.VecVirtual) reg.VecVirtual {
	t8 := YMM()
	if len(s) == 1 {
		VEXTRACTF64X4(U8(1), s[0], t8)
		VADDPS(t8, s[0].AsY(), t8) // t8[l] = s[l] + s[l+8]
	} else {
		VADDPS(s[1], s[0], t8) // t8[l] = s[l] + s[l+8]
	}
	t4 := XMM()
	if g.isa == avx512 {
		VEXTRACTF32X4(U8(1), t8, t4)
	} else {
		VEXTRACTF128(U8(1), t8, t4)
	}
	VADDPS(t4, t8.AsX(), t4) // t4[l] = t8[l] + t8[l+4]
	t2 := XMM()
	VMOVHLPS(t4, t4, t2)
	VADDPS(t2, t4, t2) // t2[l] = t4[l] + t4[l+2]
	y := XMM()
	VMOVSHDUP(t2, y)
	VADDSS(y, t2, y) // y = t2[0] + t2[1]
	return y
}
