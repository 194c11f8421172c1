//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Tests of each LinearBF16 assembly variant against the pure-Go twin and
// against Linear (the same ISA's float32 kernels) on the widened weights, with
// the helpers of linear_amd64_test.go: inputs end right before a PROT_NONE
// page, outputs sit among sentinels. Then the benchmarks.

// tailBF16 hands out n bfloat16s that end right before a PROT_NONE page.
func (a *linArena) tailBF16(t testing.TB, n int) []uint16 {
	f := a.tail(t, (n+1)/2)
	h := unsafe.Slice((*uint16)(unsafe.Pointer(&f[0])), 2*len(f))
	return h[len(h)-n:]
}

// bf16FillMode fills w like linFillMode (then rounds to bfloat16); mode 5
// draws arbitrary bit patterns (NaN payloads, signalling NaNs, ±Inf,
// subnormals) at a rate that leaves most sums finite.
func bf16FillMode(rng *rand.Rand, w []uint16, mode, k int) {
	f := make([]float32, len(w))
	linFillMode(rng, f, min(mode, 4), k, false)
	BF16(w, f)
	if mode == 5 {
		for i := range w {
			if rng.IntN(k+8) < 4 {
				w[i] = uint16(rng.Uint32())
			}
		}
	}
}

// linBF16Case runs one shape through every variant and compares it with the
// Go twin and with the same variant's Linear on the widened W.
func linBF16Case(t *testing.T, isas []string, x []float32, ldx int, w []uint16, ldw int, bias []float32, m, n, k, ldy int, relu bool, what string) {
	t.Helper()
	want := linOutBuf((m-1)*ldy + n)
	linearBF16Go(want[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu)
	wf := bf16Widen(w)
	for _, isa := range isas {
		what := fmt.Sprintf("%s %s relu=%v bias=%v", isa, what, relu, bias != nil)
		got := linOutBuf((m-1)*ldy + n)
		ref := linOutBuf((m-1)*ldy + n)
		restore := linUse(isa)
		linCatch(t, what, func() { linearBF16(got[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu, nil) })
		linear(ref[linGuard:], ldy, x, ldx, wf, ldw, bias, m, n, k, relu)
		// The caller's buffer for the partial sums, exactly as long as
		// LinearBF16BufLen says: a dispatch that needed more would panic.
		gotBuf := linOutBuf((m-1)*ldy + n)
		linCatch(t, what+" (LinearBF16Buf)", func() {
			linearBF16(gotBuf[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu, make([]float32, LinearBF16BufLen(m, n)))
		})
		restore()
		linCompare(t, what, got, want, m, n, ldy)
		linCompare(t, what+" (LinearBF16Buf)", gotBuf, want, m, n, ldy)
		linCompare(t, what+" (vs Linear on the widened W)", got, ref, m, n, ldy)
	}
}

// TestLinearBF16PartRows checks that no dispatch holds partial sums for more
// outputs at once than LinearBF16BufLen provides for.
func TestLinearBF16PartRows(t *testing.T) {
	for _, ks := range []*linearBF16Kernels{&linearBF16AVX512, &linearBF16AVX2} {
		if r := ks.rows * linearPartTiles; r > linearPartRows {
			t.Errorf("row chunks of %d outputs, LinearBF16BufLen allows %d", r, linearPartRows)
		}
	}
}

func TestLinearBF16KernelsMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(31, 32))
	var arena linArena
	defer arena.free()
	// Every tail of k with every tile and remainder of m and n; then the long
	// rows of AlexNet and VGG (whole blocks, input chunks for m ≥ 2, sample
	// blocks for m > 8 (AVX-512) or 6 (AVX2)).
	type shape struct{ ms, ns, ks []int }
	var small []int
	for k := 1; k <= 40; k++ {
		small = append(small, k)
	}
	shapes := []shape{
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 25, 49}, small},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17}, []int{1, 7, 24, 31}, []int{4096, 4096 + 13}},
		{[]int{1, 2, 5, 8, 9}, []int{3, 9}, []int{9216, 25088}},
	}
	c := 0
	for _, s := range shapes {
		for _, k := range s.ks {
			for _, m := range s.ms {
				for _, n := range s.ns {
					c++
					ldx, ldw, ldy := linLayout(c, k, n)
					mode := c % 6
					x := arena.tail(t, (m-1)*ldx+k)
					w := arena.tailBF16(t, (n-1)*ldw+k)
					b := arena.tail(t, n)
					linFillMode(rng, x, min(mode, 4), k, true)
					bf16FillMode(rng, w, mode, k)
					linFill(rng, b, false, 0.1)
					v := c % 4
					if k <= 40 {
						v = 0 // all four below
					}
					for ; v < 4; v++ {
						var bias []float32
						if v&2 != 0 {
							bias = b
						}
						linBF16Case(t, isas, x, ldx, w, ldw, bias, m, n, k, ldy, v&1 != 0,
							fmt.Sprintf("m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d mode=%d", m, n, k, ldx, ldw, ldy, mode))
						if k > 40 {
							break
						}
					}
					arena.free()
				}
			}
		}
	}
}

