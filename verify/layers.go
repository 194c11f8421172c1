package verify

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
)

// Inspector is a generated training instance: it reports every held layer output and
// gradient in NCHW (N×F for flat layers).
type Inspector interface {
	MaskedModel
	// Layers returns "input" and then the held layers, in net order; the last is the
	// net's last layer (the logits).
	Layers() []string
	// Activation returns a copy of the named layer's output in the last Forward.
	Activation(layer string) ([]float32, bool)
	// Gradient returns a copy of dL/d(output of the named layer) from the last
	// Backward; "input" gives dL/dx.
	Gradient(layer string) ([]float32, bool)
}

// DefaultSamples is the number of positions CompareLayers compares per tensor when
// LayerOptions.Samples is 0.
const DefaultSamples = 64

// LayerOptions configure CompareLayers and CompareInference.
type LayerOptions struct {
	Batch int    // samples (default 2)
	Train bool   // training mode: batch statistics, dropout with the model's masks
	Seed  uint64 // weights, input, output gradient and positions are drawn from this seed
	// Samples is the number of positions compared per tensor (default DefaultSamples);
	// a tensor with no more values is compared everywhere, and so are the logits,
	// biases and batch-norm parameters, running statistics and their gradients.
	Samples int
	// Backward also compares, layer by layer, the gradients and every parameter
	// gradient for a random dL/dlogits.
	Backward bool
}

// CompareLayers checks a generated training instance layer by layer at sampled
// positions: it is Compare for nets whose whole-net float64 reference is too slow.
//
// It loads the same random weights as Compare (same seed; the same input and
// dL/dlogits), runs m.Forward (and m.Backward), and then, for each consecutive pair
// (A, B) of m.Layers(), takes the model's own output of A as the input of the spec
// layers after A up to B and evaluates their float64 reference at opt.Samples seeded
// positions of B, each by a direct sum over the window it reads (no whole-tensor
// reference anywhere, so its cost hardly grows with the net). With opt.Backward it
// also takes the model's dL/dB and evaluates dL/dA at sampled positions, and the
// gradients of the parameters of those layers: weights at sampled elements, each a
// sum over the whole batch and all positions; biases and batch-norm parameters in
// full. In training mode it also checks the running statistics every batch norm
// updated. The logits (the output of the last layer, compared in full) and dL/dx (the
// gradient of "input") are part of the chain. Last, the metric "parameters as
// loaded" checks that the model left its parameters as they were loaded.
//
// The positions are drawn per tensor from opt.Seed and the tensor's name (see
// layerRun.positions): every channel in turn, or one in each slice of channels when
// there are more channels than samples, and half of them on a border row or column.
// A fault confined to a few values can escape the samples of one run; faults of a
// generator (a tile, a block, a border, a stride phase) spread over many.
//
// The model's ReLU outputs are used as PyTorch uses them: the gradient through a ReLU
// passes where its output is positive. For a held layer that ends in a ReLU, only the
// part of its gradient that passes the ReLU is compared (the generated models hold
// that part, masked, for a convolution or linear layer fused with its ReLU).
//
// Tolerances are derived as in Compare, for one segment (A, B] of the net: with Σ√K
// summed over its layers as pathSum sums over the whole net, B gets
// Lambda·Growth·Unit·Σ√K; dL/dA adds the sums of the backward pass through the
// segment (a conv input gradient sums OutC/Groups·⌈KH/SH⌉·⌈KW/SW⌉ terms, a linear
// one Out, overlapping max-pool windows ⌈KH/SH⌉·⌈KW/SW⌉), and a parameter gradient
// adds its own sum over the batch and the positions. Parameter gradients are measured
// against the size of their terms where that is larger (see termScale): the squares
// of each sampled element's terms are summed alongside the element.
//
// A train-mode batch norm must directly follow a held layer (its batch statistics are
// computed over the whole channel of that layer); generated models hold every output
// a batch norm reads. CompareLayers changes m's weights, buffers, gradients and
// training mode.
func CompareLayers(m Inspector, sm *spec.Model, opt LayerOptions) (rep *Report, err error) {
	if opt.Batch == 0 {
		opt.Batch = 2
	}
	if opt.Samples == 0 {
		opt.Samples = DefaultSamples
	}
	if opt.Batch < 1 || opt.Samples < 1 {
		return nil, fmt.Errorf("verify: CompareLayers: batch %d and samples %d must be positive", opt.Batch, opt.Samples)
	}
	if err := matchSpec(m, sm); err != nil {
		return nil, err
	}
	segs, err := segments(m.Layers(), sm, opt.Train)
	if err != nil {
		return nil, fmt.Errorf("verify: model %s: %v", m.Name(), err)
	}
	weights, buffers := randomWeights(sm, opt.Seed)
	if err := load(m, sm, weights, buffers); err != nil {
		return nil, err
	}
	defer func() {
		if rep != nil {
			rep.addLoaded(m.Params(), weights)
		}
	}()
	n := opt.Batch
	rng := rand.New(rand.NewPCG(opt.Seed, 0x7665726966))
	x := randomInput(rng, n*sm.Input.Size())
	m.SetTraining(opt.Train)
	if opt.Backward {
		m.ZeroGrad()
	}
	logits, err := m.Forward(x, n)
	if err != nil {
		return nil, err
	}
	run := &layerRun{sm: sm, buffers: buffers, n: n, train: opt.Train, samples: opt.Samples, seed: opt.Seed}
	// Activations are read before Backward: a training instance may reuse their
	// memory for gradients.
	names := m.Layers()
	acts := make([][]float32, len(names))
	for i, name := range names {
		shape := sm.Input
		if i > 0 {
			shape = sm.Layer(name).Out
		}
		acts[i], err = fetch(m.Activation, "Activation", name, n*shape.Size())
		if err != nil {
			return nil, fmt.Errorf("verify: model %s: %v", m.Name(), err)
		}
	}
	if !slices.Equal(acts[0], x) {
		return nil, fmt.Errorf("verify: model %s: Activation(%q) is not the input Forward was given", m.Name(), names[0])
	}
	if !bitsEqual(acts[len(acts)-1], logits) {
		return nil, fmt.Errorf("verify: model %s: Activation(%q) differs from the logits Forward returned", m.Name(), names[len(names)-1])
	}
	if opt.Train {
		run.masks = map[string][]float32{}
		for _, p := range m.DropoutMasks() {
			run.masks[p.Name] = slices.Clone(p.Value)
		}
		for _, l := range sm.Layers {
			if l.Kind == spec.Dropout && l.P > 0 && l.P < 1 && len(run.masks[l.Name]) != n*l.In.Size() {
				return nil, fmt.Errorf("verify: model %s: dropout %s: mask has %d values, want %d", m.Name(), l.Name, len(run.masks[l.Name]), n*l.In.Size())
			}
		}
	}
	for i, s := range segs {
		s.layerRun = run
		s.a, s.b = acts[i], acts[i+1]
		s.stats = map[int]*bnChannels{}
		for _, l := range s.ls {
			s.weight = append(s.weight, weights[l.Name+".weight"])
			s.bias = append(s.bias, weights[l.Name+".bias"])
		}
	}

	rep = &Report{Model: m.Name(), Train: opt.Train, Batch: n, Seed: opt.Seed, Samples: opt.Samples, Pass: true}
	for _, s := range segs {
		s.compareForward(rep, m.Buffers())
	}
	if !opt.Backward {
		return rep, nil
	}
	dl := randomInput(rng, len(logits))
	dx, err := m.Backward(dl)
	if err != nil {
		return nil, err
	}
	dx = slices.Clone(dx)
	grads := make([][]float32, len(names))
	for i, name := range names {
		shape := sm.Input
		if i > 0 {
			shape = sm.Layer(name).Out
		}
		grads[i], err = fetch(m.Gradient, "Gradient", name, n*shape.Size())
		if err != nil {
			return nil, fmt.Errorf("verify: model %s: %v", m.Name(), err)
		}
	}
	if !bitsEqual(grads[0], dx) {
		return nil, fmt.Errorf("verify: model %s: Gradient(%q) differs from the dL/dx Backward returned", m.Name(), names[0])
	}
	if !bitsEqual(grads[len(grads)-1], dl) {
		return nil, fmt.Errorf("verify: model %s: Gradient(%q) is not the dL/dlogits Backward was given", m.Name(), names[len(names)-1])
	}
	pgrads := map[string][]float32{}
	for _, p := range m.Params() {
		pgrads[p.Name] = p.Grad
	}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		s.ga, s.gb = grads[i], grads[i+1]
		s.compareBackward(rep, pgrads)
	}
	return rep, nil
}

