package verify

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/spec"
)

// tinyModel is a small net with every layer kind:
//
//	input 3×11×11
//	features: conv 8 k3 p1, lrn 5, relu, maxpool k3 s2 (→5×5), conv 8 k3 p1 g2 nobias,
//	          batchnorm, relu
//	avgpool 3 3 (from 5×5: overlapping windows)
//	flatten
//	classifier: dropout 0.5, linear 10, relu, linear 5
func tinyModel() *spec.Model {
	return handModel("tiny", 3, 11, 11).sec("features").
		conv(8, 3, 1, 1, 1, true).lrn(5, 0.3, 0.75, 1).relu().maxpool(3, 2, 0).
		conv(8, 3, 1, 1, 2, false).bn().relu().
		sec("").avgpool(3, 3).flatten().
		sec("classifier").dropout(0.5).linear(10, true).relu().linear(5, true).m
}

// tinyMasks returns dropout masks for every dropout layer of m for a batch of n.
func tinyMasks(r *rand.Rand, m *spec.Model, n int) map[string][]float64 {
	masks := map[string][]float64{}
	for _, l := range m.Layers {
		if l.Kind == spec.Dropout {
			masks[l.Name] = fdRandMask(r, n*l.In.Size(), 1-l.P)
		}
	}
	return masks
}

func copyBuffers(dst, src map[string][]float64) {
	for k, v := range src {
		copy(dst[k], v)
	}
}

func cloneMap(m map[string][]float64) map[string][]float64 {
	c := map[string][]float64{}
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return c
}

func TestTinyModelHasEveryKind(t *testing.T) {
	m := tinyModel()
	for k := spec.Conv; k <= spec.Linear; k++ {
		if !slices.ContainsFunc(m.Layers, func(l *spec.Layer) bool { return l.Kind == k }) {
			t.Errorf("tiny model has no %v layer", k)
		}
	}
	if err := NewNet(m).Validate(); err != nil {
		t.Fatal(err)
	}
}

// fdPerTensor is the number of elements per tensor that the whole-net checks perturb
// (all of them in smaller tensors), chosen at random, to keep the tests fast; the
// per-operator tests check every element.
const fdPerTensor = 120

