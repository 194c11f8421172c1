package optim

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/cnngen/cnngen/runtime"
)

// alexNetShapes are the parameter sizes of torchvision's AlexNet (61.1 M values):
// weight and bias of five convolutions and three linear layers.
var alexNetShapes = []int{
	64 * 3 * 11 * 11, 64, 192 * 64 * 5 * 5, 192, 384 * 192 * 3 * 3, 384,
	256 * 384 * 3 * 3, 256, 256 * 256 * 3 * 3, 256,
	4096 * 9216, 4096, 4096 * 4096, 4096, 1000 * 4096, 1000,
}

// benchModel is a fake model with parameters of the given sizes, values and
// gradients in one slab each as generated models keep them (so that clear(grads)
// is the model's ZeroGrad), filled with small normal values, no value zero: the
// updates keep them normal, where subnormals would slow some CPUs down.
func benchModel(sizes []int) (f *fake, grads []float32) {
	total := 0
	for _, n := range sizes {
		total += n
	}
	vals := make([]float32, total)
	grads = make([]float32, total)
	for k := range vals {
		vals[k] = float32(k%97)*0.01 - 0.485
		grads[k] = float32(k%89)*1e-3 - 0.044
	}
	f = &fake{}
	off := 0
	for i, n := range sizes {
		f.p = append(f.p, runtime.Param{Name: fmt.Sprint("p", i), Shape: []int{n}, Value: vals[off : off+n], Grad: grads[off : off+n]})
		off += n
	}
	return f, grads
}

// scalarStep is Step as it was before kernels.SGDUpdate: the same pieces dealt
// round-robin to the goroutines, each updated by the scalar loop sgdScalar. It is
// the baseline of BenchmarkSGDStep.
func scalarStep(o *SGD, lr float64) {
	type piece struct{ p, lo, hi int }
	var pieces []piece
	for i, p := range o.params {
		for lo := 0; lo < len(p.Value); lo += stepChunk {
			pieces = append(pieces, piece{i, lo, min(lo+stepChunk, len(p.Value))})
		}
	}
	threads := max(1, min(goruntime.GOMAXPROCS(0), len(pieces)))
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Go(func() {
			for k := t; k < len(pieces); k += threads {
				pc := pieces[k]
				p := o.params[pc.p]
				sgdScalar(p.Value[pc.lo:pc.hi], p.Grad[pc.lo:pc.hi], o.buf[pc.p][pc.lo:pc.hi],
					float32(lr), float32(o.WeightDecay), float32(o.Momentum), false, o.Nesterov)
			}
		})
	}
	wg.Wait()
}

// BenchmarkSGDStep times one Step over AlexNet's 61 M parameters with momentum
// 0.9 and weight decay 5e-4 (after a first step) on GOMAXPROCS goroutines, and
// reports the memory traffic of the update per second (read value, gradient and
// momentum buffer, write value and buffer: 20 bytes a parameter; the gradient
// clear is not counted). The cases:
//
//   - scalar: the scalar loop Step used before kernels.SGDUpdate;
//   - mom, nesterov: Step;
//   - mom+clear: Step, then clear(grads), which is the generated models' ZeroGrad;
//   - mom+zerograd: Step with ZeroGrad, which does the same in one pass.
//
// go test -run '^$' -bench SGDStep -benchtime 20x -count 3 ./runtime/optim/
func BenchmarkSGDStep(b *testing.B) {
	for _, kind := range []string{"scalar", "mom", "nesterov", "mom+clear", "mom+zerograd"} {
		b.Run("alexnet/"+kind, func(b *testing.B) {
			m, grads := benchModel(alexNetShapes)
			o, err := NewSGD(m, 0.9, 5e-4, kind == "nesterov")
			if err != nil {
				b.Fatal(err)
			}
			o.ZeroGrad = kind == "mom+zerograd"
			o.Step(m, 0.01) // allocate the buffers, fault the pages in
			for b.Loop() {
				switch kind {
				case "scalar":
					scalarStep(o, 0.01)
				case "mom+clear":
					o.Step(m, 0.01)
					clear(grads)
				default:
					o.Step(m, 0.01)
				}
			}
			ms := float64(b.Elapsed().Microseconds()) / 1e3 / float64(b.N)
			b.ReportMetric(ms, "ms/step")
			b.ReportMetric(20*float64(len(grads))/ms/1e6, "GB/s")
		})
	}
}
