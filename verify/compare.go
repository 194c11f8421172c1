package verify

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
)

// Unit is float32's unit roundoff, 2⁻²⁴.
const Unit = 1.0 / (1 << 24)

// Lambda is the constant of the probabilistic rounding-error bound the tolerances use.
// Under the model that rounding errors are independent and mean zero (Higham and Mary,
// "A New Approach to Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput.
// 2019), a sum of K products computed in float32 has relative error at most
// Lambda·√K·Unit with probability at least 1 − 2·exp(−Lambda²/2) ≈ 1 − 2.5·10⁻¹⁴.
const Lambda = 8

// Growth allows for the amplification of errors from one layer to the next (a layer's
// normwise condition number: the error of its input propagates through the rest of
// the net). It is an allowance, not a measurement: 4. Errors add over the layers of a
// path, which the sum over the path accounts for. On the shipped small nets the
// measured errors are about a thousandth of the resulting bounds (cnn verify prints
// both), so a real defect (a wrong index, a lost term) stands out by orders of
// magnitude.
const Growth = 4

// Options configure Compare.
type Options struct {
	Batch int    // samples (default 2)
	Train bool   // training mode: batch statistics, dropout with the model's masks
	Seed  uint64 // weights, input and output gradient are drawn from this seed
	// Backward also compares dL/dx and every parameter gradient. The model must be a
	// training instance.
	Backward bool
}

// Metric is the agreement of one tensor between a model and the reference.
type Metric struct {
	Name   string  // "logits", "dx", a parameter or buffer name; CompareLayers: a layer, "grad " + a layer
	Len    int     // values compared
	Of     int     // values in the tensor, if only Len of them were sampled (else 0)
	MaxAbs float64 // max |model − reference|
	Rel    float64 // normwise relative error ‖model − reference‖₂ / ‖reference‖₂
	Tol    float64 // the bound Rel must not exceed
	Pass   bool
}

// Report is the result of Compare.
type Report struct {
	Model   string
	Train   bool
	Batch   int
	Seed    uint64
	Samples int // positions sampled per tensor (CompareLayers); 0: every value
	Metrics []Metric
	Pass    bool
}

// MaskedModel is a model that reports the dropout masks of its last training Forward
// as multipliers (0, or 1/(1-p)) in C·H·W order. Generated models implement it.
type MaskedModel interface {
	runtime.Model
	DropoutMasks() []runtime.Param
}

