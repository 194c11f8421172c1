package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// fmaRef is the reference: x*y+z computed exactly with math/big and
// rounded once to float32 by big.Float.Float32 (nearest-even, with
// subnormals and overflow; see TestReferenceFloat32Rounding). Special values
// and exact zeros are handled here by the IEEE 754 rules, since big.Float
// has no NaN and panics on Inf*0 and Inf-Inf.
type fmaRef struct {
	bx, by, bz, prod, sum big.Float
}

func newFMARef() *fmaRef {
	r := new(fmaRef)
	// A float32*float32 product has at most 48 significant bits. The exact
	// sum spans at most from 2^257 down to 2^-298 (lowest bit of a product
	// of two subnormals), i.e. < 560 bits, so 1024 bits are always exact.
	r.prod.SetPrec(64)
	r.sum.SetPrec(1024)
	return r
}

func (r *fmaRef) fma(x, y, z float32) float32 {
	nan := float32(math.NaN())
	xf, yf, zf := float64(x), float64(y), float64(z)
	if xf != xf || yf != yf || zf != zf {
		return nan
	}
	xInf, yInf, zInf := math.IsInf(xf, 0), math.IsInf(yf, 0), math.IsInf(zf, 0)
	if (xInf && y == 0) || (yInf && x == 0) {
		return nan // Inf * 0
	}
	prodNeg := math.Signbit(xf) != math.Signbit(yf)
	if xInf || yInf {
		if zInf && math.Signbit(zf) != prodNeg {
			return nan // Inf - Inf
		}
		return float32(math.Copysign(math.Inf(1), fmaSign(prodNeg)))
	}
	if zInf {
		return z
	}
	r.bx.SetFloat64(xf)
	r.by.SetFloat64(yf)
	r.bz.SetFloat64(zf)
	r.prod.Mul(&r.bx, &r.by)
	if r.prod.Acc() != big.Exact {
		panic("inexact product")
	}
	r.sum.Add(&r.prod, &r.bz)
	if r.sum.Acc() != big.Exact {
		panic("inexact sum")
	}
	if r.sum.Sign() == 0 {
		// Exact zero: (-0)+(-0) = -0; every other exact zero sum is +0
		// under round to nearest.
		if (x == 0 || y == 0) && z == 0 && prodNeg && math.Signbit(zf) {
			return float32(math.Copysign(0, -1))
		}
		return 0
	}
	f, _ := r.sum.Float32()
	return f
}

func fmaSign(neg bool) float64 {
	if neg {
		return -1
	}
	return 1
}

// naiveFMA32 is the double-rounding method FMA32 must not be: exact product,
// float64 sum (first rounding), float32 conversion (second rounding).
func naiveFMA32(x, y, z float32) float32 {
	return float32(float64(float64(x)*float64(y)) + float64(z))
}

func sameF32(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func fmtF32(v float32) string {
	return fmt.Sprintf("%g (%#08x)", v, math.Float32bits(v))
}

// check compares FMA32 with the reference and reports whether the naive
// method would have been wrong.
func checkFMA32(t testing.TB, r *fmaRef, x, y, z float32) (naiveWrong bool) {
	t.Helper()
	want := r.fma(x, y, z)
	if got := FMA32(x, y, z); !sameF32(got, want) {
		t.Fatalf("FMA32(%s, %s, %s) = %s, want %s",
			fmtF32(x), fmtF32(y), fmtF32(z), fmtF32(got), fmtF32(want))
	}
	return !sameF32(naiveFMA32(x, y, z), want)
}

// TestReferenceFloat32Rounding checks that big.Float.Float32, the
// reference's only rounding, agrees with the hardware float64->float32
// conversion (a single correct rounding) on random and boundary values,
// including ties, subnormal results, underflow to zero and overflow.
func TestReferenceFloat32Rounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b big.Float
	try := func(d float64) {
		t.Helper()
		got, _ := b.SetFloat64(d).Float32()
		if want := float32(d); !sameF32(got, want) {
			t.Fatalf("big.Float(%g).Float32() = %s, want %s", d, fmtF32(got), fmtF32(want))
		}
	}
	midSub := math.Ldexp(1, -150) // half the smallest subnormal
	over := math.MaxFloat32 + math.Ldexp(1, 103)
	for _, d := range []float64{
		midSub, math.Nextafter(midSub, 0), math.Nextafter(midSub, 1),
		3 * midSub, 5 * midSub, math.Ldexp(1, -151), math.Ldexp(1, -200),
		math.Ldexp(1, -126) - midSub, // between max subnormal and min normal: ties to even (min normal)
		over, math.Nextafter(over, 0), math.Nextafter(over, math.Inf(1)),
		math.MaxFloat32, math.Ldexp(1, 128), math.MaxFloat64,
		1 + math.Ldexp(1, -24), 1 + 3*math.Ldexp(1, -24),
	} {
		try(d)
		try(-d)
	}
	for i := 0; i < 200000; i++ {
		// Random float64 with float32-relevant exponents, and ties/near-ties.
		e := rng.IntN(300) - 160
		d := math.Ldexp(1+rng.Float64(), e)
		try(d)
		bits := math.Float64bits(d)
		bits = bits&^(1<<29-1) | 1<<28 // a float32 midpoint in the normal range
		try(math.Float64frombits(bits))
		try(math.Nextafter(math.Float64frombits(bits), 0))
	}
}

