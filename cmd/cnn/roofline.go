package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/spec"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// layerTraffic estimates the bytes a task moves to and from memory: its input and
// output activations for the batch and its weights (linear weights at the bytes the
// task reports, halved in fast mode; Winograd's transformed weights, 4× a 3×3
// kernel's). It returns 0 for a task it cannot place in the spec.
func layerTraffic(sm *spec.Model, l benchLayer, weightBytes int64, batch int) float64 {
	name, _, _ := strings.Cut(l.Name, "+")
	for _, sl := range sm.Layers {
		if sl.Name != name {
			continue
		}
		b := 4 * float64(batch) * float64(sl.In.Size()+sl.Out.Size())
		switch {
		case weightBytes > 0:
			b += float64(weightBytes)
		case strings.Contains(l.Algo, "winograd"):
			b += 4 * 4 * float64(sl.NumParams())
		default:
			b += 4 * float64(sl.NumParams())
		}
		return b
	}
	return 0
}

// streamGBPS measures the read bandwidth the batch-1 linear kernel reaches on a
// 256 MiB weight matrix (it streams its weights; the best of three runs), the
// memory roof of the roofline.
func streamGBPS(threads int) float64 {
	const n, k = 4096, 16384
	w := make([]float32, n*k)
	for i := range w {
		w[i] = 1
	}
	x, y := make([]float32, k), make([]float32, n)
	best := time.Duration(math.MaxInt64)
	for r := 0; r < 3; r++ {
		start := time.Now()
		done := make(chan struct{}, threads)
		for t := 0; t < threads; t++ {
			lo, hi := n*t/threads, n*(t+1)/threads
			go func() {
				kernels.Linear(y[lo:], n, x, k, w[lo*k:], k, nil, 1, hi-lo, k, false)
				done <- struct{}{}
			}()
		}
		for t := 0; t < threads; t++ {
			<-done
		}
		best = min(best, time.Since(start))
	}
	return 4 * float64(n*k) / best.Seconds() / 1e9
}

// writeRoofline draws the layers of a bench run as points (arithmetic intensity,
// GFLOP/s) under the roofs of the measured FMA peak and memory bandwidth. GFLOP/s
// count a direct convolution's FLOPs, so fast mode's Winograd layers can sit above
// the peak: that is the work they save.
func writeRoofline(path string, r *benchResult, gbps float64) error {
	p := plot.New()
	what := "forward"
	if r.Train {
		what = "training step"
	}
	p.Title.Text = fmt.Sprintf("%s %s, batch %d, %d threads, %s mode", r.Model, what, r.Batch, r.Threads, r.Mode)
	p.X.Label.Text = "arithmetic intensity (FLOP/byte)"
	p.Y.Label.Text = "GFLOP/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	var pts plotter.XYs
	var labels []string
	lo, hi := math.Inf(1), 0.0
	for _, l := range r.Layers {
		if l.GFLOPS <= 0 || l.Intensity <= 0 {
			continue
		}
		pts = append(pts, plotter.XY{X: l.Intensity, Y: l.GFLOPS})
		name, _, _ := strings.Cut(l.Name, "+")
		if l.Phase != "forward" {
			name += " " + strings.TrimPrefix(l.Phase, "backward ")
		}
		labels = append(labels, name)
		lo, hi = min(lo, l.Intensity), max(hi, l.Intensity)
	}
	if len(pts) == 0 {
		return fmt.Errorf("roofline: no layer with FLOPs to draw")
	}
	// The pure-Go kernels have no FMA-peak probe (PeakGFLOPS is 0): then only
	// the bandwidth roof is drawn.
	peak := r.PeakGFLOPS
	if peak > 0 {
		lo, hi = min(lo/2, peak/gbps/4), max(hi*2, peak/gbps*4)
	} else {
		lo, hi, peak = lo/2, hi*2, math.Inf(1)
	}
	var roof plotter.XYs
	for i := 0; i <= 64; i++ {
		x := lo * math.Pow(hi/lo, float64(i)/64)
		roof = append(roof, plotter.XY{X: x, Y: min(peak, gbps*x)})
	}
	line, err := plotter.NewLine(roof)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 200, A: 255}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.Color = color.RGBA{B: 200, A: 255}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font.Size = vg.Points(6)
	}
	p.Add(line, sc, lb)
	if r.PeakGFLOPS > 0 {
		p.Legend.Add(fmt.Sprintf("roofs: %.0f GFLOP/s peak, %.1f GB/s read", r.PeakGFLOPS, gbps), line)
	} else {
		p.Legend.Add(fmt.Sprintf("roof: %.1f GB/s read (no FMA peak for the pure-Go kernels)", gbps), line)
	}
	p.Legend.Add("layers", sc)
	p.Legend.Top, p.Legend.Left = true, true
	wt, err := p.WriterTo(8*vg.Inch, 6*vg.Inch, "png")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".roofline-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
