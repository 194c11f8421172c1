package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// Tests of SGDUpdate against its contract (sgd.go), restated here literally, on
// every implementation (forEachConvISA: AVX-512, AVX2, pure Go);
// sgd_amd64_test.go checks the assembly itself.

// sgdOpts is one combination of SGDUpdate's options.
type sgdOpts struct {
	momentum, first, nesterov, zeroGrad bool
	lr, wd, mom                         float32
}

func (o sgdOpts) String() string {
	return fmt.Sprintf("momentum=%v first=%v nesterov=%v zeroGrad=%v lr=%g wd=%g mom=%g",
		o.momentum, o.first, o.nesterov, o.zeroGrad, o.lr, o.wd, o.mom)
}

// sgdAllOpts lists every combination of the options that select a different
// computation, with weight decay 0 and not, and momentum 0 among them.
func sgdAllOpts() []sgdOpts {
	var os []sgdOpts
	for _, m := range []struct{ momentum, first, nesterov bool }{
		{false, false, false}, {true, true, false}, {true, false, false}, {true, true, true}, {true, false, true},
	} {
		for _, wd := range []float32{0, 5e-4} {
			for _, zero := range []bool{false, true} {
				mom := float32(0.9)
				if m.momentum && !m.nesterov && wd == 0 && zero {
					mom = 0 // momentum 0 with a buffer is allowed: buf = 0·buf + d
				}
				os = append(os, sgdOpts{m.momentum, m.first, m.nesterov, zero, 0.1, wd, mom})
			}
		}
	}
	return os
}

// sgdSpec is SGDUpdate's contract, literally.
func sgdSpec(v, g, buf []float32, lr, wd, mom float32, first, nesterov, zeroGrad bool) {
	for k := range v {
		d := g[k]
		if wd != 0 {
			d += float32(wd * v[k])
		}
		if buf != nil {
			if first {
				buf[k] = d
			} else {
				buf[k] = float32(mom*buf[k]) + d
			}
			if nesterov {
				d += float32(mom * buf[k])
			} else {
				d = buf[k]
			}
		}
		v[k] -= float32(lr * d)
		if zeroGrad {
			g[k] = 0
		}
	}
}

// sgdSentinel fills the elements past an operand: a signalling NaN, which no
// arithmetic result equals, and which SGDUpdate must neither read nor write.
const sgdSentinel = 0x7fa5a5a5

// sgdGuard is the number of sentinels after each operand.
const sgdGuard = 17

// sgdOperands holds the three operands of a call and, if padded, sentinels
// after each within its capacity; otherwise each ends at a guard page (on
// Linux), so that reading past it faults.
type sgdOperands struct {
	v, g, buf []float32
	padded    bool
}

func newSGDOperands(t testing.TB, n int, momentum, padded bool) *sgdOperands {
	o := &sgdOperands{padded: padded}
	mk := func(slot int) []float32 {
		if !padded {
			return convGuarded(t, 8+slot, n)
		}
		s := make([]float32, n+sgdGuard)
		for i := range s {
			s[i] = math.Float32frombits(sgdSentinel)
		}
		return s[:n]
	}
	o.v, o.g = mk(0), mk(1)
	if momentum {
		o.buf = mk(2)
	}
	return o
}

// fill draws the operands: normal values over 2^±8, with special values
// (NaN, ±Inf, ±0, subnormals) at rate special/64 (convValue).
func (o *sgdOperands) fill(rng *rand.Rand, special int) {
	convFill(rng, o.v, special)
	convFill(rng, o.g, special)
	if o.buf != nil {
		convFill(rng, o.buf, special)
	}
}

// clone returns padded copies (the contract's side of a comparison).
func (o *sgdOperands) clone() *sgdOperands {
	cp := func(s []float32) []float32 {
		if s == nil {
			return nil
		}
		return append(make([]float32, 0, len(s)), s...)
	}
	return &sgdOperands{v: cp(o.v), g: cp(o.g), buf: cp(o.buf)}
}

// check compares o with want element by element (the same bits, NaN as NaN)
// and, if padded, checks the sentinels past each operand.
func (o *sgdOperands) check(t *testing.T, what string, want *sgdOperands) {
	t.Helper()
	for _, op := range []struct {
		name      string
		got, want []float32
	}{{"v", o.v, want.v}, {"g", o.g, want.g}, {"buf", o.buf, want.buf}} {
		for k := range op.want {
			if !sameConv(op.got[k], op.want[k]) {
				t.Fatalf("%s: %s[%d] = %g (%#x), contract %g (%#x)", what, op.name, k,
					op.got[k], math.Float32bits(op.got[k]), op.want[k], math.Float32bits(op.want[k]))
			}
		}
		if o.padded && op.got != nil {
			for k, x := range op.got[len(op.got):cap(op.got)] {
				if math.Float32bits(x) != sgdSentinel {
					t.Fatalf("%s: wrote %g (%#x) at %s[%d], past the end", what, x, math.Float32bits(x), op.name, len(op.got)+k)
				}
			}
		}
	}
}