// Special values for the exhaustive combination test.
func fmaSpecials() []float32 {
	minSub := math.Float32frombits(1)
	maxSub := math.Float32frombits(0x007fffff)
	minNorm := math.Float32frombits(0x00800000)
	inf := float32(math.Inf(1))
	vals := []float32{
		0, minSub, 2 * minSub, 3 * minSub, maxSub, minNorm,
		math.Nextafter32(minNorm, 1),
		1, math.Nextafter32(1, 2), math.Nextafter32(1, 0), 2, 3, 0.5,
		math.Float32frombits(0x3f800001) * 0.5, // (1+ulp)/2
		1 << 12, 1.0 / (1 << 12), 1 << 64, 1.0 / (1 << 64),
		math.Sqrt2, math.Pi, 1.0 / 3,
		math.MaxFloat32, math.Nextafter32(math.MaxFloat32, 0),
		1 << 127, 1 << 104, // 2^104 = ulp(MaxFloat32)
		float32(math.Sqrt(math.MaxFloat32)),
		inf,
	}
	n := len(vals)
	for _, v := range vals[:n] {
		vals = append(vals, -v)
	}
	return append(vals, float32(math.NaN()))
}

func TestFMA32Specials(t *testing.T) {
	r := newFMARef()
	vals := fmaSpecials()
	n, naive := 0, 0
	for _, x := range vals {
		for _, y := range vals {
			for _, z := range vals {
				if checkFMA32(t, r, x, y, z) {
					naive++
				}
				n++
			}
		}
	}
	t.Logf("%d special triples, naive method wrong on %d", n, naive)
}

// TestFMA32IEEE spells out the IEEE 754 rules the special-value sweep
// relies on, independently of the reference.
func TestFMA32IEEE(t *testing.T) {
	pz, nz := float32(0), float32(math.Copysign(0, -1))
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	minSub := math.Float32frombits(1)
	for _, c := range []struct {
		x, y, z, want float32
	}{
		{pz, -1, pz, pz}, // (-0)+(+0) = +0
		{pz, -1, nz, nz}, // (-0)+(-0) = -0
		{nz, nz, nz, pz}, // (+0)+(-0) = +0
		{pz, 5, nz, pz},  // (+0)+(-0) = +0
		{nz, 5, nz, nz},  // (-0)+(-0) = -0
		{2, 3, -6, pz},   // exact cancellation = +0
		{-2, 3, 6, pz},   // exact cancellation = +0
		{nz, 3, 7, 7},    // zero product
		{1e30, 1e30, 0, inf},
		{-1e30, 1e30, 0, -inf},
		{math.MaxFloat32, 2, -math.MaxFloat32, math.MaxFloat32}, // intermediate beyond float32 range, result fits
		{math.MaxFloat32, 1, math.MaxFloat32, inf},
		{inf, 1, -1e38, inf},
		{1, 1, -inf, -inf},
		{inf, 1, inf, inf},
		{minSub, 0.5, 0, pz},                     // tie: 2^-150 rounds to even (0)
		{minSub, 0.75, 0, minSub},                // above the tie
		{minSub, 1.5, 0, 2 * minSub},             // tie: 3*2^-150 rounds to even (2*minSub)
		{minSub, -0.5, 0, nz},                    // underflow keeps the sign
		{1.0 / (1 << 75), 1.0 / (1 << 75), 0, 0}, // 2^-150: tie to 0
		{math.Float32frombits(0x00800000), 0.5, 0, math.Float32frombits(0x00400000)}, // exact subnormal
	} {
		if got := FMA32(c.x, c.y, c.z); !sameF32(got, c.want) {
			t.Errorf("FMA32(%s, %s, %s) = %s, want %s",
				fmtF32(c.x), fmtF32(c.y), fmtF32(c.z), fmtF32(got), fmtF32(c.want))
		}
	}
	for _, c := range [][3]float32{
		{inf, 0, 1}, {0, -inf, 1}, {inf, 0, nan}, {inf, 1, -inf}, {-inf, -1, -inf},
		{nan, 1, 1}, {1, nan, 1}, {1, 1, nan}, {nan, 0, inf},
	} {
		if got := FMA32(c[0], c[1], c[2]); got == got {
			t.Errorf("FMA32(%v, %v, %v) = %v, want NaN", c[0], c[1], c[2], got)
		}
	}
}

