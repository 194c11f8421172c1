package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// isa is the vector instruction set a kernel is generated for.
type isa = simd.ISA

var avx512, avx2 = simd.AVX512, simd.AVX2

// The tail tables. linearTailTable is 16 all-ones lanes, 16 zero lanes, then 16
// zero lanes and 16 lanes holding only the sign bit (-0): the 16 lanes at byte
// offset 4*(16-t) are the VMASKMOVPS mask of the first t lanes, and 128 bytes
// further the -0 padding of the lanes >= t. linearTailKMask[t] is the opmask
// (1<<t)-1.
var tailTable, tailKMask Mem

func tailTables() {
	tailTable = GLOBL("linearTailTable", RODATA|NOPTR)
	for l := 0; l < 64; l++ {
		v := uint32(0)
		switch {
		case l < 16:
			v = 0xffffffff
		case l >= 48:
			v = 0x80000000
		}
		DATA(4*l, U32(v))
	}
	tailKMask = simd.OpmaskTable("linearTailKMask", 17)
}

// tail is how a kernel handles the last t < 16 (or < lanes) elements of a row
// without touching memory past them: an opmask on AVX-512, or on AVX2 a pointer
// into linearTailTable for VMASKMOVPS and the -0 padding.
type tail struct {
	isa *isa
	k   reg.OpmaskVirtual // avx512: bit l set iff l < t
	ptr Mem               // avx2: local holding &linearTailTable[16-t]
}

// setupTail derives the tail masks from t (a register, 0 ≤ t < 16); t is
// clobbered.
//
//	avx512: k = (1<<t) - 1
//	avx2:   ptr = &linearTailTable[16-t]
func setupTail(i *isa, t reg.GPVirtual) tail {
	m := tail{isa: i}
	if i == avx512 {
		m.k = simd.LoadOpmask(tailKMask, t)
		return m
	}
	Comment("ptr = &linearTailTable[16-t]: lane l of the mask is set iff l < t, of the padding is -0 iff l >= t")
	m.ptr = simd.TailPtr(tailTable, 16, t)
	return m
}

// avx2Ptr loads the AVX2 table pointer into a fresh register.
func (m tail) avx2Ptr() reg.GPVirtual {
	p := GP64()
	MOVQ(m.ptr, p)
	return p
}

// load reads the vector at mem with zeros in the lanes >= t, without touching
// their memory. On AVX2, p is the table pointer (avx2Ptr) and part selects
// lanes 8*part.. of the tail.
func (m tail) load(mem Mem, p reg.GPVirtual, part int, x reg.VecVirtual) {
	if m.isa == avx512 {
		VMOVUPS_Z(mem, m.k, x)
		return
	}
	VMOVUPS(Mem{Base: p, Disp: 32 * part}, x)
	VMASKMOVPS(mem, x, x)
}

// store writes the lanes < t of x to mem.
func (m tail) store(x reg.VecVirtual, p reg.GPVirtual, mem Mem) {
	if m.isa == avx512 {
		VMOVUPS(x, m.k, mem)
		return
	}
	mk := m.isa.Vec()
	VMOVUPS(Mem{Base: p}, mk)
	VMASKMOVPS(x, mk, mem)
}
