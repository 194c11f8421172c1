package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Tests of MaxPoolNHWC: every implementation (forEachConvISA) must return the
// pure-Go twin's bits exactly — NaN payloads included, since pooling only
// selects one of its inputs — and the twin must agree with poolRef, the
// selection rule stated as a result. Inputs end at a guard page (Linux), and
// outputs sit among sentinels that must survive.

// The special values of the pooling tests: both zeros, both infinities, quiet
// NaNs with different payloads and signs, signalling NaNs (which a selection
// must pass on unquieted), subnormals and ordinary numbers, some equal.
var poolSpecials = []uint32{
	0x00000000, // +0
	0x80000000, // -0
	0x7f800000, // +Inf
	0xff800000, // -Inf
	0x7fc00000, // NaN
	0x7fc12345, // NaN, another payload
	0xffc00001, // -NaN
	0x7f800001, // signalling NaN
	0xff823456, // signalling -NaN
	0x00000001, // smallest subnormal
	0x807fffff, // largest negative subnormal
	0x3f800000, // 1
	0xbf800000, // -1
	0x3f800000, // 1 again, so that equal numbers meet
}

// poolValue draws an input: with probability special/64 one of poolSpecials,
// else a number from a small set (so that equal values meet) or spread wide.
func poolValue(rng *rand.Rand, special int) float32 {
	if special > 0 && rng.IntN(64) < special {
		return math.Float32frombits(poolSpecials[rng.IntN(len(poolSpecials))])
	}
	if rng.IntN(2) == 0 {
		return float32(rng.IntN(9) - 4)
	}
	return float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(41)-20))
}

// poolRef is the selection rule as a result: the last NaN of the window if it
// has one, else the first of its largest values (-Inf for none larger).
func poolRef(window []float32) float32 {
	for i := len(window) - 1; i >= 0; i-- {
		if v := window[i]; v != v {
			return v
		}
	}
	o := float32(math.Inf(-1))
	for _, v := range window {
		if v > o {
			o = v
		}
	}
	return o
}

// poolCase is one MaxPoolNHWC call: np output pixels of c channels, taken from
// an NHWC input with C ≥ c channels per pixel, window kh×kw, stride (0 reads
// the same window for every pixel), padded input width wide =
// (np-1)*stride+kw+extra, output pixel stride so; zeroY and zeroX set sy or sc
// to 0.
type poolCase struct {
	np, c, C, kh, kw, stride, extra, so int
	zeroY, zeroX                        bool
	special                             int // see poolValue
}

func (c poolCase) String() string {
	return fmt.Sprintf("np=%d c=%d C=%d k=%dx%d stride=%d extra=%d so=%d zeroY=%v zeroX=%v special=%d",
		c.np, c.c, c.C, c.kh, c.kw, c.stride, c.extra, c.so, c.zeroY, c.zeroX, c.special)
}

// strides returns the contract's strides and the minimum input length.
func (c poolCase) strides() (sx, sy, sc, lin int) {
	wide := (c.np-1)*c.stride + c.kw + c.extra
	sx, sy, sc = c.stride*c.C, wide*c.C, c.C
	if c.zeroY {
		sy = 0
	}
	if c.zeroX {
		sc = 0
	}
	lin = (c.np-1)*sx + (c.kh-1)*sy + (c.kw-1)*sc + c.c
	return
}