// checkNetGrads checks, by central finite differences of L = Σ lw_i·logits_i, the
// gradient of the input, of every parameter and of every layer's output (up to
// fdPerTensor random elements of each). A layer output's gradient is checked by running
// the rest of the net (a model made of the following layers, sharing the parameters)
// from a perturbed copy of that output. Where that output reaches a max pool through
// layers that map 0 to 0 (relu, lrn, dropout, flatten), its exact zeros (from a ReLU)
// are left out: they tie with each other in the pool, and max is not differentiable at
// ties (the analytic gradient picks the first, the central difference averages the
// one-sided slopes). A parameter whose gradient is exactly zero (a conv bias before a
// train-mode batch norm) passes if the finite difference is zero too.
//
// Every loss evaluation first restores the batch-norm buffers to their state before the
// analytic forward, so in train mode the running statistics (which the train-mode loss
// does not read) are updated exactly once overall; the test checks that at the end.
func checkNetGrads(t *testing.T, r *rand.Rand, mode string, net *Net, x []float64, n int, train bool, masks map[string][]float64, lw []float64) {
	t.Helper()
	m := net.Model
	saved := cloneMap(net.Buffers)
	p, err := net.Forward(x, n, train, masks)
	if err != nil {
		t.Fatal(err)
	}
	updated := cloneMap(net.Buffers)
	g, err := p.Backward(lw)
	if err != nil {
		t.Fatal(err)
	}
	logitsOf := func(net *Net, in []float64) func() float64 {
		return func() float64 {
			copyBuffers(net.Buffers, saved)
			p, err := net.Forward(in, n, train, masks)
			if err != nil {
				t.Fatal(err)
			}
			return fdDot(lw, p.Logits)
		}
	}
	loss := logitsOf(net, x)

	op := "net " + mode
	xs := slices.Clone(x)
	checkFDAt(t, op, "input", xs, g.Input, logitsOf(net, xs), fdSample(r, len(xs), fdPerTensor))
	if len(g.Params) != len(m.Params()) {
		t.Errorf("Grads.Params has %d tensors, want %d", len(g.Params), len(m.Params()))
	}
	for _, pt := range m.Params() {
		v := net.Params[pt.Name]
		fdCheck(t, op, pt.Name, v, g.Params[pt.Name], loss, fdSample(r, len(v), fdPerTensor), true)
	}

	refCheckClose(t, "Grads.Out[last]", g.Out[m.Layers[len(m.Layers)-1].Name], lw)
	for i, l := range m.Layers[:len(m.Layers)-1] {
		rest := &Net{
			Model:   &spec.Model{Name: "rest", Input: l.Out, Layers: m.Layers[i+1:]},
			Params:  net.Params,
			Buffers: net.Buffers,
		}
		y := slices.Clone(p.Out[l.Name])
		// Does y reach a max pool through layers that map 0 to 0?
		tiesAtPool := false
	walk:
		for _, next := range m.Layers[i+1:] {
			switch next.Kind {
			case spec.ReLU, spec.LRN, spec.Dropout, spec.Flatten:
			case spec.MaxPool:
				tiesAtPool = true
				break walk
			default:
				break walk
			}
		}
		var idx []int
		for k, v := range y {
			if v != 0 || !tiesAtPool {
				idx = append(idx, k)
			}
		}
		if len(idx) > fdPerTensor {
			sub := fdSample(r, len(idx), fdPerTensor)
			for k, j := range sub {
				sub[k] = idx[j]
			}
			idx = sub
		}
		checkFDAt(t, op, "out "+l.Name+" ("+l.Kind.String()+")", y, g.Out[l.Name], logitsOf(rest, y), idx)
	}

	copyBuffers(net.Buffers, saved)
	if _, err := net.Forward(x, n, train, masks); err != nil {
		t.Fatal(err)
	}
	for name, v := range updated {
		if !slices.Equal(net.Buffers[name], v) {
			t.Errorf("%s: buffer %s after the FD check differs from one forward's update", mode, name)
		}
	}
	if !train {
		for name, v := range saved {
			if !slices.Equal(net.Buffers[name], v) {
				t.Errorf("eval forward changed buffer %s", name)
			}
		}
	}
}

// TestNetGradEval checks every gradient of the tiny net in eval mode.
func TestNetGradEval(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 1))
	m := tinyModel()
	net := NewNet(m)
	net.InitRandom(11)
	n := 2
	x := fdRandVec(r, n*m.Input.Size(), -1, 1)
	lw := fdRandVec(r, n*m.Classes(), -1, 1)
	checkNetGrads(t, r, "eval", net, x, n, false, nil, lw)
}

// TestNetGradTrain checks every gradient of the tiny net in train mode (batch norm
// through its batch statistics, dropout through its mask).
func TestNetGradTrain(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 1))
	m := tinyModel()
	net := NewNet(m)
	net.InitRandom(13)
	n := 2
	x := fdRandVec(r, n*m.Input.Size(), -1, 1)
	masks := tinyMasks(r, m, n)
	lw := fdRandVec(r, n*m.Classes(), -1, 1)
	checkNetGrads(t, r, "train", net, x, n, true, masks, lw)
}

