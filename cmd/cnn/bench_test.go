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
	"github.com/cnngen/cnngen/runtime/kernels"
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
		// The pure-Go kernels (a purego build, or a CPU without AVX2) have no peak probe.
		hasPeak := kernels.ISA() != "go"
		if r.Model != "vgg_mnist" || r.Mode != mode || r.Batch != 1 || r.MedianMS <= 0 || (r.PeakGFLOPS > 0) != hasPeak || len(r.Layers) == 0 {
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
		wantPct := 0.0
		if hasPeak {
			wantPct = 100 * convGFLOP / (convMS / 1e3) / r.PeakGFLOPS
		}
		if want := convGFLOP / (convMS / 1e3); convMS == 0 || math.Abs(r.Conv.MS-convMS) > 1e-9*convMS ||
			math.Abs(r.Conv.GFLOPS-want) > 1e-6*want || math.Abs(r.Conv.PctPeak-wantPct) > 1e-6*r.Conv.PctPeak {
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

// cnn bench -isa runs the kernels it names and says so in the JSON; the FMA
// peak is measured on the same kernels (none for the pure-Go ones, whose
// roofline then has only the bandwidth roof). An ISA the CPU lacks, or a
// misspelt one, is a usage error.
func TestBenchISA(t *testing.T) {
	defer kernels.SetISA(kernels.ISA())
	for _, isa := range kernels.ISAs() {
		var out, errb bytes.Buffer
		png := filepath.Join(t.TempDir(), "roofline.png")
		if code := run([]string{"bench", "-model", "vgg_mnist", "-reps", "1", "-warmup", "0", "-isa", isa, "-json", "-roofline", png}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", isa, code, errb.String())
		}
		var r benchResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.ISA != isa || r.MedianMS <= 0 {
			t.Errorf("-isa %s: ran %q, median %v ms", isa, r.ISA, r.MedianMS)
		}
		if (r.PeakGFLOPS > 0) != (isa != "go") {
			t.Errorf("-isa %s: peak %v GFLOP/s", isa, r.PeakGFLOPS)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-model", "vgg_mnist", "-isa", "sse9"}, &out, &errb); code != 2 || !bytes.Contains(errb.Bytes(), []byte("sse9")) {
		t.Errorf("-isa sse9: exit %d, stderr %q", code, errb.String())
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

// agreement compares two instances input by input: an exact instance sharing the
// weights agrees on every input with identical logits; a fast one sharing them
// gives different logits, and one with other weights disagrees on some inputs.
func TestAgreement(t *testing.T) {
	e, err := generated.Lookup("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	sm, err := spec.LoadBuiltin("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	newRandom := func(seed uint64) generated.Model {
		m, err := e.New(runtime.Config{MaxBatch: 3, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 4))
		for _, p := range m.Params() {
			for i := range p.Value {
				p.Value[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
		if err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := newRandom(3)
	defer a.Close()
	for _, mode := range []runtime.Mode{runtime.Exact, runtime.Fast} {
		b, err := e.NewFrom(a, runtime.Config{MaxBatch: 3, Threads: 2, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		r, err := agreement(b, a, sm, 10, 3, 5)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.Inputs != 10 || mode == runtime.Exact && (r.Agree != 10 || r.MaxDiff != 0) ||
			mode == runtime.Fast && !(r.MaxDiff > 0 && r.MaxDiff < 0.05) {
			t.Errorf("%v against exact on the same weights: %+v", mode, r)
		}
	}
	c := newRandom(7)
	defer c.Close()
	if r, err := agreement(c, a, sm, 10, 3, 5); err != nil || !(r.MaxDiff > 0.05 && r.Agree < 10) {
		t.Errorf("two instances with different weights: %+v, %v", r, err)
	}
	if got := argmax([]float32{1, 3, 3, float32(math.NaN())}); got != -1 {
		t.Errorf("argmax with a NaN = %d", got)
	}
	if got := argmax([]float32{1, 3, 3, 2}); got != 1 {
		t.Errorf("argmax = %d, want 1 (the first of equals)", got)
	}
}
