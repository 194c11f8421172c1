package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// The comparison predicates of VCMPPS used for the ReLU mask.
const (
	cmpLTOQ  = 0x11 // src1 < src2, false if either is NaN
	cmpNLTUQ = 0x15 // !(src1 < src2), true if either is NaN
)

// Every kernel's contract is the function of the same name in
// runtime/kernels/bn.go. In the bodies below, VOP src2, src1, dst (avo's and
// Go's operand order) is dst = src1 op src2, with src1 the left operand of the
// Go expression that is quoted.

var bnSum = &kernel{
	name: "bnSum", api: "BNSum",
	sig: "func(sum *float64, x *float32, sx, np, n int)",
	doc: []string{
		"sx is in float32s, np, n ≥ 1.",
	},
	impl:    []string{"sum[k] += float64(x[p*sx+k])"},
	streams: []stream{{"x", "sx"}},
	accs:    []string{"sum"},
	vecs:    map[*isa]int{avx512: 16, avx2: 8},
	body: func(c *chunk, j int) {
		x := c.load("x", j)
		s := c.acc["sum"][j]
		VADDPD(x, s, s)
	},
}

var bnSumSq = &kernel{
	name: "bnSumSq", api: "BNSumSq",
	sig: "func(sq *float64, x *float32, sx, np, n int, mean *float64)",
	doc: []string{
		"sx is in float32s, np, n ≥ 1.",
	},
	impl: []string{
		"d := float64(x[p*sx+k]) - mean[k]",
		"sq[k] += float64(d*d)",
	},
	streams: []stream{{"x", "sx"}},
	consts:  []string{"mean"},
	accs:    []string{"sq"},
	vecs:    map[*isa]int{avx512: 16, avx2: 8},
	body: func(c *chunk, j int) {
		d := c.load("x", j)
		s := c.acc["sq"][j]
		VSUBPD(c.con("mean", j), d, d)
		VMULPD(d, d, d)
		VADDPD(d, s, s)
	},
}

// bnApply is BNApply without (relu false) or with the ReLU.
func bnApply(relu bool) *kernel {
	k := &kernel{
		name: "bnApply", api: "BNApply",
		sig: "func(out *float32, so int, x *float32, sx, np, n int, scale, shift *float64)",
		doc: []string{
			"strides are in float32s, np, n ≥ 1; out may be x with so == sx.",
		},
		impl: []string{
			"v := float32(float64(float64(x[p*sx+k])*scale[k]) + shift[k])",
			"out[p*so+k] = v",
		},
		streams: []stream{{"x", "sx"}, {"out", "so"}},
		consts:  []string{"scale", "shift"},
		vecs:    map[*isa]int{avx512: 16, avx2: 8},
		body: func(c *chunk, j int) {
			v := c.load("x", j)
			VMULPD(c.con("scale", j), v, v)
			VADDPD(c.con("shift", j), v, v)
			c.store(v, "out", j, relu)
		},
	}
	if relu {
		k.name, k.api = "bnApplyReLU", "BNApply with relu"
		k.impl = []string{
			"v := float32(float64(float64(x[p*sx+k])*scale[k]) + shift[k])",
			"if v < 0 { v = 0 }",
			"out[p*so+k] = v",
		}
		k.setup = setupZero
	}
	return k
}

// setupZero sets vars["zero"] to a float32 vector of +0.
func setupZero(e *emitter) {
	z := e.i.half()
	VXORPS(z, z, z)
	e.vars["zero"] = z
}

// bnBackSums is BNBackSums with out nil (relu false) or not.
func bnBackSums(relu bool) *kernel {
	k := &kernel{
		name: "bnBackSums", api: "BNBackSums with out nil",
		sig: "func(sg, sgx *float64, d *float32, sd int, x *float32, sx, np, n int, mean, invstd *float64)",
		doc: []string{
			"strides are in float32s, np, n ≥ 1.",
		},
		impl: []string{
			"g := float64(d[p*sd+k])",
			"xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])",
			"sg[k] += g",
			"sgx[k] += float64(g * xh)",
		},
		streams: []stream{{"d", "sd"}, {"x", "sx"}},
		consts:  []string{"mean", "invstd"},
		accs:    []string{"sg", "sgx"},
		vecs:    map[*isa]int{avx512: 8, avx2: 4},
	}
	var grad func(c *chunk, j int) reg.VecVirtual
	if relu {
		k.name, k.api = "bnBackSumsReLU", "BNBackSums with out"
		k.sig = "func(sg, sgx *float64, d *float32, sd int, x *float32, sx int, out *float32, so, np, n int, mean, invstd *float64)"
		k.doc = []string{
			"strides are in float32s, np, n ≥ 1. d is set to +0 where !(out > 0),",
			"with masked stores that leave every other element of d untouched.",
		}
		k.impl = append([]string{"if !(out[p*so+k] > 0) { d[p*sd+k] = 0 }"}, k.impl...)
		k.streams = append(k.streams, stream{"out", "so"})
		k.setup = setupZero
		grad = reluGrad
	} else {
		grad = func(c *chunk, j int) reg.VecVirtual { return c.load("d", j) }
	}
	k.body = func(c *chunk, j int) {
		g := grad(c, j)
		xh := c.load("x", j)
		VSUBPD(c.con("mean", j), xh, xh)
		VMULPD(c.con("invstd", j), xh, xh)
		sg, sgx := c.acc["sg"][j], c.acc["sgx"][j]
		VADDPD(g, sg, sg)
		VMULPD(xh, g, xh)
		VADDPD(xh, sgx, sgx)
	}
	return k
}

