package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
	"unsafe"
)

// Tests of the batch-norm kernels. Each case runs through three executors
// with the same operands: the exported kernel on every implementation
// (AVX-512, AVX2, pure Go; see forEachConvISA), the pure-Go twin, and bnRef,
// a straightforward float64 implementation of the contract written here
// (channel by channel, all pixels in one call). The first two are called
// once per row of np pixels, so the per-channel chains must continue across
// calls. Every element must agree bit for bit (a NaN only as a NaN); the
// elements a kernel must not write (before each operand, between pixels, and
// every input) must keep their bits; and the operands of the exported
// kernel end at a PROT_NONE page (Linux), so any access past them faults.

// bnKernel names one of the six batch-norm kernels.
type bnKernel int

const (
	bnKSum bnKernel = iota
	bnKSumSq
	bnKApply
	bnKBackSums
	bnKBackData
	bnKEval
	bnKernelCount
)

func (k bnKernel) String() string {
	return [...]string{"BNSum", "BNSumSq", "BNApply", "BNBackSums", "BNBackData", "BNBackDataEval"}[k]
}

// bnFuncs is one implementation of the six kernels, with the exported
// signatures.
type bnFuncs struct {
	sum      func(sum []float64, x []float32, sx, np, n int)
	sumSq    func(sq []float64, x []float32, sx, np, n int, mean []float64)
	apply    func(out []float32, so int, x []float32, sx, np, n int, scale, shift []float64, relu bool)
	backSums func(sg, sgx []float64, d []float32, sd int, x []float32, sx int, out []float32, so int, np, n int, mean, invstd []float64)
	backData func(dx []float32, sdx int, d []float32, sd int, x []float32, sx int, np, n int, mean, invstd, kc, sg, sgx []float64, cnt float64)
	eval     func(dx []float32, sdx int, d []float32, sd int, np, n int, kc []float64)
}

var (
	bnAPI  = bnFuncs{BNSum, BNSumSq, BNApply, BNBackSums, BNBackData, BNBackDataEval}
	bnTwin = bnFuncs{bnSumGo, bnSumSqGo, bnApplyGo, bnBackSumsGo, bnBackDataGo, bnBackDataEvalGo}
	bnRef  = bnFuncs{refBNSum, refBNSumSq, refBNApply, refBNBackSums, refBNBackData, refBNBackDataEval}
)

// The reference: the contract's formulas, one channel at a time over all
// pixels. Each product that the contract rounds before an addition is in
// float64(...), which keeps the compiler from fusing it.

func refBNSum(sum []float64, x []float32, sx, np, n int) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			sum[k] = sum[k] + float64(x[p*sx+k])
		}
	}
}

func refBNSumSq(sq []float64, x []float32, sx, np, n int, mean []float64) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			d := float64(x[p*sx+k]) - mean[k]
			sq[k] = sq[k] + float64(d*d)
		}
	}
}

func refBNApply(out []float32, so int, x []float32, sx, np, n int, scale, shift []float64, relu bool) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			v := float32(float64(float64(x[p*sx+k])*scale[k]) + shift[k])
			if relu && v < 0 {
				v = 0
			}
			out[p*so+k] = v
		}
	}
}

func refBNBackSums(sg, sgx []float64, d []float32, sd int, x []float32, sx int, out []float32, so int, np, n int, mean, invstd []float64) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			if out != nil && !(out[p*so+k] > 0) {
				d[p*sd+k] = 0
			}
			g := float64(d[p*sd+k])
			xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])
			sg[k] = sg[k] + g
			sgx[k] = sgx[k] + float64(g*xh)
		}
	}
}

func refBNBackData(dx []float32, sdx int, d []float32, sd int, x []float32, sx int, np, n int, mean, invstd, kc, sg, sgx []float64, cnt float64) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			g := float64(d[p*sd+k])
			xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])
			a := float64(cnt*g) - sg[k]
			t := a - float64(xh*sgx[k])
			dx[p*sdx+k] = float32(float64(kc[k]/cnt) * t)
		}
	}
}

