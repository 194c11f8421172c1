package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// isa is the vector instruction set a kernel is generated for.
type isa = simd.ISA

var avx512, avx2 = simd.AVX512, simd.AVX2

// maskTableSym is a table of NR all-ones lanes followed by NR zero lanes: the
// 8 lanes at byte offset 4*(NR-nr+j) are the AVX2 mask of output channels
// j..j+7 of an nr-channel block (lane set iff its channel is < nr).
var maskTableSym Mem

func maskTable() {
	maskTableSym = GLOBL("convMaskTable", RODATA|NOPTR)
	for k := 0; k < 2*nr; k++ {
		v := uint32(0)
		if k < nr {
			v = 0xffffffff
		}
		DATA(4*k, U32(v))
	}
}

// masks is how a kernel keeps output channels j >= nr untouched: AVX-512
// opmask registers (one per vector of the block), or for AVX2 a pointer into
// maskTableSym whose vectors VMASKMOVPS uses.
type masks struct {
	isa *isa
	k   []reg.OpmaskVirtual // avx512: k[v] covers lanes v*16..v*16+15
	ptr Mem                 // avx2: local holding &convMaskTable[NR-nr]
}

// setupMasks derives the masks from nr (a register, 1..NR).
//
//	avx512: k[v] = bits j-v*16 of (1<<nr)-1
//	avx2:   ptr = &maskTable[NR-nr]
func setupMasks(i *isa, nrReg reg.GPVirtual, vecs int) masks {
	m := masks{isa: i}
	if i == avx512 {
		Comment("k[v] has bit l set iff channel v*16+l < nr")
		bits := GP64()
		MOVQ(nrReg, reg.RCX)
		MOVQ(U32(1), bits)
		SHLQ(reg.CL, bits)
		DECQ(bits)
		for v := 0; v < vecs; v++ {
			k := K()
			KMOVW(bits.As32(), k)
			if v+1 < vecs {
				SHRQ(U8(16), bits)
			}
			m.k = append(m.k, k)
		}
		return m
	}
	Comment("mask = &convMaskTable[NR-nr]: lane l of the mask at channel j is set iff j+l < nr")
	m.ptr = AllocLocal(8)
	p := GP64()
	LEAQ(maskTableSym.Offset(4*nr), p)
	t := GP64()
	MOVQ(nrReg, t)
	SHLQ(U8(2), t)
	SUBQ(t, p)
	MOVQ(p, m.ptr)
	return m
}

// store writes vector v (channels joff/4+v*lanes...) of a block to mem,
// skipping channels >= nr. jreg, when non-nil, holds the pass offset joff in
// bytes (AVX2 runs NR in passes).
func (m masks) store(x reg.VecVirtual, v int, jreg reg.Register, mem Mem) {
	if m.isa == avx512 {
		VMOVUPS(x, m.k[v], mem)
		return
	}
	mk := m.isa.Vec()
	VMOVUPS(m.avx2Mask(v, jreg), mk)
	VMASKMOVPS(x, mk, mem)
}

// load reads vector v of a block from mem, with zeros in channels >= nr and
// without touching their memory.
func (m masks) load(mem Mem, v int, jreg reg.Register, x reg.VecVirtual) {
	if m.isa == avx512 {
		VMOVUPS_Z(mem, m.k[v], x)
		return
	}
	VMOVUPS(m.avx2Mask(v, jreg), x)
	VMASKMOVPS(mem, x, x)
}

// avx2Mask addresses the mask of vector v in pass jreg; it loads the mask
// pointer into a fresh register each time (the kernels have few to spare).
func (m masks) avx2Mask(v int, jreg reg.Register) Mem {
	p := GP64()
	MOVQ(m.ptr, p)
	if jreg == nil {
		return Mem{Base: p, Disp: v * m.isa.VBytes()}
	}
	return Mem{Base: p, Index: jreg, Scale: 1, Disp: v * m.isa.VBytes()}
}

// strided addresses row p of a run of rows with a runtime stride s (bytes):
// base[p/5] + (p%5)*s, using the scaled-index forms s, 2s, 3s (a second index
// register s3) and 4s, so that 14 rows need only three base registers.
type strided struct {
	bases []reg.GPVirtual
	s, s3 reg.GPVirtual
}