// TestNetGradCrossEntropy checks the gradient of the softmax cross-entropy loss of the
// tiny net in train mode, for the input and every parameter.
func TestNetGradCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 1))
	m := tinyModel()
	net := NewNet(m)
	net.InitRandom(15)
	n := 3
	x := fdRandVec(r, n*m.Input.Size(), -1, 1)
	masks := tinyMasks(r, m, n)
	labels := []int{4, 0, 2}
	saved := cloneMap(net.Buffers)
	loss := func() float64 {
		copyBuffers(net.Buffers, saved)
		p, err := net.Forward(x, n, true, masks)
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := SoftmaxCrossEntropy(p.Logits, n, m.Classes(), labels)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	p, err := net.Forward(x, n, true, masks)
	if err != nil {
		t.Fatal(err)
	}
	_, dlogits, err := SoftmaxCrossEntropy(p.Logits, n, m.Classes(), labels)
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.Backward(dlogits)
	if err != nil {
		t.Fatal(err)
	}
	checkFDAt(t, "net CE", "input", x, g.Input, loss, fdSample(r, len(x), fdPerTensor))
	for _, pt := range m.Params() {
		v := net.Params[pt.Name]
		checkFDAt(t, "net CE", pt.Name, v, g.Params[pt.Name], loss, fdSample(r, len(v), fdPerTensor))
	}
}

// TestNetWiring runs a net whose every layer has different values for its H and W
// hyper-parameters and checks each layer's output against the operator applied with
// dimensions written out by hand, so a field mixed up between spec.Layer and the
// operators (KH for KW, PH for PW, ...) cannot go unnoticed. Both modes.
func TestNetWiring(t *testing.T) {
	b := handModel("wiring", 2, 9, 8).sec("features")
	b.add(spec.Layer{Kind: spec.Conv, OutC: 4, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 0, Groups: 2, Bias: true}) // 4×5×7
	b.add(spec.Layer{Kind: spec.LRN, Size: 3, Alpha: 0.4, Beta: 0.6, K: 1.5})
	b.add(spec.Layer{Kind: spec.MaxPool, KH: 2, KW: 3, SH: 1, SW: 2, PH: 1, PW: 1}) // 4×6×4
	b.add(spec.Layer{Kind: spec.BatchNorm, Eps: 0.01, Momentum: 0.3})
	b.relu()
	b.sec("").avgpool(4, 3).flatten().sec("classifier").dropout(0.25).linear(3, false)
	m := b.m
	if got := m.Layer("features.2").Out; got != (spec.Shape{C: 4, H: 6, W: 4}) {
		t.Fatalf("builder: maxpool output %v", got)
	}
	r := rand.New(rand.NewPCG(16, 1))
	n := 2
	x := fdRandVec(r, n*2*9*8, -1, 1)
	masks := tinyMasks(r, m, n)
	for _, train := range []bool{false, true} {
		net := NewNet(m)
		net.InitRandom(17)
		before := cloneMap(net.Buffers)
		p, err := net.Forward(x, n, train, masks)
		if err != nil {
			t.Fatal(err)
		}
		P := net.Params
		y := Conv2D{N: 2, C: 2, H: 9, W: 8, OutC: 4, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 0, Groups: 2}.
			Forward(x, P["features.0.weight"], P["features.0.bias"])
		refCheckClose(t, "conv", p.Out["features.0"], y)
		y = LocalResponseNorm{N: 2, C: 4, H: 5, W: 7, Size: 3, Alpha: 0.4, Beta: 0.6, K: 1.5}.Forward(y)
		refCheckClose(t, "lrn", p.Out["features.1"], y)
		y = MaxPool2D{N: 2, C: 4, H: 5, W: 7, KH: 2, KW: 3, SH: 1, SW: 2, PH: 1, PW: 1}.Forward(y)
		refCheckClose(t, "maxpool", p.Out["features.2"], y)
		bn := BatchNorm2D{N: 2, C: 4, H: 6, W: 4, Eps: 0.01, Momentum: 0.3}
		if train {
			var mean, variance []float64
			y, mean, variance = bn.Train(y, P["features.3.weight"], P["features.3.bias"])
			rm, rv := before["features.3.running_mean"], before["features.3.running_var"]
			bn.UpdateRunning(rm, rv, mean, variance)
			refCheckClose(t, "running_mean", net.Buffers["features.3.running_mean"], rm)
			refCheckClose(t, "running_var", net.Buffers["features.3.running_var"], rv)
		} else {
			y = bn.Eval(y, P["features.3.weight"], P["features.3.bias"], before["features.3.running_mean"], before["features.3.running_var"])
			refCheckClose(t, "running_mean", net.Buffers["features.3.running_mean"], before["features.3.running_mean"])
			refCheckClose(t, "running_var", net.Buffers["features.3.running_var"], before["features.3.running_var"])
		}
		refCheckClose(t, "batchnorm", p.Out["features.3"], y)
		y = ReLU(y)
		refCheckClose(t, "relu", p.Out["features.4"], y)
		y = AdaptiveAvgPool2D{N: 2, C: 4, H: 6, W: 4, OH: 4, OW: 3}.Forward(y)
		refCheckClose(t, "avgpool", p.Out["avgpool"], y)
		refCheckClose(t, "flatten", p.Out["flatten"], y)
		if train {
			y = Dropout{P: 0.25}.Forward(y, masks["classifier.0"])
		}
		refCheckClose(t, "dropout", p.Out["classifier.0"], y)
		y = Linear{N: 2, In: 48, Out: 3}.Forward(y, P["classifier.1.weight"], nil)
		refCheckClose(t, "linear", p.Out["classifier.1"], y)
		refCheckClose(t, "logits", p.Logits, y)
		if len(p.Out) != len(m.Layers) {
			t.Errorf("Pass.Out has %d entries, want %d", len(p.Out), len(m.Layers))
		}
	}
}

