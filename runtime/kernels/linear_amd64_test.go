//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tests of each assembly variant against the pure-Go twins: dispatch is forced
// to AVX-512, then to AVX2 (skipped where the CPU lacks one), and every result
// must equal the twin's bit for bit (NaNs only as NaNs). Inputs end right
// before a PROT_NONE page, so any read past them faults; outputs sit among
// sentinels that must survive.

// linHas records what the CPU offers, before any test switches dispatch.
var linHas = map[string]bool{"avx512": useAVX512, "avx2": useAVX2}

var linISAs = []string{"avx512", "avx2"}

// linUse forces dispatch to isa and returns the function that restores it.
func linUse(isa string) (restore func()) {
	a, b := useAVX512, useAVX2
	useAVX512, useAVX2 = isa == "avx512", true
	return func() { useAVX512, useAVX2 = a, b }
}

// linAvailable lists the variants this CPU can run, logging the others.
func linAvailable(t testing.TB) []string {
	var isas []string
	for _, isa := range linISAs {
		if linHas[isa] {
			isas = append(isas, isa)
		} else {
			t.Logf("skipping %s: the CPU lacks it", isa)
		}
	}
	if len(isas) == 0 {
		t.Skip("the CPU has neither AVX-512 nor AVX2 with FMA")
	}
	return isas
}

// linArena hands out float32 slices that end right before a PROT_NONE page.
type linArena struct{ maps [][]byte }

func (a *linArena) tail(t testing.TB, n int) []float32 {
	ps := unix.Getpagesize()
	size := (4*n+ps-1)/ps*ps + ps
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mprotect(b[size-ps:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	a.maps = append(a.maps, b)
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[size-ps-4*n])), n)
}

func (a *linArena) free() {
	for _, b := range a.maps {
		unix.Munmap(b)
	}
	a.maps = nil
}

// linSentinel fills the space around outputs; no kernel computes these bits.
const linSentinel = 0x7fa5a5a5

const linGuard = 16

// linOutBuf returns a buffer of linGuard sentinels, size elements, and
// linGuard sentinels.
func linOutBuf(size int) []float32 {
	b := make([]float32, size+2*linGuard)
	for i := range b {
		b[i] = math.Float32frombits(linSentinel)
	}
	return b
}

// linCompare checks got against want over a buffer of rows × cols outputs
// with row stride ld at offset linGuard: outputs must be the same float32,
// everything else must still hold the sentinel.
func linCompare(t *testing.T, what string, got, want []float32, rows, cols, ld int) {
	t.Helper()
	for p := range got {
		q := p - linGuard
		out := q >= 0 && q < (rows-1)*ld+cols && q%ld < cols
		switch {
		case out && !linSame(got[p], want[p]):
			t.Fatalf("%s: element [%d][%d] = %g (%#x), Go twin %g (%#x)", what, q/ld, q%ld,
				got[p], math.Float32bits(got[p]), want[p], math.Float32bits(want[p]))
		case !out && math.Float32bits(got[p]) != linSentinel:
			t.Fatalf("%s: wrote %g (%#x) at %d outside the outputs", what, got[p], math.Float32bits(got[p]), q)
		}
	}
}

// linFillMode fills v according to mode: 0 plain, 1 wide exponents, 2 and 3
// with special values, 4 products that underflow to -0 (x < 0, W > 0).
func linFillMode(rng *rand.Rand, v []float32, mode, k int, isX bool) {
	switch mode {
	case 0:
		linFill(rng, v, false, 0)
	case 1:
		linFill(rng, v, true, 0)
	case 2:
		linFill(rng, v, false, 2/float64(k+8))
	case 3:
		linFill(rng, v, true, 0.5/float64(k+8))
	default:
		for i := range v {
			v[i] = float32(math.Ldexp(1+rng.Float64(), -80))
			if isX {
				v[i] = -v[i]
			}
		}
	}
}

// linCatch turns a fault (an out-of-bounds read into the PROT_NONE page) in
// f into a test failure naming the case.
func linCatch(t *testing.T, what string, f func()) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: %v", what, r)
		}
	}()
	f()
}

