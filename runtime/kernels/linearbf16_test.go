package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of BF16 against an independent float64 reference, and of LinearBF16
// against its contract, Linear on the widened weights, on whatever path
// dispatch picks; linearbf16_amd64_test.go compares each assembly variant
// with the Go twin.

// bf16Ref rounds f to bfloat16 in float64 arithmetic, from the definition:
// the multiple of the bfloat16 quantum of f's binade (2^(e-7) for |f| in
// [2^e, 2^(e+1)), and 2^-133 below 2^-126) nearest to f, ties to an even
// multiple; ±Inf from 2^128 on (IEEE overflow with an unbounded exponent).
// It returns the value as a float32 (NaN for NaN).
func bf16Ref(f float32) float32 {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return f
	}
	_, e := math.Frexp(v) // |v| in [2^(e-1), 2^e)
	q := math.Ldexp(1, max(e-1, -126)-7)
	r := math.RoundToEven(v/q) * q // v/q is exact: a float32 over a power of two
	if math.Abs(r) >= 0x1p128 {
		return float32(math.Inf(int(math.Copysign(1, v))))
	}
	return float32(r) // exact: at most 8 significant bits, in range
}

// bf16Edges are values at every rounding boundary BF16 has.
var bf16Edges = []uint32{
	0, 0x80000000, 0x7f800000, 0xff800000, // ±0, ±Inf
	0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fffffff, 0x7f810000, // NaNs, quiet and signalling
	0x7f7fffff, 0xff7fffff, // ±MaxFloat32: round to ±Inf
	0x7f7f7fff, 0x7f7f8000, 0x7f7f8001, // below, at (tie, odd: up to Inf), above the overflow threshold
	0x7f7effff, 0x7f7e8000, // the largest values that stay finite
	0x3f800000, 0x3f807fff, 0x3f808000, 0x3f808001, 0x3f818000, 0x3f81ffff, // 1 and around 1+2^-8 (ties to even)
	0xbf808000, 0xbf818000, // negative ties
	0x00000001, 0x00007fff, 0x00008000, 0x00008001, 0x00018000, // subnormals: ties to 0 and to 2
	0x007fffff, 0x007f8000, 0x007f7fff, 0x80008000, 0x80018000, // up to the smallest normal
	0x00800000, 0x00808000, 0x00818000, // smallest normal and its ties
}

func bf16Check(t *testing.T, b uint32) {
	t.Helper()
	f := math.Float32frombits(b)
	h := bf16(f)
	got, want := widenBF16(h), bf16Ref(f)
	if f != f {
		if got == got || h>>15 != uint16(b>>31) || h&0x40 == 0 {
			t.Fatalf("BF16(%#08x) = %#04x: want a quiet NaN of the same sign", b, h)
		}
		return
	}
	if math.Float32bits(got) != math.Float32bits(want) {
		t.Fatalf("BF16(%#08x = %g) = %#04x (%g), reference %#08x (%g)", b, f, h, got, math.Float32bits(want), want)
	}
}

func TestBF16Rounding(t *testing.T) {
	for _, b := range bf16Edges {
		bf16Check(t, b)
	}
	// Every bfloat16 with the low halves at and around each boundary.
	for hi := uint32(0); hi < 1<<16; hi++ {
		for _, lo := range []uint32{0, 1, 0x7ffe, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff} {
			bf16Check(t, hi<<16|lo)
		}
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for range 1 << 20 {
		bf16Check(t, rng.Uint32())
	}
	// Through the exported function: same values, and dst past src untouched.
	src := make([]float32, len(bf16Edges))
	for i, b := range bf16Edges {
		src[i] = math.Float32frombits(b)
	}
	dst := make([]uint16, len(src)+1)
	dst[len(src)] = 0x1234
	BF16(dst, src)
	for i, f := range src {
		if dst[i] != bf16(f) {
			t.Fatalf("BF16: dst[%d] = %#04x, bf16 %#04x", i, dst[i], bf16(f))
		}
	}
	if dst[len(src)] != 0x1234 {
		t.Fatalf("BF16 wrote past len(src)")
	}
}

// TestBF16Error checks the documented error bounds: relative 2^-8 for normal
// values, reached at the tie 1+2^-8 (so 2^-9 does not hold), and absolute
// 2^-134 below 2^-126.
func TestBF16Error(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	worst := 0.0
	check := func(f float32) {
		v := float64(f)
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 0x1.ffp127 {
			return
		}
		d := math.Abs(float64(widenBF16(bf16(f))) - v)
		if math.Abs(v) < 0x1p-126 {
			if d > 0x1p-134 {
				t.Fatalf("BF16(%g): error %g > 2^-134", f, d)
			}
			return
		}
		rel := d / math.Abs(v)
		if rel > 0x1p-8 {
			t.Fatalf("BF16(%g): relative error %g > 2^-8", f, rel)
		}
		worst = max(worst, rel)
	}
	for range 1 << 20 {
		check(math.Float32frombits(rng.Uint32()))
	}
	for _, b := range bf16Edges {
		check(math.Float32frombits(b))
	}
	if worst <= 0x1p-9 {
		t.Errorf("worst relative error %g: expected above 2^-9", worst)
	}
	if got := float64(widenBF16(bf16(1+0x1p-8))) - (1 + 0x1p-8); got != -0x1p-8 {
		t.Errorf("BF16(1+2^-8) is off by %g, want -2^-8", got)
	}
}

func TestBF16Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("BF16 with a short dst: no panic")
		}
	}()
	BF16(make([]uint16, 2), make([]float32, 3))
}

// bf16Widen is widenBF16 over a slice.
func bf16Widen(h []uint16) []float32 {
	f := make([]float32, len(h))
	for i, v := range h {
		f[i] = widenBF16(v)
	}
	return f
}

