package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// linearTile is a Linear register tile: m samples × r outputs, run as groups
// of samples (groups sums to m) that each read the tile's r W rows, the later
// groups from L1. A group of g samples holds g·r accumulators.
type linearTile struct {
	m, r   int
	groups []int
	wMem   bool // W is the memory operand of each FMA (one sample), else it is loaded once into a register
	pf     int  // if > 0, the first group prefetches W this many bytes ahead (PREFETCHT0)
	l2     bool // the variant for a W that stays in L2 (named linearL2_...): no prefetch
	unroll bool // the K loop runs two blocks of 16 inputs per iteration
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

	kend  reg.GPVirtual // 4*(k &^ 15): bytes of the whole 16-input blocks
	kend2 Mem           // kend - 64: the loop unrolled twice runs while off < kend2
	tail  tail
	ktail Mem // k & 15
	nrem  Mem // outputs left
	yrow  Mem // &y[j]
	wrow  Mem // &W[j][0]
	brow  Mem // &bias[j*bstep]
	ldw4  Mem
	ldx4  Mem
	ldy4  Mem
	bstp4 Mem
	part  Mem // &part[j*m*16]
	buf   Mem // 64 bytes: the finished outputs of one reduction, on their way to y
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
	op := "linear"
	if t.l2 {
		op = "linearL2"
	}
	g := &linearGen{isa: i, t: t, name: fmt.Sprintf("%s_%dx%d_%s", op, t.m, t.r, i.Name)}
	TEXT(g.name, NOSPLIT, linearSig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is Linear for %d sample(s) × n outputs (n, k ≥ 1) in tiles of %d output(s)", g.name, t.m, t.r),
		fmt.Sprintf("(then one tile of each smaller width for the rest), each tile run as sample groups %v,", t.groups),
		fmt.Sprintf("each output a 16-lane FMA chain in %d %s, reduced several outputs at a time by a", 16/i.Lanes, i.Kind),
		"transposing butterfly that keeps Dot16's tree for each. bias points at bias[0] and bstep",
		"is 1, or bias points at 16 × -0 (adding them changes nothing) and bstep is 0; lo is 0 for",
		"relu, else -Inf: y = lo > y ? lo : y. A call may cover one chunk of the inputs (a multiple",
		"of 16 but the last): flags&1 continues the 16 lane sums of each output from",
		"part[(j*m+i)*16:], flags&2 stores them there instead of finishing the outputs.",
		g.variant())
	g.setup()
	g.rows()
	simd.Ret()
}

// variant is the last sentence of a kernel's doc: how it reads W.
func (g *linearGen) variant() string {
	t := g.t
	var s string
	switch {
	case t.pf > 0:
		s = fmt.Sprintf("It prefetches W %d bytes ahead (for a W beyond L2)", t.pf)
	case t.l2:
		s = "It does not prefetch W (for a W within L2)"
	default:
		s = "It does not prefetch W"
	}
	if t.unroll {
		s += "; its K loop is unrolled twice"
	}
	return s + "."
}

func (g *linearGen) setup() {
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
	if g.t.unroll {
		Comment("kend2 = kend - 64: two blocks are left while off < kend2")
		g.kend2 = AllocLocal(8)
		k2 := GP64()
		LEAQ(Mem{Base: g.kend, Disp: -64}, k2)
		MOVQ(k2, g.kend2)
	}
	g.tail = setupTail(g.isa, t)
	g.nrem = simd.Local("n")
	g.yrow = simd.Local("y")
	g.wrow = simd.Local("w")
	g.brow = simd.Local("bias")
	g.ldw4 = simd.Local4("ldw")
	g.ldx4 = simd.Local4("ldx")
	g.ldy4 = simd.Local4("ldy")
	g.bstp4 = simd.Local4("bstep")
	g.part = simd.Local("part")
	g.buf = AllocLocal(64)
}

// rows is the loop over the outputs: tiles of r, then at most one tile of
// each smaller width, widest first.
//
//	for ; n >= r; n -= r { tile(r) }
//	for w := r-1; w > 0; w-- { if n >= w { tile(w); n -= w } }
func (g *linearGen) rows() {
	Label(g.name + "_rows")
	Commentf("for ; n >= %d; n -= %d", g.t.r, g.t.r)
	CMPQ(g.nrem, U8(g.t.r))
	JL(LabelRef(g.name + "_rest"))
	g.tile(g.t.r)
	JMP(LabelRef(g.name + "_rows"))
	Label(g.name + "_rest")
	for w := g.t.r - 1; w > 0; w-- {
		skip := fmt.Sprintf("%s_not%d", g.name, w)
		Commentf("if n >= %d { tile of %d; n -= %d }", w, w, w)
		CMPQ(g.nrem, U8(w))
		JL(LabelRef(skip))
		g.tile(w)
		Label(skip)
	}
}

