package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// wgradTile is a ConvWgrad register tile: maxC input channels × vecs vectors
// of output channels, accumulated over all rows and pixels in registers.
type wgradTile struct {
	isa    *isa
	maxC   int  // input channels per tile
	vecs   int  // accumulator vectors per channel
	unroll int  // pixel-loop unroll
	bcst   bool // VFMADD231PS m32bcst (AVX-512)
}

func (t wgradTile) width() int  { return t.vecs * t.isa.Lanes }
func (t wgradTile) passes() int { return nr / t.width() }

func (t wgradTile) name() string {
	return fmt.Sprintf("convWgrad_%dx%d_%s", t.maxC, t.width(), t.isa.Name)
}

const wgradSignature = "func(dw *float32, x *float32, sx, sxr int, dy *float32, so, sor int, np, nrows, nc, nr int)"

// convWgrad emits ConvWgrad for tile t:
//
//	for each tile of P ≤ maxC channels c0.., for each pass of vecs*lanes channels j:
//	    acc[i][j] = dw[(c0+i)*NR+j]
//	    for r < nrows { for p < np {
//	        acc[i][j] = fma(x[r*sxr+p*sx+c0+i], dy[r*sor+p*so+j], acc[i][j])
//	    }}
//	    dw[(c0+i)*NR+j] = acc[i][j]  (j < nr)
func convWgrad(t wgradTile) {
	name := t.name()
	TEXT(name, NOSPLIT, wgradSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is ConvWgrad on %s: tiles of up to %d input channels × %d output channels", name, t.isa.Name, t.maxC, t.width()),
		fmt.Sprintf("(%d %s accumulators, held over all nrows × np pixels), %d pass(es) per NR block;", t.maxC*t.vecs, t.isa.Kind, t.passes()),
		"strides are in float32s, and np, nrows, nc ≥ 1, 1 ≤ nr ≤ NR.")

	l := wgradLocals{nrb: AllocLocal(8), xskip: AllocLocal(8), dyskip: AllocLocal(8), rows: AllocLocal(8)}
	if t.passes() > 1 {
		l.joff = AllocLocal(8)
	}
	Comment("The pointers walk each row's pixels, then skip to the next row:",
		"xskip = (sxr - np*sx)*4, dyskip = (sor - np*so)*4 (bytes; may be negative)")
	for _, s := range []struct {
		row, pix string
		skip     Mem
	}{{"sxr", "sx", l.xskip}, {"sor", "so", l.dyskip}} {
		d := simd.Load4(s.pix)
		IMULQ(simd.Arg("np"), d)
		k := simd.Load4(s.row)
		SUBQ(d, k)
		MOVQ(k, s.skip)
	}

	Comment("Channel tiles: dw, x and the channel count advance by P channels per tile.")
	dwp := simd.LoadGP("dw")
	xc := simd.LoadGP("x")
	rem := simd.LoadGP("nc")
	nrr := simd.LoadGP("nr")
	m := setupMasks(t.isa, nrr, t.vecs)
	SHLQ(U8(2), nrr)
	MOVQ(nrr, l.nrb)
	tileLoop(name, rem, t.maxC, 0, func(P int, next string) {
		t.tile(fmt.Sprintf("%s_%d", name, P), P, dwp, xc, m, l)
		Commentf("dw += %d*NR; x += %d; n -= %d", P, P, P)
		ADDQ(U32(4*nr*P), dwp)
		ADDQ(U32(4*P), xc)
		SUBQ(U32(P), rem)
		JMP(LabelRef(next))
	})
	simd.Ret()
}

// wgradLocals are the stack slots of the values that do not fit in registers
// next to a full tile; the row-level ones are used once per row.
type wgradLocals struct {
	nrb           Mem // nr*4
	xskip, dyskip Mem // from one row's end to the next row's start, bytes
	rows          Mem // rows left in the current pass
	joff          Mem // passes only: the pass's channel offset in bytes
}

