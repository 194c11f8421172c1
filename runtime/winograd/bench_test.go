package winograd

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cnngen/cnngen/runtime/kernels"
)

// benchLayer is a 3×3 layer shape: hw×hw pixels, cin → cout channels.
type benchLayer struct{ hw, cin, cout int }

// vggLayers are the 3×3 layers of VGG-16 (one of each shape), batch 1.
var vggLayers = []benchLayer{
	{224, 64, 64}, {112, 128, 128}, {56, 256, 256}, {28, 512, 512}, {14, 512, 512},
}

// alexLayers are AlexNet's (torchvision) 3×3 layers, conv3 to conv5, batch 1.
var alexLayers = []benchLayer{{13, 192, 384}, {13, 384, 256}, {13, 256, 256}}

// layer is one benchmark layer's operands: a padded NHWC input, the weights
// packed for Winograd and for the direct kernel, the output.
type layer struct {
	hw, cin, cout int
	in, out       []float32
	u, w, bias    []float32
	scratch       []float32
}

func newLayer(hw, cin, cout int) *layer {
	rng := rand.New(rand.NewPCG(1, 2))
	l := &layer{hw: hw, cin: cin, cout: cout}
	l.in = make([]float32, (hw+2)*(hw+2)*cin)
	for y := 1; y <= hw; y++ {
		for i := y*(hw+2)*cin + cin; i < (y*(hw+2)+hw+1)*cin; i++ {
			l.in[i] = float32(rng.NormFloat64())
		}
	}
	w := make([]float32, cout*cin*9)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	l.u = make([]float32, PackSize(cin, cout))
	Pack(l.u, w, cin, cout)
	ocb := ocBlocks(cout)
	l.w = make([]float32, ocb*9*cin*NR)
	for j := 0; j < cout; j++ {
		for c := 0; c < cin; c++ {
			for tap := 0; tap < 9; tap++ {
				l.w[((j/NR*9+tap)*cin+c)*NR+j%NR] = w[(j*cin+c)*9+tap]
			}
		}
	}
	l.bias = make([]float32, ocb*NR)
	l.out = make([]float32, hw*hw*cout)
	l.scratch = make([]float32, ScratchSize(hw, hw, cin, cout))
	return l
}

func (l *layer) flop() float64 { return 2 * float64(l.hw*l.hw*l.cin*l.cout*9) }

func (l *layer) winograd() {
	irs := (l.hw + 2) * l.cin
	Conv(l.out, l.hw*l.cout, l.in, irs, l.hw, l.hw, l.cin, l.cout, l.u, l.bias, true, 0, TileRows(l.hw), l.scratch)
}

// direct runs the layer as the generator's direct code does: rows in chunks
// whose input fits 512 kB (gen/plan.go's chunkBudget), every 32-channel block
// over a chunk's rows, one kernels.ConvNHWC call per (row, block).
func (l *layer) direct() {
	irs := (l.hw + 2) * l.cin
	chunk := max(1, (512<<10)/(4*irs)-2)
	for r0 := 0; r0 < l.hw; r0 += chunk {
		for ob := 0; ob < ocBlocks(l.cout); ob++ {
			for y := r0; y < min(r0+chunk, l.hw); y++ {
				kernels.ConvNHWC(l.out[y*l.hw*l.cout+ob*NR:], l.cout, l.in[y*irs:], l.cin, irs, l.cin, l.cin, 3, 3,
					l.w[ob*9*l.cin*NR:], l.bias[ob*NR:], l.hw, min(NR, l.cout-ob*NR), true)
			}
		}
	}
}

// bestOf runs each of fs (which performs flop FLOPs) once per round, the
// calls interleaved so that all see the same share of a shared machine, and
// returns the best rate (FLOP/s) of each over rounds.
func bestOf(rounds int, flop float64, fs ...func()) []float64 {
	best := make([]float64, len(fs))
	for _, f := range fs {
		f() // warm up caches and clocks
	}
	for range rounds {
		for i, f := range fs {
			t := time.Now()
			f()
			best[i] = max(best[i], flop/time.Since(t).Seconds())
		}
	}
	return best
}

