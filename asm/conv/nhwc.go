package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// nhwcTile is a ConvNHWC register tile: maxP output pixels × vecs vectors of
// output channels, all accumulators in registers for the whole (ky, kx, c)
// reduction. If vecs vectors are fewer than NR channels, the kernel runs the
// block in passes of vecs*lanes channels.
type nhwcTile struct {
	isa    *isa
	maxP   int  // output pixels per tile
	vecs   int  // accumulator vectors per pixel
	unroll int  // channel-loop unroll
	bcst   bool // VFMADD231PS m32bcst (AVX-512) instead of VBROADCASTSS + FMA
	wmem   bool // FMAs read weights from memory, not from weight registers
	wregs  int  // if > 0 and !wmem: only the first wregs weight vectors in registers, the FMAs read the others from memory
	nt     bool // streaming stores (VMOVNTPS) of whole, aligned vectors: nr = NR only
	small  int  // tiles of at most small pixels run all NR channels in one pass (see smallTile)
}

// smallTile is the tile t runs P ≤ t.small pixels with: all NR channels in
// one pass, 4P accumulators instead of 2P per pass (AVX2: a 3-pixel tile of
// 16 channels has 6, too few for two FMA pipes of latency 4, and 3 × 32 has
// 12). With 3 pixels the 4 weight vectors do not all fit beside the 12
// accumulators and the broadcast: the FMAs read the last one from memory.
// The FMAs are the same, in the same order, as in two passes.
func (t nhwcTile) smallTile(P int) nhwcTile {
	s := t
	s.vecs = nr / t.isa.Lanes
	s.small = 0
	if P*s.vecs+s.vecs+1 > t.isa.Regs {
		s.wregs = t.isa.Regs - 1 - P*s.vecs
	}
	return s
}

func (t nhwcTile) width() int  { return t.vecs * t.isa.Lanes }
func (t nhwcTile) passes() int { return nr / t.width() }

func (t nhwcTile) name() string {
	if t.nt {
		return fmt.Sprintf("convNHWC_%dx%dnt_%s", t.maxP, t.width(), t.isa.Name)
	}
	return fmt.Sprintf("convNHWC_%dx%d_%s", t.maxP, t.width(), t.isa.Name)
}

const nhwcSignature = "func(out *float32, so int, in *float32, sx, sy, sc, cin, kh, kw int, w, bias *float32, np, nr int, relu bool, pf *float32, pfn int, pf2 *float32, pfn2 int, pf3 *float32, pfn3 int, pfk int)"

// convNHWC emits ConvNHWC for tile t:
//
//	for each tile of P ≤ maxP pixels, for each pass of vecs*lanes channels:
//	    acc[p][j] = bias[j]
//	    for ky < kh { for kx < kw { for c < cin {
//	        acc[p][j] = fma(in[p*sx+ky*sy+kx*sc+c], w[((ky*kw+kx)*cin+c)*NR+j], acc[p][j])
//	    }}}
//	    if relu && acc[p][j] < 0 { acc[p][j] = 0 }
//	    out[p*so+j] = acc[p][j]  (j < nr)
//
// Besides, each iteration of the unrolled channel loop prefetches pfk ≥ 1
// 64-byte lines into L2 (PREFETCHT1): the next of the pfn lines from pf until
// none is left, then of the pfn2 lines from pf2, then of the pfn3 lines from
// pf3. The caller passes what a later call will read (a block's weights, input
// rows) or write (output rows), so that it arrives while this call computes,
// and pfk so that the call's iterations cover the ranges. Prefetches change no
// result. With nt, the tile's stores are VMOVNTPS of whole vectors.
func convNHWC(t nhwcTile) {
	name := t.name()
	TEXT(name, NOSPLIT, nhwcSignature)
	Pragma("noescape")
	what := "ConvNHWC"
	if t.nt {
		what = "ConvNHWC with streaming stores (nr = NR, out and 4*so multiples of 64 bytes)"
	}
	small := ""
	if t.small > 0 {
		small = fmt.Sprintf(" (tiles of at most %d pixels: one pass of NR)", t.small)
	}
	Doc(fmt.Sprintf("%s is %s on %s: tiles of up to %d pixels × %d output channels", name, what, t.isa.Name, t.maxP, t.width()),
		fmt.Sprintf("(%d %s accumulators), %d pass(es) per NR block%s; strides are in float32s,", t.maxP*t.vecs, t.isa.Kind, t.passes(), small),
		"bias points at NR values (zeros for none), and np ≥ 1, 1 ≤ nr ≤ NR. It prefetches",
		"the pfn, pfn2, pfn3 ≥ 0 cache lines from pf, pf2, pf3 into L2, in that order, pfk ≥ 1",
		"per iteration of its unrolled channel loop.")

	Comment("Pixel tiles: out, in and the pixel count advance by P pixels per tile.")
	outp := simd.LoadGP("out")
	inp := simd.LoadGP("in")
	rem := simd.LoadGP("np")
	nrr := simd.LoadGP("nr")
	m := setupMasks(t.isa, nrr, t.vecs)
	l := nhwcLocals{ky: AllocLocal(8), kx: AllocLocal(8), pfc: AllocLocal(8)}
	for r, a := range [][2]string{{"pf", "pfn"}, {"pf2", "pfn2"}, {"pf3", "pfn3"}} {
		Commentf("prefetch range %d: [%s, %s + 64*%s)", r+1, a[0], a[0], a[1])
		l.pf[r], l.pfe[r] = AllocLocal(8), AllocLocal(8)
		pf := simd.LoadGP(a[0])
		MOVQ(pf, l.pf[r])
		pfe := simd.LoadGP(a[1])
		SHLQ(U8(6), pfe)
		ADDQ(pf, pfe)
		MOVQ(pfe, l.pfe[r])
	}
	if t.passes() > 1 {
		l.nrb, l.joff = AllocLocal(8), AllocLocal(8)
		SHLQ(U8(2), nrr)
		MOVQ(nrr, l.nrb)
	}
	tileLoop(name, rem, t.maxP, t.small, func(P int, next string) {
		tt := t
		if P <= t.small {
			tt = t.smallTile(P)
		}
		tt.tile(fmt.Sprintf("%s_%d", name, P), P, outp, inp, m, l)
		Commentf("out += %d*so; in += %d*sx; n -= %d", P, P, P)
		d := simd.Load4("so")
		IMUL3Q(U32(P), d, d)
		ADDQ(d, outp)
		d = simd.Load4("sx")
		IMUL3Q(U32(P), d, d)
		ADDQ(d, inp)
		SUBQ(U32(P), rem)
		JMP(LabelRef(next))
	})
	simd.Ret()
}

