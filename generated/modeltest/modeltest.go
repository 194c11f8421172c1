// Package modeltest is the test suite every generated model package runs (from its
// generated model_gen_test.go): agreement with the float64 reference of package verify
// in evaluation and training mode, forward and backward, for the whole net (small nets)
// and layer by layer at sampled positions (every net); bit-identical results for any
// thread count; no allocation in Forward and Backward; input validation; and instances
// sharing weights across goroutines.
package modeltest

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cnngen/cnngen/gen"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
	"github.com/cnngen/cnngen/verify"
)

// Model is what a generated package offers beyond runtime.Model.
type Model interface {
	verify.MaskedModel
	Close()
}

// Factory makes instances of one generated model.
type Factory struct {
	Spec    string // the spec it was generated from: a .cnn path or a built-in name
	New     func(runtime.Config) (Model, error)
	NewFrom func(src Model, cfg runtime.Config) (Model, error)
}

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	sm, err := spec.Load(f.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if sm.MACs() > SmallMACs {
		t.Run("Errors", func(t *testing.T) { testErrors(t, f, sm, false) })
		t.Run("Layers", func(t *testing.T) { testLayers(t, f, sm) })
		t.Run("Threads", func(t *testing.T) { testThreads(t, f, sm, 1, []int{1, 2}) })
		t.Run("NoInputGrad", func(t *testing.T) { testNoInputGrad(t, f, sm) })
		t.Run("FastSmoke", func(t *testing.T) { testFastSmoke(t, f, sm) })
		t.Run("AllocsForward", func(t *testing.T) { testAllocsForward(t, f, sm) })
		return
	}
	t.Run("Reference", func(t *testing.T) { testReference(t, f, sm) })
	t.Run("Layers", func(t *testing.T) { testLayers(t, f, sm) })
	t.Run("LayersDetect", func(t *testing.T) { testLayersDetect(t, f, sm) })
	t.Run("Threads", func(t *testing.T) { testThreads(t, f, sm, 3, []int{1, 2, 3}) })
	t.Run("ISAs", func(t *testing.T) { testISAs(t, f, sm) })
	t.Run("NoInputGrad", func(t *testing.T) { testNoInputGrad(t, f, sm) })
	t.Run("Fast", func(t *testing.T) { testFast(t, f, sm) })
	t.Run("Allocs", func(t *testing.T) { testAllocs(t, f, sm) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, f, sm, true) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f, sm) })
}

// SmallMACs is the size up to which a net gets the whole suite, with the whole-net
// float64 reference: beyond it (AlexNet, VGG) the float64 reference of every layer at
// every position takes minutes, so larger nets are checked layer by layer at sampled
// positions instead (verify.CompareLayers), which small nets get as well.
const SmallMACs = 50_000_000

// inspector returns m as a verify.Inspector: a training instance reports its layers.
func inspector(t *testing.T, m Model) verify.Inspector {
	t.Helper()
	in, ok := m.(verify.Inspector)
	if !ok {
		t.Fatalf("%s does not report its layers (Layers, Activation, Gradient): it is not a verify.Inspector", m.Name())
	}
	return in
}