// BenchmarkVGG runs each VGG-16 layer shape on one thread by Winograd (Conv
// over all tile rows) and directly (kernels.ConvNHWC as the generated code
// calls it), per ISA. The loop times Winograd (ns/op, and eff-GFLOP/s: direct
// FLOPs, 2·oh·ow·cin·cout·9, per second). Then Winograd, the direct
// convolution and the FMA-peak loop (kernels.PeakGFLOPS, 2 ms) run
// interleaved, a few rounds each, and the best rounds give best-wino-GFLOP/s
// and best-direct-GFLOP/s (effective), their ratio (speedup), and each as a
// percentage of the peak (wino-%peak can pass 100: it counts direct FLOPs).
func BenchmarkVGG(b *testing.B) { benchLayers(b, vggLayers) }

// BenchmarkAlexNet is BenchmarkVGG on AlexNet's 3×3 layers (13×13 pixels:
// 16 tiles, 7 of them at the ragged edges).
func BenchmarkAlexNet(b *testing.B) { benchLayers(b, alexLayers) }

func benchLayers(b *testing.B, layers []benchLayer) {
	for _, s := range layers {
		l := newLayer(s.hw, s.cin, s.cout)
		for _, isa := range []string{"avx512", "avx2"} {
			b.Run(fmt.Sprintf("%dx%d/%d-%d/%s", s.hw, s.hw, s.cin, s.cout, isa), func(b *testing.B) {
				if !withISA(isa, func() {
					for b.Loop() {
						l.winograd()
					}
					b.ReportMetric(l.flop()*float64(b.N)/b.Elapsed().Seconds()/1e9, "eff-GFLOP/s")
					var peak float64
					probe := func() { peak = max(peak, kernels.PeakGFLOPS(1, 2*time.Millisecond)) }
					best := bestOf(max(4, min(20, int(2e9/l.flop()))), l.flop(), l.winograd, l.direct, probe)
					w, d := best[0]/1e9, best[1]/1e9
					b.ReportMetric(w, "best-wino-GFLOP/s")
					b.ReportMetric(d, "best-direct-GFLOP/s")
					b.ReportMetric(w/d, "speedup")
					if peak > 0 {
						b.ReportMetric(100*w/peak, "wino-%peak")
						b.ReportMetric(100*d/peak, "direct-%peak")
					}
				}) {
					b.Skipf("no %s here", isa)
				}
			})
		}
	}
}

// BenchmarkChunkTiles runs the VGG layers with chunks of 14 to 224 tiles
// (chunkOverride) interleaved with the direct convolution, on the best ISA,
// to choose chunkTiles' rule: best-of effective GFLOP/s of each, and the
// speedup. "rule" is chunkTiles' own choice.
func BenchmarkChunkTiles(b *testing.B) {
	defer func() { chunkOverride = 0 }()
	for _, s := range vggLayers {
		l := newLayer(s.hw, s.cin, s.cout)
		tiles := TileRows(s.hw) * TileRows(s.hw)
		for _, T := range []int{0, 14, 28, 56, 112, 224} {
			name := fmt.Sprint(T)
			if T == 0 {
				name = fmt.Sprintf("rule=%d", min(chunkTiles(s.cin, s.cout), tiles))
			} else if T > tiles {
				continue
			}
			b.Run(fmt.Sprintf("%dx%d/%d-%d/tiles=%s", s.hw, s.hw, s.cin, s.cout, name), func(b *testing.B) {
				chunkOverride = T
				l.scratch = make([]float32, ScratchSize(s.hw, s.hw, s.cin, s.cout))
				for b.Loop() {
					l.winograd()
				}
				best := bestOf(8, l.flop(), l.winograd, l.direct)
				b.ReportMetric(best[0]/1e9, "best-wino-GFLOP/s")
				b.ReportMetric(best[1]/1e9, "best-direct-GFLOP/s")
				b.ReportMetric(best[0]/best[1], "speedup")
			})
		}
		chunkOverride = 0
	}
}