func refBNBackDataEval(dx []float32, sdx int, d []float32, sd int, np, n int, kc []float64) {
	for k := 0; k < n; k++ {
		for p := 0; p < np; p++ {
			dx[p*sdx+k] = float32(float64(d[p*sd+k]) * kc[k])
		}
	}
}

// bnLead is how many sentinels precede each operand.
const bnLead = 16

// bnSentinel64 fills the float64 elements a kernel must not write: a
// signalling NaN, which no arithmetic result can equal.
const bnSentinel64 = 0x7ff4a5a5a5a5a5a5

// sameBN64 says whether two float64 results agree: the same bits, or both NaN.
func sameBN64(a, b float64) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

// bnValue64 draws a per-channel float64: normal numbers with a full mantissa
// over 2^±4, and with probability special/64 a NaN, ±Inf, ±0, a subnormal,
// or a value whose float32 conversion overflows, is subnormal or is zero.
func bnValue64(rng *rand.Rand, special int) float64 {
	if special > 0 && rng.IntN(64) < special {
		switch rng.IntN(10) {
		case 0:
			return math.NaN()
		case 1:
			return math.Inf(1)
		case 2:
			return math.Inf(-1)
		case 3:
			return math.Copysign(0, -1)
		case 4:
			return 0
		case 5:
			return math.Float64frombits(rng.Uint64N(1 << 52)) // subnormal
		case 6:
			return math.Copysign(math.MaxFloat32*(1+rng.Float64()*0x1p-20), rng.NormFloat64()) // ±Inf as float32
		case 7:
			return rng.NormFloat64() * 0x1p-140 // float32 subnormal
		case 8:
			return rng.NormFloat64() * 0x1p-152 // float32 ±0 or the smallest subnormal
		default:
			return rng.NormFloat64() * 1e300 // products overflow
		}
	}
	return rng.NormFloat64() * math.Ldexp(1, rng.IntN(9)-4)
}

func bnFill64(rng *rand.Rand, v []float64, special int) {
	for i := range v {
		v[i] = bnValue64(rng, special)
	}
}

// bnGuarded64 is convGuarded for float64s: n of them ending at a PROT_NONE
// page (Linux).
func bnGuarded64(t testing.TB, slot, n int) []float64 {
	f := convGuarded(t, slot, 2*n)
	if n == 0 {
		return []float64{}
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&f[0])), n)
}

// The guarded-memory slots of the operands (convGuarded keeps one mapping per
// slot; the conv tests use 0-2).
const (
	bnSlotX = 10 + iota
	bnSlotD
	bnSlotOut
	bnSlotDX
	bnSlotAcc1
	bnSlotAcc2
	bnSlotConst // then one per const
)

// bnCase is one test: rows calls of np pixels each, on n channels.
type bnCase struct {
	k       bnKernel
	np, n   int
	rows    int
	pad     [4]int  // stride padding beyond n of x, d, out, dx
	relu    bool    // BNApply's relu; BNBackSums with out
	inplace bool    // BNApply into x; BNBackData(Eval) into d
	special int     // with probability special/64 an operand is special (bnValue64, convValue)
	cnt     float64 // BNBackData's pixel count (0: rows*np)
}

func (c bnCase) String() string {
	return fmt.Sprintf("%v np=%d n=%d rows=%d pad=%v relu=%v inplace=%v special=%d cnt=%v",
		c.k, c.np, c.n, c.rows, c.pad, c.relu, c.inplace, c.special, c.cnt)
}

// bnOperand is one float32 pixel operand: its stride, whether the kernel
// reads it and whether it may write it.
type bnOperand struct {
	stride      int
	used, wrote bool
}

