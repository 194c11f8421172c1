package winograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cnngen/cnngen/runtime/kernels"
)

// The F(4×4, 3×3) matrices (Lavin & Gray), in float64 for the references.
var (
	btM = [6][6]float64{
		{4, 0, -5, 0, 1, 0},
		{0, -4, -4, 1, 1, 0},
		{0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0},
		{0, 2, -1, -2, 1, 0},
		{0, 4, 0, -5, 0, 1},
	}
	gM = [6][3]float64{
		{1.0 / 4, 0, 0},
		{-1.0 / 6, -1.0 / 6, -1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6},
		{1.0 / 24, 1.0 / 12, 1.0 / 6},
		{1.0 / 24, -1.0 / 12, 1.0 / 6},
		{0, 0, 1},
	}
	atM = [4][6]float64{
		{1, 1, 1, 1, 1, 0},
		{0, 1, -1, 2, -2, 0},
		{0, 1, 1, 4, 4, 0},
		{0, 1, -1, 8, -8, 1},
	}
)

// guardLen is how many sentinels surround each output buffer.
const guardLen = 64

// problem is one convolution, its operands laid out as Conv reads them.
type problem struct {
	oh, ow, cin, cout int
	irs, ors          int
	in                []float32 // padded input; the gaps between rows hold NaN
	w, bias, u        []float32 // OIHW weights, bias (nil for none), Pack(w)
	relu              bool
}

func (p *problem) String() string {
	return fmt.Sprintf("%dx%d cin=%d cout=%d irs=%d ors=%d bias=%v relu=%v",
		p.oh, p.ow, p.cin, p.cout, p.irs, p.ors, p.bias != nil, p.relu)
}

// newProblem draws a problem: N(0, 1) inputs inside a zero halo of one pixel,
// N(0, 1/(9 cin)) weights (He-like scale), N(0, 1) biases. Rows are gap
// floats apart beyond their pixels (irs, ors), and the input gaps hold NaN so
// that reading them would show. The input ends at a guard page.
func newProblem(t testing.TB, rng *rand.Rand, oh, ow, cin, cout int, bias, relu bool, gap int) *problem {
	p := &problem{oh: oh, ow: ow, cin: cin, cout: cout, relu: relu,
		irs: (ow+2)*cin + gap, ors: ow*cout + gap}
	p.in = guarded(t, 0, (oh+1)*p.irs+(ow+2)*cin)
	for i := range p.in {
		p.in[i] = float32(math.NaN())
	}
	for y := 0; y < oh+2; y++ {
		for x := 0; x < ow+2; x++ {
			for c := 0; c < cin; c++ {
				v := float32(0)
				if y > 0 && y <= oh && x > 0 && x <= ow {
					v = float32(rng.NormFloat64())
				}
				p.in[y*p.irs+x*cin+c] = v
			}
		}
	}
	p.w = make([]float32, cout*cin*9)
	for i := range p.w {
		p.w[i] = float32(rng.NormFloat64() / math.Sqrt(float64(9*cin)))
	}
	if bias {
		p.bias = make([]float32, cout)
		for i := range p.bias {
			p.bias[i] = float32(rng.NormFloat64())
		}
	}
	p.pack()
	return p
}

func (p *problem) pack() {
	p.u = make([]float32, PackSize(p.cin, p.cout))
	Pack(p.u, p.w, p.cin, p.cout)
}

func (p *problem) outLen() int { return (p.oh-1)*p.ors + p.ow*p.cout }

// run calls Conv once per tile-row range (together they should cover the
// output) on the current ISA with NaN-filled scratch, and returns the output
// with guardLen sentinels before and after it.
func (p *problem) run(ranges ...[2]int) []float32 {
	buf := sentinels(p.outLen() + 2*guardLen)
	scratch := make([]float32, ScratchSize(p.oh, p.ow, p.cin, p.cout))
	for i := range scratch {
		scratch[i] = float32(math.NaN())
	}
	for _, r := range ranges {
		Conv(buf[guardLen:][:p.outLen()], p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, p.bias, p.relu, r[0], r[1], scratch)
	}
	return buf
}

// all is the range of every tile row.
func (p *problem) all() [2]int { return [2]int{0, TileRows(p.oh)} }

// output returns output (y, x, j) of a run's buffer, and whether every element
// outside the output still holds the sentinel.
func (p *problem) output(buf []float32, y, x, j int) float32 {
	return buf[guardLen+y*p.ors+x*p.cout+j]
}

