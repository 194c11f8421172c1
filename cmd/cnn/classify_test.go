package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/data/imagenet"
	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

// tinyPTH is a state_dict of spec/tiny.cnn saved by PyTorch (3×23×23 inputs, 10
// classes), committed by runtime/weights.
const tinyPTH = "../../runtime/weights/testdata/tiny.pth"

// testImages writes n small images of different content to dir, alternately PNG
// and JPEG, and returns their paths.
func testImages(t *testing.T, dir string, n int) []string {
	t.Helper()
	var paths []string
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, 40+7*i, 31+3*i))
		b := img.Bounds()
		for y := range b.Dy() {
			for x := range b.Dx() {
				img.Set(x, y, color.NRGBA{uint8(x * (i + 3)), uint8(y * 5 * (i + 1)), uint8((x ^ y) * 9), 255})
			}
		}
		var buf bytes.Buffer
		name := filepath.Join(dir, "img"+string(rune('a'+i)))
		if i%2 == 0 {
			name += ".png"
			png.Encode(&buf, img)
		} else {
			name += ".jpg"
			jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		}
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, name)
	}
	return paths
}

func runCnn(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func decodeResults(t *testing.T, out string) []imageResult {
	t.Helper()
	var rs []imageResult
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var r imageResult
		if err := dec.Decode(&r); err == io.EOF {
			return rs
		} else if err != nil {
			t.Fatalf("%v in output:\n%s", err, out)
		}
		rs = append(rs, r)
	}
}

