package verify

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
)

// refModel is an Inspector computed by the reference interpreter itself, each held
// output, gradient and parameter gradient rounded to float32: a stand-in for a
// generated training instance that shares no code with CompareLayers' point
// evaluation, so that these tests do not depend on the generator.
type refModel struct {
	sm          *spec.Model
	net         *Net
	held        []string
	maskReLU    bool // report a ReLU's gradient masked by its output, as the generated models do
	params      []runtime.Param
	buffers     []runtime.Param
	train       bool
	rng         *rand.Rand
	n           int
	x           []float32
	pass        *Pass
	masks       map[string][]float64
	grads       *Grads
	dlogits, dx []float32
}

func newRefModel(sm *spec.Model, held []string) *refModel {
	m := &refModel{sm: sm, net: NewNet(sm), held: held, rng: rand.New(rand.NewPCG(5, 6))}
	for _, t := range sm.Params() {
		m.params = append(m.params, runtime.Param{Name: t.Name, Shape: t.Shape, Value: make([]float32, t.Len()), Grad: make([]float32, t.Len())})
	}
	for _, t := range sm.Buffers() {
		m.buffers = append(m.buffers, runtime.Param{Name: t.Name, Shape: t.Shape, Value: make([]float32, t.Len())})
	}
	return m
}

// fusedHeld holds what the generator holds: every layer but one a ReLU follows
// (the ReLU's output is held instead).
func fusedHeld(sm *spec.Model) []string {
	held := []string{"input"}
	for i, l := range sm.Layers {
		if i+1 < len(sm.Layers) && sm.Layers[i+1].Kind == spec.ReLU {
			continue
		}
		held = append(held, l.Name)
	}
	return held
}

func allHeld(sm *spec.Model) []string {
	held := []string{"input"}
	for _, l := range sm.Layers {
		held = append(held, l.Name)
	}
	return held
}

func (m *refModel) Name() string { return m.sm.Name }
func (m *refModel) InputShape() [3]int {
	return [3]int{m.sm.Input.C, m.sm.Input.H, m.sm.Input.W}
}
func (m *refModel) Classes() int                  { return m.sm.Classes() }
func (m *refModel) Params() []runtime.Param       { return m.params }
func (m *refModel) Buffers() []runtime.Param      { return m.buffers }
func (m *refModel) SetTraining(on bool)           { m.train = on }
func (m *refModel) Layers() []string              { return m.held }
func (m *refModel) DropoutMasks() []runtime.Param { return m.dropoutMasks() }

func (m *refModel) ZeroGrad() {
	for _, p := range m.params {
		clear(p.Grad)
	}
}

func (m *refModel) Sync() error {
	for _, p := range m.params {
		m.net.Params[p.Name] = widen(p.Value)
	}
	for _, b := range m.buffers {
		m.net.Buffers[b.Name] = widen(b.Value)
	}
	return nil
}

func (m *refModel) Forward(x []float32, n int) ([]float32, error) {
	m.masks = map[string][]float64{}
	for _, l := range m.sm.Layers {
		if l.Kind == spec.Dropout {
			m.masks[l.Name] = fdRandMask(m.rng, n*l.In.Size(), 1-l.P)
		}
	}
	pass, err := m.net.Forward(widen(x), n, m.train, m.masks)
	if err != nil {
		return nil, err
	}
	m.n, m.x, m.pass, m.grads = n, slices.Clone(x), pass, nil
	for _, b := range m.buffers {
		for i, v := range m.net.Buffers[b.Name] {
			b.Value[i] = float32(v)
		}
	}
	return narrow(pass.Logits), nil
}

func (m *refModel) Backward(dlogits []float32) ([]float32, error) {
	if m.pass == nil {
		return nil, errors.New("refModel: Backward before Forward")
	}
	g, err := m.pass.Backward(widen(dlogits))
	if err != nil {
		return nil, err
	}
	m.grads, m.dlogits, m.dx = g, slices.Clone(dlogits), narrow(g.Input)
	for _, p := range m.params {
		for i, v := range g.Params[p.Name] {
			p.Grad[i] += float32(v)
		}
	}
	return m.dx, nil
}

func (m *refModel) dropoutMasks() []runtime.Param {
	var ps []runtime.Param
	for _, l := range m.sm.Layers {
		if mask, ok := m.masks[l.Name]; ok {
			v := make([]float32, len(mask))
			for i, k := range mask {
				v[i] = float32(k / (1 - l.P))
			}
			ps = append(ps, runtime.Param{Name: l.Name, Shape: []int{m.n, l.In.Size()}, Value: v})
		}
	}
	return ps
}

