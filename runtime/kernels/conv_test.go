package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// convISA is one implementation of the convolution kernels (see convISAs).
type convISA struct {
	name string
	has  bool   // this CPU can run it
	use  func() // set the dispatch flags to select it
}

// forEachConvISA runs f as a subtest per implementation, skipping those the
// CPU lacks, with the dispatch flags restored afterwards.
func forEachConvISA(t *testing.T, f func(t *testing.T)) {
	defer convRestoreISA()()
	for _, isa := range convISAs() {
		t.Run(isa.name, func(t *testing.T) {
			if !isa.has {
				t.Skipf("CPU lacks %s", isa.name)
			}
			isa.use()
			f(t)
		})
	}
}

// convSentinel fills the output elements a kernel must not write: a
// signalling NaN, which no arithmetic result can equal.
const convSentinel = 0x7fa5a5a5

// convGuardLen is how many sentinel elements surround each output.
const convGuardLen = 2 * NR

// sameConv says whether a kernel result equals the pure-Go twin's: the same
// bits, except that any NaN equals any NaN (FMA32 does not specify NaN payloads).
func sameConv(got, want float32) bool {
	if got != got || want != want {
		return got != got && want != want
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

// convValue draws an operand: mostly normal numbers spread over 2^±8 (so that
// any change of FMA order or rounding shows in the bits), and with probability
// special/64 one of NaN, ±Inf, ±0 or a subnormal.
func convValue(rng *rand.Rand, special int) float32 {
	if special > 0 && rng.IntN(64) < special {
		switch rng.IntN(8) {
		case 0:
			return float32(math.NaN())
		case 1:
			return float32(math.Inf(1))
		case 2:
			return float32(math.Inf(-1))
		case 3:
			return float32(math.Copysign(0, -1))
		case 4:
			return 0
		case 5:
			return math.Float32frombits(rng.Uint32N(1 << 23)) // positive subnormal
		case 6:
			return -math.Float32frombits(rng.Uint32N(1<<23) | 1)
		default:
			return float32(rng.NormFloat64()) * 0x1p-120 // products go subnormal
		}
	}
	return float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(17)-8))
}

func convFill(rng *rand.Rand, x []float32, special int) {
	for i := range x {
		x[i] = convValue(rng, special)
	}
}

// convCase is one ConvNHWC call: np output pixels of an NHWC input with C
// channels (cin ≤ C of them read at each tap), kernel kh×kw, stride, padded
// input width wide = (np-1)*stride+kw+extra, output pixel stride so.
type convCase struct {
	np, nr, cin, C, kh, kw, stride, extra, so int
	bias, relu                                bool
	special                                   int // see convValue
}

func (c convCase) String() string {
	return fmt.Sprintf("np=%d nr=%d cin=%d C=%d k=%dx%d stride=%d extra=%d so=%d bias=%v relu=%v special=%d",
		c.np, c.nr, c.cin, c.C, c.kh, c.kw, c.stride, c.extra, c.so, c.bias, c.relu, c.special)
}

// strides returns the contract's strides and the minimum input length.
func (c convCase) strides() (sx, sy, sc, lin int) {
	wide := (c.np-1)*c.stride + c.kw + c.extra
	sx, sy, sc = c.stride*c.C, wide*c.C, c.C
	lin = (c.np-1)*sx + (c.kh-1)*sy + (c.kw-1)*sc + c.cin
	return
}

