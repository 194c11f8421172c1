package runtime

import (
	"math"
	"testing"
)

func TestSoftmaxCrossEntropy(t *testing.T) {
	// Two samples, three classes. Sample 0: uniform logits, loss ln 3. Sample 1:
	// logits (1000, 0, 0), label 0: loss ≈ 0, no overflow.
	logits := []float32{0, 0, 0, 1000, 0, 0}
	d := make([]float32, 6)
	loss, correct, err := SoftmaxCrossEntropy(logits, []int{1, 0}, 3, d)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(3) / 2; math.Abs(loss-want) > 1e-12 {
		t.Errorf("loss %v, want %v", loss, want)
	}
	if correct != 1 { // sample 0's argmax is class 0 (first of the ties), label 1
		t.Errorf("correct %d, want 1", correct)
	}
	want := []float32{1.0 / 6, -1.0 / 3, 1.0 / 6, 0, 0, 0}
	for i := range want {
		if math.Abs(float64(d[i]-want[i])) > 1e-7 {
			t.Errorf("dlogits[%d] = %v, want %v", i, d[i], want[i])
		}
	}
	if _, _, err := SoftmaxCrossEntropy(logits, []int{3, 0}, 3, d); err == nil {
		t.Error("no error for a label out of range")
	}
	if _, _, err := SoftmaxCrossEntropy(logits[:5], []int{0, 0}, 3, d); err == nil {
		t.Error("no error for a short logits slice")
	}
	if a := testing.AllocsPerRun(10, func() { SoftmaxCrossEntropy(logits, []int{1, 0}, 3, d) }); a != 0 {
		t.Errorf("allocates %v times", a)
	}
}
