package winograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnngen/cnngen/runtime/kernels"
)

// isaNames are the instruction sets the tests run every kernel on; the ones
// this CPU or build lacks are skipped (withISA).
var isaNames = []string{"avx512", "avx2", "go"}

// withISA runs f with the kernels package, and so the transforms, on isa
// (kernels.SetISA), restoring the previous choice afterwards. It reports
// false, without running f, if this CPU or build lacks isa.
func withISA(isa string, f func()) bool {
	prev := kernels.ISA()
	if err := kernels.SetISA(isa); err != nil {
		return false
	}
	defer kernels.SetISA(prev)
	f()
	return true
}

// sentinel fills the elements a kernel must not write: a signalling NaN,
// which no arithmetic result can equal.
const sentinel = 0x7fa5a5a5

// same says whether a result equals the pure-Go twin's: the same bits, except
// that any NaN equals any NaN (x86 and Go may pick different NaN payloads when
// two NaNs meet).
func same(got, want float32) bool {
	if got != got || want != want {
		return got != got && want != want
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

// value draws an operand: a normal number spread over 2^±8, or with
// probability special/64 one of NaN, ±Inf, ±0, a subnormal, or a number so
// large that the transforms' products by 4 and 8 overflow.
func value(rng *rand.Rand, special int) float32 {
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
			return math.Float32frombits(rng.Uint32N(1 << 23)) // subnormal
		case 6:
			return float32(rng.NormFloat64()) * 0x1p125 // 4x, 8x overflow
		default:
			return -math.Float32frombits(rng.Uint32N(1<<23) | 1)
		}
	}
	return float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(17)-8))
}

// transformCase is one call of each transform kernel: nt tiles of nc
// channels, with pad extra floats in every stride.
type transformCase struct {
	nt, nc, pad int
	relu        bool
	special     int
}

func (c transformCase) String() string {
	return fmt.Sprintf("nt=%d nc=%d pad=%d relu=%v special=%d", c.nt, c.nc, c.pad, c.relu, c.special)
}

// written marks, in a buffer of length n, the elements at base + Σ idx·stride
// + ch for every index tuple and channel ch < nc.
func written(n, nc int, strides []int, counts []int) []bool {
	w := make([]bool, n)
	var rec func(k, off int)
	rec = func(k, off int) {
		if k == len(strides) {
			for ch := 0; ch < nc; ch++ {
				w[off+ch] = true
			}
			return
		}
		for i := 0; i < counts[k]; i++ {
			rec(k+1, off+i*strides[k])
		}
	}
	rec(0, 0)
	return w
}

// compare checks a kernel's output buffer against the twin's: elements the
// contract writes must be the same (same), every other element must still
// hold the sentinel, bit for bit.
func compare(t *testing.T, what string, got, want []float32, mask []bool) {
	t.Helper()
	bad := 0
	for i := range got {
		ok := same(got[i], want[i])
		if !mask[i] {
			ok = math.Float32bits(got[i]) == sentinel
		}
		if !ok {
			t.Errorf("%s: element %d = %v (%#08x), want %v (%#08x), written by contract: %v",
				what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), mask[i])
			if bad++; bad == 5 {
				t.FailNow()
			}
		}
	}
}

func sentinels(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = math.Float32frombits(sentinel)
	}
	return s
}

// run checks both transforms on the current ISA against their twins: inputs
// end at a guard page, outputs are sentinel-filled, strides padded by c.pad.
func (c transformCase) run(t *testing.T, rng *rand.Rand, plant func(in, m []float32)) {
	t.Helper()
	// Input transform: nt tiles along a row of 4*nt+2 pixels.
	sx := c.nc + c.pad
	sy := (4*c.nt+2)*sx + c.pad
	lin := 5*sy + (4*(c.nt-1)+5)*sx + c.nc
	in := guarded(t, 0, lin)
	for i := range in {
		in[i] = value(rng, c.special)
	}
	vt := c.nc + c.pad
	vs := c.nt*vt + c.pad
	lv := 35*vs + (c.nt-1)*vt + c.nc

	// Output transform: M with the same layout as v, nt 4×4 tiles out.
	m := guarded(t, 1, lv)
	for i := range m {
		m[i] = value(rng, c.special)
	}
	bias := guarded(t, 2, c.nc)
	for i := range bias {
		bias[i] = value(rng, c.special)
	}
	if plant != nil {
		plant(in, m)
	}
	so := c.nc + c.pad
	osy := 4*c.nt*so + c.pad
	lout := 3*osy + (4*c.nt-1)*so + c.nc

	wantV, gotV := sentinels(lv), sentinels(lv)
	inputTransformGo(wantV, vs, vt, in, sx, sy, c.nt, c.nc)
	inputTransform(gotV, vs, vt, in, sx, sy, c.nt, c.nc)
	compare(t, "input transform "+c.String(), gotV, wantV, written(lv, c.nc, []int{vs, vt}, []int{36, c.nt}))

	wantY, gotY := sentinels(lout), sentinels(lout)
	outputTransformGo(wantY, so, osy, m, vs, vt, c.nt, c.nc, bias, c.relu)
	outputTransform(gotY, so, osy, m, vs, vt, c.nt, c.nc, bias, c.relu)
	compare(t, "output transform "+c.String(), gotY, wantY, written(lout, c.nc, []int{4 * so, osy, so}, []int{c.nt, 4, 4}))
}

