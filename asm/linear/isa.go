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
	regs  int    // vector registers
	kind  string // zmm, ymm (for comments)
	vec   func() reg.VecVirtual
}

var (
	avx512 = &isa{name: "avx512", lanes: 16, regs: 32, kind: "zmm", vec: ZMM}
	avx2   = &isa{name: "avx2", lanes: 8, regs: 16, kind: "ymm", vec: YMM}
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
	tailKMask = GLOBL("linearTailKMask", RODATA|NOPTR)
	for t := 0; t <= 16; t++ {
		DATA(2*t, U16(uint16(1<<t-1)))
	}
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
	p := GP64()
	if i == avx512 {
		Comment("k = (1<<t) - 1: lane l is in the tail iff l < t")
		m.k = K()
		LEAQ(tailKMask, p)
		KMOVW(Mem{Base: p, Index: t, Scale: 2}, m.k)
		return m
	}
	Comment("ptr = &linearTailTable[16-t]: lane l of the mask is set iff l < t, of the padding is -0 iff l >= t")
	m.ptr = AllocLocal(8)
	LEAQ(tailTable.Offset(4*16), p)
	SHLQ(U8(2), t)
	SUBQ(t, p)
	MOVQ(p, m.ptr)
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
	mk := m.isa.vec()
	VMOVUPS(Mem{Base: p}, mk)
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

// load4 loads integer parameter name times 4 (an element count or stride in
// float32s, as bytes) into a new register.
func load4(name string) reg.GPVirtual {
	r := GP64()
	MOVQ(arg(name), r)
	SHLQ(U8(2), r)
	return r
}

// local4 stores 4 × parameter name in a new stack slot.
func local4(name string) Mem {
	m := AllocLocal(8)
	MOVQ(load4(name), m)
	return m
}

// local copies parameter name (8 bytes) to a new stack slot, which the kernel
// then advances.
func local(name string) Mem {
	m := AllocLocal(8)
	r := GP64()
	MOVQ(arg(name), r)
	MOVQ(r, m)
	return m
}

// at is base + index + disp.
func at(base, index reg.Register, disp int) Mem {
	return Mem{Base: base, Index: index, Scale: 1, Disp: disp}
}

// ret ends a kernel: no AVX state may leak into SSE code.
func ret() {
	VZEROUPPER()
	RET()
}