// run checks one case on the current implementation against maxPoolNHWCGo,
// and (with check) the twin against poolRef.
func (c poolCase) run(t *testing.T, rng *rand.Rand, check bool) {
	t.Helper()
	sx, sy, sc, lin := c.strides()
	in := convGuarded(t, 0, lin)
	for i := range in {
		in[i] = poolValue(rng, c.special)
	}
	got, want := poolOut(c.np, c.c, c.so)
	lout := len(got) - 2*convGuardLen
	maxPoolNHWCGo(want[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.c, c.kh, c.kw, c.np)
	MaxPoolNHWC(got[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.c, c.kh, c.kw, c.np)
	checkPoolOut(t, c.String(), got, want, c.np, c.c, c.so)
	if !check {
		return
	}
	window := make([]float32, 0, c.kh*c.kw)
	for p := range c.np {
		for ch := range c.c {
			window = window[:0]
			for ky := range c.kh {
				for kx := range c.kw {
					window = append(window, in[p*sx+ky*sy+kx*sc+ch])
				}
			}
			if r, w := poolRef(window), want[convGuardLen+p*c.so+ch]; math.Float32bits(r) != math.Float32bits(w) {
				t.Fatalf("%s: maxPoolNHWCGo gives %#08x at pixel %d channel %d, the rule %#08x (window %v)",
					c, math.Float32bits(w), p, ch, math.Float32bits(r), window)
			}
		}
	}
}

// poolOut returns two output buffers for np pixels of c channels at stride
// so, with convGuardLen elements either side, all holding convSentinel.
func poolOut(np, c, so int) (got, want []float32) {
	lout := (np-1)*so + c
	got = make([]float32, lout+2*convGuardLen)
	for i := range got {
		got[i] = math.Float32frombits(convSentinel)
	}
	return got, slices.Clone(got)
}

// checkPoolOut compares a kernel's output with the twin's bit for bit: every
// element the contract writes (pixel p's channels ch < c) must match, every
// other element of the guarded buffer must still hold the sentinel.
func checkPoolOut(t *testing.T, what string, got, want []float32, np, c, so int) {
	t.Helper()
	bad := 0
	for i := range got {
		off := i - convGuardLen
		written := off >= 0 && off/so < np && off%so < c && off < (np-1)*so+c
		g, w := math.Float32bits(got[i]), math.Float32bits(want[i])
		switch {
		case !written && g != convSentinel:
			t.Errorf("%s: element %d (pixel %d, channel %d) outside the output was overwritten: %#08x", what, i, off/so, off%so, g)
		case written && g != w:
			t.Errorf("%s: pixel %d channel %d = %v (%#08x), want %v (%#08x)", what, off/so, off%so, got[i], g, want[i], w)
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

// poolChannels are the channel counts tested: every tail of both vector
// widths (1..33), and around the block sizes and the models' counts.
var poolChannels = []int{
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
	47, 48, 63, 64, 65, 96, 97, 127, 128, 192, 255, 256, 512,
}

// TestMaxPoolNHWCShapes covers every channel count of poolChannels with
// windows 1..4 × 1..4 (kw 2 and 3 have their own code, 1 and 4 run the
// general kx loop), on three pixels with rotating strides, channel subsets
// (c < C), output strides and special values.
func TestMaxPoolNHWCShapes(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		i := 0
		for _, c := range poolChannels {
			for kh := 1; kh <= 4; kh++ {
				for kw := 1; kw <= 4; kw++ {
					i++
					pc := poolCase{np: 3, c: c, C: c + 3*(i%2), kh: kh, kw: kw, stride: 1 + i%3,
						extra: i % 2, so: c + (i/2)%3, special: 8 * (i % 3)}
					pc.run(t, rng, true)
				}
			}
		}
	})
}

// TestMaxPoolNHWCPixels runs the models' shapes over whole rows: VGG's 2×2/2
// at 64..512 channels, AlexNet's 3×3/2 at 96 and 256, and a few pixel counts.
func TestMaxPoolNHWCPixels(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, s := range []struct{ c, k, np int }{
			{64, 2, 112}, {128, 2, 56}, {256, 2, 28}, {512, 2, 14}, {512, 2, 7},
			{96, 3, 27}, {256, 3, 13}, {256, 3, 6}, {3, 3, 1}, {17, 2, 2},
		} {
			pc := poolCase{np: s.np, c: s.c, C: s.c, kh: s.k, kw: s.k, stride: 2, so: s.c, special: 1}
			pc.run(t, rng, false)
		}
	})
}

// TestMaxPoolNHWCStrides covers zero strides (every pixel, row or column
// reads the same taps) and output strides well above c.
func TestMaxPoolNHWCStrides(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, c := range []int{1, 7, 16, 17, 64, 96} {
			for k := 1; k <= 3; k++ {
				for _, z := range []struct{ stride int }{{0}, {1}} {
					for zy := range 2 {
						for zx := range 2 {
							pc := poolCase{np: 4, c: c, C: c, kh: k, kw: k + 1, stride: z.stride, so: 2*c + 1,
								zeroY: zy == 1, zeroX: zx == 1, special: 16}
							pc.run(t, rng, true)
						}
					}
				}
			}
		}
	})
}

// poolOrdered are the poolSpecials that are not NaNs: windows of only these
// take the kernels' NaN-free path (AVX2 checks the taps for NaNs first).
var poolOrdered = slices.DeleteFunc(slices.Clone(poolSpecials), func(b uint32) bool {
	v := math.Float32frombits(b)
	return v != v
})

