package verify

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cnngen/cnngen/spec"
)

// handBuilder builds spec.Models by hand (with torchvision names and inferred shapes)
// so these tests do not depend on the spec parser.
type handBuilder struct {
	m       *spec.Model
	cur     spec.Shape
	section string
	idx     int
}

func handModel(name string, c, h, w int) *handBuilder {
	in := spec.Shape{C: c, H: h, W: w}
	return &handBuilder{m: &spec.Model{Name: name, Input: in}, cur: in}
}

// sec starts a section ("features", "classifier"); "" means top-level modules named by
// their keyword.
func (b *handBuilder) sec(name string) *handBuilder {
	b.section, b.idx = name, 0
	return b
}

func (b *handBuilder) add(l spec.Layer) *handBuilder {
	if l.Name == "" {
		if b.section != "" {
			l.Name = fmt.Sprintf("%s.%d", b.section, b.idx)
		} else {
			l.Name = l.Kind.String()
		}
	}
	if b.section != "" {
		b.idx++
	}
	l.In = b.cur
	out := b.cur
	switch l.Kind {
	case spec.Conv:
		out = spec.Shape{C: l.OutC, H: (l.In.H+2*l.PH-l.KH)/l.SH + 1, W: (l.In.W+2*l.PW-l.KW)/l.SW + 1}
	case spec.MaxPool:
		out = spec.Shape{C: l.In.C, H: (l.In.H+2*l.PH-l.KH)/l.SH + 1, W: (l.In.W+2*l.PW-l.KW)/l.SW + 1}
	case spec.AvgPool:
		out = spec.Shape{C: l.In.C, H: l.Out.H, W: l.Out.W}
	case spec.Flatten:
		out = spec.Shape{C: l.In.Size(), H: 1, W: 1, Flat: true}
	case spec.Linear:
		out = spec.Shape{C: l.OutC, H: 1, W: 1, Flat: true}
	}
	l.Out = out
	b.cur = out
	b.m.Layers = append(b.m.Layers, &l)
	return b
}

func (b *handBuilder) conv(out, k, s, p, g int, bias bool) *handBuilder {
	return b.add(spec.Layer{Kind: spec.Conv, OutC: out, KH: k, KW: k, SH: s, SW: s, PH: p, PW: p, Groups: g, Bias: bias})
}
func (b *handBuilder) relu() *handBuilder { return b.add(spec.Layer{Kind: spec.ReLU}) }
func (b *handBuilder) maxpool(k, s, p int) *handBuilder {
	return b.add(spec.Layer{Kind: spec.MaxPool, KH: k, KW: k, SH: s, SW: s, PH: p, PW: p})
}
func (b *handBuilder) avgpool(h, w int) *handBuilder {
	return b.add(spec.Layer{Kind: spec.AvgPool, Out: spec.Shape{H: h, W: w}})
}
func (b *handBuilder) lrn(size int, alpha, beta, k float64) *handBuilder {
	return b.add(spec.Layer{Kind: spec.LRN, Size: size, Alpha: alpha, Beta: beta, K: k})
}
func (b *handBuilder) bn() *handBuilder {
	return b.add(spec.Layer{Kind: spec.BatchNorm, Eps: 1e-5, Momentum: 0.1})
}
func (b *handBuilder) dropout(p float64) *handBuilder {
	return b.add(spec.Layer{Kind: spec.Dropout, P: p})
}
func (b *handBuilder) flatten() *handBuilder {
	return b.add(spec.Layer{Kind: spec.Flatten, Name: "flatten"})
}
func (b *handBuilder) linear(out int, bias bool) *handBuilder {
	return b.add(spec.Layer{Kind: spec.Linear, OutC: out, Bias: bias})
}

// vgg appends torchvision's make_layers(cfg, batch_norm) to the current section; 0
// stands for "M".
func (b *handBuilder) vgg(batchNorm bool, cfg ...int) *handBuilder {
	for _, v := range cfg {
		if v == 0 {
			b.maxpool(2, 2, 0)
			continue
		}
		b.conv(v, 3, 1, 1, 1, true)
		if batchNorm {
			b.bn()
		}
		b.relu()
	}
	return b
}

// fdRandVec returns n values uniform in [lo, hi).
func fdRandVec(r *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
	}
	return v
}

// fdRandMask returns n values, each 1 with probability keep and 0 otherwise.
func fdRandMask(r *rand.Rand, n int, keep float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		if r.Float64() < keep {
			v[i] = 1
		}
	}
	return v
}

func fdDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// fdStep is the step h of the central finite differences. Their error is about
// h²·|f‴|/6 (truncation) plus ε·|L|/h (rounding, ε ≈ 1.1e-16), smallest near
// h ≈ ε^(1/3) ≈ 5e-6 for O(1) values. With h = 1e-5 the whole-net checks land around
// 1e-7, where h = 1e-6 would leave rounding noise near 1e-6 (measured) for the small
// input gradients of the nets. Crossing a kink of relu or max pool within ±h has
// probability ~h per value with random inputs, and the seeds are fixed.
const fdStep = 1e-5

// fdTol is the tolerance of fdErr.
const fdTol = 1e-6

// fdErr compares an analytic gradient a with a numeric one num element by element and
// returns the worst error and where it occurred. The error of element i is
//
//	|a_i − num_i| / max(|a_i|, |num_i|, 1e-2·‖num‖∞)
//
// so it is a relative error for the elements that matter, while elements whose
// gradient is tiny compared with the largest one (down to exactly zero, where a
// relative error is meaningless and only the finite difference's rounding noise is
// left) are measured against 1% of the largest gradient.
func fdErr(a, num []float64) (worst float64, at int) {
	inf := 0.0
	for _, v := range num {
		inf = math.Max(inf, math.Abs(v))
	}
	for i := range a {
		den := math.Max(math.Max(math.Abs(a[i]), math.Abs(num[i])), 1e-2*inf)
		e := math.Abs(a[i] - num[i])
		if e == 0 {
			continue
		}
		if e /= den; e > worst || math.IsNaN(e) {
			worst, at = e, i
		}
	}
	return worst, at
}

// fdZero is the magnitude below which a whole gradient tensor counts as zero: far
// above the central difference's rounding noise (≈ 1e-10·|L| here), far below any
// real gradient in these tests.
const fdZero = 1e-8

// checkFD compares analytic with the central finite difference of loss with respect to
// each element of v (which loss reads), restoring v afterwards. An all-zero numeric
// gradient fails the test, as it would make the check vacuous.
func checkFD(t *testing.T, op, what string, v, analytic []float64, loss func() float64) {
	t.Helper()
	fdCheck(t, op, what, v, analytic, loss, nil, false)
}

// checkFDAt is checkFD restricted to the elements idx of v (all of them if idx is nil).
func checkFDAt(t *testing.T, op, what string, v, analytic []float64, loss func() float64, idx []int) {
	t.Helper()
	fdCheck(t, op, what, v, analytic, loss, idx, false)
}

// fdCheck implements checkFD and checkFDAt. With allowZero, a gradient that is zero
// both analytically and numerically (all |values| ≤ fdZero) passes: the loss does not
// depend on v, as a conv bias before a train-mode batch norm, which subtracts it again.
func fdCheck(t *testing.T, op, what string, v, analytic []float64, loss func() float64, idx []int, allowZero bool) {
	t.Helper()
	if len(v) != len(analytic) {
		t.Fatalf("%s: d/d%s: analytic gradient has %d values, want %d", op, what, len(analytic), len(v))
	}
	if idx == nil {
		idx = make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
	}
	a := make([]float64, len(idx))
	num := make([]float64, len(idx))
	big := 0.0
	for k, i := range idx {
		old := v[i]
		v[i] = old + fdStep
		lp := loss()
		v[i] = old - fdStep
		lm := loss()
		v[i] = old
		num[k] = (lp - lm) / (2 * fdStep)
		a[k] = analytic[i]
		big = math.Max(big, math.Max(math.Abs(a[k]), math.Abs(num[k])))
	}
	if big <= fdZero {
		if allowZero {
			t.Logf("FD %s: d/d%s: %d of %d values, zero gradient (all |values| ≤ %g)", op, what, len(idx), len(v), big)
		} else {
			t.Errorf("%s: d/d%s: the gradient is zero (all |values| ≤ %g); the check is vacuous", op, what, big)
		}
		return
	}
	worst, at := fdErr(a, num)
	if worst > fdTol || math.IsNaN(worst) {
		t.Errorf("%s: d/d%s: worst relative error %.3g at %d: analytic %.12g, numeric %.12g", op, what, worst, idx[at], a[at], num[at])
	} else {
		t.Logf("FD %s: d/d%s: %d of %d values, worst relative error %.2g", op, what, len(idx), len(v), worst)
	}
}

// fdSample returns k distinct indices in [0, n) in increasing order, chosen with r, or
// nil (meaning all) if n ≤ k.
func fdSample(r *rand.Rand, n, k int) []int {
	if n <= k {
		return nil
	}
	idx := r.Perm(n)[:k]
	slices.Sort(idx)
	return idx
}

// close reports whether a and b agree to a relative 1e-12 (absolute for |values| < 1).
func refClose(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func refCheckClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !refClose(got[i], want[i]) {
			t.Errorf("%s[%d] = %.15g, want %.15g", what, i, got[i], want[i])
		}
	}
}