// run checks one case against convNHWCGo on the current implementation (plant,
// if not nil, may overwrite operands after they are drawn): the
// inputs are exactly as long as checkConv requires and end at a guard page
// (Linux), and the output is surrounded and interleaved (channels nr..so-1 of
// each pixel) with sentinels that must survive.
func (c convCase) run(t *testing.T, rng *rand.Rand, plant func(in, w []float32)) {
	t.Helper()
	sx, sy, sc, lin := c.strides()
	in := convGuarded(t, 0, lin)
	w := convGuarded(t, 1, c.kh*c.kw*c.cin*NR)
	convFill(rng, in, c.special)
	convFill(rng, w, c.special)
	if plant != nil {
		plant(in, w)
	}
	var bias []float32
	if c.bias {
		bias = convGuarded(t, 2, NR)
		convFill(rng, bias, c.special)
	}
	lout := (c.np-1)*c.so + c.nr
	got := make([]float32, lout+2*convGuardLen)
	want := make([]float32, len(got))
	for i := range got {
		got[i] = math.Float32frombits(convSentinel)
		want[i] = got[i]
	}
	convNHWCGo(want[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.cin, c.kh, c.kw, w, bias, c.np, c.nr, c.relu)
	ConvNHWC(got[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.cin, c.kh, c.kw, w, bias, c.np, c.nr, c.relu)
	checkConvOut(t, c.String(), got, want, c.np, c.nr, c.so)

	// ConvNHWCNext computes the same bits whatever it prefetches: up to three
	// ranges, each nothing, one element, its own weights or input, or a long
	// unrelated buffer.
	next := make([][]float32, rng.IntN(4))
	lens := make([]int, len(next))
	for i := range next {
		next[i] = [][]float32{nil, w[:1], w, in, convNextBuf}[rng.IntN(5)]
		lens[i] = len(next[i])
	}
	for i := range got {
		got[i] = math.Float32frombits(convSentinel)
	}
	ConvNHWCNext(got[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.cin, c.kh, c.kw, w, bias, c.np, c.nr, c.relu, next...)
	checkConvOut(t, c.String()+fmt.Sprintf(" ConvNHWCNext(ranges of %v)", lens), got, want, c.np, c.nr, c.so)

	// ConvNHWCStream too, with out on a 64-byte boundary (streaming stores when
	// nr = NR and 4*so is a multiple of 64), one value and 8 values (32 bytes,
	// AVX2's vector) off it (stores as usual), all between the same sentinels.
	for _, shift := range []int{0, 1, 8} {
		buf := convAligned(len(got) + 32)
		g := buf[16-convGuardLen%16+shift:][:len(got)]
		for i := range g {
			g[i] = math.Float32frombits(convSentinel)
		}
		ConvNHWCStream(g[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.cin, c.kh, c.kw, w, bias, c.np, c.nr, c.relu, next...)
		StoreFence()
		checkConvOut(t, c.String()+fmt.Sprintf(" ConvNHWCStream(out %d values past a 64-byte boundary)", shift), g, want, c.np, c.nr, c.so)
	}
}

// convNextBuf is memory for ConvNHWCNext to prefetch: 1 MiB, more than any
// test call's channel loop has iterations for.
var convNextBuf = make([]float32, 1<<18)

// checkConvOut compares a kernel's output with the twin's: every element the
// contract writes (pixel p's channels j < nr) must match, every other element
// of the guarded buffer must still hold the sentinel.
func checkConvOut(t *testing.T, what string, got, want []float32, rows, nr, stride int) {
	t.Helper()
	bad := 0
	for i := range got {
		off := i - convGuardLen
		written := off >= 0 && off/stride < rows && off%stride < nr && off < (rows-1)*stride+nr
		g := got[i]
		switch {
		case !written && math.Float32bits(g) != convSentinel:
			t.Errorf("%s: element %d (row %d, col %d) outside the output was overwritten: %v", what, i, off/stride, off%stride, g)
		case written && !sameConv(g, want[i]):
			t.Errorf("%s: row %d col %d = %v (%#08x), want %v (%#08x)", what, off/stride, off%stride,
				g, math.Float32bits(g), want[i], math.Float32bits(want[i]))
		default:
			continue
		}
		if bad++; bad == 5 {
			t.Fatalf("%s: too many errors", what)
		}
	}
	if bad > 0 {
		t.FailNow()
	}
}

// TestConvNHWCAsLinear runs ConvNHWC as exact mode runs a small linear layer
// (gen.LinearGEMM): m samples as the pixels of a 1×1 convolution with k input
// channels (sx = k, sy = sc = 0), one call per block of NR outputs with a
// partial last block, on weights packed [block][k][NR]. Every output must be the
// one FMA chain from its bias over the k inputs in order, bit for bit, on every
// ISA, and nothing past the n outputs of each sample may be written.
func TestConvNHWCAsLinear(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, s := range []struct{ m, n, k int }{{1, 40, 7}, {2, 96, 64}, {4, 65, 9}, {5, 100, 33}, {9, 64, 128}, {16, 33, 1}, {33, 70, 257}} {
			nb := (s.n + NR - 1) / NR
			x := make([]float32, s.m*s.k)
			w := make([]float32, s.n*s.k) // torchvision layout, n×k
			b := make([]float32, s.n)
			convFill(rng, x, 2)
			convFill(rng, w, 2)
			convFill(rng, b, 2)
			pack, pbias := linearGEMMPack(w, s.n, s.k), make([]float32, nb*NR)
			copy(pbias, b)
			got := make([]float32, 2*convGuardLen+s.m*s.n)
			want := make([]float32, len(got))
			for i := range got {
				got[i] = math.Float32frombits(convSentinel)
			}
			for i := range s.m {
				for j := range s.n {
					acc := b[j]
					for c := range s.k {
						acc = FMA32(x[i*s.k+c], w[j*s.k+c], acc)
					}
					want[convGuardLen+i*s.n+j] = acc
				}
			}
			linearGEMMRun(got[convGuardLen:], x, pack, pbias, s.m, s.n, s.k, false)
			checkConvOut(t, fmt.Sprintf("m=%d n=%d k=%d", s.m, s.n, s.k), got, want, s.m, s.n, s.n)
		}
	})
}

// linearGEMMPack packs a linear layer's n×k weights w (torchvision's layout) as
// a 1×1 convolution's, [block of NR outputs][k][NR] with zeros past n: what
// nn.PackConv makes for gen.LinearGEMM's layers.
func linearGEMMPack(w []float32, n, k int) []float32 {
	pack := make([]float32, (n+NR-1)/NR*k*NR)
	for j := range n {
		for c := range k {
			pack[(j/NR*k+c)*NR+j%NR] = w[j*k+c]
		}
	}
	return pack
}

// linearGEMMRun is the generated forward of a gen.LinearGEMM layer on one
// thread: y (m×n) from x (m×k), one ConvNHWC call per block of NR outputs with
// the samples as pixels. bias holds a multiple of NR values.
func linearGEMMRun(y, x, pack, bias []float32, m, n, k int, relu bool) {
	for blk := range (n + NR - 1) / NR {
		ConvNHWC(y[blk*NR:], n, x, k, 0, 0, k, 1, 1, pack[blk*k*NR:][:k*NR], bias[blk*NR:][:NR], m, min(NR, n-blk*NR), relu)
	}
}

// TestConvNHWCTiles covers every partial pixel tile (np = 1..2×14+1, which
// includes AVX2's 6-pixel tiles) and every channel count nr = 1..32, on small
// kernels with and without the merged-taps path (sc == cin).
func TestConvNHWCTiles(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, shape := range []struct{ cin, C, k int }{{3, 3, 3}, {5, 8, 2}, {17, 17, 1}} {
			for np := 1; np <= 29; np++ {
				for nr := 1; nr <= NR; nr++ {
					c := convCase{np: np, nr: nr, cin: shape.cin, C: shape.C, kh: shape.k, kw: shape.k, stride: 1,
						extra: np % 2, so: nr + np%3, bias: nr%2 == 0, relu: nr%3 != 0}
					c.run(t, rng, nil)
				}
			}
		}
	})
}