// CompareInference checks an inference instance (batch norm folded into the
// convolutions) against a training instance in evaluation mode: both get the same
// random weights (as Compare's) and the same random batch, and their logits must agree
// within twice Compare's tolerance for the logits, since each is within that
// tolerance of the exact logits. Only opt.Batch and opt.Seed are used.
func CompareInference(inf runtime.Model, tr Inspector, sm *spec.Model, opt LayerOptions) (*Report, error) {
	if opt.Batch == 0 {
		opt.Batch = 2
	}
	for _, m := range []runtime.Model{inf, tr} {
		if err := matchSpec(m, sm); err != nil {
			return nil, err
		}
	}
	params, buffers := randomWeights(sm, opt.Seed)
	for _, m := range []runtime.Model{inf, tr} {
		if err := load(m, sm, params, buffers); err != nil {
			return nil, err
		}
	}
	n := opt.Batch
	x := randomInput(rand.New(rand.NewPCG(opt.Seed, 0x7665726966)), n*sm.Input.Size())
	inf.SetTraining(false)
	tr.SetTraining(false)
	got, err := inf.Forward(x, n)
	if err != nil {
		return nil, err
	}
	got = slices.Clone(got)
	want, err := tr.Forward(x, n)
	if err != nil {
		return nil, err
	}
	rep := &Report{Model: inf.Name(), Batch: n, Seed: opt.Seed, Pass: true}
	rep.add("logits (inference vs training instance)", got, widen(want), 2*pathSum(sm))
	return rep, nil
}

// addLoaded checks that the parameters still hold the values loaded (the reference
// computed with those): a model must not change them in Sync, Forward or Backward.
func (r *Report) addLoaded(ps []runtime.Param, loaded map[string][]float32) {
	mt := Metric{Name: "parameters as loaded", Pass: true}
	for _, p := range ps {
		mt.Len += len(p.Value)
		want := loaded[p.Name]
		if bitsEqual(p.Value, want) {
			continue
		}
		if mt.Pass {
			mt.Name += " (" + p.Name + " changed)"
		}
		mt.Pass, mt.Rel = false, math.Inf(1)
		for i, v := range p.Value {
			mt.MaxAbs = math.Max(mt.MaxAbs, math.Abs(float64(v)-float64(want[i])))
		}
	}
	r.Pass = r.Pass && mt.Pass
	r.Metrics = append(r.Metrics, mt)
}