// operands returns x, d, out and dx of case c.
func (c bnCase) operands() (ops [4]bnOperand) {
	const x, d, out, dx = 0, 1, 2, 3
	for i := range ops {
		ops[i].stride = c.n + c.pad[i]
	}
	switch c.k {
	case bnKSum, bnKSumSq:
		ops[x].used = true
	case bnKApply:
		ops[x].used = true
		if c.inplace {
			ops[x].wrote = true
		} else {
			ops[out].used, ops[out].wrote = true, true
		}
	case bnKBackSums:
		ops[x].used, ops[d].used = true, true
		if c.relu {
			ops[out].used, ops[d].wrote = true, true
		}
	case bnKBackData, bnKEval:
		ops[d].used = true
		ops[x].used = c.k == bnKBackData
		if c.inplace {
			ops[d].wrote = true
		} else {
			ops[dx].used, ops[dx].wrote = true, true
		}
	}
	return ops
}

// accs is how many per-channel accumulators the kernel updates.
func (c bnCase) accs() int {
	switch c.k {
	case bnKSum, bnKSumSq:
		return 1
	case bnKBackSums:
		return 2
	}
	return 0
}

// bnState is one executor's copy of the operands it may change: the four
// pixel operands (bnLead sentinels, then the pixels of all rows, with
// sentinels between pixels) and the accumulators (bnLead sentinels, then n).
type bnState struct {
	px  [4][]float32
	acc [2][]float64
}

// bnConsts are the read-only per-channel operands.
type bnConsts struct {
	mean, invstd, scale, shift, kc, sg, sgx []float64
	cnt                                     float64
}

// all lists the consts.
func (k *bnConsts) all() [][]float64 {
	return [][]float64{k.mean, k.invstd, k.scale, k.shift, k.kc, k.sg, k.sgx}
}

// plen is the length of pixel operand i over all rows.
func (c bnCase) plen(op bnOperand) int {
	if !op.used {
		return 0
	}
	return (c.rows*c.np-1)*op.stride + c.n
}

// inside says whether element q of a pixel operand is one of its n channels.
func (c bnCase) inside(op bnOperand, q int) bool {
	return q >= 0 && q%op.stride < c.n && q < c.plen(op)
}

// draw makes the operands of c: the initial state (plant, if not nil, may
// overwrite it and the consts) and the consts, the latter and the state's
// pixel operands ending at guard pages.
func (c bnCase) draw(t testing.TB, rng *rand.Rand, plant func(s *bnState, k *bnConsts)) (bnState, *bnConsts) {
	var s bnState
	ops := c.operands()
	for i, op := range ops {
		l := c.plen(op)
		b := convGuarded(t, bnSlotX+i, bnLead+l)
		for q := range b {
			b[q] = math.Float32frombits(convSentinel)
			if c.inside(op, q-bnLead) {
				b[q] = convValue(rng, c.special)
			}
		}
		if i == 2 && c.k == bnKBackSums {
			// The ReLU's output: non-negative, a third of it +0, as after a
			// real ReLU, plus whatever specials the case asks for.
			for q := bnLead; q < len(b); q++ {
				if c.inside(op, q-bnLead) && rng.IntN(3) == 0 {
					b[q] = 0
				} else if v := b[q]; c.inside(op, q-bnLead) && v < 0 && rng.IntN(4) != 0 {
					b[q] = -v
				}
			}
		}
		s.px[i] = b
	}
	for i := 0; i < c.accs(); i++ {
		b := bnGuarded64(t, bnSlotAcc1+i, bnLead+c.n)
		for q := range b {
			b[q] = math.Float64frombits(bnSentinel64)
			if q >= bnLead {
				b[q] = bnValue64(rng, c.special)
			}
		}
		s.acc[i] = b
	}
	k := &bnConsts{cnt: c.cnt}
	if k.cnt == 0 {
		k.cnt = float64(c.rows * c.np)
	}
	for i, p := range []*[]float64{&k.mean, &k.invstd, &k.scale, &k.shift, &k.kc, &k.sg, &k.sgx} {
		*p = bnGuarded64(t, bnSlotConst+i, c.n)
		bnFill64(rng, *p, c.special)
	}
	for i, v := range k.invstd {
		k.invstd[i] = math.Abs(v)
	}
	if plant != nil {
		plant(&s, k)
	}
	return s, k
}

