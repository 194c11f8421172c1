package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/runtime/optim"
	"github.com/cnngen/cnngen/spec"
)

// benchLayer is one task's line of `cnn bench -json`.
type benchLayer struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Phase   string  `json:"phase"`
	Algo    string  `json:"algo,omitempty"`
	MS      float64 `json:"ms"`
	MinMS   float64 `json:"min_ms"` // the fastest run's time: the layer with the host's noise least in it
	GFLOPS  float64 `json:"gflops"`
	PctPeak float64 `json:"pct_peak"`
	GBPS    float64 `json:"gbps,omitempty"`
	// Intensity is FLOPs per byte of estimated memory traffic (activations in and
	// out, weights), the roofline's x axis.
	Intensity float64 `json:"intensity,omitempty"`
}

// benchResult is the output of `cnn bench -json`.
type benchResult struct {
	Model    string  `json:"model"`
	Batch    int     `json:"batch"`
	Threads  int     `json:"threads"`
	Mode     string  `json:"mode"`
	Train    bool    `json:"train"`
	ISA      string  `json:"isa"`
	Reps     int     `json:"reps"`
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	GFLOPS   float64 `json:"gflops"`
	// PeakGFLOPS is the median of the FMA-peak probes run between the timed runs,
	// so that the layers' medians and the peak sample the same stretch of a shared
	// machine's time; PeakBestGFLOPS is the fastest probe.
	PeakGFLOPS     float64      `json:"peak_gflops"`
	PeakBestGFLOPS float64      `json:"peak_best_gflops"`
	Layers         []benchLayer `json:"layers"`
	// Conv sums the convolution tasks (forward, and in a training step their
	// input and weight gradients): the sum of their median times, GFLOP/s, and
	// % of the peak, which is the FLOP-weighted efficiency of the convolutions.
	// A Winograd layer (fast mode) is credited with a direct convolution's
	// FLOPs, so fast mode can pass 100%; a max pool that an evaluation
	// convolution computes (gen's fusePools) counts in that convolution's time.
	Conv benchSum `json:"conv"`
}

// benchSum is a sum over a kind of task.
type benchSum struct {
	MS      float64 `json:"ms"`
	GFLOPS  float64 `json:"gflops"`
	PctPeak float64 `json:"pct_peak"`
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "alexnet", "model name")
	batch := fs.Int("batch", 1, "batch size")
	threads := fs.Int("threads", 2, "worker threads")
	mode := fs.String("mode", "exact", "numeric mode: exact or fast")
	trainStep := fs.Bool("train", false, "time a training step (forward, backward, SGD with momentum) instead of a forward pass")
	reps := fs.Int("reps", 10, "timed runs")
	warmup := fs.Int("warmup", 2, "untimed runs first")
	asJSON := fs.Bool("json", false, "print one JSON object")
	roofline := fs.String("roofline", "", "also write a roofline PNG of the layers to this file")
	isa := fs.String("isa", kernels.ISA(), fmt.Sprintf("kernels to run: one of %v (the FMA peak is measured on the same)", kernels.ISAs()))
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn bench -model NAME -batch N -threads T -mode exact|fast [-isa avx512|avx2|go] [-train] [-reps R] [-json] [-roofline FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *batch < 1 || *threads < 1 || *reps < 1 || *warmup < 0 {
		fs.Usage()
		return 2
	}
	md, err := runtime.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "cnn bench:", err)
		return 2
	}
	if err := kernels.SetISA(*isa); err != nil {
		fmt.Fprintln(stderr, "cnn bench: -isa:", err)
		return 2
	}
	res, err := bench(*model, *batch, *threads, md, *trainStep, *reps, *warmup)
	if err != nil {
		fmt.Fprintln(stderr, "cnn bench:", err)
		return 1
	}
	if *roofline != "" {
		if err := writeRoofline(*roofline, res, streamGBPS(*threads)); err != nil {
			fmt.Fprintln(stderr, "cnn bench:", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "cnn bench:", err)
			return 1
		}
		return 0
	}
	writeBench(stdout, res)
	return 0
}