func (p *problem) checkGuards(t *testing.T, what string, buf []float32) {
	t.Helper()
	for i, v := range buf {
		off := i - guardLen
		inside := off >= 0 && off < p.outLen() && off%p.ors < p.ow*p.cout
		if !inside && math.Float32bits(v) != sentinel {
			t.Fatalf("%s %v: element %d outside the output (offset %d) was overwritten: %v", what, p, i, off, v)
		}
	}
}

// reference is a problem's exact output and the scales of its error bounds,
// per output (y*ow+x)*cout+j, all in float64:
//
//	y      = b + Σ w·x                      (before the ReLU)
//	direct = Σ |w|·|x|                      (the direct convolution's scale)
//	wino   = |b| + Σ_c (|Aᵀ| [(|G| |g| |Gᵀ|) ⊙ (|Bᵀ| |d| |B|)] |A|)[i][j]
//
// with d the output's 6×6 input tile (zero past the input, as Conv pads it)
// and (i, j) its position in its 4×4 tile.
type reference struct {
	y, direct, wino []float64
}

func (p *problem) reference() reference {
	n := p.oh * p.ow * p.cout
	r := reference{y: make([]float64, n), direct: make([]float64, n), wino: make([]float64, n)}
	at := func(y, x, c int) float64 { return float64(p.in[y*p.irs+x*p.cin+c]) }
	for y := 0; y < p.oh; y++ {
		for x := 0; x < p.ow; x++ {
			for j := 0; j < p.cout; j++ {
				s, a := 0.0, 0.0
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						for c := 0; c < p.cin; c++ {
							v := at(y+ky, x+kx, c) * float64(p.w[((j*p.cin+c)*3+ky)*3+kx])
							s += v
							a += math.Abs(v)
						}
					}
				}
				if p.bias != nil {
					s += float64(p.bias[j])
				}
				r.y[(y*p.ow+x)*p.cout+j], r.direct[(y*p.ow+x)*p.cout+j] = s, a
			}
		}
	}

	// |G| |g| |Gᵀ| per (j, c) and |Bᵀ| |d| |B| per (tile, c).
	uabs := make([][36]float64, p.cout*p.cin)
	for jc := range uabs {
		var t [6][3]float64
		for k := 0; k < 6; k++ {
			for b := 0; b < 3; b++ {
				for a := 0; a < 3; a++ {
					t[k][b] += math.Abs(gM[k][a]) * math.Abs(float64(p.w[jc*9+a*3+b]))
				}
			}
		}
		for k := 0; k < 6; k++ {
			for l := 0; l < 6; l++ {
				for b := 0; b < 3; b++ {
					uabs[jc][6*k+l] += t[k][b] * math.Abs(gM[l][b])
				}
			}
		}
	}
	vabs := make([][36]float64, p.cin)
	for ty := 0; ty < TileRows(p.oh); ty++ {
		for tx := 0; tx < TileRows(p.ow); tx++ {
			for c := 0; c < p.cin; c++ {
				var t [6][6]float64 // |d| |B|
				for y := 0; y < 6 && 4*ty+y < p.oh+2; y++ {
					for x := 0; x < 6 && 4*tx+x < p.ow+2; x++ {
						d := math.Abs(at(4*ty+y, 4*tx+x, c))
						for l := 0; l < 6; l++ {
							t[y][l] += d * math.Abs(btM[l][x])
						}
					}
				}
				vabs[c] = [36]float64{}
				for k := 0; k < 6; k++ {
					for l := 0; l < 6; l++ {
						for y := 0; y < 6; y++ {
							vabs[c][6*k+l] += math.Abs(btM[k][y]) * t[y][l]
						}
					}
				}
			}
			for j := 0; j < p.cout; j++ {
				var m [36]float64
				for c := 0; c < p.cin; c++ {
					u, v := &uabs[j*p.cin+c], &vabs[c]
					for xi := range m {
						m[xi] += u[xi] * v[xi]
					}
				}
				for i := 0; i < 4 && 4*ty+i < p.oh; i++ {
					for jj := 0; jj < 4 && 4*tx+jj < p.ow; jj++ {
						s := 0.0
						for k := 0; k < 6; k++ {
							for l := 0; l < 6; l++ {
								s += math.Abs(atM[i][k]) * m[6*k+l] * math.Abs(atM[jj][l])
							}
						}
						if p.bias != nil {
							s += math.Abs(float64(p.bias[j]))
						}
						r.wino[((4*ty+i)*p.ow+4*tx+jj)*p.cout+j] = s
					}
				}
			}
		}
	}
	return r
}

