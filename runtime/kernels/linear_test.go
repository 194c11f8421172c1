package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the exported linear-layer functions against the contract in
// linear.go, restated here literally. They run on whatever path dispatch
// picks (assembly on amd64, pure Go with -tags purego or elsewhere);
// linear_amd64_test.go compares each assembly variant with the Go twins.

// linSame reports whether a and b are the same float32: equal bits, or both
// NaN (FMA32 leaves a NaN's sign and payload unspecified).
func linSame(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// linSpecials are the values that exercise signed zeros, infinities, NaN,
// subnormals and overflow.
var linSpecials = []float32{
	float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
	0, float32(math.Copysign(0, -1)),
	math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
	0x1p-127, -0x1.8p-130, 0x1p-126, // subnormal, subnormal, smallest normal
	math.MaxFloat32, -math.MaxFloat32, 0x1p64, -0x1p-64, 1, -1,
}

// linFill fills v with random values: mostly in [-1, 1), with wide exponents
// (so products underflow, round and overflow) if wide, and with the special
// values at rate special.
func linFill(rng *rand.Rand, v []float32, wide bool, special float64) {
	for i := range v {
		switch {
		case special > 0 && rng.Float64() < special:
			v[i] = linSpecials[rng.IntN(len(linSpecials))]
		case wide:
			f := math.Ldexp(1+rng.Float64(), rng.IntN(190)-150)
			if rng.IntN(2) == 0 {
				f = -f
			}
			v[i] = float32(f)
		default:
			v[i] = rng.Float32()*2 - 1
		}
	}
}

// linSpecLinear is Linear as its doc comment states it, lane by lane.
func linSpecLinear(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s [16]float32
			for l := 0; l < 16; l++ {
				for kk := l; kk < k; kk += 16 {
					s[l] = FMA32(x[i*ldx+kk], w[j*ldw+kk], s[l])
				}
			}
			var t8 [8]float32
			for l := range t8 {
				t8[l] = s[l] + s[l+8]
			}
			var t4 [4]float32
			for l := range t4 {
				t4[l] = t8[l] + t8[l+4]
			}
			t2 := [2]float32{t4[0] + t4[2], t4[1] + t4[3]}
			v := t2[0] + t2[1]
			if bias != nil {
				v += bias[j]
			}
			if relu && v < 0 {
				v = 0
			}
			y[i*ldy+j] = v
		}
	}
}

func TestLinearMatchesContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{1, 7, 16, 17, 40, 300} {
		for _, m := range []int{1, 3, 8, 9} {
			for _, n := range []int{1, 5, 17} {
				for c := 0; c < 4; c++ {
					relu, withBias := c&1 != 0, c&2 != 0
					ldx, ldw, ldy := k+c, k+2*c+1, n+3
					x := make([]float32, (m-1)*ldx+k)
					w := make([]float32, (n-1)*ldw+k)
					linFill(rng, x, c == 3, 0.01)
					linFill(rng, w, c == 3, 0.01)
					var bias []float32
					if withBias {
						bias = make([]float32, n)
						linFill(rng, bias, false, 0.05)
					}
					got := make([]float32, (m-1)*ldy+n)
					want := make([]float32, len(got))
					Linear(got, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
					linSpecLinear(want, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
					for p := range got {
						if !linSame(got[p], want[p]) {
							t.Fatalf("m=%d n=%d k=%d relu=%v bias=%v: y[%d] = %g (%#x), contract %g (%#x)",
								m, n, k, relu, withBias, p, got[p], math.Float32bits(got[p]), want[p], math.Float32bits(want[p]))
						}
					}
				}
			}
		}
	}
}

// TestLinearBatchIndependence checks the documented property that a sample's
// outputs do not depend on the batch it is in: alone, or at every position of
// a batch of 7 (and of 17, which the kernels split into blocks).
func TestLinearBatchIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, batch := range []int{7, 17} {
		for _, k := range []int{5, 16, 33, 1000} {
			for _, n := range []int{1, 10, 50} {
				relu := k%2 == 1
				x := make([]float32, batch*k)
				w := make([]float32, n*k)
				bias := make([]float32, n)
				linFill(rng, x, false, 0)
				linFill(rng, w, false, 0)
				linFill(rng, bias, false, 0)
				all := make([]float32, batch*n)
				Linear(all, n, x, k, w, k, bias, batch, n, k, relu)
				one := make([]float32, n)
				for i := 0; i < batch; i++ {
					Linear(one, n, x[i*k:], k, w, k, bias, 1, n, k, relu)
					for j := range one {
						if !linSame(one[j], all[i*n+j]) {
							t.Fatalf("batch %d k=%d n=%d: sample %d output %d alone %g, in the batch %g", batch, k, n, i, j, one[j], all[i*n+j])
						}
					}
				}
			}
		}
	}
}