// clone copies a state into fresh Go memory.
func (s bnState) clone() bnState {
	var r bnState
	for i, b := range s.px {
		r.px[i] = append([]float32(nil), b...)
	}
	for i, b := range s.acc {
		r.acc[i] = append([]float64(nil), b...)
	}
	return r
}

// call runs the kernel on state s: rows calls of np pixels, or with all
// set one call of rows*np pixels.
func (c bnCase) call(f bnFuncs, s bnState, k *bnConsts, all bool) {
	ops := c.operands()
	rows, np := c.rows, c.np
	if all {
		rows, np = 1, c.rows*c.np
	}
	for r := 0; r < rows; r++ {
		var px [4][]float32
		for i, b := range s.px {
			if ops[i].used {
				px[i] = b[bnLead+r*np*ops[i].stride:]
			}
		}
		x, d, out, dx := px[0], px[1], px[2], px[3]
		sx, sd, so, sdx := ops[0].stride, ops[1].stride, ops[2].stride, ops[3].stride
		var a1, a2 []float64
		if s.acc[0] != nil {
			a1 = s.acc[0][bnLead:]
		}
		if s.acc[1] != nil {
			a2 = s.acc[1][bnLead:]
		}
		switch c.k {
		case bnKSum:
			f.sum(a1, x, sx, np, c.n)
		case bnKSumSq:
			f.sumSq(a1, x, sx, np, c.n, k.mean)
		case bnKApply:
			if c.inplace {
				out, so = x, sx
			}
			f.apply(out, so, x, sx, np, c.n, k.scale, k.shift, c.relu)
		case bnKBackSums:
			f.backSums(a1, a2, d, sd, x, sx, out, so, np, c.n, k.mean, k.invstd)
		case bnKBackData:
			if c.inplace {
				dx, sdx = d, sd
			}
			f.backData(dx, sdx, d, sd, x, sx, np, c.n, k.mean, k.invstd, k.kc, k.sg, k.sgx, k.cnt)
		case bnKEval:
			if c.inplace {
				dx, sdx = d, sd
			}
			f.eval(dx, sdx, d, sd, np, c.n, k.kc)
		}
	}
}

// run checks case c on the current implementation.
func (c bnCase) run(t *testing.T, rng *rand.Rand, plant func(s *bnState, k *bnConsts)) {
	t.Helper()
	got, k := c.draw(t, rng, plant)
	init := got.clone()
	twin, ref := got.clone(), got.clone()
	saved := make([][]float64, 0, 7)
	for _, v := range k.all() {
		saved = append(saved, append([]float64(nil), v...))
	}
	bnCatch(t, c.String(), func() { c.call(bnAPI, got, k, false) })
	c.call(bnTwin, twin, k, false)
	c.call(bnRef, ref, k, true)
	c.check(t, got, twin, ref, init)
	// The consts are inputs: unchanged, bit for bit.
	for i, v := range k.all() {
		for j := range v {
			if math.Float64bits(v[j]) != math.Float64bits(saved[i][j]) {
				t.Fatalf("%v: per-channel operand %d [%d] was overwritten", c, i, j)
			}
		}
	}
}

