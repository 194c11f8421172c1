// Package simd holds what the avo generator programs under asm/ share: the
// two vector instruction sets they target (AVX-512 and AVX2, as float32
// vectors), the parameter loads every kernel starts with, the opmask table of
// a tail of t lanes, and the VZEROUPPER+RET epilogue.
//
// What differs between the families stays in each program: their tail and
// constant tables (each has its own symbol names, since the programs assemble
// into one Go package), how they mask partial vectors, and their loops.
package simd

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// ISA describes one vector instruction set: its vector width and registers.
type ISA struct {
	Name  string // function-name suffix: avx512, avx2
	Lanes int    // float32 lanes per vector
	Log2  int    // log2(Lanes)
	Regs  int    // vector registers
	Kind  string // zmm, ymm (for comments)
	Vec   func() reg.VecVirtual
}

// The two instruction sets every kernel family is generated for.
var (
	AVX512 = &ISA{Name: "avx512", Lanes: 16, Log2: 4, Regs: 32, Kind: "zmm", Vec: ZMM}
	AVX2   = &ISA{Name: "avx2", Lanes: 8, Log2: 3, Regs: 16, Kind: "ymm", Vec: YMM}
)

// VBytes is the size of one vector of float32s in bytes.
func (i *ISA) VBytes() int { return 4 * i.Lanes }

// Vecs allocates n vector registers.
func (i *ISA) Vecs(n int) []reg.VecVirtual {
	v := make([]reg.VecVirtual, n)
	for k := range v {
		v[k] = i.Vec()
	}
	return v
}

// Arg is the memory operand of a parameter.
func Arg(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// LoadGP loads parameter name (8 bytes) into a new register.
func LoadGP(name string) reg.GPVirtual {
	r := GP64()
	MOVQ(Arg(name), r)
	return r
}

// Load4 loads integer parameter name times 4 (an element count or stride in
// float32s, as bytes) into a new register.
func Load4(name string) reg.GPVirtual {
	r := LoadGP(name)
	SHLQ(U8(2), r)
	return r
}

// Local4 stores 4 × parameter name (a stride in float32s, as bytes) in a new
// stack slot.
func Local4(name string) Mem {
	m := AllocLocal(8)
	MOVQ(Load4(name), m)
	return m
}

// Local copies parameter name (8 bytes) to a new stack slot, which the kernel
// then advances.
func Local(name string) Mem {
	m := AllocLocal(8)
	MOVQ(LoadGP(name), m)
	return m
}

// At is base + index + disp.
func At(base, index reg.Register, disp int) Mem {
	return Mem{Base: base, Index: index, Scale: 1, Disp: disp}
}

// OpmaskTable emits the read-only table name of n uint16 opmasks, entry t
// being (1<<t)-1 (the first t lanes), and returns its symbol.
func OpmaskTable(name string, n int) Mem {
	m := GLOBL(name, RODATA|NOPTR)
	for t := 0; t < n; t++ {
		DATA(2*t, U16(uint16(1<<t-1)))
	}
	return m
}

// LoadOpmask loads entry t of the OpmaskTable table (t a register holding
// the lane count) into a new opmask register, through a new pointer register.
//
//	k = table[t] = (1<<t) - 1
func LoadOpmask(table Mem, t reg.GPVirtual) reg.OpmaskVirtual {
	p := GP64()
	Comment("k = (1<<t) - 1: lane l is in the tail iff l < t")
	k := K()
	LEAQ(table, p)
	KMOVW(Mem{Base: p, Index: t, Scale: 2}, k)
	return k
}

// TailPtr stores &table[n-t] in a new stack slot, for a table of n all-ones
// uint32 lanes then zero lanes, so that the lanes there are the VMASKMOVPS
// mask of the first t (t a register holding the lane count; clobbered).
//
//	ptr = &table[n-t]
func TailPtr(table Mem, n int, t reg.GPVirtual) Mem {
	p := GP64()
	ptr := AllocLocal(8)
	LEAQ(table.Offset(4*n), p)
	SHLQ(U8(2), t)
	SUBQ(t, p)
	MOVQ(p, ptr)
	return ptr
}

// Ret ends a kernel: no AVX state may leak into SSE code.
func Ret() {
	VZEROUPPER()
	RET()
}
