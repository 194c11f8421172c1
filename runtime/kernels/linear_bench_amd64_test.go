//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"

	"golang.org/x/sys/unix"
)

// Benchmarks of the linear kernels. Batch 1 streams W from memory, so it
// reports GB/s of W next to BenchmarkLinearStream, which reads buffers of the
// same sizes with plain vector loads in the same run; the other shapes report
// GFLOP/s, to be read against BenchmarkPeakFMA (peak_amd64_test.go) run in the
// same invocation:
//
//	go test -run '^$' -bench 'PeakFMA|Linear' -count 5 ./runtime/kernels/
//
// The shapes whose W stays in L2 also report %peak, the kernel's best rate
// against the FMA peak's, both measured in alternating short slices of the same
// benchmark (peakRatio).
//
// Every rate is also given per second of the benchmark thread's CPU time
// (the "-cpu" metrics): on a shared machine other processes take the core
// away for whole time slices, which these leave out (not the memory traffic
// those processes cause).

// linBenchFill fills v with small normal values cheaply (no subnormals, which
// would slow some CPUs down).
func linBenchFill(v []float32) {
	for i := range v {
		v[i] = float32(i%97)*0.01 - 0.48
	}
}

// linBenchISA forces dispatch to isa for one benchmark, or skips it.
func linBenchISA(b *testing.B, isa string) {
	if !linHas[isa] {
		b.Skipf("CPU lacks %s", isa)
	}
	b.Cleanup(linUse(isa))
}

func linThreadSeconds() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}

// linBench times f and reports gb GB and gflop GFLOP per call as rates per
// wall second and per thread CPU second (a zero amount is not reported).
// With peak, it also reports f's best rate in short slices interleaved with
// the FMA-peak loop of isa (best-GFLOP/s) and that as a percentage of the
// peak loop's best rate in the same slices (%peak): see peakRatio.
func linBench(b *testing.B, isa string, peak bool, f func(), gb, gflop float64) {
	defer func() {
		runtime.GC()
		debug.FreeOSMemory() // return the big buffers before the next benchmark
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f() // fault the pages in
	b.ResetTimer()
	cpu0 := linThreadSeconds()
	for b.Loop() {
		f()
	}
	cpu := linThreadSeconds() - cpu0
	wall := b.Elapsed().Seconds()
	n := float64(b.N)
	if gb > 0 {
		b.ReportMetric(gb*n/wall, "GB/s")
		b.ReportMetric(gb*n/cpu, "GB/s-cpu")
	}
	if gflop > 0 {
		b.ReportMetric(gflop*n/wall, "GFLOP/s")
		b.ReportMetric(gflop*n/cpu, "GFLOP/s-cpu")
	}
	if peak && gflop > 0 {
		if best, pk := peakRatio(isa, gflop*1e9, f); pk > 0 {
			b.ReportMetric(best/1e9, "best-GFLOP/s")
			b.ReportMetric(100*best/pk, "%peak")
		}
	}
}

type linShape struct{ m, n, k int }

func (s linShape) String() string { return fmt.Sprintf("b%d/%dx%d", s.m, s.n, s.k) }

// cached reports whether the shape's W (n·k float32s, 2 MiB at most) stays in
// a core's L2 across calls: its rate is the kernels' own, and the benchmarks
// report it against the FMA peak.
func (s linShape) cached() bool { return 4*s.n*s.k <= 2<<20 }

// The benchmark shapes: AlexNet's fc6 (9216→4096, 151 MB of W), VGG's fc6
// (25088→4096, 411 MB), fc7 (4096→4096, 67 MB) and fc8 (4096→1000, 16 MB),
// plus 1024→256 (1 MB, L2-resident) at batches 2 to 32 and 128→64 (32 KiB,
// L1-resident), which show the kernels' own speed.
var (
	linStreamShapes = []linShape{{1, 4096, 9216}, {1, 4096, 25088}}
	linShapes       = []linShape{
		{1, 4096, 9216}, {1, 4096, 25088}, {1, 1000, 4096},
		{8, 4096, 9216}, {8, 4096, 4096}, {8, 1000, 4096},
		{2, 256, 1024}, {4, 256, 1024}, {8, 256, 1024}, {16, 256, 1024}, {32, 256, 1024},
		{8, 64, 128},
	}
	linBackShapes = []linShape{
		{8, 4096, 9216}, {8, 1000, 4096},
		{4, 256, 1024}, {8, 256, 1024}, {16, 256, 1024}, {32, 256, 1024},
		{8, 64, 128},
	}
)

// BenchmarkLinearStream reads n·k float32s (the W of a shape) per op with
// linearStreamRead: the bandwidth a batch-1 Linear can reach at best.
func BenchmarkLinearStream(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linStreamShapes {
			b.Run(fmt.Sprintf("%s/%dx%d", isa, s.n, s.k), func(b *testing.B) {
				linBenchISA(b, isa)
				p := make([]float32, s.n*s.k)
				linBenchFill(p)
				read := linearStreamRead_avx512
				if isa == "avx2" {
					read = linearStreamRead_avx2
				}
				linBench(b, isa, false, func() { read(&p[0], len(p)) }, 4*float64(len(p))/1e9, 0)
			})
		}
	}
}

func BenchmarkLinear(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linShapes {
			b.Run(isa+"/"+s.String(), func(b *testing.B) {
				linBenchISA(b, isa)
				x := make([]float32, s.m*s.k)
				w := make([]float32, s.n*s.k)
				bias := make([]float32, s.n)
				y := make([]float32, s.m*s.n)
				linBenchFill(x)
				linBenchFill(w)
				linBenchFill(bias)
				linBench(b, isa, s.cached(), func() { Linear(y, s.n, x, s.k, w, s.k, bias, s.m, s.n, s.k, true) },
					4*float64(s.n*s.k)/1e9, 2*float64(s.m*s.n*s.k)/1e9)
			})
		}
	}
}

func BenchmarkLinearBackData(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linBackShapes {
			b.Run(isa+"/"+s.String(), func(b *testing.B) {
				linBenchISA(b, isa)
				dy := make([]float32, s.m*s.n)
				w := make([]float32, s.n*s.k)
				dx := make([]float32, s.m*s.k)
				linBenchFill(dy)
				linBenchFill(w)
				linBench(b, isa, s.cached(), func() { LinearBackData(dx, s.k, dy, s.n, w, s.k, s.m, s.n, s.k) },
					4*float64(s.n*s.k)/1e9, 2*float64(s.m*s.n*s.k)/1e9)
			})
		}
	}
}

func BenchmarkLinearBackWeight(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linBackShapes {
			b.Run(isa+"/"+s.String(), func(b *testing.B) {
				linBenchISA(b, isa)
				dy := make([]float32, s.m*s.n)
				x := make([]float32, s.m*s.k)
				dw := make([]float32, s.n*s.k)
				linBenchFill(dy)
				linBenchFill(x)
				// GB/s counts dW read and written.
				linBench(b, isa, s.cached(), func() { LinearBackWeight(dw, s.k, dy, s.n, x, s.k, s.m, s.n, s.k) },
					8*float64(s.n*s.k)/1e9, 2*float64(s.m*s.n*s.k)/1e9)
			})
		}
	}
}
