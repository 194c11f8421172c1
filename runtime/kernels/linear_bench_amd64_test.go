//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

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
// plus 1024→256 (1 MiB, L2-resident on the Intel Xeon's 2 MiB L2, filling
// Zen 5's 1 MiB) at batches 1 to 32 (at batch 1 its GB/s is the kernels' rate
// with W in L2, not memory's), 1024→128 (512 KiB, in either L2), 128→64
// (32 KiB, L1-resident) and 4096→64 (1 MiB, fc7's k), which show the kernels'
// own speed; and for the backward kernels 1040→128, whose rows are not a
// multiple of 4 KiB apart (on Zen 5 LinearBackData reads rows 4 KiB apart
// markedly slower, asm/linear/README.md).
var (
	linStreamShapes = []linShape{{1, 4096, 9216}, {1, 4096, 25088}}
	linShapes       = []linShape{
		{1, 4096, 9216}, {1, 4096, 25088}, {1, 1000, 4096},
		{8, 4096, 9216}, {8, 4096, 4096}, {8, 1000, 4096},
		{1, 256, 1024}, {2, 256, 1024}, {4, 256, 1024}, {8, 256, 1024}, {16, 256, 1024}, {32, 256, 1024},
		{8, 64, 128}, {8, 64, 4096},
		{4, 128, 1024}, {8, 128, 1024}, {16, 128, 1024},
	}
	linBackShapes = []linShape{
		{8, 4096, 9216}, {8, 1000, 4096},
		{4, 256, 1024}, {8, 256, 1024}, {16, 256, 1024}, {32, 256, 1024},
		{8, 64, 128},
		{4, 128, 1024}, {8, 128, 1024}, {16, 128, 1024}, {32, 128, 1024},
		{8, 128, 1040},
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

func BenchmarkLinear(b *testing.B) { linForwardBench(b, Linear) }

// linForwardBench is the body of BenchmarkLinear and BenchmarkLinearChain:
// kernel on every ISA and shape.
func linForwardBench(b *testing.B, kernel func(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool)) {
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
				linBench(b, isa, s.cached(), func() { kernel(y, s.n, x, s.k, w, s.k, bias, s.m, s.n, s.k, true) },
					4*float64(s.n*s.k)/1e9, 2*float64(s.m*s.n*s.k)/1e9)
			})
		}
	}
}

// BenchmarkLinearGEMM runs the cached shapes as exact mode runs a linear layer
// whose weights take at most 2 MiB (gen.LinearGEMM): ConvNHWC over the samples
// as pixels of a 1×1 convolution with K input channels, one call per block of
// NR outputs, on the weights packed [block][K][NR] (nn.PackConv's layout).
func BenchmarkLinearGEMM(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linShapes {
			if !s.cached() {
				continue
			}
			b.Run(isa+"/"+s.String(), func(b *testing.B) {
				linBenchISA(b, isa)
				nb := (s.n + NR - 1) / NR
				x := make([]float32, s.m*s.k)
				w := make([]float32, s.n*s.k)
				bias := make([]float32, nb*NR)
				y := make([]float32, s.m*s.n)
				linBenchFill(x)
				linBenchFill(w)
				linBenchFill(bias[:s.n])
				pack := linearGEMMPack(w, s.n, s.k)
				f := func() { linearGEMMRun(y, x, pack, bias, s.m, s.n, s.k, true) }
				linBoundBench(b, isa, s, f, false, nb*NR*s.k)
			})
		}
	}
}

