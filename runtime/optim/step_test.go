package optim_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/optim"
	"github.com/cnngen/cnngen/spec"
	"github.com/cnngen/cnngen/verify"
)

// One training step of a generated model — training-mode Forward with its dropout
// masks, softmax cross-entropy, Backward, SGD with momentum and weight decay — lands
// on the same weights and running statistics as the same step of the float64
// reference interpreter with the same masks, within the tolerance verify derives for
// the gradients (scaled by the learning rate: the step moves each weight by lr·(g+wd·w)).
func TestSGDStepMatchesReference(t *testing.T) {
	sm, err := spec.LoadBuiltin("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := tiny.New(runtime.Config{MaxBatch: 4, Threads: 2, Training: true, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	net := verify.NewNet(sm)
	net.InitRandom(5)
	// Same float32 weights on both sides.
	for _, p := range m.Params() {
		r := net.Params[p.Name]
		for i := range r {
			p.Value[i] = float32(r[i])
			r[i] = float64(p.Value[i])
		}
	}
	for _, b := range m.Buffers() {
		r := net.Buffers[b.Name]
		for i := range r {
			b.Value[i] = float32(r[i])
			r[i] = float64(b.Value[i])
		}
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	const n, lr, momentum, wd = 4, 0.1, 0.9, 5e-4
	rng := rand.New(rand.NewPCG(1, 2))
	x32 := make([]float32, n*sm.Input.Size())
	x64 := make([]float64, len(x32))
	for i := range x32 {
		x32[i] = float32(rng.NormFloat64())
		x64[i] = float64(x32[i])
	}
	labels := []int{3, 1, 4, 1}

	// The model's step.
	m.SetTraining(true)
	opt, err := optim.NewSGD(m, momentum, wd, false)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(x32, n)
	if err != nil {
		t.Fatal(err)
	}
	masks := map[string][]float64{}
	for _, mk := range m.DropoutMasks() {
		keep := make([]float64, len(mk.Value))
		for i, v := range mk.Value {
			if v != 0 {
				keep[i] = 1
			}
		}
		masks[mk.Name] = keep
	}
	dl := make([]float32, len(logits))
	loss32, _, err := runtime.SoftmaxCrossEntropy(logits, labels, sm.Classes(), dl)
	if err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if _, err := m.Backward(dl); err != nil {
		t.Fatal(err)
	}
	before := map[string][]float64{}
	for k, v := range net.Params {
		before[k] = append([]float64(nil), v...)
	}
	if err := opt.Step(m, lr); err != nil {
		t.Fatal(err)
	}

	// The reference's step: the first SGD step with momentum is p -= lr·(g + wd·p).
	pass, err := net.Forward(x64, n, true, masks)
	if err != nil {
		t.Fatal(err)
	}
	loss64, dl64, err := verify.SoftmaxCrossEntropy(pass.Logits, n, sm.Classes(), labels)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss32-loss64) > 1e-5*math.Abs(loss64) {
		t.Errorf("loss %v, reference %v", loss32, loss64)
	}
	g, err := pass.Backward(dl64)
	if err != nil {
		t.Fatal(err)
	}
	// Gradient tolerance as verify.Compare derives it for this net (forward and
	// backward path), relative to the size of the step.
	tol := 0.0
	for _, l := range sm.Layers {
		switch l.Kind {
		case spec.Conv:
			tol += math.Sqrt(float64(l.In.C / l.Groups * l.KH * l.KW))
		case spec.Linear:
			tol += math.Sqrt(float64(l.In.Size()))
		case spec.LRN:
			tol += math.Sqrt(float64(l.Size))
		case spec.BatchNorm, spec.AvgPool:
			tol++
		}
	}
	tol *= 2 * verify.Lambda * verify.Growth * verify.Unit
	for _, p := range m.Params() {
		w0 := before[p.Name]
		var num, den float64
		for i := range w0 {
			want := w0[i] - lr*(g.Params[p.Name][i]+wd*w0[i])
			got := float64(p.Value[i])
			// Compare the step, not the weight: the step is what was computed.
			dGot, dWant := got-w0[i], want-w0[i]
			num += (dGot - dWant) * (dGot - dWant)
			den += dWant * dWant
		}
		// A weight moves by a float32 rounding of w0 too: allow one ulp of w0 per
		// element, relative to the step.
		var ulp float64
		for _, w := range w0 {
			ulp += math.Pow(float64(verify.Unit)*math.Abs(w), 2)
		}
		if rel := math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30); rel > tol+math.Sqrt(ulp)/math.Max(math.Sqrt(den), 1e-30) {
			t.Errorf("%s: the step differs from the reference's by %.3g relative (tolerance %.3g)", p.Name, rel, tol)
		}
	}
	for _, b := range m.Buffers() {
		want := net.Buffers[b.Name]
		for i, v := range want {
			if d := math.Abs(float64(b.Value[i]) - v); d > 1e-6*math.Max(1, math.Abs(v)) {
				t.Fatalf("%s[%d] = %v after the step, reference %v", b.Name, i, b.Value[i], v)
			}
		}
	}
}