// gamma is γ_n = n·u/(1-n·u), the bound on |Π(1+δ_i) - 1| over n roundings
// of unit roundoff u each.
func gamma(n int, u float64) float64 { return float64(n) * u / (1 - float64(n)*u) }

// winoRoundings is n, the longest chain of float32 roundings between a term
// g·d of an output and the output (Higham's model fl(a∘b) = (a∘b)(1+δ),
// |δ| ≤ u = 2⁻²⁴; products by 2, 4 and 8 are exact):
//
//	U = G g Gᵀ      2   float64 sums (≤ 6 roundings of 2⁻⁵³, far below one
//	                    float32 rounding) then one rounding to float32
//	V = Bᵀ d B      4   two passes of bt, each output of bt two deep
//	M = Σ_c U V     cin the FMA chain of kernels.ConvNHWC from +0: the first
//	                    term's product goes through all cin roundings
//	Aᵀ M A          6   two passes of at, each output of at three deep
//	+ bias          1
//
// so n = cin + 13 and, expanding every computed value into its terms g·d
// (and b), |ŷ - y| ≤ γ_n · wino (reference.wino). The ReLU is 1-Lipschitz and
// does not change the bound. The float64 reference is itself off by at most
// γ_{9cin+1}(2⁻⁵³) · direct, added to the bound.
func winoRoundings(cin int) int { return cin + 13 }

// errStats collects, over a test, the largest error / bound ratio and the
// largest error relative to Σ|w||x| of Conv and of the direct convolution.
type errStats struct {
	winoRatio, winoRel     float64
	directRatio, directRel float64
	outputs                int
}

func (s *errStats) log(t *testing.T) {
	t.Logf("Winograd: largest error / bound %.3g, largest error / Σ|w||x| %.3g (over %d outputs)", s.winoRatio, s.winoRel, s.outputs)
	if s.directRatio > 0 {
		t.Logf("direct fp32 (kernels.ConvNHWC): largest error / its bound γ(9cin+1)·Σ|w||x| %.3g, largest error / Σ|w||x| %.3g", s.directRatio, s.directRel)
	}
}

// checkBound asserts that every output of buf is within the Winograd bound of
// the exact result, and notes the ratios in st.
func (p *problem) checkBound(t *testing.T, what string, buf []float32, r reference, st *errStats) {
	t.Helper()
	g := gamma(winoRoundings(p.cin), 0x1p-24)
	g64 := gamma(9*p.cin+1, 0x1p-53)
	bad := 0
	for y := 0; y < p.oh; y++ {
		for x := 0; x < p.ow; x++ {
			for j := 0; j < p.cout; j++ {
				k := (y*p.ow+x)*p.cout + j
				want := r.y[k]
				if p.relu && want < 0 {
					want = 0
				}
				got := float64(p.output(buf, y, x, j))
				bound := (g*r.wino[k] + g64*r.direct[k]) * (1 + 0x1p-40) // float64 slack of the bound itself
				e := math.Abs(got - want)
				if !(e <= bound) {
					t.Errorf("%s %v: out(%d,%d,%d) = %v, want %v: error %.3g > bound %.3g", what, p, y, x, j, got, want, e, bound)
					if bad++; bad == 5 {
						t.FailNow()
					}
				}
				st.winoRatio = max(st.winoRatio, e/bound)
				st.winoRel = max(st.winoRel, e/r.direct[k])
				st.outputs++
			}
		}
	}
}