// TestTransformsMatchGo runs both transform kernels of every ISA against the
// pure-Go twins, bit for bit: every channel count around the vector widths
// (masked tails of 1..15 lanes, whole vectors), 1 to 3 tiles, padded strides,
// ReLU, and operands with NaN, ±Inf, ±0, subnormals and values whose products
// by 4 and 8 overflow.
func TestTransformsMatchGo(t *testing.T) {
	for _, isa := range isaNames {
		t.Run(isa, func(t *testing.T) {
			if !withISA(isa, func() {
				rng := rand.New(rand.NewPCG(1, 2))
				for nc := 1; nc <= 40; nc++ {
					for nt := 1; nt <= 3; nt++ {
						for _, special := range []int{0, 8, 32} {
							c := transformCase{nt: nt, nc: nc, pad: (nc + nt) % 3, relu: (nc+special)%2 == 0, special: special}
							c.run(t, rng, nil)
						}
					}
				}
			}) {
				t.Skipf("no %s here", isa)
			}
		})
	}
}

// TestTransformSpecial checks the transforms' IEEE behaviour by value: a NaN
// or Inf in one input pixel reaches exactly the positions whose Bᵀ d B
// coefficient of that pixel is nonzero, and the ReLU keeps NaN and -0.
func TestTransformSpecial(t *testing.T) {
	for _, isa := range isaNames {
		withISA(isa, func() {
			const nc = 3
			in := make([]float32, 36*nc)
			v := make([]float32, 36*nc)
			for _, special := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
				for p := 0; p < 36; p++ {
					clear(in)
					in[p*nc+1] = special
					inputTransform(v, nc, 0, in, nc, 6*nc, 1, nc)
					y, x := p/6, p%6
					for xi := 0; xi < 36; xi++ {
						k, l := xi/6, xi%6
						reached := btM[k][y] != 0 && btM[l][x] != 0
						got := v[xi*nc+1]
						if finite := !math.IsNaN(float64(got)) && !math.IsInf(float64(got), 0); finite == reached {
							t.Errorf("%s: %v at pixel (%d,%d): V[%d][%d] = %v", isa, special, y, x, k, l, got)
						}
						if v[xi*nc] != 0 || v[xi*nc+2] != 0 {
							t.Errorf("%s: %v in channel 1 reached channel 0 or 2", isa, special)
						}
					}
				}
			}
			// Output: M = 0 except position 0 (coefficient 1 for Y[0][0] only).
			negZero := float32(math.Copysign(0, -1))
			for _, tc := range []struct {
				m0, bias float32
				relu     bool
				want     float32
			}{
				{float32(math.NaN()), 0, true, float32(math.NaN())},
				{-1, 0, true, 0},
				{-1, 0.5, false, -0.5},
				{negZero, negZero, true, negZero}, // (-0 + -0 ... + -0) + -0 = -0, kept by ReLU
				{float32(math.Inf(-1)), 1, true, 0},
				{float32(math.Inf(1)), float32(math.Inf(-1)), false, float32(math.NaN())},
			} {
				m := make([]float32, 36)
				if tc.m0 == 0 && math.Signbit(float64(tc.m0)) {
					for i := range m {
						m[i] = negZero
					}
				}
				m[0] = tc.m0
				out := make([]float32, 16)
				outputTransform(out, 1, 4, m, 1, 0, 1, 1, []float32{tc.bias}, tc.relu)
				if !same(out[0], tc.want) {
					t.Errorf("%s: M[0] = %v, bias %v, relu %v: Y[0][0] = %v, want %v", isa, tc.m0, tc.bias, tc.relu, out[0], tc.want)
				}
			}
		})
	}
}

// FuzzTransforms compares both transforms of every ISA with the twins on
// random shapes and values, with one planted value (special mixes in NaN,
// ±Inf, ±0, subnormals and overflowing values).
func FuzzTransforms(f *testing.F) {
	f.Add(uint8(16), uint8(1), uint8(0), uint8(0), uint64(1), float32(1))
	f.Add(uint8(17), uint8(2), uint8(3), uint8(0x15), uint64(2), float32(math.NaN()))
	f.Add(uint8(7), uint8(3), uint8(1), uint8(0xf2), uint64(3), float32(math.Inf(-1)))
	f.Add(uint8(33), uint8(1), uint8(2), uint8(0x81), uint64(4), float32(3e38))
	f.Fuzz(func(t *testing.T, nc, nt, pad, flags uint8, seed uint64, v float32) {
		c := transformCase{nt: 1 + int(nt)%4, nc: 1 + int(nc)%70, pad: int(pad) % 5, relu: flags&1 != 0, special: int(flags>>1) % 64}
		plant := func(in, m []float32) {
			in[seed%uint64(len(in))] = v
			m[(seed>>32)%uint64(len(m))] = v
		}
		for _, isa := range isaNames {
			withISA(isa, func() { c.run(t, rand.New(rand.NewPCG(seed, uint64(flags))), plant) })
		}
	})
}