// randomWeights returns the weights and buffers Compare loads, those of
// Net.InitRandom(seed) rounded to float32 (see loadInto), drawn as InitRandom draws
// them but straight into float32: VGG's in float64 would take a gigabyte, and drawing
// and copying them is most of a check's own time. The buffers are the float32 values
// as float64.
func randomWeights(sm *spec.Model, seed uint64) (map[string][]float32, map[string][]float64) {
	r := rand.New(rand.NewPCG(seed, 0x636e6e67656e))
	draw := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return v
	}
	params := map[string][]float32{}
	buffers := map[string][]float64{}
	for _, l := range sm.Layers {
		fanin := 1
		switch l.Kind {
		case spec.Conv:
			fanin = l.In.C / l.Groups * l.KH * l.KW
		case spec.Linear:
			fanin = l.In.Size()
		}
		fanin = max(fanin, 1)
		for _, t := range l.Params() {
			isBias := strings.HasSuffix(t.Name, ".bias")
			switch {
			case l.Kind == spec.BatchNorm && isBias:
				params[t.Name] = draw(t.Len(), -0.1, 0.1)
			case l.Kind == spec.BatchNorm:
				params[t.Name] = draw(t.Len(), 0.8, 1.2)
			case isBias:
				b := 1 / math.Sqrt(float64(fanin))
				params[t.Name] = draw(t.Len(), -b, b)
			default:
				b := math.Sqrt(6 / float64(fanin))
				params[t.Name] = draw(t.Len(), -b, b)
			}
		}
		for i, t := range l.Buffers() {
			if i == 0 {
				buffers[t.Name] = widen(draw(t.Len(), -0.1, 0.1)) // running_mean
			} else {
				buffers[t.Name] = widen(draw(t.Len(), 0.5, 1.5)) // running_var
			}
		}
	}
	return params, buffers
}

// load copies the parameters and buffers of sm into m, checking that m has exactly
// those, and Syncs m.
func load(m runtime.Model, sm *spec.Model, params map[string][]float32, buffers map[string][]float64) error {
	check := func(ps []runtime.Param, ts []spec.Tensor, what string) error {
		if len(ps) != len(ts) {
			return fmt.Errorf("verify: model %s has %d %s, the spec %d", m.Name(), len(ps), what, len(ts))
		}
		lens := map[string]int{}
		for _, p := range ps {
			lens[p.Name] = len(p.Value)
		}
		for _, t := range ts {
			n, ok := lens[t.Name]
			if !ok {
				return fmt.Errorf("verify: model %s lacks the %s %q of the spec", m.Name(), what, t.Name)
			}
			if n != t.Len() {
				return fmt.Errorf("verify: %s %q has %d values in the model, %d in the spec", what, t.Name, n, t.Len())
			}
		}
		return nil
	}
	if err := check(m.Params(), sm.Params(), "parameters"); err != nil {
		return err
	}
	if err := check(m.Buffers(), sm.Buffers(), "buffers"); err != nil {
		return err
	}
	for _, p := range m.Params() {
		copy(p.Value, params[p.Name])
	}
	for _, b := range m.Buffers() {
		for i, v := range buffers[b.Name] {
			b.Value[i] = float32(v)
		}
	}
	return m.Sync()
}

// matchSpec checks that m has sm's input shape and number of classes.
func matchSpec(m runtime.Model, sm *spec.Model) error {
	if err := checkModel(sm); err != nil {
		return err
	}
	if c := m.InputShape(); c != [3]int{sm.Input.C, sm.Input.H, sm.Input.W} || m.Classes() != sm.Classes() {
		return fmt.Errorf("verify: model %s (input %v, %d classes) does not match spec %s (input %v, %d classes)",
			m.Name(), c, m.Classes(), sm.Name, sm.Input, sm.Classes())
	}
	return nil
}