// TestConvNHWCShapes covers kernel sizes, strides, channel counts (also cin <
// C, where kernel columns are separate channel runs), odd strides, bias and
// ReLU, at pixel counts around the tile sizes.
func TestConvNHWCShapes(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		i := 0
		for _, k := range [][2]int{{1, 1}, {3, 3}, {5, 5}, {11, 11}, {3, 2}, {2, 3}} {
			for _, stride := range []int{1, 2, 4} {
				for _, cin := range []int{1, 3, 16, 17} {
					for _, dc := range []int{0, 3} {
						for _, np := range []int{1, 5, 14, 15, 29} {
							for _, nr := range []int{7, 8, 15, 16, 17, 31, 32} {
								i++
								if (i+nr)%3 != 0 && nr != 32 && nr != 17 {
									continue // a third of the partial nr, all 17 and 32
								}
								c := convCase{np: np, nr: nr, cin: cin, C: cin + dc, kh: k[0], kw: k[1], stride: stride,
									extra: i % 2, so: NR + i%2, bias: i%4 < 2, relu: i%4%2 == 0}
								c.run(t, rng, nil)
							}
						}
					}
				}
			}
		}
	})
}

// TestConvNHWCSpecial runs operands with NaN, ±Inf, ±0 and subnormals
// (about one in four) through every tile, then checks the signed-zero and NaN
// rules of the ReLU and subnormal results by value.
func TestConvNHWCSpecial(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for np := 1; np <= 29; np++ {
			for _, special := range []int{4, 16, 64} {
				for _, relu := range []bool{false, true} {
					c := convCase{np: np, nr: 32 - np%5, cin: 4, C: 4, kh: 2, kw: 2, stride: 2, so: 35,
						bias: true, relu: relu, special: special}
					c.run(t, rng, nil)
				}
			}
		}

		// Per channel j of one pixel: bias[j], and the one product in*w[j].
		negZero := float32(math.Copysign(0, -1))
		inf, nan := float32(math.Inf(1)), float32(math.NaN())
		sub := math.Float32frombits(1) // smallest subnormal
		for _, tc := range []struct {
			name        string
			in, w, bias float32
			relu        bool
			want        float32
		}{
			{"-0 stays -0", 0, -1, negZero, false, negZero},
			{"relu keeps -0", 0, -1, negZero, true, negZero},
			{"+0 + -0", 0, -1, 0, true, 0},
			{"relu of negative", 1, -2, 0, true, 0},
			{"relu keeps NaN", 1, 1, nan, true, nan},
			{"NaN input", nan, 1, 0, false, nan},
			{"Inf", inf, 2, 1, true, inf},
			{"-Inf", inf, -2, 1, false, -inf},
			{"relu of -Inf", inf, -2, 1, true, 0},
			{"Inf*0", inf, 0, 1, false, nan},
			{"Inf-Inf", inf, 1, -inf, false, nan},
			{"subnormal product", 0x1p-70, 0x1p-70, 0, false, 0x1p-140},
			{"subnormal sum", sub, 1, sub, false, 2 * sub},
			{"underflow to -0", -sub, 0x1p-10, 0, false, negZero},
			{"relu of underflow", -sub, 0x1p-10, 0, true, negZero},
			{"overflow", math.MaxFloat32, 2, 0, false, inf},
		} {
			in := []float32{tc.in}
			w := make([]float32, NR)
			bias := make([]float32, NR)
			for j := range w {
				w[j], bias[j] = tc.w, tc.bias
			}
			out := make([]float32, NR)
			ConvNHWC(out, NR, in, 1, 1, 1, 1, 1, 1, w, bias, 1, NR, tc.relu)
			for j, v := range out {
				if !sameConv(v, tc.want) {
					t.Errorf("%s: out[%d] = %v (%#08x), want %v (%#08x)", tc.name, j, v, math.Float32bits(v), tc.want, math.Float32bits(tc.want))
					break
				}
			}
		}
	})
}

