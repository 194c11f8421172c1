//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the generated SGD kernels against the pure-Go twin, and their
// benchmarks.

// TestSGDKernelsMatchGo runs every entry of each ISA's kernel table (through
// the dispatch, which indexes it) on every length 0..70 and larger ones, with
// the operands at a guard page or followed by sentinels, and compares v, g and
// buf with sgdUpdateGo bit for bit (NaN as NaN): a table entry in the wrong
// place shows as a difference too.
func TestSGDKernelsMatchGo(t *testing.T) {
	defer convRestoreISA()()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, isa := range convISAs()[:2] {
		t.Run(isa.name, func(t *testing.T) {
			if !isa.has {
				t.Skipf("CPU lacks %s", isa.name)
			}
			for _, f := range sgdAllOpts() {
				for i, n := range sgdLengths() {
					padded := i%2 == 1
					special := []int{16, 0, 2}[i%3]
					o := newSGDOperands(t, n, f.momentum, padded)
					o.fill(rng, special)
					want := o.clone()
					sgdUpdateGo(want.v, want.g, want.buf, f.lr, f.wd, f.mom, f.first, f.nesterov, f.zeroGrad)
					what := fmt.Sprintf("n=%d padded=%v special=%d %v", n, padded, special, f)
					isa.use()
					o.run(t, what, f, func(v, g, buf []float32, lr, wd, mom float32, first, nesterov, zeroGrad bool) {
						if len(v) > 0 { // the kernels need n ≥ 1
							sgdUpdate(v, g, buf, lr, wd, mom, first, nesterov, zeroGrad)
						}
					})
					o.check(t, what, want)
				}
			}
		})
	}
}

// TestSGDVariantTable checks that sgdVariant maps every combination of
// options to a different entry, in the order asm/sgd emits the kernels.
func TestSGDVariantTable(t *testing.T) {
	src, err := os.ReadFile("sgd_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^TEXT ·(sgd_\w+)_avx512\(SB\)`).FindAllStringSubmatch(string(src), -1) {
		names = append(names, m[1])
	}
	if len(names) != len(sgdKernels{}) {
		t.Fatalf("%d AVX-512 kernels in sgd_amd64.s, table of %d", len(names), len(sgdKernels{}))
	}
	seen := map[int]bool{}
	for _, f := range sgdAllOpts() {
		i := sgdVariant(f.momentum, f.wd != 0, f.first, f.nesterov, f.zeroGrad)
		seen[i] = true
		name := names[i]
		ok := strings.Contains(name, "_wd") == (f.wd != 0) &&
			strings.HasSuffix(name, "_zero") == f.zeroGrad &&
			strings.HasPrefix(name, "sgd_plain") == !f.momentum &&
			strings.Contains(name, "nesterov") == f.nesterov &&
			strings.Contains(name, "first") == (f.momentum && f.first)
		if !ok {
			t.Errorf("%v: entry %d is %s", f, i, name)
		}
	}
	if len(seen) != len(names) {
		t.Errorf("the options reach %d of %d kernels", len(seen), len(names))
	}
}

// TestSGDAssemblyRules checks the generated assembly: no FMA anywhere (the
// contract rounds every product), AVX2 kernels without AVX-512 registers or
// requirements, and a VZEROUPPER before every RET.
func TestSGDAssemblyRules(t *testing.T) {
	src, err := os.ReadFile("sgd_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	evex := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	fn, prev, requires, funcs := "", "", "", 0
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if r, ok := strings.CutPrefix(line, "// Requires: "); ok {
			requires = r
		}
		if strings.HasPrefix(line, "TEXT ") {
			fn = line
			funcs++
			if strings.Contains(fn, "_avx2(") && strings.Contains(requires, "AVX512") {
				t.Errorf("%s requires %s", fn, requires)
			}
		}
		if strings.HasPrefix(line, "//") || line == "" {
			continue
		}
		if strings.Contains(line, "FMADD") || strings.Contains(line, "FMSUB") {
			t.Errorf("line %d: fused multiply-add in %s: %s", i+1, fn, line)
		}
		if evex.MatchString(line) && strings.Contains(fn, "_avx2(") {
			t.Errorf("line %d: AVX2 kernel uses an AVX-512 register: %s", i+1, line)
		}
		if line == "RET" && prev != "VZEROUPPER" {
			t.Errorf("line %d: RET without VZEROUPPER in %s", i+1, fn)
		}
		prev = line
	}
	if want := 2*len(sgdKernels{}) + 2; funcs != want {
		t.Errorf("%d TEXT in sgd_amd64.s, want %d", funcs, want)
	}
}