// check compares the final states: written elements must agree among the
// kernel, its twin and the reference; all others must keep their initial bits.
func (c bnCase) check(t *testing.T, got, twin, ref, init bnState) {
	t.Helper()
	names := [4]string{"x", "d", "out", "dx"}
	ops := c.operands()
	bad := 0
	fail := func(format string, a ...any) {
		t.Errorf("%v: "+format, append([]any{c}, a...)...)
		if bad++; bad == 5 {
			t.FailNow()
		}
	}
	for i, op := range ops {
		for q := range got.px[i] {
			g, w, r, z := got.px[i][q], twin.px[i][q], ref.px[i][q], init.px[i][q]
			p, ch := (q-bnLead)/op.stride, (q-bnLead)%op.stride
			if op.wrote && c.inside(op, q-bnLead) {
				if !sameConv(g, w) || !sameConv(w, r) {
					fail("%s[pixel %d, channel %d] = %v (%#08x), twin %v (%#08x), reference %v (%#08x)",
						names[i], p, ch, g, math.Float32bits(g), w, math.Float32bits(w), r, math.Float32bits(r))
				}
				continue
			}
			for e, v := range []float32{g, w, r} {
				if math.Float32bits(v) != math.Float32bits(z) {
					fail("%s element %d (pixel %d, channel %d) changed in %s: %#08x, was %#08x",
						names[i], q-bnLead, p, ch, [...]string{"kernel", "twin", "reference"}[e], math.Float32bits(v), math.Float32bits(z))
				}
			}
		}
	}
	for i := range got.acc {
		for q := range got.acc[i] {
			g, w, r, z := got.acc[i][q], twin.acc[i][q], ref.acc[i][q], init.acc[i][q]
			if q >= bnLead {
				if !sameBN64(g, w) || !sameBN64(w, r) {
					fail("acc%d[%d] = %v (%#016x), twin %v (%#016x), reference %v (%#016x)", i+1, q-bnLead,
						g, math.Float64bits(g), w, math.Float64bits(w), r, math.Float64bits(r))
				}
				continue
			}
			if math.Float64bits(g) != math.Float64bits(z) {
				fail("acc%d: element %d before the operand was overwritten: %#016x", i+1, q-bnLead, math.Float64bits(g))
			}
		}
	}
}

// bnCatch turns a fault (an access to the PROT_NONE page past an operand)
// in f into a test failure naming the case.
func bnCatch(t *testing.T, what string, f func()) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: %v", what, r)
		}
	}()
	f()
}

// bnTestN are the channel counts: every count up to 2 AVX-512 chunks of 16
// channels plus one, around each chunk size, and VGG's per-worker widths.
var bnTestN = func() []int {
	var n []int
	for i := 1; i <= 33; i++ {
		n = append(n, i)
	}
	return append(n, 47, 63, 64, 65, 96, 127, 128, 129, 200, 255, 256, 257, 383, 512, 515)
}()

// TestBNShapes runs every kernel over the channel counts bnTestN, 1 to 9
// pixels, one or three rows, with tight and padded strides.
func TestBNShapes(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		i := 0
		for k := bnKernel(0); k < bnKernelCount; k++ {
			for _, n := range bnTestN {
				for _, np := range []int{1, 2, 5, 9} {
					i++
					c := bnCase{k: k, np: np, n: n, rows: 1 + 2*(i%2),
						pad:  [4]int{i % 3, (i + 1) % 4, i % 2, (i / 2) % 3},
						relu: i%4 < 2, inplace: i%8 >= 5}
					if np > 1 && n > 200 && i%3 != 0 {
						continue // a third of the big ones
					}
					c.run(t, rng, nil)
				}
			}
		}
	})
}

// TestBNSpecial mixes NaN, ±Inf, ±0, subnormals and values that overflow or
// underflow in the conversion to float32 into every operand.
func TestBNSpecial(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for k := bnKernel(0); k < bnKernelCount; k++ {
			for _, n := range []int{1, 3, 7, 8, 9, 17, 32, 64, 100, 128, 131} {
				for _, special := range []int{4, 16, 64} {
					for _, relu := range []bool{false, true} {
						c := bnCase{k: k, np: 3, n: n, rows: 2, pad: [4]int{1, 2, 3, 0},
							relu: relu, special: special, cnt: float64(n%5) + 0.5}
						c.run(t, rng, nil)
					}
				}
			}
		}
	})
}