// wgradCase is one ConvWgrad call: nrows rows of np pixels; x's row stride
// is np*sx+dsx (dsx may be negative: overlapping rows), dy's np*so+dso.
type wgradCase struct {
	np, nrows, nc, nr, sx, dsx, so, dso int
	special                             int
}

func (c wgradCase) String() string {
	return fmt.Sprintf("np=%d nrows=%d nc=%d nr=%d sx=%d sxr=%d so=%d sor=%d special=%d",
		c.np, c.nrows, c.nc, c.nr, c.sx, c.sxr(), c.so, c.sor(), c.special)
}

func (c wgradCase) sxr() int { return max(c.np*c.sx+c.dsx, 0) }
func (c wgradCase) sor() int { return max(c.np*c.so+c.dso, 0) }

// operands returns x and dy exactly as long as ConvWgrad requires, each
// ending at a guard page (Linux), filled with random values.
func (c wgradCase) operands(t *testing.T, rng *rand.Rand) (x, dy []float32) {
	x = convGuarded(t, 0, (c.nrows-1)*c.sxr()+(c.np-1)*c.sx+c.nc)
	dy = convGuarded(t, 1, (c.nrows-1)*c.sor()+(c.np-1)*c.so+c.nr)
	convFill(rng, x, c.special)
	convFill(rng, dy, c.special)
	return x, dy
}

