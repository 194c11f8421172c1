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

// vecs allocates n vector registers.
func (i *isa) vecs(n int) []reg.VecVirtual {
	v := make([]reg.VecVirtual, n)
	for k := range v {
		v[k] = i.vec()
	}
	return v
}

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
	mk := m.isa.vec()
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