func randomInput(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func narrow(v []float64) []float32 {
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return w
}

func widen(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func fetch(get func(string) ([]float32, bool), what, name string, want int) ([]float32, error) {
	v, ok := get(name)
	if !ok {
		return nil, fmt.Errorf("%s(%q) is not available", what, name)
	}
	if len(v) != want {
		return nil, fmt.Errorf("%s(%q) has %d values, want %d", what, name, len(v), want)
	}
	return v, nil
}

// segments splits the spec's layers at the held layers: segment i computes held
// layer i+1 from held layer i.
func segments(held []string, sm *spec.Model, train bool) ([]*segment, error) {
	if len(held) < 2 || held[0] != "input" {
		return nil, fmt.Errorf("Layers() = %q: want \"input\" and then at least the last layer", held)
	}
	index := map[string]int{}
	for i, l := range sm.Layers {
		index[l.Name] = i
	}
	prev := -1
	var segs []*segment
	for _, name := range held[1:] {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("held layer %q is not a layer of spec %s", name, sm.Name)
		}
		if i <= prev {
			return nil, fmt.Errorf("held layer %q is out of net order", name)
		}
		s := &segment{ls: sm.Layers[prev+1 : i+1]}
		s.aSize, s.bSize = s.ls[0].In.Size(), s.ls[len(s.ls)-1].Out.Size()
		if prev < 0 {
			s.from = "input"
		} else {
			s.from = sm.Layers[prev].Name
			s.fromKind = sm.Layers[prev].Kind
		}
		for k, l := range s.ls {
			if train && l.Kind == spec.BatchNorm && k > 0 {
				return nil, fmt.Errorf("batch norm %s in training mode needs its input held, but %s is not", l.Name, sm.Layers[prev+k].Name)
			}
		}
		segs = append(segs, s)
		prev = i
	}
	if prev != len(sm.Layers)-1 {
		return nil, fmt.Errorf("the last held layer %q is not the net's last layer %q", sm.Layers[prev].Name, sm.Layers[len(sm.Layers)-1].Name)
	}
	return segs, nil
}

// layerRun is what every segment of one CompareLayers run shares.
type layerRun struct {
	sm      *spec.Model
	buffers map[string][]float64 // the running statistics as loaded
	n       int
	train   bool
	masks   map[string][]float32 // dropout multipliers from the model, by layer
	samples int
	seed    uint64
}

// segment is the spec layers ls between held layers A (exclusive; "input" for the
// first) and B (inclusive), with the model's tensors at both ends. Layer k of the
// segment reads the output of layer k-1, or A for k = 0.
type segment struct {
	*layerRun
	from     string    // A's name
	fromKind spec.Kind // A's kind (0 for the input)
	ls       []*spec.Layer
	a, b     []float32   // the model's outputs of A and B
	aSize    int         // values per sample of A
	bSize    int         // and of B
	weight   [][]float32 // each layer's weight (nil if none), as loaded
	bias     [][]float32 // and bias
	ga, gb   []float32   // the model's dL/dA and dL/dB
	stats    map[int]*bnChannels
}

// bnChannels holds, for the batch norm at segment layer k, the statistics it
// normalizes with and the per-channel sums of its backward pass, computed per channel
// when first needed.
type bnChannels struct {
	have, haveSums []bool
	mean, sd       []float64
	variance       []float64 // the biased batch variance (training)
	sg, sgx        []float64 // Σ dL/dy and Σ dL/dy·x̂ over the channel
	sg2, sgx2      []float64 // Σ of the squares of those terms
}

// in returns the input of segment layer k at value i of sample n.
func (s *segment) in(k, n, i int) float64 {
	if k == 0 {
		return float64(s.a[n*s.aSize+i])
	}
	return s.fwd(k-1, n, i)
}

// src returns sample n of A if it is the input of segment layer k, else nil.
func (s *segment) src(k, n int) []float32 {
	if k > 0 {
		return nil
	}
	return s.a[n*s.aSize:][:s.aSize]
}

// fwd returns the reference output of segment layer k at value i of sample n
// (i = (c·H + y)·W + x).
func (s *segment) fwd(k, n, i int) float64 {
	l := s.ls[k]
	switch l.Kind {
	case spec.Conv:
		return s.convAt(k, n, i)
	case spec.ReLU:
		if v := s.in(k, n, i); v > 0 || math.IsNaN(v) {
			return v
		}
		return 0
	case spec.MaxPool:
		v, _ := s.maxPoolAt(k, n, i)
		return v
	case spec.AvgPool:
		hw := l.Out.H * l.Out.W
		c, oy, ox := i/hw, i%hw/l.Out.W, i%l.Out.W
		r0, r1 := AdaptiveWindow(oy, l.In.H, l.Out.H)
		c0, c1 := AdaptiveWindow(ox, l.In.W, l.Out.W)
		sum := 0.0
		for r := r0; r < r1; r++ {
			for col := c0; col < c1; col++ {
				sum += s.in(k, n, (c*l.In.H+r)*l.In.W+col)
			}
		}
		return sum / float64(r1-r0) / float64(c1-c0)
	case spec.LRN:
		hw := l.In.H * l.In.W
		return s.in(k, n, i) / math.Pow(s.lrnDen(k, n, i/hw, i%hw), l.Beta)
	case spec.BatchNorm:
		c := i / (l.In.H * l.In.W)
		st := s.bn(k, c)
		return (s.in(k, n, i)-st.mean[c])/st.sd[c]*float64(s.weight[k][c]) + float64(s.bias[k][c])
	case spec.Dropout:
		return s.in(k, n, i) * s.dropFactor(k, n, i)
	case spec.Flatten:
		return s.in(k, n, i)
	case spec.Linear:
		w := s.weight[k][i*l.In.Size():][:l.In.Size()]
		v := 0.0
		if l.Bias {
			v = float64(s.bias[k][i])
		}
		if x := s.src(k, n); x != nil {
			for j, wj := range w {
				v += float64(wj) * float64(x[j])
			}
			return v
		}
		for j, wj := range w {
			v += float64(wj) * s.in(k, n, j)
		}
		return v
	}
	panic("verify: unknown layer kind " + l.Kind.String()) // checkModel rejects it
}

// convAt is the convolution's direct sum at one output value.
func (s *segment) convAt(k, n, i int) float64 {
	l := s.ls[k]
	hw := l.Out.H * l.Out.W
	o, oy, ox := i/hw, i%hw/l.Out.W, i%l.Out.W
	cg, og := l.In.C/l.Groups, l.OutC/l.Groups
	g := o / og
	w := s.weight[k]
	v := 0.0
	if l.Bias {
		v = float64(s.bias[k][o])
	}
	// The taps inside the input: rows p0 ≤ p < p1, columns q0 ≤ q < q1.
	r0, c0 := oy*l.SH-l.PH, ox*l.SW-l.PW
	p0, p1 := max(-r0, 0), min(l.KH, l.In.H-r0)
	q0, q1 := max(-c0, 0), min(l.KW, l.In.W-c0)
	x := s.src(k, n)
	for c := 0; c < cg; c++ {
		plane := (g*cg + c) * l.In.H * l.In.W
		wc := w[(o*cg+c)*l.KH*l.KW:][:l.KH*l.KW]
		for p := p0; p < p1; p++ {
			row := plane + (r0+p)*l.In.W + c0
			if x != nil {
				for q := q0; q < q1; q++ {
					v += float64(wc[p*l.KW+q]) * float64(x[row+q])
				}
				continue
			}
			for q := q0; q < q1; q++ {
				v += float64(wc[p*l.KW+q]) * s.in(k, n, row+q)
			}
		}
	}
	return v
}

// maxPoolAt returns the max pool's output at value i and the index (within the
// sample) of its window's winner, scanning as PyTorch does (see MaxPool2D).
func (s *segment) maxPoolAt(k, n, i int) (float64, int) {
	l := s.ls[k]
	hw := l.Out.H * l.Out.W
	c, oy, ox := i/hw, i%hw/l.Out.W, i%l.Out.W
	r0, r1 := max(oy*l.SH-l.PH, 0), min(oy*l.SH-l.PH+l.KH, l.In.H)
	c0, c1 := max(ox*l.SW-l.PW, 0), min(ox*l.SW-l.PW+l.KW, l.In.W)
	plane := c * l.In.H * l.In.W
	best, at := math.Inf(-1), plane+r0*l.In.W+c0
	for r := r0; r < r1; r++ {
		for col := c0; col < c1; col++ {
			j := plane + r*l.In.W + col
			if v := s.in(k, n, j); v > best || math.IsNaN(v) {
				best, at = v, j
			}
		}
	}
	return best, at
}

// lrnDen is LRN's D_c at channel c, pixel p (see LocalResponseNorm).
func (s *segment) lrnDen(k, n, c, p int) float64 {
	l := s.ls[k]
	hw := l.In.H * l.In.W
	sum := 0.0
	for cc := max(c-l.Size/2, 0); cc <= min(c+(l.Size-1)/2, l.In.C-1); cc++ {
		v := s.in(k, n, cc*hw+p)
		sum += v * v
	}
	return l.K + l.Alpha*(sum/float64(l.Size))
}

// dropFactor is dropout's multiplier at value i: the model's mask in training, as
// 0 or 1/(1−P) (Compare's reading of it), and 1 in evaluation.
func (s *segment) dropFactor(k, n, i int) float64 {
	l := s.ls[k]
	switch {
	case !s.train || l.P == 0:
		return 1
	case l.P == 1:
		return 0
	case s.masks[l.Name][n*l.In.Size()+i] == 0:
		return 0
	}
	return 1 / (1 - l.P)
}

// bn returns the statistics of the batch norm at segment layer k with channel c
// computed: the batch's over the whole channel of its input in training (which is the
// held layer A, see segments), the running statistics as loaded in evaluation.
func (s *segment) bn(k, c int) *bnChannels {
	l := s.ls[k]
	st := s.stats[k]
	if st == nil {
		C := l.In.C
		st = &bnChannels{have: make([]bool, C), haveSums: make([]bool, C),
			mean: make([]float64, C), sd: make([]float64, C), variance: make([]float64, C),
			sg: make([]float64, C), sgx: make([]float64, C), sg2: make([]float64, C), sgx2: make([]float64, C)}
		s.stats[k] = st
	}
	if st.have[c] {
		return st
	}
	st.have[c] = true
	if !s.train {
		st.mean[c] = s.buffers[l.Name+".running_mean"][c]
		st.sd[c] = math.Sqrt(s.buffers[l.Name+".running_var"][c] + l.Eps)
		return st
	}
	hw := l.In.H * l.In.W
	m := float64(s.n * hw)
	sum := 0.0
	for n := 0; n < s.n; n++ {
		for p := 0; p < hw; p++ {
			sum += s.in(k, n, c*hw+p)
		}
	}
	mean := sum / m
	q := 0.0
	for n := 0; n < s.n; n++ {
		for p := 0; p < hw; p++ {
			e := s.in(k, n, c*hw+p) - mean
			q += e * e
		}
	}
	st.mean[c], st.variance[c], st.sd[c] = mean, q/m, math.Sqrt(q/m+l.Eps)
	return st
}

// bnSums returns the batch norm's statistics with the backward sums of channel c
// computed: Σ dL/dy and Σ dL/dy·x̂ over (N, H, W).
func (s *segment) bnSums(k, c int) *bnChannels {
	st := s.bn(k, c)
	if st.haveSums[c] {
		return st
	}
	st.haveSums[c] = true
	l := s.ls[k]
	hw := l.In.H * l.In.W
	for n := 0; n < s.n; n++ {
		gy, mask := s.goutSample(k, n)
		x := s.src(k, n)
		for p := 0; p < hw; p++ {
			i := c*hw + p
			var g, v float64
			switch {
			case gy == nil:
				g = s.gout(k, n, i)
			case mask == nil || mask[i] > 0:
				g = float64(gy[i])
			}
			if x != nil {
				v = float64(x[i])
			} else {
				v = s.in(k, n, i)
			}
			xh := (v - st.mean[c]) / st.sd[c]
			st.sg[c] += g
			st.sgx[c] += g * xh
			st.sg2[c] += g * g
			st.sgx2[c] += g * xh * g * xh
		}
	}
	return st
}

// gout returns dL/d(output of segment layer k) at value i of sample n: the model's
// gradient of B for the last layer, else the reference's back through the layers
// after k.
func (s *segment) gout(k, n, i int) float64 {
	if k == len(s.ls)-1 {
		return float64(s.gb[n*s.bSize+i])
	}
	return s.gin(k+1, n, i)
}

// gin returns dL/d(input of segment layer k) at value i of sample n.
func (s *segment) gin(k, n, i int) float64 {
	l := s.ls[k]
	switch l.Kind {
	case spec.Conv:
		return s.convGradAt(k, n, i)
	case spec.ReLU:
		// PyTorch's ReLU backward passes the gradient where the output is positive;
		// for the held B that is the model's own output.
		var out float64
		if k == len(s.ls)-1 {
			out = float64(s.b[n*s.bSize+i])
		} else {
			out = s.fwd(k, n, i)
		}
		if out > 0 {
			return s.gout(k, n, i)
		}
		return 0
	case spec.MaxPool:
		hw := l.In.H * l.In.W
		c, y, x := i/hw, i%hw/l.In.W, i%l.In.W
		g := 0.0
		for oy := max((y+l.PH-l.KH)/l.SH, 0); oy <= min((y+l.PH)/l.SH, l.Out.H-1); oy++ {
			if y < oy*l.SH-l.PH || y >= oy*l.SH-l.PH+l.KH {
				continue
			}
			for ox := max((x+l.PW-l.KW)/l.SW, 0); ox <= min((x+l.PW)/l.SW, l.Out.W-1); ox++ {
				if x < ox*l.SW-l.PW || x >= ox*l.SW-l.PW+l.KW {
					continue
				}
				j := (c*l.Out.H+oy)*l.Out.W + ox
				if _, at := s.maxPoolAt(k, n, j); at == i {
					g += s.gout(k, n, j)
				}
			}
		}
		return g
	case spec.AvgPool:
		hw := l.In.H * l.In.W
		c, y, x := i/hw, i%hw/l.In.W, i%l.In.W
		g := 0.0
		for oy := 0; oy < l.Out.H; oy++ {
			r0, r1 := AdaptiveWindow(oy, l.In.H, l.Out.H)
			if y < r0 || y >= r1 {
				continue
			}
			for ox := 0; ox < l.Out.W; ox++ {
				c0, c1 := AdaptiveWindow(ox, l.In.W, l.Out.W)
				if x < c0 || x >= c1 {
					continue
				}
				g += s.gout(k, n, (c*l.Out.H+oy)*l.Out.W+ox) / float64(r1-r0) / float64(c1-c0)
			}
		}
		return g
	case spec.LRN:
		// dL/da_j = g_j·D_j^−β − (2αβ/Size)·a_j·Σ_{c : j ∈ window(c)} g_c·a_c·D_c^(−β−1)
		hw := l.In.H * l.In.W
		j, p := i/hw, i%hw
		g := s.gout(k, n, i) / math.Pow(s.lrnDen(k, n, j, p), l.Beta)
		t := 0.0
		for c := max(j-(l.Size-1)/2, 0); c <= min(j+l.Size/2, l.In.C-1); c++ {
			t += s.gout(k, n, c*hw+p) * s.in(k, n, c*hw+p) * math.Pow(s.lrnDen(k, n, c, p), -l.Beta-1)
		}
		return g - 2*l.Alpha*l.Beta/float64(l.Size)*s.in(k, n, i)*t
	case spec.BatchNorm:
		c := i / (l.In.H * l.In.W)
		gamma := float64(s.weight[k][c])
		if !s.train {
			return s.gout(k, n, i) * gamma / s.bn(k, c).sd[c]
		}
		st := s.bnSums(k, c)
		m := float64(s.n * l.In.H * l.In.W)
		xh := (s.in(k, n, i) - st.mean[c]) / st.sd[c]
		return gamma / st.sd[c] * (s.gout(k, n, i) - st.sg[c]/m - xh*st.sgx[c]/m)
	case spec.Dropout:
		return s.gout(k, n, i) * s.dropFactor(k, n, i)
	case spec.Flatten:
		return s.gout(k, n, i)
	case spec.Linear:
		in, out := l.In.Size(), l.OutC
		w := s.weight[k]
		g := 0.0
		for o := 0; o < out; o++ {
			g += float64(w[o*in+i]) * s.gout(k, n, o)
		}
		return g
	}
	panic("verify: unknown layer kind " + l.Kind.String())
}

// convGradAt is the convolution's input gradient at one input value: the sum over the
// output channels of its group and the taps that read it.
func (s *segment) convGradAt(k, n, i int) float64 {
	l := s.ls[k]
	hw := l.In.H * l.In.W
	c, y, x := i/hw, i%hw/l.In.W, i%l.In.W
	cg, og := l.In.C/l.Groups, l.OutC/l.Groups
	g, cl := c/cg, c%cg
	// The taps (p, q) that read (y, x), with the output row and column that use them.
	var taps [][3]int
	for p := 0; p < l.KH; p++ {
		t := y + l.PH - p
		if t < 0 || t%l.SH != 0 || t/l.SH >= l.Out.H {
			continue
		}
		for q := 0; q < l.KW; q++ {
			u := x + l.PW - q
			if u < 0 || u%l.SW != 0 || u/l.SW >= l.Out.W {
				continue
			}
			taps = append(taps, [3]int{p*l.KW + q, t / l.SH * l.Out.W, u / l.SW})
		}
	}
	w := s.weight[k]
	ohw := l.Out.H * l.Out.W
	gy, mask := s.goutSample(k, n)
	v := 0.0
	for o := g * og; o < (g+1)*og; o++ {
		wo := w[(o*cg+cl)*l.KH*l.KW:][:l.KH*l.KW]
		for _, tp := range taps {
			j := o*ohw + tp[1] + tp[2]
			switch {
			case gy == nil:
				v += float64(wo[tp[0]]) * s.gout(k, n, j)
			case mask == nil || mask[j] > 0:
				v += float64(wo[tp[0]]) * float64(gy[j])
			}
		}
	}
	return v
}

// goutSample returns sample n of the model's dL/dB if that is the gradient of the
// output of segment layer k, directly or through B's ReLU (then mask is B, where the
// gradient passes if positive); else nil.
func (s *segment) goutSample(k, n int) (g, mask []float32) {
	last := len(s.ls) - 1
	switch {
	case k == last:
		return s.gb[n*s.bSize:][:s.bSize], nil
	case k == last-1 && s.ls[last].Kind == spec.ReLU:
		return s.gb[n*s.bSize:][:s.bSize], s.b[n*s.bSize:][:s.bSize]
	}
	return nil, nil
}

// Tolerance paths: Σ√K of the sums a segment does.

// forwardSum is √K of the sum that makes one output value of l (pathSum's terms).
func forwardSum(l *spec.Layer) float64 {
	switch l.Kind {
	case spec.Conv:
		return math.Sqrt(float64(l.In.C / l.Groups * l.KH * l.KW))
	case spec.Linear:
		return math.Sqrt(float64(l.In.Size()))
	case spec.LRN:
		return math.Sqrt(float64(l.Size))
	case spec.BatchNorm, spec.AvgPool:
		return 1
	}
	return 0
}

// backwardSum is √K of the sum that makes one input-gradient value of l.
func backwardSum(l *spec.Layer) float64 {
	ceil := func(a, b int) int { return (a + b - 1) / b }
	switch l.Kind {
	case spec.Conv:
		return math.Sqrt(float64(l.OutC / l.Groups * ceil(l.KH, l.SH) * ceil(l.KW, l.SW)))
	case spec.Linear:
		return math.Sqrt(float64(l.OutC))
	case spec.MaxPool:
		// Overlapping windows add their gradients.
		return math.Sqrt(float64(ceil(l.KH, l.SH) * ceil(l.KW, l.SW)))
	case spec.LRN:
		return math.Sqrt(float64(l.Size))
	case spec.BatchNorm, spec.AvgPool:
		return 1
	}
	return 0
}

// paramSum is √K of the sum that makes one gradient value of l's parameters: over the
// batch and, for convolution and batch norm, the positions.
func paramSum(l *spec.Layer, n int) float64 {
	switch l.Kind {
	case spec.Conv:
		return math.Sqrt(float64(n * l.Out.H * l.Out.W))
	case spec.BatchNorm:
		return math.Sqrt(float64(n * l.In.H * l.In.W))
	}
	return math.Sqrt(float64(n))
}

func (s *segment) paths() (fwd, bwd float64) {
	for _, l := range s.ls {
		fwd += forwardSum(l)
		bwd += backwardSum(l)
	}
	return fwd, bwd
}

// positions returns the flat indices (n·size + i) of the values of an n×shape tensor
// to compare: every value if there are at most s.samples, else s.samples distinct
// values drawn from a generator seeded by the run's seed and the tensor's name: every
// channel in turn (or, with more channels than samples, each sample in its own slice
// of them), cycling over the batch, and with borders half of them on the first or
// last row or column, where padding and partitioning have their edges.
func (s *layerRun) positions(name string, n int, sh spec.Shape, borders bool) []int {
	total := n * sh.Size()
	if total <= s.samples {
		idx := make([]int, total)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(s.seed, h.Sum64()))
	seen := map[int]bool{}
	idx := make([]int, 0, s.samples)
	off := rng.IntN(sh.C)
	for i := 0; len(idx) < s.samples; i++ {
		var j int
		if i < 4*s.samples {
			b := i % n
			c := (i + off) % sh.C
			if sh.C > s.samples {
				c = min(int((float64(i%s.samples)+rng.Float64())*float64(sh.C)/float64(s.samples)), sh.C-1)
			}
			y, x := rng.IntN(sh.H), rng.IntN(sh.W)
			switch {
			case !borders:
			case i%8 == 0:
				y = 0
			case i%8 == 1:
				y = sh.H - 1
			case i%8 == 2:
				x = 0
			case i%8 == 3:
				x = sh.W - 1
			}
			j = b*sh.Size() + (c*sh.H+y)*sh.W + x
		} else {
			j = rng.IntN(total)
		}
		if !seen[j] {
			seen[j] = true
			idx = append(idx, j)
		}
	}
	slices.Sort(idx)
	return idx
}

// compareForward compares B, and in training the running statistics of the segment's
// batch norms.
func (s *segment) compareForward(rep *Report, buffers []runtime.Param) {
	fwdPath, _ := s.paths()
	last := len(s.ls) - 1
	out := s.ls[last].Out
	name := s.ls[last].Name
	var pos []int
	if s.endsNet() {
		// The logits are compared in full: one pass over the last layer's weights.
		name = "logits"
		pos = make([]int, len(s.b))
		for i := range pos {
			pos[i] = i
		}
	} else {
		pos = s.positions(name, s.n, out, true)
	}
	got, want := make([]float32, len(pos)), make([]float64, len(pos))
	for j, p := range pos {
		got[j] = s.b[p]
		want[j] = s.fwd(last, p/out.Size(), p%out.Size())
	}
	rep.addSampled(name, got, want, len(s.b), fwdPath, 0)
	if !s.train {
		return
	}
	for k, l := range s.ls {
		if l.Kind != spec.BatchNorm {
			continue
		}
		m := float64(s.n * l.In.H * l.In.W)
		rm, rv := s.buffers[l.Name+".running_mean"], s.buffers[l.Name+".running_var"]
		wm, wv := make([]float64, l.In.C), make([]float64, l.In.C)
		for c := range wm {
			st := s.bn(k, c)
			wm[c] = (1-l.Momentum)*rm[c] + l.Momentum*st.mean[c]
			wv[c] = (1-l.Momentum)*rv[c] + l.Momentum*st.variance[c]*m/(m-1)
		}
		for _, b := range buffers {
			switch b.Name {
			case l.Name + ".running_mean":
				rep.add(b.Name, b.Value, wm, fwdPath)
			case l.Name + ".running_var":
				rep.add(b.Name, b.Value, wv, fwdPath)
			}
		}
	}
}

// endsNet reports whether the segment ends with the net's last layer (the logits).
func (s *segment) endsNet() bool {
	layers := s.sm.Layers
	return s.ls[len(s.ls)-1] == layers[len(layers)-1]
}

// compareBackward compares dL/dA and the gradients of the segment's parameters.
func (s *segment) compareBackward(rep *Report, pgrads map[string][]float32) {
	fwdPath, bwdPath := s.paths()
	path := fwdPath + bwdPath
	in := s.ls[0].In
	name := "grad " + s.from
	if s.from == "input" {
		name = "dx"
	}
	pos := s.positions(name, s.n, in, true)
	got, want := make([]float32, len(pos)), make([]float64, len(pos))
	for j, p := range pos {
		got[j] = s.ga[p]
		want[j] = s.gin(0, p/in.Size(), p%in.Size())
		if s.fromKind == spec.ReLU && !(s.a[p] > 0) {
			// Only the gradient that passes A's ReLU is compared (see CompareLayers).
			got[j], want[j] = 0, 0
		}
	}
	rep.addSampled(name, got, want, len(s.ga), path, 0)
	for k, l := range s.ls {
		ps := path + paramSum(l, s.n)
		switch l.Kind {
		case spec.Conv:
			s.convParamGrads(rep, pgrads, k, ps)
		case spec.Linear:
			s.linearParamGrads(rep, pgrads, k, ps)
		case spec.BatchNorm:
			C := l.In.C
			dg, db := make([]float64, C), make([]float64, C)
			var sg, sb float64
			for c := 0; c < C; c++ {
				st := s.bnSums(k, c)
				dg[c], db[c] = st.sgx[c], st.sg[c]
				sg += st.sgx2[c]
				sb += st.sg2[c]
			}
			rep.addSampled(l.Name+".weight grad", pgrads[l.Name+".weight"], dg, C, ps, math.Sqrt(sg))
			rep.addSampled(l.Name+".bias grad", pgrads[l.Name+".bias"], db, C, ps, math.Sqrt(sb))
		}
	}
}

// convParamGrads compares the bias gradient in full and the weight gradient at
// sampled elements, one output channel's gradient plane at a time.
func (s *segment) convParamGrads(rep *Report, pgrads map[string][]float32, k int, path float64) {
	l := s.ls[k]
	cg, og := l.In.C/l.Groups, l.OutC/l.Groups
	taps := cg * l.KH * l.KW
	wname := l.Name + ".weight"
	pos := s.positions(wname, 1, spec.Shape{C: l.OutC, H: 1, W: taps}, false)
	hw := l.Out.H * l.Out.W
	plane := make([]float64, s.n*hw)
	var db, dw []float64
	var sb, sw float64
	next := 0
	for o := 0; o < l.OutC; o++ {
		if !l.Bias && (next == len(pos) || pos[next]/taps != o) {
			continue
		}
		for n := 0; n < s.n; n++ {
			gy, mask := s.goutSample(k, n)
			for p := 0; p < hw; p++ {
				j := o*hw + p
				switch {
				case gy == nil:
					plane[n*hw+p] = s.gout(k, n, j)
				case mask == nil || mask[j] > 0:
					plane[n*hw+p] = float64(gy[j])
				default:
					plane[n*hw+p] = 0
				}
			}
		}
		if l.Bias {
			sum, sq := 0.0, 0.0
			for _, g := range plane {
				sum += g
				sq += g * g
			}
			db = append(db, sum)
			sb += sq
		}
		for ; next < len(pos) && pos[next]/taps == o; next++ {
			e := pos[next] % taps
			c, p, q := e/(l.KH*l.KW), e/l.KW%l.KH, e%l.KW
			ci := (o/og*cg + c) * l.In.H * l.In.W
			// The outputs whose tap (p, q) is inside the input.
			oy0, oy1 := ceilDiv(l.PH-p, l.SH), ceilDiv(l.In.H+l.PH-p, l.SH)
			ox0, ox1 := ceilDiv(l.PW-q, l.SW), ceilDiv(l.In.W+l.PW-q, l.SW)
			oy0, oy1, ox0, ox1 = max(oy0, 0), min(oy1, l.Out.H), max(ox0, 0), min(ox1, l.Out.W)
			sum, sq := 0.0, 0.0
			for n := 0; n < s.n; n++ {
				x := s.src(k, n)
				for oy := oy0; oy < oy1; oy++ {
					g := plane[n*hw+oy*l.Out.W:][:l.Out.W]
					row := ci + (oy*l.SH-l.PH+p)*l.In.W - l.PW + q
					for ox := ox0; ox < ox1; ox++ {
						var t float64
						if x != nil {
							t = g[ox] * float64(x[row+ox*l.SW])
						} else {
							t = g[ox] * s.in(k, n, row+ox*l.SW)
						}
						sum += t
						sq += t * t
					}
				}
			}
			dw = append(dw, sum)
			sw += sq
		}
	}
	rep.addSampled(wname+" grad", pick(pgrads[wname], pos), dw, l.OutC*taps, path, math.Sqrt(sw))
	if l.Bias {
		rep.addSampled(l.Name+".bias grad", pgrads[l.Name+".bias"], db, l.OutC, path, math.Sqrt(sb))
	}
}

// linearParamGrads compares the bias gradient in full and the weight gradient at
// sampled elements.
func (s *segment) linearParamGrads(rep *Report, pgrads map[string][]float32, k int, path float64) {
	l := s.ls[k]
	in := l.In.Size()
	wname := l.Name + ".weight"
	pos := s.positions(wname, 1, spec.Shape{C: l.OutC, H: 1, W: in}, false)
	dw := make([]float64, len(pos))
	var sw float64
	for j, e := range pos {
		o, i := e/in, e%in
		for n := 0; n < s.n; n++ {
			t := s.gout(k, n, o) * s.in(k, n, i)
			dw[j] += t
			sw += t * t
		}
	}
	rep.addSampled(wname+" grad", pick(pgrads[wname], pos), dw, l.OutC*in, path, math.Sqrt(sw))
	if !l.Bias {
		return
	}
	db := make([]float64, l.OutC)
	var sb float64
	for o := range db {
		for n := 0; n < s.n; n++ {
			g := s.gout(k, n, o)
			db[o] += g
			sb += g * g
		}
	}
	rep.addSampled(l.Name+".bias grad", pgrads[l.Name+".bias"], db, l.OutC, path, math.Sqrt(sb))
}

// ceilDiv is ⌈a/b⌉ for b > 0 and any a.
func ceilDiv(a, b int) int {
	if a <= 0 {
		return -(-a / b)
	}
	return (a + b - 1) / b
}

// pick returns v at the given indices (nil if v is too short, which the comparison
// reports as a length mismatch).
func pick(v []float32, idx []int) []float32 {
	out := make([]float32, len(idx))
	for j, i := range idx {
		if i >= len(v) {
			return nil
		}
		out[j] = v[i]
	}
	return out
}
