package main

import (
	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/reg"
)

// The 1-D transforms, one vector instruction per operation of the pure-Go
// twins in runtime/winograd/transform.go (bt and at), on the same operands:
// products by 2, 4 and 8 are VMULPS by a constant vector (exact, as in Go's
// float32(4*x)), and nothing is fused, so every lane rounds exactly as the Go
// code does. Each helper allocates the registers of its results.

// sub emits x - y into a new register.
func sub(i *isa, x, y reg.VecVirtual) reg.VecVirtual {
	r := i.Vec()
	VSUBPS(y, x, r)
	return r
}

// add emits x + y into a new register.
func add(i *isa, x, y reg.VecVirtual) reg.VecVirtual {
	r := i.Vec()
	VADDPS(y, x, r)
	return r
}

// scale emits c*x (c one of the constants cTwo, cFour, cEight) into a new
// register.
func scale(i *isa, c int, x reg.VecVirtual) reg.VecVirtual {
	r := i.Vec()
	VMULPS(constant(c), x, r)
	return r
}

// bt emits one column (or row) of Bᵀ d B, the input transform, on 6 values:
//
//	t2 := d4 - d2
//	r0 = float32(4*(d0-d2)) + t2             // 4d0 - 5d2 + d4
//	t0 := d4 - float32(4*d2)
//	t1 := d3 - float32(4*d1)
//	r1 = t0 + t1                             // -4d1 - 4d2 + d3 + d4
//	r2 = t0 - t1                             //  4d1 - 4d2 - d3 + d4
//	t3 := float32(2 * (d3 - d1))
//	r3 = t2 + t3                             // -2d1 - d2 + 2d3 + d4
//	r4 = t2 - t3                             //  2d1 - d2 - 2d3 + d4
//	r5 = (d5 - d3) - float32(2*t3)           //  4d1 - 5d3 + d5
func bt(i *isa, d [6]reg.VecVirtual) [6]reg.VecVirtual {
	var r [6]reg.VecVirtual
	t2 := sub(i, d[4], d[2])
	r[0] = add(i, scale(i, cFour, sub(i, d[0], d[2])), t2)
	t0 := sub(i, d[4], scale(i, cFour, d[2]))
	t1 := sub(i, d[3], scale(i, cFour, d[1]))
	r[1] = add(i, t0, t1)
	r[2] = sub(i, t0, t1)
	t3 := scale(i, cTwo, sub(i, d[3], d[1]))
	r[3] = add(i, t2, t3)
	r[4] = sub(i, t2, t3)
	r[5] = sub(i, sub(i, d[5], d[3]), scale(i, cTwo, t3))
	return r
}

// at emits one column (or row) of Aᵀ m A, the output transform, on 6 values:
//
//	a, b := m1 + m2, m1 - m2
//	c, e := m3 + m4, m3 - m4
//	o0 = (m0 + a) + c                        // m0 + m1 + m2 + m3 + m4
//	o1 = b + float32(2*e)                    // m1 - m2 + 2m3 - 2m4
//	o2 = a + float32(4*c)                    // m1 + m2 + 4m3 + 4m4
//	o3 = (b + float32(8*e)) + m5             // m1 - m2 + 8m3 - 8m4 + m5
func at(i *isa, m [6]reg.VecVirtual) [4]reg.VecVirtual {
	var o [4]reg.VecVirtual
	a, b := add(i, m[1], m[2]), sub(i, m[1], m[2])
	c, e := add(i, m[3], m[4]), sub(i, m[3], m[4])
	o[0] = add(i, add(i, m[0], a), c)
	o[1] = add(i, b, scale(i, cTwo, e))
	o[2] = add(i, a, scale(i, cFour, c))
	o[3] = add(i, add(i, b, scale(i, cEight, e)), m[5])
	return o
}