// run calls update on o under f's options, turning a fault (a read past the
// end into the guard page) into a test failure.
func (o *sgdOperands) run(t *testing.T, what string, f sgdOpts, update func(v, g, buf []float32, lr, wd, mom float32, first, nesterov, zeroGrad bool)) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: %v (past the end: the guard page faults)", what, r)
		}
	}()
	update(o.v, o.g, o.buf, f.lr, f.wd, f.mom, f.first, f.nesterov, f.zeroGrad)
}

// sgdLengths are every length through 70 (all tails of 1 to 4 zmm blocks) and
// larger ones with every kind of remainder.
func sgdLengths() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 127, 128, 129, 1000, 4099, 1<<16+13)
}

func TestSGDUpdateMatchesContract(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, f := range sgdAllOpts() {
			for i, n := range sgdLengths() {
				padded := i%2 == 0
				special := []int{0, 2, 16}[i%3]
				o := newSGDOperands(t, n, f.momentum, padded)
				o.fill(rng, special)
				want := o.clone()
				sgdSpec(want.v, want.g, want.buf, f.lr, f.wd, f.mom, f.first, f.nesterov, f.zeroGrad)
				what := fmt.Sprintf("n=%d padded=%v special=%d %v", n, padded, special, f)
				o.run(t, what, f, SGDUpdate)
				o.check(t, what, want)
			}
		}
	})
}

// TestSGDUpdateValues pins the contract's arithmetic on single values: each
// product rounded before its sum (an FMA gives a different answer in the
// cases marked "unfused"), weight decay 0 skipped rather than multiplied, the
// first step copying d into the buffer, and signed zeros.
func TestSGDUpdateValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	const up, down = 1 + 0x1p-23, 1 - 0x1p-23 // up·down = 1 - 2^-46 rounds to 1
	for _, tc := range []struct {
		name                  string
		f                     sgdOpts
		v, g, buf             float32
		wantV, wantG, wantBuf float32
	}{
		{"plain", sgdOpts{lr: 0.25}, 1, 2, 0, 0.5, 2, 0},
		{"unfused lr·d", sgdOpts{lr: up}, 1, down, 0, 0, down, 0},
		{"unfused wd·v", sgdOpts{lr: 0x1p30, wd: up}, down, -1, 0, down, -1, 0},
		{"unfused mom·buf", sgdOpts{momentum: true, lr: 1, mom: up}, 0, -1, down, 0, -1, 0},
		{"unfused Nesterov mom·buf", sgdOpts{momentum: true, nesterov: true, first: true, lr: 1, mom: -up}, 0, down, 7, 0x1p-23, down, down},
		{"wd 0 is skipped: no 0·Inf", sgdOpts{lr: 1}, inf, 1, 0, inf, 1, 0},
		{"wd·Inf", sgdOpts{lr: 1, wd: 1}, inf, 1, 0, nan, 1, 0},
		{"first step overwrites the buffer", sgdOpts{momentum: true, first: true, lr: 1, mom: 0.5}, 3, 1, nan, 2, 1, 1},
		{"first step keeps -0", sgdOpts{momentum: true, first: true, lr: 1, mom: 0.5}, 3, negZero, 5, 3, negZero, negZero},
		{"later step", sgdOpts{momentum: true, lr: 1, mom: 0.5}, 3, 1, 4, 0, 1, 3},
		{"later step, momentum 0", sgdOpts{momentum: true, lr: 1}, 3, negZero, 4, 3, negZero, 0},
		{"Nesterov", sgdOpts{momentum: true, nesterov: true, lr: 1, mom: 0.5}, 3, 1, 4, 0.5, 1, 3},
		{"v - +0 keeps -0", sgdOpts{lr: 1}, negZero, 0, 0, negZero, 0, 0},
		{"v - -0 = +0 for v = -0", sgdOpts{lr: 1}, negZero, negZero, 0, 0, negZero, 0},
		{"zeroGrad of NaN", sgdOpts{zeroGrad: true, lr: 1}, 1, nan, 0, nan, 0, 0},
		{"zeroGrad with momentum", sgdOpts{momentum: true, zeroGrad: true, lr: 1, mom: 0.5}, 3, 1, 4, 0, 0, 3},
		{"overflow", sgdOpts{lr: 2}, 0, -math.MaxFloat32, 0, inf, -math.MaxFloat32, 0},
		{"subnormal step", sgdOpts{lr: 0x1p-10}, 0, 0x1p-130, 0, -0x1p-140, 0x1p-130, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachConvISA(t, func(t *testing.T) {
				// Every lane of a few vectors and a tail holds the case.
				for _, n := range []int{1, 7, 8, 16, 33} {
					o := newSGDOperands(t, n, tc.f.momentum, true)
					want := &sgdOperands{v: make([]float32, n), g: make([]float32, n)}
					for k := range n {
						o.v[k], o.g[k] = tc.v, tc.g
						want.v[k], want.g[k] = tc.wantV, tc.wantG
					}
					if tc.f.momentum {
						want.buf = make([]float32, n)
						for k := range n {
							o.buf[k], want.buf[k] = tc.buf, tc.wantBuf
						}
					}
					what := fmt.Sprintf("n=%d", n)
					o.run(t, what, tc.f, SGDUpdate)
					o.check(t, what, want)
				}
			})
		})
	}
}