// tile computes r outputs of the m samples, group by group, and advances to
// the next outputs.
func (g *linearGen) tile(r int) {
	t := g.t
	Commentf("Tile of %d sample(s) × %d output(s) in groups %v", t.m, r, t.groups)
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
	s0 := 0
	for gi, gs := range t.groups {
		g.group(wp, r, gi, s0, gs)
		s0 += gs
	}
	Commentf("n -= %d; part += %d*m*16; y += %d; bias += %d*bstep", r, r, r, r)
	ADDQ(U32(64*r*t.m), g.part)
	ADDQ(U8(4*r), g.yrow)
	bs := GP64()
	IMUL3Q(U8(r), g.bstp4, bs)
	ADDQ(bs, g.brow)
	SUBQ(U8(r), g.nrem)
}

// group computes the r outputs of samples s0 .. s0+gs-1: s[j][i] holds the
// 16 lanes of output j of sample s0+i. The first group reads W from L2 (and
// prefetches it), the later ones find the tile's rows in L1.
func (g *linearGen) group(wp []reg.GPVirtual, r, gi, s0, gs int) {
	i := g.isa
	parts := 16 / i.Lanes
	lbl := fmt.Sprintf("%s_%dx%d_g%d", g.name, r, gs, gi)
	Commentf("Group %d: samples %d..%d; xp[i] = &x[(%d+i)*ldx]", gi, s0, s0+gs-1, s0)
	xp := make([]reg.GPVirtual, gs)
	ldx4 := GP64()
	MOVQ(g.ldx4, ldx4)
	for s := range xp {
		xp[s] = GP64()
		if s == 0 {
			MOVQ(simd.Arg("x"), xp[s])
			for range s0 {
				ADDQ(ldx4, xp[s])
			}
		} else {
			LEAQ(simd.At(xp[s-1], ldx4, 0), xp[s])
		}
	}
	acc := make([][][]reg.VecVirtual, r)
	for j := range acc {
		acc[j] = make([][]reg.VecVirtual, gs)
		for s := range acc[j] {
			acc[j][s] = i.Vecs(parts)
		}
	}
	Commentf("s[j][i][l] = flags&linearLoad != 0 ? part[(j*m+%d+i)*16+l] : +0", s0)
	TESTQ(U32(linearLoad), simd.Arg("flags"))
	JZ(LabelRef(lbl + "_zero"))
	pp := GP64()
	MOVQ(g.part, pp)
	g.eachAcc(acc, s0, func(a reg.VecVirtual, disp int) { VMOVUPS(Mem{Base: pp, Disp: disp}, a) })
	JMP(LabelRef(lbl + "_kloop"))
	Label(lbl + "_zero")
	g.eachAcc(acc, s0, func(a reg.VecVirtual, _ int) { VXORPS(a, a, a) })
	Label(lbl + "_kloop")
	off := GP64()
	XORQ(off, off)
	if !g.t.unroll {
		TESTQ(g.kend, g.kend)
		JZ(LabelRef(lbl + "_tail"))
		Label(lbl + "_k")
		Comment("for k := 0; k < kend; k += 16 { s[j][i][l] = fma(x[i][k+l], W[j][k+l], s[j][i][l]) }")
		g.block(wp, xp, off, 0, acc, gi == 0)
		ADDQ(U8(64), off)
		CMPQ(off, g.kend)
		JB(LabelRef(lbl + "_k"))
	} else {
		g.kloop2(lbl, wp, xp, off, acc, gi == 0)
	}

	Label(lbl + "_tail")
	Comment("if t > 0 { for l := 0; l < t; l++ { s[j][i][l] = fma(x[i][k+l], W[j][k+l], s[j][i][l]) } }",
		"The lanes l >= t must not change (an added 0·0 would turn a -0 chain into +0).")
	CMPQ(g.ktail, U8(0))
	JE(LabelRef(lbl + "_sum"))
	if i == avx512 {
		g.tail512(wp, xp, off, acc)
	} else {
		g.tail2(wp, xp, off, acc)
	}
	Label(lbl + "_sum")
	Comment("if flags&linearStore != 0 { part[(j*m+i)*16+l] = s[j][i][l] } else { finish the outputs }")
	TESTQ(U32(linearStore), simd.Arg("flags"))
	JZ(LabelRef(lbl + "_out"))
	pp = GP64()
	MOVQ(g.part, pp)
	g.eachAcc(acc, s0, func(a reg.VecVirtual, disp int) { VMOVUPS(a, Mem{Base: pp, Disp: disp}) })
	JMP(LabelRef(lbl + "_next"))
	Label(lbl + "_out")
	g.epilogue(acc, s0)
	Label(lbl + "_next")
}

