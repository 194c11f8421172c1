//go:build amd64 && !purego

package kernels

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBNAVX2NoEVEX checks that the AVX2 batch-norm kernels use no AVX-512
// instruction and no register above Y15: avo lists what each function
// requires above its TEXT line.
func TestBNAVX2NoEVEX(t *testing.T) {
	f, err := os.Open("bn_amd64.s")
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
	if n != 8 {
		t.Fatalf("found %d AVX2 kernels in bn_amd64.s, want 8", n)
	}
}

// bnStreamProbe returns the streaming-read loop of isa (linearStreamRead: 8
// independent vector sums over a contiguous buffer) and the float32 multiple
// its length must be.
func bnStreamProbe(isa string) (func(p *float32, n int), int) {
	switch {
	case isa == "avx512" && useAVX512:
		return linearStreamRead_avx512, 128
	case isa == "avx2" && useAVX2:
		return linearStreamRead_avx2, 64
	}
	return nil, 0
}

// bnStreamRatio measures kernel, which moves bytes bytes per call, against
// the streaming read of as many contiguous bytes with isa's vectors, from a
// buffer of span bytes (read chunk after chunk, so that it comes from the
// same level of the memory hierarchy as the kernel's data): the two
// alternate in short slices, as in peakRatio, and the best slice rate of
// each is returned (bytes/s). It returns zeros if the CPU lacks isa.
func bnStreamRatio(isa string, bytes, span float64, kernel func()) (best, stream float64) {
	probe, mult := bnStreamProbe(isa)
	if probe == nil {
		return 0, 0
	}
	n := (int(bytes)/4 + mult - 1) / mult * mult
	buf := make([]float32, max(n, int(span)/4/n*n))
	for i := range buf {
		buf[i] = 1 // fault every page in: untouched ones would all read the zero page
	}
	off := 0
	read := func() {
		probe(&buf[off], n)
		if off += n; off+n > len(buf) {
			off = 0
		}
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
	rate(kernel, bytes)
	rate(read, 4*float64(n))
	for range 40 {
		best = max(best, rate(kernel, bytes))
		stream = max(stream, rate(read, 4*float64(n)))
	}
	return best, stream
}

// BenchmarkBN runs each kernel on one row of np = 224 pixels of a worker's n
// channels out of sx (n = 32 of 64 and n = 256 of 512: two workers on a VGG
// layer of 64 or 512 channels), and n = 64 of 64 (one worker, whole pixels:
// what the strided access costs). "hot" calls it on the same row, whose
// operands stay in L1/L2; "cold" on the next row of operands of 64 MB each,
// which come from L3 or memory, as a layer's activations do. GB/s counts the
// float32 pixel data a call reads and writes (n channels per pixel per
// operand; not the per-channel float64s, which stay in L1); best-GB/s is the
// best 0.5 ms slice, and %stream that as a percentage of the best slice of a
// streaming read of as many bytes from the same level (bnStreamRatio).
//
//	go test -run '^$' -bench BN/ -benchtime 0.2s -count 3 ./runtime/kernels/
func BenchmarkBN(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const np = 224
	const coldBytes = 64 << 20
	for _, s := range []struct {
		n, sx int
		cold  bool
	}{{32, 64, false}, {256, 512, false}, {32, 64, true}, {256, 512, true}, {64, 64, true}} {
		n, sx := s.n, s.sx
		rows := 1
		if s.cold {
			rows = coldBytes / (4 * np * sx)
		}
		px := func() []float32 {
			v := make([]float32, rows*np*sx)
			for i := range v {
				v[i] = float32(i%97)*0.01 - 0.48
			}
			return v
		}
		ch := func() []float64 {
			v := make([]float64, n)
			bnFill64(rng, v, 0)
			return v
		}
		mean, invstd, scale, shift, kc, sg, sgx := ch(), ch(), ch(), ch(), ch(), ch(), ch()
		acc1, acc2 := ch(), ch()
		// used lists the pixel operands (x, d, out, dx) each kernel needs.
		for _, k := range []struct {
			name string
			used [4]bool
			f    func(x, d, out, dx []float32)
		}{
			{"Sum", [4]bool{true}, func(x, d, out, dx []float32) { BNSum(acc1, x, sx, np, n) }},
			{"SumSq", [4]bool{true}, func(x, d, out, dx []float32) { BNSumSq(acc1, x, sx, np, n, mean) }},
			{"Apply", [4]bool{true, false, true}, func(x, d, out, dx []float32) {
				BNApply(out, sx, x, sx, np, n, scale, shift, false)
			}},
			{"ApplyReLU", [4]bool{true, false, true}, func(x, d, out, dx []float32) {
				BNApply(out, sx, x, sx, np, n, scale, shift, true)
			}},
			{"BackSums", [4]bool{true, true}, func(x, d, out, dx []float32) {
				BNBackSums(acc1, acc2, d, sx, x, sx, nil, 0, np, n, mean, invstd)
			}},
			// d is masked in place: after the first pass over the rows the
			// mask stores zeros over zeros.
			{"BackSumsReLU", [4]bool{true, true, true}, func(x, d, out, dx []float32) {
				BNBackSums(acc1, acc2, d, sx, x, sx, out, sx, np, n, mean, invstd)
			}},
			{"BackData", [4]bool{true, true, false, true}, func(x, d, out, dx []float32) {
				BNBackData(dx, sx, d, sx, x, sx, np, n, mean, invstd, kc, sg, sgx, 4*np)
			}},
			{"BackDataEval", [4]bool{false, true, false, true}, func(x, d, out, dx []float32) {
				BNBackDataEval(dx, sx, d, sx, np, n, kc)
			}},
		} {
			level := "hot"
			if s.cold {
				level = "cold"
			}
			b.Run(fmt.Sprintf("%s/%s/n=%d/sx=%d", k.name, level, n, sx), func(b *testing.B) {
				var ops [4][]float32
				moved := 0
				for i, u := range k.used {
					if u {
						ops[i] = px()
						moved++
					}
				}
				row := 0
				call := func() {
					var o [4][]float32
					for i, v := range ops {
						if v != nil {
							o[i] = v[row*np*sx:]
						}
					}
					k.f(o[0], o[1], o[2], o[3])
					if row++; row == rows {
						row = 0
					}
				}
				bytes := 4 * float64(moved*np*n)
				convBenchISAs(b, func(b *testing.B, isa string) {
					for b.Loop() {
						call()
					}
					b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
					span := bytes
					if s.cold {
						span = coldBytes
					}
					if best, stream := bnStreamRatio(isa, bytes, span, call); stream > 0 {
						b.ReportMetric(best/1e9, "best-GB/s")
						b.ReportMetric(100*best/stream, "%stream")
					}
				})
			})
		}
	}
}