// TestMaxPoolNHWCWindows runs every combination of special values through a
// window: channel ch of one output pixel sees the taps given by the digits of
// ch in base len(set), so one call covers all of them (all 14^4 for 2×2 and
// 1×4, all 14^3 for 1×3 and 3×1), each in some lane; 3×3 and 2×3 windows get
// random draws. The NaN-free set gives most vectors no NaN at all. Each result
// must be poolRef's too.
func TestMaxPoolNHWCWindows(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, set := range [][]uint32{poolSpecials, poolOrdered} {
			for _, k := range [][2]int{{2, 2}, {1, 3}, {3, 1}, {1, 4}, {3, 3}, {2, 3}} {
				poolWindows(t, rng, set, k[0], k[1])
			}
		}
	})
}

// poolWindows runs one call of TestMaxPoolNHWCWindows.
func poolWindows(t *testing.T, rng *rand.Rand, set []uint32, kh, kw int) {
	ns, taps := len(set), kh*kw
	c := 1
	for range taps {
		c *= ns
	}
	exhaustive := c <= 1<<16
	if !exhaustive {
		c = 4099
	}
	// The taps of channel ch are at in[tap*c+ch]: sc = c, sy = kw*c.
	in := convGuarded(t, 0, taps*c)
	for ch := range c {
		d := ch
		if !exhaustive {
			d = int(rng.Uint64() >> 1)
		}
		for tap := range taps {
			in[tap*c+ch] = math.Float32frombits(set[d%ns])
			d /= ns
		}
	}
	what := fmt.Sprintf("%dx%d window, %d of %d values, %d channels", kh, kw, taps, ns, c)
	got, want := poolOut(1, c, c)
	maxPoolNHWCGo(want[convGuardLen:][:c], c, in, 0, kw*c, c, c, kh, kw, 1)
	MaxPoolNHWC(got[convGuardLen:][:c], c, in, 0, kw*c, c, c, kh, kw, 1)
	checkPoolOut(t, what, got, want, 1, c, c)
	window := make([]float32, taps)
	for ch := range c {
		for tap := range taps {
			window[tap] = in[tap*c+ch]
		}
		if r, w := poolRef(window), want[convGuardLen+ch]; math.Float32bits(r) != math.Float32bits(w) {
			t.Fatalf("%s: maxPoolNHWCGo gives %#08x at channel %d, the rule %#08x (window %v)",
				what, math.Float32bits(w), ch, math.Float32bits(r), window)
		}
	}
}

// TestMaxPoolNHWCRule checks the selection rule by value on two-tap windows
// (and a one-tap one) in every implementation, in a full vector and in the
// tail.
func TestMaxPoolNHWCRule(t *testing.T) {
	const (
		posZero = 0x00000000
		negZero = 0x80000000
		negInf  = 0xff800000
		nan1    = 0x7fc12345
		nan2    = 0xffc00001
		snan    = 0x7f800001
	)
	cases := []struct {
		name       string
		taps       []uint32
		want       uint32
		kh, kw, np int
	}{
		{"+0 then -0 keeps +0", []uint32{posZero, negZero}, posZero, 1, 2, 1},
		{"-0 then +0 keeps -0", []uint32{negZero, posZero}, negZero, 2, 1, 1},
		{"NaN then number keeps the NaN", []uint32{nan1, 0x3f800000}, nan1, 1, 2, 1},
		{"number then NaN takes the NaN", []uint32{0x3f800000, nan1}, nan1, 2, 1, 1},
		{"the last NaN wins", []uint32{nan1, nan2}, nan2, 1, 2, 1},
		{"signalling NaN passes unquieted", []uint32{0xbf800000, snan}, snan, 1, 2, 1},
		{"-Inf only", []uint32{negInf, negInf}, negInf, 2, 1, 1},
		{"one tap", []uint32{snan}, snan, 1, 1, 1},
	}
	forEachConvISA(t, func(t *testing.T) {
		for _, tc := range cases {
			for _, c := range []int{16, 21} {
				taps := len(tc.taps)
				in := make([]float32, taps*c)
				for tap, v := range tc.taps {
					for ch := range c {
						in[tap*c+ch] = math.Float32frombits(v)
					}
				}
				out := make([]float32, c)
				MaxPoolNHWC(out, c, in, 0, tc.kw*c, c, c, tc.kh, tc.kw, tc.np)
				for ch, v := range out {
					if math.Float32bits(v) != tc.want {
						t.Fatalf("%s, c=%d: channel %d = %#08x, want %#08x", tc.name, c, ch, math.Float32bits(v), tc.want)
					}
				}
			}
		}
	})
}