// dwBuffers returns two equal guarded dw buffers (convGuardLen sentinels
// before and after): the rows' channels j < nr hold random values, the
// channels nr..NR-1 of every row (which the kernel must not write) and the
// guards hold sentinels.
func (c wgradCase) dwBuffers(rng *rand.Rand) (ldw int, got, want []float32) {
	ldw = (c.nc-1)*NR + c.nr
	got = make([]float32, ldw+2*convGuardLen)
	want = make([]float32, len(got))
	for i := range got {
		off := i - convGuardLen
		v := math.Float32frombits(convSentinel)
		if off >= 0 && off < ldw && off%NR < c.nr {
			v = convValue(rng, c.special)
		}
		got[i], want[i] = v, v
	}
	return ldw, got, want
}

// run checks one ConvWgrad case against convWgradGo on the current
// implementation, with the kernel's x, dy and dw ending at guard pages.
func (c wgradCase) run(t *testing.T, rng *rand.Rand) {
	t.Helper()
	x, dy := c.operands(t, rng)
	ldw, got, want := c.dwBuffers(rng)
	convWgradGo(want[convGuardLen:][:ldw], x, c.sx, c.sxr(), dy, c.so, c.sor(), c.np, c.nrows, c.nc, c.nr)
	dw := convGuarded(t, 2, ldw)
	copy(dw, got[convGuardLen:])
	ConvWgrad(dw, x, c.sx, c.sxr(), dy, c.so, c.sor(), c.np, c.nrows, c.nc, c.nr)
	copy(got[convGuardLen:], dw)
	checkConvOut(t, c.String(), got, want, c.nc, c.nr, NR)
}

// TestConvWgradTiles covers every partial channel tile (nc = 1..2×14+1),
// channel counts nr, odd and even pixel counts (the pixel loop runs two at a
// time), 1, 2 and 7 rows, odd pixel strides, and row strides that are not
// multiples of the pixel stride, shorter than a row (overlapping rows) or 0.
func TestConvWgradTiles(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		rows := []int{1, 2, 7}
		i := 0
		for nc := 1; nc <= 29; nc++ {
			for nr := 1; nr <= NR; nr++ {
				for _, np := range []int{1, 2, 3, 8, 13} {
					if (nc+nr+np)%2 == 0 && nr != 32 && nr != 16 && nr != 1 {
						continue
					}
					i++
					c := wgradCase{np: np, nrows: rows[i%3], nc: nc, nr: nr, sx: nc + np%3, dsx: 1 + i%5,
						so: nr + nc%2, dso: i%4 - 1}
					c.run(t, rng)
				}
			}
		}
		for _, np := range []int{1, 2, 4, 5, 31, 56, 57} {
			for _, nr := range []int{7, 16, 17, 32} {
				for _, nrows := range rows {
					c := wgradCase{np: np, nrows: nrows, nc: 64, nr: nr, sx: 4*64 + 1, dsx: 3 * 64, so: 33, dso: 7}
					c.run(t, rng)
				}
			}
		}
		// Long runs, which the amd64 dispatch splits into calls of whole
		// rows (see wgradBlockPixels), with a shorter last call; one and
		// several channel tiles.
		for _, np := range []int{5, 48, 97} {
			for _, nrows := range []int{3, 40} {
				for _, nc := range []int{9, 30} {
					c := wgradCase{np: np, nrows: nrows, nc: nc, nr: 32 - nc%4, sx: nc + 2, dsx: 2*nc - 1, so: 33, dso: 3}
					c.run(t, rng)
				}
			}
		}
		// Rows that interleave or repeat: the row stride below a pixel
		// stride, and 0.
		for _, sxr := range []int{0, 1, 5} {
			for _, np := range []int{1, 3, 14} {
				c := wgradCase{np: np, nrows: 7, nc: 30, nr: 32, sx: 31, dsx: sxr - np*31, so: 32, dso: sxr - np*32}
				c.run(t, rng)
			}
		}
	})
}

