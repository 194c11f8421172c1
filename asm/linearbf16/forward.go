package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// linearTile is a LinearBF16 register tile: m samples × r outputs.
type linearTile struct {
	m, r int
	xReg bool // keep the m x vectors of a 16-input block in registers, else they are FMA memory operands
	pf   int  // if > 0, prefetch W this many bytes ahead (PREFETCHT0), once per u blocks
	u    int  // if > 1, the K loop runs u blocks per iteration while it can, then single blocks
}

const linearSig = "func(y *float32, ldy int, x *float32, ldx int, w *uint16, ldw int, bias *float32, bstep int, n, k int, lo float32, part *float32, flags int)"

// The flags of a kernel call that covers one chunk of the inputs.
const (
	linearLoad  = 1 // continue the sums from part instead of +0
	linearStore = 2 // store the sums to part instead of finishing the outputs
)

// linearGen holds the registers and stack slots that live across a kernel's
// row tiles.
type linearGen struct {
	isa  *isa
	t    linearTile
	name string

	xp    []reg.GPVirtual // xp[i] = &x[i*ldx]
	kend  reg.GPVirtual   // k &^ 15: the inputs of the whole 16-input blocks
	tail  tail
	ktail Mem // k & 15
	nrem  Mem // outputs left
	yrow  Mem // &y[j]
	wrow  Mem // &W[j][0]
	brow  Mem // &bias[j*bstep]
	ldw2  Mem
	ldy4  Mem
	bstp4 Mem
	part  Mem // &part[j*m*16]
	wtail Mem // avx2: 64 bytes, one W row's tail widened to 16 float32s
}

