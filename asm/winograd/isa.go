package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa describes one vector instruction set: its vector width and registers.
type isa struct {
	name  string // function-name suffix: avx512, avx2
	lanes int    // float32 lanes per vector
	log2  int    // log2(lanes)
	kind  string // zmm, ymm (for comments)
	vec   func() reg.VecVirtual
}

var (
	avx512 = &isa{name: "avx512", lanes: 16, log2: 4, kind: "zmm", vec: ZMM}
	avx2   = &isa{name: "avx2", lanes: 8, log2: 3, kind: "ymm", vec: YMM}
)

// vbytes is the size of one vector in bytes.
func (i *isa) vbytes() int { return 4 * i.lanes }

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
	tailKMask = GLOBL("winoTailKMask", RODATA|NOPTR)
	for t := 0; t <= 16; t++ {
		DATA(2*t, U16(uint16(1<<t-1)))
	}
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
	p := GP64()
	if i == avx512 {
		Comment("k = (1<<t) - 1: lane l is in the tail iff l < t")
		m.k = K()
		LEAQ(tailKMask, p)
		KMOVW(Mem{Base: p, Index: t, Scale: 2}, m.k)
		return m
	}
	Comment("ptr = &winoTailMask[8-t]: lane l of the mask is set iff l < t")
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
	mk := m.isa.vec()
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

// arg is the memory operand of a parameter.
func arg(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// loadGP loads parameter name into a new register.
func loadGP(name string) reg.GPVirtual {
	r := GP64()
	MOVQ(arg(name), r)
	return r
}

// load4 loads integer parameter name times 4 (a stride in float32s, as
// bytes) into a new register.
func load4(name string) reg.GPVirtual {
	r := loadGP(name)
	SHLQ(U8(2), r)
	return r
}

// local4 stores 4 × parameter name in a new stack slot.
func local4(name string) Mem {
	m := AllocLocal(8)
	MOVQ(load4(name), m)
	return m
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