// TestConvWgradShapes runs the channel counts the generator uses (a kernel
// row's taps merged into one channel run, nc = kw*cin) on a few rows of
// AlexNet- and VGG-like rows, including every nr split of the last block.
func TestConvWgradShapes(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for i, s := range []struct{ nc, cin, stride, np int }{
			{3, 3, 1, 5}, {9, 3, 1, 6}, {33, 3, 4, 55}, {192, 64, 1, 9}, {320, 64, 1, 27},
			{384, 128, 1, 7}, {576, 192, 1, 13}, {768, 256, 1, 3}, {1152, 384, 1, 13}, {1536, 512, 1, 2},
		} {
			for _, nr := range []int{32, 5 + i} {
				c := wgradCase{np: s.np, nrows: 1 + i%4, nc: s.nc, nr: nr, sx: s.stride * s.cin, dsx: (i%3 + 1) * s.cin,
					so: 2 * NR, dso: 0}
				c.run(t, rng)
			}
		}
	})
}

// TestConvWgradRowChain checks the contract's chain order on every
// implementation: one call over nrows rows equals one call per row in turn,
// and one call per pixel in turn, bit for bit (also with NaN, ±Inf, ±0 and
// subnormals).
func TestConvWgradRowChain(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for i, c := range []wgradCase{
			{np: 13, nrows: 13, nc: 45, nr: 32, sx: 48, dsx: 96, so: 32, dso: 5},
			{np: 55, nrows: 3, nc: 33, nr: 31, sx: 12, dsx: 700, so: 96, dso: 0},
			{np: 1, nrows: 7, nc: 17, nr: 9, sx: 1, dsx: 2, so: 9, dso: 0},
			{np: 4, nrows: 2, nc: 20, nr: 16, sx: 20, dsx: -60, so: 16, dso: -40, special: 16},
		} {
			x, dy := c.operands(t, rng)
			ldw, whole, _ := c.dwBuffers(rng)
			rowWise := slices.Clone(whole)
			pixelWise := slices.Clone(whole)
			sxr, sor := c.sxr(), c.sor()
			ConvWgrad(whole[convGuardLen:][:ldw], x, c.sx, sxr, dy, c.so, sor, c.np, c.nrows, c.nc, c.nr)
			for r := range c.nrows {
				ConvWgrad(rowWise[convGuardLen:][:ldw], x[r*sxr:], c.sx, 1<<40, dy[r*sor:], c.so, 0, c.np, 1, c.nc, c.nr)
				for p := range c.np {
					ConvWgrad(pixelWise[convGuardLen:][:ldw], x[r*sxr+p*c.sx:], 0, 0, dy[r*sor+p*c.so:], 0, 0, 1, 1, c.nc, c.nr)
				}
			}
			checkConvOut(t, fmt.Sprintf("case %d rows", i), rowWise, whole, c.nc, c.nr, NR)
			checkConvOut(t, fmt.Sprintf("case %d pixels", i), pixelWise, whole, c.nc, c.nr, NR)
		}
	})
}