var (
	linTestM = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17}
	linTestN = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 33}
	linTestK = []int{1, 15, 16, 17, 31, 32, 33, 100, 4096 + 5}
)

// linLayout gives the row strides of case c: tight, or padded by odd amounts.
func linLayout(c, k, n int) (ldx, ldw, ldy int) {
	switch c % 3 {
	case 0:
		return k, k, n
	case 1:
		return k + 3, k + 1, n + 5
	default:
		return k + 1, k + 7, n + 1
	}
}

func TestLinearKernelsMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(11, 12))
	var arena linArena
	defer arena.free()
	c := 0
	for _, k := range linTestK {
		for _, m := range linTestM {
			for _, n := range linTestN {
				c++
				ldx, ldw, ldy := linLayout(c, k, n)
				mode := c % 5
				x := arena.tail(t, (m-1)*ldx+k)
				w := arena.tail(t, (n-1)*ldw+k)
				b := arena.tail(t, n)
				linFillMode(rng, x, mode, k, true)
				linFillMode(rng, w, mode, k, false)
				linFill(rng, b, false, 0.1)
				for v := 0; v < 4; v++ {
					relu := v&1 != 0
					var bias []float32
					if v&2 != 0 {
						bias = b
					}
					want := linOutBuf((m-1)*ldy + n)
					linearGo(want[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu)
					for _, isa := range isas {
						what := fmt.Sprintf("%s m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d bias=%v relu=%v mode=%d",
							isa, m, n, k, ldx, ldw, ldy, bias != nil, relu, mode)
						got := linOutBuf((m-1)*ldy + n)
						restore := linUse(isa)
						linCatch(t, what, func() { linear(got[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu) })
						restore()
						linCompare(t, what, got, want, m, n, ldy)
					}
				}
				arena.free()
			}
		}
	}
}

// TestLinearKernelsBothSets runs the shapes of TestLinearKernelsMatchGo
// (fewer of them) through each of the two kernel sets, the one with W
// prefetch (for a W beyond L2) and the one without (ks.l2), whatever the size
// of W: every tile, every partial tile, k off multiples of 16, one and several
// sample blocks, chunked inputs.
func TestLinearKernelsBothSets(t *testing.T) {
	isas := linAvailable(t)
	defer func(v int) { linearL2 = v }(linearL2)
	rng := rand.New(rand.NewPCG(15, 16))
	var arena linArena
	defer arena.free()
	c := 0
	for _, l2 := range []int{-1, math.MaxInt} {
		linearL2 = l2
		for _, k := range []int{1, 17, 33, 1024 + 16, 4096 + 5} {
			for _, m := range linTestM {
				for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 13, 25, 49} {
					c++
					ldx, ldw, ldy := linLayout(c, k, n)
					mode := c % 5
					x := arena.tail(t, (m-1)*ldx+k)
					w := arena.tail(t, (n-1)*ldw+k)
					b := arena.tail(t, n)
					linFillMode(rng, x, mode, k, true)
					linFillMode(rng, w, mode, k, false)
					linFill(rng, b, false, 0.1)
					relu := c%2 == 0
					var bias []float32
					if c%4 < 2 {
						bias = b
					}
					want := linOutBuf((m-1)*ldy + n)
					linearGo(want[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu)
					for _, isa := range isas {
						what := fmt.Sprintf("%s l2=%d m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d bias=%v relu=%v mode=%d",
							isa, l2, m, n, k, ldx, ldw, ldy, bias != nil, relu, mode)
						got := linOutBuf((m-1)*ldy + n)
						restore := linUse(isa)
						linCatch(t, what, func() { linear(got[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu) })
						restore()
						linCompare(t, what, got, want, m, n, ldy)
					}
					arena.free()
				}
			}
		}
	}
}

// TestLinearKernelsSpecials runs dense special values (NaN, ±Inf, ±0,
// subnormals, ±MaxFloat32) through every variant and small shape.
func TestLinearKernelsSpecials(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(13, 14))
	for rep := 0; rep < 4; rep++ {
		for m := 1; m <= 9; m++ {
			for n := 1; n <= 9; n += 4 {
				for k := 1; k <= 40; k += 3 {
					x := make([]float32, m*k)
					w := make([]float32, n*k)
					bias := make([]float32, n)
					linFill(rng, x, rep%2 == 1, 0.1*float64(rep+1))
					linFill(rng, w, rep%2 == 1, 0.1*float64(rep+1))
					linFill(rng, bias, false, 0.5)
					relu := (m+n+k)%2 == 0
					want := linOutBuf(m * n)
					linearGo(want[linGuard:], n, x, k, w, k, bias, m, n, k, relu)
					for _, isa := range isas {
						got := linOutBuf(m * n)
						restore := linUse(isa)
						linear(got[linGuard:], n, x, k, w, k, bias, m, n, k, relu)
						restore()
						linCompare(t, fmt.Sprintf("%s m=%d n=%d k=%d rep=%d", isa, m, n, k, rep), got, want, m, n, n)
					}
				}
			}
		}
	}
}

func TestLinearBackDataKernelsMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(15, 16))
	c := 0
	for _, k := range linTestK {
		for _, m := range linTestM {
			for _, n := range linTestN {
				c++
				ldx, ldw, ldy := linLayout(c, k, n)
				linCheckBackData(t, isas, rng, m, n, k, ldx, ldw, ldy, c%4)
			}
		}
	}
}

func TestLinearBackWeightKernelsMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(17, 18))
	c := 0
	for _, k := range linTestK {
		for _, m := range linTestM {
			for _, n := range linTestN {
				c++
				ldx, ldw, ldy := linLayout(c, k, n)
				linCheckBackWeight(t, isas, rng, m, n, k, ldx, ldw, ldy, c%4)
			}
		}
	}
}

// linBackTileK are the column counts that give every backward tile (up to 8
// vectors wide) each of its partial tiles — every number of whole vectors
// left after the full tiles — with and without a masked tail of 1, 9 or 15
// (AVX2: 1 or 7) columns.
var linBackTileK = func() (ks []int) {
	for v := 0; v < 18; v++ {
		for _, t := range []int{0, 1, 9, 15} {
			if 16*v+t > 0 {
				ks = append(ks, 16*v+t)
			}
		}
	}
	return ks
}()

// TestLinearBackTilesMatchGo runs every backward kernel (the sample blocks of
// m ≤ 8 and 13, the dW row tiles and single rows of n) through each of its
// partial column tiles and tails, with n even and odd (the unrolled loops
// over W's rows and over the samples, and their last single step).
func TestLinearBackTilesMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(21, 22))
	c := 0
	for _, k := range linBackTileK {
		for _, m := range []int{1, 2, 3, 4, 5, 6, 7, 8, 13} {
			for _, n := range []int{1, 2, 3, 5, 16, 17} {
				c++
				ldx, ldw, ldy := linLayout(c, k, n)
				linCheckBackData(t, isas, rng, m, n, k, ldx, ldw, ldy, c%4)
				linCheckBackWeight(t, isas, rng, m, n, k, ldx, ldw, ldy, c%4)
			}
		}
	}
}

// TestLinearBackBlockedMatchGo covers the dispatch's blocked paths:
// LinearBackData with a W beyond linearBackDataL2 (row blocks of
// linearBackDataRows, the chains continued through dx, the last block
// shorter and odd), and LinearBackWeight with an x beyond
// linearBackWeightInPlace (column chunks of whole tiles, of whole vectors,
// or of one vector, copied to a contiguous buffer; and n < 4, unchunked).
func TestLinearBackBlockedMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(23, 24))
	for c, s := range []linShape{{1, 133, 4101}, {3, 133, 4101}, {8, 129, 4100}, {13, 133, 4101}} {
		if 4*s.n*s.k <= linearBackDataL2 {
			t.Fatalf("%v: W fits linearBackDataL2", s)
		}
		ldx, ldw, ldy := linLayout(c, s.k, s.n)
		linCheckBackData(t, isas, rng, s.m, s.n, s.k, ldx, ldw, ldy, c%4)
	}
	for c, s := range []linShape{{17, 9, 1000}, {33, 5, 777}, {7, 13, 4101}, {52, 6, 200}, {210, 4, 50}, {220, 5, 47}, {64, 3, 500}, {32, 17, 1024}} {
		if 4*s.m*s.k <= linearBackWeightInPlace {
			t.Fatalf("%v: x fits linearBackWeightInPlace", s)
		}
		ldx, ldw, ldy := linLayout(c, s.k, s.n)
		linCheckBackWeight(t, isas, rng, s.m, s.n, s.k, ldx, ldw, ldy, c%4)
	}
}