// Compare loads the same random weights into m and into the reference interpreter of
// sm, runs both on the same random batch, and compares the logits and, with
// opt.Backward, dL/dx and every parameter gradient for the same random dL/dlogits; in
// training mode also the updated running statistics.
//
// Each tolerance is derived, not tuned: a tensor computed through a path of layers
// whose sums have K₁, K₂, ... terms gets Tol = Lambda·Growth·Unit·Σ√Kᵢ (see Lambda
// and Growth), the path being the layers from the input to the logits for the
// logits, and forward then backward for gradients.
//
// Compare changes m's weights, buffers, gradients and training mode.
func Compare(m runtime.Model, sm *spec.Model, opt Options) (*Report, error) {
	if opt.Batch == 0 {
		opt.Batch = 2
	}
	if c := m.InputShape(); c != [3]int{sm.Input.C, sm.Input.H, sm.Input.W} || m.Classes() != sm.Classes() {
		return nil, fmt.Errorf("verify: model %s (input %v, %d classes) does not match spec %s (input %v, %d classes)",
			m.Name(), c, m.Classes(), sm.Name, sm.Input, sm.Classes())
	}
	net := NewNet(sm)
	net.InitRandom(opt.Seed)
	// The model computes in float32: hold the reference to the same float32 weights.
	if err := loadInto(m, net); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x7665726966))
	n := opt.Batch
	x32 := make([]float32, n*sm.Input.Size())
	x64 := make([]float64, len(x32))
	for i := range x32 {
		x32[i] = float32(rng.NormFloat64())
		x64[i] = float64(x32[i])
	}
	m.SetTraining(opt.Train)
	if opt.Backward {
		m.ZeroGrad()
	}
	logits, err := m.Forward(x32, n)
	if err != nil {
		return nil, err
	}
	logits = append([]float32(nil), logits...)
	var masks map[string][]float64
	if opt.Train {
		masks = map[string][]float64{}
		if mm, ok := m.(MaskedModel); ok {
			for _, p := range mm.DropoutMasks() {
				keep := make([]float64, len(p.Value))
				for i, v := range p.Value {
					if v != 0 {
						keep[i] = 1
					}
				}
				masks[p.Name] = keep
			}
		}
	}
	pass, err := net.Forward(x64, n, opt.Train, masks)
	if err != nil {
		return nil, err
	}
	fwdPath := pathSum(sm)
	rep := &Report{Model: m.Name(), Train: opt.Train, Batch: n, Seed: opt.Seed, Pass: true}
	rep.add("logits", logits, pass.Logits, fwdPath)
	if opt.Train {
		for _, b := range m.Buffers() {
			rep.add(b.Name, b.Value, net.Buffers[b.Name], fwdPath)
		}
	}
	if opt.Backward {
		dl32 := make([]float32, len(logits))
		dl64 := make([]float64, len(logits))
		for i := range dl32 {
			dl32[i] = float32(rng.NormFloat64())
			dl64[i] = float64(dl32[i])
		}
		dx, err := m.Backward(dl32)
		if err != nil {
			return nil, err
		}
		g, err := pass.Backward(dl64)
		if err != nil {
			return nil, err
		}
		rep.add("dx", dx, g.Input, 2*fwdPath)
		for _, p := range m.Params() {
			rep.addScaled(p.Name+" grad", p.Grad, g.Params[p.Name], 2*fwdPath, termScale(sm, pass, g, p.Name))
		}
	}
	return rep, nil
}

// pathSum is Σ√K over the layers with sums (conv, linear, and the normalizations,
// whose sums are over the window or the batch).
func pathSum(m *spec.Model) float64 {
	s := 0.0
	for _, l := range m.Layers {
		s += forwardSum(l)
	}
	return s
}

// loadInto rounds the reference's weights and buffers to float32, writes them into
// the model, and rounds the reference to the same values.
func loadInto(m runtime.Model, net *Net) error {
	copyIn := func(ps []runtime.Param, ref map[string][]float64, what string) error {
		if len(ps) != len(ref) {
			return fmt.Errorf("verify: model %s has %d %s, the spec %d", m.Name(), len(ps), what, len(ref))
		}
		for _, p := range ps {
			r, ok := ref[p.Name]
			if !ok {
				return fmt.Errorf("verify: model %s has %s %q, which the spec lacks", m.Name(), what, p.Name)
			}
			if len(r) != len(p.Value) {
				return fmt.Errorf("verify: %s %q has %d values in the model, %d in the spec", what, p.Name, len(p.Value), len(r))
			}
			for i, v := range r {
				p.Value[i] = float32(v)
				r[i] = float64(p.Value[i])
			}
		}
		return nil
	}
	if err := copyIn(m.Params(), net.Params, "parameters"); err != nil {
		return err
	}
	if err := copyIn(m.Buffers(), net.Buffers, "buffers"); err != nil {
		return err
	}
	return m.Sync()
}