// cnn classify gives what the model gives when fed imagenet.Preprocess's tensor,
// for any batch size and thread count.
func TestClassifyMatchesModel(t *testing.T) {
	paths := testImages(t, t.TempDir(), 5)
	code, out, errOut := runCnn(append([]string{"classify", "-model", "tiny", "-weights", tinyPTH, "-top", "3", "-json", "-batch", "2"}, paths...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := decodeResults(t, out)
	if len(got) != len(paths) {
		t.Fatalf("%d results for %d images", len(got), len(paths))
	}

	e, _ := generated.Lookup("tiny")
	m, err := e.New(runtime.Config{MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := weights.LoadFile(m, tinyPTH, weights.Options{}); err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		img, err := imagenet.DecodeFile(p)
		if err != nil {
			t.Fatal(err)
		}
		x, err := imagenet.Preprocess(img, 23)
		if err != nil {
			t.Fatal(err)
		}
		logits, err := m.Forward(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		var want []classResult
		for _, c := range imagenet.Top(logits, 3) {
			want = append(want, classResult{c.Class, c.Name, c.Prob})
		}
		if got[i].Image != p || !slices.Equal(got[i].Top, want) {
			t.Errorf("image %d: %+v\nwant %s %+v", i, got[i], p, want)
		}
	}

	// Other batch sizes and thread counts: the same bytes (exact mode).
	for _, flags := range [][]string{{"-batch", "5", "-threads", "1"}, {"-batch", "1", "-threads", "3"}} {
		args := append([]string{"classify", "-model", "tiny", "-weights", tinyPTH, "-top", "3", "-json"}, flags...)
		code, out2, errOut := runCnn(append(args, paths...)...)
		if code != 0 || out2 != out {
			t.Errorf("%v: exit %d, output differs: %s\n%s", flags, code, errOut, out2)
		}
	}
}

func TestClassifyText(t *testing.T) {
	paths := testImages(t, t.TempDir(), 1)
	code, out, errOut := runCnn("classify", "-model", "tiny", "-weights", tinyPTH, "-top", "2", paths[0])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0] != paths[0] || !strings.Contains(lines[1], "%") || !strings.Contains(lines[1], "class ") {
		t.Errorf("output:\n%s", out)
	}
}

// A bad image fails alone, with its name; the others are classified and the exit
// status says something failed.
func TestClassifyBadImages(t *testing.T) {
	dir := t.TempDir()
	good := testImages(t, dir, 2)
	notImage := filepath.Join(dir, "notes.jpg")
	os.WriteFile(notImage, []byte("not a picture"), 0o644)
	cut := filepath.Join(dir, "cut.png")
	data, _ := os.ReadFile(good[0])
	os.WriteFile(cut, data[:len(data)/2], 0o644)
	missing := filepath.Join(dir, "missing.png")
	args := []string{"classify", "-model", "tiny", "-weights", tinyPTH, "-json", "-batch", "2", good[0], notImage, cut, missing, good[1]}
	code, out, errOut := runCnn(args...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	rs := decodeResults(t, out)
	if len(rs) != 5 {
		t.Fatalf("%d results, want 5:\n%s", len(rs), out)
	}
	for i, want := range []string{"", "not a JPEG or PNG image", "bad png file", "no such file", ""} {
		r := rs[i]
		if r.Image != args[8+i] {
			t.Errorf("result %d is for %q, want %q", i, r.Image, args[8+i])
		}
		switch {
		case want == "" && (r.Error != "" || len(r.Top) != 5):
			t.Errorf("%s: %+v", r.Image, r)
		case want != "" && (!strings.Contains(r.Error, want) || !strings.Contains(r.Error, r.Image) || !strings.Contains(errOut, r.Error)):
			t.Errorf("%s: error %q, want one naming the file and saying %q (stderr: %s)", r.Image, r.Error, want, errOut)
		}
	}
}

func TestClassifyBadSetup(t *testing.T) {
	dir := t.TempDir()
	img := testImages(t, dir, 1)[0]
	garbage := filepath.Join(dir, "garbage.pth")
	os.WriteFile(garbage, []byte("PK\x03\x04 not really a zip"), 0o644)
	// vgg_mnist's weights are not tiny's.
	mnistWeights := filepath.Join(dir, "vgg_mnist.safetensors")
	if code, _, errOut := runCnn("export", "-model", "vgg_mnist", "-o", mnistWeights); code != 0 {
		t.Fatal(errOut)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-model", "tiny", img}, 2, "-weights is required"},
		{[]string{"-weights", tinyPTH, img}, 2, "usage"},
		{[]string{"-model", "tiny", "-weights", tinyPTH}, 2, "usage"},
		{[]string{"-model", "tiny", "-weights", tinyPTH, "-top", "0", img}, 2, "usage"},
		{[]string{"-model", "tiny", "-weights", tinyPTH, "-mode", "quick", img}, 2, "unknown mode"},
		{[]string{"-model", "nosuch", "-weights", tinyPTH, img}, 1, `no generated model "nosuch"`},
		{[]string{"-model", "vgg_mnist", "-weights", mnistWeights, img}, 1, "takes 1×28×28 inputs"},
		{[]string{"-model", "tiny", "-weights", filepath.Join(dir, "none.pth"), img}, 1, "none.pth"},
		{[]string{"-model", "tiny", "-weights", garbage, img}, 1, "garbage.pth"},
		{[]string{"-model", "tiny", "-weights", mnistWeights, img}, 1, "vgg_mnist.safetensors: tensor"},
	} {
		code, out, errOut := runCnn(append([]string{"classify"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, errOut, out, c.code, c.want)
		}
	}
}

// A `cnn train` checkpoint (the model's tensors and the optimizer's) loads; a file
// with any other extra tensor does not.
func TestClassifyCheckpoint(t *testing.T) {
	dir := t.TempDir()
	img := testImages(t, dir, 1)[0]
	f, err := weights.ReadFile(tinyPTH)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := generated.Lookup("tiny")
	m, _ := e.New(runtime.Config{})
	defer m.Close()
	var ts []runtime.Param
	for _, p := range slices.Concat(m.Params(), m.Buffers()) {
		ts = append(ts, runtime.Param{Name: p.Name, Shape: p.Shape, Value: f.Tensors[p.Name].Data})
	}
	write := func(name string, extra string) string {
		all := slices.Clone(ts)
		all = append(all, runtime.Param{Name: extra + "features.0.weight", Shape: ts[0].Shape, Value: ts[0].Value})
		var b bytes.Buffer
		if err := weights.WriteSafetensors(&b, all, map[string]string{"format": "pt", "model": "tiny"}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, b.Bytes(), 0o644)
		return path
	}
	ckpt, other := write("ckpt.safetensors", "optim.momentum."), write("other.safetensors", "ema.")
	_, want, _ := runCnn("classify", "-model", "tiny", "-weights", tinyPTH, "-json", img)
	if code, out, errOut := runCnn("classify", "-model", "tiny", "-weights", ckpt, "-json", img); code != 0 || out != want {
		t.Errorf("checkpoint: exit %d, %s%s; want %s", code, out, errOut, want)
	}
	if code, _, errOut := runCnn("classify", "-model", "tiny", "-weights", other, img); code != 1 || !strings.Contains(errOut, `"ema.features.0.weight"`) {
		t.Errorf("extra tensor: exit %d, %s", code, errOut)
	}
}

// The crop is the model's input size: 227 for alexnet2012.
func TestTransformFor(t *testing.T) {
	for _, c := range []struct {
		shape [3]int
		crop  int
	}{{[3]int{3, 224, 224}, 224}, {[3]int{3, 227, 227}, 227}, {[3]int{3, 23, 23}, 23}} {
		tr, err := transformFor(shapeModel{shape: c.shape}, 256)
		if err != nil || tr.Crop != c.crop || tr.Resize != 256 || tr.Mean != imagenet.Mean || tr.Std != imagenet.Std {
			t.Errorf("%v: %+v, %v", c.shape, tr, err)
		}
	}
	for _, s := range [][3]int{{1, 28, 28}, {3, 32, 16}, {4, 8, 8}} {
		if _, err := transformFor(shapeModel{shape: s}, 256); err == nil {
			t.Errorf("%v: no error", s)
		}
	}
}

// shapeModel is a runtime.Model that only has an input shape.
type shapeModel struct {
	runtime.Model
	shape [3]int
}

func (m shapeModel) InputShape() [3]int { return m.shape }
func (m shapeModel) Name() string       { return "shape" }
