package spec

import (
	"errors"
	"strings"
	"testing"
)

// The counts torchvision reports: sum(p.numel() for p in model.parameters()) and
// the multiply-accumulates of convolutions and linear layers, bias excluded.
var torchvisionCounts = []struct {
	name   string
	params int
	macs   int64
}{
	{"alexnet", 61100840, 714188480},
	{"alexnet2012", 60965224, 724406816},
	{"vgg11", 132863336, 7609090048},
	{"vgg11_bn", 132868840, 7609090048},
	{"vgg13", 133047848, 11308466176},
	{"vgg13_bn", 133053736, 11308466176},
	{"vgg16", 138357544, 15470264320},
	{"vgg16_bn", 138365992, 15470264320},
	{"vgg19", 143667240, 19632062464},
	{"vgg19_bn", 143678248, 19632062464},
}

func TestTorchvisionCounts(t *testing.T) {
	for _, c := range torchvisionCounts {
		m, err := LoadBuiltin(c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.NumParams(); got != c.params {
			t.Errorf("%s: params = %d, want %d", c.name, got, c.params)
		}
		if got := m.MACs(); got != c.macs {
			t.Errorf("%s: MACs = %d, want %d", c.name, got, c.macs)
		}
		if m.Classes() != 1000 {
			t.Errorf("%s: classes = %d, want 1000", c.name, m.Classes())
		}
	}
}

func TestBuiltinSpecsParse(t *testing.T) {
	names := Builtin()
	for _, want := range []string{"alexnet", "alexnet2012", "vgg11", "vgg19_bn", "vgg_mnist", "tiny"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("built-in spec %q missing from %v", want, names)
		}
	}
	for _, n := range names {
		m, err := LoadBuiltin(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if m.Name != n {
			t.Errorf("spec/%s.cnn declares net %q; the file and net names must agree", n, m.Name)
		}
	}
}

// torchvision's state_dict keys for vgg16_bn's first block and classifier, and for
// alexnet, in order.
func TestTorchvisionNames(t *testing.T) {
	m, err := LoadBuiltin("vgg16_bn")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range m.Layers {
		for _, p := range l.Params() {
			keys = append(keys, p.Name)
		}
		for _, b := range l.Buffers() {
			keys = append(keys, b.Name)
		}
	}
	wantPrefix := []string{
		"features.0.weight", "features.0.bias",
		"features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var",
		"features.3.weight", "features.3.bias",
		"features.4.weight", "features.4.bias", "features.4.running_mean", "features.4.running_var",
		"features.7.weight",
	}
	for i, w := range wantPrefix {
		if keys[i] != w {
			t.Fatalf("vgg16_bn key %d = %q, want %q (keys %v)", i, keys[i], w, keys[:len(wantPrefix)])
		}
	}
	wantSuffix := []string{"features.41.running_var", "classifier.0.weight", "classifier.0.bias",
		"classifier.3.weight", "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"}
	got := keys[len(keys)-len(wantSuffix):]
	if strings.Join(got, " ") != strings.Join(wantSuffix, " ") {
		t.Errorf("vgg16_bn last keys = %v, want %v", got, wantSuffix)
	}
	if l := m.Layer("features.43"); l == nil || l.Kind != MaxPool || l.Out != (Shape{C: 512, H: 7, W: 7}) {
		t.Errorf("vgg16_bn features.43 = %+v, want the last maxpool with output 512×7×7", l)
	}

	a, err := LoadBuiltin("alexnet")
	if err != nil {
		t.Fatal(err)
	}
	var ak []string
	for _, p := range a.Params() {
		ak = append(ak, p.Name)
	}
	want := "features.0.weight features.0.bias features.3.weight features.3.bias features.6.weight features.6.bias " +
		"features.8.weight features.8.bias features.10.weight features.10.bias classifier.1.weight classifier.1.bias " +
		"classifier.4.weight classifier.4.bias classifier.6.weight classifier.6.bias"
	if strings.Join(ak, " ") != want {
		t.Errorf("alexnet keys = %v\nwant %v", ak, want)
	}
	if p := a.Params()[10]; p.Shape[0] != 4096 || p.Shape[1] != 9216 {
		t.Errorf("alexnet classifier.1.weight shape = %v, want [4096 9216]", p.Shape)
	}
}

func TestShapes(t *testing.T) {
	m, err := LoadBuiltin("tiny")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Shape{
		"features.0":   {C: 8, H: 11, W: 11},
		"features.3":   {C: 8, H: 5, W: 5},
		"features.4":   {C: 12, H: 5, W: 5},
		"avgpool":      {C: 12, H: 3, W: 3},
		"flatten":      {C: 108, H: 1, W: 1, Flat: true},
		"classifier.4": {C: 10, H: 1, W: 1, Flat: true},
	}
	for name, s := range want {
		l := m.Layer(name)
		if l == nil {
			t.Errorf("tiny: no layer %q", name)
			continue
		}
		if l.Out != s {
			t.Errorf("tiny %s: output %v, want %v", name, l.Out, s)
		}
	}
	kinds := map[Kind]bool{}
	for _, l := range m.Layers {
		kinds[l.Kind] = true
	}
	for k := Conv; k <= Linear; k++ {
		if !kinds[k] {
			t.Errorf("tiny lacks a %v layer; it must contain every kind", k)
		}
	}
	if l := m.Layer("features.4"); l.Groups != 2 {
		t.Errorf("tiny features.4 groups = %d, want 2", l.Groups)
	}
}

func TestSyntaxVariants(t *testing.T) {
	src := `net v
input 2 9 10
features
  conv 2 6 k=3x2 s2 p1x0 g=2 nobias
  maxpool k3 s=2 p1
  lrn 4 alpha=0.5 beta0.5 k=1.5
  batchnorm eps1e-3 momentum=0.2
classifier
  flatten
  dropout
  linear 32 nobias
`
	m, err := Parse("v.cnn", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Layers[0]
	if c.KH != 3 || c.KW != 2 || c.SH != 2 || c.SW != 2 || c.PH != 1 || c.PW != 0 || c.Groups != 2 || c.Bias || c.OutC != 6 {
		t.Errorf("conv = %+v", c)
	}
	if c.Out != (Shape{C: 6, H: 5, W: 5}) {
		t.Errorf("conv out = %v, want 6×5×5", c.Out)
	}
	if p := m.Layers[1]; p.Out != (Shape{C: 6, H: 3, W: 3}) {
		t.Errorf("maxpool out = %v, want 6×3×3", p.Out)
	}
	if l := m.Layers[2]; l.Size != 4 || l.Alpha != 0.5 || l.Beta != 0.5 || l.K != 1.5 {
		t.Errorf("lrn = %+v", l)
	}
	if b := m.Layers[3]; b.Eps != 1e-3 || b.Momentum != 0.2 || b.Name != "features.3" {
		t.Errorf("batchnorm = %+v", b)
	}
	if d := m.Layers[5]; d.Kind != Dropout || d.P != 0.5 || d.Name != "classifier.1" {
		t.Errorf("dropout = %+v", d)
	}
	if l := m.Layers[6]; l.In.Size() != 54 || l.Bias || l.Name != "classifier.2" {
		t.Errorf("linear = %+v", l)
	}
	if got := m.NumParams(); got != 6*1*3*2+2*6+54*32 {
		t.Errorf("params = %d", got)
	}
}

func TestErrors(t *testing.T) {
	const head = "net t\ninput 3 8 8\n"
	cases := []struct {
		name, src, want string
	}{
		{"empty", "", "t.cnn:1:1: empty spec"},
		{"only comments", "# nothing\n\n   # here\n", "t.cnn:1:1: empty spec"},
		{"no net", "input 3 8 8\n", "t.cnn:1:1: expected 'net NAME' before 'input'"},
		{"layer before net", "conv 3 k3\n", "t.cnn:1:1: expected 'net NAME' as the first line"},
		{"no input", "net t\nfeatures\n  relu\n", "t.cnn:2:1: expected 'input C H W' before the layers"},
		{"no layers", head, "t.cnn:2:1: the spec has no layers"},
		{"duplicate net", "net t\nnet u\n", "t.cnn:2:1: duplicate 'net' line"},
		{"bad net name", "net 9x\n", "t.cnn:1:5: net: malformed name \"9x\""},
		{"input arity", "net t\ninput 3 8\n", "t.cnn:2:1: input: expected 'input C H W'"},
		{"input malformed", "net t\ninput 3 8 x8\n", "t.cnn:2:11: input: malformed number \"x8\"; expected an integer"},
		{"input zero", "net t\ninput 0 8 8\n", "t.cnn:2:7: input: 0 out of range; expected an integer ≥ 1"},
		{"input huge", "net t\ninput 3 8 99999999999999999999\n", "t.cnn:2:11: input: number \"99999999999999999999\" too large"},
		{"unknown layer", head + "features\n  convolution 8 k3\n", "t.cnn:4:3: unknown layer \"convolution\"; expected one of conv, relu"},
		{"unknown top-level", head + "pool k2\n", "t.cnn:3:1: unknown layer \"pool\"; expected one of conv"},
		{"unknown option", head + "features\n  conv 8 k3 d2\n", "t.cnn:4:13: conv: unknown option \"d\"; expected k<K>, s<S>, p<P>, g<G>, nobias"},
		{"option twice", head + "features\n  conv 8 k3 k5\n", "t.cnn:4:13: conv: option \"k\" given twice (first at column 10)"},
		{"missing kernel", head + "features\n  conv 8 s2\n", "t.cnn:4:7: conv: missing kernel size"},
		{"missing out", head + "features\n  conv k3\n", "t.cnn:4:7: conv: missing number; expected 'conv [IN] OUT k<K> ...'"},
		{"malformed number", head + "features\n  conv 8 k3y3\n", "t.cnn:4:11: conv: malformed number \"3y3\" for \"k\"; expected an integer or HxW"},
		{"malformed pair", head + "features\n  conv 8 k3xq\n", "t.cnn:4:13: conv k: malformed number \"q\"; expected an integer"},
		{"malformed out", head + "features\n  conv 8.5 k3\n", "t.cnn:4:8: conv: malformed number \"8.5\"; expected an integer"},
		{"zero stride", head + "features\n  conv 8 k3 s0\n", "t.cnn:4:14: conv s: 0 out of range; expected an integer ≥ 1"},
		{"option without value", head + "features\n  conv 8 k\n", "t.cnn:4:11: conv: option \"k\" needs a value"},
		{"flag with value", head + "features\n  conv 8 k3 nobias1\n", "t.cnn:4:19: conv: option \"nobias\" takes no value"},
		{"collapses", head + "features\n  conv 8 k9\n", "t.cnn:4:3: conv: kernel 9x9 with padding 0x0 does not fit the 8x8 input; the output would be empty"},
		{"pool collapses", head + "features\n  maxpool k2\n  maxpool k2\n  maxpool k2\n  maxpool k2\n", "t.cnn:7:3: maxpool: kernel 2x2 does not fit the 1x1 input"},
		{"pool padding", head + "features\n  maxpool k3 p2\n", "t.cnn:4:15: maxpool: padding 2x2 is more than half the kernel 3x3"},
		{"groups in", head + "features\n  conv 8 k3 g2\n", "t.cnn:4:3: conv: input channels 3 not divisible by groups 2"},
		{"groups out", "net t\ninput 4 8 8\nfeatures\n  conv 6 k3 g4\n", "t.cnn:4:3: conv: output channels 6 not divisible by groups 4"},
		{"conv in mismatch", head + "features\n  conv 4 8 k3\n", "t.cnn:4:3: conv: input has 3 channels but the layer declares 4"},
		{"linear mismatch", head + "classifier\n  linear 100 10\n", "t.cnn:4:3: linear: input has 192 features but the layer declares 100"},
		{"linear extra", head + "classifier\n  linear 100 10 5\n", "t.cnn:4:17: linear: unexpected number \"5\""},
		{"flat into conv", head + "classifier\n  linear 10\n  conv 3 k1\n", "t.cnn:5:3: conv: input is a flat vector of 10 features"},
		{"duplicate section", head + "features\n  relu\nfeatures\n  relu\n", "t.cnn:5:1: duplicate name \"features\" (first used at t.cnn:3:1)"},
		{"duplicate top-level", head + "relu\nrelu\n", "t.cnn:4:1: duplicate name \"relu\" (first used at t.cnn:3:1)"},
		{"section named like top-level", head + "avgpool 2\navgpool\n", "t.cnn:4:8: avgpool: missing number"},
		{"empty section", head + "features\nclassifier\n  linear 10\n", "t.cnn:3:1: section \"features\" has no layers"},
		{"indent outside section", head + "  relu\n", "t.cnn:3:3: indented layer \"relu\" outside a section"},
		{"section with args", head + "features extra\n", "t.cnn:3:1: unknown layer \"features\""},
		{"dropout range", head + "features\n  dropout 1\n", "t.cnn:4:11: dropout: probability 1 out of range; expected 0 ≤ P < 1"},
		{"dropout malformed", head + "features\n  dropout abc\n", "t.cnn:4:11: dropout: unknown option \"abc\"; expected no options"},
		{"lrn k", head + "features\n  lrn 5 k0\n", "t.cnn:4:10: lrn: k must be positive"},
		{"lrn real", head + "features\n  lrn 5 alpha1e-4e\n", "t.cnn:4:14: lrn: malformed number \"1e-4e\" for \"alpha\""},
		{"lrn nan", head + "features\n  lrn 5 beta=NaN\n", "t.cnn:4:14: lrn: malformed number \"NaN\" for \"beta\"; expected a finite decimal number"},
		{"bn momentum", head + "features\n  batchnorm momentum2\n", "t.cnn:4:21: batchnorm: momentum must be in [0, 1]"},
		{"vgg empty", head + "features\n  vgg batchnorm\n", "t.cnn:4:6: vgg: missing configuration"},
		{"vgg bad", head + "features\n  vgg 64 N 128\n", "t.cnn:4:10: vgg: unexpected \"N\"; expected a channel count, M, or a final 'batchnorm'"},
		{"vgg bn middle", head + "features\n  vgg 64 batchnorm M\n", "t.cnn:4:10: vgg: 'batchnorm' must come last"},
		{"vgg collapses", head + "features\n  vgg 8 M M M M\n", "t.cnn:4:15: maxpool: kernel 2x2 does not fit the 1x1 input"},
		{"flatten name clash", head + "flatten\nclassifier\n  relu\n  linear 3\n", ""}, // explicit flatten: no implied one
		{"invalid utf8", head + "features\n  relu \xff\n", "t.cnn:4:1: invalid UTF-8"},
		{"huge activation", "net t\ninput 65536 65536 65536\nfeatures\n  relu\n", "t.cnn:1:1: input 65536×65536×65536 has more than"},
	}
	for _, c := range cases {
		_, err := Parse("t.cnn", []byte(c.src))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want %q", c.name, c.want)
			continue
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%s: error %T is not a *spec.Error", c.name, err)
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got %q\nwant %q...", c.name, err.Error(), c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Builtin() {
		src, err := builtin.ReadFile(n + ".cnn")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("net t\ninput 3 8 8\nfeatures\n  conv 8 k3x2 s2 p1 g1 nobias\n  lrn 3 k=2\nclassifier\n  linear 2\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Parse("fuzz.cnn", src)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *spec.Error: %v", err, err)
			}
			if se.Pos.Line < 1 || se.Pos.Col < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		// A model that parses has positive shapes everywhere and consistent counts.
		in := m.Input
		for _, l := range m.Layers {
			if l.In != in {
				t.Fatalf("%s: input %v, previous output %v", l.Name, l.In, in)
			}
			if l.Out.C < 1 || l.Out.H < 1 || l.Out.W < 1 {
				t.Fatalf("%s: empty output %v", l.Name, l.Out)
			}
			if l.NumParams() < 0 || l.MACs() < 0 {
				t.Fatalf("%s: negative counts", l.Name)
			}
			in = l.Out
		}
	})
}

// torchvision flattens between avgpool and classifier, so AlexNet's first classifier
// layer, a dropout, sees the flat vector.
func TestImpliedFlattenPlacement(t *testing.T) {
	m, err := LoadBuiltin("alexnet")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, l := range m.Layers {
		order = append(order, l.Name)
	}
	got := strings.Join(order, " ")
	if !strings.Contains(got, "features.12 avgpool flatten classifier.0 classifier.1") {
		t.Errorf("alexnet layer order %s", got)
	}
	if l := m.Layer("classifier.0"); l.In != (Shape{C: 9216, H: 1, W: 1, Flat: true}) {
		t.Errorf("classifier.0 input %v, want flat 9216", l.In)
	}
	// An explicit flatten suppresses the implied one.
	m, err = Parse("f.cnn", []byte("net f\ninput 2 3 3\nfeatures\n  relu\n  flatten\n  dropout\nclassifier\n  relu\n  linear 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Layers); n != 5 || m.Layers[1].Name != "features.1" || m.Layers[1].Kind != Flatten {
		t.Errorf("explicit flatten: %d layers, second %+v", n, m.Layers[1])
	}
}
