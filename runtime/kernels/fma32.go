package kernels

import "math"

// FMA32 returns x*y+z computed with a single rounding to float32 (round to
// nearest, ties to even), as the hardware VFMADD231PS / VFMADD*SS
// instructions do under the default MXCSR (no FTZ/DAZ). It is the primitive
// the pure-Go kernels use so that their results are bit-identical to the
// AVX2 and AVX-512 kernels.
//
// Special cases follow IEEE 754 fusedMultiplyAdd: signed zeros (an exact
// zero sum of opposite signs is +0, (-0)+(-0) is -0), overflow to ±Inf,
// correctly rounded subnormal results, Inf*0 = NaN and Inf-Inf = NaN. When
// the result is NaN, FMA32 returns a quiet NaN whose sign and payload are
// unspecified: they come from Go's float64 arithmetic (a NaN operand is
// usually propagated, quieted; an invalid operation gives the platform's
// default NaN) and need not match the NaN the hardware FMA returns.
//
// Method: the float64 product p of two float32 values is exact (24+24 bits
// fit in 53, and the float64 exponent range covers every such product). The
// sum p+z is computed in float64 together with its exact rounding error
// (TwoSum), and the float64 sum is then rounded to odd: if it was inexact,
// it is replaced by whichever of the two float64 neighbours of the exact
// value has an odd last mantissa bit. A value rounded to odd with at least
// two more bits than the target format (53 >= 24+2) rounds to nearest-even
// in the target format exactly as the exact value would, so the final
// float32 conversion is the only rounding that matters. This also holds at
// the overflow threshold MaxFloat32 + ulp/2 (a float32 "midpoint", exactly
// representable in float64, so the usual argument applies with an unbounded
// exponent) and for subnormal float32 results (float32 has even fewer bits
// there, while float64 is still normal with 53).
//
// FMA32 is inlinable: its inliner cost is 79 of the budget of 80 (Go 1.26).
// Check `go build -gcflags=-m` after any change; the math.Float64bits calls
// and the shape of the tests below were chosen for that.
func FMA32(x, y, z float32) float32 {
	// The explicit float64(...) conversion of the product is required: the
	// Go spec allows the compiler to fuse x*y+z into a float64 FMA (it does
	// on arm64, ppc64le, s390x, riscv64, loong64), even across statements,
	// and an explicit conversion to a floating-point type forces the
	// rounding and so forbids the fusion. (The product is exact, so even a
	// fused sum would be the same, but TwoSum must operate on exactly the
	// operands it is given.)
	a := float64(float64(x) * float64(y))

	// TwoSum (Knuth): s = RN(a+z) and s+e == a+z exactly, with no
	// precondition on |a| vs |z|. For finite inputs nothing overflows
	// (|a| < 2^257, |z| < 2^128) and it stays exact with subnormals.
	// If s is ±Inf or NaN (an Inf or NaN operand, Inf*0, Inf-Inf), then e
	// is NaN; for finite inputs e is finite.
	s := a + float64(z)
	bb := s - a
	e := (a - (s - bb)) + (float64(z) - bb)

	// Round s to odd when the sum was inexact (e finite and nonzero).
	if e != 0 && e == e {
		// s != 0 here, because a float64 sum that rounds to zero is exact.
		// Truncate s toward zero: if e has the opposite sign of s, the exact
		// value is smaller in magnitude than s and its lower neighbour is
		// the bit pattern minus one (also when s is a power of two). Then
		// set the sticky last bit: in both cases this selects the odd one of
		// the two float64 neighbours of the exact value.
		//
		// e*s cannot underflow to zero or overflow: both are nonzero
		// multiples of 2^-298 and below 2^258. The compiler turns this if
		// into a SETcc, not a branch.
		sb := math.Float64bits(s)
		if e*s < 0 {
			sb--
		}
		return float32(math.Float64frombits(sb | 1))
	}
	return float32(s)
}