// The benchmark sizes, in values per operand: three operands in L2 (384 KiB),
// in L3 (24 MiB), and out of cache (384 MiB, more than this machine's 300 MiB
// L3: AlexNet's fc6 alone has 38 M parameters), on one thread, and out of cache
// on two (each half of the values on one, as optim.SGD splits a step).
var sgdBenchSizes = []struct {
	name       string
	n, threads int
}{{"L2", 32 << 10, 1}, {"L3", 2 << 20, 1}, {"DRAM", 32 << 20, 1}, {"DRAM-2threads", 32 << 20, 2}}

// sgdSplit returns a function that runs f on threads goroutines, each over
// its share of [0, n).
func sgdSplit(n, threads int, f func(lo, hi int)) func() {
	if threads == 1 {
		return func() { f(0, n) }
	}
	return func() {
		var wg sync.WaitGroup
		for t := range threads {
			wg.Go(func() { f(t*n/threads, (t+1)*n/threads) })
		}
		wg.Wait()
	}
}

// sgdBenchFill gives the operands small normal values, v none zero: the
// updates below keep them normal (lr·d is tiny, so v drifts slowly, and with
// g zeroed buf tends to 10·wd·v), where subnormals would slow some CPUs down.
func sgdBenchFill(v, g, buf []float32) {
	for i := range v {
		v[i] = float32(i%97)*0.01 - 0.485
		g[i] = float32(i%89)*1e-3 - 0.044
		buf[i] = float32(i%83) * 1e-3
	}
}

// sgdBestRate runs f, which moves fBytes bytes, and the bandwidth probe probe,
// which moves probeBytes, in alternating slices of at least 2 ms (at least
// one call each), and returns the best rate of each in GB/s: on a shared
// machine the best slice is the undisturbed rate (see peakRatio).
func sgdBestRate(fBytes float64, f func(), probeBytes float64, probe func()) (best, peak float64) {
	rate := func(f func(), bytes float64) float64 {
		n := 0
		t := time.Now()
		for n == 0 || time.Since(t) < 2*time.Millisecond {
			f()
			n++
		}
		return float64(n) * bytes / time.Since(t).Seconds() / 1e9
	}
	rate(f, fBytes)
	rate(probe, probeBytes)
	for range 12 {
		best = max(best, rate(f, fBytes))
		peak = max(peak, rate(probe, probeBytes))
	}
	return best, peak
}

// BenchmarkSGDUpdate measures SGDUpdate with momentum 0.9 and weight decay
// per ISA and size (sgdBenchSizes), in GB/s of its memory traffic (20 bytes a
// value: read v, g and buf, write v and buf; 24 with zeroGrad, which writes g),
// and for the assembly also its best rate in slices interleaved with
// sgdStream, which moves the same 20 bytes a value with one addition
// (best-GB/s, and %stream: the ratio of the two rates). The kinds: "mom" and
// "nesterov" the update, "zero" with zeroGrad, "zero+clear" the update then a
// separate clear(g), which "zero" replaces.
//
//	go test -run '^$' -bench SGDUpdate -benchtime 0.2s -count 3 ./runtime/kernels/
func BenchmarkSGDUpdate(b *testing.B) {
	defer convRestoreISA()()
	for _, isa := range convISAs() {
		for _, s := range sgdBenchSizes {
			for _, kind := range []string{"mom", "nesterov", "zero", "zero+clear"} {
				if isa.name == "go" && s.name != "L2" && s.name != "DRAM" {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/%s", isa.name, s.name, kind), func(b *testing.B) {
					if !isa.has {
						b.Skipf("CPU lacks %s", isa.name)
					}
					isa.use()
					v, g, buf := make([]float32, s.n), make([]float32, s.n), make([]float32, s.n)
					sgdBenchFill(v, g, buf)
					nesterov, zero := kind == "nesterov", kind == "zero"
					update := sgdSplit(s.n, s.threads, func(lo, hi int) {
						SGDUpdate(v[lo:hi], g[lo:hi], buf[lo:hi], 1e-3, 5e-4, 0.9, false, nesterov, zero)
						if kind == "zero+clear" {
							clear(g[lo:hi])
						}
					})
					bytes := 20 * float64(s.n)
					if kind == "zero" || kind == "zero+clear" {
						bytes += 4 * float64(s.n)
					}
					update() // fault the pages in
					for b.Loop() {
						update()
					}
					b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
					stream := sgdStream_avx2
					switch isa.name {
					case "avx512":
						stream = sgdStream_avx512
					case "go":
						return
					}
					probe := sgdSplit(s.n, s.threads, func(lo, hi int) { stream(&v[lo], &g[lo], &buf[lo], hi-lo) })
					best, peak := sgdBestRate(bytes, update, 20*float64(s.n), probe)
					b.ReportMetric(best, "best-GB/s")
					b.ReportMetric(100*best/peak, "%stream")
				})
				debug.FreeOSMemory() // return the big operands before the next case
			}
		}
	}
}