// TestNetDefaults checks NewNet's names, lengths and PyTorch's initial buffer values.
func TestNetDefaults(t *testing.T) {
	m := tinyModel()
	net := NewNet(m)
	if len(net.Params) != len(m.Params()) || len(net.Buffers) != len(m.Buffers()) {
		t.Fatalf("NewNet: %d params, %d buffers; want %d, %d", len(net.Params), len(net.Buffers), len(m.Params()), len(m.Buffers()))
	}
	for _, pt := range m.Params() {
		if v := net.Params[pt.Name]; len(v) != pt.Len() || slices.ContainsFunc(v, func(f float64) bool { return f != 0 }) {
			t.Errorf("param %s: %d values, want %d zeros", pt.Name, len(v), pt.Len())
		}
	}
	for _, bt := range m.Buffers() {
		want := 0.0
		if strings.HasSuffix(bt.Name, ".running_var") {
			want = 1
		}
		if v := net.Buffers[bt.Name]; len(v) != bt.Len() || slices.ContainsFunc(v, func(f float64) bool { return f != want }) {
			t.Errorf("buffer %s = %v, want %d × %v", bt.Name, v, bt.Len(), want)
		}
	}
}

// TestInitRandom checks that InitRandom is deterministic, depends on the seed, keeps
// batch-norm values in their documented ranges, and keeps activations O(1) through a
// VGG-19-shaped net (16 convolutions, narrow and on a 32×32 input to stay fast), with
// and without batch norm, in eval and in train mode.
func TestInitRandom(t *testing.T) {
	m := tinyModel()
	a, b, c := NewNet(m), NewNet(m), NewNet(m)
	a.InitRandom(1)
	b.InitRandom(1)
	c.InitRandom(2)
	for _, pt := range m.Params() {
		if !slices.Equal(a.Params[pt.Name], b.Params[pt.Name]) {
			t.Errorf("%s differs between two InitRandom(1)", pt.Name)
		}
		if slices.Equal(a.Params[pt.Name], c.Params[pt.Name]) {
			t.Errorf("%s is the same for seeds 1 and 2", pt.Name)
		}
	}
	in := func(v []float64, lo, hi float64) bool {
		return !slices.ContainsFunc(v, func(f float64) bool { return f < lo || f > hi })
	}
	if !in(a.Params["features.5.weight"], 0.8, 1.2) || !in(a.Params["features.5.bias"], -0.1, 0.1) ||
		!in(a.Buffers["features.5.running_mean"], -0.1, 0.1) || !in(a.Buffers["features.5.running_var"], 0.5, 1.5) {
		t.Errorf("batch norm values out of range: %v", a.Buffers)
	}
	bound := math.Sqrt(6.0 / 27)
	if w := a.Params["features.0.weight"]; !in(w, -bound, bound) || !slices.ContainsFunc(w, func(f float64) bool { return math.Abs(f) > bound/2 }) {
		t.Errorf("features.0.weight not spread over ±%.3f", bound)
	}

	for _, batchNorm := range []bool{false, true} {
		vgg := handModel("vgg19", 3, 32, 32).sec("features").
			vgg(batchNorm, 16, 16, 0, 32, 32, 0, 64, 64, 64, 64, 0, 96, 96, 96, 96, 0, 96, 96, 96, 96, 0).
			sec("").avgpool(7, 7).flatten().
			sec("classifier").linear(128, true).relu().dropout(0.5).linear(128, true).relu().dropout(0.5).linear(10, true).m
		r := rand.New(rand.NewPCG(18, 1))
		n := 2
		x := fdRandVec(r, n*3*32*32, -1.7, 1.7) // roughly unit variance, like normalized images
		masks := tinyMasks(r, vgg, n)
		for _, train := range []bool{false, true} {
			net := NewNet(vgg)
			net.InitRandom(19)
			p, err := net.Forward(x, n, train, masks)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range vgg.Layers {
				s := 0.0
				for _, v := range p.Out[l.Name] {
					s += v * v
				}
				if rms := math.Sqrt(s / float64(len(p.Out[l.Name]))); !(rms > 0.1 && rms < 10) {
					t.Errorf("batchnorm=%v train=%v: %s (%v) output RMS %.3g, want O(1)", batchNorm, train, l.Name, l.Kind, rms)
				}
			}
		}
	}
}