// TestBNValues checks single results by value: ReLU and the rounding of
// float64 → float32 (ties to even, overflow, subnormals), and that no product
// is fused with the addition after it: each case's last operand cancels the
// product rounded to float64 exactly, where an FMA would leave its rounding
// error.
func TestBNValues(t *testing.T) {
	third := 1.0 / 3
	x := float32(1.1) // x*third and (x-third)² are inexact
	negZero := math.Copysign(0, -1)
	inf, nan := math.Inf(1), math.NaN()
	forEachConvISA(t, func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			x            float32
			scale, shift float64
			relu         bool
			want         float32
		}{
			{"plain", 2, 1.5, 0.25, false, 3.25},
			{"tie to even down", 1, 1 + 0x1p-24, 0, false, 1},
			{"tie to even up", 1, 1 + 3*0x1p-24, 0, false, 1 + 0x1p-22},
			{"above the tie", 1, 1 + 0x1p-24 + 0x1p-40, 0, false, 1 + 0x1p-23},
			{"overflow", 2, math.MaxFloat32, 0, false, float32(math.Inf(1))},
			{"MaxFloat32 + half ulp ties to Inf", math.MaxFloat32, 1, 0x1p103, false, float32(math.Inf(1))},
			{"just below the tie", math.MaxFloat32, 1, 0x1p103 - 0x1p75, false, math.MaxFloat32},
			{"subnormal", 1, 0x1p-140, 0, false, 0x1p-140},
			{"below the smallest subnormal", 1, 0x1p-151, 0, false, 0},
			{"negative underflow", -1, 0x1p-151, 0, false, float32(negZero)},
			{"relu keeps -0", -1, 0x1p-151, 0, true, float32(negZero)},
			{"relu of negative", 1, -2, 0, true, 0},
			{"relu of -Inf", 1, -inf, 0, true, 0},
			{"relu keeps NaN", 1, nan, 0, true, float32(nan)},
			{"relu keeps Inf", 1, inf, 0, true, float32(inf)},
			{"Inf*0", 0, inf, 0, false, float32(nan)},
			{"Inf-Inf", 1, inf, -inf, false, float32(nan)},
			{"not fused", x, third, -float64(float64(x) * third), false, 0},
		} {
			// every tail and chunk position: n = 19 puts channels in
			// AVX2's full chunks and in the tails of both ISAs
			const n = 19
			xs := make([]float32, n)
			scale, shift := make([]float64, n), make([]float64, n)
			for k := range xs {
				xs[k], scale[k], shift[k] = tc.x, tc.scale, tc.shift
			}
			out := make([]float32, n)
			BNApply(out, n, xs, n, 1, n, scale, shift, tc.relu)
			for k, v := range out {
				if !sameConv(v, tc.want) {
					t.Errorf("BNApply %s: out[%d] = %v (%#08x), want %v (%#08x)", tc.name, k, v, math.Float32bits(v), tc.want, math.Float32bits(tc.want))
					break
				}
			}
		}

		// Not fused: each starts an accumulator (or a term) at minus the
		// rounded product, so that separately rounded operations give +0.
		const n = 19
		xs := make([]float32, n)
		mean, invstd := make([]float64, n), make([]float64, n)
		for k := range xs {
			xs[k], mean[k], invstd[k] = x, third, 1
		}
		d := float64(x) - third
		sq := make([]float64, n)
		for k := range sq {
			sq[k] = -float64(d * d)
		}
		BNSumSq(sq, xs, n, 1, n, mean)
		for k, v := range sq {
			if math.Float64bits(v) != 0 {
				t.Errorf("BNSumSq not fused: sq[%d] = %v, want +0", k, v)
				break
			}
		}
		// g = 1.1 as float64, xh = x - third; sgx = -(g*xh) rounded.
		g := float64(x)
		sg, sgx := make([]float64, n), make([]float64, n)
		for k := range sgx {
			sg[k], sgx[k] = -g, -float64(g*d)
		}
		ds := append([]float32(nil), xs...)
		BNBackSums(sg, sgx, ds, n, xs, n, nil, 0, 1, n, mean, invstd)
		for k := range sg {
			if math.Float64bits(sg[k]) != 0 || math.Float64bits(sgx[k]) != 0 {
				t.Errorf("BNBackSums not fused: sg[%d], sgx[%d] = %v, %v, want +0, +0", k, k, sg[k], sgx[k])
				break
			}
		}
		// BNBackData: a = cnt*g - sg with sg = cnt*g rounded is 0; then
		// t = 0 - xh*sgx with sgx = 1, and kc/cnt = 1: dx = float32(-xh).
		cnt := third
		for k := range sg {
			sg[k], sgx[k] = float64(cnt*g), 1
		}
		kc := make([]float64, n)
		for k := range kc {
			kc[k] = cnt
		}
		dx := make([]float32, n)
		BNBackData(dx, n, xs, n, xs, n, 1, n, mean, invstd, kc, sg, sgx, cnt)
		for k, v := range dx {
			if want := float32(-d); v != want {
				t.Errorf("BNBackData not fused: dx[%d] = %v, want %v", k, v, want)
				break
			}
		}
	})
}

