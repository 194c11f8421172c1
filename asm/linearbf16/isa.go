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

// The tail tables (the names differ from asm/linear's: both files assemble
// into one package).
//
// linearBF16TailTable, at byte offset
//
//	  0: 16 all-ones dwords, 16 zero dwords, 16 zero dwords, 16 dwords -0:
//	     the 8+8 dwords at 4*(16-t) are the VMASKMOVPS mask of x's first t
//	     lanes, and 128 bytes further the -0 padding of the lanes >= t;
//	256: 8 all-ones dwords, 8 zero dwords: the 8 dwords at 256+4*(8-t/2)
//	     are the VPMASKMOVD mask of the t/2 whole pairs of W's t bf16s;
//	320: 16 zero words, one all-ones word, 15 zero words: the 16 words at
//	     320+2*(17-t) select word t-1, W's last bf16 (odd t).
//
// linearBF16TailKMask[t] is the opmask (1<<t)-1, for 16 words or 16 dwords.
var tailTable, tailKMask Mem

// Byte offsets of the parts of linearBF16TailTable.
const (
	tailPairs = 256
	tailLast  = 320
)

func tailTables() {
	tailTable = GLOBL("linearBF16TailTable", RODATA|NOPTR)
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
	for d := 0; d < 16; d++ {
		v := uint32(0)
		if d < 8 {
			v = 0xffffffff
		}
		DATA(tailPairs+4*d, U32(v))
	}
	for w := 0; w < 32; w++ {
		v := uint16(0)
		if w == 16 {
			v = 0xffff
		}
		DATA(tailLast+2*w, U16(v))
	}
	tailKMask = simd.OpmaskTable("linearBF16TailKMask", 17)
}

// tail is how a kernel handles the last t < 16 inputs of a row without
// touching memory past them: an opmask on AVX-512, or on AVX2 pointers into
// linearBF16TailTable.
type tail struct {
	isa   *isa
	k     reg.OpmaskVirtual // avx512: bit l set iff l < t
	x     Mem               // avx2: local holding &linearBF16TailTable[16-t] (x's mask and -0 padding)
	pairs Mem               // avx2: local holding &linearBF16TailTable + 256 + 4*(8-t/2)
	last  Mem               // avx2: local holding &linearBF16TailTable + 320 + 2*(17-t)
}

// setupTail derives the tail masks from t (a register, 0 ≤ t < 16); t is
// clobbered.
//
//	avx512: k = (1<<t) - 1
//	avx2:   x = &table[16-t]; pairs = &table + 256 + 4*(8-t/2); last = &table + 320 + 2*(17-t)
func setupTail(i *isa, t reg.GPVirtual) tail {
	m := tail{isa: i}
	if i == avx512 {
		m.k = simd.LoadOpmask(tailKMask, t)
		return m
	}
	p := GP64()
	Comment("x = &table[16-t]: lane l of the mask is set iff l < t, of the padding is -0 iff l >= t")
	m.x, m.pairs, m.last = AllocLocal(8), AllocLocal(8), AllocLocal(8)
	LEAQ(tailTable.Offset(4*16), p)
	q := GP64()
	MOVQ(t, q)
	SHLQ(U8(2), q)
	SUBQ(q, p)
	MOVQ(p, m.x)
	Comment("last = &table + 320 + 2*(17-t): word l is all ones iff l == t-1")
	LEAQ(tailTable.Offset(tailLast+2*17), p)
	MOVQ(t, q)
	SHLQ(U8(1), q)
	SUBQ(q, p)
	MOVQ(p, m.last)
	Comment("pairs = &table + 256 + 4*(8-t/2): dword d is all ones iff d < t/2")
	LEAQ(tailTable.Offset(tailPairs+4*8), p)
	SHRQ(U8(1), t)
	SHLQ(U8(2), t)
	SUBQ(t, p)
	MOVQ(p, m.pairs)
	return m
}

// local2 stores 2 × parameter name (a stride in bf16s, as bytes) in a new
// stack slot.
func local2(name string) Mem {
	m := AllocLocal(8)
	r := simd.LoadGP(name)
	SHLQ(U8(1), r)
	MOVQ(r, m)
	return m
}

// xAt is &x[i][k] + disp bytes for an element index k: base + 4*k + disp.
func xAt(base, k reg.Register, disp int) Mem {
	return Mem{Base: base, Index: k, Scale: 4, Disp: disp}
}

// wAt is &W[j][k] + disp bytes for an element index k: base + 2*k + disp.
func wAt(base, k reg.Register, disp int) Mem {
	return Mem{Base: base, Index: k, Scale: 2, Disp: disp}
}
