package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

// .pth → safetensors: every tensor of the model, the same values, F32, and the file
// loads strictly into a fresh instance.
func TestExportConvertsPTH(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tiny.safetensors")
	code, stdout, stderr := runCnn("export", "-model", "tiny", "-weights", tinyPTH, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, out) || !strings.Contains(stdout, "pth") || !strings.Contains(stdout, "num_batches_tracked") {
		t.Errorf("stdout %q", stdout)
	}
	src, err := weights.ReadFile(tinyPTH)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := weights.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Format != "safetensors" || dst.Metadata["model"] != "tiny" {
		t.Errorf("format %q, metadata %v", dst.Format, dst.Metadata)
	}
	e, _ := generated.Lookup("tiny")
	m, _ := e.New(runtime.Config{})
	defer m.Close()
	want := slices.Concat(m.Params(), m.Buffers())
	if len(dst.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d (num_batches_tracked is not the model's)", len(dst.Tensors), len(want))
	}
	for _, p := range want {
		d, ok := dst.Tensors[p.Name]
		s, ok2 := src.Tensors[p.Name]
		if !ok || !ok2 || !slices.Equal(d.Shape, p.Shape) || !slices.Equal(d.Data, s.Data) || d.DType != weights.F32 {
			t.Errorf("%s: exported %+v", p.Name, d)
		}
	}
	if _, err := weights.LoadFile(m, out, weights.Options{}); err != nil {
		t.Error(err)
	}
}

// Without -weights: runtime.InitTorch's weights for the seed, the same bytes for the
// same seed.
func TestExportInitialWeights(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors"), filepath.Join(dir, "c.safetensors")
	for _, x := range []struct {
		out, seed string
	}{{a, "7"}, {b, "7"}, {c, "8"}} {
		if code, _, stderr := runCnn("export", "-model", "vgg_mnist", "-seed", x.seed, "-o", x.out); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	dc, _ := os.ReadFile(c)
	if !bytes.Equal(da, db) || bytes.Equal(da, dc) {
		t.Error("same seed, different files, or different seeds, the same file")
	}
	e, _ := generated.Lookup("vgg_mnist")
	m, _ := e.New(runtime.Config{})
	defer m.Close()
	if err := runtime.InitTorch(m, 7); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := weights.Write(&want, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, want.Bytes()) {
		t.Error("the exported file is not weights.Write of InitTorch(m, 7)")
	}
}

// Round trip: exporting an exported file gives the same bytes.
func TestExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "1.safetensors"), filepath.Join(dir, "2.safetensors")
	if code, _, stderr := runCnn("export", "-model", "tiny", "-weights", tinyPTH, "-o", one); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCnn("export", "-model", "tiny", "-weights", one, "-o", two); code != 0 {
		t.Fatal(stderr)
	}
	d1, _ := os.ReadFile(one)
	d2, _ := os.ReadFile(two)
	if !bytes.Equal(d1, d2) {
		t.Error("re-exporting changed the file")
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-model", "tiny"}, 2, "usage"},
		{[]string{"-o", out}, 2, "usage"},
		{[]string{"-model", "tiny", "-o", out, "extra"}, 2, "usage"},
		{[]string{"-model", "tiny", "-o", out, "-weights", tinyPTH, "-seed", "3"}, 2, "-seed only applies"},
		{[]string{"-model", "nosuch", "-o", out}, 1, `no generated model "nosuch"`},
		{[]string{"-model", "vgg_mnist", "-o", out, "-weights", tinyPTH}, 1, "tiny.pth"},
		{[]string{"-model", "tiny", "-o", out, "-weights", filepath.Join(dir, "none.pth")}, 1, "none.pth"},
		{[]string{"-model", "tiny", "-o", filepath.Join(dir, "no", "such", "dir.safetensors")}, 1, "no such file or directory"},
	} {
		code, _, stderr := runCnn(append([]string{"export"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed export left a file behind")
	}
}
