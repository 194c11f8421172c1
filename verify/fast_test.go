package verify

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/spec"
)

// FastBound's logits are the evaluation-mode reference's, and its bounds are
// positive, finite and grow with the Winograd term when convolutions run so.
func TestFastBound(t *testing.T) {
	sm, err := spec.LoadBuiltin("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	net := NewNet(sm)
	net.InitRandom(3)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 2*sm.Input.Size())
	for i := range x {
		x[i] = float64(float32(rng.NormFloat64()))
	}
	pass, err := net.Forward(x, 2, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, bd, err := FastBound(net, x, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wino, bw, err := FastBound(net, x, 2, func(l *spec.Layer) bool { return l.Name == "features.0" })
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range pass.Logits {
		if math.Abs(direct[i]-want) > 1e-9*math.Abs(want) || wino[i] != direct[i] {
			t.Fatalf("logit %d: %v / %v, reference %v", i, direct[i], wino[i], want)
		}
		if !(bd[i] > 0 && bd[i] < math.Inf(1)) || !(bw[i] > bd[i]) {
			t.Fatalf("logit %d: bound %v direct, %v with Winograd", i, bd[i], bw[i])
		}
	}
	// A net with local response normalization (tiny) gets a finite bound, and the
	// logits of its reference.
	lrn, err := spec.LoadBuiltin("tiny")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewNet(lrn)
	ln.InitRandom(4)
	lx := make([]float64, 2*lrn.Input.Size())
	for i := range lx {
		lx[i] = float64(float32(rng.NormFloat64()))
	}
	lp, err := ln.Forward(lx, 2, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ll, lb, err := FastBound(ln, lx, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range lp.Logits {
		if math.Abs(ll[i]-want) > 1e-9*math.Abs(want) || !(lb[i] > 0 && lb[i] < math.Inf(1)) {
			t.Fatalf("tiny logit %d: %v (reference %v), bound %v", i, ll[i], want, lb[i])
		}
	}
}

// lrnErr bounds LRN's output change over the whole box x ± e: every corner and
// random points inside it stay within the bound, for windows clipped at both ends
// and an α large enough that the window's cross terms dominate.
func TestLRNErr(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, d := range []LocalResponseNorm{
		{N: 2, C: 7, H: 2, W: 3, Size: 5, Alpha: 0.5, Beta: 0.75, K: 1},
		{N: 1, C: 4, H: 1, W: 2, Size: 3, Alpha: 2, Beta: 1.5, K: 0.5},
		{N: 1, C: 96, H: 2, W: 2, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}, // AlexNet 2012's
	} {
		n := d.N * d.C * d.H * d.W
		x, e := make([]float64, n), make([]float64, n)
		for i := range x {
			x[i] = 2 * rng.NormFloat64()
			e[i] = 0.3 * math.Abs(rng.NormFloat64())
		}
		y := d.Forward(x)
		bound := lrnErr(d, x, e, y)
		worst := 0.0
		for trial := 0; trial < 400; trial++ {
			xp := make([]float64, n)
			for i := range x {
				switch {
				case trial < 200: // a corner
					xp[i] = x[i] + e[i]*float64(2*rng.IntN(2)-1)
				default:
					xp[i] = x[i] + e[i]*(2*rng.Float64()-1)
				}
			}
			yp := d.Forward(xp)
			for i := range y {
				diff := math.Abs(yp[i] - y[i])
				if diff > bound[i] {
					t.Fatalf("%+v: output %d moved %v, bound %v", d, i, diff, bound[i])
				}
				worst = max(worst, diff/bound[i])
			}
		}
		t.Logf("%+v: largest change / bound %.3f", d, worst)
	}
}

// bf16Value, which FastBound rounds fast mode's linear weights with, agrees with
// kernels.BF16, which the generated models round them with, on edge cases (ties
// to even, subnormals, overflow to Inf) and on random float32 bit patterns.
func TestBF16Value(t *testing.T) {
	check := func(f float32) {
		var h [1]uint16
		kernels.BF16(h[:], []float32{f})
		want := float64(math.Float32frombits(uint32(h[0]) << 16))
		got := bf16Value(float64(f))
		if got != want || math.Signbit(got) != math.Signbit(want) {
			if math.IsNaN(got) && math.IsNaN(want) {
				return
			}
			t.Fatalf("bf16Value(%x = %g) = %g, kernels.BF16 %g", math.Float32bits(f), f, got, want)
		}
	}
	edges := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1 + 0x1p-8, 1 + 3*0x1p-8, 1 + 0x1p-8 + 0x1p-23,
		0x1p-126, 0x1.01p-126, 0x1p-133, 0x1.8p-133, 0x1p-134, 0x1p-149, 0x1.8p-132,
		math.MaxFloat32, 0x1.ffp127, 0x1.fefffep127, 0x1.fep127, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN())}
	for _, f := range edges {
		check(f)
		check(-f)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 1 << 20 {
		check(math.Float32frombits(rng.Uint32()))
	}
}
