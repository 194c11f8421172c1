package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/cnngen/cnngen/gen"
	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
	"github.com/cnngen/cnngen/verify"
)

// verifyCmd runs verify.Compare for one model or all: an inference instance in
// evaluation mode, and a training instance in evaluation and training mode with
// gradients.
func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "all", "model name, or all")
	mode := fs.String("mode", "exact", "numeric mode: exact or fast")
	batch := fs.Int("batch", 2, "samples per check")
	seed := fs.Uint64("seed", 1, "seed of the weights, inputs and output gradients")
	threads := fs.Int("threads", 2, "worker threads")
	asJSON := fs.Bool("json", false, "print one JSON report per check")
	samples := fs.Int("samples", verify.DefaultSamples, "positions compared per tensor in the layer-wise checks")
	agree := fs.Int("agree", 256, "fast mode: random inputs on which fast and exact mode's top-1 classes are compared (0: none)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn verify [-model NAME|all] [-mode exact|fast] [-batch N] [-seed S] [-threads T] [-agree N] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	md, err := runtime.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "cnn verify:", err)
		return 2
	}
	if *batch < 1 {
		fmt.Fprintln(stderr, "cnn verify: -batch must be at least 1")
		return 2
	}
	if *agree < 0 {
		fmt.Fprintln(stderr, "cnn verify: -agree must not be negative")
		return 2
	}
	entries := generated.All
	if *model != "all" {
		e, err := generated.Lookup(*model)
		if err != nil {
			fmt.Fprintln(stderr, "cnn verify:", err)
			return 2
		}
		entries = []generated.Entry{e}
	}
	failed := false
	enc := json.NewEncoder(stdout)
	for _, e := range entries {
		sm, err := spec.LoadBuiltin(e.Name)
		if err != nil {
			fmt.Fprintln(stderr, "cnn verify:", err)
			return 1
		}
		reps, err := verifyModel(e, sm, md, *batch, *threads, *seed, *samples, *agree)
		if err != nil {
			fmt.Fprintf(stderr, "cnn verify: %s: %v\n", e.Name, err)
			failed = true
		}
		for _, r := range reps {
			if r.agree != nil {
				if *asJSON {
					enc.Encode(r.agree)
				} else {
					a := r.agree
					fmt.Fprintf(stdout, "%s: fast and exact mode on %d random inputs (batch %d, seed %d): the same top-1 class on %d; largest logit difference %.3g of the largest |logit|\n\n",
						e.Name, a.Inputs, a.Batch, a.Seed, a.Agree, a.MaxDiff)
				}
				continue
			}
			failed = failed || !r.rep.Pass
			if *asJSON {
				enc.Encode(r.rep)
				continue
			}
			fmt.Fprintf(stdout, "%s: %s\n", e.Name, r.what)
			r.rep.Write(stdout)
			fmt.Fprintln(stdout)
		}
	}
	if failed {
		fmt.Fprintln(stderr, "cnn verify: FAIL")
		return 1
	}
	return 0
}

type verifyReport struct {
	what  string
	rep   *verify.Report
	agree *agreeReport // instead of rep: fast mode's top-1 agreement, reported, not checked
}

// agreeReport is how often fast and exact mode, on the same weights, give the
// same class: Agree of Inputs random inputs (normal, seeded), and the largest
// |fast − exact| logit over the largest |exact| logit.
type agreeReport struct {
	Model   string  `json:"model"`
	Check   string  `json:"check"`
	Batch   int     `json:"batch"`
	Seed    uint64  `json:"seed"`
	Inputs  int     `json:"inputs"`
	Agree   int     `json:"agree"`
	MaxDiff float64 `json:"max_diff"`
}

// wholeNetMACs is the size up to which cnn verify also runs the whole-net float64
// reference (verify.Compare); beyond it only the layer-wise sampled checks run, which
// take seconds where the whole-net reference takes minutes.
const wholeNetMACs = 50_000_000

