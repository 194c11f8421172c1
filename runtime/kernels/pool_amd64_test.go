//go:build amd64 && !purego

package kernels

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPoolAVX2NoEVEX checks that the AVX2 pooling kernel got only Y0-Y15 and
// no AVX-512 instruction: avo lists what each function requires above its
// TEXT line.
func TestPoolAVX2NoEVEX(t *testing.T) {
	f, err := os.Open("pool_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var requires string
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "// Requires: "); ok {
			requires = r
		}
		if strings.HasPrefix(line, "TEXT ·") && strings.Contains(line, "_avx2(") {
			n++
			if strings.Contains(requires, "AVX512") {
				t.Errorf("%s requires %s", line, requires)
			}
		}
	}
	if n == 0 {
		t.Fatal("no AVX2 kernel found in pool_amd64.s")
	}
}

// poolBenchShapes are the models' first pools — VGG-16: 64 channels, 224×224
// → 112×112, 2×2 stride 2; AlexNet: 96 channels, 55×55 → 27×27, 3×3 stride 2
// — as one output row (its input rows in L1/L2, as right after the
// convolution that wrote them), and as the whole layer (VGG-16 batch 1: 12.8
// MB; AlexNet batch 8: 9.3 MB) in one call per output row, as the generated
// code makes them. GB/s counts the input each op covers once (3×3/2 windows
// overlap: they load 1.5× that), which is what a streaming read of the same
// buffer reads.
var poolBenchShapes = []struct {
	name         string
	c, w, k, s   int // channels, input width, window, stride
	ow           int // output width
	rows, images int // output rows per image, images
}{
	{name: "vgg1-row", c: 64, w: 224, k: 2, s: 2, ow: 112, rows: 1, images: 1},
	{name: "alexnet1-row", c: 96, w: 55, k: 3, s: 2, ow: 27, rows: 1, images: 1},
	{name: "vgg1-layer-b1", c: 64, w: 224, k: 2, s: 2, ow: 112, rows: 112, images: 1},
	{name: "alexnet1-layer-b8", c: 96, w: 55, k: 3, s: 2, ow: 27, rows: 27, images: 8},
}

// BenchmarkMaxPoolNHWC reports the kernels' read bandwidth (GB/s, mean over
// the benchmark loop), and for the assembly the best rate of short slices
// interleaved with slices of linearStreamRead over a buffer of the same size
// (best-GB/s, stream-GB/s) and their ratio (%stream): see poolStreamRatio.
//
//	go test -run '^$' -bench MaxPoolNHWC -benchtime 0.2s -count 3 ./runtime/kernels/
func BenchmarkMaxPoolNHWC(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range poolBenchShapes {
		b.Run(s.name, func(b *testing.B) {
			irs := s.w * s.c                   // input row stride
			is := ((s.rows-1)*s.s + s.k) * irs // input rows of an image
			ors := s.ow * s.c                  // output row stride
			in := make([]float32, s.images*is)
			out := make([]float32, s.images*s.rows*ors)
			for i := range in {
				in[i] = poolValue(rng, 0)
			}
			kernel := func() {
				for img := range s.images {
					for r := range s.rows {
						MaxPoolNHWC(out[(img*s.rows+r)*ors:], s.c, in[img*is+r*s.s*irs:], s.s*s.c, irs, s.c, s.c, s.k, s.k, s.ow)
					}
				}
			}
			bytes := 4 * float64(len(in))
			convBenchISAs(b, func(b *testing.B, isa string) {
				kernel()
				for b.Loop() {
					kernel()
				}
				b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				if best, stream := poolStreamRatio(isa, len(in), kernel); stream > 0 {
					b.ReportMetric(best/1e9, "best-GB/s")
					b.ReportMetric(stream/1e9, "stream-GB/s")
					b.ReportMetric(100*best/stream, "%stream")
				}
			})
		})
	}
}

// poolStreamRatio measures kernel, which reads n float32s per call, against
// linearStreamRead of the same ISA over a buffer of n float32s (rounded up to
// its unroll) in the same run: like peakRatio, it alternates short slices of
// each and returns the best slice rate of each (bytes/s), or zeros for the
// pure-Go kernel.
func poolStreamRatio(isa string, n int, kernel func()) (best, stream float64) {
	read, unroll := linearStreamRead_avx512, 128
	switch {
	case isa == "avx512" && useAVX512:
	case isa == "avx2" && useAVX2:
		read, unroll = linearStreamRead_avx2, 64
	default:
		return 0, 0
	}
	buf := make([]float32, (n+unroll-1)/unroll*unroll)
	for i := range buf {
		buf[i] = float32(i % 97)
	}
	const slice = 500 * time.Microsecond
	rate := func(f func(), bytes float64) float64 {
		k := 0
		t := time.Now()
		for time.Since(t) < slice {
			f()
			k++
		}
		return float64(k) * bytes / time.Since(t).Seconds()
	}
	probe := func() { read(&buf[0], len(buf)) }
	rate(kernel, 0) // warm up caches and clocks
	rate(probe, 0)
	for range 40 {
		best = max(best, rate(kernel, 4*float64(n)))
		stream = max(stream, rate(probe, 4*float64(len(buf))))
	}
	return best, stream
}

// BenchmarkMaxPoolNHWCArg is BenchmarkMaxPoolNHWC for MaxPoolNHWCArg (the
// training forward pass), same shapes and GB/s (the input read once; the
// kernel also writes an int32 position per output value).
//
//	go test -run '^$' -bench MaxPoolNHWCArg -benchtime 0.2s -count 3 ./runtime/kernels/
func BenchmarkMaxPoolNHWCArg(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range poolBenchShapes {
		b.Run(s.name, func(b *testing.B) {
			irs := s.w * s.c
			is := ((s.rows-1)*s.s + s.k) * irs
			ors := s.ow * s.c
			in := make([]float32, s.images*is)
			out := make([]float32, s.images*s.rows*ors)
			arg := make([]int32, len(out))
			for i := range in {
				in[i] = poolValue(rng, 0)
			}
			kernel := func() {
				for img := range s.images {
					for r := range s.rows {
						o := (img*s.rows + r) * ors
						MaxPoolNHWCArg(out[o:], s.c, arg[o:], s.c, in[img*is+r*s.s*irs:], s.s*s.c, irs, s.c, s.c, s.k, s.k, s.ow,
							r*s.s*s.w, s.s, s.w)
					}
				}
			}
			bytes := 4 * float64(len(in))
			convBenchISAs(b, func(b *testing.B, isa string) {
				kernel()
				for b.Loop() {
					kernel()
				}
				b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				if best, stream := poolStreamRatio(isa, len(in), kernel); stream > 0 {
					b.ReportMetric(best/1e9, "best-GB/s")
					b.ReportMetric(stream/1e9, "stream-GB/s")
					b.ReportMetric(100*best/stream, "%stream")
				}
			})
		})
	}
}