// TestBNReLUMask checks BNBackSums' mask by value: d becomes +0 exactly where
// the output is not positive (+0, -0, negative, NaN, -Inf), and keeps its
// bits (NaN, -0 included) where it is (positive, subnormal, +Inf).
func TestBNReLUMask(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	outs := []float32{1, 0, negZero, -1, nan, inf, -inf, math.Float32frombits(1), -math.Float32frombits(1)}
	ds := []float32{2, negZero, nan, -3, 5, negZero, nan, 7, 8}
	forEachConvISA(t, func(t *testing.T) {
		for _, n := range []int{1, 5, 9, 17, 33, 130} {
			const np = 3
			out, d, x := make([]float32, np*n), make([]float32, np*n), make([]float32, np*n)
			for q := range out {
				out[q], d[q] = outs[(q+q/7)%len(outs)], ds[q%len(ds)]
			}
			d0 := append([]float32(nil), d...)
			one := make([]float64, n)
			for k := range one {
				one[k] = 1
			}
			sg, sgx := make([]float64, n), make([]float64, n)
			BNBackSums(sg, sgx, d, n, x, n, out, n, np, n, make([]float64, n), one)
			for q, v := range d {
				want := d0[q]
				if !(out[q] > 0) {
					want = 0
				}
				if math.Float32bits(v) != math.Float32bits(want) {
					t.Errorf("n=%d: out=%v d=%v: d became %v (%#08x), want %v (%#08x)", n, out[q], d0[q], v, math.Float32bits(v), want, math.Float32bits(want))
				}
			}
		}
	})
}

