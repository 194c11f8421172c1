package verify

// TestTorch holds the interpreter (Net) to PyTorch. testdata/torch/make.py builds small
// nets with torch.nn in float64 and records, for each net in eval and in train mode,
// every module's output, the loss, and every gradient (input, module outputs,
// parameters), plus batch norm's running statistics after the forward pass; each net
// comes with its spec (<name>.cnn). See testdata/torch/README.md for the JSON schema.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/spec"
)

const torchDir = "testdata/torch"

// Both sides compute in float64, so they agree to about 1e-15 relative; summation order
// is all that differs. A tensor passes when
//
//	‖got − want‖₂ ≤ torchRelTol·‖want‖₂ + torchAbsTol·√len   and
//	max|got − want| ≤ torchRelTol·max|want| + torchAbsTol.
//
// The absolute floor exists for gradients that are zero in exact arithmetic and
// rounding noise (~1e-17) in both computations, such as the bias of a conv followed by
// a batch norm in training mode.
const (
	torchRelTol = 1e-10
	torchAbsTol = 1e-13
)

type torchTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

type torchMode struct {
	Input        torchTensor            `json:"input"`
	Labels       []int                  `json:"labels"`
	Masks        map[string][]float64   `json:"masks"`
	State        map[string]torchTensor `json:"state"`
	Order        []string               `json:"order"`
	Outputs      map[string]torchTensor `json:"outputs"`
	Logits       torchTensor            `json:"logits"`
	Loss         *float64               `json:"loss"`
	GradInput    torchTensor            `json:"grad_input"`
	GradOutputs  map[string]torchTensor `json:"grad_outputs"`
	GradParams   map[string]torchTensor `json:"grad_params"`
	BuffersAfter map[string]torchTensor `json:"buffers_after"`
}

type torchFile struct {
	Name         string                `json:"name"`
	Spec         string                `json:"spec"`
	TorchVersion string                `json:"torch_version"`
	Batch        int                   `json:"batch"`
	Modes        map[string]*torchMode `json:"modes"`
}

func TestTorch(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(torchDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no PyTorch reference files (*.json) in %s; regenerate them with verify/testdata/torch/make.py", torchDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) { testTorchFile(t, file) })
	}
}

func testTorchFile(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f torchFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if f.Spec == "" || f.Batch < 1 {
		t.Fatalf("%s: missing spec or batch", file)
	}
	specPath := filepath.Join(torchDir, f.Spec)
	src, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spec.Parse(specPath, src)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if m.Name != f.Name {
		t.Errorf("spec names the net %q, the JSON %q", m.Name, f.Name)
	}
	for _, mode := range []string{"eval", "train"} {
		md := f.Modes[mode]
		if md == nil {
			t.Errorf("%s: no %q mode", file, mode)
			continue
		}
		t.Run(mode, func(t *testing.T) {
			c := &torchCheck{t: t, prefix: fmt.Sprintf("%s/%s", f.Name, mode)}
			c.run(m, f.Batch, md, mode == "train")
			t.Logf("torch %s: %d tensors compared; the worst used %.2g of its error bound (%s)",
				f.TorchVersion, c.count, c.worst, c.worstName)
		})
	}
}

// torchCheck compares one mode of one net and keeps, for the log, the largest fraction
// of its error bound that a tensor used.
type torchCheck struct {
	t         *testing.T
	prefix    string
	count     int
	worst     float64
	worstName string
}

