package main

import (
	"fmt"
	"github.com/cnngen/cnngen/asm/internal/simd"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// argKernel is a MaxPoolNHWCArg kernel: one output pixel at a time, its
// channels in blocks of up to block vectors, each tap of the window folded in
// the contract's order into a running maximum and a running tap offset.
type argKernel struct {
	isa   *isa
	block int // vectors per channel block of the fast fold
	exact int // vectors per channel block of the exact fold
}

func (k argKernel) name() string {
	return fmt.Sprintf("maxPoolNHWCArg_1x%d_%s", k.block*k.isa.Lanes, k.isa.Name)
}

// argGen is the state of one MaxPoolNHWCArg kernel while it is emitted.
type argGen struct {
	argKernel
	name       string
	tail       tail
	sc         reg.GPVirtual // sc in bytes
	sy         Mem           // sy in bytes
	sx, so, sa Mem           // sx, so, sa in bytes
	nfull      Mem           // c / lanes
	nrest      Mem           // c mod lanes
	base       Mem           // base[p] as an int32 (low half of the slot)
	roww       Mem           // rowW as an int32
	jump       Mem           // rowW - kw + 1 as an int32: last tap of a row to the next row's first
	np         Mem           // pixels left
	one        reg.VecVirtual
}

// The constants of the Arg kernels: -Inf and 1 as 32-bit words, broadcast
// into every lane.
var argNegInf, argOne Mem

func argTables() {
	argNegInf = GLOBL("poolArgNegInf", RODATA|NOPTR)
	DATA(0, U32(0xff800000))
	argOne = GLOBL("poolArgOne", RODATA|NOPTR)
	DATA(0, U32(1))
}

// maxPoolArg emits MaxPoolNHWCArg for kernel k:
//
//	for p < np:
//	    for each block of channels ch (block, block/2, ..., 1 vectors, then a masked one):
//	        o := in[p*sx+ch]; a := 0    // a: the tap offset ky*rowW + kx
//	        for each later tap (ky, kx) in row-major order {
//	            v := in[p*sx+ky*sy+kx*sc+ch]
//	            if v > o || v != v { o = v; a = ky*rowW + kx }
//	        }
//	        out[p*so+ch] = o; arg[p*sa+ch] = base[p] + a
//
// This is the contract's single chain, tap by tap, started at the first tap
// (f(-Inf, v) = v, and an all -Inf window keeps its first tap). int32
// additions wrap as the Go twin's int32(base[p] + ky*rowW + kx) does.
//
// The fast fold (fastBlock) assumes no tap is a NaN: then the step is
// m := v > acc; acc = VMAXPS(v, acc); idx = m ? tap : idx, and when the tap
// offsets grow along the window (kw ≤ rowW, no int32 overflow) the select is
// idx = max(idx, m & tap), since tap is larger than every offset before it.
// A block whose taps hold a NaN is redone with the exact fold (exactBlock);
// a call whose offsets do not grow runs the exact fold on every block (only
// AVX2's max needs them to grow; AVX-512's masked move is a true select, but
// both kernels share one plan).
func maxPoolArg(k argKernel) {
	g := &argGen{argKernel: k, name: k.name()}
	TEXT(g.name, NOSPLIT, "func(out *float32, so int, arg *int32, sa int, in *float32, sx, sy, sc, c, kh, kw, np, base0, baseStep, rowW int)")
	Pragma("noescape")
	sel := "VCMPPS into an opmask + VMAXPS + masked VMOVDQA32"
	exact := "VCMPPS into opmasks + masked VMOVAPS / VMOVDQA32"
	if k.isa == avx2 {
		sel = "VCMPPS + VMAXPS + VPAND + VPMAXUD"
		exact = "VCMPPS + VBLENDVPS on both"
	}
	Doc(fmt.Sprintf("%s is MaxPoolNHWCArg on %s: one output pixel at a time, its channels", g.name, k.isa.Name),
		fmt.Sprintf("in blocks of %s %s and a masked one; every tap selects value and offset with %s,", blockSizes(k.block), k.isa.Kind, sel),
		fmt.Sprintf("and a block with a NaN tap (or every block, if the offsets ky*rowW+kx do not grow along the window) is redone with %s.", exact),
		"Strides are in float32s (int32s for sa), and np, c, kh, kw ≥ 1.")

	Comment("Byte strides; c = nfull*lanes + nrest")
	g.so, g.sa, g.sx, g.sy = simd.Local4("so"), simd.Local4("sa"), simd.Local4("sx"), simd.Local4("sy")
	g.sc = simd.Load4("sc")
	c := simd.LoadGP("c")
	t := GP64()
	MOVQ(c, t)
	ANDQ(U8(k.isa.Lanes-1), t)
	g.nrest = AllocLocal(8)
	MOVQ(t, g.nrest)
	SHRQ(U8(k.isa.Log2), c)
	g.nfull = AllocLocal(8)
	MOVQ(c, g.nfull)
	g.tail = setupTail(k.isa, t)

	Comment("one := 1 in every lane; base = base0; rowW as int32")
	g.one = k.isa.Vec()
	VPBROADCASTD(argOne, g.one)
	g.base = AllocLocal(8)
	MOVQ(simd.LoadGP("base0"), g.base)
	g.roww = AllocLocal(8)
	rw := simd.LoadGP("rowW")
	MOVQ(rw, g.roww)
	g.np = AllocLocal(8)
	MOVQ(simd.LoadGP("np"), g.np)

	Comment("The fast fold needs tap offsets ky*rowW + kx that grow along the window",
		"and fit in int32: kw ≤ rowW and (kh-1)*rowW + kw-1 < 2^31; else the exact fold")
	outp, argp, inp := simd.LoadGP("out"), simd.LoadGP("arg"), simd.LoadGP("in")
	kh, kw, lim := simd.LoadGP("kh"), simd.LoadGP("kw"), GP64()
	MOVQ(U32(0x7fffffff), lim)
	CMPQ(rw, kw)
	JL(LabelRef(g.name + "_exact"))
	CMPQ(rw, lim)
	JG(LabelRef(g.name + "_exact"))
	DECQ(kh)
	CMPQ(kh, lim)
	JG(LabelRef(g.name + "_exact"))
	IMULQ(rw, kh)
	ADDQ(kw, kh)
	DECQ(kh)
	CMPQ(kh, lim)
	JG(LabelRef(g.name + "_exact"))
	Comment("jump = rowW - kw + 1")
	SUBQ(kw, rw)
	INCQ(rw)
	g.jump = AllocLocal(8)
	MOVQ(rw, g.jump)
	Comment("One copy of the pixel loop per kernel width: kw = 2, kw = 3, any kw; and the exact fold")
	CMPQ(kw, U8(2))
	JEQ(LabelRef(g.name + "_kw2"))
	CMPQ(kw, U8(3))
	JEQ(LabelRef(g.name + "_kw3"))
	for _, w := range []int{0, 2, 3, -1} {
		g.pixels(w, outp, argp, inp)
	}
	Label(g.name + "_done")
	simd.Ret()
}

// pixels emits the pixel loop for kernel width kw with the fast fold (0: any
// kw, read at run time), or with the exact fold (kw -1).
func (g *argGen) pixels(kw int, outp, argp, inp reg.GPVirtual) {
	pfx := fmt.Sprintf("%s_kw%d", g.name, kw)
	block := g.block
	switch kw {
	case 0:
		pfx = g.name + "_kwN"
	case -1:
		pfx = g.name + "_exact"
		block = g.exact
	}
	Label(pfx)
	Label(pfx + "_pixel")
	Comment("for each pixel: o, a, x point at channel ch of out[p*so:], arg[p*sa:], in[p*sx:]")
	o, a, x := GP64(), GP64(), GP64()
	MOVQ(outp, o)
	MOVQ(argp, a)
	MOVQ(inp, x)
	n := GP64()
	MOVQ(g.nfull, n)
	vb := g.isa.VBytes()
	emit := func(B int, masked bool, lbl string) {
		if kw < 0 {
			g.exactBlock(B, masked, x, o, a, 0, lbl)
			return
		}
		g.fastBlock(kw, B, masked, x, o, a, lbl)
	}
	for B := block; B >= 1; B /= 2 {
		lbl := fmt.Sprintf("%s_b%d", pfx, B)
		next := fmt.Sprintf("%s_b%d", pfx, B/2)
		if B == 1 {
			next = pfx + "_tail"
		}
		Label(lbl)
		switch B {
		case block:
			Commentf("blocks of %d vectors while at least %d are left", B, B)
		case 1:
			Comment("a vector if one is left")
		default:
			Commentf("a block of %d vectors if at least %d are left", B, B)
		}
		CMPQ(n, U8(B))
		JB(LabelRef(next))
		emit(B, false, lbl)
		ADDQ(U32(B*vb), x)
		ADDQ(U32(B*vb), o)
		ADDQ(U32(B*vb), a)
		SUBQ(U8(B), n)
		if B == block {
			JMP(LabelRef(lbl))
		}
	}
	Label(pfx + "_tail")
	Comment("the last c mod lanes channels, masked")
	CMPQ(g.nrest, U8(0))
	JEQ(LabelRef(pfx + "_next"))
	emit(1, true, pfx+"_t")
	Label(pfx + "_next")
	Comment("out += so; arg += sa; in += sx; base += baseStep")
	ADDQ(g.so, outp)
	ADDQ(g.sa, argp)
	ADDQ(g.sx, inp)
	bs := simd.LoadGP("baseStep")
	ADDQ(bs, g.base)
	DECQ(g.np)
	JNZ(LabelRef(pfx + "_pixel"))
	JMP(LabelRef(g.name + "_done"))
}

// fastBlock emits one block of B vectors of channels at x (input), o (values)
// and a (offsets), masked to the tail if masked, for kernel width kw (0: the
// kw of the call):
//
//	acc := x[0]; idx := 0; tap := 0
//	for each later tap (ky, kx) { tap = ky*rowW + kx; acc, idx = step(acc, idx, x[ky*sy+kx*sc:], tap) }
//	if no tap was a NaN { o[:B*lanes] = acc; a[:B*lanes] = idx + base }
//	else { the exact fold (exactBlock) }
//
// where step is the contract's step for NaN-free taps (fastStep). The NaN
// test is VCMPPS unordered on the taps in pairs.
func (g *argGen) fastBlock(kw, B int, masked bool, x, o, a reg.GPVirtual, lbl string) {
	var mk reg.VecVirtual
	if masked {
		mk = g.tail.mask()
	}
	vb := g.isa.VBytes()
	load := func(m Mem) reg.VecVirtual {
		v := g.isa.Vec()
		if masked {
			g.tail.load(m, mk, v)
		} else {
			VMOVUPS(m, v)
		}
		return v
	}
	Comment("acc := tap (0, 0); idx := 0; tap := 0; no NaN seen")
	ns := newArgNaNs(g.isa, g.tail)
	acc, idx := make([]reg.VecVirtual, B), g.isa.Vecs(B)
	tap := g.isa.Vec()
	g.zero(tap)
	r := GP64()
	MOVQ(x, r)
	for b := range B {
		acc[b] = load(Mem{Base: r, Disp: b * vb})
		ns.add(acc[b])
		g.zero(idx[b])
	}
	first := true // the next step is the block's first, in straight-line code: idx is 0
	taps := func(m Mem) {
		for b := range B {
			m.Disp = b * vb
			v := load(m)
			ns.add(v)
			g.fastStep(acc[b], idx[b], v, tap, first)
		}
		first = false
	}
	row := func(row0 bool, lbl string) {
		if kw > 0 {
			for kx := range kw {
				if kx == 0 && row0 {
					continue
				}
				if kx > 0 {
					VPADDD(g.one, tap, tap)
				}
				m := Mem{Base: r}
				if kx > 0 {
					m = Mem{Base: r, Index: g.sc, Scale: uint8(kx)}
				}
				taps(m)
			}
			ns.flush()
			return
		}
		if !row0 {
			taps(Mem{Base: r})
		}
		ns.flush()
		first = false // the kx loop runs its steps more than once
		q, cols := GP64(), GP64()
		MOVQ(r, q)
		MOVQ(simd.Arg("kw"), cols)
		DECQ(cols)
		JZ(LabelRef(lbl + "_kxdone"))
		Label(lbl + "_kx")
		Comment("for kx := 1; kx < kw; kx++ { tap += 1; q += sc; fold q[0] }")
		VPADDD(g.one, tap, tap)
		ADDQ(g.sc, q)
		taps(Mem{Base: q})
		ns.flush()
		DECQ(cols)
		JNZ(LabelRef(lbl + "_kx"))
		Label(lbl + "_kxdone")
	}
	Comment("row 0 after its first tap: for kx := 1; kx < kw; kx++ { tap += 1; acc, idx = step(acc, idx, v, tap) }")
	row(true, lbl+"_r0")
	rows := GP64()
	MOVQ(simd.Arg("kh"), rows)
	DECQ(rows)
	JZ(LabelRef(lbl + "_store"))
	Label(lbl + "_rows")
	Comment("for ky := 1; ky < kh; ky++ { r += sy; tap += rowW - kw + 1; the row's kw taps }")
	ADDQ(g.sy, r)
	j := g.isa.Vec()
	VPBROADCASTD(g.jump, j)
	VPADDD(j, tap, tap)
	row(false, lbl+"_r")
	DECQ(rows)
	JNZ(LabelRef(lbl + "_rows"))

	Label(lbl + "_store")
	Comment("if a tap was a NaN, the fast step may differ from the contract's: redo the block")
	ns.jumpIfNaN(lbl + "_nan")
	Comment("out[ch] = acc; arg[ch] = idx + base[p]")
	bv := g.isa.Vec()
	VPBROADCASTD(g.base, bv)
	for b := range B {
		VPADDD(bv, idx[b], idx[b])
		mo, ma := Mem{Base: o, Disp: b * vb}, Mem{Base: a, Disp: b * vb}
		if masked {
			g.tail.store(acc[b], mk, mo)
			g.tail.store(idx[b], mk, ma)
		} else {
			VMOVUPS(acc[b], mo)
			VMOVUPS(idx[b], ma) // the int32 bits, stored as they are
		}
	}
	JMP(LabelRef(lbl + "_end"))
	Label(lbl + "_nan")
	Comment("a tap of the block is a NaN: the exact fold")
	for s := 0; s < B; s += g.exact {
		g.exactBlock(min(g.exact, B-s), masked, x, o, a, s*vb, fmt.Sprintf("%s_x%d", lbl, s))
	}
	Label(lbl + "_end")
}

// fastStep emits the contract's step for one vector of channels whose taps
// are not NaNs, where tap is larger than every offset folded before it:
//
//	if v > acc { acc = v; idx = tap }
//
// as m := v > acc (VCMPPS GT_OQ); acc = VMAXPS(v, acc) (v if v > acc, else
// acc: the first of equal values stays, +0 and -0 included); idx = tap where
// m is set: a masked VMOVDQA32 (AVX-512), or VPMAXUD(idx, m & tap) (AVX2),
// just m & tap if first (idx is still 0).
func (g *argGen) fastStep(acc, idx, v, tap reg.VecVirtual, first bool) {
	if g.isa == avx512 {
		gt := K()
		VCMPPS(U8(0x1e), acc, v, gt) // v > acc, ordered
		VMAXPS(acc, v, acc)
		VMOVDQA32(tap, gt, idx)
		return
	}
	gt := g.isa.Vec()
	VCMPPS(U8(0x1e), acc, v, gt) // v > acc, ordered
	VMAXPS(acc, v, acc)
	if first {
		VPAND(tap, gt, idx)
		return
	}
	VPAND(tap, gt, gt)
	VPMAXUD(gt, idx, idx)
}

// argNaNs notes whether any tap of a block is a NaN: VCMPPS unordered on the
// taps in pairs (a pair is unordered if either is a NaN), or-ed into a
// vector (AVX2), or as VCMPPS ordered into two opmasks that start all ones
// and are and-ed by each pair (AVX-512: a compare with a write mask, one
// instruction per pair; two chains halve the latency).
type argNaNs struct {
	isa     *isa
	v       reg.VecVirtual       // avx2: all ones in a lane that saw a NaN
	k       [2]reg.OpmaskVirtual // avx512: bit clear in a lane that saw a NaN
	next    int                  // avx512: the chain of the next pair
	pending reg.VecVirtual       // a tap waiting for its pair
}

// newArgNaNs starts a block with no NaN seen. On AVX-512 the all-ones masks
// are KXNORW of the tail opmask with itself (avo would take KXNORW k, k, k
// as a read of k).
func newArgNaNs(i *isa, t tail) *argNaNs {
	n := &argNaNs{isa: i}
	if i == avx512 {
		for c := range n.k {
			n.k[c] = K()
			KXNORW(t.k, t.k, n.k[c])
		}
		return n
	}
	n.v = i.Vec()
	VPXOR(n.v, n.v, n.v)
	return n
}

// add notes tap v, checking it with the pending tap, or making it pending.
func (n *argNaNs) add(v reg.VecVirtual) {
	if n.pending == nil {
		n.pending = v
		return
	}
	n.pair(n.pending, v)
	n.pending = nil
}

// flush checks the pending tap alone: before a label, where the straight
// line of pairs ends.
func (n *argNaNs) flush() {
	if n.pending != nil {
		n.pair(n.pending, n.pending)
		n.pending = nil
	}
}

func (n *argNaNs) pair(a, b reg.VecVirtual) {
	if n.isa == avx512 {
		k := n.k[n.next]
		n.next ^= 1
		VCMPPS(U8(7), a, b, k, k) // k &= ordered(a, b)
		return
	}
	m := n.isa.Vec()
	VCMPPS(U8(3), a, b, m) // unordered(a, b)
	VORPS(m, n.v, n.v)
}

// jumpIfNaN jumps to lbl if a tap was a NaN.
func (n *argNaNs) jumpIfNaN(lbl string) {
	n.flush()
	if n.isa == avx512 {
		KANDW(n.k[1], n.k[0], n.k[0])
		KORTESTW(n.k[0], n.k[0]) // CF iff all ones: no NaN
		JCC(LabelRef(lbl))
		return
	}
	VTESTPS(n.v, n.v)
	JNZ(LabelRef(lbl))
}

// exactBlock emits one block of B vectors of channels at x+disp (input),
// o+disp (values) and a+disp (offsets), masked to the tail if masked, with
// the contract's step on every tap:
//
//	acc := -Inf; idx := 0; rowIdx := 0
//	for ky < kh {
//	    tap := rowIdx
//	    for kx < kw { acc, idx = f(acc, idx, x[ky*sy+kx*sc:], tap); tap += 1 }
//	    rowIdx += rowW
//	}
//	o[:B*lanes] = acc; a[:B*lanes] = idx + base
func (g *argGen) exactBlock(B int, masked bool, x, o, a reg.GPVirtual, disp int, lbl string) {
	var mk reg.VecVirtual
	if masked {
		mk = g.tail.mask()
	}
	vb := g.isa.VBytes()
	Comment("acc := -Inf; idx := 0; rowIdx := 0")
	acc, idx := g.isa.Vecs(B), g.isa.Vecs(B)
	for b := range B {
		VPBROADCASTD(argNegInf, acc[b])
		g.zero(idx[b])
	}
	rowIdx := g.isa.Vec()
	g.zero(rowIdx)
	r, rows := GP64(), GP64()
	MOVQ(x, r)
	MOVQ(simd.Arg("kh"), rows)
	Label(lbl + "_row")
	Comment("for ky < kh: tap := rowIdx; q := row ky")
	tap := g.isa.Vec()
	g.mov(rowIdx, tap)
	q, cols := GP64(), GP64()
	MOVQ(r, q)
	MOVQ(simd.Arg("kw"), cols)
	Label(lbl + "_col")
	Comment("for kx < kw: v := q[kx*sc:]; if v > acc || v != v { acc = v; idx = tap }")
	for b := range B {
		v := g.isa.Vec()
		m := Mem{Base: q, Disp: disp + b*vb}
		if masked {
			g.tail.load(m, mk, v)
		} else {
			VMOVUPS(m, v)
		}
		g.fold(acc[b], idx[b], v, tap)
	}
	Comment("tap += 1; q += sc")
	VPADDD(g.one, tap, tap)
	ADDQ(g.sc, q)
	DECQ(cols)
	JNZ(LabelRef(lbl + "_col"))
	Comment("rowIdx += rowW; r += sy")
	rw := g.isa.Vec()
	VPBROADCASTD(g.roww, rw)
	VPADDD(rw, rowIdx, rowIdx)
	ADDQ(g.sy, r)
	DECQ(rows)
	JNZ(LabelRef(lbl + "_row"))

	Comment("out[ch] = acc; arg[ch] = idx + base[p]")
	bv := g.isa.Vec()
	VPBROADCASTD(g.base, bv)
	for b := range B {
		VPADDD(bv, idx[b], idx[b])
		mo, ma := Mem{Base: o, Disp: disp + b*vb}, Mem{Base: a, Disp: disp + b*vb}
		if masked {
			g.tail.store(acc[b], mk, mo)
			g.tail.store(idx[b], mk, ma)
		} else {
			VMOVUPS(acc[b], mo)
			VMOVUPS(idx[b], ma) // the int32 bits, stored as they are
		}
	}
}

// zero clears v.
func (g *argGen) zero(v reg.VecVirtual) {
	if g.isa == avx512 {
		VPXORD(v, v, v)
		return
	}
	VPXOR(v, v, v)
}

// mov copies src to dst.
func (g *argGen) mov(src, dst reg.VecVirtual) {
	if g.isa == avx512 {
		VMOVDQA32(src, dst)
		return
	}
	VMOVDQA(src, dst)
}

// fold emits the contract's step for one vector of channels:
//
//	if v > acc || v != v { acc = v; idx = tap }
//
// The mask is VCMPPS GT_OQ (v > acc, false if either is a NaN) or-ed with
// VCMPPS UNORD_Q (v, v) (v is a NaN); where it is set, v and tap replace acc
// and idx: masked moves on AVX-512, VBLENDVPS on AVX2. A NaN acc with a
// number v stays, as in the contract.
func (g *argGen) fold(acc, idx, v, tap reg.VecVirtual) {
	if g.isa == avx512 {
		gt, un := K(), K()
		VCMPPS(U8(0x1e), acc, v, gt) // v > acc, ordered
		VCMPPS(U8(3), v, v, un)      // v != v
		KORW(un, gt, gt)
		VMOVAPS(v, gt, acc)
		VMOVDQA32(tap, gt, idx)
		return
	}
	gt, un := g.isa.Vec(), g.isa.Vec()
	VCMPPS(U8(0x1e), acc, v, gt) // v > acc, ordered
	VCMPPS(U8(3), v, v, un)      // v != v
	VORPS(un, gt, gt)
	VBLENDVPS(gt, v, acc, acc)
	VBLENDVPS(gt, tap, idx, idx)
}