// nhwcLocals are the stack slots of the loop counters that do not fit in
// registers next to a full tile.
type nhwcLocals struct {
	ky, kx    Mem    // remaining kernel rows, columns
	pf, pfe   [3]Mem // per prefetch range: the next line to prefetch, the end
	pfc       Mem    // lines left to prefetch at this iteration
	nrb, joff Mem    // passes only: nr*4, and the pass's channel offset in bytes
}

// tile emits one P-pixel tile (all its passes).
func (t nhwcTile) tile(lbl string, P int, outp, inp reg.GPVirtual, m masks, l nhwcLocals) {
	i := t.isa
	passes := t.passes() > 1
	var jr reg.GPVirtual // the pass offset, where it is needed
	loadJ := func() reg.Register {
		if !passes {
			return nil
		}
		jr = GP64()
		MOVQ(l.joff, jr)
		return jr
	}
	if passes {
		Comment("for joff := 0; joff < nr; joff += pass width (bytes)")
		MOVQ(U32(0), l.joff)
		Label(lbl + "_pass")
	}

	// Register budget: accumulators, then weight vectors (double-buffered
	// across the unrolled channel loop if they fit), then broadcasts.
	acc := make([][]reg.VecVirtual, P)
	for p := range acc {
		acc[p] = i.Vecs(t.vecs)
	}
	nb := 1
	if t.bcst {
		nb = 0
	}
	// wv weight vectors of a channel live in registers; the FMAs read the
	// others (all of them with wmem) from memory.
	wv := t.vecs
	if t.wmem {
		wv = 0
	} else if t.wregs > 0 {
		wv = t.wregs
	}
	wsets := 0
	if wv > 0 {
		wsets = 1
		if P*t.vecs+2*wv+nb <= i.Regs {
			wsets = 2
		}
	}
	if nb == 1 && P*t.vecs+wsets*wv+2 <= i.Regs {
		nb = 2
	}
	if P*t.vecs+wsets*wv+nb > i.Regs {
		panic(fmt.Sprintf("%s: %d-pixel tile needs too many registers", lbl, P))
	}
	W := make([][]reg.VecVirtual, wsets)
	for s := range W {
		W[s] = i.Vecs(wv)
	}
	B := i.Vecs(nb)

	Comment("acc[p][j] = bias[j]")
	bp := simd.LoadGP("bias")
	if j := loadJ(); j != nil {
		ADDQ(j, bp)
	}
	for p := 0; p < P; p++ {
		for v := 0; v < t.vecs; v++ {
			VMOVUPS(Mem{Base: bp, Disp: v * i.VBytes()}, acc[p][v])
		}
	}

	Comment("w runs through [kh][kw][cin][NR] in order; in[p*sx+ky*sy+kx*sc+c] from the tap pointer")
	wp := simd.LoadGP("w")
	if j := loadJ(); j != nil {
		ADDQ(j, wp)
	}
	row := GP64()
	MOVQ(inp, row)
	k := GP64()
	MOVQ(simd.Arg("kh"), k)
	MOVQ(k, l.ky)
	Comment("for ky < kh")
	Label(lbl + "_ky")
	tap := GP64()
	MOVQ(row, tap)
	k = GP64()
	MOVQ(simd.Arg("kw"), k)
	MOVQ(k, l.kx)
	Comment("for kx < kw")
	Label(lbl + "_kx")
	s := simd.Load4("sx")
	s3 := GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	px := newStrided(P, tap, s, s3)
	cc := simd.LoadGP("cin")

	// step emits channel c+u of the tap.
	step := func(u int) {
		var w []reg.VecVirtual
		wmem := func(v int) Mem { return Mem{Base: wp, Disp: u*4*nr + v*i.VBytes()} }
		if wsets > 0 {
			w = W[u%wsets]
			for v := range w {
				VMOVUPS(wmem(v), w[v])
			}
		}
		for p := 0; p < P; p++ {
			x := px.at(p, 4*u)
			if t.bcst {
				for v := 0; v < t.vecs; v++ {
					VFMADD231PS_BCST(x, w[v], acc[p][v])
				}
				continue
			}
			b := B[p%nb]
			VBROADCASTSS(x, b)
			for v := 0; v < t.vecs; v++ {
				if v >= wv {
					VFMADD231PS(wmem(v), b, acc[p][v])
				} else {
					VFMADD231PS(w[v], b, acc[p][v])
				}
			}
		}
	}
	U := t.unroll
	Commentf("for c < cin, %d at a time:", U)
	Comment("acc[p][j] = fma(in[p*sx+ky*sy+kx*sc+c], w[((ky*kw+kx)*cin+c)*NR+j], acc[p][j])")
	SUBQ(U32(U), cc)
	JB(LabelRef(lbl + "_ctail"))
	Label(lbl + "_c")
	Comment("pfk times, the next line of the first prefetch range that has one left:",
		"if pf < pfe { prefetch pf; pf += 64 } else if pf2 < pfe2 { ... } else if ...")
	pr := GP64()
	MOVQ(simd.Arg("pfk"), pr)
	MOVQ(pr, l.pfc)
	Label(lbl + "_pf")
	for r := range l.pf {
		MOVQ(l.pf[r], pr)
		CMPQ(pr, l.pfe[r])
		JAE(LabelRef(fmt.Sprintf("%s_nopf%d", lbl, r+1)))
		PREFETCHT1(Mem{Base: pr})
		ADDQ(U8(64), pr)
		MOVQ(pr, l.pf[r])
		JMP(LabelRef(lbl + "_pfnext"))
		Label(fmt.Sprintf("%s_nopf%d", lbl, r+1))
	}
	JMP(LabelRef(lbl + "_pfdone"))
	Label(lbl + "_pfnext")
	DECQ(l.pfc)
	JNZ(LabelRef(lbl + "_pf"))
	Label(lbl + "_pfdone")
	for u := 0; u < U; u++ {
		step(u)
	}
	px.advance(4 * U)
	ADDQ(U32(4*nr*U), wp)
	SUBQ(U32(U), cc)
	JAE(LabelRef(lbl + "_c"))
	Label(lbl + "_ctail")
	Comment("the last cin%U channels, one at a time")
	ADDQ(U32(U), cc)
	JZ(LabelRef(lbl + "_cdone"))
	Label(lbl + "_c1")
	step(0)
	px.advance(4)
	ADDQ(U32(4*nr), wp)
	DECQ(cc)
	JNZ(LabelRef(lbl + "_c1"))
	Label(lbl + "_cdone")

	d := simd.Load4("sc")
	ADDQ(d, tap)
	DECQ(l.kx)
	JNZ(LabelRef(lbl + "_kx"))
	d = simd.Load4("sy")
	ADDQ(d, row)
	DECQ(l.ky)
	JNZ(LabelRef(lbl + "_ky"))

	Comment("if relu && acc < 0 { acc = 0 }: VMAXPS acc, zero, acc is Intel's max(src1=0, src2=acc),",
		"which returns src2 unless src1 > src2, so NaN and -0 pass through")
	CMPB(simd.Arg("relu"), U8(0))
	JEQ(LabelRef(lbl + "_store"))
	zero := i.Vec()
	VXORPS(zero, zero, zero)
	for p := 0; p < P; p++ {
		for v := 0; v < t.vecs; v++ {
			VMAXPS(acc[p][v], zero, acc[p][v])
		}
	}
	Label(lbl + "_store")
	Comment("out[p*so+j] = acc[p][j] for j < nr")
	op := GP64()
	MOVQ(outp, op)
	j := loadJ()
	if j != nil {
		ADDQ(j, op)
	}
	so := simd.Load4("so")
	for p := 0; p < P; p++ {
		for v := 0; v < t.vecs; v++ {
			if t.nt {
				VMOVNTPS(acc[p][v], Mem{Base: op, Disp: v * i.VBytes()})
				continue
			}
			m.store(acc[p][v], v, j, Mem{Base: op, Disp: v * i.VBytes()})
		}
		if p+1 < P {
			ADDQ(so, op)
		}
	}
	if passes {
		j := GP64()
		MOVQ(l.joff, j)
		ADDQ(U32(t.width()*4), j)
		MOVQ(j, l.joff)
		CMPQ(j, l.nrb)
		JB(LabelRef(lbl + "_pass"))
	}
}