// tile emits one P-channel tile (all its passes).
func (t wgradTile) tile(lbl string, P int, dwp, xc reg.GPVirtual, m masks, l wgradLocals) {
	i := t.isa
	passes := t.passes() > 1
	loadJ := func() reg.Register {
		if !passes {
			return nil
		}
		j := GP64()
		MOVQ(l.joff, j)
		return j
	}
	if passes {
		Comment("for joff := 0; joff < nr; joff += pass width (bytes)")
		MOVQ(U32(0), l.joff)
		Label(lbl + "_pass")
	}

	acc := make([][]reg.VecVirtual, P)
	for c := range acc {
		acc[c] = i.Vecs(t.vecs)
	}
	nb := 1
	if t.bcst {
		nb = 0
	}
	dsets := 1
	if t.unroll > 1 && P*t.vecs+2*t.vecs+nb <= i.Regs {
		dsets = 2
	}
	if nb == 1 && P*t.vecs+dsets*t.vecs+2 <= i.Regs {
		nb = 2
	}
	if P*t.vecs+dsets*t.vecs+nb > i.Regs {
		panic(fmt.Sprintf("%s: %d-channel tile needs too many registers", lbl, P))
	}
	D := make([][]reg.VecVirtual, dsets)
	for s := range D {
		D[s] = i.Vecs(t.vecs)
	}
	B := i.Vecs(nb)

	Comment("acc[i][j] = dw[i*NR+j] (zero for j >= nr, whose memory is not read)")
	j := loadJ()
	for c := 0; c < P; c++ {
		for v := 0; v < t.vecs; v++ {
			m.load(dwMem(dwp, j, c, v, i), v, j, acc[c][v])
		}
	}

	// loop emits the row and pixel loops; masked says whether dy's channels
	// >= nr must not be read: only in a pass that holds channel nr-1 and is
	// partial (masked loads cost an extra uop, on the FMA ports for AVX-512).
	loop := func(sfx string, masked bool) {
		L := lbl + sfx
		xp := GP64()
		MOVQ(xc, xp)
		dyp := simd.LoadGP("dy")
		var mp reg.GPVirtual
		if masked && i == avx2 {
			mp = GP64()
			MOVQ(m.ptr, mp)
		}
		if j := loadJ(); j != nil {
			ADDQ(j, dyp)
			if mp != nil {
				ADDQ(j, mp)
			}
		}
		sx := simd.Load4("sx")
		so := simd.Load4("so")
		MOVQ(simd.LoadGP("nrows"), l.rows)

		// step emits pixel u of an unrolled group: xp and dyp point at
		// pixel 0 of the group.
		step := func(u int) {
			d := D[u%dsets]
			for v := range d {
				mem := Mem{Base: dyp, Disp: v * i.VBytes()}
				if u == 1 {
					mem.Index, mem.Scale = so, 1
				}
				switch {
				case !masked:
					VMOVUPS(mem, d[v])
				case i == avx512:
					VMOVUPS_Z(mem, m.k[v], d[v])
				default:
					VMOVUPS(Mem{Base: mp, Disp: v * i.VBytes()}, d[v])
					VMASKMOVPS(mem, d[v], d[v])
				}
			}
			for c := 0; c < P; c++ {
				x := Mem{Base: xp, Disp: 4 * c}
				if u == 1 {
					x.Index, x.Scale = sx, 1
				}
				if t.bcst {
					for v := range d {
						VFMADD231PS_BCST(x, d[v], acc[c][v])
					}
					continue
				}
				b := B[c%nb]
				VBROADCASTSS(x, b)
				for v := range d {
					VFMADD231PS(d[v], b, acc[c][v])
				}
			}
		}

		Comment("for r < nrows {")
		Label(L + "_row")
		n := simd.LoadGP("np")
		switch t.unroll {
		case 1:
			Comment("for p < np { acc[i][j] = fma(x[r*sxr+p*sx+c0+i], dy[r*sor+p*so+j], acc[i][j]) }")
			Label(L + "_p")
			step(0)
			ADDQ(sx, xp)
			ADDQ(so, dyp)
			DECQ(n)
			JNZ(LabelRef(L + "_p"))
		case 2:
			Comment("for p < np, 2 at a time:", "acc[i][j] = fma(x[r*sxr+p*sx+c0+i], dy[r*sor+p*so+j], acc[i][j])")
			SUBQ(U8(2), n)
			JB(LabelRef(L + "_ptail"))
			Label(L + "_p")
			step(0)
			step(1)
			LEAQ(Mem{Base: xp, Index: sx, Scale: 2}, xp)
			LEAQ(Mem{Base: dyp, Index: so, Scale: 2}, dyp)
			SUBQ(U8(2), n)
			JAE(LabelRef(L + "_p"))
			Label(L + "_ptail")
			Comment("the last pixel if np is odd")
			TESTQ(U32(1), n)
			JZ(LabelRef(L + "_rowend"))
			step(0)
			ADDQ(sx, xp)
			ADDQ(so, dyp)
		default:
			panic("wgrad: the pixel loop is unrolled by 1 or 2")
		}
		Label(L + "_rowend")
		Comment("x += sxr - np*sx; dy += sor - np*so; }")
		ADDQ(l.xskip, xp)
		ADDQ(l.dyskip, dyp)
		DECQ(l.rows)
		JNZ(LabelRef(L + "_row"))
	}
	Comment("dy's channels >= nr are read with masks only in a partial pass")
	if passes {
		jj := loadJ()
		ADDQ(U32(t.width()*4), jj)
		CMPQ(jj, l.nrb)
		JA(LabelRef(lbl + "_partial"))
	} else {
		CMPQ(l.nrb, U32(t.width()*4))
		JB(LabelRef(lbl + "_partial"))
	}
	loop("_full", false)
	JMP(LabelRef(lbl + "_store"))
	Label(lbl + "_partial")
	loop("", true)

	Label(lbl + "_store")
	Comment("dw[i*NR+j] = acc[i][j] for j < nr")
	j = loadJ()
	for c := 0; c < P; c++ {
		for v := 0; v < t.vecs; v++ {
			m.store(acc[c][v], v, j, dwMem(dwp, j, c, v, i))
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

// dwMem addresses vector v of channel c's row of dw in pass j (nil: no passes).
func dwMem(dwp reg.GPVirtual, j reg.Register, c, v int, i *isa) Mem {
	mem := Mem{Base: dwp, Disp: 4*nr*c + v*i.VBytes()}
	if j != nil {
		mem.Index, mem.Scale = j, 1
	}
	return mem
}
