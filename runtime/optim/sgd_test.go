package optim

import (
	"math"
	"testing"

	"github.com/cnngen/cnngen/runtime"
)

// fake is a runtime.Model with one parameter, enough for the optimizer.
type fake struct {
	runtime.Model
	p     []runtime.Param
	syncs int
}

func (f *fake) Params() []runtime.Param { return f.p }
func (f *fake) Sync() error             { f.syncs++; return nil }

func newFake(v, g []float32) *fake {
	return &fake{p: []runtime.Param{{Name: "w", Shape: []int{len(v)}, Value: v, Grad: g}}}
}

// PyTorch 1.13 (Debian's python3-torch), torch.optim.SGD([w], lr=0.1, momentum=0.9,
// weight_decay=0.01, nesterov=...) on w = [1, -2] with the gradient [0.5, 0.25] at
// every step, prints after three steps (torch.set_printoptions(precision=8)):
//
//	nesterov=False: [0.71413475, -2.12891984]
//	nesterov=True:  [0.59020996, -2.18480730]
var torchSGD = map[bool][2]float64{false: {0.71413475, -2.12891984}, true: {0.59020996, -2.18480730}}

func TestSGDMatchesUpdateRule(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		v := []float32{1, -2}
		g := []float32{0.5, 0.25}
		m := newFake(v, g)
		o, err := NewSGD(m, 0.9, 0.01, nesterov)
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{1, -2}
		buf := []float64{0, 0}
		for step := 0; step < 3; step++ {
			for k := range want {
				d := float64(g[k]) + 0.01*want[k]
				if step == 0 {
					buf[k] = d
				} else {
					buf[k] = 0.9*buf[k] + d
				}
				if nesterov {
					d += 0.9 * buf[k]
				} else {
					d = buf[k]
				}
				want[k] -= 0.1 * d
			}
			if err := o.Step(m, 0.1); err != nil {
				t.Fatal(err)
			}
		}
		for k := range want {
			if math.Abs(float64(v[k])-want[k]) > 1e-6 {
				t.Errorf("nesterov=%v: w[%d] = %v, want %v (update rule in float64)", nesterov, k, v[k], want[k])
			}
			if pt := torchSGD[nesterov][k]; math.Abs(float64(v[k])-pt) > 1e-6 {
				t.Errorf("nesterov=%v: w[%d] = %v, PyTorch gives %v", nesterov, k, v[k], pt)
			}
		}
		if m.syncs != 3 || o.Steps() != 3 {
			t.Errorf("syncs %d, steps %d", m.syncs, o.Steps())
		}
	}
}

func TestSGDPlain(t *testing.T) {
	v := []float32{1}
	m := newFake(v, []float32{2})
	o, _ := NewSGD(m, 0, 0, false)
	o.Step(m, 0.25)
	if v[0] != 0.5 {
		t.Errorf("w = %v, want 0.5", v[0])
	}
	if o.State() != nil {
		t.Error("momentum buffers without momentum")
	}
}

func TestSGDErrors(t *testing.T) {
	m := newFake([]float32{1}, nil)
	if _, err := NewSGD(m, 0.9, 0, false); err == nil {
		t.Error("no error for a parameter without gradient")
	}
	if _, err := NewSGD(newFake([]float32{1}, []float32{1}), 0, 0, true); err == nil {
		t.Error("no error for Nesterov without momentum")
	}
	o, _ := NewSGD(newFake([]float32{1, 2}, []float32{1, 1}), 0.9, 0, false)
	if err := o.SetState([][]float32{{1}}, 1); err == nil {
		t.Error("no error for a wrong-sized momentum buffer")
	}
}

func TestSchedules(t *testing.T) {
	s := StepLR{Base: 0.1, Gamma: 0.1, Every: 2}
	for e, want := range []float64{0.1, 0.1, 0.01, 0.01, 0.001} {
		if got := s.LR(float64(e) + 0.5); math.Abs(got-want) > 1e-12 {
			t.Errorf("StepLR epoch %d: %v, want %v", e, got, want)
		}
	}
	c := Cosine{Base: 0.1, Min: 0, Epochs: 4}
	for e, want := range []float64{0.1, 0.1 * (1 + math.Sqrt2/2) / 2, 0.05, 0.1 * (1 - math.Sqrt2/2) / 2, 0} {
		if got := c.LR(float64(e)); math.Abs(got-want) > 1e-12 {
			t.Errorf("Cosine epoch %d: %v, want %v", e, got, want)
		}
	}
	if got := c.LR(0.5); math.Abs(got-0.1*(1+math.Cos(math.Pi/8))/2) > 1e-12 {
		t.Errorf("Cosine half way through epoch 0: %v", got)
	}
}