// Triples on which rounding p+z to float64 lands exactly on a float32
// midpoint that the exact value is not on, so the naive method rounds the
// wrong way. The test asserts that the naive method really fails on each
// (so these cases do exercise double rounding) and that FMA32 does not.
func doubleRoundingCases() []struct{ x, y, z, want float32 } {
	ldexp := func(m int64, e int) float32 {
		v := float32(math.Ldexp(float64(m), e))
		if float64(v) != math.Ldexp(float64(m), e) {
			panic("not a float32")
		}
		return v
	}
	one := float32(1)
	return []struct{ x, y, z, want float32 }{
		// p = 2^-24 - 2^-70; z = 1+2^-23 (odd): 1+2^-23+2^-24 - tiny.
		// float64 drops the tiny part -> tie -> even 1+2^-22. Correct: 1+2^-23.
		{ldexp(1<<23+1, -47), ldexp(1<<23-1, -23), math.Nextafter32(1, 2), math.Nextafter32(1, 2)},
		// Same, negated.
		{ldexp(-(1<<23 + 1), -47), ldexp(1<<23-1, -23), -math.Nextafter32(1, 2), -math.Nextafter32(1, 2)},
		// 9010893 * 15618595 = 2^47 + 7: p = 2^-24 + 7*2^-71; z = 1 (even):
		// float64 drops 7*2^-71 -> tie -> even 1. Correct: 1+2^-23.
		{ldexp(9010893, -47), ldexp(15618595, -24), one, math.Nextafter32(1, 2)},
		// Subnormal result: p = 2^-150 - 2^-196, z = 2^-127 + 2^-149 (odd):
		// tie in float64 -> 2^-127 + 2^-148. Correct: z.
		{ldexp(1<<23+1, -98), ldexp(1<<23-1, -98), ldexp(1<<22+1, -149), ldexp(1<<22+1, -149)},
		// Overflow: p = 2^103 - 2^57, z = MaxFloat32 (odd): float64 rounds to
		// the overflow threshold MaxFloat32 + 2^103, a tie -> +Inf.
		// Correct: MaxFloat32.
		{ldexp(1<<23+1, 30), ldexp(1<<23-1, 27), math.MaxFloat32, math.MaxFloat32},
		{ldexp(1<<23+1, 30), ldexp(-(1<<23 - 1), 27), -math.MaxFloat32, -math.MaxFloat32},
		// 9010893 * 15618595 = 2^47 + 7 again, all negative.
		{ldexp(9010893, -47), ldexp(-15618595, -24), -one, -math.Nextafter32(1, 2)},
		// Subtraction: p = -2^-23 + 2^-69, z = 2+2^-22 (odd): exact
		// 2+2^-23+2^-69, float64 drops 2^-69 -> tie -> even 2. Correct: z.
		{ldexp(-(1<<23 + 1), -46), ldexp(1<<23-1, -23), ldexp(1<<23+1, -22), ldexp(1<<23+1, -22)},
	}
}