// TestLinearBF16KernelsSpecials runs dense special values (NaN, ±Inf, ±0,
// subnormals, ±MaxFloat32 in x; the same, rounded, and raw bit patterns in
// W) through every variant and small shape.
func TestLinearBF16KernelsSpecials(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(33, 34))
	for rep := 0; rep < 4; rep++ {
		for m := 1; m <= 9; m++ {
			for n := 1; n <= 9; n += 4 {
				for k := 1; k <= 40; k += 3 {
					x := make([]float32, m*k)
					w := make([]uint16, n*k)
					bias := make([]float32, n)
					linFill(rng, x, rep%2 == 1, 0.1*float64(rep+1))
					bf16Fill(rng, w, rep%2 == 1, 0.1*float64(rep+1), 0.05)
					linFill(rng, bias, false, 0.5)
					linBF16Case(t, isas, x, k, w, k, bias, m, n, k, n, (m+n+k)%2 == 0, fmt.Sprintf("m=%d n=%d k=%d rep=%d", m, n, k, rep))
				}
			}
		}
	}
}

// TestLinearBF16ZerosAndRelu checks the ends of the tree on every variant: a
// sum of -0 products stays -0, a k tail adds nothing to the lanes past it.
func TestLinearBF16ZerosAndRelu(t *testing.T) {
	isas := linAvailable(t)
	negZero := math.Float32bits(float32(math.Copysign(0, -1)))
	for _, isa := range isas {
		restore := linUse(isa)
		for k := 1; k <= 40; k++ {
			x := make([]float32, k)
			w := make([]uint16, k)
			for i := range x {
				x[i], w[i] = -0x1p-80, bf16(0x1p-80) // the products underflow to -0
			}
			for _, relu := range []bool{false, true} {
				y := []float32{1}
				LinearBF16(y, 1, x, k, w, k, nil, 1, 1, k, relu)
				want := negZero
				if k < 16 {
					want = 0 // the lanes without terms are +0
				}
				if math.Float32bits(y[0]) != want {
					t.Errorf("%s k=%d relu=%v: sum of -0 products = %g (%#x), want %#x", isa, k, relu, y[0], math.Float32bits(y[0]), want)
				}
			}
		}
		restore()
	}
}