// The GEMM and the backward kernels on the cached shapes are bound either by
// the FMAs or by one stream of L2 traffic that no tile can avoid: the GEMM
// and LinearBackData read each (packed) W element once per call (m FMA lanes
// each), LinearBackWeight loads and stores each dW element once per call (m
// FMA lanes each). At m = 2 that is 2 bytes of W per FMA lane, which L2
// cannot deliver at the FMA rate; around m = 4 (GEMM, LinearBackData) or 8
// (LinearBackWeight) the two limits are about equal. linBoundBench
// times the kernel in slices interleaved with the FMA-peak loop and with a
// probe of that traffic over a buffer of the same size (linearStreamRead for
// W, linearStreamUpdate for dW: stream-GB/s), and reports the kernel's best
// rate against both: best-GFLOP/s and %peak, best-GB/s and %stream. Which
// one bounds the shape is the one whose ideal time (FLOPs at the peak rate,
// bytes at the stream rate) is longer: %bound is the kernel's best rate as a
// percentage of that limit, max(%peak, %stream), and bound-mem is 1 if the
// traffic is the longer (asm/linear/README.md). Uncached shapes report only
// the mean rates (GB/s of that traffic, GFLOP/s).
func linBoundBench(b *testing.B, isa string, s linShape, f func(), update bool, elems int) {
	bytes := 4 * float64(elems)
	if update {
		bytes *= 2
	}
	gflop := 2 * float64(s.m*s.n*s.k) / 1e9
	linBench(b, isa, false, f, bytes/1e9, gflop)
	if !s.cached() {
		return
	}
	best, peak, stream := linBoundRatio(isa, elems, update, f)
	if peak == 0 || stream == 0 {
		return
	}
	pp, ps := 100*gflop*1e9*best/peak, 100*bytes*best/stream
	b.ReportMetric(gflop*best, "best-GFLOP/s")
	b.ReportMetric(pp, "%peak")
	b.ReportMetric(bytes*best/1e9, "best-GB/s")
	b.ReportMetric(stream/1e9, "stream-GB/s")
	b.ReportMetric(ps, "%stream")
	b.ReportMetric(max(pp, ps), "%bound")
	mem := 0.0
	if ps > pp {
		mem = 1
	}
	b.ReportMetric(mem, "bound-mem")
}

// linBoundRatio runs kernel, the FMA-peak loop of isa and a traffic probe over
// n float32s (rounded up to its unroll: linearStreamUpdate if update, else
// linearStreamRead) in alternating short slices, like peakRatio, and returns
// the best slice rate of each: kernel calls/s, FLOP/s, bytes/s. It returns
// zeros if the CPU lacks isa.
func linBoundRatio(isa string, n int, update bool, kernel func()) (best, peak, stream float64) {
	probe, fpi := peakProbe(isa)
	if probe == nil {
		return 0, 0, 0
	}
	read, rmw, unroll := linearStreamRead_avx512, linearStreamUpdate_avx512, 128
	if isa == "avx2" {
		read, rmw, unroll = linearStreamRead_avx2, linearStreamUpdate_avx2, 64
	}
	buf := make([]float32, (n+unroll-1)/unroll*unroll)
	linBenchFill(buf)
	traffic := func() { read(&buf[0], len(buf)) }
	bytes := 4 * float64(len(buf))
	if update {
		traffic = func() { rmw(&buf[0], len(buf)) }
		bytes *= 2
	}
	const slice = 500 * time.Microsecond
	rate := func(f func(), amount float64) float64 {
		k := 0
		t := time.Now()
		for time.Since(t) < slice {
			f()
			k++
		}
		return float64(k) * amount / time.Since(t).Seconds()
	}
	const iters = 1 << 10
	probeCall := func() { probe(iters) }
	rate(kernel, 1) // warm up caches and clocks
	for range 40 {
		best = max(best, rate(kernel, 1))
		peak = max(peak, rate(probeCall, fpi*iters))
		stream = max(stream, rate(traffic, bytes))
	}
	return best, peak, stream
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
				linBoundBench(b, isa, s, func() { LinearBackData(dx, s.k, dy, s.n, w, s.k, s.m, s.n, s.k) }, false, s.n*s.k)
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
				linBoundBench(b, isa, s, func() { LinearBackWeight(dw, s.k, dy, s.n, x, s.k, s.m, s.n, s.k) }, true, s.n*s.k)
			})
		}
	}
}
