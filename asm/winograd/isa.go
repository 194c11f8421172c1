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

// The constant tables. winoTailMask is 8 all-ones lanes then 8 zero lanes:
// the 8 lanes at byte offset 4*(8-t) are the VMASKMOVPS mask of the first t
// channels. winoTailKMask[t] is the opmask (1<<t)-1. winoConst holds 16 lanes
// of each of the transforms' constants (2, 4, 8) and of -Inf (the ReLU floor
// that lets every value through), so that a vector instruction can take any
// of them as a memory operand, zmm or ymm.
var tailMask, tailKMask, consts Mem

// The constants' vectors in winoConst, in this order.
const (
	cTwo = iota
	cFour
	cEight
	cNegInf
	nConsts
)

func tables() {
	tailMask = GLOBL("winoTailMask", RODATA|NOPTR)
	for l := 0; l < 16; l++ {
		v := uint32(0)
		if l < 8 {
			v = 0xffffffff
		}
		DATA(4*l, U32(v))
	}
	tailKMask = simd.OpmaskTable("winoTailKMask", 17)
	consts = GLOBL("winoConst", RODATA|NOPTR)
	for k, bits := range []uint32{0x40000000, 0x40800000, 0x41000000, 0xff800000} { // 2, 4, 8, -Inf
		for l := 0; l < 16; l++ {
			DATA(64*k+4*l, U32(bits))
		}
	}
}

// constant is the memory operand of constant k (cTwo, ...): a vector of any
// width, or one lane for a broadcast.
func constant(k int) Mem { return consts.Offset(64 * k) }

// tail is how a kernel touches only the last t = nc mod lanes channels of a
// pixel: an opmask on AVX-512, or on AVX2 a pointer into winoTailMask whose
// vector VMASKMOVPS uses. Masked loads read zeros in the other lanes without
// touching their memory; masked stores leave them alone.
type tail struct {
	isa *isa
	k   reg.OpmaskVirtual // avx512: bit l set iff l < t
	ptr Mem               // avx2: local holding &winoTailMask[8-t]
}

// setupTail derives the tail masks from t (a register, 0 ≤ t < lanes); t is
// clobbered.
//
//	avx512: k = (1<<t) - 1
//	avx2:   ptr = &winoTailMask[8-t]
func setupTail(i *isa, t reg.GPVirtual) tail {
	m := tail{isa: i}
	if i == avx512 {
		m.k = simd.LoadOpmask(tailKMask, t)
		return m
	}
	Comment("ptr = &winoTailMask[8-t]: lane l of the mask is set iff l < t")
	m.ptr = simd.TailPtr(tailMask, 8, t)
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

// vio loads and stores the vectors of one channel block: whole vectors, or
// the tail lanes only (mk is the AVX2 mask register, nil on AVX-512).
type vio struct {
	masked bool
	t      tail
	mk     reg.VecVirtual
}

// load reads mem into x (zeros in the lanes past the tail, whose memory is
// not touched).
func (v vio) load(mem Mem, x reg.VecVirtual) {
	switch {
	case !v.masked:
		VMOVUPS(mem, x)
	case v.t.isa == avx512:
		VMOVUPS_Z(mem, v.t.k, x)
	default:
		VMASKMOVPS(mem, v.mk, x)
	}
}

// store writes x to mem (the tail lanes only, if masked).
func (v vio) store(x reg.VecVirtual, mem Mem) {
	switch {
	case !v.masked:
		VMOVUPS(x, mem)
	case v.t.isa == avx512:
		VMOVUPS(x, v.t.k, mem)
	default:
		VMASKMOVPS(x, v.mk, mem)
	}
}

// alignedLocal allocates n bytes of stack aligned to 64 bytes and returns a
// register pointing at them.
func alignedLocal(n int) reg.GPVirtual {
	m := AllocLocal(n + 64)
	p := GP64()
	LEAQ(m, p)
	ADDQ(U8(63), p)
	ANDQ(I8(-64), p)
	return p
}
