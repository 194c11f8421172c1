package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// isa is the shared description of a vector instruction set.
type isa = simd.ISA

var avx512, avx2 = simd.AVX512, simd.AVX2

// The tail tables. poolTailMask is 8 all-ones lanes then 8 zero lanes: the 8
// lanes at byte offset 4*(8-t) are the VMASKMOVPS mask of the first t
// channels. poolTailKMask[t] is the opmask (1<<t)-1.
var tailMask, tailKMask Mem

func tailTables() {
	tailMask = GLOBL("poolTailMask", RODATA|NOPTR)
	for l := 0; l < 16; l++ {
		v := uint32(0)
		if l < 8 {
			v = 0xffffffff
		}
		DATA(4*l, U32(v))
	}
	tailKMask = GLOBL("poolTailKMask", RODATA|NOPTR)
	for t := 0; t <= 16; t++ {
		DATA(2*t, U16(uint16(1<<t-1)))
	}
}

// tail is how a kernel touches only the last t = c mod lanes channels of a
// pixel: an opmask on AVX-512, or on AVX2 a pointer into poolTailMask whose
// vector VMASKMOVPS uses. Masked loads read zeros in the other lanes without
// touching their memory; masked stores leave them alone.
type tail struct {
	isa *isa
	k   reg.OpmaskVirtual // avx512: bit l set iff l < t
	ptr Mem               // avx2: local holding &poolTailMask[8-t]
}

// setupTail derives the tail masks from t (a register, 0 ≤ t < lanes); t is
// clobbered.
//
//	avx512: k = (1<<t) - 1
//	avx2:   ptr = &poolTailMask[8-t]
func setupTail(i *isa, t reg.GPVirtual) tail {
	m := tail{isa: i}
	p := GP64()
	if i == avx512 {
		Comment("k = (1<<t) - 1: lane l is in the tail iff l < t")
		m.k = K()
		LEAQ(tailKMask, p)
		KMOVW(Mem{Base: p, Index: t, Scale: 2}, m.k)
		return m
	}
	Comment("ptr = &poolTailMask[8-t]: lane l of the mask is set iff l < t")
	m.ptr = AllocLocal(8)
	LEAQ(tailMask.Offset(4*8), p)
	SHLQ(U8(2), t)
	SUBQ(t, p)
	MOVQ(p, m.ptr)
	return m
}

// mask loads the AVX2 tail mask into a new register (nil on AVX-512, whose
// opmask stays in k).
func (m tail) mask() reg.VecVirtual {
	if m.isa == avx512 {
		return nil
	}
	p := GP64()
	MOVQ(m.ptr, p)
	mk := m.isa.Vec()
	VMOVUPS(Mem{Base: p}, mk)
	return mk
}

// load reads the tail lanes of mem into x, zeros in the others.
func (m tail) load(mem Mem, mk, x reg.VecVirtual) {
	if m.isa == avx512 {
		VMOVUPS_Z(mem, m.k, x)
		return
	}
	VMASKMOVPS(mem, mk, x)
}

// store writes the tail lanes of x to mem.
func (m tail) store(x, mk reg.VecVirtual, mem Mem) {
	if m.isa == avx512 {
		VMOVUPS(x, m.k, mem)
		return
	}
	VMASKMOVPS(x, mk, mem)
}