func (c *torchCheck) run(m *spec.Model, n int, md *torchMode, train bool) {
	t := c.t

	// The input and the layer names and shapes.
	in := m.Input
	if want := []int{n, in.C, in.H, in.W}; !slices.Equal(md.Input.Shape, want) {
		t.Fatalf("%s: input shape %v, spec wants %v", c.prefix, md.Input.Shape, want)
	}
	if len(md.Labels) != n {
		t.Fatalf("%s: %d labels for batch %d", c.prefix, len(md.Labels), n)
	}
	var layerNames []string
	for _, l := range m.Layers {
		layerNames = append(layerNames, l.Name)
		tt, ok := md.Outputs[l.Name]
		if !ok {
			t.Errorf("%s: spec layer %s (%s) has no PyTorch module output", c.prefix, l.Name, l.Kind)
			continue
		}
		// A module's output in PyTorch is [n, C, H, W] or [n, F]. A dropout or relu the
		// spec places before its implied flatten may be flat in PyTorch; the values are
		// the same, so only the element count must then agree.
		if got, want := shapeLen(tt.Shape), n*l.Out.Size(); got != want {
			t.Errorf("%s: %s: PyTorch output shape %v has %d values, spec shape %v gives %d",
				c.prefix, l.Name, tt.Shape, got, l.Out, want)
		} else if len(tt.Shape) == 4 && (l.Out.Flat || !slices.Equal(tt.Shape, []int{n, l.Out.C, l.Out.H, l.Out.W})) {
			t.Errorf("%s: %s: PyTorch output shape %v, spec shape %v", c.prefix, l.Name, tt.Shape, l.Out)
		}
	}
	for name := range md.Outputs {
		if m.Layer(name) == nil {
			t.Errorf("%s: PyTorch module %s is not a layer of the spec (layers %v)", c.prefix, name, layerNames)
		}
	}
	// The state_dict keys are the spec's names, with the same shapes.
	specState := map[string][]int{}
	for _, p := range m.Params() {
		specState[p.Name] = p.Shape
	}
	for _, b := range m.Buffers() {
		specState[b.Name] = b.Shape
	}
	for _, key := range sortedKeys(md.State) {
		if strings.HasSuffix(key, ".num_batches_tracked") {
			continue
		}
		shape, ok := specState[key]
		if !ok {
			t.Errorf("%s: state_dict key %s is not a parameter or buffer of the spec", c.prefix, key)
			continue
		}
		if got := md.State[key].Shape; !slices.Equal(got, shape) {
			t.Errorf("%s: state_dict %s has shape %v, spec %v", c.prefix, key, got, shape)
		}
	}
	for _, key := range sortedKeys(specState) {
		if _, ok := md.State[key]; !ok {
			t.Errorf("%s: spec tensor %s %v is not in the state_dict", c.prefix, key, specState[key])
		}
	}
	if len(md.GradParams) != len(m.Params()) {
		t.Errorf("%s: %d parameter gradients for %d spec parameters", c.prefix, len(md.GradParams), len(m.Params()))
	}
	if t.Failed() {
		t.FailNow()
	}

	// The spec runs its layers in the order PyTorch runs the modules. (The implied
	// flatten is where this can differ: torchvision flattens between avgpool and
	// classifier, before a classifier's leading dropout.)
	if !slices.Equal(layerNames, md.Order) {
		t.Errorf("%s: the spec runs its layers in the order\n\t%v\nPyTorch runs its modules in the order\n\t%v",
			c.prefix, layerNames, md.Order)
	}

	// Load the state.
	net := NewNet(m)
	if net.Params == nil {
		net.Params = map[string][]float64{}
	}
	if net.Buffers == nil {
		net.Buffers = map[string][]float64{}
	}
	for _, p := range m.Params() {
		net.Params[p.Name] = slices.Clone(md.State[p.Name].Data)
	}
	for _, b := range m.Buffers() {
		net.Buffers[b.Name] = slices.Clone(md.State[b.Name].Data)
	}
	var masks map[string][]float64
	if train {
		masks = md.Masks
		for name := range masks {
			if l := m.Layer(name); l == nil || l.Kind != spec.Dropout {
				t.Errorf("%s: mask for %s, which is not a dropout layer of the spec", c.prefix, name)
			}
		}
	} else if len(md.Masks) != 0 {
		t.Errorf("%s: eval mode carries dropout masks", c.prefix)
	}

	// Forward.
	pass, err := net.Forward(slices.Clone(md.Input.Data), n, train, masks)
	if err != nil {
		t.Fatalf("%s: forward: %v", c.prefix, err)
	}
	for _, l := range m.Layers {
		got, ok := pass.Out[l.Name]
		if !ok {
			t.Errorf("%s: forward pass has no output for %s", c.prefix, l.Name)
			continue
		}
		c.compare("output "+l.Name, got, md.Outputs[l.Name])
	}
	c.compare("logits", pass.Logits, md.Logits)

	// Loss.
	if md.Loss == nil {
		t.Fatalf("%s: no loss", c.prefix)
	}
	loss, dlogits, err := SoftmaxCrossEntropy(pass.Logits, n, m.Classes(), md.Labels)
	if err != nil {
		t.Fatalf("%s: loss: %v", c.prefix, err)
	}
	c.compare("loss", []float64{loss}, torchTensor{Shape: []int{}, Data: []float64{*md.Loss}})

	// Backward.
	g, err := pass.Backward(dlogits)
	if err != nil {
		t.Fatalf("%s: backward: %v", c.prefix, err)
	}
	c.compare("grad_input", g.Input, md.GradInput)
	for _, l := range m.Layers {
		want, ok := md.GradOutputs[l.Name]
		if !ok {
			t.Errorf("%s: no PyTorch gradient for the output of %s", c.prefix, l.Name)
			continue
		}
		got, ok := g.Out[l.Name]
		if !ok {
			t.Errorf("%s: backward pass has no gradient for the output of %s", c.prefix, l.Name)
			continue
		}
		c.compare("grad_output "+l.Name, got, want)
	}
	for _, p := range m.Params() {
		want, ok := md.GradParams[p.Name]
		if !ok {
			t.Errorf("%s: no PyTorch gradient for %s", c.prefix, p.Name)
			continue
		}
		got, ok := g.Params[p.Name]
		if !ok {
			t.Errorf("%s: backward pass has no gradient for %s", c.prefix, p.Name)
			continue
		}
		c.compare("grad_param "+p.Name, got, want)
	}

	// Running statistics after the forward pass (unchanged in eval).
	if len(md.BuffersAfter) != len(m.Buffers()) {
		t.Errorf("%s: %d buffers after the pass in the JSON, %d in the spec", c.prefix, len(md.BuffersAfter), len(m.Buffers()))
	}
	for _, b := range m.Buffers() {
		want, ok := md.BuffersAfter[b.Name]
		if !ok {
			t.Errorf("%s: no PyTorch value of %s after the pass", c.prefix, b.Name)
			continue
		}
		c.compare("buffer_after "+b.Name, net.Buffers[b.Name], want)
	}
}

