//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkConvNHWCLayer runs a whole layer's calls as the generated code does,
// one ConvNHWC call per output row and block of 32 output channels, with the
// weights packed per block. Between runs it reads a 256 MiB buffer, so that the
// layer's weights and activations come from memory, as they do in a network
// whose weights are hundreds of MB:
//
//	cold:     ConvNHWC;
//	prefetch: ConvNHWCNext with the ranges the generated code passes;
//	hot:      no flush: the weights stay cached (the 224×224 activations are
//	          bigger than L2 and still come from L3 or memory).
//
// Shapes: split by blocks, each block over every row, VGG-16's 14×14 layers
// (512 → 512, 9.4 MB of weights) and AlexNet's conv4 (13×13, 384 → 256, 3.5
// MB), where each row prefetches 1/rows of the next block's weights; split by
// rows, VGG-16's conv1_2 (224×224, 64 → 64, 12.8 MB in and out), in claims of
// 8 rows, where the first block's call for a row prefetches the next row's new
// input row and its output row; and VGG-16's first layer (224×224, 3 → 64:
// 12.8 MB out, 27 FMAs per output) row by row, each row running both blocks,
// whose calls prefetch their half of the next row's output (the generator's
// RowMajor schedule). It reports the best run's GFLOP/s and
// that as a percentage of the FMA peak probed between the runs (best probe).
//
//	go test -run '^$' -bench ConvNHWCLayer -benchtime 30x ./runtime/kernels/
func BenchmarkConvNHWCLayer(b *testing.B) {
	flush := make([]float32, 64<<20)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct {
		name     string
		h, c, oc int
		rows     bool // split by rows: claims of 8 rows, every block over them
		rowMajor bool // split by rows, each row running every block
	}{
		{"vgg14x14/C=512", 14, 512, 512, false, false},
		{"alexnet13x13/C=384", 13, 384, 256, false, false},
		{"vgg224x224/C=64", 224, 64, 64, true, false},
		{"vgg224x224/C=3", 224, 3, 64, false, true},
	} {
		irs := (s.h + 2) * s.c
		in := make([]float32, (s.h+2)*irs)
		pack := 9 * s.c * NR
		nb := s.oc / NR
		w := convAligned(nb * pack)
		bias := make([]float32, s.oc)
		out := convAligned(s.h * s.h * s.oc)
		convFill(rng, in, 0)
		convFill(rng, w, 0)
		flop := 2 * float64(s.h*s.h*s.oc*9*s.c)
		for _, mode := range []string{"cold", "prefetch", "hot", "stream"} {
			if mode == "stream" && !s.rowMajor {
				continue
			}
			layer := func() {
				if s.rowMajor {
					// The first layer: each row runs both blocks; each call prefetches
					// its half of the next row's output, the first also the input row
					// the next row adds.
					ors := s.h * s.oc
					for r := 0; r < s.h; r++ {
						for u := 0; u < nb; u++ {
							var nin, nout []float32
							if mode == "stream" {
								if u == 0 && r+3 < s.h+2 {
									nin = in[(r+3)*irs : (r+4)*irs]
								}
								ConvNHWCStream(out[r*ors+u*NR:], s.oc, in[r*irs:], s.c, irs, s.c, 3*s.c, 3, 1,
									w[u*pack:], bias[u*NR:], s.h, NR, true, nin)
								continue
							}
							if mode == "prefetch" && r+1 < s.h {
								if u == 0 && r+3 < s.h+2 {
									nin = in[(r+3)*irs : (r+4)*irs]
								}
								nout = out[(r+1)*ors : (r+2)*ors][u*ors/nb : (u+1)*ors/nb]
							}
							ConvNHWCNext(out[r*ors+u*NR:], s.oc, in[r*irs:], s.c, irs, s.c, 3*s.c, 3, 1,
								w[u*pack:], bias[u*NR:], s.h, NR, true, nin, nout)
						}
					}
					StoreFence()
					return
				}
				if s.rows {
					// Claims of 8 rows; while the first block runs a row, prefetch
					// the next row's new input row and its output row.
					for r0 := 0; r0 < s.h; r0 += 8 {
						for u := 0; u < nb; u++ {
							for r := r0; r < r0+8; r++ {
								var nin, nout []float32
								if mode == "prefetch" && u == 0 && r+1 < r0+8 {
									nin = in[(r+3)*irs : (r+4)*irs]
									nout = out[(r+1)*s.h*s.oc : (r+2)*s.h*s.oc]
								}
								ConvNHWCNext(out[r*s.h*s.oc+u*NR:], s.oc, in[r*irs:], s.c, irs, s.c, 3*s.c, 3, 1,
									w[u*pack:], bias[u*NR:], s.h, NR, true, nin, nout)
							}
						}
					}
					return
				}
				for u := 0; u < nb; u++ {
					var nx []float32
					if mode == "prefetch" && u+1 < nb {
						nx = w[(u+1)*pack : (u+2)*pack]
					}
					for oy := 0; oy < s.h; oy++ {
						part := nx[oy*len(nx)/s.h : (oy+1)*len(nx)/s.h]
						ConvNHWCNext(out[oy*s.h*s.oc+u*NR:], s.oc, in[oy*irs:], s.c, irs, s.c, 3*s.c, 3, 1,
							w[u*pack:], bias[u*NR:], s.h, NR, true, part)
					}
				}
			}
			for _, isa := range convISAs()[:2] {
				b.Run(fmt.Sprintf("%s/%s/%s", s.name, mode, isa.name), func(b *testing.B) {
					if !isa.has {
						b.Skipf("CPU lacks %s", isa.name)
					}
					defer convRestoreISA()()
					isa.use()
					probe, fpi := peakProbe(isa.name)
					best, peak := time.Duration(1<<62), 0.0
					var sink float32
					for b.Loop() {
						b.StopTimer()
						if mode != "hot" {
							for i := 0; i < len(flush); i += 16 {
								flush[i]++
							}
						}
						t := time.Now()
						probe(1 << 16)
						peak = max(peak, fpi*(1<<16)/time.Since(t).Seconds())
						b.StartTimer()
						t = time.Now()
						layer()
						best = min(best, time.Since(t))
					}
					sink += flush[0]
					rate := flop / best.Seconds()
					b.ReportMetric(rate/1e9, "best-GFLOP/s")
					b.ReportMetric(100*rate/peak, "%peak")
					_ = sink
				})
			}
		}
	}
}