// TestMaxPoolNHWCPanics checks that MaxPoolNHWC rejects operands shorter than
// the contract's minimum (the assembly relies on it) and bad shapes.
func TestMaxPoolNHWCPanics(t *testing.T) {
	// 2 pixels of 4 channels, 2×2 window at stride 2 in a 4-pixel row:
	// in needs (2-1)*8+(2-1)*16+(2-1)*4+4 = 32 elements, out (2-1)*4+4 = 8.
	pool := func(lout, so, lin, sx, sy, sc, kh, kw int) func() {
		return func() { MaxPoolNHWC(make([]float32, lout), so, make([]float32, lin), sx, sy, sc, 4, kh, kw, 2) }
	}
	pool(8, 4, 32, 8, 16, 4, 2, 2)() // the minimum is fine
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"out", pool(7, 4, 32, 8, 16, 4, 2, 2)},
		{"in", pool(8, 4, 31, 8, 16, 4, 2, 2)},
		{"kh", pool(8, 4, 32, 8, 16, 4, 0, 2)},
		{"kw", pool(8, 4, 32, 8, 16, 4, 2, 0)},
		{"overlapping so", pool(8, 3, 32, 8, 16, 4, 2, 2)},
		{"negative so", pool(8, -4, 32, 8, 16, 4, 2, 2)},
		{"negative sx", pool(8, 4, 32, -8, 16, 4, 2, 2)},
		{"negative sy", pool(8, 4, 32, 8, -16, 4, 2, 2)},
		{"negative sc", pool(8, 4, 32, 8, 16, -4, 2, 2)},
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
	// Nothing to do: no operand is read or checked.
	MaxPoolNHWC(nil, 0, nil, 0, 0, 0, 4, 2, 2, 0)
	MaxPoolNHWC(nil, 0, nil, 0, 0, 0, 0, 2, 2, 3)
}

// FuzzMaxPoolNHWC compares every implementation with maxPoolNHWCGo on random
// shapes and values; v1 and v2 are planted at random positions of the input
// so that the fuzzer can steer towards special values and orders.
func FuzzMaxPoolNHWC(f *testing.F) {
	f.Add(uint8(112), uint16(64), uint8(2), uint8(2), uint8(2), uint8(0), uint8(0), uint64(1), float32(0), float32(math.Copysign(0, -1)))
	f.Add(uint8(27), uint16(96), uint8(3), uint8(3), uint8(2), uint8(5), uint8(3), uint64(2), float32(math.NaN()), float32(math.Inf(-1)))
	f.Add(uint8(1), uint16(17), uint8(1), uint8(5), uint8(0), uint8(1), uint8(200), uint64(3), math.Float32frombits(0x7f800001), float32(1))
	f.Fuzz(func(t *testing.T, np uint8, c uint16, kh, kw, stride, pad, flags uint8, seed uint64, v1, v2 float32) {
		pc := poolCase{
			np: 1 + int(np)%128, c: 1 + int(c)%600, kh: 1 + int(kh)%5, kw: 1 + int(kw)%5, stride: int(stride) % 4,
			extra: int(flags) % 3, zeroY: flags&4 != 0 && flags&8 != 0, zeroX: flags&16 != 0 && flags&32 != 0,
			special: int(flags>>6) * 16,
		}
		pc.C = pc.c + int(pad)%5
		pc.so = pc.c + int(pad>>3)%9
		sx, sy, sc, lin := pc.strides()
		rng := rand.New(rand.NewPCG(seed, uint64(flags)))
		in := convGuarded(t, 0, lin)
		for i := range in {
			in[i] = poolValue(rng, pc.special)
		}
		in[seed%uint64(lin)] = v1
		in[(seed>>32)%uint64(lin)] = v2
		got, want := poolOut(pc.np, pc.c, pc.so)
		lout := len(got) - 2*convGuardLen
		maxPoolNHWCGo(want[convGuardLen:][:lout], pc.so, in, sx, sy, sc, pc.c, pc.kh, pc.kw, pc.np)
		defer convRestoreISA()()
		for _, isa := range convISAs() {
			if !isa.has {
				continue
			}
			isa.use()
			for i := convGuardLen; i < convGuardLen+lout; i++ {
				got[i] = math.Float32frombits(convSentinel)
			}
			MaxPoolNHWC(got[convGuardLen:][:lout], pc.so, in, sx, sy, sc, pc.c, pc.kh, pc.kw, pc.np)
			checkPoolOut(t, isa.name+" "+pc.String(), got, want, pc.np, pc.c, pc.so)
		}
	})
}

