package main

import (
	"fmt"
	"github.com/cnngen/cnngen/asm/internal/simd"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// poolKernel is a MaxPoolNHWC kernel: one output pixel at a time, its
// channels in blocks of up to block vectors.
type poolKernel struct {
	isa      *isa
	block    int  // vectors per channel block
	nanCheck bool // VMAXPS, and f only for blocks with a NaN tap
}

func (k poolKernel) name() string {
	return fmt.Sprintf("maxPoolNHWC_1x%d_%s", k.block*k.isa.Lanes, k.isa.Name)
}

// poolGen is the state of one kernel while it is emitted: the registers that
// live through the whole function and the stack slots of the rest.
type poolGen struct {
	poolKernel
	name   string
	nanTab reg.VecVirtual // avx512: the VFIXUPIMMPS table, 0x11 in every lane
	tail   tail
	sc     reg.GPVirtual // sc in bytes
	sy     Mem           // sy in bytes
	sx, so Mem           // sx, so in bytes
	nfull  Mem           // c / lanes: the whole vectors of a pixel
	nrest  Mem           // c mod lanes: the channels of the masked vector
}

// maxPool emits MaxPoolNHWC for kernel k:
//
//	for p < np:
//	    for each block of channels ch (4, 2, 1 vectors, then a masked one):
//	        acc := rowmax(in[p*sx+ch:])
//	        for ky := 1; ky < kh; ky++ { acc = f(acc, rowmax(in[p*sx+ky*sy+ch:])) }
//	        out[p*so+ch] = acc
//
// where rowmax(r) folds r[0], r[sc], ..., r[(kw-1)*sc] in order with f (see
// fold). f is associative, so this row-wise tree gives the bits of the
// contract's single chain over all kh*kw taps.
func maxPool(k poolKernel) {
	g := &poolGen{poolKernel: k, name: k.name()}
	TEXT(g.name, NOSPLIT, "func(out *float32, so int, in *float32, sx, sy, sc, c, kh, kw, np int)")
	Pragma("noescape")
	how := "every tap folded with VMAXPS + VFIXUPIMMPS"
	if k.isa == avx2 {
		how = "every tap folded with VMAXPS + VCMPPS + VBLENDVPS"
	}
	if k.nanCheck {
		how = "plain VMAXPS, a block rerun with " + strings.TrimPrefix(how, "every tap folded with ") + " if a tap is a NaN"
	}
	Doc(fmt.Sprintf("%s is MaxPoolNHWC on %s: one output pixel at a time, its channels in", g.name, k.isa.Name),
		fmt.Sprintf("blocks of %s %s and a masked one; %s.", blockSizes(k.block), k.isa.Kind, how),
		"Strides are in float32s, and np, c, kh, kw ≥ 1.")

	Comment("Byte strides; c = nfull*lanes + nrest")
	g.so, g.sx, g.sy = simd.Local4("so"), simd.Local4("sx"), simd.Local4("sy")
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
	if k.isa == avx512 {
		Comment("VFIXUPIMMPS table: response 1 (the source) for a QNaN or SNaN source, 0 (keep) otherwise")
		tab := GP32()
		MOVL(U32(0x11), tab)
		g.nanTab = ZMM()
		VPBROADCASTD(tab, g.nanTab)
	}

	outp, inp, np := simd.LoadGP("out"), simd.LoadGP("in"), simd.LoadGP("np")
	Comment("One copy of the pixel loop per kernel width: kw = 2, kw = 3, any kw")
	kw := simd.LoadGP("kw")
	CMPQ(kw, U8(2))
	JEQ(LabelRef(g.name + "_kw2"))
	CMPQ(kw, U8(3))
	JEQ(LabelRef(g.name + "_kw3"))
	for _, w := range []int{0, 2, 3} {
		g.pixels(w, outp, inp, np)
	}
	Label(g.name + "_done")
	simd.Ret()
}

// blockSizes lists the block sizes of a kernel: "4, 2 and 1".
func blockSizes(block int) string {
	var s []string
	for B := block; B >= 1; B /= 2 {
		s = append(s, fmt.Sprint(B))
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// pixels emits the pixel loop for kernel width kw (0: any, read at run time).
func (g *poolGen) pixels(kw int, outp, inp, np reg.GPVirtual) {
	pfx := fmt.Sprintf("%s_kw%d", g.name, kw)
	if kw == 0 {
		pfx = g.name + "_kwN"
	}
	Label(pfx)
	Label(pfx + "_pixel")
	Comment("for each pixel: o, x point at channel ch of out[p*so:], in[p*sx:]")
	o, x := GP64(), GP64()
	MOVQ(outp, o)
	MOVQ(inp, x)
	n := GP64()
	MOVQ(g.nfull, n)
	vb := g.isa.VBytes()
	for B := g.block; B >= 1; B /= 2 {
		lbl := fmt.Sprintf("%s_b%d", pfx, B)
		next := fmt.Sprintf("%s_b%d", pfx, B/2)
		if B == 1 {
			next = pfx + "_tail"
		}
		Label(lbl)
		switch B {
		case g.block:
			Commentf("blocks of %d vectors while at least %d are left", B, B)
		case 1:
			Comment("a vector if one is left")
		default:
			Commentf("a block of %d vectors if at least %d are left", B, B)
		}
		CMPQ(n, U8(B))
		JB(LabelRef(next))
		g.blockOf(kw, B, false, x, o, fmt.Sprintf("%s_b%d", pfx, B))
		ADDQ(U32(B*vb), x)
		ADDQ(U32(B*vb), o)
		SUBQ(U8(B), n)
		if B == g.block {
			JMP(LabelRef(lbl))
		}
	}
	Label(pfx + "_tail")
	Comment("the last c mod lanes channels, masked")
	CMPQ(g.nrest, U8(0))
	JEQ(LabelRef(pfx + "_next"))
	g.blockOf(kw, 1, true, x, o, pfx+"_t")
	Label(pfx + "_next")
	Comment("out += so; in += sx")
	ADDQ(g.so, outp)
	ADDQ(g.sx, inp)
	DECQ(np)
	JNZ(LabelRef(pfx + "_pixel"))
	JMP(LabelRef(g.name + "_done"))
}

// blockOf emits one block of B vectors of channels at x (input) and o
// (output), masked to the tail if masked:
//
//	acc := rowmax(x)
//	for ky := 1; ky < kh; ky++ { acc = f(acc, rowmax(x + ky*sy)) }
//	o[:B*lanes] = acc
//
// With nanCheck, an unmasked block first runs with plain VMAXPS, which is f
// as long as no tap is a NaN, and notes the lanes where a tap is one; only if
// there is such a lane does it run again with f.
func (g *poolGen) blockOf(kw, B int, masked bool, x, o reg.GPVirtual, lbl string) {
	if !g.nanCheck || masked {
		g.reduce(kw, B, masked, x, o, lbl, nil)
		return
	}
	ns := &nanSet{isa: g.isa}
	g.reduce(kw, B, false, x, o, lbl+"_f", ns)
	Label(lbl + "_nan")
	Comment("a tap of the block is a NaN: again with f")
	g.reduce(kw, B, false, x, o, lbl, nil)
	Label(lbl + "_end")
}

// reduce emits the block's reduction and store: with f (ns nil), or with
// VMAXPS, noting NaN taps in ns and jumping to the label lbl_nan (before
// storing) if there is one, else to lbl_end after the store.
func (g *poolGen) reduce(kw, B int, masked bool, x, o reg.GPVirtual, lbl string, ns *nanSet) {
	var mk reg.VecVirtual
	if masked {
		mk = g.tail.mask()
	}
	Commentf("acc := rowmax(row 0)")
	r := GP64()
	MOVQ(x, r)
	acc := g.rowmax(kw, B, masked, mk, r, lbl+"_r0", ns)
	rows := GP64()
	MOVQ(simd.Arg("kh"), rows)
	DECQ(rows)
	JZ(LabelRef(lbl + "_store"))
	Label(lbl + "_rows")
	Comment("for ky := 1; ky < kh; ky++ { acc = f(acc, rowmax(row ky)) }")
	ADDQ(g.sy, r)
	row := g.rowmax(kw, B, masked, mk, r, lbl+"_r", ns)
	for b := range B {
		g.combine(acc[b], acc[b], row[b], ns)
	}
	DECQ(rows)
	JNZ(LabelRef(lbl + "_rows"))
	Label(lbl + "_store")
	if ns != nil {
		Comment("if a tap was a NaN, VMAXPS may differ from f: redo the block")
		ns.test()
		JNZ(LabelRef(strings.TrimSuffix(lbl, "_f") + "_nan"))
	}
	for b := range B {
		m := Mem{Base: o, Disp: b * g.isa.VBytes()}
		if masked {
			g.tail.store(acc[b], mk, m)
		} else {
			VMOVUPS(acc[b], m)
		}
	}
	if ns != nil {
		JMP(LabelRef(strings.TrimSuffix(lbl, "_f") + "_end"))
	}
}

// rowmax emits the fold of the kw taps of the kernel row at r (B vectors,
// masked to the tail if masked) into new registers:
//
//	t := r[0]; for kx := 1; kx < kw; kx++ { t = f(t, r[kx*sc]) }
//
// kw 2 and 3 are unrolled; kw 0 loops over the kw of the call. With f (ns
// nil) and unmasked, the first tap is a memory operand of VMAXPS; with ns,
// every tap is loaded and checked for NaN, in pairs.
func (g *poolGen) rowmax(kw, B int, masked bool, mk reg.VecVirtual, r reg.GPVirtual, lbl string, ns *nanSet) []reg.VecVirtual {
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
	t := make([]reg.VecVirtual, B)
	if kw == 0 {
		for b := range B {
			t[b] = load(Mem{Base: r, Disp: b * vb})
			ns.add(t[b], t[b])
		}
		q, n := GP64(), GP64()
		MOVQ(r, q)
		MOVQ(simd.Arg("kw"), n)
		DECQ(n)
		JZ(LabelRef(lbl + "_kxdone"))
		Label(lbl + "_kx")
		Comment("t = f(t, r[kx*sc])")
		ADDQ(g.sc, q)
		for b := range B {
			v := load(Mem{Base: q, Disp: b * vb})
			ns.add(v, v)
			g.combine(t[b], t[b], v, ns)
		}
		DECQ(n)
		JNZ(LabelRef(lbl + "_kx"))
		Label(lbl + "_kxdone")
		return t
	}
	Commentf("t = f(r[0], r[sc])")
	if kw == 3 {
		Comment("t = f(t, r[2*sc])")
	}
	for b := range B {
		t[b] = g.isa.Vec()
		first := Op(Mem{Base: r, Disp: b * vb})
		if masked || ns != nil {
			first = load(first.(Mem))
		}
		v := load(Mem{Base: r, Index: g.sc, Scale: 1, Disp: b * vb})
		ns.add(first, v)
		g.combine(t[b], first, v, ns)
		if kw == 3 {
			v := load(Mem{Base: r, Index: g.sc, Scale: 2, Disp: b * vb})
			ns.add(v, v)
			g.combine(t[b], t[b], v, ns)
		}
	}
	return t
}

// combine emits acc = f(a, v) (fold), or with ns, where no tap is a NaN,
// acc = VMAXPS v, a.
func (g *poolGen) combine(acc reg.VecVirtual, a Op, v reg.VecVirtual, ns *nanSet) {
	if ns != nil {
		VMAXPS(a, v, acc)
		return
	}
	g.fold(acc, a, v)
}

// nanSet collects the lanes of a block where some tap is a NaN: an opmask
// (AVX-512) or a vector of all-ones lanes (AVX2), OR-ed over VCMPPS
// unordered of the taps (in pairs: a lane is unordered if either is a NaN).
// Its methods do nothing on a nil nanSet.
type nanSet struct {
	isa *isa
	set bool
	k   reg.OpmaskVirtual
	v   reg.VecVirtual
}

// add notes the lanes where a or b (registers) is a NaN.
func (n *nanSet) add(a, b Op) {
	if n == nil {
		return
	}
	if n.isa == avx512 {
		k := K()
		VCMPPS(U8(3), a, b, k)
		if !n.set {
			n.k, n.set = k, true
		} else {
			KORW(k, n.k, n.k)
		}
		return
	}
	m := n.isa.Vec()
	VCMPPS(U8(3), a, b, m)
	if !n.set {
		n.v, n.set = m, true
	} else {
		VORPS(m, n.v, n.v)
	}
}

// test sets ZF iff no lane was noted.
func (n *nanSet) test() {
	if n.isa == avx512 {
		KORTESTW(n.k, n.k)
		return
	}
	VTESTPS(n.v, n.v)
}

// fold emits acc = f(a, v), where a (a register or a memory operand) holds
// the fold of the taps before v:
//
//	f(a, v) = v if v > a || v != v, else a
//
// VMAXPS v, a (Intel order) returns v if v > a and a otherwise, also when
// either is a NaN and when they are equal (keeping the first of +0 and -0, as
// f does); the one case left, a NaN v, is patched in: VFIXUPIMMPS with table
// 0x11 (AVX-512) or VCMPPS unordered + VBLENDVPS (AVX2) replaces the result
// by v in exactly the lanes where v is a NaN, payload and all. A NaN a with a
// number v stays a, as in f.
func (g *poolGen) fold(acc reg.VecVirtual, a Op, v reg.VecVirtual) {
	VMAXPS(a, v, acc)
	if g.isa == avx512 {
		VFIXUPIMMPS(U8(0), g.nanTab, v, acc)
		return
	}
	m := g.isa.Vec()
	VCMPPS(U8(3), v, v, m) // unordered: v != v
	VBLENDVPS(m, v, acc, acc)
}