// direct runs the same convolution directly with kernels.ConvNHWC (3×3
// weights packed [block][ky][kx][cin][NR]) on the current ISA, checks it
// against its own bound γ_{9cin+1}·(Σ|w||x| + |b|) (a chain of 9·cin FMAs
// from the bias) and notes its ratios in st.
func (p *problem) direct(t *testing.T, r reference, st *errStats) {
	ocb := ocBlocks(p.cout)
	w := make([]float32, ocb*9*p.cin*NR)
	b := make([]float32, ocb*NR)
	for j := 0; j < p.cout; j++ {
		for c := 0; c < p.cin; c++ {
			for tap := 0; tap < 9; tap++ {
				w[((j/NR*9+tap)*p.cin+c)*NR+j%NR] = p.w[(j*p.cin+c)*9+tap]
			}
		}
		if p.bias != nil {
			b[j] = p.bias[j]
		}
	}
	out := make([]float32, p.oh*p.ow*p.cout)
	for y := 0; y < p.oh; y++ {
		for ob := 0; ob < ocb; ob++ {
			kernels.ConvNHWC(out[y*p.ow*p.cout+ob*NR:], p.cout, p.in[y*p.irs:], p.cin, p.irs, p.cin, p.cin, 3, 3,
				w[ob*9*p.cin*NR:], b[ob*NR:], p.ow, min(NR, p.cout-ob*NR), p.relu)
		}
	}
	g := gamma(9*p.cin+1, 0x1p-24)
	for k, v := range out {
		want := r.y[k]
		if p.relu && want < 0 {
			want = 0
		}
		e := math.Abs(float64(v) - want)
		scale := r.direct[k]
		if p.bias != nil {
			scale += math.Abs(float64(p.bias[k%p.cout]))
		}
		bound := g * scale
		if !(e <= bound*(1+0x1p-20)) {
			t.Errorf("direct %v: output %d = %v, want %v: error %.3g > bound %.3g", p, k, v, want, e, bound)
			return
		}
		st.directRatio = max(st.directRatio, e/bound)
		st.directRel = max(st.directRel, e/r.direct[k])
	}
}

// runAll runs Conv over all tile rows on every ISA: each result within the
// bound, nothing written outside the output, and all ISAs the same bits.
// It returns the first ISA's result.
func (p *problem) runAll(t *testing.T, st *errStats) []float32 {
	t.Helper()
	r := p.reference()
	var first []float32
	var firstISA string
	for _, isa := range isaNames {
		withISA(isa, func() {
			buf := p.run(p.all())
			p.checkGuards(t, isa, buf)
			p.checkBound(t, isa, buf, r, st)
			if first == nil {
				first, firstISA = buf, isa
				p.direct(t, r, st)
				return
			}
			for i := range buf {
				if !same(buf[i], first[i]) {
					t.Fatalf("%v: %s and %s differ at element %d: %v, %v", p, isa, firstISA, i, buf[i], first[i])
				}
			}
		})
	}
	return first
}

// sizes are the output heights and widths of the tests: every remainder mod
// 4 (ragged edge tiles), one tile or fewer, and AlexNet's 13 and VGG's 14, 28.
var sizes = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 28}

// channels are the channel counts of the tests: 1, partial vectors of 16 and
// 8 lanes and partial blocks of NR = 32, whole blocks, and 100 (3 blocks + 4).
var channels = []int{1, 3, 17, 32, 64, 100}

// TestConvSizes runs every oh × ow of sizes with few channels (alternating
// among small cin, cout pairs, bias and ReLU on and off) on every ISA.
func TestConvSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var st errStats
	pairs := [][2]int{{1, 1}, {3, 17}, {17, 3}, {1, 32}, {5, 2}}
	i := 0
	for _, oh := range sizes {
		for _, ow := range sizes {
			i++
			c := pairs[i%len(pairs)]
			p := newProblem(t, rng, oh, ow, c[0], c[1], i%2 == 0, i%3 == 0, i%3)
			p.runAll(t, &st)
		}
	}
	st.log(t)
}

// TestConvChannels runs every cin × cout of channels on ragged and whole
// tiles, bias and ReLU on and off, on every ISA; the largest shapes also at
// 28×28.
func TestConvChannels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var st errStats
	i := 0
	for _, cin := range channels {
		for _, cout := range channels {
			shapes := [][2]int{{5, 7}, {13, 14}}
			if cin == cout || cin*cout <= 64*32 {
				shapes = append(shapes, [2]int{28, 28})
			}
			for _, s := range shapes {
				i++
				p := newProblem(t, rng, s[0], s[1], cin, cout, i%2 == 0, i%4 < 2, i%5)
				p.runAll(t, &st)
			}
		}
	}
	st.log(t)
}

// TestConvScale runs VGG-like channel counts (cin = 256, 512: the GEMM chain,
// and so n, is long) on one small image, on the best ISA only, to show the
// bound and the measured errors where they are largest.
func TestConvScale(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var st errStats
	for _, s := range []struct{ hw, cin, cout int }{{14, 256, 64}, {7, 512, 40}} {
		p := newProblem(t, rng, s.hw, s.hw, s.cin, s.cout, true, false, 0)
		r := p.reference()
		p.checkBound(t, kernels.ISA(), p.run(p.all()), r, &st)
		p.direct(t, r, &st)
	}
	st.log(t)
}