// Tests of MaxPoolNHWCArg: every implementation must return the pure-Go
// twin's values and positions bit for bit, the values must be MaxPoolNHWC's,
// and the twin's positions those of the tap poolRefArg selects.

// poolArgSentinel fills the arg elements a kernel must not write.
const poolArgSentinel = int32(-0x5a5a5a5b)

// poolRefArg is the selection rule as a tap number (row-major in the window):
// the window's last NaN if it has one, else its first largest value, else
// (every tap -Inf) the first tap.
func poolRefArg(window []float32) int {
	for i := len(window) - 1; i >= 0; i-- {
		if v := window[i]; v != v {
			return i
		}
	}
	best, o := 0, float32(math.Inf(-1))
	for i, v := range window {
		if v > o {
			best, o = i, v
		}
	}
	return best
}

// poolArgCase is one MaxPoolNHWCArg call: a poolCase, the arg stride sa and
// the position arguments.
type poolArgCase struct {
	poolCase
	sa                    int
	base0, baseStep, rowW int
}

func (c poolArgCase) String() string {
	return fmt.Sprintf("%v sa=%d base0=%d baseStep=%d rowW=%d", c.poolCase, c.sa, c.base0, c.baseStep, c.rowW)
}

// poolArgOut returns two arg buffers for np pixels of c channels at stride
// sa, with convGuardLen elements either side, all holding poolArgSentinel.
func poolArgOut(np, c, sa int) (got, want []int32) {
	got = make([]int32, (np-1)*sa+c+2*convGuardLen)
	for i := range got {
		got[i] = poolArgSentinel
	}
	return got, slices.Clone(got)
}

// checkPoolArgOut is checkPoolOut for positions.
func checkPoolArgOut(t *testing.T, what string, got, want []int32, np, c, sa int) {
	t.Helper()
	bad := 0
	for i := range got {
		off := i - convGuardLen
		written := off >= 0 && off/sa < np && off%sa < c && off < (np-1)*sa+c
		switch {
		case !written && got[i] != poolArgSentinel:
			t.Errorf("%s: arg element %d (pixel %d, channel %d) outside the output was overwritten: %d", what, i, off/sa, off%sa, got[i])
		case written && got[i] != want[i]:
			t.Errorf("%s: arg pixel %d channel %d = %d, want %d", what, off/sa, off%sa, got[i], want[i])
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

// run checks one case on the current implementation against
// maxPoolNHWCArgGo, the twin's values against maxPoolNHWCGo, and (with
// check) its positions against poolRefArg. in is filled by fill if not nil.
func (c poolArgCase) run(t *testing.T, rng *rand.Rand, check bool, fill func(in []float32)) {
	t.Helper()
	if c.so == 0 {
		c.so = c.c
	}
	if c.sa == 0 {
		c.sa = c.c
	}
	sx, sy, sc, lin := c.strides()
	in := convGuarded(t, 0, lin)
	for i := range in {
		in[i] = poolValue(rng, c.special)
	}
	if fill != nil {
		fill(in)
	}
	got, want := poolOut(c.np, c.c, c.so)
	agot, awant := poolArgOut(c.np, c.c, c.sa)
	lout, larg := len(got)-2*convGuardLen, len(agot)-2*convGuardLen
	o, a := want[convGuardLen:][:lout], awant[convGuardLen:][:larg]
	maxPoolNHWCArgGo(o, c.so, a, c.sa, in, sx, sy, sc, c.c, c.kh, c.kw, c.np, c.base0, c.baseStep, c.rowW)
	MaxPoolNHWCArg(got[convGuardLen:][:lout], c.so, agot[convGuardLen:][:larg], c.sa, in, sx, sy, sc, c.c, c.kh, c.kw, c.np, c.base0, c.baseStep, c.rowW)
	checkPoolOut(t, c.String(), got, want, c.np, c.c, c.so)
	checkPoolArgOut(t, c.String(), agot, awant, c.np, c.c, c.sa)
	if !check {
		return
	}
	vals, _ := poolOut(c.np, c.c, c.so)
	maxPoolNHWCGo(vals[convGuardLen:][:lout], c.so, in, sx, sy, sc, c.c, c.kh, c.kw, c.np)
	checkPoolOut(t, c.String()+" (MaxPoolNHWC)", want, vals, c.np, c.c, c.so)
	window := make([]float32, 0, c.kh*c.kw)
	for p := range c.np {
		for ch := range c.c {
			window = window[:0]
			for ky := range c.kh {
				for kx := range c.kw {
					window = append(window, in[p*sx+ky*sy+kx*sc+ch])
				}
			}
			j := poolRefArg(window)
			r := int32(c.base0 + p*c.baseStep + j/c.kw*c.rowW + j%c.kw)
			if w := a[p*c.sa+ch]; w != r {
				t.Fatalf("%s: maxPoolNHWCArgGo gives %d at pixel %d channel %d, the rule %d (tap %d of window %v)",
					c, w, p, ch, r, j, window)
			}
		}
	}
}

// TestMaxPoolNHWCArgShapes covers every channel count of poolChannels with
// windows 1..3 × 1..3 on three pixels, with rotating strides, channel subsets,
// output and arg strides, positions and special values.
func TestMaxPoolNHWCArgShapes(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		i := 0
		for _, c := range poolChannels {
			for kh := 1; kh <= 3; kh++ {
				for kw := 1; kw <= 3; kw++ {
					i++
					stride := 1 + i%3
					pc := poolArgCase{
						poolCase: poolCase{np: 3, c: c, C: c + 3*(i%2), kh: kh, kw: kw, stride: stride,
							extra: i % 2, so: c + (i/2)%3, special: 8 * (i % 3)},
						sa: c + (i/3)%4, base0: 1000 * (i % 5), baseStep: stride, rowW: 7 + i%50,
					}
					pc.run(t, rng, true, nil)
				}
			}
		}
	})
}

// TestMaxPoolNHWCArgPixels runs the models' shapes over whole rows, and
// positions that wrap around int32.
func TestMaxPoolNHWCArgPixels(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, s := range []struct{ c, k, np, w int }{
			{64, 2, 112, 224}, {128, 2, 56, 112}, {256, 2, 28, 56}, {512, 2, 14, 28},
			{96, 3, 27, 55}, {192, 3, 13, 27}, {256, 3, 6, 13}, {3, 3, 1, 3}, {17, 2, 2, 4},
		} {
			for _, base0 := range []int{0, 5 * 2 * s.w, math.MaxInt32 - 3, -7} {
				pc := poolArgCase{
					poolCase: poolCase{np: s.np, c: s.c, C: s.c, kh: s.k, kw: s.k, stride: 2, so: s.c, special: 1},
					base0:    base0, baseStep: 2, rowW: s.w,
				}
				pc.run(t, rng, true, nil)
			}
		}
	})
}

