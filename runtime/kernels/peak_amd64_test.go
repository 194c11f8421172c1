//go:build amd64 && !purego

package kernels

import (
	"testing"
	"time"
)

// peakProbe returns the FMA-peak loop of an instruction set ("avx512": zmm,
// "avx2": ymm) and the FLOPs of one of its iterations, or nil if this CPU
// lacks it.
func peakProbe(isa string) (probe func(n int), flopPerIter float64) {
	switch {
	case isa == "avx512" && useAVX512:
		return peakFMA_12x2_avx512, 24 * 16 * 2
	case isa == "avx2" && useAVX2:
		return peakFMA_12x2_avx2, 24 * 8 * 2
	}
	return nil, 0
}

// peakRatio measures kernel, which performs flop FLOPs per call, against the
// FMA peak of isa in the same run: it times the kernel and the peak loop in
// alternating short slices and returns the best slice rate of each (FLOP/s).
// The machines are shared: other processes preempt the benchmark, and a
// neighbour on the core's sibling thread takes FMA slots, both for
// milliseconds at a time, so the best of many short interleaved slices is the
// undisturbed rate of each, and their ratio is the kernel's efficiency.
// It returns zeros if the CPU lacks isa.
func peakRatio(isa string, flop float64, kernel func()) (best, peak float64) {
	probe, fpi := peakProbe(isa)
	if probe == nil {
		return 0, 0
	}
	const slice = 500 * time.Microsecond
	rate := func(f func(), flop float64) float64 {
		n := 0
		t := time.Now()
		for time.Since(t) < slice {
			f()
			n++
		}
		return float64(n) * flop / time.Since(t).Seconds()
	}
	const iters = 1 << 10
	probeCall := func() { probe(iters) }
	rate(kernel, flop) // warm up caches and clocks
	for range 40 {
		best = max(best, rate(kernel, flop))
		peak = max(peak, rate(probeCall, fpi*iters))
	}
	return best, peak
}

func BenchmarkPeakFMA(b *testing.B) {
	for _, isa := range []string{"avx512", "avx2"} {
		b.Run(isa, func(b *testing.B) {
			probe, fpi := peakProbe(isa)
			if probe == nil {
				b.Skipf("CPU lacks %s", isa)
			}
			const n = 1 << 12
			for b.Loop() {
				probe(n)
			}
			b.ReportMetric(float64(b.N)*n*fpi/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