// TestSGDUpdatePieces checks the documented split independence: one call over
// all values equals calls over uneven pieces, bit for bit.
func TestSGDUpdatePieces(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, f := range sgdAllOpts() {
			const n = 1000
			whole := newSGDOperands(t, n, f.momentum, true)
			whole.fill(rng, 4)
			pieces := whole.clone()
			whole.run(t, "whole", f, SGDUpdate)
			for lo := 0; lo < n; {
				hi := min(n, lo+1+rng.IntN(100))
				var buf []float32
				if pieces.buf != nil {
					buf = pieces.buf[lo:hi]
				}
				SGDUpdate(pieces.v[lo:hi], pieces.g[lo:hi], buf, f.lr, f.wd, f.mom, f.first, f.nesterov, f.zeroGrad)
				lo = hi
			}
			whole.check(t, fmt.Sprint("pieces ", f), pieces)
		}
	})
}

func TestSGDUpdatePanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short g", func() { SGDUpdate(make([]float32, 3), make([]float32, 2), nil, 1, 0, 0, false, false, false) }},
		{"long g", func() { SGDUpdate(make([]float32, 3), make([]float32, 4), nil, 1, 0, 0, false, false, false) }},
		{"short buf", func() {
			SGDUpdate(make([]float32, 3), make([]float32, 3), make([]float32, 2), 1, 0, 0.9, false, false, false)
		}},
		{"Nesterov without buf", func() { SGDUpdate(make([]float32, 3), make([]float32, 3), nil, 1, 0, 0.9, false, true, false) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
	// Empty operands are fine, with or without a buffer.
	SGDUpdate(nil, nil, nil, 1, 0, 0, false, false, false)
	SGDUpdate([]float32{}, []float32{}, []float32{}, 1, 0.1, 0.9, false, true, true)
}

// FuzzSGDUpdate compares every implementation with the contract on fuzzed
// lengths, options, scalars and values (the raw bytes become float32 bit
// patterns planted among random values).
func FuzzSGDUpdate(f *testing.F) {
	f.Add(uint16(0), uint8(0), uint32(0x3dcccccd), uint32(0), uint32(0x3f666666), uint64(0), []byte{})
	f.Add(uint16(17), uint8(0x1f), uint32(0x3dcccccd), uint32(0x3a03126f), uint32(0x3f666666), uint64(1), []byte{0, 0, 0x80, 0x7f})
	f.Add(uint16(70), uint8(0x0b), uint32(0x7f800000), uint32(0x80000000), uint32(1), uint64(2), []byte{0, 0, 0xc0, 0x7f, 0, 0, 0, 0x80})
	f.Add(uint16(4099), uint8(0x16), uint32(0x3f800001), uint32(0x3f7fffff), uint32(0x3f800001), uint64(3), []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, nb uint16, flags uint8, lr, wd, mom uint32, seed uint64, data []byte) {
		n := int(nb) % 5000
		opt := sgdOpts{
			momentum: flags&1 != 0, first: flags&2 != 0, zeroGrad: flags&8 != 0,
			lr: math.Float32frombits(lr), wd: math.Float32frombits(wd), mom: math.Float32frombits(mom),
		}
		opt.nesterov = opt.momentum && flags&4 != 0
		if flags&16 != 0 {
			opt.wd = 0
		}
		rng := rand.New(rand.NewPCG(seed, uint64(flags)))
		forEachConvISA(t, func(t *testing.T) {
			o := newSGDOperands(t, n, opt.momentum, flags&32 != 0)
			o.fill(rng, int(flags>>6)*8)
			ops := [][]float32{o.v, o.g, o.buf}
			for i := 0; i+4 <= len(data) && n > 0; i += 4 {
				x := math.Float32frombits(uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24)
				if op := ops[rng.IntN(3)]; op != nil {
					op[rng.IntN(n)] = x
				}
			}
			want := o.clone()
			sgdSpec(want.v, want.g, want.buf, opt.lr, opt.wd, opt.mom, opt.first, opt.nesterov, opt.zeroGrad)
			what := fmt.Sprintf("n=%d %v", n, opt)
			o.run(t, what, opt, SGDUpdate)
			o.check(t, what, want)
		})
	})
}