/*
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			s := [16]float32{} // or part[(j*m+i)*16:][:16] if flags&linearLoad
			for k := l; k < K; k += 16 { s[l] = fma(x[i][k], widen(W[j][k]), s[l]) } // each lane l
			if flags&linearStore != 0 { part[(j*m+i)*16:][:16] = s; continue }
			v := Dot16's tree of s + bias[j*bstep]
			y[i*ldy+j] = lo > v ? lo : v
		}
	}

with widen(h) = math.Float32frombits(uint32(h) << 16), exact.
*/
func linear(i *isa, t linearTile) {
	g := &linearGen{isa: i, t: t, name: fmt.Sprintf("linearBF16_%dx%d_%s", t.m, t.r, i.Name)}
	TEXT(g.name, NOSPLIT, linearSig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearBF16 for %d sample(s) × n outputs (n, k ≥ 1) in tiles of %d output(s),", g.name, t.m, t.r),
		fmt.Sprintf("each a 16-lane FMA chain in %d %s over W widened exactly to float32 (VPMOVZXWD, VPSLLD $16),", 16/i.Lanes, i.Kind),
		"then single outputs. bias points at bias[0] and bstep is 1,",
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
	Comment("kend = k &^ 15, the whole 16-input blocks; t = k & 15, the inputs of the tail")
	g.kend = GP64()
	MOVQ(simd.Arg("k"), g.kend)
	t := GP64()
	MOVQ(g.kend, t)
	ANDQ(U8(15), t)
	g.ktail = AllocLocal(8)
	MOVQ(t, g.ktail)
	ANDQ(I8(-16), g.kend)
	g.tail = setupTail(g.isa, t)
	g.nrem = simd.Local("n")
	g.yrow = simd.Local("y")
	g.wrow = simd.Local("w")
	g.brow = simd.Local("bias")
	g.ldw2 = local2("ldw")
	g.ldy4 = simd.Local4("ldy")
	g.bstp4 = simd.Local4("bstep")
	g.part = simd.Local("part")
	if g.isa == avx2 {
		g.wtail = AllocLocal(64)
	}
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
	ldw2 := GP64()
	MOVQ(g.ldw2, ldw2)
	for j := range wp {
		wp[j] = GP64()
		if j == 0 {
			MOVQ(g.wrow, wp[j])
		} else {
			LEAQ(simd.At(wp[j-1], ldw2, 0), wp[j])
		}
	}
	Comment("next &W[j][0] = wp[r-1] + ldw")
	next := GP64()
	LEAQ(simd.At(wp[r-1], ldw2, 0), next)
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
	k := GP64()
	XORQ(k, k)
	if t.u > 1 {
		Label(lbl + "_ku")
		Commentf("for ; k+%d <= kend; k += %d { %d blocks, as below }", 16*t.u, 16*t.u, t.u)
		e := GP64()
		LEAQ(Mem{Base: k, Disp: 16 * t.u}, e)
		CMPQ(e, g.kend)
		JA(LabelRef(lbl + "_k"))
		for u := 0; u < t.u; u++ {
			g.block(wp, k, acc, u == 0)
			ADDQ(U8(16), k)
		}
		JMP(LabelRef(lbl + "_ku"))
	}
	Label(lbl + "_k")
	Comment("for ; k < kend; k += 16 { s[j][i][l] = fma(x[i][k+l], widen(W[j][k+l]), s[j][i][l]) }")
	CMPQ(k, g.kend)
	JAE(LabelRef(lbl + "_tail"))
	g.block(wp, k, acc, true)
	ADDQ(U8(16), k)
	JMP(LabelRef(lbl + "_k"))

	Label(lbl + "_tail")
	Comment("if t > 0 { for l := 0; l < t; l++ { s[j][i][l] = fma(x[i][k+l], widen(W[j][k+l]), s[j][i][l]) } }",
		"The lanes l >= t must not change (an added 0·0 would turn a -0 chain into +0).")
	CMPQ(g.ktail, U8(0))
	JE(LabelRef(lbl + "_sum"))
	if i == avx512 {
		g.tail512(wp, k, acc)
	} else {
		g.tail2(wp, k, acc)
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

// widen loads the bf16s at mem (16 on AVX-512, 8 on AVX2) into the float32
// lanes of a new vector: each 16-bit value zero-extended to 32 bits, then
// shifted into the upper half, which is the float32 with those upper bits.
//
//	w[l] = math.Float32frombits(uint32(W[j][k+l]) << 16)
func (g *linearGen) widen(mem Mem) reg.VecVirtual {
	w := g.isa.Vec()
	VPMOVZXWD(mem, w)
	VPSLLD(U8(16), w, w)
	return w
}

// block is one 16-input block of the tile at input k; pf says whether it
// prefetches (if the tile does).
func (g *linearGen) block(wp []reg.GPVirtual, k reg.GPVirtual, acc [][][]reg.VecVirtual, pf bool) {
	i, t := g.isa, g.t
	vb := i.VBytes()
	var xv [][]reg.VecVirtual
	if t.xReg {
		xv = make([][]reg.VecVirtual, t.m)
		for s := range xv {
			xv[s] = i.Vecs(len(acc[0][s]))
			for p, x := range xv[s] {
				VMOVUPS(xAt(g.xp[s], k, p*vb), x)
			}
		}
	}
	for j := range acc {
		if t.pf > 0 && pf {
			PREFETCHT0(wAt(wp[j], k, t.pf))
		}
		for p := range acc[j][0] {
			wv := g.widen(wAt(wp[j], k, 2*p*i.Lanes))
			for s := range acc[j] {
				if t.xReg {
					VFMADD231PS(xv[s][p], wv, acc[j][s][p])
				} else {
					VFMADD231PS(xAt(g.xp[s], k, p*vb), wv, acc[j][s][p])
				}
			}
		}
	}
}

// tail512 is the K tail on AVX-512: zero-masked loads (no access past the
// tail) and merge-masked FMAs (the lanes >= t keep their sums). W's t bf16s
// are loaded by VMOVDQU16 under the mask, which suppresses faults of the
// words past them, and then widened.
func (g *linearGen) tail512(wp []reg.GPVirtual, k reg.GPVirtual, acc [][][]reg.VecVirtual) {
	km := g.tail.k
	xv := g.isa.Vecs(g.t.m)
	for s, x := range xv {
		VMOVUPS_Z(xAt(g.xp[s], k, 0), km, x)
	}
	for j := range acc {
		h := YMM()
		VMOVDQU16_Z(wAt(wp[j], k, 0), km, h)
		wv := ZMM()
		VPMOVZXWD(h, wv)
		VPSLLD(U8(16), wv, wv)
		for s := range acc[j] {
			VFMADD231PS(xv[s], wv, km, acc[j][s][0])
		}
	}
}

// tail2 is the K tail on AVX2. AVX2 has no masked 16-bit load, so each row's
// t bf16s are read as t/2 whole pairs (VPMASKMOVD) and, for an odd t, the
// last one alone (VPBROADCASTW, then kept in word t-1 only), widened, and
// stored to wtail with +0 in the lanes >= t. Then, a half (8 lanes) at a
// time, VMASKMOVPS loads x with -0 in the lanes >= t, so their FMA adds the
// product -0, which leaves every sum (+0 and -0 included) unchanged. For an
// even t the word t-1 is read twice; both reads give the same bits.
func (g *linearGen) tail2(wp []reg.GPVirtual, k reg.GPVirtual, acc [][][]reg.VecVirtual) {
	Comment("lastk = k + t - 1, the input of W's last bf16")
	lastk := GP64()
	MOVQ(g.ktail, lastk)
	LEAQ(Mem{Base: lastk, Index: k, Scale: 1, Disp: -1}, lastk)
	tp := GP64()
	for j := range acc {
		Commentf("wtail[l] = l < t ? widen(W[%d][k+l]) : +0", j)
		MOVQ(g.tail.pairs, tp)
		mk := YMM()
		VMOVDQU(Mem{Base: tp}, mk)
		h := YMM()
		VPMASKMOVD(wAt(wp[j], k, 0), mk, h)
		b := YMM()
		VPBROADCASTW(wAt(wp[j], lastk, 0), b)
		MOVQ(g.tail.last, tp)
		VPAND(Mem{Base: tp}, b, b)
		VPOR(b, h, h)
		lo := YMM()
		VPMOVZXWD(h.AsX(), lo)
		VPSLLD(U8(16), lo, lo)
		VMOVUPS(lo, g.wtail)
		VEXTRACTI128(U8(1), h, b.AsX())
		hi := YMM()
		VPMOVZXWD(b.AsX(), hi)
		VPSLLD(U8(16), hi, hi)
		VMOVUPS(hi, g.wtail.Offset(32))
		MOVQ(g.tail.x, tp)
		for p := 0; p < 2; p++ {
			Commentf("lanes %d..%d: s[%d][i][l] = fma(x[i][k+l] (-0 past the tail), wtail[l], s[%d][i][l])", 8*p, 8*p+7, j, j)
			xm := YMM()
			VMOVUPS(Mem{Base: tp, Disp: 32 * p}, xm)
			for s := range acc[j] {
				xv := YMM()
				VMASKMOVPS(xAt(g.xp[s], k, 32*p), xm, xv)
				VORPS(Mem{Base: tp, Disp: 128 + 32*p}, xv, xv)
				VFMADD231PS(g.wtail.Offset(32*p), xv, acc[j][s][p])
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