// TestConvSplits runs each problem as every split of its tile rows into
// consecutive ranges (what threads splitting the rows do), with chunks of
// 1, 5, 9 and all tiles (chunks that cross tile rows and end inside them), on
// every ISA: every split must give the bits of one call.
func TestConvSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	defer func() { chunkOverride = 0 }()
	for _, s := range []struct{ oh, ow, cin, cout int }{{13, 14, 17, 33}, {28, 9, 3, 40}, {9, 5, 20, 7}} {
		p := newProblem(t, rng, s.oh, s.ow, s.cin, s.cout, true, true, 1)
		th := TileRows(p.oh)
		var want []float32
		for _, isa := range isaNames {
			withISA(isa, func() {
				for _, cb := range []int{1, 5, 9, 1 << 20} {
					chunkOverride = cb
					if want == nil {
						want = p.run(p.all())
					}
					// Bit k of split set: a range ends after tile row k.
					for split := 0; split < 1<<(th-1); split++ {
						var ranges [][2]int
						t0 := 0
						for k := 0; k < th; k++ {
							if k == th-1 || split&(1<<k) != 0 {
								ranges = append(ranges, [2]int{t0, k + 1})
								t0 = k + 1
							}
						}
						// The ranges in reverse order, as threads may finish.
						slices.Reverse(ranges)
						got := p.run(ranges...)
						if !slices.EqualFunc(got, want, same) {
							t.Fatalf("%s %v: chunks of %d tiles, ranges %v differ from one call", isa, p, cb, ranges)
						}
					}
				}
			})
		}
	}
}

// TestConvConcurrent runs the tile rows of one image on several goroutines at
// once, each with its own scratch, as threads of a generated model do: the
// result is the one call's, bit for bit (run it with -race too).
func TestConvConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	p := newProblem(t, rng, 28, 13, 17, 40, true, true, 2)
	want := p.run(p.all())
	got := sentinels(len(want))
	th := TileRows(p.oh)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := make([]float32, ScratchSize(p.oh, p.ow, p.cin, p.cout))
			Conv(got[guardLen:][:p.outLen()], p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, p.bias, p.relu,
				w*th/3, (w+1)*th/3, scratch)
		}()
	}
	wg.Wait()
	if !slices.EqualFunc(got, want, same) {
		t.Fatal("concurrent tile-row ranges differ from one call")
	}
}

// TestConvSpecial checks how NaN and Inf propagate. A NaN or Inf input pixel
// makes every output whose 3×3 window covers it non-finite (NaN for a NaN),
// as in a direct convolution; Winograd also spreads it to other outputs of the
// tiles whose 6×6 input window covers it, but no further: every output of
// the other tiles keeps its bits. A NaN weight makes its output channel NaN,
// a NaN bias likewise, and the other channels keep their bits.
func TestConvSpecial(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, isa := range isaNames {
		withISA(isa, func() {
			p := newProblem(t, rng, 13, 14, 5, 7, true, false, 0)
			base := p.run(p.all())
			for _, special := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				for _, px := range [][2]int{{1, 1}, {4, 5}, {6, 6}, {13, 14}, {9, 12}} {
					k := px[0]*p.irs + px[1]*p.cin + 2
					old := p.in[k]
					p.in[k] = special
					got := p.run(p.all())
					p.in[k] = old
					for y := 0; y < p.oh; y++ {
						for x := 0; x < p.ow; x++ {
							covers := y <= px[0] && px[0] <= y+2 && x <= px[1] && px[1] <= x+2
							ty, tx := y/4*4, x/4*4
							tileCovers := ty <= px[0] && px[0] < ty+6 && tx <= px[1] && px[1] < tx+6
							for j := 0; j < p.cout; j++ {
								v := p.output(got, y, x, j)
								switch {
								case covers && special != special && v == v:
									t.Fatalf("%s: NaN at input %v: output (%d,%d,%d) = %v", isa, px, y, x, j, v)
								case covers && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0):
									t.Fatalf("%s: %v at input %v: output (%d,%d,%d) = %v", isa, special, px, y, x, j, v)
								case !tileCovers && !same(v, p.output(base, y, x, j)):
									t.Fatalf("%s: %v at input %v changed output (%d,%d,%d) of another tile", isa, special, px, y, x, j)
								}
							}
						}
					}
				}
			}
			// A NaN weight, then a NaN bias, in output channel 3.
			for _, nanBias := range []bool{false, true} {
				if nanBias {
					p.bias[3] = float32(math.NaN())
				} else {
					p.w[(3*p.cin+1)*9+4] = float32(math.NaN())
					p.pack()
				}
				got := p.run(p.all())
				for y := 0; y < p.oh; y++ {
					for x := 0; x < p.ow; x++ {
						for j := 0; j < p.cout; j++ {
							v := p.output(got, y, x, j)
							if j == 3 && v == v || j != 3 && !same(v, p.output(base, y, x, j)) {
								t.Fatalf("%s: NaN bias %v: output (%d,%d,%d) = %v", isa, nanBias, y, x, j, v)
							}
						}
					}
				}
			}
		})
	}
}