// compare checks got against PyTorch's want and reports the worst element.
func (c *torchCheck) compare(what string, got []float64, want torchTensor) {
	t := c.t
	t.Helper()
	c.count++
	if nw := shapeLen(want.Shape); nw != len(want.Data) {
		t.Errorf("%s: %s: PyTorch shape %v but %d values", c.prefix, what, want.Shape, len(want.Data))
		return
	}
	if len(got) != len(want.Data) {
		t.Errorf("%s: %s: got %d values, PyTorch has %d (shape %v)", c.prefix, what, len(got), len(want.Data), want.Shape)
		return
	}
	var diff2, ref2, maxDiff, maxRef float64
	worst, nonFinite := -1, -1
	for i, w := range want.Data {
		d := math.Abs(got[i] - w)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			if nonFinite < 0 {
				nonFinite = i
			}
			continue
		}
		diff2 += d * d
		ref2 += w * w
		if d > maxDiff || worst < 0 {
			maxDiff, worst = d, i
		}
		maxRef = math.Max(maxRef, math.Abs(w))
	}
	if nonFinite >= 0 {
		t.Errorf("%s: %s: non-finite value at %v: got %v, PyTorch %v",
			c.prefix, what, unravel(nonFinite, want.Shape), got[nonFinite], want.Data[nonFinite])
		return
	}
	if len(got) == 0 {
		return
	}
	diff, ref := math.Sqrt(diff2), math.Sqrt(ref2)
	rel := diff
	if ref > 0 {
		rel = diff / ref
	}
	normBound := torchRelTol*ref + torchAbsTol*math.Sqrt(float64(len(got)))
	maxBound := torchRelTol*maxRef + torchAbsTol
	if used := math.Max(diff/normBound, maxDiff/maxBound); used > c.worst || c.worstName == "" {
		c.worst, c.worstName = used, what
	}
	if !(diff <= normBound) || !(maxDiff <= maxBound) {
		t.Errorf("%s: %s %v: normwise relative error %.3g (‖want‖₂ %.3g), max abs error %.3g (max|want| %.3g) at %v: got %.17g, PyTorch %.17g",
			c.prefix, what, want.Shape, rel, ref, maxDiff, maxRef, unravel(worst, want.Shape), got[worst], want.Data[worst])
	}
}

func shapeLen(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// unravel turns a flat row-major index into a multi-index of shape.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] > 0 {
			idx[k] = i % shape[k]
			i /= shape[k]
		}
	}
	return idx
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
