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
// the contract's order into a running maximum and a running tap index.
type argKernel struct {
	isa   *isa
	block int // vectors per channel block
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
	np         Mem           // pixels left
	one, rowV  reg.VecVirtual
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
//	    for each block of channels ch (4, 2, 1 vectors, then a masked one):
//	        o := -Inf; a := 0          // a: the tap offset ky*rowW + kx
//	        for ky < kh { for kx < kw {
//	            v := in[p*sx+ky*sy+kx*sc+ch]
//	            if v > o || v != v { o = v; a = ky*rowW + kx }
//	        }}
//	        out[p*so+ch] = o; arg[p*sa+ch] = base[p] + a
//
// This is the contract's single chain, tap by tap (no row tree: the index
// select is cheap only in order). int32 additions wrap as the Go twin's
// int32(base[p] + ky*rowW + kx) does.
func maxPoolArg(k argKernel) {
	g := &argGen{argKernel: k, name: k.name()}
	TEXT(g.name, NOSPLIT, "func(out *float32, so int, arg *int32, sa int, in *float32, sx, sy, sc, c, kh, kw, np, base0, baseStep, rowW int)")
	Pragma("noescape")
	how := "VCMPPS into opmasks + masked VMOVAPS / VMOVDQA32"
	if k.isa == avx2 {
		how = "VCMPPS + VBLENDVPS on both"
	}
	Doc(fmt.Sprintf("%s is MaxPoolNHWCArg on %s: one output pixel at a time, its channels", g.name, k.isa.Name),
		fmt.Sprintf("in blocks of %s %s and a masked one; every tap selects value and index with %s.", blockSizes(k.block), k.isa.Kind, how),
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
	MOVQ(simd.LoadGP("rowW"), g.roww)
	g.np = AllocLocal(8)
	MOVQ(simd.LoadGP("np"), g.np)

	outp, argp, inp := simd.LoadGP("out"), simd.LoadGP("arg"), simd.LoadGP("in")
	Label(g.name + "_pixel")
	Comment("for each pixel: o, a, x point at channel ch of out[p*so:], arg[p*sa:], in[p*sx:]")
	o, a, x := GP64(), GP64(), GP64()
	MOVQ(outp, o)
	MOVQ(argp, a)
	MOVQ(inp, x)
	n := GP64()
	MOVQ(g.nfull, n)
	vb := g.isa.VBytes()
	for B := g.block; B >= 1; B /= 2 {
		lbl := fmt.Sprintf("%s_b%d", g.name, B)
		next := fmt.Sprintf("%s_b%d", g.name, B/2)
		if B == 1 {
			next = g.name + "_tail"
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
		g.blockOf(B, false, x, o, a, lbl)
		ADDQ(U32(B*vb), x)
		ADDQ(U32(B*vb), o)
		ADDQ(U32(B*vb), a)
		SUBQ(U8(B), n)
		if B == g.block {
			JMP(LabelRef(lbl))
		}
	}
	Label(g.name + "_tail")
	Comment("the last c mod lanes channels, masked")
	CMPQ(g.nrest, U8(0))
	JEQ(LabelRef(g.name + "_next"))
	g.blockOf(1, true, x, o, a, g.name+"_t")
	Label(g.name + "_next")
	Comment("out += so; arg += sa; in += sx; base += baseStep")
	ADDQ(g.so, outp)
	ADDQ(g.sa, argp)
	ADDQ(g.sx, inp)
	bs := simd.LoadGP("baseStep")
	ADDQ(bs, g.base)
	DECQ(g.np)
	JNZ(LabelRef(g.name + "_pixel"))
	simd.Ret()
}

// blockOf emits one block of B vectors of channels at x (input), o (values)
// and a (indices), masked to the tail if masked:
//
//	acc := -Inf; idx := 0; rowIdx := 0
//	for ky < kh {
//	    tap := rowIdx
//	    for kx < kw { acc, idx = f(acc, idx, x[ky*sy+kx*sc:], tap); tap += 1 }
//	    rowIdx += rowW
//	}
//	o[:B*lanes] = acc; a[:B*lanes] = idx + base
func (g *argGen) blockOf(B int, masked bool, x, o, a reg.GPVirtual, lbl string) {
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
		m := Mem{Base: q, Disp: b * vb}
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
		mo, ma := Mem{Base: o, Disp: b * vb}, Mem{Base: a, Disp: b * vb}
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