// TestConvWgradSpecial runs NaN, ±Inf, ±0 and subnormal operands.
func TestConvWgradSpecial(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for nc := 1; nc <= 29; nc++ {
			for _, special := range []int{4, 16, 64} {
				c := wgradCase{np: 1 + nc%4, nrows: 1 + nc%3, nc: nc, nr: 32 - nc%9, sx: nc + 1, dsx: nc % 5,
					so: 33, dso: 1, special: special}
				c.run(t, rng)
			}
		}

		// One product x*dy added to dw, by value.
		negZero := float32(math.Copysign(0, -1))
		inf, nan := float32(math.Inf(1)), float32(math.NaN())
		sub := math.Float32frombits(1)
		for _, tc := range []struct {
			name      string
			x, dy, dw float32
			want      float32
		}{
			{"-0 stays -0", 0, -1, negZero, negZero},
			{"+0 + -0", 0, -1, 0, 0},
			{"NaN x", nan, 1, 0, nan},
			{"NaN dw", 1, 1, nan, nan},
			{"Inf", inf, 2, 1, inf},
			{"Inf*0", inf, 0, 1, nan},
			{"Inf-Inf", inf, 1, float32(math.Inf(-1)), nan},
			{"fused: no rounding of the product", 1 + 0x1p-23, 1 - 0x1p-23, -1, -0x1p-46},
			{"subnormal sum", sub, 1, sub, 2 * sub},
			{"underflow to -0", -sub, 0x1p-10, 0, negZero},
			{"overflow", math.MaxFloat32, 2, 0, inf},
		} {
			x := []float32{tc.x}
			dy := make([]float32, NR)
			dw := make([]float32, NR)
			for j := range dy {
				dy[j], dw[j] = tc.dy, tc.dw
			}
			ConvWgrad(dw, x, 1, 1, dy, NR, NR, 1, 1, 1, NR)
			for j, v := range dw {
				if !sameConv(v, tc.want) {
					t.Errorf("%s: dw[%d] = %v (%#08x), want %v (%#08x)", tc.name, j, v, math.Float32bits(v), tc.want, math.Float32bits(tc.want))
					break
				}
			}
		}
	})
}