// TestMaxPoolNHWCArgOffsets crosses the assembly's choice between its fast
// fold (tap offsets ky*rowW + kx that grow along the window and fit in int32:
// kw ≤ rowW and (kh-1)*rowW + kw-1 ≤ MaxInt32) and its exact fold, on both
// sides of each bound, with NaNs (the fast fold redoes such blocks exactly).
func TestMaxPoolNHWCArgOffsets(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(19, 20))
		for _, k := range [][2]int{{1, 1}, {2, 2}, {3, 3}, {2, 5}, {4, 1}} {
			kh, kw := k[0], k[1]
			edge := math.MaxInt32
			if kh > 1 {
				edge = (math.MaxInt32 - (kw - 1)) / (kh - 1)
			}
			for _, rowW := range []int{-3, 0, kw - 1, kw, kw + 1, edge, edge + 1, math.MaxInt32, math.MaxInt32 + 1} {
				for _, c := range []int{8, 37, 64} {
					pc := poolArgCase{
						poolCase: poolCase{np: 3, c: c, C: c, kh: kh, kw: kw, stride: 1, special: 16},
						base0:    -5, baseStep: 1, rowW: rowW,
					}
					pc.run(t, rng, true, nil)
				}
			}
		}
	})
}

// TestMaxPoolNHWCArgStrides covers zero strides, output and arg strides well
// above c, and negative or zero position steps.
func TestMaxPoolNHWCArgStrides(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, c := range []int{1, 7, 8, 16, 17, 33, 64, 96} {
			for k := 1; k <= 3; k++ {
				for stride := range 2 {
					for zy := range 2 {
						for zx := range 2 {
							pc := poolArgCase{
								poolCase: poolCase{np: 4, c: c, C: c, kh: k, kw: k + 1, stride: stride, so: 2*c + 1,
									zeroY: zy == 1, zeroX: zx == 1, special: 16},
								sa: 3*c + 2, base0: 3, baseStep: stride - 1, rowW: 9 - 5*zy,
							}
							pc.run(t, rng, true, nil)
						}
					}
				}
			}
		}
	})
}

