package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa describes one vector instruction set as the batch-norm kernels use it:
// vectors of float64 lanes, each converted from or to a float32 vector of as
// many lanes, half as wide.
type isa struct {
	name  string // function-name suffix: avx512, avx2
	lanes int    // float64 lanes per vector
	kind  string // zmm, ymm (for comments)
	vec   func() reg.VecVirtual
	half  func() reg.VecVirtual // float32 vector of lanes lanes: ymm, xmm
}

var (
	avx512 = &isa{name: "avx512", lanes: 8, kind: "zmm", vec: ZMM, half: YMM}
	avx2   = &isa{name: "avx2", lanes: 4, kind: "ymm", vec: YMM, half: XMM}
)

// b32 and b64 are the bytes of one vector's lanes as float32s and float64s.
func (i *isa) b32() int { return 4 * i.lanes }
func (i *isa) b64() int { return 8 * i.lanes }

func (i *isa) vecs(n int) []reg.VecVirtual {
	v := make([]reg.VecVirtual, n)
	for k := range v {
		v[k] = i.vec()
	}
	return v
}

// The tail tables. bnTailK[t] is the AVX-512 opmask (1<<t)-1. bnTail64 is 4
// all-ones then 4 zero uint64s, bnTail32 the same in uint32s: the 4 lanes
// starting 4-t lanes in are the AVX2 VMASKMOVPD / VMASKMOVPS mask of the
// first t lanes.
var tailK, tail64, tail32 Mem

func tailTables() {
	tailK = GLOBL("bnTailK", RODATA|NOPTR)
	for t := 0; t <= 8; t++ {
		DATA(t, U8(uint8(1<<t-1)))
	}
	tail64 = GLOBL("bnTail64", RODATA|NOPTR)
	for l := 0; l < 8; l++ {
		v := uint64(0)
		if l < 4 {
			v = ^v
		}
		DATA(8*l, U64(v))
	}
	tail32 = GLOBL("bnTail32", RODATA|NOPTR)
	for l := 0; l < 8; l++ {
		v := uint32(0)
		if l < 4 {
			v = ^v
		}
		DATA(4*l, U32(v))
	}
}

// tail is how a kernel reads and writes the last t < lanes channels without
// touching memory past them: an opmask on AVX-512; on AVX2 a VMASKMOVPD mask
// of 64-bit lanes and a VMASKMOVPS mask of 32-bit lanes.
type tail struct {
	k        reg.OpmaskVirtual // avx512: bit l set iff l < t
	m64, m32 reg.VecVirtual    // avx2: lane l all ones iff l < t (ymm, xmm)
}

// setupTail derives the masks of the first t lanes (t a register, 0 < t <
// lanes; clobbered).
//
//	avx512: k = (1<<t) - 1
//	avx2:   m64 = bnTail64[4-t:][:4]; m32 = bnTail32[4-t:][:4]
func setupTail(i *isa, t reg.GPVirtual) *tail {
	m := &tail{}
	p := GP64()
	if i == avx512 {
		Comment("k = (1<<t) - 1: lane l is in the tail iff l < t")
		m.k = K()
		LEAQ(tailK, p)
		KMOVB(Mem{Base: p, Index: t, Scale: 1}, m.k)
		return m
	}
	Comment("m64, m32 = lane l all ones iff l < t")
	NEGQ(t)
	m.m64, m.m32 = YMM(), XMM()
	LEAQ(tail64.Offset(32), p)
	VMOVUPD(Mem{Base: p, Index: t, Scale: 8}, m.m64)
	LEAQ(tail32.Offset(16), p)
	VMOVUPS(Mem{Base: p, Index: t, Scale: 4}, m.m32)
	return m
}
