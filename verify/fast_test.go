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
	// With bfloat16 linear layers the bound is the rounding bound around the logits
	// of the net on the rounded weights plus how far those are from the reference.
	bf := func(l *spec.Layer) bool { return l.Kind == spec.Linear }
	ref, rounded, bound, rb, err := fastBounds(net, x, 2, bf)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0.0
	for i, want := range pass.Logits {
		if math.Abs(ref[i]-want) > 1e-9*math.Abs(want) || !(rb[i] > 0 && rb[i] < math.Inf(1)) || bound[i] != rb[i]+math.Abs(rounded[i]-ref[i]) {
			t.Fatalf("logit %d: reference %v (%v), on rounded weights %v, bound %v, rounding bound %v", i, ref[i], want, rounded[i], bound[i], rb[i])
		}
		moved = max(moved, math.Abs(rounded[i]-ref[i])/rb[i])
	}
	if moved < 1 {
		t.Errorf("rounding the linear weights to bfloat16 moved the logits by at most %.3g of the rounding bound", moved)
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

// reluErr bounds ReLU's output change over the whole box x ± e, inputs of either
// sign near and far from 0, and is 0 where the input stays negative.
func TestReLUErr(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x, e := make([]float64, 400), make([]float64, 400)
	for i := range x {
		x[i] = rng.NormFloat64()
		e[i] = 0.5 * math.Abs(rng.NormFloat64())
	}
	x[0], e[0] = -1, 1 // x + e = 0: stays at 0
	bound := reluErr(x, e)
	relu := func(v float64) float64 { return max(0, v) }
	worst := 0.0
	for trial := 0; trial < 200; trial++ {
		for i := range x {
			xp := x[i] + e[i]*(2*rng.Float64()-1)
			if trial%2 == 0 {
				xp = x[i] + e[i]*float64(2*rng.IntN(2)-1) // a corner
			}
			d := math.Abs(relu(xp) - relu(x[i]))
			if d > bound[i]*(1+1e-12) { // the test's own x ± e rounds
				t.Fatalf("x %v e %v: output moved %v, bound %v", x[i], e[i], d, bound[i])
			}
			if bound[i] > 0 {
				worst = max(worst, d/bound[i])
			}
		}
	}
	for i := range x {
		if x[i]+e[i] <= 0 && bound[i] != 0 {
			t.Fatalf("x %v e %v stays negative, bound %v", x[i], e[i], bound[i])
		}
		if x[i] >= 0 && bound[i] != e[i] {
			t.Fatalf("x %v e %v: bound %v, want e", x[i], e[i], bound[i])
		}
	}
	if worst < 0.99 {
		t.Errorf("the corners reach only %.3f of the bound", worst)
	}
}