// TestBNPanics checks that the exported kernels reject operands shorter than
// the contract's minimum, negative strides and overlapping output pixels
// (the assembly relies on them).
func TestBNPanics(t *testing.T) {
	f32 := func(n int) []float32 { return make([]float32, n) }
	f64 := func(n int) []float64 { return make([]float64, n) }
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"sum x", func() { BNSum(f64(4), f32(7), 4, 2, 4) }},
		{"sum sum", func() { BNSum(f64(3), f32(8), 4, 2, 4) }},
		{"sum stride", func() { BNSum(f64(4), f32(8), -4, 2, 4) }},
		{"sumsq mean", func() { BNSumSq(f64(4), f32(8), 4, 2, 4, f64(3)) }},
		{"sumsq x", func() { BNSumSq(f64(4), f32(3), 4, 1, 4, f64(4)) }},
		{"apply out", func() { BNApply(f32(7), 4, f32(8), 4, 2, 4, f64(4), f64(4), false) }},
		{"apply overlap", func() { BNApply(f32(8), 3, f32(8), 4, 2, 4, f64(4), f64(4), false) }},
		{"apply shift", func() { BNApply(f32(8), 4, f32(8), 4, 2, 4, f64(4), f64(3), true) }},
		{"backsums d", func() { BNBackSums(f64(4), f64(4), f32(7), 4, f32(8), 4, nil, 0, 2, 4, f64(4), f64(4)) }},
		{"backsums d overlap", func() { BNBackSums(f64(4), f64(4), f32(8), 3, f32(8), 4, f32(8), 4, 2, 4, f64(4), f64(4)) }},
		{"backsums out", func() { BNBackSums(f64(4), f64(4), f32(8), 4, f32(8), 4, f32(7), 4, 2, 4, f64(4), f64(4)) }},
		{"backsums sgx", func() { BNBackSums(f64(4), f64(3), f32(8), 4, f32(8), 4, nil, 0, 2, 4, f64(4), f64(4)) }},
		{"backsums invstd", func() { BNBackSums(f64(4), f64(4), f32(8), 4, f32(8), 4, nil, 0, 2, 4, f64(4), f64(3)) }},
		{"backdata dx", func() {
			BNBackData(f32(7), 4, f32(8), 4, f32(8), 4, 2, 4, f64(4), f64(4), f64(4), f64(4), f64(4), 8)
		}},
		{"backdata x", func() {
			BNBackData(f32(8), 4, f32(8), 4, f32(7), 4, 2, 4, f64(4), f64(4), f64(4), f64(4), f64(4), 8)
		}},
		{"backdata kc", func() {
			BNBackData(f32(8), 4, f32(8), 4, f32(8), 4, 2, 4, f64(4), f64(4), f64(3), f64(4), f64(4), 8)
		}},
		{"eval d", func() { BNBackDataEval(f32(8), 4, f32(7), 4, 2, 4, f64(4)) }},
		{"eval overlap", func() { BNBackDataEval(f32(8), 2, f32(8), 4, 2, 4, f64(4)) }},
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
	// Nothing to do is not an error, whatever the operands.
	BNSum(nil, nil, -1, 0, 4)
	BNApply(nil, 0, nil, 0, 3, 0, nil, nil, true)
}

// FuzzBN compares every implementation with the twin and the reference on
// random shapes and values; v32 and v64 are planted at random positions of a
// pixel operand and a per-channel operand so that the fuzzer can steer
// towards special values.
func FuzzBN(f *testing.F) {
	f.Add(uint8(0), uint8(5), uint16(17), uint16(0), uint8(0), uint64(1), float32(1), float64(1))
	f.Add(uint8(3), uint8(2), uint16(129), uint16(0x1234), uint8(3), uint64(2), float32(math.NaN()), math.Inf(-1))
	f.Add(uint8(4), uint8(1), uint16(1), uint16(7), uint8(0x12), uint64(3), float32(-0.0), 1e-310)
	f.Add(uint8(2), uint8(9), uint16(256), uint16(0xff), uint8(0x31), uint64(4), float32(math.Inf(1)), 3.5e38)
	f.Fuzz(func(t *testing.T, kernel, np uint8, n, pads uint16, flags uint8, seed uint64, v32 float32, v64 float64) {
		c := bnCase{
			k: bnKernel(int(kernel) % int(bnKernelCount)), np: 1 + int(np)%12, n: 1 + int(n)%300,
			rows: 1 + int(flags>>6), relu: flags&1 != 0, inplace: flags&2 != 0, special: int(flags>>2) % 16 * 2,
		}
		for i := range c.pad {
			c.pad[i] = int(pads>>(4*i)) % 16
		}
		if flags&0x20 != 0 {
			c.cnt = float64(seed%1000) + 0.25
		}
		plant := func(s *bnState, k *bnConsts) {
			for i, op := range c.operands() {
				if op.used {
					q := int(seed % uint64(c.plen(op)))
					if c.inside(op, q) {
						s.px[i][bnLead+q] = v32
					}
				}
			}
			all := k.all()
			all[int(seed>>8)%len(all)][int(seed>>16)%c.n] = v64
			if s.acc[0] != nil {
				s.acc[0][bnLead+int(seed>>24)%c.n] = v64
			}
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