// testLayers checks a training instance layer by layer (verify.CompareLayers) at batch
// 1 and 2, in evaluation and training mode, forward and backward, and an inference
// instance's logits against the training instance's in evaluation mode. For a small
// net each check is repeated with the whole-net verify.Compare on the same weights and
// batch, and the two must agree.
func testLayers(t *testing.T, f Factory, sm *spec.Model) {
	if sm.MACs() > SmallMACs {
		// A big net's instance, its gradients and the reference's copy of its weights
		// take gigabytes: collect the previous check's tensors before the heap doubles.
		defer debug.SetGCPercent(debug.SetGCPercent(25))
	}
	tr := newModel(t, f, runtime.Config{MaxBatch: 2, Threads: 2, Training: true, Seed: 7})
	in := inspector(t, tr)
	for _, n := range []int{1, 2} {
		for _, train := range []bool{false, true} {
			if train && !trainBatchOK(sm, n) {
				continue
			}
			opt := verify.LayerOptions{Batch: n, Train: train, Seed: uint64(40 + 2*n), Backward: true}
			if train {
				opt.Seed++
			}
			rep, err := verify.CompareLayers(in, sm, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep)
			if sm.MACs() > SmallMACs {
				continue
			}
			whole, err := verify.Compare(tr, sm, verify.Options{Batch: n, Train: train, Seed: opt.Seed, Backward: true})
			if err != nil {
				t.Fatal(err)
			}
			if whole.Pass != rep.Pass {
				var b strings.Builder
				whole.Write(&b)
				t.Errorf("verify.Compare (pass %v) and verify.CompareLayers (pass %v) disagree:\n%s", whole.Pass, rep.Pass, b.String())
			}
		}
	}
	// The inference program folds batch norm into the convolutions: close to the
	// training program in evaluation mode, not bit-identical.
	inf, err := f.NewFrom(tr, runtime.Config{MaxBatch: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer inf.Close()
	rep, err := verify.CompareInference(inf, in, sm, verify.LayerOptions{Batch: 2, Seed: 50})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
}

// corrupted is an instance that misreports one value: an element of one layer's
// Activation or Gradient, or an element of one parameter, changed in every Sync before
// the model derives what it computes with, while the reference keeps the value loaded.
type corrupted struct {
	verify.Inspector
	act, grad string // the layer whose output or gradient is misreported
	param     string // the parameter changed after Sync
	index     int
	delta     float32
	seen      []float32 // grad's layer's output, to misreport where its ReLU passes
}

func (c *corrupted) Activation(layer string) ([]float32, bool) {
	v, ok := c.Inspector.Activation(layer)
	if ok && layer == c.act {
		v[c.index%len(v)] += c.delta
	}
	if ok && layer == c.grad {
		c.seen = slices.Clone(v)
	}
	return v, ok
}

func (c *corrupted) Gradient(layer string) ([]float32, bool) {
	v, ok := c.Inspector.Gradient(layer)
	if ok && layer == c.grad {
		i := c.index % len(v)
		for j := range v {
			// A gradient that a ReLU stops is not compared: misreport one it passes.
			if k := (i + j) % len(v); k < len(c.seen) && c.seen[k] > 0 {
				i = k
				break
			}
		}
		v[i] += c.delta
	}
	return v, ok
}

func (c *corrupted) Sync() error {
	for _, p := range c.Params() {
		if p.Name == c.param {
			p.Value[c.index%len(p.Value)] += c.delta
		}
	}
	return c.Inspector.Sync()
}

// testLayersDetect shows that verify.CompareLayers fails, naming the culprit, when a
// training instance misreports one value of one held layer's output or gradient
// (every position compared, so the single value is among them), or computes with one
// wrong weight in a convolution or linear layer (sampled positions, but in every
// channel, so in the one output channel that weight feeds).
func testLayersDetect(t *testing.T, f Factory, sm *spec.Model) {
	tr := newModel(t, f, runtime.Config{MaxBatch: 2, Threads: 2, Training: true, Seed: 7})
	in := inspector(t, tr)
	names := in.Layers()
	expect := func(c *corrupted, opt verify.LayerOptions, want string) {
		t.Helper()
		rep, err := verify.CompareLayers(c, sm, opt)
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, m := range rep.Metrics {
			if !m.Pass {
				failed = append(failed, m.Name)
			}
		}
		if !slices.Contains(failed, want) {
			var b strings.Builder
			rep.Write(&b)
			t.Errorf("%+v: want %q among the failures, got %q\n%s", *c, want, failed, b.String())
		}
	}
	every := 1 << 30
	for i, name := range names[1 : len(names)-1] {
		c := &corrupted{Inspector: in, act: name, index: 7919 * i, delta: 1}
		expect(c, verify.LayerOptions{Batch: 1, Seed: 60, Samples: every}, name)
		c = &corrupted{Inspector: in, grad: name, index: 7919 * i, delta: 1}
		expect(c, verify.LayerOptions{Batch: 1, Train: trainBatchOK(sm, 1), Seed: 61, Samples: every, Backward: true}, "grad "+name)
	}
	// A wrong weight shows at the held layer that ends its segment, in the output
	// channel it belongs to: enough positions that every channel has some.
	opt := verify.LayerOptions{Batch: 2, Seed: 62, Samples: 1024}
	rep, err := verify.CompareLayers(in, sm, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	live := map[string]int{}
	for _, l := range sm.Layers {
		if l.Kind == spec.Conv || l.Kind == spec.Linear {
			live[l.Name] = liveWeight(in, sm, l)
		}
	}
	at := map[string]int{}
	for i, l := range sm.Layers {
		at[l.Name] = i
	}
	held := 1
	for i, l := range sm.Layers {
		for at[names[held]] < i {
			held++
		}
		if l.Kind != spec.Conv && l.Kind != spec.Linear {
			continue
		}
		want := names[held]
		if held == len(names)-1 {
			want = "logits"
		}
		fanin := l.In.Size()
		if l.Kind == spec.Conv {
			fanin = l.In.C / l.Groups * l.KH * l.KW
		}
		c := &corrupted{Inspector: in, param: l.Name + ".weight", index: live[l.Name], delta: float32(100 * math.Sqrt(6/float64(fanin)))}
		expect(c, opt, want)
	}
}

// liveWeight returns the index of the weight of l's output 0 from its largest input
// in the last Forward (for a convolution: the centre tap of the input channel of
// group 0 with the largest values), so that a change to that weight shows. The
// layer before l must be held.
func liveWeight(in verify.Inspector, sm *spec.Model, l *spec.Layer) int {
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

// checkReport fails t if rep does, and logs it in verbose mode.
func checkReport(t *testing.T, rep *verify.Report) {
	t.Helper()
	var b strings.Builder
	rep.Write(&b)
	if err := rep.Err(); err != nil {
		t.Errorf("%v\n%s", err, b.String())
	} else if testing.Verbose() {
		t.Log("\n" + b.String())
	}
}

func newModel(t *testing.T, f Factory, cfg runtime.Config) Model {
	t.Helper()
	m, err := f.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// trainBatchOK reports whether batch norm can use batch statistics at batch n (PyTorch
// refuses a single value per channel).
func trainBatchOK(sm *spec.Model, n int) bool {
	for _, l := range sm.Layers {
		if l.Kind == spec.BatchNorm && n*l.In.H*l.In.W < 2 {
			return false
		}
	}
	return true
}

func testReference(t *testing.T, f Factory, sm *spec.Model) {
	for _, n := range []int{1, 3} {
		// An inference instance (batch norm folded) in evaluation mode.
		inf := newModel(t, f, runtime.Config{MaxBatch: 4, Threads: 2})
		check(t, inf, sm, verify.Options{Batch: n, Seed: uint64(10 + n)})
		// A training instance, evaluation then training mode, with gradients.
		tr := newModel(t, f, runtime.Config{MaxBatch: 4, Threads: 2, Training: true, Seed: 7})
		check(t, tr, sm, verify.Options{Batch: n, Seed: uint64(20 + n), Backward: true})
		if trainBatchOK(sm, n) {
			check(t, tr, sm, verify.Options{Batch: n, Seed: uint64(30 + n), Backward: true, Train: true})
		}
	}
}

func check(t *testing.T, m Model, sm *spec.Model, opt verify.Options) {
	t.Helper()
	rep, err := verify.Compare(m, sm, opt)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
}

// randomize gives m deterministic weights and running statistics.
func randomize(t *testing.T, m runtime.Model, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		fan := 1
		for _, d := range p.Shape[1:] {
			fan *= d
		}
		s := math.Sqrt(6 / float64(fan))
		for i := range p.Value {
			p.Value[i] = float32((rng.Float64()*2 - 1) * s)
		}
	}
	for _, b := range m.Buffers() {
		for i := range b.Value {
			if strings.HasSuffix(b.Name, "running_var") {
				b.Value[i] = float32(0.5 + rng.Float64())
			} else {
				b.Value[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
}

func input(sm *spec.Model, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, n*sm.Input.Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func hash(h interface{ Write([]byte) (int, error) }, vs []float32) {
	var buf [4]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		h.Write(buf[:])
	}
}

// step runs a training step's forward and backward and hashes logits, dx (unless
// the instance was made with NoInputGrad), every gradient and the running
// statistics.
func step(t *testing.T, m Model, sm *spec.Model, n int, train bool) [32]byte {
	t.Helper()
	m.SetTraining(train)
	m.ZeroGrad()
	logits, err := m.Forward(input(sm, n, 5), n)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	hash(h, logits)
	dl := make([]float32, len(logits))
	for i := range dl {
		dl[i] = float32(i%7) - 3
	}
	dx, err := m.Backward(dl)
	if err != nil {
		t.Fatal(err)
	}
	if dx != nil {
		hash(h, dx)
	}
	for _, p := range m.Params() {
		hash(h, p.Grad)
	}
	for _, b := range m.Buffers() {
		hash(h, b.Value)
	}
	return [32]byte(h.Sum(nil))
}

// Exact mode never splits a sum across threads: every thread count gives the same bits.
func testThreads(t *testing.T, f Factory, sm *spec.Model, n int, counts []int) {
	train := trainBatchOK(sm, n)
	var want [32]byte
	for i, threads := range counts {
		m := newModel(t, f, runtime.Config{MaxBatch: n, Threads: threads, Training: true, Seed: 99})
		randomize(t, m, 3)
		got := step(t, m, sm, n, train)
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("threads=%d: logits, gradients or running statistics differ from threads=1", threads)
		}
	}
}

// NoInputGrad skips dL/dx and nothing else: Backward returns nil for it, and the
// logits, gradients and running statistics are the bits of a full Backward.
func testNoInputGrad(t *testing.T, f Factory, sm *spec.Model) {
	train := trainBatchOK(sm, 1)
	hashes := [2][32]byte{}
	for i, skip := range []bool{false, true} {
		m := newModel(t, f, runtime.Config{Threads: 2, Training: true, Seed: 99, NoInputGrad: skip})
		randomize(t, m, 3)
		m.SetTraining(train)
		m.ZeroGrad()
		if _, err := m.Forward(input(sm, 1, 5), 1); err != nil {
			t.Fatal(err)
		}
		dl := make([]float32, sm.Classes())
		for j := range dl {
			dl[j] = float32(j%7) - 3
		}
		dx, err := m.Backward(dl)
		if err != nil {
			t.Fatal(err)
		}
		if (dx == nil) != skip {
			t.Fatalf("NoInputGrad=%v: Backward returned dL/dx %v", skip, dx != nil)
		}
		h := sha256.New()
		for _, p := range m.Params() {
			hash(h, p.Grad)
		}
		for _, b := range m.Buffers() {
			hash(h, b.Value)
		}
		hashes[i] = [32]byte(h.Sum(nil))
	}
	if hashes[0] != hashes[1] {
		t.Error("NoInputGrad changed the parameters' gradients or the running statistics")
	}
}

// Fast mode's logits lie within the bound verify.FastBound derives from its methods
// (gen.Fast: Winograd F(4×4, 3×3), bfloat16 weights for the in-place linear layers) around
// the float64 reference, and that bound is tight enough to catch a broken layer
// (verify.CompareFast; also against the reference on the bfloat16 weights, within
// the bound of the rounding errors alone). The test logs how far inside the bound fast
// and exact mode stay, and the top-1 agreement of fast and exact mode on 256 random inputs.
func testFast(t *testing.T, f Factory, sm *spec.Model) {
	const n = 64
	fast := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Mode: runtime.Fast})
	exact := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2})
	var ratio [2]float64
	for i, m := range []Model{fast, exact} {
		rep, err := verify.CompareFast(m, sm, verify.Options{Batch: 4, Seed: 21}, gen.Fast)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			checkReport(t, rep)
		}
		ratio[i] = rep.Metrics[0].Rel
		if i == 0 {
			t.Logf("bound ≤ %.3g of the largest logit; error/rounding bound (bf16 weights applied) %.3g",
				rep.Metrics[1].Rel, rep.Metrics[2].Rel)
		}
	}
	// Both instances now hold CompareFast's weights.
	agree, c := 0, sm.Classes()
	for k := uint64(0); k < 4; k++ {
		x := input(sm, n, 100+k)
		got, err := fast.Forward(x, n)
		if err != nil {
			t.Fatal(err)
		}
		got = slices.Clone(got)
		want, err := exact.Forward(x, n)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < n; s++ {
			if argmax(got[s*c:(s+1)*c]) == argmax(want[s*c:(s+1)*c]) {
				agree++
			}
		}
	}
	t.Logf("error/bound: fast %.3g, exact %.3g; top-1 agreement of fast and exact mode %d/%d", ratio[0], ratio[1], agree, 4*n)
}

// FastSmoke runs a big net's fast mode once against its exact mode: the float64
// bound of Fast costs about a minute per net (`cnn verify -mode fast` runs it), ten
// minutes over the big nets, so this only checks that every fast path is wired (a
// wrong weight layout or transform moves logits by their own size), not the size
// of the error.
func testFastSmoke(t *testing.T, f Factory, sm *spec.Model) {
	fast := newModel(t, f, runtime.Config{Threads: 2, Mode: runtime.Fast})
	exact := newModel(t, f, runtime.Config{Threads: 2})
	randomize(t, fast, 21)
	randomize(t, exact, 21)
	x := input(sm, 1, 8)
	got, err := fast.Forward(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := exact.Forward(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	scale, worst := 0.0, 0.0
	for i := range want {
		scale = max(scale, math.Abs(float64(want[i])))
		worst = max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if !(worst <= 0.01*scale) {
		t.Errorf("fast logits differ from exact by %.3g, logits up to %.3g", worst, scale)
	}
	t.Logf("fast − exact ≤ %.3g, logits up to %.3g", worst, scale)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// testAllocsForward is testAllocs's inference half for a big net, one call per
// mode after a warm-up: at batch 2 its linear layers run with several samples
// per kernel call, in input chunks in fast mode (the paths that need buffers).
func testAllocsForward(t *testing.T, f Factory, sm *spec.Model) {
	const n = 2
	x := input(sm, n, 6)
	for _, mode := range []runtime.Mode{runtime.Exact, runtime.Fast} {
		m := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Mode: mode})
		if a := testing.AllocsPerRun(1, func() { goruntime.GC(); goruntime.GC(); m.Forward(x, n) }); a != 0 {
			t.Errorf("%v Forward allocates %v times per call", mode, a)
		}
	}
}

func testAllocs(t *testing.T, f Factory, sm *spec.Model) {
	n := 2
	inf := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2})
	randomize(t, inf, 4)
	x := input(sm, n, 6)
	// Every call starts after two garbage collections, which empty every
	// sync.Pool: a kernel that kept its buffers in one would allocate again.
	gc := func() { goruntime.GC(); goruntime.GC() }
	if a := testing.AllocsPerRun(5, func() { gc(); inf.Forward(x, n) }); a != 0 {
		t.Errorf("inference Forward allocates %v times per call", a)
	}
	fast := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Mode: runtime.Fast})
	randomize(t, fast, 4)
	if a := testing.AllocsPerRun(5, func() { gc(); fast.Forward(x, n) }); a != 0 {
		t.Errorf("fast-mode Forward allocates %v times per call", a)
	}
	tr := newModel(t, f, runtime.Config{MaxBatch: n, Threads: 2, Training: true})
	randomize(t, tr, 4)
	tr.SetTraining(trainBatchOK(sm, n))
	dl := make([]float32, n*sm.Classes())
	a := testing.AllocsPerRun(5, func() {
		gc()
		if _, err := tr.Forward(x, n); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Backward(dl); err != nil {
			t.Fatal(err)
		}
	})
	if a != 0 {
		t.Errorf("training Forward+Backward allocates %v times per step", a)
	}
}