// FuzzLinearBF16 compares every variant with linearBF16Go on fuzzed shapes,
// strides and values (the raw bytes become float32 bit patterns of x and
// bfloat16 bit patterns of W).
func FuzzLinearBF16(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint16(0), uint8(0), uint64(0), []byte{})
	f.Add(uint8(8), uint8(31), uint16(16), uint8(3), uint64(1), []byte{0, 0, 0x80, 0x7f})
	f.Add(uint8(9), uint8(33), uint16(4100), uint8(0x1f), uint64(2), []byte{0, 0, 0xc0, 0x7f, 0x81, 0x7f})
	f.Add(uint8(16), uint8(2), uint16(32), uint8(0x2e), uint64(3), []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, mb, nb uint8, kb uint16, flags uint8, seed uint64, data []byte) {
		isas := linAvailable(t)
		m, n, k := 1+int(mb)%18, 1+int(nb)%40, 1+int(kb)%4200
		relu, withBias := flags&1 != 0, flags&2 != 0
		ldx, ldw, ldy := linLayout(int(flags>>2), k, n)
		rng := rand.New(rand.NewPCG(seed, uint64(flags)))
		var arena linArena
		defer arena.free()
		x := arena.tail(t, (m-1)*ldx+k)
		w := arena.tailBF16(t, (n-1)*ldw+k)
		mode := int(flags>>4) % 6
		linFillMode(rng, x, min(mode, 4), k, true)
		bf16FillMode(rng, w, mode, k)
		for i := 0; i+4 <= len(data); i += 4 {
			v := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
			if p := rng.IntN(2*len(x) + len(w)); p < len(x) {
				x[p] = math.Float32frombits(v)
			} else {
				w[p%len(w)] = uint16(v >> 16)
			}
		}
		var bias []float32
		if withBias {
			bias = arena.tail(t, n)
			linFill(rng, bias, false, 0.2)
		}
		linBF16Case(t, isas, x, ldx, w, ldw, bias, m, n, k, ldy, relu, fmt.Sprintf("m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d", m, n, k, ldx, ldw, ldy))
	})
}

// TestLinearBF16AssemblyRules checks the generated assembly: the AVX2 kernels
// use only VEX-encodable registers (no X/Y16-31, Z or K registers) and require
// no AVX-512 feature, and every RET follows a VZEROUPPER.
func TestLinearBF16AssemblyRules(t *testing.T) {
	src, err := os.ReadFile("linearbf16_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	evex := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	fn, prev, requires, funcs, avx2, wide := "", "", "", 0, 0, 0
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if r, ok := strings.CutPrefix(line, "// Requires: "); ok {
			requires = r
		}
		if strings.HasPrefix(line, "TEXT ") {
			fn = line
			funcs++
			if strings.Contains(fn, "_avx2(") {
				avx2++
				if strings.Contains(requires, "AVX512") {
					t.Errorf("%s requires %s", fn, requires)
				}
			}
		}
		if strings.HasPrefix(line, "//") || line == "" {
			continue
		}
		if evex.MatchString(line) {
			if strings.Contains(fn, "_avx2(") {
				t.Errorf("line %d: AVX2 kernel uses an AVX-512 register: %s", i+1, line)
			}
			wide++
		}
		if line == "RET" && prev != "VZEROUPPER" {
			t.Errorf("line %d: RET without VZEROUPPER in %s", i+1, fn)
		}
		prev = line
	}
	if funcs == 0 || avx2 == 0 || wide == 0 {
		t.Fatalf("found %d TEXT, %d AVX2 kernels and %d AVX-512 register uses in linearbf16_amd64.s: is the check broken?", funcs, avx2, wide)
	}
}

// Benchmarks. BenchmarkLinearBF16 times LinearBF16 in the benchmark loop
// (GB/s of W at 2 bytes a weight for batch 1, GFLOP/s for batch 8), then
// compares it, in the manner of peakRatio, with Linear on the float32 weights
// of the same shape, and then (batch 1) with the streaming-read probe over the
// bfloat16 bytes: the two calls in turn for at least 10 rounds and half a
// second, keeping each one's fastest call (in pairs, so that each call
// follows the other one: the L3 of the machine this was written on holds
// 300 MB). The machine is shared, so the fastest calls are the undisturbed
// rates: best-GB/s (or best-GFLOP/s) of each kernel, x-fp32 = best Linear
// time / best LinearBF16 time (the goal at batch 1 is 2: the same bytes per
// second), and %stream = best probe time / best LinearBF16 time; at batch 8
// also %peak, LinearBF16's best rate against the FMA peak (peakRatio).
//
//	go test -run '^$' -bench LinearBF16 -benchtime 0.2s -count 3 ./runtime/kernels/
var linBF16Shapes = []linShape{
	{1, 4096, 9216}, {1, 4096, 4096}, {1, 1000, 4096}, {1, 4096, 25088},
	{8, 4096, 9216}, {8, 4096, 4096}, {8, 1000, 4096},
}