// TestLinearZerosAndRelu checks the documented ends of the tree: a sum of -0
// products stays -0 (also through relu and without bias), relu keeps NaN,
// and a k tail adds nothing to the lanes past it.
func TestLinearZerosAndRelu(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	for _, k := range []int{16, 17, 31, 32, 33, 100} {
		x := make([]float32, k)
		w := make([]float32, k)
		for i := range x {
			x[i], w[i] = -0x1p-80, 0x1p-80 // the products underflow to -0
		}
		for _, relu := range []bool{false, true} {
			y := []float32{1}
			Linear(y, 1, x, k, w, k, nil, 1, 1, k, relu)
			if math.Float32bits(y[0]) != math.Float32bits(negZero) {
				t.Errorf("k=%d relu=%v: sum of -0 products = %g (%#x), want -0", k, relu, y[0], math.Float32bits(y[0]))
			}
			Linear(y, 1, x, k, w, k, []float32{0}, 1, 1, k, relu)
			if math.Float32bits(y[0]) != 0 {
				t.Errorf("k=%d relu=%v: -0 + bias +0 = %g, want +0", k, relu, y[0])
			}
		}
	}
	// Fewer than 16 terms: the lanes without terms are +0, so the sum is +0.
	y := []float32{1}
	Linear(y, 1, []float32{-0x1p-80}, 1, []float32{0x1p-80}, 1, nil, 1, 1, 1, false)
	if math.Float32bits(y[0]) != 0 {
		t.Errorf("k=1: %g, want +0", y[0])
	}
	nan := float32(math.NaN())
	Linear(y, 1, []float32{nan}, 1, []float32{1}, 1, nil, 1, 1, 1, true)
	if y[0] == y[0] {
		t.Errorf("relu(NaN) = %g, want NaN", y[0])
	}
	Linear(y, 1, []float32{-2}, 1, []float32{1}, 1, []float32{1}, 1, 1, 1, true)
	if math.Float32bits(y[0]) != 0 {
		t.Errorf("relu(-1) = %g, want +0", y[0])
	}
}

func TestLinearBackDataMatchesContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range []int{1, 2, 8, 9} {
		for _, n := range []int{1, 3, 20} {
			for _, k := range []int{1, 8, 15, 16, 17, 130} {
				ldx, ldy, ldw := k+1, n+2, k+3
				dy := make([]float32, (m-1)*ldy+n)
				w := make([]float32, (n-1)*ldw+k)
				linFill(rng, dy, k%2 == 0, 0.02)
				linFill(rng, w, k%2 == 0, 0.02)
				got := make([]float32, (m-1)*ldx+k)
				want := make([]float32, len(got))
				for p := range got {
					got[p], want[p] = 7, 7
				}
				LinearBackData(got, ldx, dy, ldy, w, ldw, m, n, k)
				for i := 0; i < m; i++ {
					for c := 0; c < k; c++ {
						var acc float32
						for j := 0; j < n; j++ {
							acc = FMA32(dy[i*ldy+j], w[j*ldw+c], acc)
						}
						want[i*ldx+c] = acc
					}
				}
				for p := range got {
					if !linSame(got[p], want[p]) {
						t.Fatalf("m=%d n=%d k=%d: dx[%d] = %g, contract %g", m, n, k, p, got[p], want[p])
					}
				}
			}
		}
	}
}

func TestLinearBackWeightMatchesContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, m := range []int{1, 2, 8, 9} {
		for _, n := range []int{1, 3, 5, 20} {
			for _, k := range []int{1, 8, 15, 16, 17, 130} {
				ldw, ldy, ldx := k+2, n+1, k+5
				dy := make([]float32, (m-1)*ldy+n)
				x := make([]float32, (m-1)*ldx+k)
				linFill(rng, dy, k%2 == 1, 0.02)
				linFill(rng, x, k%2 == 1, 0.02)
				got := make([]float32, (n-1)*ldw+k)
				linFill(rng, got, false, 0.05)
				want := append([]float32(nil), got...)
				LinearBackWeight(got, ldw, dy, ldy, x, ldx, m, n, k)
				for j := 0; j < n; j++ {
					for c := 0; c < k; c++ {
						var acc float32
						for i := 0; i < m; i++ {
							acc = FMA32(dy[i*ldy+j], x[i*ldx+c], acc)
						}
						want[j*ldw+c] += acc
					}
				}
				for p := range got {
					if !linSame(got[p], want[p]) {
						t.Fatalf("m=%d n=%d k=%d: dW[%d] = %g, contract %g", m, n, k, p, got[p], want[p])
					}
				}
			}
		}
	}
}

func TestLinearPanics(t *testing.T) {
	f := make([]float32, 64)
	for _, c := range []struct {
		name string
		call func()
	}{
		{"Linear k=0", func() { Linear(f, 4, f, 4, f, 4, nil, 2, 2, 0, false) }},
		{"Linear y", func() { Linear(f[:5], 4, f, 4, f, 4, nil, 2, 2, 4, false) }},
		{"Linear x", func() { Linear(f, 4, f[:7], 4, f, 4, nil, 2, 2, 4, false) }},
		{"Linear w", func() { Linear(f, 4, f, 4, f[:7], 4, nil, 2, 2, 4, false) }},
		{"Linear bias", func() { Linear(f, 4, f, 4, f, 4, f[:1], 2, 2, 4, false) }},
		{"LinearBackData n=0", func() { LinearBackData(f, 4, f, 4, f, 4, 2, 0, 4) }},
		{"LinearBackData dx", func() { LinearBackData(f[:7], 4, f, 4, f, 4, 2, 2, 4) }},
		{"LinearBackData dy", func() { LinearBackData(f, 4, f[:5], 4, f, 4, 2, 2, 4) }},
		{"LinearBackData w", func() { LinearBackData(f, 4, f, 4, f[:7], 4, 2, 2, 4) }},
		{"LinearBackWeight dw", func() { LinearBackWeight(f[:7], 4, f, 4, f, 4, 2, 2, 4) }},
		{"LinearBackWeight dy", func() { LinearBackWeight(f, 4, f[:5], 4, f, 4, 2, 2, 4) }},
		{"LinearBackWeight x", func() { LinearBackWeight(f, 4, f, 4, f[:7], 4, 2, 2, 4) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.call()
		}()
	}
	// Empty calls do nothing.
	Linear(nil, 0, nil, 0, nil, 0, nil, 0, 3, 3, false)
	LinearBackData(nil, 0, nil, 0, nil, 0, 0, 3, 3)
	LinearBackWeight(nil, 0, nil, 0, nil, 0, 3, 3, 0)
}

// TestLinearNearReference is a sanity check of the arithmetic itself: the
// result is within a few ulps·k of the float64 dot product for benign data.
func TestLinearNearReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const m, n, k = 3, 7, 513
	x := make([]float32, m*k)
	w := make([]float32, n*k)
	bias := make([]float32, n)
	linFill(rng, x, false, 0)
	linFill(rng, w, false, 0)
	linFill(rng, bias, false, 0)
	y := make([]float32, m*n)
	Linear(y, n, x, k, w, k, bias, m, n, k, false)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			ref, mag := float64(bias[j]), math.Abs(float64(bias[j]))
			for c := 0; c < k; c++ {
				p := float64(x[i*k+c]) * float64(w[j*k+c])
				ref += p
				mag += math.Abs(p)
			}
			if d := math.Abs(float64(y[i*n+j]) - ref); d > mag*0x1p-24*40 {
				t.Errorf("y[%d][%d] = %g, float64 reference %g (error %g, bound %g)", i, j, y[i*n+j], ref, d, mag*0x1p-24*40)
			}
		}
	}
}