// termScale is the size of the terms a parameter gradient sums: ‖dL/dy‖₂ of its
// layer's output times the RMS of the layer's input (1 for a bias, whose terms are the
// output gradients themselves). Rounding errors scale with the terms of a sum, not
// with its result: a conv bias followed by batch norm in training has an exactly zero
// gradient whose terms cancel, and only its error relative to the terms means anything.
func termScale(sm *spec.Model, pass *Pass, g *Grads, param string) float64 {
	i := strings.LastIndexByte(param, '.')
	if i < 0 {
		return 0
	}
	layer, kind := param[:i], param[i+1:]
	var prev []float64 = pass.Input
	for _, l := range sm.Layers {
		if l.Name == layer {
			break
		}
		prev = pass.Out[l.Name]
	}
	s := norm(g.Out[layer])
	if kind == "weight" {
		s *= norm(prev) / math.Sqrt(float64(max(len(prev), 1)))
	}
	return s
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

func (r *Report) add(name string, got []float32, want []float64, path float64) {
	r.addScaled(name, got, want, path, 0)
}

// addScaled compares got with want; the relative error is taken against the larger of
// ‖want‖₂ and scale (see termScale).
func (r *Report) addScaled(name string, got []float32, want []float64, path, scale float64) {
	r.addSampled(name, got, want, 0, path, scale)
}

// addSampled is addScaled for values sampled from a tensor of of values.
func (r *Report) addSampled(name string, got []float32, want []float64, of int, path, scale float64) {
	mt := Metric{Name: name, Len: len(want), Tol: Lambda * Growth * Unit * math.Max(path, 1)}
	if of > len(want) {
		mt.Of = of
	}
	if len(got) != len(want) {
		mt.MaxAbs, mt.Rel = math.Inf(1), math.Inf(1)
	} else {
		var num, den float64
		for i, w := range want {
			d := float64(got[i]) - w
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			num += d * d
			den += w * w
			mt.MaxAbs = math.Max(mt.MaxAbs, math.Abs(d))
		}
		den = math.Max(den, scale*scale)
		switch {
		case den > 0:
			mt.Rel = math.Sqrt(num / den)
		case num > 0:
			mt.Rel = math.Inf(1)
		}
	}
	mt.Pass = mt.Rel <= mt.Tol
	r.Pass = r.Pass && mt.Pass
	r.Metrics = append(r.Metrics, mt)
}

// Err returns an error naming every failing tensor, or nil.
func (r *Report) Err() error {
	var errs []error
	for _, m := range r.Metrics {
		if !m.Pass {
			errs = append(errs, fmt.Errorf("%s: %s: relative error %.3g exceeds %.3g (max abs %.3g over %s values)", r.Model, m.Name, m.Rel, m.Tol, m.MaxAbs, m.values()))
		}
	}
	return errors.Join(errs...)
}

// Write prints the report as a table, worst relative error first.
func (r *Report) Write(w io.Writer) {
	mode := "eval"
	if r.Train {
		mode = "train"
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	sampled := ""
	if r.Samples > 0 {
		sampled = fmt.Sprintf("  %d positions per tensor", r.Samples)
	}
	fmt.Fprintf(w, "%s  %s  batch %d  seed %d%s  %s\n", r.Model, mode, r.Batch, r.Seed, sampled, verdict)
	ms := append([]Metric(nil), r.Metrics...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].ratio() > ms[j].ratio() })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tensor\tvalues\tmax abs\trel error\ttolerance\t\t")
	for _, m := range ms {
		ok := "ok"
		if !m.Pass {
			ok = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3g\t%.3g\t%.3g\t%s\t\n", m.Name, m.values(), m.MaxAbs, m.Rel, m.Tol, ok)
	}
	tw.Flush()
}

// ratio is Rel/Tol, for sorting: 0 or +Inf for an exact check (Tol 0).
func (m Metric) ratio() float64 {
	switch {
	case m.Tol > 0:
		return m.Rel / m.Tol
	case m.Pass:
		return 0
	}
	return math.Inf(1)
}

// values is "Len", or "Len of Of" for a sampled tensor.
func (m Metric) values() string {
	if m.Of > m.Len {
		return fmt.Sprintf("%d of %d", m.Len, m.Of)
	}
	return fmt.Sprint(m.Len)
}
