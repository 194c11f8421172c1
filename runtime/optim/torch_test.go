package optim_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/optim"
	"github.com/cnngen/cnngen/runtime/weights"
	"github.com/cnngen/cnngen/verify"
)

// One SGD step of the generated tiny net equals PyTorch's on the same weights, input
// and labels (testdata/sgd_step.py, evaluation mode so that no dropout mask is drawn;
// training mode is held to the reference interpreter by TestSGDStepMatchesReference,
// and the interpreter to PyTorch by verify's cross-check). Both sides compute in
// float32 in different orders, so the step is compared within the tolerance verify
// derives for this net's gradients.
func TestSGDStepMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/sgd_step.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Loss   float64
		Logits []float64
		Params map[string][]float64
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	m, err := tiny.New(runtime.Config{MaxBatch: 2, Threads: 2, Training: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := weights.LoadFile(m, "../weights/testdata/tiny.safetensors", weights.Options{}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]float64{}
	for _, p := range m.Params() {
		for _, v := range p.Value {
			before[p.Name] = append(before[p.Name], float64(v))
		}
	}
	const n = 2
	x := make([]float32, n*tiny.InC*tiny.InH*tiny.InW)
	for i := range x {
		x[i] = float32(float64((i*7919)%1000)/500 - 1)
	}
	m.SetTraining(false)
	opt, err := optim.NewSGD(m, 0.9, 5e-4, false)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	dl := make([]float32, len(logits))
	loss, _, err := runtime.SoftmaxCrossEntropy(logits, []int{3, 7}, tiny.NumClasses, dl)
	if err != nil {
		t.Fatal(err)
	}
	// The logits pass through conv 75, conv 36, linear 108 and linear 32-term sums.
	fwdTol := verify.Lambda * verify.Growth * verify.Unit * (math.Sqrt(75) + math.Sqrt(36) + math.Sqrt(108) + math.Sqrt(32) + math.Sqrt(3) + 2)
	if rel := relErr(logits, want.Logits); rel > fwdTol {
		t.Errorf("logits differ from PyTorch's by %.3g relative (tolerance %.3g)", rel, fwdTol)
	}
	if math.Abs(loss-want.Loss) > fwdTol*math.Abs(want.Loss) {
		t.Errorf("loss %v, PyTorch %v", loss, want.Loss)
	}
	m.ZeroGrad()
	if _, err := m.Backward(dl); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(m, 0.1); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		w, ok := want.Params[p.Name]
		if !ok || len(w) != len(p.Value) {
			t.Fatalf("%s: PyTorch's file has %d values, the model %d", p.Name, len(w), len(p.Value))
		}
		var num, den, ulp float64
		for i, v := range p.Value {
			dGot, dWant := float64(v)-before[p.Name][i], w[i]-before[p.Name][i]
			num += (dGot - dWant) * (dGot - dWant)
			den += dWant * dWant
			ulp += math.Pow(verify.Unit*math.Abs(w[i]), 2)
		}
		rel := math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
		if allow := 2*fwdTol + math.Sqrt(ulp)/math.Max(math.Sqrt(den), 1e-30); rel > allow {
			t.Errorf("%s: the step differs from PyTorch's by %.3g relative (tolerance %.3g)", p.Name, rel, allow)
		}
	}
}

func relErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	return math.Sqrt(num / den)
}