// TestMaxPoolNHWCArgWindows runs every combination of special values through
// 2×2 and 1×3 windows (14^4 and 14^3 channels, one combination each), random
// draws through 3×3 ones, windows of -Inf only, and windows of one repeated
// value (ties: the first tap), each in full vectors and in the tail.
func TestMaxPoolNHWCArgWindows(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(17, 18))
		for _, set := range [][]uint32{poolSpecials, poolOrdered} {
			for _, k := range [][2]int{{2, 2}, {1, 3}, {3, 1}, {3, 3}} {
				ns, taps := len(set), k[0]*k[1]
				c := 1
				for range taps {
					c *= ns
				}
				exhaustive := c <= 1<<16
				if !exhaustive {
					c = 4099
				}
				// The taps of channel ch are at in[tap*c+ch]: sc = c, sy = kw*c.
				pc := poolArgCase{
					poolCase: poolCase{np: 1, c: c, C: c, kh: k[0], kw: k[1], stride: 0, extra: 0},
					base0:    41, rowW: 1000,
				}
				pc.run(t, rng, true, func(in []float32) {
					for ch := range c {
						d := ch
						if !exhaustive {
							d = int(rng.Uint64() >> 1)
						}
						for tap := range taps {
							in[tap*c+ch] = math.Float32frombits(set[d%ns])
							d /= ns
						}
					}
				})
			}
		}
		for _, b := range poolSpecials {
			for _, c := range []int{5, 16, 64, 96, 97} {
				pc := poolArgCase{
					poolCase: poolCase{np: 3, c: c, C: c, kh: 3, kw: 3, stride: 2, extra: 1},
					base0:    5, baseStep: 2, rowW: 8,
				}
				pc.run(t, rng, true, func(in []float32) {
					for i := range in {
						in[i] = math.Float32frombits(b)
					}
				})
			}
		}
	})
}

// TestMaxPoolNHWCArgRule checks positions by value on small windows.
func TestMaxPoolNHWCArgRule(t *testing.T) {
	const (
		negInf = 0xff800000
		nan1   = 0x7fc12345
		nan2   = 0xffc00001
		one    = 0x3f800000
		two    = 0x40000000
	)
	// A 2×2 window in a row of width 10 at base 23: taps at 23, 24, 33, 34.
	cases := []struct {
		name string
		taps [4]uint32
		want int32
	}{
		{"all -Inf keeps the first tap", [4]uint32{negInf, negInf, negInf, negInf}, 23},
		{"ties keep the first", [4]uint32{one, two, two, one}, 24},
		{"+0 then -0 keeps +0", [4]uint32{negInf, 0, 0x80000000, 0}, 24},
		{"the last NaN wins", [4]uint32{nan1, two, nan2, one}, 33},
		{"a NaN stays", [4]uint32{one, nan1, two, two}, 24},
		{"the maximum last", [4]uint32{negInf, negInf, negInf, one}, 34},
	}
	forEachConvISA(t, func(t *testing.T) {
		for _, tc := range cases {
			for _, c := range []int{16, 21, 64} {
				in := make([]float32, 4*c)
				for tap, v := range tc.taps {
					for ch := range c {
						in[tap*c+ch] = math.Float32frombits(v)
					}
				}
				out, arg := make([]float32, c), make([]int32, c)
				MaxPoolNHWCArg(out, c, arg, c, in, 0, 2*c, c, c, 2, 2, 1, 23, 2, 10)
				for ch, a := range arg {
					if a != tc.want {
						t.Fatalf("%s, c=%d: channel %d at %d, want %d", tc.name, c, ch, a, tc.want)
					}
				}
			}
		}
	})
}