// TestNetBuffersAndState checks that train mode updates the running statistics exactly
// as BatchNorm2D.UpdateRunning on the layer's input, that eval mode leaves them alone,
// that a failing Forward leaves them alone, and that Backward reads the statistics that
// Forward used, not later buffer values.
func TestNetBuffersAndState(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 1))
	m := tinyModel()
	net := NewNet(m)
	net.InitRandom(21)
	n := 2
	x := fdRandVec(r, n*m.Input.Size(), -1, 1)
	masks := tinyMasks(r, m, n)

	// A failing train forward (missing dropout mask, after the batch norm) changes nothing.
	before := cloneMap(net.Buffers)
	if _, err := net.Forward(x, n, true, nil); err == nil || !strings.Contains(err.Error(), "classifier.0") {
		t.Fatalf("train forward without masks: err = %v, want one naming classifier.0", err)
	}
	for k, v := range before {
		if !slices.Equal(net.Buffers[k], v) {
			t.Errorf("failed forward changed %s", k)
		}
	}

	// Train forward: one update, from the batch norm input's statistics.
	p, err := net.Forward(x, n, true, masks)
	if err != nil {
		t.Fatal(err)
	}
	bn := BatchNorm2D{N: n, C: 8, H: 5, W: 5, Eps: 1e-5, Momentum: 0.1}
	mean, variance := bn.BatchStats(p.Out["features.4"])
	rm, rv := slices.Clone(before["features.5.running_mean"]), slices.Clone(before["features.5.running_var"])
	bn.UpdateRunning(rm, rv, mean, variance)
	refCheckClose(t, "running_mean", net.Buffers["features.5.running_mean"], rm)
	refCheckClose(t, "running_var", net.Buffers["features.5.running_var"], rv)

	// Eval forward: no change; Backward uses the statistics of its Forward even if the
	// buffers change in between; Backward twice gives the same.
	after := cloneMap(net.Buffers)
	pe, err := net.Forward(x, n, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range after {
		if !slices.Equal(net.Buffers[k], v) {
			t.Errorf("eval forward changed %s", k)
		}
	}
	lw := fdRandVec(r, n*m.Classes(), -1, 1)
	g1, err := pe.Backward(lw)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range net.Buffers {
		for i := range v {
			v[i] += 0.5
		}
	}
	g2, err := pe.Backward(lw)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g1.Input, g2.Input) || !slices.Equal(g1.Params["features.5.weight"], g2.Params["features.5.weight"]) {
		t.Error("Backward results differ after the buffers changed")
	}
	if !slices.Equal(g1.Out["flatten"], g1.Out["classifier.0"]) {
		t.Error("eval dropout is not the identity in backward")
	}
}