// verifyModel runs the checks of one model: layer by layer at sampled positions on a
// training instance in evaluation and training mode with gradients, an inference
// instance's logits against the training instance's, and for small nets the whole-net
// reference as well.
func verifyModel(e generated.Entry, sm *spec.Model, md runtime.Mode, batch, threads int, seed uint64, samples, agree int) ([]verifyReport, error) {
	var out []verifyReport
	if md == runtime.Fast {
		// Fast mode is for inference: its logits are held to the bound its methods
		// give (verify.FastBound), after the exact checks every instance shares;
		// then its top-1 classes are compared with exact mode's.
		out, err := verifyModel(e, sm, runtime.Exact, batch, threads, seed, samples, agree)
		if err != nil {
			return out, err
		}
		fast, err := e.New(runtime.Config{MaxBatch: batch, Threads: threads, Mode: runtime.Fast, Seed: seed})
		if err != nil {
			return out, err
		}
		defer fast.Close()
		rep, err := verify.CompareFast(fast, sm, verify.Options{Batch: batch, Seed: seed}, gen.Fast)
		if err != nil {
			return out, err
		}
		out = append(out, verifyReport{what: "fast-mode inference instance against the bound of its methods (whole net)", rep: rep})
		if agree == 0 {
			return out, nil
		}
		exact, err := e.NewFrom(fast, runtime.Config{MaxBatch: batch, Threads: threads, Seed: seed})
		if err != nil {
			return out, err
		}
		defer exact.Close()
		a, err := agreement(fast, exact, sm, agree, batch, seed)
		if err != nil {
			return out, err
		}
		return append(out, verifyReport{agree: a}), nil
	}
	newM := func(training bool) (generated.Model, error) {
		return e.New(runtime.Config{MaxBatch: batch, Threads: threads, Mode: md, Training: training, Seed: seed})
	}
	tr, err := newM(true)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	inf, err := newM(false)
	if err != nil {
		return nil, err
	}
	defer inf.Close()
	for _, train := range []bool{false, true} {
		if train && !trainBatchOK(sm, batch) {
			continue
		}
		mode := "evaluation"
		if train {
			mode = "training"
		}
		rep, err := verify.CompareLayers(tr, sm, verify.LayerOptions{Batch: batch, Train: train, Seed: seed, Samples: samples, Backward: true})
		if err != nil {
			return out, err
		}
		out = append(out, verifyReport{what: "training instance, " + mode + " mode, layer by layer, forward and backward", rep: rep})
		if e.MACs <= wholeNetMACs {
			rep, err := verify.Compare(tr, sm, verify.Options{Batch: batch, Train: train, Seed: seed, Backward: true})
			if err != nil {
				return out, err
			}
			out = append(out, verifyReport{what: "training instance, " + mode + " mode, whole net, forward and backward", rep: rep})
		}
	}
	rep, err := verify.CompareInference(inf, tr, sm, verify.LayerOptions{Batch: batch, Seed: seed})
	if err != nil {
		return out, err
	}
	out = append(out, verifyReport{what: "inference instance (batch norm folded) against the training instance", rep: rep})
	return out, nil
}

// trainBatchOK reports whether batch norm can use batch statistics at batch n
// (PyTorch refuses a single value per channel).
func trainBatchOK(sm *spec.Model, n int) bool {
	for _, l := range sm.Layers {
		if l.Kind == spec.BatchNorm && n*l.In.H*l.In.W < 2 {
			return false
		}
	}
	return true
}

// agreement runs n random inputs (normal, from seed) through fast and exact,
// which share their weights (NewFrom), batch at a time, counting the inputs whose
// largest logit is the same class in both.
func agreement(fast, exact runtime.Model, sm *spec.Model, n, batch int, seed uint64) (*agreeReport, error) {
	a := &agreeReport{Model: sm.Name, Check: "top-1 agreement of fast and exact mode", Batch: batch, Seed: seed, Inputs: n}
	rng := rand.New(rand.NewPCG(seed, 0xa9ee))
	c, scale := sm.Classes(), 0.0
	for done := 0; done < n; {
		b := min(batch, n-done)
		x := make([]float32, b*sm.Input.Size())
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		got, err := fast.Forward(x, b)
		if err != nil {
			return nil, err
		}
		got = slices.Clone(got)
		want, err := exact.Forward(x, b)
		if err != nil {
			return nil, err
		}
		for s := 0; s < b; s++ {
			g, w := got[s*c:(s+1)*c], want[s*c:(s+1)*c]
			if argmax(g) == argmax(w) {
				a.Agree++
			}
			for j := range w {
				scale = max(scale, math.Abs(float64(w[j])))
				a.MaxDiff = max(a.MaxDiff, math.Abs(float64(g[j])-float64(w[j])))
			}
		}
		done += b
	}
	if scale > 0 {
		a.MaxDiff /= scale
	}
	return a, nil
}

// argmax is the index of v's largest value, the first of equals; -1 if v holds a
// NaN, so that a NaN logit never agrees.
func argmax(v []float32) int {
	k := 0
	for i, x := range v {
		if x != x {
			return -1
		}
		if x > v[k] {
			k = i
		}
	}
	return k
}