// bf16Fill fills w with bfloat16s: BF16 of linFill's values (wide exponents
// if wide, special values at rate special), and at rate raw arbitrary bit
// patterns (NaN payloads, signalling NaNs, subnormals included).
func bf16Fill(rng *rand.Rand, w []uint16, wide bool, special, raw float64) {
	f := make([]float32, len(w))
	linFill(rng, f, wide, special)
	BF16(w, f)
	for i := range w {
		if raw > 0 && rng.Float64() < raw {
			w[i] = uint16(rng.Uint32())
		}
	}
}

// TestLinearBF16MatchesLinear checks the contract on the dispatched path:
// LinearBF16(x, W16) is Linear(x, widen(W16)) bit for bit.
func TestLinearBF16MatchesLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	type shape struct{ ms, ns, ks []int }
	for _, s := range []shape{
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9}, []int{1, 5, 17}, []int{1, 2, 7, 15, 16, 17, 31, 33, 40, 300}},
		{[]int{1, 3, 17}, []int{3, 25}, []int{4096, 4096 + 9}},
		{[]int{1, 2}, []int{2}, []int{9216, 25088}},
	} {
		for _, k := range s.ks {
			for _, m := range s.ms {
				for _, n := range s.ns {
					c := (m + n + k) % 4
					relu, withBias := c&1 != 0, c&2 != 0
					ldx, ldw, ldy := k+c, k+2*c+1, n+3
					x := make([]float32, (m-1)*ldx+k)
					w := make([]uint16, (n-1)*ldw+k)
					linFill(rng, x, c == 3, 0.01)
					bf16Fill(rng, w, c == 3, 0.01, 0.005)
					var bias []float32
					if withBias {
						bias = make([]float32, n)
						linFill(rng, bias, false, 0.05)
					}
					got := make([]float32, (m-1)*ldy+n)
					want := make([]float32, len(got))
					LinearBF16(got, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
					Linear(want, ldy, x, ldx, bf16Widen(w), ldw, bias, m, n, k, relu)
					for p := range got {
						if !linSame(got[p], want[p]) {
							t.Fatalf("m=%d n=%d k=%d relu=%v bias=%v: y[%d] = %g (%#x), Linear on the widened W %g (%#x)",
								m, n, k, relu, withBias, p, got[p], math.Float32bits(got[p]), want[p], math.Float32bits(want[p]))
						}
					}
				}
			}
		}
	}
}

// TestLinearBF16ErrorBound checks the documented distance from Linear on the
// float32 weights that were rounded: |y16 - y32| ≤ 2^-8·A + γ(L)·(A16 + A),
// A = Σ|W·x| + |bias|, A16 the same with the widened weights, L = ⌈k/16⌉+5.
func TestLinearBF16ErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, k := range []int{1, 16, 100, 4096, 9216} {
		const m, n = 2, 9
		x := make([]float32, m*k)
		w := make([]float32, n*k)
		bias := make([]float32, n)
		linFill(rng, x, false, 0)
		linFill(rng, w, false, 0)
		linFill(rng, bias, false, 0)
		w16 := make([]uint16, len(w))
		BF16(w16, w)
		wf := bf16Widen(w16)
		y16 := make([]float32, m*n)
		y32 := make([]float32, m*n)
		LinearBF16(y16, n, x, k, w16, k, bias, m, n, k, false)
		Linear(y32, n, x, k, w, k, bias, m, n, k, false)
		L := float64((k+15)/16 + 5)
		gamma := L * 0x1p-24 / (1 - L*0x1p-24)
		worst := 0.0
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				a, a16 := math.Abs(float64(bias[j])), math.Abs(float64(bias[j]))
				for c := 0; c < k; c++ {
					a += math.Abs(float64(w[j*k+c]) * float64(x[i*k+c]))
					a16 += math.Abs(float64(wf[j*k+c]) * float64(x[i*k+c]))
				}
				d := math.Abs(float64(y16[i*n+j]) - float64(y32[i*n+j]))
				bound := 0x1p-8*a + gamma*(a+a16)
				if d > bound {
					t.Errorf("k=%d y[%d][%d]: bf16 %g, fp32 %g: difference %g above the bound %g", k, i, j, y16[i*n+j], y32[i*n+j], d, bound)
				}
				worst = max(worst, d/a)
			}
		}
		t.Logf("k=%d: largest |y16-y32| / Σ|w·x| = %.3g (2^-8 = %.3g)", k, worst, 0x1p-8)
	}
}

func TestLinearBF16Panics(t *testing.T) {
	f := make([]float32, 64)
	h := make([]uint16, 64)
	for _, c := range []struct {
		name string
		call func()
	}{
		{"k=0", func() { LinearBF16(f, 4, f, 4, h, 4, nil, 2, 2, 0, false) }},
		{"y", func() { LinearBF16(f[:5], 4, f, 4, h, 4, nil, 2, 2, 4, false) }},
		{"x", func() { LinearBF16(f, 4, f[:7], 4, h, 4, nil, 2, 2, 4, false) }},
		{"w", func() { LinearBF16(f, 4, f, 4, h[:7], 4, nil, 2, 2, 4, false) }},
		{"bias", func() { LinearBF16(f, 4, f, 4, h, 4, f[:1], 2, 2, 4, false) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", c.name)
				} else if s := fmt.Sprint(r); len(s) < 19 || s[:19] != "kernels.LinearBF16:" {
					t.Errorf("%s: panic %q", c.name, s)
				}
			}()
			c.call()
		}()
	}
	// Empty calls do nothing.
	LinearBF16(nil, 0, nil, 0, nil, 0, nil, 0, 3, 3, false)
	LinearBF16(nil, 0, nil, 0, nil, 0, nil, 3, 0, 3, false)
}
