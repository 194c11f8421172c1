//go:build amd64 && !purego

package kernels

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// convISAs lists the implementations that ConvNHWC and ConvWgrad dispatch to
// on amd64, each with the dispatch flags that select it (x/crypto's blake2b
// test does the same): AVX-512, AVX2, then the pure-Go twin.
func convISAs() []convISA {
	a512, a2 := useAVX512, useAVX2
	return []convISA{
		{"avx512", a512, func() { useAVX512, useAVX2 = true, false }},
		{"avx2", a2, func() { useAVX512, useAVX2 = false, true }},
		{"go", true, func() { useAVX512, useAVX2 = false, false }},
	}
}

// convRestoreISA returns a function restoring the dispatch flags.
func convRestoreISA() func() {
	a512, a2 := useAVX512, useAVX2
	return func() { useAVX512, useAVX2 = a512, a2 }
}

// TestConvAVX2NoEVEX checks that the register allocator gave the AVX2
// kernels only Y0-Y15 and no AVX-512 instruction: avo lists what each
// function requires above its TEXT line.
func TestConvAVX2NoEVEX(t *testing.T) {
	f, err := os.Open("conv_amd64.s")
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
		t.Fatal("no AVX2 kernel found in conv_amd64.s")
	}
}

// convBenchShapes are one output row of a layer (np pixels × 32 output
// channels) with its operands in L1/L2: 3×3 stride 1 on 64 and 256 channels
// (VGG), 1×1 on 256, and AlexNet's first layer (11×11 stride 4 on RGB).
var convBenchShapes = []struct {
	name                   string
	np, C, k, stride, cout int
}{
	{"3x3/C=64", 56, 64, 3, 1, 64},
	{"3x3/C=256", 56, 256, 3, 1, 256},
	{"1x1/C=256", 56, 256, 1, 1, 256},
	{"11x11s4/C=3", 55, 3, 11, 4, 96},
}

// convReport reports the kernel's mean rate over the benchmark loop
// (GFLOP/s), and for the assembly its best rate in short slices interleaved
// with the FMA-peak loop of the same vector width (best-GFLOP/s) and that as a
// percentage of the peak loop's best rate (%peak): see peakRatio. On a shared
// machine the mean includes time the benchmark was preempted; the ratio does
// not.
func convReport(b *testing.B, isa string, flop float64, kernel func()) {
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if best, peak := peakRatio(isa, flop, kernel); peak > 0 {
		b.ReportMetric(best/1e9, "best-GFLOP/s")
		b.ReportMetric(100*best/peak, "%peak")
	}
}

func convBenchISAs(b *testing.B, f func(b *testing.B, isa string)) {
	defer convRestoreISA()()
	for _, isa := range convISAs() {
		b.Run(isa.name, func(b *testing.B) {
			if !isa.has {
				b.Skipf("CPU lacks %s", isa.name)
			}
			isa.use()
			f(b, isa.name)
		})
	}
}

func BenchmarkConvNHWC(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range convBenchShapes {
		b.Run(s.name, func(b *testing.B) {
			wide := (s.np-1)*s.stride + s.k
			sx, sy, sc := s.stride*s.C, wide*s.C, s.C
			in := make([]float32, (s.k-1)*sy+wide*s.C)
			w := convAligned(s.k * s.k * s.C * NR)
			bias := make([]float32, NR)
			out := make([]float32, s.np*s.cout)
			convFill(rng, in, 0)
			convFill(rng, w, 0)
			flop := 2 * float64(s.np*NR*s.k*s.k*s.C)
			convBenchISAs(b, func(b *testing.B, isa string) {
				kernel := func() { ConvNHWC(out, s.cout, in, sx, sy, sc, s.C, s.k, s.k, w, bias, s.np, NR, true) }
				for b.Loop() {
					kernel()
				}
				convReport(b, isa, flop, kernel)
			})
		})
	}
}