// TestNetErrors checks that bad inputs and malformed models give errors, never panics.
func TestNetErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 1))
	m := tinyModel()
	n := 2
	x := fdRandVec(r, n*m.Input.Size(), -1, 1)
	masks := tinyMasks(r, m, n)

	mutate := func(f func(m *spec.Model)) *spec.Model {
		c := *m
		c.Layers = nil
		for _, l := range m.Layers {
			lc := *l
			c.Layers = append(c.Layers, &lc)
		}
		f(&c)
		return &c
	}
	withMask := func(name string, v []float64) map[string][]float64 {
		c := cloneMap(masks)
		c[name] = v
		return c
	}
	good := NewNet(m)
	good.InitRandom(1)
	missingParam := good.Clone()
	delete(missingParam.Params, "classifier.1.bias")
	shortParam := good.Clone()
	shortParam.Params["features.0.weight"] = shortParam.Params["features.0.weight"][1:]
	missingBuffer := good.Clone()
	delete(missingBuffer.Buffers, "features.5.running_var")

	for _, c := range []struct {
		name  string
		net   *Net
		x     []float64
		n     int
		train bool
		masks map[string][]float64
		want  string
	}{
		{"short input", good, x[1:], n, false, nil, "input has"},
		{"n zero", good, nil, 0, false, nil, "batch size"},
		{"n mismatch", good, x, 3, false, nil, "input has"},
		{"missing mask", good, x, n, true, nil, "needs a mask"},
		{"short mask", good, x, n, true, withMask("classifier.0", make([]float64, 3)), "mask has"},
		{"bad mask value", good, x, n, true, withMask("classifier.0", slices.Repeat([]float64{0.5}, n*72)), "want 0 or 1"},
		{"missing param", missingParam, x, n, false, nil, "classifier.1.bias is missing"},
		{"short param", shortParam, x, n, false, nil, "features.0.weight has"},
		{"missing buffer", missingBuffer, x, n, false, nil, "features.5.running_var is missing"},
		{"nil model", &Net{}, x, n, false, nil, "nil model"},
		{"no layers", NewNet(&spec.Model{Name: "empty", Input: m.Input}), x, n, false, nil, "no layers"},
		{"unknown kind", NewNet(mutate(func(m *spec.Model) { m.Layers[2].Kind = 99 })), x, n, false, nil, "unknown layer kind"},
		{"zero kind", NewNet(mutate(func(m *spec.Model) { m.Layers[2].Kind = 0 })), x, n, false, nil, "unknown layer kind"},
		{"groups 0", NewNet(mutate(func(m *spec.Model) { m.Layers[4].Groups = 0 })), x, n, false, nil, "groups"},
		{"groups 3", NewNet(mutate(func(m *spec.Model) { m.Layers[4].Groups = 3 })), x, n, false, nil, "groups"},
		{"stride 0", NewNet(mutate(func(m *spec.Model) { m.Layers[3].SH = 0 })), x, n, false, nil, "stride"},
		{"pool padding", NewNet(mutate(func(m *spec.Model) { m.Layers[3].PH = 2 })), x, n, false, nil, "padding"},
		{"wrong out", NewNet(mutate(func(m *spec.Model) { m.Layers[0].Out.H = 10 })), x, n, false, nil, "output shape"},
		{"wrong in", NewNet(mutate(func(m *spec.Model) { m.Layers[1].In.C = 7 })), x, n, false, nil, "input shape"},
		{"wrong input", NewNet(mutate(func(m *spec.Model) { m.Input.C = 4 })), x, n, false, nil, "input shape"},
		{"nil layer", NewNet(mutate(func(m *spec.Model) { m.Layers[1] = nil })), x, n, false, nil, "nil"},
		{"duplicate name", NewNet(mutate(func(m *spec.Model) { m.Layers[1].Name = "features.0" })), x, n, false, nil, "two layers"},
		{"dropout p", NewNet(mutate(func(m *spec.Model) { m.Layers[9].P = 1.5 })), x, n, false, nil, "probability"},
		{"lrn size", NewNet(mutate(func(m *spec.Model) { m.Layers[1].Size = 0 })), x, n, false, nil, "size"},
		{"bn eps", NewNet(mutate(func(m *spec.Model) { m.Layers[5].Eps = -1 })), x, n, false, nil, "eps"},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panic: %v", c.name, p)
				}
			}()
			_, err := c.net.Forward(c.x, c.n, c.train, c.masks)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
			}
		}()
	}

	// Train-mode batch norm needs more than one value per channel: a 1×1 activation
	// with n = 1 is an error (as in PyTorch), n = 2 is fine.
	one := handModel("one", 2, 3, 3).conv(4, 3, 1, 0, 1, true).bn().flatten().linear(2, true).m
	net1 := NewNet(one)
	if _, err := net1.Forward(make([]float64, 18), 1, true, nil); err == nil || !strings.Contains(err.Error(), "more than 1 value") {
		t.Errorf("train batch norm on 1 value per channel: err = %v", err)
	}
	if _, err := net1.Forward(make([]float64, 18), 1, false, nil); err != nil {
		t.Errorf("eval batch norm on 1 value per channel: %v", err)
	}
	if _, err := net1.Forward(make([]float64, 36), 2, true, nil); err != nil {
		t.Errorf("train batch norm on 2 values per channel: %v", err)
	}

	// Backward errors.
	p, err := good.Forward(x, n, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Backward(make([]float64, 3)); err == nil || !strings.Contains(err.Error(), "dlogits") {
		t.Errorf("short dlogits: err = %v", err)
	}
	if _, err := (&Pass{}).Backward(nil); err == nil {
		t.Error("Backward on a zero Pass: no error")
	}
	if _, err := (*Pass)(nil).Backward(nil); err == nil {
		t.Error("Backward on a nil Pass: no error")
	}

	// Dropout with p = 0 needs no mask in train mode.
	p0 := mutate(func(m *spec.Model) { m.Layers[9].P = 0 })
	net0 := NewNet(p0)
	net0.InitRandom(1)
	if _, err := net0.Forward(x, n, true, nil); err != nil {
		t.Errorf("train dropout p=0 without mask: %v", err)
	}
}