// linCheckBackData runs LinearBackData on each of isas and compares dx with
// linearBackDataGo's, inputs ending at a PROT_NONE page, dx among sentinels.
func linCheckBackData(t *testing.T, isas []string, rng *rand.Rand, m, n, k, ldx, ldw, ldy, mode int) {
	t.Helper()
	var arena linArena
	defer arena.free()
	dy := arena.tail(t, (m-1)*ldy+n)
	w := arena.tail(t, (n-1)*ldw+k)
	linFillMode(rng, dy, mode, n, true)
	linFillMode(rng, w, mode, n, false)
	want := linOutBuf((m-1)*ldx + k)
	linearBackDataGo(want[linGuard:], ldx, dy, ldy, w, ldw, m, n, k)
	defer func(v bool) { amd = v }(amd)
	for _, isa := range isas {
		// Both vendors' choices: on AVX-512 with W in L2, AMD runs the
		// tiles without the row prefetch (the "np" kernels).
		for _, vendorAMD := range []bool{false, true} {
			amd = vendorAMD
			what := fmt.Sprintf("%s amd=%v m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d mode=%d", isa, vendorAMD, m, n, k, ldx, ldw, ldy, mode)
			got := linOutBuf((m-1)*ldx + k)
			restore := linUse(isa)
			linCatch(t, what, func() { linearBackData(got[linGuard:], ldx, dy, ldy, w, ldw, m, n, k) })
			restore()
			linCompare(t, what, got, want, m, k, ldx)
		}
	}
}

// linCheckBackWeight runs LinearBackWeight on each of isas and compares dW
// with linearBackWeightGo's: dW starts from random values (mode 2: some
// specials), its row gaps and linGuard elements before it hold sentinels,
// and it and the inputs end at a PROT_NONE page.
func linCheckBackWeight(t *testing.T, isas []string, rng *rand.Rand, m, n, k, ldx, ldw, ldy, mode int) {
	t.Helper()
	var arena linArena
	defer arena.free()
	dy := arena.tail(t, (m-1)*ldy+n)
	x := arena.tail(t, (m-1)*ldx+k)
	linFillMode(rng, dy, mode, m, true)
	linFillMode(rng, x, mode, m, false)
	size := (n-1)*ldw + k
	init := make([]float32, linGuard+size)
	for p := range init {
		init[p] = math.Float32frombits(linSentinel)
		if q := p - linGuard; q >= 0 && q%ldw < k {
			init[p] = rng.Float32()*2 - 1
			if mode == 2 && rng.IntN(8) == 0 {
				init[p] = linSpecials[rng.IntN(len(linSpecials))]
			}
		}
	}
	want := append([]float32(nil), init...)
	linearBackWeightGo(want[linGuard:], ldw, dy, ldy, x, ldx, m, n, k)
	for _, isa := range isas {
		what := fmt.Sprintf("%s m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d mode=%d", isa, m, n, k, ldx, ldw, ldy, mode)
		got := arena.tail(t, len(init))
		copy(got, init)
		restore := linUse(isa)
		linCatch(t, what, func() { linearBackWeight(got[linGuard:], ldw, dy, ldy, x, ldx, m, n, k) })
		restore()
		for p := range got {
			q := p - linGuard
			if q >= 0 && q%ldw < k {
				if !linSame(got[p], want[p]) {
					t.Fatalf("%s: dW[%d][%d] = %g, Go twin %g", what, q/ldw, q%ldw, got[p], want[p])
				}
			} else if math.Float32bits(got[p]) != linSentinel {
				t.Fatalf("%s: wrote %g at %d outside dW", what, got[p], q)
			}
		}
	}
}