// BenchmarkConvNHWCTaps runs the 3×3 C=256 row through the kernels' general
// loop nest (kh × kw taps of cin channels), which ConvNHWC replaces by one run
// of kw*cin channels per kernel row when sc == cin: the cost of the taps loop.
func BenchmarkConvNHWCTaps(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const np, C, k = 56, 256, 3
	sx, sy, sc := C, (np-1+k)*C, C
	in := make([]float32, (k-1)*sy+(np-1+k)*C)
	w := convAligned(k * k * C * NR)
	bias := make([]float32, NR)
	out := make([]float32, np*C)
	convFill(rng, in, 0)
	convFill(rng, w, 0)
	flop := 2 * float64(np*NR*k*k*C)
	for _, v := range []struct {
		isa string
		has bool
		f   func(out *float32, so int, in *float32, sx, sy, sc, cin, kh, kw int, w, bias *float32, np, nr int, relu bool, pf *float32, pfn int, pf2 *float32, pfn2 int, pf3 *float32, pfn3 int, pfk int)
	}{
		{"avx512", useAVX512, convNHWC_14x32_avx512},
		{"avx2", useAVX2, convNHWC_6x16_avx2},
	} {
		b.Run(v.isa, func(b *testing.B) {
			if !v.has {
				b.Skipf("CPU lacks %s", v.isa)
			}
			kernel := func() {
				v.f(&out[0], C, &in[0], sx, sy, sc, C, k, k, &w[0], &bias[0], np, NR, true, &w[0], 0, &w[0], 0, &w[0], 0, 1)
			}
			for b.Loop() {
				kernel()
			}
			convReport(b, v.isa, flop, kernel)
		})
	}
}

// convWgradBenchShapes are weight-gradient runs with dw, x and dy in L1/L2:
// one tap over one output row (nrows = 1: 56 pixels of C = 64 and 256, and
// 224 pixels), and a kernel row's taps merged into one channel run (nc =
// kw*cin, the generator's call) over several output rows: AlexNet's conv4
// (3×384 channels, 13×13 pixels) and conv1 (11×3 channels at stride 4, 8 rows
// of 55 pixels), a VGG-like 3×64 on 4 rows of 56, and VGG-16's calls at 56², 28²
// and 14² (32 of 256 or 512 output-gradient channels per pixel).
var convWgradBenchShapes = []struct {
	name                       string
	nc, np, nrows, sx, sxr, so int
}{
	{"np=56,C=64", 64, 56, 1, 64, 0, 64},
	{"np=56,C=256", 256, 56, 1, 256, 0, 256},
	{"np=224,C=64", 64, 224, 1, 64, 0, 64},
	{"conv4:nc=1152,13x13", 3 * 384, 13, 13, 384, 15 * 384, 384},
	{"conv1:nc=33,8x55", 11 * 3, 55, 8, 4 * 3, 4 * 227 * 3, 96},
	{"nc=192,4x56", 3 * 64, 56, 4, 64, 58 * 64, 64},
	{"vgg:nc=768,7x56", 3 * 256, 56, 7, 256, 58 * 256, 256},
	{"vgg:nc=1536,7x28", 3 * 512, 28, 7, 512, 30 * 512, 512},
	{"vgg:nc=1536,14x14", 3 * 512, 14, 14, 512, 16 * 512, 512},
}

// BenchmarkConvWgrad accumulates the weight gradient of convWgradBenchShapes
// for 32 output channels.
func BenchmarkConvWgrad(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range convWgradBenchShapes {
		b.Run(s.name, func(b *testing.B) {
			sor := s.np * s.so
			x := make([]float32, (s.nrows-1)*s.sxr+(s.np-1)*s.sx+s.nc)
			dy := make([]float32, (s.nrows-1)*sor+(s.np-1)*s.so+NR)
			dw := convAligned(s.nc * NR)
			convFill(rng, x, 0)
			convFill(rng, dy, 0)
			flop := 2 * float64(s.nrows*s.np*s.nc*NR)
			convBenchISAs(b, func(b *testing.B, isa string) {
				kernel := func() { ConvWgrad(dw, x, s.sx, s.sxr, dy, s.so, sor, s.np, s.nrows, s.nc, NR) }
				for b.Loop() {
					kernel()
				}
				convReport(b, isa, flop, kernel)
			})
		})
	}
}

// TestConvTilePasses2 checks the AVX2 prefetch pacing's count of channel-loop
// runs against the tilings asm/conv documents: full 6-pixel tiles in two
// passes of 16 channels, a rest of 7–9 as n-3 then 3, 10–11 as halves, and
// tiles of at most 3 pixels in one pass of all 32 channels.
func TestConvTilePasses2(t *testing.T) {
	for _, c := range []struct{ np, nr, want int }{
		{1, 32, 1}, {3, 32, 1}, {4, 32, 2}, {6, 32, 2},
		{7, 32, 3},    // 4+3
		{8, 32, 3},    // 5+3
		{9, 32, 3},    // 6+3
		{10, 32, 4},   // 5+5
		{12, 32, 4},   // 6+6
		{13, 32, 5},   // 6+4+3
		{14, 32, 5},   // 6+5+3
		{56, 32, 19},  // 8×6+5+3
		{8, 16, 2},    // 5+3, one pass of 16
		{224, 32, 75}, // 36×6+5+3
	} {
		if got := convTilePasses2(c.np, c.nr); got != c.want {
			t.Errorf("convTilePasses2(%d, %d) = %d, want %d", c.np, c.nr, got, c.want)
		}
	}
}
