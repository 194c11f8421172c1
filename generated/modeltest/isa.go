package modeltest

import (
	"crypto/sha256"
	"testing"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/spec"
)

// testISAs runs the same training step through every kernel path this CPU has
// (AVX-512, AVX2, pure Go): exact mode must give the same bits on each. So must a
// fast-mode Forward: its Winograd transforms and bfloat16 linear kernels are
// bit-identical across ISAs too.
func testISAs(t *testing.T, f Factory, sm *spec.Model) {
	isas := kernels.ISAs()
	if len(isas) < 2 {
		t.Skipf("only the %v kernels in this build: nothing to compare", isas)
	}
	defer kernels.SetISA(isas[0])
	n := 2
	train := trainBatchOK(sm, n)
	var want, wantFast [32]byte
	for i, isa := range isas {
		if err := kernels.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		m := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Training: true, Seed: 5})
		randomize(t, m, 6)
		got := step(t, m, sm, n, train)
		fast := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Mode: runtime.Fast})
		randomize(t, fast, 6)
		logits, err := fast.Forward(input(sm, n, 5), n)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		hash(h, logits)
		gotFast := [32]byte(h.Sum(nil))
		if i == 0 {
			want, wantFast = got, gotFast
			continue
		}
		if got != want {
			t.Errorf("kernels %s: logits, gradients or running statistics differ from %s", isa, isas[0])
		}
		if gotFast != wantFast {
			t.Errorf("kernels %s: fast-mode logits differ from %s", isa, isas[0])
		}
	}
}