// reluGrad masks vector j of d in place by the fused ReLU and returns it as
// float64s, without a store-to-load round trip: d is read once, the returned
// g is d where out > 0 and +0 elsewhere, and +0 is stored exactly where
// !(out > 0).
//
//	avx512: k = 0 < out; g = float64(d) under k, zeroing; d = 0 under ^k
//	avx2:   m = 0 < out; nm = !(0 < out); g = float64(d & m); d = 0 under nm
func reluGrad(c *chunk, j int) reg.VecVirtual {
	zero := c.vars["zero"]
	out, d := c.at("out", j), c.at("d", j)
	g := c.i.vec()
	if c.i == avx512 {
		k, nk := K(), K()
		if c.tail == nil {
			VCMPPS(U8(cmpLTOQ), out, zero, k)
			KNOTB(k, nk)
		} else {
			o := YMM()
			VMOVUPS_Z(out, c.tail.k, o)
			VCMPPS(U8(cmpLTOQ), o, zero, c.tail.k, k)
			KANDNB(c.tail.k, k, nk)
		}
		VCVTPS2PD_Z(d, k, g)
		VMOVUPS(zero, nk, d)
		return g
	}
	m, nm, gs := XMM(), XMM(), XMM()
	if c.tail == nil {
		VCMPPS(U8(cmpLTOQ), out, zero, m)
		VCMPPS(U8(cmpNLTUQ), out, zero, nm)
		VANDPS(d, m, gs)
	} else {
		o := XMM()
		VMASKMOVPS(out, c.tail.m32, o)
		VCMPPS(U8(cmpLTOQ), o, zero, m)
		VCMPPS(U8(cmpNLTUQ), o, zero, nm)
		VANDPS(c.tail.m32, nm, nm)
		VMASKMOVPS(d, c.tail.m32, gs)
		VANDPS(gs, m, gs)
	}
	VMASKMOVPS(zero, nm, d)
	VCVTPS2PD(gs, g)
	return g
}

var bnBackData = &kernel{
	name: "bnBackData", api: "BNBackData",
	sig: "func(dx *float32, sdx int, d *float32, sd int, x *float32, sx, np, n int, mean, invstd, kc, sg, sgx *float64, cnt float64)",
	doc: []string{
		"strides are in float32s, np, n ≥ 1; dx may be d with sdx == sd.",
		"kc[k]/cnt is computed once per chunk.",
	},
	impl: []string{
		"g := float64(d[p*sd+k])",
		"xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])",
		"a := float64(cnt*g) - sg[k]",
		"t := a - float64(xh*sgx[k])",
		"dx[p*sdx+k] = float32(kcn[k] * t)",
	},
	streams: []stream{{"d", "sd"}, {"x", "sx"}, {"dx", "sdx"}},
	consts:  []string{"mean", "invstd", "kc", "sg", "sgx"},
	vecs:    map[*isa]int{avx512: 16, avx2: 8},
	setup: func(e *emitter) {
		c := e.i.vec()
		VBROADCASTSD(simd.Arg("cnt"), c)
		e.vars["cnt"] = c
	},
	init: func(c *chunk) {
		Comment("kcn[k] = kc[k] / cnt")
		cnt := c.vars["cnt"]
		for j := 0; j < c.v; j++ {
			r := c.i.vec()
			if c.tail != nil {
				VDIVPD(cnt, c.pre["kc"], r)
			} else {
				VMOVUPD(c.arr("kc", j), r)
				VDIVPD(cnt, r, r)
			}
			c.vals["kcn"] = append(c.vals["kcn"], r)
		}
	},
	body: func(c *chunk, j int) {
		g := c.load("d", j)
		xh := c.load("x", j)
		VSUBPD(c.con("mean", j), xh, xh)
		VMULPD(c.con("invstd", j), xh, xh)
		a := c.i.vec()
		VMULPD(g, c.vars["cnt"], a)
		VSUBPD(c.con("sg", j), a, a)
		VMULPD(c.con("sgx", j), xh, xh)
		VSUBPD(xh, a, a)
		VMULPD(a, c.vals["kcn"][j], a)
		c.store(a, "dx", j, false)
	},
}

var bnBackDataEval = &kernel{
	name: "bnBackDataEval", api: "BNBackDataEval",
	sig: "func(dx *float32, sdx int, d *float32, sd, np, n int, kc *float64)",
	doc: []string{
		"strides are in float32s, np, n ≥ 1; dx may be d with sdx == sd.",
	},
	impl:    []string{"dx[p*sdx+k] = float32(float64(d[p*sd+k]) * kc[k])"},
	streams: []stream{{"d", "sd"}, {"dx", "sdx"}},
	consts:  []string{"kc"},
	vecs:    map[*isa]int{avx512: 16, avx2: 8},
	body: func(c *chunk, j int) {
		g := c.load("d", j)
		VMULPD(c.con("kc", j), g, g)
		c.store(g, "dx", j, false)
	},
}
