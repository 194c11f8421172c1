//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// packISAs lists PackGather's implementations: AVX-512, AVX2 and Go.
func packISAs() []convISA { return convISAs() }

// packRestoreISA returns a function restoring the dispatch flags.
func packRestoreISA() func() { return convRestoreISA() }

// forEachPackISA runs f as a subtest per implementation the CPU has.
func forEachPackISA(t *testing.T, f func(t *testing.T)) { forEachConvISA(t, f) }

// TestPackAssemblyRules checks pack_amd64.s against the house rules: every
// kernel returns through VZEROUPPER, and the AVX2 kernel uses no AVX-512.
func TestPackAssemblyRules(t *testing.T) {
	src, err := os.ReadFile("pack_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	funcs := regexp.MustCompile(`(?m)^// Requires: (.*)\nTEXT ·(\w+)\(SB\)`).FindAllStringSubmatch(string(src), -1)
	if len(funcs) != 5 {
		t.Fatalf("%d kernels in pack_amd64.s, want 5", len(funcs))
	}
	for _, f := range funcs {
		if strings.HasSuffix(f[2], "_avx2") && strings.Contains(f[1], "AVX512") {
			t.Errorf("%s requires %s", f[2], f[1])
		}
	}
	if r, v := strings.Count(string(src), "\tRET"), strings.Count(string(src), "\tVZEROUPPER\n\tRET"); r != 5 || v != r {
		t.Errorf("%d RETs, %d after VZEROUPPER", r, v)
	}
}

// packBenchShapes are PackGather calls as the packs make them, each over
// the whole of one layer's weights in the packs' loop order: VGG-16's widest
// 3×3 layer (512→512, both packs) and AlexNet's 11×11 first layer (C = 3).
var packBenchShapes = []struct {
	name                string
	oc, ic, taps, chunk int
	back                bool
}{
	{"vgg512/fwd", 512, 512, 9, 32, false},
	{"vgg512/back", 512, 512, 9, 32, true},
	{"vgg64/fwd", 64, 64, 9, 32, false},
	{"alexnet1/fwd", 64, 3, 121, 32, false},
}

// BenchmarkPackGather runs each shape through PackGather on each ISA, and a
// plain copy of as many bytes in the same run: MB/s counts the bytes read
// and written (8 per weight). The NT variants stream their stores
// (PackGatherNT).
func BenchmarkPackGather(b *testing.B) {
	defer packRestoreISA()()
	isas := packISAs()
	for _, s := range packBenchShapes {
		w := make([]float32, s.oc*s.ic*s.taps)
		for k := range w {
			w[k] = float32(k)
		}
		dst := make([]float32, len(w)+NR*s.taps*s.ic)
		gather := PackGather
		run := func() {
			if s.back {
				// PackConvBackData's unit ib: rows o, lanes ic, taps kk apart.
				for ib := 0; ib < s.ic/NR; ib++ {
					for o0 := 0; o0 < s.oc; o0 += s.chunk {
						c := min(s.chunk, s.oc-o0)
						for t := 0; t < s.taps; t++ {
							gather(dst[((ib*s.taps+t)*s.oc+o0)*NR:], w[(o0*s.ic+ib*NR)*s.taps+t:], c, s.ic*s.taps, s.taps, NR)
						}
					}
				}
				return
			}
			row := s.ic * s.taps
			for u := 0; u < (s.oc+NR-1)/NR; u++ {
				nj := min(NR, s.oc-u*NR)
				base := dst[u*s.taps*s.ic*NR:]
				for ic0 := 0; ic0 < s.ic; ic0 += s.chunk {
					c := min(s.chunk, s.ic-ic0)
					for t := 0; t < s.taps; t++ {
						gather(base[(t*s.ic+ic0)*NR:], w[u*NR*row+ic0*s.taps+t:], c, s.taps, row, nj)
					}
				}
			}
		}
		for _, isa := range isas {
			for _, nt := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s", s.name, isa.name)
				gather = PackGather
				if nt {
					name += "NT"
					gather = PackGatherNT
				}
				b.Run(name, func(b *testing.B) {
					if !isa.has || (nt && isa.name == "go") {
						b.Skipf("CPU lacks %s", isa.name)
					}
					isa.use()
					b.SetBytes(int64(8 * len(w)))
					run() // fault dst in
					for b.Loop() {
						run()
						PackFence()
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(w)), "ns/weight")
				})
			}
		}
		b.Run(s.name+"/copy", func(b *testing.B) {
			b.SetBytes(int64(8 * len(w)))
			copy(dst, w)
			for b.Loop() {
				copy(dst, w)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(w)), "ns/weight")
		})
	}
}