// FuzzLinear compares every Linear variant with linearGo on fuzzed shapes,
// strides and values (the raw bytes become float32 bit patterns).
func FuzzLinear(f *testing.F) { linFuzz(f, linearGo, linear, false) }

// FuzzLinearChain does the same for LinearChain against linearChainGo, and on
// odd seeds through the chunked dispatch (chainUse).
func FuzzLinearChain(f *testing.F) {
	linFuzz(f, linearChainGo, func(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
		linearChain(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu, nil)
	}, true)
}

// linFuzz is the body of the forward fuzz targets: kern (the dispatching
// kernel) against twin.
func linFuzz(f *testing.F, twin, kern func(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool), chunks bool) {
	f.Add(uint8(0), uint8(0), uint16(0), uint8(0), uint64(0), []byte{})
	f.Add(uint8(8), uint8(31), uint16(16), uint8(3), uint64(1), []byte{0, 0, 0x80, 0x7f})
	f.Add(uint8(9), uint8(33), uint16(4100), uint8(0x1f), uint64(2), []byte{0, 0, 0xc0, 0x7f, 0, 0, 0, 0x80})
	f.Add(uint8(16), uint8(2), uint16(32), uint8(0x2e), uint64(3), []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, mb, nb uint8, kb uint16, flags uint8, seed uint64, data []byte) {
		isas := linAvailable(t)
		m, n, k := 1+int(mb)%18, 1+int(nb)%40, 1+int(kb)%4200
		relu, withBias := flags&1 != 0, flags&2 != 0
		ldx, ldw, ldy := linLayout(int(flags>>2), k, n)
		rng := rand.New(rand.NewPCG(seed, uint64(flags)))
		var arena linArena
		defer arena.free()
		x := arena.tail(t, (m-1)*ldx+k)
		w := arena.tail(t, (n-1)*ldw+k)
		mode := int(flags>>4) % 5
		linFillMode(rng, x, mode, k, true)
		linFillMode(rng, w, mode, k, false)
		for i := 0; i+4 <= len(data); i += 4 {
			v := math.Float32frombits(uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24)
			if p := rng.IntN(2*len(x) + len(w)); p < len(x) {
				x[p] = v
			} else {
				w[p%len(w)] = v
			}
		}
		var bias []float32
		if withBias {
			bias = arena.tail(t, n)
			linFill(rng, bias, false, 0.2)
		}
		want := linOutBuf((m-1)*ldy + n)
		twin(want[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu)
		chunk := chunks && seed&1 != 0
		for _, isa := range isas {
			what := fmt.Sprintf("%s m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d bias=%v relu=%v chunk=%v", isa, m, n, k, ldx, ldw, ldy, withBias, relu, chunk)
			got := linOutBuf((m-1)*ldy + n)
			restore, restoreChain := linUse(isa), chainUse(chunk)
			linCatch(t, what, func() { kern(got[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu) })
			restoreChain()
			restore()
			linCompare(t, what, got, want, m, n, ldy)
		}
	})
}

// TestLinearAssemblyRules checks the generated assembly: the AVX2 kernels use
// only VEX-encodable registers (X/Y0-15, no Z or K registers: avo would
// otherwise be free to pick X16-X31, which AVX2-only CPUs lack), and every RET
// follows a VZEROUPPER.
func TestLinearAssemblyRules(t *testing.T) {
	src, err := os.ReadFile("linear_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	evex := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	fn, prev, funcs, wide := "", "", 0, 0
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "TEXT ") {
			fn = line
			funcs++
		}
		if strings.HasPrefix(line, "//") || line == "" {
			continue
		}
		if evex.MatchString(line) {
			if strings.Contains(fn, "_avx2(") {
				t.Errorf("line %d: AVX2 kernel uses an AVX-512 register: %s", i+1, line)
			}
			wide++
		}
		if line == "RET" && prev != "VZEROUPPER" {
			t.Errorf("line %d: RET without VZEROUPPER in %s", i+1, fn)
		}
		prev = line
	}
	if funcs == 0 || wide == 0 {
		t.Fatalf("found %d TEXT and %d AVX-512 register uses in linear_amd64.s: is the check broken?", funcs, wide)
	}
}