// kloop2 is a group's K loop unrolled twice: two blocks of 16 inputs per
// iteration (half the loop's scalar uops), then at most one more block.
func (g *linearGen) kloop2(lbl string, wp, xp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual, first bool) {
	Comment("for k := 0; k+32 <= K; k += 32 { two blocks of 16 inputs } (unrolled twice)")
	CMPQ(g.kend2, off)
	JLE(LabelRef(lbl + "_k1"))
	Label(lbl + "_k")
	Comment("s[j][i][l] = fma(x[i][k+l], W[j][k+l], s[j][i][l]); then the same at k+16")
	g.block(wp, xp, off, 0, acc, first)
	g.block(wp, xp, off, 64, acc, first)
	SUBQ(I8(-128), off)
	CMPQ(g.kend2, off)
	JG(LabelRef(lbl + "_k"))
	Label(lbl + "_k1")
	Comment("if k < K&^15 { one more block of 16 inputs; k += 16 }")
	CMPQ(off, g.kend)
	JAE(LabelRef(lbl + "_tail"))
	g.block(wp, xp, off, 0, acc, first)
	ADDQ(U8(64), off)
}

// eachAcc calls f for every accumulator register of a group starting at
// sample s0 with its byte offset in part.
func (g *linearGen) eachAcc(acc [][][]reg.VecVirtual, s0 int, f func(a reg.VecVirtual, disp int)) {
	for j := range acc {
		for s := range acc[j] {
			for p, a := range acc[j][s] {
				f(a, 64*(j*g.t.m+s0+s)+p*g.isa.VBytes())
			}
		}
	}
}

// block is one 16-input block of a group: x and W at byte offset off+d, a
// vector (of the 16 lanes) at a time: the group's x vectors into registers,
// then each W vector once, into a register or (wMem) as the FMAs' operand.
func (g *linearGen) block(wp, xp []reg.GPVirtual, off reg.GPVirtual, d int, acc [][][]reg.VecVirtual, first bool) {
	i, t := g.isa, g.t
	vb := i.VBytes()
	for p := range acc[0][0] {
		xv := i.Vecs(len(xp))
		for s, x := range xv {
			VMOVUPS(simd.At(xp[s], off, d+p*vb), x)
		}
		for j := range acc {
			if t.pf > 0 && first && p == 0 {
				PREFETCHT0(simd.At(wp[j], off, d+t.pf))
			}
			wm := simd.At(wp[j], off, d+p*vb)
			if t.wMem {
				for s := range acc[j] {
					VFMADD231PS(wm, xv[s], acc[j][s][p])
				}
				continue
			}
			wv := i.Vec()
			VMOVUPS(wm, wv)
			for s := range acc[j] {
				VFMADD231PS(xv[s], wv, acc[j][s][p])
			}
		}
	}
}

// tail512 is the K tail on AVX-512: zero-masked loads (no access past the
// tail) and merge-masked FMAs (the lanes >= t keep their sums).
func (g *linearGen) tail512(wp, xp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual) {
	k := g.tail.k
	xv := g.isa.Vecs(len(xp))
	for s, x := range xv {
		VMOVUPS_Z(simd.At(xp[s], off, 0), k, x)
	}
	for j := range acc {
		if g.t.wMem {
			for s := range acc[j] {
				VFMADD231PS(simd.At(wp[j], off, 0), xv[s], k, acc[j][s][0])
			}
			continue
		}
		wv := g.isa.Vec()
		VMOVUPS_Z(simd.At(wp[j], off, 0), k, wv)
		for s := range acc[j] {
			VFMADD231PS(xv[s], wv, k, acc[j][s][0])
		}
	}
}

