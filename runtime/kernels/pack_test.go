package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// packGatherRef is PackGather's contract, spelled out.
func packGatherRef(dst, src []float32, n, sstep, jstride, nj int) {
	for i := 0; i < n; i++ {
		for j := 0; j < NR; j++ {
			dst[i*NR+j] = 0
			if j < nj {
				dst[i*NR+j] = src[i*sstep+j*jstride]
			}
		}
	}
}

// packSpecials are bit patterns a copy must keep: −0, subnormals, ±Inf,
// quiet and signalling NaNs with payloads and sign.
var packSpecials = []uint32{
	0x80000000, 0x00000001, 0x807fffff, 0x00400000, 0x7f800000, 0xff800000,
	0x7fc00001, 0xffc12345, 0x7f800001, 0xffa5a5a5, 0x7fbfffff,
}

// packSource returns a src of exactly the length a call reads, ending at a
// guard page (on Linux) so that any read past it faults, filled with random
// bits (NaN payloads and subnormals among them) and the specials where it is
// read, and a signalling NaN elsewhere.
func packSource(t testing.TB, rng *rand.Rand, n, sstep, jstride, nj int) []float32 {
	l := 1
	if n > 0 && nj > 0 {
		l = (n-1)*sstep + (nj-1)*jstride + 1
	}
	src := convGuarded(t, 1, l)
	for k := range src {
		src[k] = math.Float32frombits(convSentinel)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < nj; j++ {
			k := i*sstep + j*jstride
			if rng.IntN(4) == 0 {
				src[k] = math.Float32frombits(packSpecials[rng.IntN(len(packSpecials))])
			} else {
				src[k] = math.Float32frombits(rng.Uint32())
			}
		}
	}
	return src
}

// packFuncs are the exported entries, which share the contract.
var packFuncs = []struct {
	name string
	f    func(dst, src []float32, n, sstep, jstride, nj int)
}{{"PackGather", PackGather}, {"PackGatherNT", func(dst, src []float32, n, sstep, jstride, nj int) {
	PackGatherNT(dst, src, n, sstep, jstride, nj)
	PackFence()
}}}

// packAligned returns a slice of n values whose start is off floats past a
// 64-byte boundary.
func packAligned(n, off int) []float32 {
	buf := make([]float32, n+16+off)
	a := int(uintptr(unsafe.Pointer(&buf[0]))%64) / 4
	return buf[(16-a)%16+off:][:n]
}

// testPackGatherCall runs PackGather and PackGatherNT, on a dst that starts
// on a 64-byte boundary and on one that does not, surrounded by guard
// values, and compares every bit with the contract.
func testPackGatherCall(t *testing.T, rng *rand.Rand, n, sstep, jstride, nj int) {
	t.Helper()
	src := packSource(t, rng, n, sstep, jstride, nj)
	want := make([]float32, n*NR)
	packGatherRef(want, src, n, sstep, jstride, nj)
	const guard = 2 * NR
	for _, pf := range packFuncs {
		for _, off := range []int{0, 1} {
			buf := packAligned(n*NR+2*guard, off)
			for k := range buf {
				buf[k] = math.Float32frombits(convSentinel)
			}
			// dst runs past n*NR into the guard: nothing may be written there.
			pf.f(buf[guard:], src, n, sstep, jstride, nj)
			what := fmt.Sprintf("%s n=%d sstep=%d jstride=%d nj=%d dst 64-byte aligned+%d floats", pf.name, n, sstep, jstride, nj, off)
			for k, v := range buf {
				w := uint32(convSentinel)
				if k >= guard && k < guard+n*NR {
					w = math.Float32bits(want[k-guard])
				}
				if g := math.Float32bits(v); g != w {
					t.Fatalf("%s: dst[%d] = %#08x, want %#08x", what, k-guard, g, w)
				}
			}
		}
	}
}

// TestPackGather checks every nj from 0 to NR on row counts 0, 1, odd and
// even, with strides 0, 1, the packs' own (taps, rows of a 3×3 and an 11×11
// layer) and large, on every ISA, bit for bit against the contract.
func TestPackGather(t *testing.T) {
	forEachPackISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for nj := 0; nj <= NR; nj++ {
			for _, n := range []int{0, 1, 2, 3, 7, 16, 17} {
				for _, s := range [][2]int{{1, 1}, {9, 4608}, {4608, 9}, {121, 363}, {1, 33}, {0, 5}, {3, 0}, {300, 1}, {2, 70001}} {
					testPackGatherCall(t, rng, n, s[0], s[1], nj)
				}
			}
		}
	})
}

