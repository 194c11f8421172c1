// Command sgd generates the SGD update kernels of runtime/kernels (SGDUpdate;
// runtime/kernels/sgd.go is the contract) for AVX-512 and AVX2 with avo.
//
// The update is elementwise, so a lane of a vector is one value's update, in
// the contract's order: every product is a VMULPS and every sum a VADDPS or
// VSUBPS, each rounded to float32 on its own, never an FMA. The results equal
// sgdUpdateGo's bit for bit (NaN payloads aside).
//
// The options that change the arithmetic (momentum on the first step or
// later, Nesterov, weight decay, zeroing the gradient) are decided by the
// caller once per call, so each combination is its own kernel, named
// sgd_<momentum>[_wd][_zero]_<isa>, without a branch in its loop: the
// dispatch in runtime/kernels/sgd_amd64.go picks one from a table in the
// order the generator emits them (sgdVariants). Each kernel runs over n
// values in blocks of unroll vectors, then single vectors, then the last
// n mod lanes values under a mask (an opmask on AVX-512, VMASKMOVPS on AVX2)
// that leaves memory past them untouched.
package main

//go:generate go run . -out ../../runtime/kernels/sgd_amd64.s -stubs ../../runtime/kernels/sgd_amd64_stubs.go -pkg kernels

import (
	"fmt"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// isa is the vector instruction set a kernel is generated for.
type isa = simd.ISA

var avx512, avx2 = simd.AVX512, simd.AVX2

// unroll is the number of vectors per iteration of the main loop: 4 zmm are
// 4 cache lines of each of v, g and buf. The vectors are emitted one after
// the other, so they share registers and the out-of-order core overlaps them.
const unroll = 4

// momentum is how a kernel uses the momentum buffer.
type momentum int

const (
	plain momentum = iota // no buffer: d is the step
	first                 // the first step: buf = d
	later                 // later steps: buf = mom·buf + d
)

// variant is one kernel's combination of options.
type variant struct {
	mom      momentum
	nesterov bool // the step is d + mom·buf instead of buf
	wd       bool // add wd·v to the gradient
	zero     bool // store +0 to g
}

// sgdVariants lists the kernels per ISA in table order: momentum mode (plain,
// first, later, first Nesterov, later Nesterov) × weight decay × zero, the
// index being 4·mode + 2·wd + zero (runtime/kernels/sgd_amd64.go).
func sgdVariants() []variant {
	modes := []variant{{mom: plain}, {mom: first}, {mom: later}, {mom: first, nesterov: true}, {mom: later, nesterov: true}}
	var vs []variant
	for _, m := range modes {
		for _, wd := range []bool{false, true} {
			for _, zero := range []bool{false, true} {
				m.wd, m.zero = wd, zero
				vs = append(vs, m)
			}
		}
	}
	return vs
}

// name is the variant's kernel name on ISA i.
func (v variant) name(i *isa) string {
	parts := []string{"sgd"}
	switch {
	case v.mom == plain:
		parts = append(parts, "plain")
	case v.nesterov && v.mom == first:
		parts = append(parts, "nesterovfirst")
	case v.nesterov:
		parts = append(parts, "nesterov")
	case v.mom == first:
		parts = append(parts, "momfirst")
	default:
		parts = append(parts, "mom")
	}
	if v.wd {
		parts = append(parts, "wd")
	}
	if v.zero {
		parts = append(parts, "zero")
	}
	return strings.Join(append(parts, i.Name), "_")
}

// doc is the Go the variant computes for one value (the contract in
// runtime/kernels/sgd.go with the options fixed).
func (v variant) doc() []string {
	var s []string
	if v.wd {
		s = append(s, "d := g[k] + float32(wd*v[k])")
	} else {
		s = append(s, "d := g[k]")
	}
	switch v.mom {
	case first:
		s = append(s, "buf[k] = d")
	case later:
		s = append(s, "buf[k] = float32(mom*buf[k]) + d")
	}
	switch {
	case v.nesterov:
		s = append(s, "d += float32(mom*buf[k])")
	case v.mom != plain:
		s = append(s, "d = buf[k]")
	}
	s = append(s, "v[k] -= float32(lr*d)")
	if v.zero {
		s = append(s, "g[k] = 0")
	}
	return s
}

func main() {
	ConstraintExpr("amd64,!purego") // printed as: //go:build amd64 && !purego
	tailTables()
	for _, i := range []*isa{avx512, avx2} {
		for _, v := range sgdVariants() {
			kernel(i, v)
		}
	}
	stream(avx512)
	stream(avx2)
	Generate()
}

// The tail masks. sgdTailMask is 8 all-ones lanes then 8 zero lanes: the 8
// lanes at byte offset 4*(8-t) are the VMASKMOVPS mask of the first t lanes.
// sgdTailKMask[t] is the opmask (1<<t)-1.
var tailMask, tailKMask Mem

func tailTables() {
	tailMask = GLOBL("sgdTailMask", RODATA|NOPTR)
	for l := 0; l < 16; l++ {
		v := uint32(0)
		if l < 8 {
			v = 0xffffffff
		}
		DATA(4*l, U32(v))
	}
	tailKMask = simd.OpmaskTable("sgdTailKMask", 16)
}

// access is how the kernel body reads and writes a vector: whole, or the
// first t lanes under a mask.
type access struct {
	load  func(m Mem, x reg.VecVirtual)
	store func(x reg.VecVirtual, m Mem)
}

func whole() access {
	return access{
		load:  func(m Mem, x reg.VecVirtual) { VMOVUPS(m, x) },
		store: func(x reg.VecVirtual, m Mem) { VMOVUPS(x, m) },
	}
}

// masked derives the tail mask from tb = 4·t, the bytes left (0 < t < lanes),
// and returns the masked access.
//
//	avx512: k = sgdTailKMask[t]
//	avx2:   mask = sgdTailMask[8-t:][:8]
func masked(i *isa, tb reg.GPVirtual) access {
	p := GP64()
	if i == avx512 {
		Comment("k = (1<<t) - 1: lane l is stored iff l < t")
		k := K()
		LEAQ(tailKMask, p)
		SHRQ(U8(1), tb)
		KMOVW(Mem{Base: p, Index: tb, Scale: 1}, k)
		return access{
			load:  func(m Mem, x reg.VecVirtual) { VMOVUPS_Z(m, k, x) },
			store: func(x reg.VecVirtual, m Mem) { VMOVUPS(x, k, m) },
		}
	}
	Comment("mask = sgdTailMask[8-t:][:8]: lane l is set iff l < t")
	mask := i.Vec()
	LEAQ(tailMask.Offset(32), p)
	SUBQ(tb, p)
	VMOVUPS(Mem{Base: p}, mask)
	return access{
		load:  func(m Mem, x reg.VecVirtual) { VMASKMOVPS(m, mask, x) },
		store: func(x reg.VecVirtual, m Mem) { VMASKMOVPS(x, mask, m) },
	}
}

// consts holds the broadcast scalars a kernel needs.
type consts struct {
	lr, wd, mom, zero reg.VecVirtual
}

// ptrs are the operand base pointers; the index register counts bytes.
type ptrs struct{ v, g, buf reg.GPVirtual }

// body updates the vector at byte offset idx+disp of every operand.
func body(i *isa, vr variant, c consts, p ptrs, idx reg.GPVirtual, disp int, a access) {
	vm, gm, bm := simd.At(p.v, idx, disp), simd.At(p.g, idx, disp), simd.At(p.buf, idx, disp)
	x, d, t := i.Vec(), i.Vec(), i.Vec()
	a.load(vm, x)
	a.load(gm, d)
	if vr.wd {
		Comment("d := g[k] + float32(wd*v[k])")
		VMULPS(x, c.wd, t)
		VADDPS(t, d, d)
	} else {
		Comment("d := g[k]")
	}
	var b reg.VecVirtual
	switch vr.mom {
	case first:
		Comment("buf[k] = d")
		b = d
		a.store(d, bm)
	case later:
		Comment("buf[k] = float32(mom*buf[k]) + d")
		b = i.Vec()
		a.load(bm, b)
		VMULPS(b, c.mom, b)
		VADDPS(d, b, b)
		a.store(b, bm)
	}
	switch {
	case vr.nesterov:
		Comment("d += float32(mom*buf[k])")
		VMULPS(b, c.mom, t)
		VADDPS(t, d, d)
	case vr.mom != plain:
		Comment("d = buf[k]")
		d = b
	}
	Comment("v[k] -= float32(lr*d)")
	VMULPS(d, c.lr, t)
	VSUBPS(t, x, x)
	a.store(x, vm)
	if vr.zero {
		Comment("g[k] = 0")
		a.store(c.zero, gm)
	}
}

/*
	for k := range v {
		(the variant's update of value k: variant.doc)
	}
*/
func kernel(i *isa, vr variant) {
	name := vr.name(i)
	TEXT(name, NOSPLIT, "func(v, grad, buf *float32, n int, lr, wd, mom float32)")
	Pragma("noescape")
	lines := []string{
		fmt.Sprintf("%s is SGDUpdate (n ≥ 1; grad is g) in %s vectors, %d per loop iteration,", name, i.Kind, unroll),
		fmt.Sprintf("then single vectors, then the last n mod %d values under a mask; for each value k:", i.Lanes),
		"",
	}
	for _, l := range vr.doc() {
		lines = append(lines, "\t"+l)
	}
	Doc(lines...)

	Comment("Broadcast the scalars the variant uses.")
	var c consts
	c.lr = i.Vec()
	VBROADCASTSS(simd.Arg("lr"), c.lr)
	if vr.wd {
		c.wd = i.Vec()
		VBROADCASTSS(simd.Arg("wd"), c.wd)
	}
	if vr.mom == later || vr.nesterov {
		c.mom = i.Vec()
		VBROADCASTSS(simd.Arg("mom"), c.mom)
	}
	if vr.zero {
		c.zero = i.Vec()
		VXORPS(c.zero, c.zero, c.zero)
	}
	p := ptrs{v: simd.LoadGP("v"), g: simd.LoadGP("grad")}
	if vr.mom != plain {
		p.buf = simd.LoadGP("buf")
	}
	nb := simd.LoadGP("n")
	SHLQ(U8(2), nb)
	idx := GP64()
	XORQ(idx, idx)

	vb := i.VBytes()
	for _, w := range []int{unroll, 1} {
		l := fmt.Sprintf("%s_x%d", name, w)
		Label(l)
		Commentf("for ; idx+%d <= 4*n; idx += %d: %d vector(s)", w*vb, w*vb, w)
		e := GP64()
		LEAQ(Mem{Base: idx, Disp: w * vb}, e)
		CMPQ(e, nb)
		JA(LabelRef(l + "_end"))
		for u := 0; u < w; u++ {
			body(i, vr, c, p, idx, u*vb, whole())
		}
		ADDQ(U32(w*vb), idx)
		JMP(LabelRef(l))
		Label(l + "_end")
	}
	Commentf("if idx < 4*n: the last t = n mod %d values, masked", i.Lanes)
	SUBQ(idx, nb)
	JZ(LabelRef(name + "_done"))
	body(i, vr, c, p, idx, 0, masked(i, nb))
	Label(name + "_done")
	simd.Ret()
}

/*
	for k := range v { v[k], buf[k] = buf[k], v[k]+g[k] }
*/
// stream emits the bandwidth probe the SGD benchmarks compare with: the same
// memory traffic as the update with momentum (read v, g and buf; write v and
// buf) with one addition instead of the update's arithmetic.
func stream(i *isa) {
	name := "sgdStream_" + i.Name
	TEXT(name, NOSPLIT, "func(v, grad, buf *float32, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets v, buf = buf, v+g over n values (n > 0 a multiple of %d) with %s", name, unroll*i.Lanes, i.Kind),
		"vectors: the memory traffic of SGDUpdate with momentum without most of its arithmetic, the",
		"bandwidth the SGD benchmarks compare with.")
	p := ptrs{v: simd.LoadGP("v"), g: simd.LoadGP("grad"), buf: simd.LoadGP("buf")}
	nb := simd.LoadGP("n")
	SHLQ(U8(2), nb)
	idx := GP64()
	XORQ(idx, idx)
	Label(name + "_loop")
	Comment("v[k], buf[k] = buf[k], v[k]+g[k]")
	vb := i.VBytes()
	for u := 0; u < unroll; u++ {
		x, y := i.Vec(), i.Vec()
		VMOVUPS(simd.At(p.v, idx, u*vb), x)
		VADDPS(simd.At(p.g, idx, u*vb), x, x)
		VMOVUPS(simd.At(p.buf, idx, u*vb), y)
		VMOVUPS(x, simd.At(p.buf, idx, u*vb))
		VMOVUPS(y, simd.At(p.v, idx, u*vb))
	}
	ADDQ(U32(unroll*vb), idx)
	CMPQ(idx, nb)
	JB(LabelRef(name + "_loop"))
	simd.Ret()
}