// TestConvPanics checks that the exported kernels reject operands shorter
// than the contract's minimum (the assembly relies on it).
func TestConvPanics(t *testing.T) {
	w := make([]float32, 9*NR)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"nr", func() {
			ConvNHWC(make([]float32, 64), 64, make([]float32, 9), 1, 3, 1, 1, 3, 3, w, nil, 1, NR+1, false)
		}},
		{"out", func() { ConvNHWC(make([]float32, 31), 32, make([]float32, 9), 1, 3, 1, 1, 3, 3, w, nil, 1, 32, false) }},
		{"in", func() { ConvNHWC(make([]float32, 32), 32, make([]float32, 8), 1, 3, 1, 1, 3, 3, w, nil, 1, 32, false) }},
		{"w", func() {
			ConvNHWC(make([]float32, 32), 32, make([]float32, 9), 1, 3, 1, 1, 3, 3, w[1:], nil, 1, 32, false)
		}},
		{"bias", func() {
			ConvNHWC(make([]float32, 32), 32, make([]float32, 9), 1, 3, 1, 1, 3, 3, w, w[:NR-1], 1, 32, false)
		}},
		{"next", func() {
			ConvNHWCNext(make([]float32, 32), 32, make([]float32, 9), 1, 3, 1, 1, 3, 3, w, nil, 1, 32, false, w, w, w, w)
		}},
		// ConvWgrad on 2 rows of 2 pixels, 2 input × 2 output channels:
		// x and dy need (2-1)*5+(2-1)*1+2 = 8 elements at strides 1, 5.
		{"wgrad nr", func() { wgradOn(NR+2, 8, 8, 1, 5, 1, 5, NR+1) }},
		{"wgrad sx", func() { wgradOn(NR+2, 8, 8, -1, 5, 1, 5, 2) }},
		{"wgrad sxr", func() { wgradOn(NR+2, 8, 8, 1, -1, 1, 5, 2) }},
		{"wgrad so", func() { wgradOn(NR+2, 8, 8, 1, 5, -1, 5, 2) }},
		{"wgrad sor", func() { wgradOn(NR+2, 8, 8, 1, 5, 1, -1, 2) }},
		{"wgrad dw", func() { wgradOn(NR+1, 8, 8, 1, 5, 1, 5, 2) }},
		{"wgrad x", func() { wgradOn(NR+2, 7, 8, 1, 5, 1, 5, 2) }},
		{"wgrad dy", func() { wgradOn(NR+2, 8, 7, 1, 5, 1, 5, 2) }},
		{"wgrad x rows", func() { wgradOn(NR+2, 8, 8, 1, 6, 1, 5, 2) }},
		{"wgrad dy rows", func() { wgradOn(NR+2, 8, 8, 1, 5, 1, 6, 2) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

// wgradOn calls ConvWgrad with fresh operands of lengths ldw, lx, ldy on 2
// rows of 2 pixels, 2 input channels and nr output channels.
func wgradOn(ldw, lx, ldy, sx, sxr, so, sor, nr int) {
	ConvWgrad(make([]float32, ldw), make([]float32, lx), sx, sxr, make([]float32, ldy), so, sor, 2, 2, 2, nr)
}

// TestConvWgradMinimal checks that ConvWgrad accepts operands of exactly the
// contract's minimum length, and neither reads them nor checks their lengths
// when there is nothing to do.
func TestConvWgradMinimal(t *testing.T) {
	wgradOn(NR+2, 8, 8, 1, 5, 1, 5, 2)
	ConvWgrad(nil, nil, 1, 0, nil, 1, 0, 0, 1, 1, 1)
	ConvWgrad(nil, nil, 1, 0, nil, 1, 0, 1, 0, 1, 1)
}

// FuzzConvNHWC compares every implementation with convNHWCGo on random
// shapes and values; v1 and v2 are planted at random positions of the
// operands so that the fuzzer can steer towards special values.
func FuzzConvNHWC(f *testing.F) {
	f.Add(uint8(14), uint8(32), uint8(3), uint8(3), uint8(3), uint8(1), uint8(0), uint8(0), uint64(1), float32(1), float32(-1))
	f.Add(uint8(29), uint8(17), uint8(17), uint8(2), uint8(3), uint8(2), uint8(5), uint8(3), uint64(2), float32(math.Inf(1)), float32(0))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(4), uint8(1), uint8(1), uint64(3), float32(math.NaN()), float32(1e-40))
	f.Fuzz(func(t *testing.T, np, nr, cin, kh, kw, stride, pad, flags uint8, seed uint64, v1, v2 float32) {
		c := convCase{
			np: 1 + int(np)%40, nr: 1 + int(nr)%NR, cin: 1 + int(cin)%24,
			kh: 1 + int(kh)%6, kw: 1 + int(kw)%6, stride: 1 + int(stride)%4,
			bias: flags&1 != 0, relu: flags&2 != 0, extra: int(flags>>2) % 3, special: int(flags>>4) * 2,
		}
		c.C = c.cin + int(pad)%4
		c.so = c.nr + int(pad>>2)%8
		plant := func(in, w []float32) {
			in[seed%uint64(len(in))] = v1
			w[(seed>>32)%uint64(len(w))] = v2
		}
		defer convRestoreISA()()
		for _, isa := range convISAs() {
			if isa.has {
				isa.use()
				c.run(t, rand.New(rand.NewPCG(seed, uint64(flags))), plant)
			}
		}
	})
}

// FuzzConvWgrad compares every implementation with convWgradGo on random
// shapes and values (special > 0 mixes in NaN, ±Inf, ±0 and subnormals).
func FuzzConvWgrad(f *testing.F) {
	f.Add(uint8(56), uint8(0), uint8(64), uint8(32), uint8(0), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(3), uint8(6), uint8(29), uint8(17), uint8(3), uint8(9), uint8(9), uint64(2))
	f.Add(uint8(13), uint8(12), uint8(33), uint8(32), uint8(1), uint8(0), uint8(200), uint64(3))
	f.Fuzz(func(t *testing.T, np, nrows, nc, nr, pad, rowpad, special uint8, seed uint64) {
		c := wgradCase{np: 1 + int(np)%64, nrows: 1 + int(nrows)%16, nc: 1 + int(nc)%40, nr: 1 + int(nr)%NR, special: int(special) % 32}
		c.sx = c.nc + int(pad)%5
		c.so = c.nr + int(pad>>3)%5
		c.dsx = int(rowpad)%16 - 4
		c.dso = int(rowpad>>4) - 4
		defer convRestoreISA()()
		for _, isa := range convISAs() {
			if isa.has {
				isa.use()
				c.run(t, rand.New(rand.NewPCG(seed, 7)))
			}
		}
	})
}

// convAligned returns n float32s starting on a 64-byte boundary (as packed
// weights should be: a zmm load of a weight row then stays in one cache line).
func convAligned(n int) []float32 {
	b := make([]float32, n+16)
	for i := range 16 {
		if uintptr(unsafe.Pointer(&b[i]))%64 == 0 {
			return b[i:][:n]
		}
	}
	panic("unreachable")
}
