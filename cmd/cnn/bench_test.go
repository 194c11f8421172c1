package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
)

// cnn bench -json reports every task of a forward with the fields the issue names,
// and -roofline writes a PNG with a point per layer that has FLOPs.
func TestBenchJSONAndRoofline(t *testing.T) {
	for _, mode := range []string{"exact", "fast"} {
		png := filepath.Join(t.TempDir(), "roofline.png")
		var out, errb bytes.Buffer
		if code := run([]string{"bench", "-model", "vgg_mnist", "-reps", "2", "-warmup", "1", "-mode", mode, "-json", "-roofline", png}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, errb.String())
		}
		var r benchResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Model != "vgg_mnist" || r.Mode != mode || r.Batch != 1 || r.MedianMS <= 0 || r.PeakGFLOPS <= 0 || len(r.Layers) == 0 {
			t.Errorf("%s: %+v", mode, r)
		}
		points, convMS, convGFLOP := 0, 0.0, 0.0
		for _, l := range r.Layers {
			if l.GFLOPS > 0 && l.Intensity > 0 {
				points++
			}
			if l.MinMS <= 0 || l.MinMS > l.MS {
				t.Errorf("%s: %s: min %v ms, median %v ms", mode, l.Name, l.MinMS, l.MS)
			}
			if l.Kind == "conv" && l.GFLOPS > 0 {
				convMS += l.MS
				convGFLOP += l.GFLOPS * l.MS / 1e3
			}
		}
		// The convolutions' sum is their time and their FLOPs over it.
		if want := convGFLOP / (convMS / 1e3); convMS == 0 || math.Abs(r.Conv.MS-convMS) > 1e-9*convMS ||
			math.Abs(r.Conv.GFLOPS-want) > 1e-6*want || math.Abs(r.Conv.PctPeak-100*want/r.PeakGFLOPS) > 1e-6*r.Conv.PctPeak {
			t.Errorf("%s: conv sum %+v, want %v ms at %v GFLOP/s", mode, r.Conv, convMS, want)
		}
		if points < 5 { // 3 convolutions and 2 linear layers
			t.Errorf("%s: %d layers with an intensity, want 5", mode, points)
		}
		b, err := os.ReadFile(png)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s: roofline is not a PNG", mode)
		}
	}
}

// cnn verify -mode fast runs the exact checks and then holds the fast-mode
// logits to verify.FastBound.
func TestVerifyFast(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"verify", "-model", "vgg_mnist", "-mode", "fast"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("fast-mode inference instance against the bound")) || !bytes.Contains(out.Bytes(), []byte("logits / fast-mode bound")) {
		t.Errorf("no fast-mode report:\n%s", out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("fast and exact mode on 256 random inputs")) {
		t.Errorf("no top-1 agreement:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"verify", "-model", "vgg_mnist", "-mode", "fast", "-agree", "0", "-json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if bytes.Contains(out.Bytes(), []byte("top-1 agreement")) {
		t.Errorf("-agree 0 compared top-1 classes:\n%s", out.String())
	}
}

// agreement gives the second instance the first one's weights: two exact instances
// that held different weights then agree on every input, with identical logits; and
// an input that makes the first give NaN never agrees.
func TestAgreement(t *testing.T) {
	e, err := generated.Lookup("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	sm, err := spec.LoadBuiltin("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.New(runtime.Config{MaxBatch: 3, Threads: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := e.New(runtime.Config{MaxBatch: 3, Threads: 2, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Different weights in a.
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range a.Params() {
		for i := range p.Value {
			p.Value[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := agreement(a, b, sm, 10, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if r.Agree != 10 || r.Inputs != 10 || r.MaxDiff != 0 {
		t.Errorf("exact against exact on the same weights: %+v", r)
	}
	if got := argmax([]float32{1, 3, 3, float32(math.NaN())}); got != -1 {
		t.Errorf("argmax with a NaN = %d", got)
	}
	if got := argmax([]float32{1, 3, 3, 2}); got != 1 {
		t.Errorf("argmax = %d, want 1 (the first of equals)", got)
	}
}
