package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// sgdScalar is the update rule as Step computed it before kernels.SGDUpdate, one
// value at a time with every product and sum rounded to float32: Step must keep
// these bits.
func sgdScalar(v, g, buf []float32, lr, wd, mom float32, first, nesterov bool) {
	for k := range v {
		d := g[k]
		if wd != 0 {
			d += float32(wd * v[k])
		}
		if buf != nil {
			if first {
				buf[k] = d
			} else {
				buf[k] = float32(mom*buf[k]) + d
			}
			if nesterov {
				d += float32(mom * buf[k])
			} else {
				d = buf[k]
			}
		}
		v[k] -= float32(lr * d)
	}
}

// multiFake is a model with parameters of the given sizes, values and gradients
// in one slab each as generated models keep them, drawn from seed.
func multiFake(sizes []int, seed uint64) (*fake, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	total := 0
	for _, n := range sizes {
		total += n
	}
	vals, grads := make([]float32, total), make([]float32, total)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
		grads[i] = float32(rng.NormFloat64() * 0.1)
	}
	f := &fake{}
	off := 0
	for i, n := range sizes {
		f.p = append(f.p, runtime.Param{Name: fmt.Sprint("p", i), Shape: []int{n}, Value: vals[off : off+n], Grad: grads[off : off+n]})
		off += n
	}
	return f, grads
}

// TestSGDStepBits checks Step bit for bit against the scalar rule over three
// steps, for every option and thread count, on parameters that span several
// pieces and end in partial ones; with ZeroGrad, the gradients must be zero
// afterwards and the values the same.
func TestSGDStepBits(t *testing.T) {
	sizes := []int{3, stepChunk + 17, 1000, 2*stepChunk - 1, 64}
	for _, c := range []struct {
		mom, wd  float64
		nesterov bool
	}{{0, 0, false}, {0, 1e-3, false}, {0.9, 0, false}, {0.9, 5e-4, false}, {0.9, 5e-4, true}} {
		for _, threads := range []int{1, 2, 3, 8} {
			for _, zero := range []bool{false, true} {
				what := fmt.Sprintf("momentum=%v wd=%v nesterov=%v threads=%d zeroGrad=%v", c.mom, c.wd, c.nesterov, threads, zero)
				m, grads := multiFake(sizes, 7)
				ref, refGrads := multiFake(sizes, 7)
				o, err := NewSGD(m, c.mom, c.wd, c.nesterov)
				if err != nil {
					t.Fatal(err)
				}
				o.Threads, o.ZeroGrad = threads, zero
				bufs := make([][]float32, len(sizes))
				for step := 0; step < 3; step++ {
					lr := 0.1 / float64(step+1)
					if err := o.Step(m, lr); err != nil {
						t.Fatal(err)
					}
					for i, p := range ref.p {
						var buf []float32
						if c.mom != 0 {
							if bufs[i] == nil {
								bufs[i] = make([]float32, len(p.Value))
							}
							buf = bufs[i]
						}
						sgdScalar(p.Value, p.Grad, buf, float32(lr), float32(c.wd), float32(c.mom), step == 0, c.nesterov)
					}
					for i, p := range m.p {
						for k, v := range p.Value {
							if w := ref.p[i].Value[k]; math.Float32bits(v) != math.Float32bits(w) {
								t.Fatalf("%s: step %d: %s[%d] = %v, scalar rule %v", what, step, p.Name, k, v, w)
							}
						}
					}
					if zero {
						for k, g := range grads {
							if math.Float32bits(g) != 0 {
								t.Fatalf("%s: step %d: gradient %d = %v after Step", what, step, k, g)
							}
						}
						copy(grads, refGrads) // the next Backward's gradients
					}
				}
			}
		}
	}
}