// linBF16Best runs the calls in turn, round after round, and returns the
// fastest time of each.
func linBF16Best(calls ...func()) []time.Duration {
	best := make([]time.Duration, len(calls))
	for i := range best {
		best[i] = time.Hour
	}
	start := time.Now()
	for r := 0; r < 200 && (r < 10 || time.Since(start) < time.Second/2); r++ {
		for i, f := range calls {
			t0 := time.Now()
			f()
			best[i] = min(best[i], time.Since(t0))
		}
	}
	return best
}

func BenchmarkLinearBF16(b *testing.B) {
	for _, isa := range linISAs {
		for _, s := range linBF16Shapes {
			b.Run(isa+"/"+s.String(), func(b *testing.B) {
				linBenchISA(b, isa)
				x := make([]float32, s.m*s.k)
				w := make([]float32, s.n*s.k)
				bias := make([]float32, s.n)
				y := make([]float32, s.m*s.n)
				linBenchFill(x)
				linBenchFill(w)
				linBenchFill(bias)
				w16 := make([]uint16, len(w))
				BF16(w16, w)
				defer func() {
					runtime.GC()
					debug.FreeOSMemory() // return the big buffers before the next benchmark
				}()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				bf16 := func() { LinearBF16(y, s.n, x, s.k, w16, s.k, bias, s.m, s.n, s.k, true) }
				fp32 := func() { Linear(y, s.n, x, s.k, w, s.k, bias, s.m, s.n, s.k, true) }
				read := linearStreamRead_avx512
				if isa == "avx2" {
					read = linearStreamRead_avx2
				}
				stream := func() { read((*float32)(unsafe.Pointer(&w16[0])), len(w16)/2) }
				bf16() // fault the pages in
				b.ResetTimer()
				for b.Loop() {
					bf16()
				}
				b.StopTimer()
				n := float64(b.N)
				gb16, gb32 := 2*float64(s.n*s.k)/1e9, 4*float64(s.n*s.k)/1e9
				gflop := 2 * float64(s.m*s.n*s.k) / 1e9
				if s.m == 1 {
					best := linBF16Best(bf16, fp32)
					probe := linBF16Best(bf16, stream)
					b.ReportMetric(gb16*n/b.Elapsed().Seconds(), "GB/s")
					b.ReportMetric(gb16/best[0].Seconds(), "best-GB/s")
					b.ReportMetric(gb32/best[1].Seconds(), "fp32-best-GB/s")
					b.ReportMetric(best[1].Seconds()/best[0].Seconds(), "x-fp32")
					b.ReportMetric(100*probe[1].Seconds()/probe[0].Seconds(), "%stream")
				} else {
					best := linBF16Best(bf16, fp32)
					b.ReportMetric(gflop*n/b.Elapsed().Seconds(), "GFLOP/s")
					b.ReportMetric(gflop/best[0].Seconds(), "best-GFLOP/s")
					b.ReportMetric(gflop/best[1].Seconds(), "fp32-best-GFLOP/s")
					b.ReportMetric(best[1].Seconds()/best[0].Seconds(), "x-fp32")
					if kb, peak := peakRatio(isa, gflop*1e9, bf16); peak > 0 {
						b.ReportMetric(100*kb/peak, "%peak")
					}
				}
			})
		}
	}
}