func (m *refModel) Activation(layer string) ([]float32, bool) {
	if m.pass == nil || !slices.Contains(m.held, layer) {
		return nil, false
	}
	if layer == "input" {
		return slices.Clone(m.x), true
	}
	return narrow(m.pass.Out[layer]), true
}

func (m *refModel) Gradient(layer string) ([]float32, bool) {
	if m.grads == nil || !slices.Contains(m.held, layer) {
		return nil, false
	}
	if layer == "input" {
		return slices.Clone(m.dx), true
	}
	g := narrow(m.grads.Out[layer])
	if m.maskReLU && m.sm.Layer(layer).Kind == spec.ReLU {
		for i, v := range m.pass.Out[layer] {
			if !(v > 0) {
				g[i] = 0
			}
		}
	}
	return g, true
}

// geomModel has the geometry the shipped nets lack: non-square input and kernels,
// different strides and paddings per axis, a padded max pool, an even LRN, an
// adaptive pool that enlarges one axis, a linear layer without bias and dropout with
// P = 0.
func geomModel() *spec.Model {
	return handModel("geom", 4, 13, 10).sec("features").
		add(spec.Layer{Kind: spec.Conv, OutC: 6, KH: 3, KW: 5, SH: 2, SW: 1, PH: 1, PW: 2, Groups: 2, Bias: true}).
		relu().
		add(spec.Layer{Kind: spec.MaxPool, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1}).
		lrn(4, 0.2, 0.6, 1.5).
		add(spec.Layer{Kind: spec.Conv, OutC: 5, KH: 2, KW: 3, SH: 1, SW: 2, PH: 0, PW: 1, Groups: 1, Bias: false}).
		bn().relu().
		sec("").avgpool(4, 3).flatten().
		sec("classifier").dropout(0).linear(9, false).relu().dropout(0.3).linear(4, true).m
}

func reportString(r *Report) string {
	var b strings.Builder
	r.Write(&b)
	return b.String()
}

// Every position compared: the point evaluations must agree with the reference
// operators (through refModel) for every layer kind, held one by one and fused, in
// both modes, forward and backward.
func TestCompareLayersMatchesOperators(t *testing.T) {
	for _, sm := range []*spec.Model{tinyModel(), geomModel()} {
		for _, fused := range []bool{false, true} {
			for _, train := range []bool{false, true} {
				for _, n := range []int{1, 3} {
					held := allHeld(sm)
					if fused {
						held = fusedHeld(sm)
					}
					m := newRefModel(sm, held)
					m.maskReLU = fused
					opt := LayerOptions{Batch: n, Train: train, Seed: uint64(n), Samples: 1 << 30, Backward: true}
					rep, err := CompareLayers(m, sm, opt)
					if err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%s fused=%v train=%v n=%d", sm.Name, fused, train, n)
					if !rep.Pass {
						t.Errorf("%s: %v\n%s", name, rep.Err(), reportString(rep))
						continue
					}
					// refModel rounds once per held layer: far below the tolerances.
					for _, mt := range rep.Metrics {
						if mt.Rel > 1e-6 {
							t.Errorf("%s: %s: relative error %.3g, want rounding level\n%s", name, mt.Name, mt.Rel, reportString(rep))
						}
						if mt.Of != 0 {
							t.Errorf("%s: %s: %d of %d values compared, want all", name, mt.Name, mt.Len, mt.Of)
						}
					}
					want := 2*(len(held)-1) + len(sm.Params()) + 1 // and "parameters as loaded"
					if train {
						want += len(sm.Buffers())
					}
					if len(rep.Metrics) != want {
						t.Errorf("%s: %d metrics, want %d", name, len(rep.Metrics), want)
					}
				}
			}
		}
	}
}