// tail2 is the K tail on AVX2, a half (8 lanes) at a time: VMASKMOVPS loads
// W with +0 and x with -0 in the lanes >= t, so their FMA adds the product -0,
// which leaves every sum (+0 and -0 included) unchanged.
func (g *linearGen) tail2(wp, xp []reg.GPVirtual, off reg.GPVirtual, acc [][][]reg.VecVirtual) {
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
				VMASKMOVPS(simd.At(xp[s], off, 32*p), mk, xv)
				VORPS(Mem{Base: tp, Disp: 128 + 32*p}, xv, xv)
				VFMADD231PS(xv, wv, acc[j][s][p])
			}
		}
	}
}

// linearOut is one output of a group: sample s (in the group), output j (in
// the tile).
type linearOut struct{ s, j int }

// linearVec is the outputs one reduction finishes, by lane. If w > 0 they are
// one chunk of w outputs from ja for each sample: lane s*w + jj is output
// ja+jj of sample s, so one broadcast of bias[ja:ja+w] matches every lane.
type linearVec struct {
	outs  []linearOut
	w, ja int
}

// linearLayout splits the gs×r outputs of a group into reductions of at most
// lanes outputs: chunks of the widest power of two w outputs that fit with all
// gs samples, a reduction per chunk; chunks that fit together in one
// reduction share it (w = 0: finished one output at a time).
func linearLayout(lanes, gs, r int) []linearVec {
	var vecs []linearVec
	for ja := 0; ja < r; {
		w := 1
		for 2*w <= r-ja && 2*w*gs <= lanes {
			w *= 2
		}
		var outs []linearOut
		for s := 0; s < gs; s++ {
			for jj := 0; jj < w; jj++ {
				outs = append(outs, linearOut{s, ja + jj})
			}
		}
		if n := len(vecs); n > 0 && len(vecs[n-1].outs)+len(outs) <= lanes {
			vecs[n-1].outs = append(vecs[n-1].outs, outs...)
			vecs[n-1].w = 0
		} else {
			vecs = append(vecs, linearVec{outs: outs, w: w, ja: ja})
		}
		ja += w
	}
	return vecs
}

// epilogue reduces, biases, clamps and stores a group's outputs, up to a
// vector of them at a time.
func (g *linearGen) epilogue(acc [][][]reg.VecVirtual, s0 int) {
	i := g.isa
	Comment("y = Dot16's tree of s + bias[j]; y = lo > y ? lo : y; y[i*ldy+j] = y")
	lo := i.Vec()
	VBROADCASTSS(simd.Arg("lo"), lo)
	for _, v := range linearLayout(i.Lanes, len(acc[0]), len(acc)) {
		in := make([][]reg.VecVirtual, len(v.outs))
		for l, o := range v.outs {
			in[l] = acc[o.j][o.s]
		}
		z := g.reduce(in)
		g.finish(z, lo, v, s0)
	}
}

// reduce sums the 16 lanes of each accumulator in in (at most i.Lanes of
// them, one zmm or two ymm each) in Dot16's order, all at once, and returns
// the vector whose lane l holds the sum of in[l]: a transposing butterfly
// whose every level adds the two halves of each accumulator's remaining lanes
// (s[l]+s[l+8], then +4, +2, +1), moving half the accumulators' halves into
// the other half of each vector. With G = lanes/4, accumulator in[l] enters
// at slot G*(l%4) + l/4, which the butterfly transposes to lane l.
func (g *linearGen) reduce(in [][]reg.VecVirtual) reg.VecVirtual {
	i := g.isa
	nl := i.Lanes
	G := nl / 4
	cur := make([]reg.VecVirtual, nl)
	for l, a := range in {
		slot := G*(l%4) + l/4
		if i == avx512 {
			cur[slot] = a[0]
			continue
		}
		Commentf("t8[l] = s[l] + s[l+8] of output %d", l)
		t := YMM()
		VADDPS(a[1], a[0], t)
		cur[slot] = t
	}
	type level struct {
		what   string
		lo, hi uint8
		op     func(imm uint8, b, a, dst reg.VecVirtual)
	}
	shuf128 := func(imm uint8, b, a, dst reg.VecVirtual) { VSHUFF32X4(U8(imm), b, a, dst) }
	perm128 := func(imm uint8, b, a, dst reg.VecVirtual) { VPERM2F128(U8(imm), b, a, dst) }
	shufps := func(imm uint8, b, a, dst reg.VecVirtual) { VSHUFPS(U8(imm), b, a, dst) }
	var levels []level
	if i == avx512 {
		levels = append(levels, level{"t8[l] = s[l] + s[l+8]", 0x44, 0xee, shuf128}, level{"t4[l] = t8[l] + t8[l+4]", 0x88, 0xdd, shuf128})
	} else {
		levels = append(levels, level{"t4[l] = t8[l] + t8[l+4]", 0x20, 0x31, perm128})
	}
	levels = append(levels, level{"t2[l] = t4[l] + t4[l+2]", 0x44, 0xee, shufps}, level{"y = t2[0] + t2[1]", 0x88, 0xdd, shufps})
	for _, lv := range levels {
		Comment(lv.what + ", for two vectors at once")
		next := make([]reg.VecVirtual, len(cur)/2)
		for p := range next {
			a, b := cur[2*p], cur[2*p+1]
			switch {
			case a == nil && b == nil:
				continue
			case a == nil:
				a = b
			case b == nil:
				b = a
			}
			u, v := i.Vec(), i.Vec()
			lv.op(lv.lo, b, a, u)
			lv.op(lv.hi, b, a, v)
			VADDPS(v, u, u)
			next[p] = u
		}
		cur = next
	}
	return cur[0]
}