// peakProbe is how long each FMA-peak probe between the timed runs lasts.
const peakProbe = 30 * time.Millisecond

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func bench(name string, batch, threads int, mode runtime.Mode, train bool, reps, warmup int) (*benchResult, error) {
	e, err := generated.Lookup(name)
	if err != nil {
		return nil, err
	}
	m, err := e.New(runtime.Config{MaxBatch: batch, Threads: threads, Mode: mode, Training: train, NoInputGrad: train, Seed: 1})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := runtime.InitTorch(m, 1); err != nil {
		return nil, err
	}
	sm, _ := spec.LoadBuiltin(name) // for the roofline's traffic estimates; nil leaves them out
	prof, ok := m.(runtime.Profiled)
	if !ok {
		return nil, fmt.Errorf("model %s does not report its tasks", name)
	}
	tasks := prof.Tasks()
	times := make([][]time.Duration, len(tasks))
	record := false
	prof.SetProfile(func(i int, d time.Duration) {
		if record {
			times[i] = append(times[i], d)
		}
	})
	c := m.InputShape()
	x := make([]float32, batch*c[0]*c[1]*c[2])
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % m.Classes()
	}
	dl := make([]float32, batch*m.Classes())
	var opt *optim.SGD
	if train {
		m.SetTraining(true)
		if opt, err = optim.NewSGD(m, 0.9, 5e-4, false); err != nil {
			return nil, err
		}
		opt.ZeroGrad = true // Step clears the gradients in its pass: no ZeroGrad before Backward
	}
	run := func() error {
		logits, err := m.Forward(x, batch)
		if err != nil || !train {
			return err
		}
		if _, _, err := runtime.SoftmaxCrossEntropy(logits, labels, m.Classes(), dl); err != nil {
			return err
		}
		if _, err := m.Backward(dl); err != nil {
			return err
		}
		return opt.Step(m, 1e-4)
	}
	for i := 0; i < warmup; i++ {
		if err := run(); err != nil {
			return nil, err
		}
	}
	// After each timed run, a short FMA-peak probe on every thread: the peak the
	// layers are measured against is the probes' median, from the same minutes
	// as the layers' medians (a shared host's speed drifts between minutes).
	var total []time.Duration
	var peaks []float64
	for i := 0; i < reps; i++ {
		record = true
		start := time.Now()
		if err := run(); err != nil {
			return nil, err
		}
		total = append(total, time.Since(start))
		record = false
		peaks = append(peaks, kernels.PeakGFLOPS(threads, peakProbe))
	}
	prof.SetProfile(nil)
	sort.Float64s(peaks)
	peak := peaks[len(peaks)/2]
	res := &benchResult{Model: name, Batch: batch, Threads: threads, Mode: mode.String(), Train: train, ISA: kernels.ISA(),
		Reps: reps, PeakGFLOPS: peak, PeakBestGFLOPS: peaks[len(peaks)-1]}
	med := median(total)
	res.MedianMS = float64(med) / 1e6
	res.MinMS = float64(slicesMin(total)) / 1e6
	var macs int64
	var convFlops float64 // of the convolution tasks, for res.Conv
	for i, t := range tasks {
		if len(times[i]) == 0 {
			continue
		}
		d := median(times[i])
		l := benchLayer{Name: t.Layer, Kind: t.Kind, Phase: t.Phase, Algo: t.Algo, MS: float64(d) / 1e6, MinMS: float64(slicesMin(times[i])) / 1e6}
		flops := 2 * float64(t.MACs) * float64(batch)
		if t.Kind == "conv" && flops > 0 {
			res.Conv.MS += l.MS
			convFlops += float64(flops) // rounded before the sum: no fused multiply-add
		}
		macs += t.MACs * int64(batch)
		if d > 0 && flops > 0 {
			l.GFLOPS = flops / d.Seconds() / 1e9
			if peak > 0 {
				l.PctPeak = 100 * l.GFLOPS / peak
			}
		}
		if d > 0 && t.Bytes > 0 {
			l.GBPS = float64(t.Bytes) / d.Seconds() / 1e9
		}
		if sm != nil && flops > 0 {
			if b := layerTraffic(sm, l, t.Bytes, batch); b > 0 {
				l.Intensity = flops / b
			}
		}
		res.Layers = append(res.Layers, l)
	}
	res.GFLOPS = 2 * float64(macs) / med.Seconds() / 1e9
	if res.Conv.MS > 0 {
		res.Conv.GFLOPS = convFlops / (res.Conv.MS / 1e3) / 1e9
		if peak > 0 {
			res.Conv.PctPeak = 100 * res.Conv.GFLOPS / peak
		}
	}
	return res, nil
}

func slicesMin(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}

func writeBench(w io.Writer, r *benchResult) {
	what := "forward"
	if r.Train {
		what = "training step"
	}
	fmt.Fprintf(w, "%s %s, batch %d, %d threads, %s mode, kernels %s, %d runs\n", r.Model, what, r.Batch, r.Threads, r.Mode, r.ISA, r.Reps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tphase\tkind\talgorithm\tms\tGFLOP/s\t% peak\tGB/s\t")
	for _, l := range r.Layers {
		gb := ""
		if l.GBPS > 0 {
			gb = fmt.Sprintf("%.1f", l.GBPS)
		}
		gf, pct := "", ""
		if l.GFLOPS > 0 {
			gf, pct = fmt.Sprintf("%.1f", l.GFLOPS), fmt.Sprintf("%.0f%%", l.PctPeak)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t\n", l.Name, l.Phase, l.Kind, l.Algo, l.MS, gf, pct, gb)
	}
	tw.Flush()
	if r.Conv.MS > 0 {
		fmt.Fprintf(w, "convolutions: %.2f ms, %.1f GFLOP/s, %.0f%% of the peak (FLOP-weighted)\n", r.Conv.MS, r.Conv.GFLOPS, r.Conv.PctPeak)
	}
	fmt.Fprintf(w, "median %.2f ms (min %.2f), %.1f GFLOP/s; measured FMA peak %.0f GFLOP/s on %d threads (median of a probe after each run; best %.0f)\n", r.MedianMS, r.MinMS, r.GFLOPS, r.PeakGFLOPS, r.Threads, r.PeakBestGFLOPS)
}
