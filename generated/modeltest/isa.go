package modeltest

import (
	"testing"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/spec"
)

// testISAs runs the same training step through every kernel path this CPU has
// (AVX-512, AVX2, pure Go): exact mode must give the same bits on each.
func testISAs(t *testing.T, f Factory, sm *spec.Model) {
	isas := kernels.ISAs()
	if len(isas) < 2 {
		t.Skipf("only the %v kernels in this build: nothing to compare", isas)
	}
	defer kernels.SetISA(isas[0])
	n := 2
	train := trainBatchOK(sm, n)
	var want [32]byte
	for i, isa := range isas {
		if err := kernels.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		m := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Training: true, Seed: 5})
		randomize(t, m, 6)
		got := step(t, m, sm, n, train)
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("kernels %s: logits, gradients or running statistics differ from %s", isa, isas[0])
		}
	}
}