// newStrided allocates the bases for rows 0..rows-1 at start, start+5s, ...
//
//	base[k] = start + 5*k*s
func newStrided(rows int, start, s, s3 reg.GPVirtual) strided {
	a := strided{s: s, s3: s3}
	nb := (rows + 4) / 5
	for k := 0; k < nb; k++ {
		b := GP64()
		if k == 0 {
			MOVQ(start, b)
		} else {
			LEAQ(Mem{Base: a.bases[k-1], Index: s, Scale: 4}, b)
			ADDQ(s, b)
		}
		a.bases = append(a.bases, b)
	}
	return a
}

func (a strided) at(p, disp int) Mem {
	b := a.bases[p/5]
	switch p % 5 {
	case 0:
		return Mem{Base: b, Disp: disp}
	case 1:
		return Mem{Base: b, Index: a.s, Scale: 1, Disp: disp}
	case 2:
		return Mem{Base: b, Index: a.s, Scale: 2, Disp: disp}
	case 3:
		return Mem{Base: b, Index: a.s3, Scale: 1, Disp: disp}
	default:
		return Mem{Base: b, Index: a.s, Scale: 4, Disp: disp}
	}
}

// advance adds d bytes to every base.
func (a strided) advance(d int) {
	for _, b := range a.bases {
		ADDQ(U32(d), b)
	}
}

// tileLoop emits the loop over a run of n rows (pixels or channels) in tiles
// of at most maxP: full tiles while at least 2·maxP remain, then what is left
// as one tile, or as two halves if it is above maxP. No tile then has fewer
// than (maxP+1)/2 rows unless n does: 32 pixels run as 14+9+9, not 14+14+4,
// whose 4-pixel tile has too few accumulators to cover the FMA latency. The
// rows of the ImageNet nets' layers (multiples of 14, and 55, 27, 13) tile as
// they did with the old rule (halving only below maxP+4). With small > 0
// (AVX2, whose tiles of at most small pixels run all NR channels in one
// pass), a rest of maxP+1 … maxP+small runs as n-small and small instead of
// halves: 8 pixels as 5+3, not 4+4 (8 accumulators each, at the edge of the
// FMA latency), 9 as 6+3. tile(P) emits the code of a P-row tile, which must
// end by jumping to the returned label after subtracting P from n.
//
//	for n > 0 {
//	    P := maxP
//	    if n < 2*maxP { P = n; if n > maxP+small { P = (n+1)/2 } else if n > maxP { P = n-small } }
//	    tile[P](); n -= P
//	}
func tileLoop(name string, n reg.GPVirtual, maxP, small int, tile func(P int, next string)) {
	next, done := name+"_next", name+"_done"
	if small > 0 {
		Comment(fmt.Sprintf("for n > 0 { P := tile size (%d; or what is left: n-%d if that leaves %d after one tile, else halved above %d); tile[P](); n -= P }", maxP, small, small, maxP))
	} else {
		Comment(fmt.Sprintf("for n > 0 { P := tile size (%d, or what is left, halved above %d); tile[P](); n -= P }", maxP, maxP))
	}
	Label(next)
	TESTQ(n, n)
	JLE(LabelRef(done))
	P := GP64()
	MOVQ(n, P)
	CMPQ(n, U32(2*maxP))
	JAE(LabelRef(fmt.Sprintf("%s_%d", name, maxP)))
	CMPQ(n, U32(maxP))
	JBE(LabelRef(name + "_dispatch"))
	if small > 0 {
		CMPQ(n, U32(maxP+small))
		JA(LabelRef(name + "_halve"))
		SUBQ(U32(small), P)
		JMP(LabelRef(name + "_dispatch"))
		Label(name + "_halve")
	}
	INCQ(P)
	SHRQ(U8(1), P)
	Label(name + "_dispatch")
	for k := maxP; k > 1; k-- {
		CMPQ(P, U32(k))
		JEQ(LabelRef(fmt.Sprintf("%s_%d", name, k)))
	}
	JMP(LabelRef(name + "_1"))
	for k := maxP; k >= 1; k-- {
		Label(fmt.Sprintf("%s_%d", name, k))
		tile(k, next)
	}
	Label(done)
}