func TestFMA32DoubleRounding(t *testing.T) {
	r := newFMARef()
	for _, c := range doubleRoundingCases() {
		if ref := r.fma(c.x, c.y, c.z); !sameF32(ref, c.want) {
			t.Errorf("reference(%s, %s, %s) = %s, want %s",
				fmtF32(c.x), fmtF32(c.y), fmtF32(c.z), fmtF32(ref), fmtF32(c.want))
		}
		if got := FMA32(c.x, c.y, c.z); !sameF32(got, c.want) {
			t.Errorf("FMA32(%s, %s, %s) = %s, want %s",
				fmtF32(c.x), fmtF32(c.y), fmtF32(c.z), fmtF32(got), fmtF32(c.want))
		}
		if naive := naiveFMA32(c.x, c.y, c.z); sameF32(naive, c.want) {
			t.Errorf("naive(%s, %s, %s) = %s is correct: not a double-rounding case",
				fmtF32(c.x), fmtF32(c.y), fmtF32(c.z), fmtF32(naive))
		}
	}
}

// Random generators, each aimed at a different part of the input space.

func fmaRandSign(rng *rand.Rand) float64 {
	if rng.Uint32()&1 == 0 {
		return -1
	}
	return 1
}

// randF32 returns a random float32 with random sign, mantissa and an exponent
// in [lo, hi] (as for math.Ldexp of a value in [1, 2)).
func fmaRandF32(rng *rand.Rand, lo, hi int) float32 {
	m := float64(1<<23|rng.Uint32()&(1<<23-1)) / (1 << 23)
	v := float32(math.Ldexp(fmaRandSign(rng)*m, lo+rng.IntN(hi-lo+1)))
	return v
}

type fmaGenerator struct {
	name string
	gen  func(rng *rand.Rand) (x, y, z float32)
}

var fmaGenerators = []fmaGenerator{
	{"bits", func(rng *rand.Rand) (x, y, z float32) {
		return math.Float32frombits(rng.Uint32()), math.Float32frombits(rng.Uint32()), math.Float32frombits(rng.Uint32())
	}},
	{"overlap", func(rng *rand.Rand) (x, y, z float32) {
		// Product and addend of similar magnitude: long carries, partial cancellation.
		return fmaRandF32(rng, -8, 8), fmaRandF32(rng, -8, 8), fmaRandF32(rng, -16, 16)
	}},
	{"dot", func(rng *rand.Rand) (x, y, z float32) {
		// Kernel-like: accumulator much larger than a single product.
		return fmaRandF32(rng, -4, 1), fmaRandF32(rng, -4, 1), fmaRandF32(rng, 0, 12)
	}},
	{"cancel", func(rng *rand.Rand) (x, y, z float32) {
		// z = -RN(x*y) nudged by a few ulps: the result is the tiny rounding
		// error of the product (massive cancellation).
		x, y = fmaRandF32(rng, -60, 60), fmaRandF32(rng, -60, 60)
		p := -float32(float64(x) * float64(y))
		b := math.Float32bits(p)
		b += uint32(rng.IntN(7) - 3)
		return x, y, math.Float32frombits(b)
	}},
	{"subnormal", func(rng *rand.Rand) (x, y, z float32) {
		// Products and sums around and below the smallest normal 2^-126.
		x, y = fmaRandF32(rng, -90, -40), fmaRandF32(rng, -90, -40)
		if x*y == 0 && rng.IntN(2) == 0 {
			x, y = fmaRandF32(rng, -75, -60), fmaRandF32(rng, -75, -60)
		}
		switch rng.IntN(3) {
		case 0:
			z = math.Float32frombits(rng.Uint32() & 0x807fffff) // subnormal
		case 1:
			z = fmaRandF32(rng, -130, -120)
		default:
			z = -float32(float64(x) * float64(y))
		}
		return x, y, z
	}},
	{"overflow", func(rng *rand.Rand) (x, y, z float32) {
		// Products and sums around MaxFloat32.
		x = fmaRandF32(rng, 60, 66)
		y = fmaRandF32(rng, 60, 66)
		switch rng.IntN(3) {
		case 0:
			z = fmaRandF32(rng, 120, 127)
		case 1:
			z = math.Float32frombits(0x7f7fffff - rng.Uint32()&0xff | rng.Uint32()&0x80000000)
		default:
			z = -float32(float64(x) * float64(y))
		}
		return x, y, z
	}},
	{"tie", func(rng *rand.Rand) (x, y, z float32) {
		// (2^23+a)(2^23-a) = 2^46 - a^2: p is just below a power of two, 2^k,
		// by a^2*2^(k-46). With ulp(z) = 2^(k+1) the exact sum is a float32
		// midpoint -/+ that tiny amount, which float64 rounds away for
		// a < 362: the double-rounding trap.
		a := int64(1 + rng.IntN(400))
		ex := rng.IntN(50) - 25
		ey := rng.IntN(50) - 25
		m := int64(1<<23 | rng.Uint32()&(1<<23-1))
		if rng.IntN(4) == 0 {
			// Subnormal z = m * 2^-149 with m < 2^23; p ~ 2^-150.
			ex, ey = -98, -98
			m >>= 1
		}
		x = float32(math.Ldexp(fmaRandSign(rng)*float64(1<<23+a), ex))
		y = float32(math.Ldexp(fmaRandSign(rng)*float64(1<<23-a), ey))
		k := 46 + ex + ey
		z = float32(math.Ldexp(fmaRandSign(rng)*float64(m), k+1))
		return x, y, z
	}},
}