// finish adds the bias to the reduced outputs z of v (group samples from
// s0), clamps them at lo and stores them through buf to y.
func (g *linearGen) finish(z, lo reg.VecVirtual, v linearVec, s0 int) {
	i := g.isa
	bp := GP64()
	MOVQ(g.brow, bp)
	yp := GP64()
	MOVQ(g.yrow, yp)
	ldy4 := GP64()
	MOVQ(g.ldy4, ldy4)
	for range s0 {
		ADDQ(ldy4, yp)
	}
	if v.w == 0 {
		Comment("one output at a time: y[i][j] = max(lo, z[l] + bias[j])")
		VMOVUPS(z, g.buf)
		last := 0
		for _, o := range v.outs {
			last = max(last, o.s)
		}
		for s := 0; s <= last; s++ {
			for l, o := range v.outs {
				if o.s != s {
					continue
				}
				y := XMM()
				VMOVSS(g.buf.Offset(4*l), y)
				VADDSS(Mem{Base: bp, Disp: 4 * o.j}, y, y)
				VMAXSS(y, lo.AsX(), y)
				VMOVSS(y, Mem{Base: yp, Disp: 4 * o.j})
			}
			if s < last {
				ADDQ(ldy4, yp)
			}
		}
		return
	}
	Commentf("z[s*%d+jj] = max(lo, z[s*%d+jj] + bias[%d+jj]); y[i][%d:%d] = z[s*%d:][:%d]", v.w, v.w, v.ja, v.ja, v.ja+v.w, v.w, v.w)
	b := i.Vec()
	bm := Mem{Base: bp, Disp: 4 * v.ja}
	switch {
	case v.w == 1:
		VBROADCASTSS(bm, b)
	case v.w == 2:
		VBROADCASTSD(bm, b)
	case v.w == 4 && i == avx512:
		VBROADCASTF32X4(bm, b)
	case v.w == 4:
		VBROADCASTF128(bm, b)
	case v.w == 8 && i == avx512:
		VBROADCASTF64X4(bm, b)
	default:
		VMOVUPS(bm, b)
	}
	VADDPS(b, z, z)
	VMAXPS(z, lo, z)
	VMOVUPS(z, g.buf)
	nsamp := len(v.outs) / v.w
	for s := 0; s < nsamp; s++ {
		src, dst := g.buf.Offset(4*s*v.w), Mem{Base: yp, Disp: 4 * v.ja}
		switch v.w {
		case 1:
			t := GP32()
			MOVL(src, t)
			MOVL(t, dst)
		case 2:
			t := GP64()
			MOVQ(src, t)
			MOVQ(t, dst)
		case 4:
			t := XMM()
			VMOVUPS(src, t)
			VMOVUPS(t, dst)
		case 8:
			t := YMM()
			VMOVUPS(src, t)
			VMOVUPS(t, dst)
		default:
			t := ZMM()
			VMOVUPS(src, t)
			VMOVUPS(t, dst)
		}
		if s+1 < nsamp {
			ADDQ(ldy4, yp)
		}
	}
}