// TestMaxPoolNHWCArgPanics checks that MaxPoolNHWCArg rejects operands
// shorter than the contract's minimum and bad shapes.
func TestMaxPoolNHWCArgPanics(t *testing.T) {
	// As TestMaxPoolNHWCPanics, with arg like out.
	pool := func(lout, so, larg, sa, lin, sx, sy, sc, kh, kw int) func() {
		return func() {
			MaxPoolNHWCArg(make([]float32, lout), so, make([]int32, larg), sa, make([]float32, lin), sx, sy, sc, 4, kh, kw, 2, 0, 2, 4)
		}
	}
	pool(8, 4, 8, 4, 32, 8, 16, 4, 2, 2)() // the minimum is fine
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"out", pool(7, 4, 8, 4, 32, 8, 16, 4, 2, 2)},
		{"arg", pool(8, 4, 7, 4, 32, 8, 16, 4, 2, 2)},
		{"in", pool(8, 4, 8, 4, 31, 8, 16, 4, 2, 2)},
		{"kh", pool(8, 4, 8, 4, 32, 8, 16, 4, 0, 2)},
		{"kw", pool(8, 4, 8, 4, 32, 8, 16, 4, 2, 0)},
		{"overlapping so", pool(8, 3, 8, 4, 32, 8, 16, 4, 2, 2)},
		{"overlapping sa", pool(8, 4, 8, 3, 32, 8, 16, 4, 2, 2)},
		{"negative sa", pool(8, 4, 8, -4, 32, 8, 16, 4, 2, 2)},
		{"negative sx", pool(8, 4, 8, 4, 32, -8, 16, 4, 2, 2)},
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
	MaxPoolNHWCArg(nil, 0, nil, 0, nil, 0, 0, 0, 4, 2, 2, 0, 0, 0, 0)
	MaxPoolNHWCArg(nil, 0, nil, 0, nil, 0, 0, 0, 0, 2, 2, 3, 0, 0, 0)
}

// FuzzMaxPoolNHWCArg compares every implementation with maxPoolNHWCArgGo on
// random shapes, positions and values, with v1 and v2 planted in the input.
func FuzzMaxPoolNHWCArg(f *testing.F) {
	f.Add(uint8(112), uint16(64), uint8(2), uint8(2), uint8(2), uint8(0), uint8(0), uint64(1), int32(0), float32(0), float32(math.Copysign(0, -1)))
	f.Add(uint8(27), uint16(96), uint8(3), uint8(3), uint8(2), uint8(5), uint8(3), uint64(2), int32(-55), float32(math.NaN()), float32(math.Inf(-1)))
	f.Add(uint8(1), uint16(17), uint8(1), uint8(5), uint8(0), uint8(1), uint8(200), uint64(3), int32(math.MaxInt32), math.Float32frombits(0x7f800001), float32(1))
	f.Fuzz(func(t *testing.T, np uint8, c uint16, kh, kw, stride, pad, flags uint8, seed uint64, base0 int32, v1, v2 float32) {
		pc := poolArgCase{poolCase: poolCase{
			np: 1 + int(np)%128, c: 1 + int(c)%600, kh: 1 + int(kh)%5, kw: 1 + int(kw)%5, stride: int(stride) % 4,
			extra: int(flags) % 3, zeroY: flags&4 != 0 && flags&8 != 0, zeroX: flags&16 != 0 && flags&32 != 0,
			special: int(flags>>6) * 16,
		}}
		pc.C = pc.c + int(pad)%5
		pc.so = pc.c + int(pad>>3)%9
		pc.sa = pc.c + int(pad>>5)%5
		pc.base0, pc.baseStep, pc.rowW = int(base0), int(stride)-1, int(seed>>40)%300
		sx, sy, sc, lin := pc.strides()
		rng := rand.New(rand.NewPCG(seed, uint64(flags)))
		in := convGuarded(t, 0, lin)
		for i := range in {
			in[i] = poolValue(rng, pc.special)
		}
		in[seed%uint64(lin)] = v1
		in[(seed>>32)%uint64(lin)] = v2
		got, want := poolOut(pc.np, pc.c, pc.so)
		agot, awant := poolArgOut(pc.np, pc.c, pc.sa)
		lout, larg := len(got)-2*convGuardLen, len(agot)-2*convGuardLen
		maxPoolNHWCArgGo(want[convGuardLen:][:lout], pc.so, awant[convGuardLen:][:larg], pc.sa, in, sx, sy, sc, pc.c, pc.kh, pc.kw, pc.np, pc.base0, pc.baseStep, pc.rowW)
		defer convRestoreISA()()
		for _, isa := range convISAs() {
			if !isa.has {
				continue
			}
			isa.use()
			for i := convGuardLen; i < convGuardLen+lout; i++ {
				got[i] = math.Float32frombits(convSentinel)
			}
			for i := convGuardLen; i < convGuardLen+larg; i++ {
				agot[i] = poolArgSentinel
			}
			MaxPoolNHWCArg(got[convGuardLen:][:lout], pc.so, agot[convGuardLen:][:larg], pc.sa, in, sx, sy, sc, pc.c, pc.kh, pc.kw, pc.np, pc.base0, pc.baseStep, pc.rowW)
			checkPoolOut(t, isa.name+" "+pc.String(), got, want, pc.np, pc.c, pc.so)
			checkPoolArgOut(t, isa.name+" "+pc.String(), agot, awant, pc.np, pc.c, pc.sa)
		}
	})
}