// CompareLayers and Compare agree on a passing model at the default sampling.
func TestCompareLayersAgreesWithCompare(t *testing.T) {
	sm := tinyModel()
	m := newRefModel(sm, fusedHeld(sm))
	m.maskReLU = true
	for _, train := range []bool{false, true} {
		rep, err := CompareLayers(m, sm, LayerOptions{Train: train, Seed: 9, Backward: true})
		if err != nil {
			t.Fatal(err)
		}
		whole, err := Compare(m, sm, Options{Train: train, Seed: 9, Backward: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pass || !whole.Pass {
			t.Errorf("train=%v: CompareLayers pass %v, Compare pass %v\n%s\n%s", train, rep.Pass, whole.Pass, reportString(rep), reportString(whole))
		}
		if rep.Samples != DefaultSamples || !strings.Contains(reportString(rep), "64 positions per tensor") {
			t.Errorf("report does not say how many positions it sampled:\n%s", reportString(rep))
		}
	}
}

// misreport wraps an Inspector and changes one value of what it reports or computes
// with.
type misreport struct {
	Inspector
	act, grad string // a layer whose output or gradient is misreported
	param     string // a parameter changed after every Sync (the model computes with it)
	index     int
	delta     float32
	seen      []float32
}

func (c *misreport) Activation(layer string) ([]float32, bool) {
	v, ok := c.Inspector.Activation(layer)
	if ok && layer == c.act {
		v[c.index%len(v)] += c.delta
	}
	if ok && layer == c.grad {
		c.seen = slices.Clone(v)
	}
	return v, ok
}

func (c *misreport) Gradient(layer string) ([]float32, bool) {
	v, ok := c.Inspector.Gradient(layer)
	if ok && layer == c.grad {
		i := c.index % len(v)
		for j := range v {
			if k := (i + j) % len(v); k < len(c.seen) && c.seen[k] > 0 {
				i = k // a gradient a ReLU passes
				break
			}
		}
		v[i] += c.delta
	}
	return v, ok
}

func (c *misreport) Sync() error {
	for _, p := range c.Params() {
		if p.Name == c.param {
			p.Value[c.index%len(p.Value)] += c.delta
		}
	}
	return c.Inspector.Sync()
}

func failures(r *Report) []string {
	var names []string
	for _, m := range r.Metrics {
		if !m.Pass {
			names = append(names, m.Name)
		}
	}
	return names
}

// One wrong value anywhere makes CompareLayers fail, naming the tensor.
func TestCompareLayersDetects(t *testing.T) {
	sm := tinyModel()
	held := fusedHeld(sm)
	expect := func(c *misreport, opt LayerOptions, want string) {
		t.Helper()
		rep, err := CompareLayers(c, sm, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := failures(rep); !slices.Contains(got, want) {
			t.Errorf("%+v: failures %q, want %q among them\n%s", *c, got, want, reportString(rep))
		}
		if err := rep.Err(); err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("Err() = %v, want it to name %q", err, want)
		}
	}
	every := 1 << 30
	for i, name := range held[1 : len(held)-1] {
		m := newRefModel(sm, held)
		expect(&misreport{Inspector: m, act: name, index: 31 * i, delta: 0.5}, LayerOptions{Seed: 3, Samples: every}, name)
		expect(&misreport{Inspector: m, grad: name, index: 31 * i, delta: 0.5}, LayerOptions{Seed: 3, Samples: every, Backward: true, Train: true}, "grad "+name)
	}
	// A wrong weight, at the default sampling: it shows at the held layer ending its
	// segment (the logits for the last layer).
	at := map[string]int{}
	for i, l := range sm.Layers {
		at[l.Name] = i
	}
	h := 1
	for i, l := range sm.Layers {
		for at[held[h]] < i {
			h++
		}
		if l.Kind != spec.Conv && l.Kind != spec.Linear {
			continue
		}
		want := held[h]
		if h == len(held)-1 {
			want = "logits"
		}
		m := newRefModel(sm, held)
		if rep, err := CompareLayers(m, sm, LayerOptions{Seed: 5}); err != nil || !rep.Pass {
			t.Fatalf("unchanged: %v %v", err, rep)
		}
		expect(&misreport{Inspector: m, param: l.Name + ".weight", index: liveWeight(m, sm, l), delta: 10}, LayerOptions{Seed: 5}, want)
	}
}

// liveWeight returns the index of the weight of l's output 0 from its largest input
// in the last Forward (for a convolution: the centre tap of the input channel of
// group 0 with the largest values), so that a change to that weight shows.
func liveWeight(in Inspector, sm *spec.Model, l *spec.Layer) int {
	src := "input"
	if i := slices.Index(sm.Layers, l); i > 0 {
		src = sm.Layers[i-1].Name
	}
	a, _ := in.Activation(src)
	size := l.In.Size()
	group := size // the inputs of group 0
	if l.Kind == spec.Conv {
		group = l.In.C / l.Groups * l.In.H * l.In.W
	}
	best, at := -1.0, 0
	for j := 0; j < group && len(a) > 0; j++ {
		v := 0.0
		for n := 0; n < len(a)/size; n++ {
			v += math.Abs(float64(a[n*size+j]))
		}
		if v > best {
			best, at = v, j
		}
	}
	if l.Kind == spec.Conv {
		return at/(l.In.H*l.In.W)*l.KH*l.KW + (l.KH/2)*l.KW + l.KW/2
	}
	return at
}

// paramGradModel misreports one parameter gradient value.
type paramGradModel struct {
	*refModel
	param string
	index int
}

func (m *paramGradModel) Backward(dl []float32) ([]float32, error) {
	dx, err := m.refModel.Backward(dl)
	for _, p := range m.params {
		if p.Name == m.param {
			p.Grad[m.index%len(p.Grad)] += 0.5
		}
	}
	return dx, err
}

func TestCompareLayersDetectsParamGrad(t *testing.T) {
	sm := tinyModel()
	for i, p := range sm.Params() {
		m := &paramGradModel{refModel: newRefModel(sm, fusedHeld(sm)), param: p.Name, index: 13 * i}
		rep, err := CompareLayers(m, sm, LayerOptions{Seed: 6, Samples: 1 << 30, Backward: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := failures(rep); !slices.Equal(got, []string{p.Name + " grad"}) {
			t.Errorf("%s: failures %q, want just %q\n%s", p.Name, got, p.Name+" grad", reportString(rep))
		}
	}
}

func TestCompareInference(t *testing.T) {
	sm := tinyModel()
	tr := newRefModel(sm, fusedHeld(sm))
	inf := newRefModel(sm, fusedHeld(sm))
	rep, err := CompareInference(inf, tr, sm, LayerOptions{Batch: 3, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || len(rep.Metrics) != 1 || rep.Metrics[0].Len != 3*sm.Classes() {
		t.Errorf("same model: %v\n%s", rep.Err(), reportString(rep))
	}
	bad := &misreport{Inspector: inf, param: "features.4.weight", delta: 1}
	rep, err = CompareInference(bad, tr, sm, LayerOptions{Batch: 3, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass {
		t.Errorf("a wrong weight in the inference instance passes:\n%s", reportString(rep))
	}
}

// The sampled positions are distinct, reproducible, spread over the channels and the
// batch, and half of them on the borders.
func TestPositions(t *testing.T) {
	sh := spec.Shape{C: 40, H: 9, W: 7}
	r := &layerRun{samples: 64, seed: 1}
	pos := r.positions("x", 3, sh, true)
	if len(pos) != 64 || !slices.IsSorted(pos) || len(slices.Compact(slices.Clone(pos))) != 64 {
		t.Fatalf("positions %v: want 64 sorted distinct", pos)
	}
	if !slices.Equal(pos, r.positions("x", 3, sh, true)) {
		t.Error("positions are not reproducible")
	}
	if slices.Equal(pos, r.positions("y", 3, sh, true)) {
		t.Error("two tensors get the same positions")
	}
	channels, samples := map[int]bool{}, map[int]bool{}
	border := 0
	for _, p := range pos {
		if p < 0 || p >= 3*sh.Size() {
			t.Fatalf("position %d out of range", p)
		}
		n, i := p/sh.Size(), p%sh.Size()
		c, y, x := i/(sh.H*sh.W), i/sh.W%sh.H, i%sh.W
		samples[n], channels[c] = true, true
		if y == 0 || y == sh.H-1 || x == 0 || x == sh.W-1 {
			border++
		}
	}
	if len(channels) != sh.C || len(samples) != 3 || border < 32 {
		t.Errorf("%d of %d channels, %d of 3 samples, %d of 64 on a border", len(channels), sh.C, len(samples), border)
	}
	if all := r.positions("z", 2, spec.Shape{C: 4, H: 2, W: 4}, true); len(all) != 64 {
		t.Errorf("a tensor of 64 values: %d positions, want all", len(all))
	}
	if few := r.positions("z", 1, spec.Shape{C: 65, H: 1, W: 1}, true); len(few) != 64 {
		t.Errorf("65 values: %d positions, want 64", len(few))
	}
	// With more channels than samples, one sample in each slice of the channels.
	slice := map[int]bool{}
	for _, p := range r.positions("w", 2, spec.Shape{C: 640, H: 3, W: 3}, false) {
		slice[p%(640*9)/9/10] = true
	}
	if len(slice) != 64 {
		t.Errorf("640 channels: samples in %d of 64 slices of 10 channels", len(slice))
	}
}

// held lists that do not fit the spec are errors, not panics.
func TestCompareLayersErrors(t *testing.T) {
	sm := tinyModel()
	fused := fusedHeld(sm)
	for _, c := range []struct {
		held  []string
		train bool
		want  string
	}{
		{fused[1:], false, `want "input"`},
		{[]string{"input"}, false, `want "input"`},
		{append(slices.Clone(fused[:len(fused)-1]), "nope"), false, "not a layer"},
		{[]string{"input", "features.1", "features.0", fused[len(fused)-1]}, false, "out of net order"},
		{fused[:len(fused)-1], false, "not the net's last layer"},
		{slices.DeleteFunc(slices.Clone(fused), func(s string) bool { return s == "features.4" }), true, "needs its input held"},
	} {
		m := newRefModel(sm, c.held)
		_, err := CompareLayers(m, sm, LayerOptions{Train: c.train})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("held %q: error %v, want %q", c.held, err, c.want)
		}
	}
	// Without the fused list's BN input the same list is fine in evaluation mode.
	m := newRefModel(sm, slices.DeleteFunc(slices.Clone(fused), func(s string) bool { return s == "features.4" }))
	if rep, err := CompareLayers(m, sm, LayerOptions{Backward: true}); err != nil || !rep.Pass {
		t.Errorf("batch norm after a fused segment in evaluation: %v %v", err, rep)
	}
	other := handModel("other", 3, 11, 11).sec("classifier").flatten().linear(5, true).m
	if _, err := CompareLayers(newRefModel(sm, fused), other, LayerOptions{}); err == nil {
		t.Error("a model of another spec: no error")
	}
	if _, err := CompareLayers(newRefModel(sm, fused), sm, LayerOptions{Batch: -1}); err == nil {
		t.Error("batch -1: no error")
	}
}

// randomWeights and load load exactly what Compare loads (Net.InitRandom, then loadInto).
func TestLoadRandomMatchesInitRandom(t *testing.T) {
	models := []*spec.Model{tinyModel(), geomModel()}
	for _, name := range []string{"tiny", "vgg_mnist"} {
		m, err := spec.LoadBuiltin(name)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	for _, sm := range models {
		for _, seed := range []uint64{0, 7} {
			net := NewNet(sm)
			net.InitRandom(seed)
			want := newRefModel(sm, nil)
			if err := loadInto(want, net); err != nil {
				t.Fatal(err)
			}
			got := newRefModel(sm, nil)
			params, bufs := randomWeights(sm, seed)
			if err := load(got, sm, params, bufs); err != nil {
				t.Fatal(err)
			}
			for i, p := range got.params {
				if !bitsEqual(p.Value, want.params[i].Value) {
					t.Errorf("%s seed %d: %s differs from InitRandom's", sm.Name, seed, p.Name)
				}
			}
			for i, b := range got.buffers {
				if !bitsEqual(b.Value, want.buffers[i].Value) || !slices.Equal(bufs[b.Name], net.Buffers[b.Name]) {
					t.Errorf("%s seed %d: %s differs from InitRandom's", sm.Name, seed, b.Name)
				}
			}
			if !slices.Equal(got.net.Params["features.0.weight"], net.Params["features.0.weight"]) {
				t.Errorf("%s seed %d: Sync did not see the loaded weights", sm.Name, seed)
			}
		}
	}
	// Wrong parameter lists are errors.
	sm := tinyModel()
	m := newRefModel(sm, nil)
	m.params = m.params[1:]
	params, bufs := randomWeights(sm, 1)
	if err := load(m, sm, params, bufs); err == nil {
		t.Error("a missing parameter: no error")
	}
	m = newRefModel(sm, nil)
	m.buffers[0].Value = m.buffers[0].Value[1:]
	if err := load(m, sm, params, bufs); err == nil || !strings.Contains(err.Error(), "running_mean") {
		t.Errorf("a short buffer: error %v", err)
	}
}

// A model that changes its own weights in Forward is an error.
type scribbler struct{ *refModel }

func (m scribbler) Forward(x []float32, n int) ([]float32, error) {
	m.params[0].Value[0]++
	return m.refModel.Forward(x, n)
}

func TestCompareLayersParamsUnchanged(t *testing.T) {
	sm := tinyModel()
	rep, err := CompareLayers(scribbler{newRefModel(sm, fusedHeld(sm))}, sm, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "parameters as loaded (features.0.weight changed)"
	if got := failures(rep); !slices.Contains(got, want) {
		t.Errorf("failures %q, want %q among them", got, want)
	}
}