// TestPack checks the packed layout against G g Gᵀ computed here from the
// float64 matrix G: position ξ = 6k+l, block, input channel, lane; one float32
// rounding of the float64 value (the two float64 evaluations may differ in
// their last bits, which the float32 rounding hides but for rare ties: those
// may differ by one float32 ulp); zeros past cout.
func TestPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const cin, cout = 5, 37
	w := make([]float32, cout*cin*9)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	u := sentinels(PackSize(cin, cout) + 1)
	Pack(u[:PackSize(cin, cout)], w, cin, cout)
	if math.Float32bits(u[len(u)-1]) != sentinel {
		t.Fatal("Pack wrote past PackSize")
	}
	ocb := ocBlocks(cout)
	for xi := 0; xi < 36; xi++ {
		k, l := xi/6, xi%6
		for ob := 0; ob < ocb; ob++ {
			for c := 0; c < cin; c++ {
				for j := 0; j < NR; j++ {
					got := u[((xi*ocb+ob)*cin+c)*NR+j]
					oc := ob*NR + j
					if oc >= cout {
						if got != 0 {
							t.Fatalf("padding lane %d of block %d = %v", j, ob, got)
						}
						continue
					}
					want := 0.0
					for a := 0; a < 3; a++ {
						for b := 0; b < 3; b++ {
							want += gM[k][a] * float64(w[(oc*cin+c)*9+a*3+b]) * gM[l][b]
						}
					}
					if d := math.Abs(float64(got) - want); d > 0x1p-24*math.Abs(want)*1.0001 {
						t.Fatalf("U[%d][%d] of (%d, %d) = %v, want %v", k, l, oc, c, got, want)
					}
				}
			}
		}
	}
}

// TestConvPanics checks the argument checks.
func TestConvPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	p := newProblem(t, rng, 5, 6, 3, 4, true, false, 0)
	scratch := make([]float32, ScratchSize(p.oh, p.ow, p.cin, p.cout))
	out := make([]float32, p.outLen())
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"bad shape", func() { Conv(out, p.ors, p.in, p.irs, 0, p.ow, p.cin, p.cout, p.u, nil, false, 0, 0, scratch) }},
		{"bad tile rows", func() { Conv(out, p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, nil, false, 0, 3, scratch) }},
		{"overlapping rows", func() {
			Conv(out, p.ors, p.in, p.irs-1, p.oh, p.ow, p.cin, p.cout, p.u, nil, false, 0, 1, scratch)
		}},
		{"in too short", func() {
			Conv(out, p.ors, p.in[:len(p.in)-1], p.irs, p.oh, p.ow, p.cin, p.cout, p.u, nil, false, 0, 1, scratch)
		}},
		{"out too short", func() {
			Conv(out[:len(out)-1], p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, nil, false, 0, 1, scratch)
		}},
		{"u too short", func() {
			Conv(out, p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u[1:], nil, false, 0, 1, scratch)
		}},
		{"bias too short", func() {
			Conv(out, p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, p.bias[1:], false, 0, 1, scratch)
		}},
		{"scratch too short", func() {
			Conv(out, p.ors, p.in, p.irs, p.oh, p.ow, p.cin, p.cout, p.u, nil, false, 0, 1, scratch[1:])
		}},
		{"Pack: dst too short", func() { Pack(p.u[1:], p.w, p.cin, p.cout) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", tc.name)
				} else if s, _ := r.(string); s != "winograd.Conv: "+tc.name && s != "winograd."+tc.name {
					t.Errorf("%s: panic %v", tc.name, r)
				}
			}()
			tc.f()
		}()
	}
}