// testErrors checks argument validation; with forward it also runs one Forward to
// check Backward's length check.
func testErrors(t *testing.T, f Factory, sm *spec.Model, forward bool) {
	m := newModel(t, f, runtime.Config{MaxBatch: 2})
	size := sm.Input.Size()
	for _, c := range []struct {
		n, len int
		want   string
	}{
		{0, 0, "batch 0 out of range"},
		{3, 3 * size, "batch 3 out of range [1, 2]"},
		{1, size - 1, "input has"},
		{2, size, "input has"},
	} {
		if _, err := m.Forward(make([]float32, c.len), c.n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Forward(len %d, n %d): error %v, want %q", c.len, c.n, err, c.want)
		}
	}
	if _, err := m.Backward(make([]float32, sm.Classes())); err == nil {
		t.Error("Backward on an inference instance: no error")
	}
	m.SetTraining(true)
	if _, err := m.Forward(make([]float32, size), 1); err == nil {
		t.Error("training-mode Forward on an inference instance: no error")
	}
	tr := newModel(t, f, runtime.Config{MaxBatch: 2, Training: true})
	if _, err := tr.Backward(make([]float32, sm.Classes())); err == nil {
		t.Error("Backward before Forward: no error")
	}
	if !forward {
		return
	}
	if _, err := tr.Forward(make([]float32, size), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Backward(make([]float32, sm.Classes()+1)); err == nil || !strings.Contains(err.Error(), "dlogits has") {
		t.Errorf("Backward with a wrong length: error %v", err)
	}
	for _, cfg := range []runtime.Config{{MaxBatch: -1}, {Threads: -2}, {Mode: runtime.Mode(7)}, {Mode: runtime.Fast, Training: true}} {
		if m, err := f.New(cfg); err == nil {
			m.Close()
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// Eight instances sharing one model's weights run training steps in parallel; each must
// give exactly what one instance alone gives, and the weights must be held once.
func testConcurrent(t *testing.T, f Factory, sm *spec.Model) {
	n := 2
	train := trainBatchOK(sm, n)
	src := newModel(t, f, runtime.Config{MaxBatch: n, Training: true, Seed: 1})
	randomize(t, src, 8)
	one, err := f.NewFrom(src, runtime.Config{MaxBatch: n, Training: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	want := step(t, one, sm, n, train)
	var wg sync.WaitGroup
	got := make([][32]byte, 8)
	insts := make([]Model, 8)
	for i := range insts {
		insts[i], err = f.NewFrom(src, runtime.Config{MaxBatch: n, Training: true, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer insts[i].Close()
		if &insts[i].Params()[0].Value[0] != &src.Params()[0].Value[0] {
			t.Fatal("NewFrom copied the weights instead of sharing them")
		}
	}
	for i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = step(t, insts[i], sm, n, train)
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g != want {
			t.Errorf("instance %d: result differs from a single instance's", i)
		}
	}
}