// TestPackGatherLargeStride reaches lane offsets near the largest the
// packs see (512 input channels × 11×11 taps ≈ 2¹⁶ floats between output
// channels) and beyond, and checks when the assembly defers to Go.
func TestPackGatherLargeStride(t *testing.T) {
	forEachPackISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for _, c := range [][4]int{{3, 1, 1<<16 + 3, NR}, {2, 1 << 17, 1<<15 + 1, 31}, {1, 0, 1 << 18, 17}} {
			testPackGatherCall(t, rng, c[0], c[1], c[2], c[3])
		}
	})
	for _, c := range []struct {
		jstride, nj int
		ok          bool
	}{
		{math.MaxInt32, 2, true}, {math.MaxInt32 / 31, NR, true}, {math.MaxInt32/31 + 1, NR, false},
		{math.MaxInt32 + 1, 2, false}, {math.MaxInt32 + 1, 1, true}, {1 << 40, 1, true},
	} {
		if got := packGatherIndexOK(c.jstride, c.nj); got != c.ok {
			t.Errorf("packGatherIndexOK(%d, %d) = %v, want %v", c.jstride, c.nj, got, c.ok)
		}
	}
}

// TestPackGatherISAsAgree runs random calls through every ISA and compares
// their outputs with each other's, bit for bit.
func TestPackGatherISAsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		n, nj := rng.IntN(40), rng.IntN(NR+1)
		sstep, jstride := rng.IntN(700), rng.IntN(5000)
		packAgree(t, rng.Uint64(), n, sstep, jstride, nj)
	}
}

// packAgree compares PackGather and PackGatherNT on every available ISA with
// the first ISA's PackGather.
func packAgree(t *testing.T, seed uint64, n, sstep, jstride, nj int) {
	t.Helper()
	defer packRestoreISA()()
	src := packSource(t, rand.New(rand.NewPCG(seed, 1)), n, sstep, jstride, nj)
	var ref []uint32
	for _, isa := range packISAs() {
		if !isa.has {
			continue
		}
		isa.use()
		for _, pf := range packFuncs {
			dst := packAligned(n*NR, 0)
			for k := range dst {
				dst[k] = math.Float32frombits(convSentinel)
			}
			pf.f(dst, src, n, sstep, jstride, nj)
			bits := make([]uint32, len(dst))
			for k, v := range dst {
				bits[k] = math.Float32bits(v)
			}
			if ref == nil {
				ref = bits
				continue
			}
			for k := range bits {
				if bits[k] != ref[k] {
					t.Fatalf("n=%d sstep=%d jstride=%d nj=%d: %s %s dst[%d] = %#08x, first ISA %#08x", n, sstep, jstride, nj, isa.name, pf.name, k, bits[k], ref[k])
				}
			}
		}
	}
}

// TestPackGatherPanics checks that each bad argument panics with a message
// naming it.
func TestPackGatherPanics(t *testing.T) {
	dst, src := make([]float32, 4*NR), make([]float32, 100)
	for _, c := range []struct {
		name                  string
		dst, src              []float32
		n, sstep, jstride, nj int
		want                  string
	}{
		{"nj>NR", dst, src, 1, 1, 1, NR + 1, "nj"},
		{"nj<0", dst, src, 1, 1, 1, -1, "nj"},
		{"n<0", dst, src, -1, 1, 1, 1, "negative n"},
		{"sstep<0", dst, src, 1, -1, 1, 1, "sstep"},
		{"jstride<0", dst, src, 1, 1, -1, 1, "jstride"},
		{"dst", dst, src, 5, 1, 1, 1, "dst too short"},
		{"src", dst, src, 4, 10, 3, 32, "src too short"},
		{"src rows", dst, src, 2, 100, 0, 1, "src too short"},
		{"src lanes", dst, src, 1, 0, 100, 2, "src too short"},
		{"src overflow", dst, src, 4, math.MaxInt / 2, 1, 1, "src too short"},
		{"src empty", dst, nil, 1, 0, 0, 1, "src too short"},
	} {
		for _, pf := range packFuncs {
			func() {
				defer func() {
					r := recover()
					if s, _ := r.(string); !strings.Contains(s, c.want) || !strings.HasPrefix(s, "kernels."+pf.name+": ") {
						t.Errorf("%s: panic %v, want kernels.%s: …%s…", c.name, r, pf.name, c.want)
					}
				}()
				pf.f(c.dst, c.src, c.n, c.sstep, c.jstride, c.nj)
			}()
		}
	}
	// The largest legal call reads the last value of src and writes all of dst.
	PackGather(dst, src, 4, 11, 2, 32) // 3*11 + 31*2 = 95
	PackGather(dst, src[:96], 4, 11, 2, 32)
	PackGather(dst, nil, 0, 1, 1, 1)
	PackGather(nil, nil, 0, 1, 1, 1)
	PackGather(dst, nil, 4, 1, 1, 0) // nj = 0 reads nothing
}

// FuzzPackGather compares every implementation with the pure-Go twin on
// random shapes and bits.
func FuzzPackGather(f *testing.F) {
	f.Add(uint8(16), uint16(9), uint16(4608), uint8(32), uint64(1))
	f.Add(uint8(3), uint16(121), uint16(363), uint8(5), uint64(2))
	f.Add(uint8(1), uint16(0), uint16(0), uint8(1), uint64(3))
	f.Add(uint8(0), uint16(1), uint16(1), uint8(0), uint64(4))
	f.Fuzz(func(t *testing.T, n uint8, sstep, jstride uint16, nj uint8, seed uint64) {
		packAgree(t, seed, int(n)%64, int(sstep), int(jstride), int(nj)%(NR+1))
	})
}