// TestBuiltinSpecs checks that the interpreter accepts every spec shipped in spec/ (its
// shape checks agree with the parser's inference), and runs the gradient check on the
// built-in tiny net, which has every layer kind, in both modes.
func TestBuiltinSpecs(t *testing.T) {
	names := spec.Builtin()
	if len(names) == 0 {
		t.Fatal("no built-in specs")
	}
	for _, name := range names {
		m, err := spec.LoadBuiltin(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// checkModel, not NewNet: VGG's float64 weights would take a gigabyte.
		if err := checkModel(m); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	m, err := spec.LoadBuiltin("tiny")
	if err != nil {
		t.Skipf("no built-in tiny spec: %v", err)
	}
	for k := spec.Conv; k <= spec.Linear; k++ {
		if !slices.ContainsFunc(m.Layers, func(l *spec.Layer) bool { return l.Kind == k }) {
			t.Errorf("built-in tiny has no %v layer", k)
		}
	}
	r := rand.New(rand.NewPCG(23, 1))
	n := 2
	for _, train := range []bool{false, true} {
		net := NewNet(m)
		net.InitRandom(24)
		x := fdRandVec(r, n*m.Input.Size(), -1, 1)
		lw := fdRandVec(r, n*m.Classes(), -1, 1)
		mode := "builtin tiny eval"
		if train {
			mode = "builtin tiny train"
		}
		checkNetGrads(t, r, mode, net, x, n, train, tinyMasks(r, m, n), lw)
	}
}