func TestFMA32Random(t *testing.T) {
	total := 2_000_000
	if testing.Short() {
		total = 200_000
	}
	per := total / len(fmaGenerators)
	for gi, g := range fmaGenerators {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			r := newFMARef()
			rng := rand.New(rand.NewPCG(uint64(gi)+1, 0x5eed))
			naive := 0
			for i := 0; i < per; i++ {
				x, y, z := g.gen(rng)
				if checkFMA32(t, r, x, y, z) {
					naive++
				}
			}
			t.Logf("%d triples, naive double rounding wrong on %d (%.3g%%)",
				per, naive, 100*float64(naive)/float64(per))
		})
	}
}

func FuzzFMA32(f *testing.F) {
	for _, c := range doubleRoundingCases() {
		f.Add(math.Float32bits(c.x), math.Float32bits(c.y), math.Float32bits(c.z))
	}
	f.Add(uint32(0x7f800000), uint32(0), uint32(0x3f800000)) // Inf*0
	f.Add(uint32(0x80000000), uint32(0x3f800000), uint32(0x80000000))
	f.Add(uint32(1), uint32(0x3f000000), uint32(0))
	f.Add(uint32(0x7fc00001), uint32(1), uint32(2))
	f.Fuzz(func(t *testing.T, xb, yb, zb uint32) {
		x, y, z := math.Float32frombits(xb), math.Float32frombits(yb), math.Float32frombits(zb)
		checkFMA32(t, newFMARef(), x, y, z)
	})
}

func BenchmarkFMA32(b *testing.B) {
	const n = 1024
	rng := rand.New(rand.NewPCG(3, 4))
	var xs, ys, zs [n]float32
	for i := range xs {
		xs[i], ys[i], zs[i] = fmaRandF32(rng, -4, 1), fmaRandF32(rng, -4, 1), fmaRandF32(rng, 0, 12)
	}
	b.Run("independent", func(b *testing.B) {
		// Throughput: 1024 independent FMAs per pass.
		var out [n]float32
		for i := 0; b.Loop(); i++ {
			j := i & (n - 1)
			out[j] = FMA32(xs[j], ys[j], zs[j])
		}
	})
	b.Run("naive-independent", func(b *testing.B) {
		var out [n]float32
		for i := 0; b.Loop(); i++ {
			j := i & (n - 1)
			out[j] = naiveFMA32(xs[j], ys[j], zs[j])
		}
	})
	b.Run("chain", func(b *testing.B) {
		// acc = acc + x*y, as in a dot-product kernel (latency bound).
		acc := float32(0)
		for i := 0; b.Loop(); i++ {
			j := i & (n - 1)
			acc = FMA32(xs[j], ys[j], acc)
		}
		_ = acc
	})
	b.Run("naive-chain", func(b *testing.B) {
		acc := float32(0)
		for i := 0; b.Loop(); i++ {
			j := i & (n - 1)
			acc = naiveFMA32(xs[j], ys[j], acc)
		}
		_ = acc
	})
}
