package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLinearChainMatchesGEMM checks LinearChain against a second, independent
// implementation of the same order: ConvNHWC running the layer as a 1×1
// convolution on packed weights (gen.LinearGEMM's forward). Both start each
// output from its bias and chain the inputs in order, so they must agree bit
// for bit, on every ISA, with special values and relu.
func TestLinearChainMatchesGEMM(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, s := range []struct{ m, n, k int }{{1, 40, 7}, {1, 1000, 300}, {3, 17, 16}, {8, 64, 129}, {13, 33, 1}, {25, 70, 257}} {
			for _, relu := range []bool{false, true} {
				nb := (s.n + NR - 1) / NR
				x := make([]float32, s.m*s.k)
				w := make([]float32, s.n*s.k)
				b := make([]float32, nb*NR)
				convFill(rng, x, 2)
				convFill(rng, w, 2)
				convFill(rng, b[:s.n], 2)
				want := make([]float32, s.m*s.n)
				linearGEMMRun(want, x, linearGEMMPack(w, s.n, s.k), b, s.m, s.n, s.k, relu)
				got := make([]float32, s.m*s.n)
				if relu { // the caller's packing buffer; the pooled one otherwise
					LinearChainBuf(got, s.n, x, s.k, w, s.k, b[:s.n], s.m, s.n, s.k, relu, make([]float32, LinearChainBufLen(s.m, s.k)))
				} else {
					LinearChain(got, s.n, x, s.k, w, s.k, b[:s.n], s.m, s.n, s.k, relu)
				}
				for p := range got {
					if !sameConv(got[p], want[p]) {
						t.Fatalf("m=%d n=%d k=%d relu=%v: y[%d][%d] = %g (%#x), GEMM %g (%#x)", s.m, s.n, s.k, relu,
							p/s.n, p%s.n, got[p], math.Float32bits(got[p]), want[p], math.Float32bits(want[p]))
					}
				}
			}
		}
	})
}

// TestLinearChainNoBias checks that without a bias every chain starts from +0:
// a row of -0 products gives +0 (the same as ConvNHWC without a bias), and the
// result equals the chain computed here from FMA32 directly.
func TestLinearChainNoBias(t *testing.T) {
	forEachConvISA(t, func(t *testing.T) {
		const m, n, k = 3, 21, 19
		x := make([]float32, m*k)
		w := make([]float32, n*k)
		rng := rand.New(rand.NewPCG(9, 10))
		convFill(rng, x, 0)
		convFill(rng, w, 0)
		for c := range k {
			x[c] = float32(math.Copysign(0, -1)) // sample 0: every product is ±0
		}
		y := make([]float32, m*n)
		for i := range y {
			y[i] = float32(math.NaN()) // must all be overwritten
		}
		LinearChain(y, n, x, k, w, k, nil, m, n, k, false)
		for i := range m {
			for j := range n {
				var acc float32
				for c := range k {
					acc = FMA32(x[i*k+c], w[j*k+c], acc)
				}
				got := y[i*n+j]
				if math.Float32bits(got) != math.Float32bits(acc) {
					t.Fatalf("y[%d][%d] = %g (%#x), want %g (%#x)", i, j, got, math.Float32bits(got), acc, math.Float32bits(acc))
				}
			}
		}
		for j := range n {
			if math.Float32bits(y[j]) != 0 {
				t.Fatalf("sample 0, output %d: %g, want +0", j, y[j])
			}
		}
	})
}

func TestLinearChainPanics(t *testing.T) {
	y, x, w := make([]float32, 6), make([]float32, 6), make([]float32, 9)
	for _, c := range []struct {
		want string
		f    func()
	}{
		{"LinearChain: k < 1", func() { LinearChain(y, 3, x, 3, w, 3, nil, 2, 3, 0, false) }},
		{"LinearChain: y too short", func() { LinearChain(y[:5], 3, x, 3, w, 3, nil, 2, 3, 3, false) }},
		{"LinearChain: x too short", func() { LinearChain(y, 3, x[:5], 3, w, 3, nil, 2, 3, 3, false) }},
		{"LinearChain: w too short", func() { LinearChain(y, 3, x, 3, w[:8], 3, nil, 2, 3, 3, false) }},
		{"LinearChain: bias too short", func() { LinearChain(y, 3, x, 3, w, 3, make([]float32, 2), 2, 3, 3, false) }},
		{"LinearChainBuf: w too short", func() { LinearChainBuf(y, 3, x, 3, w[:8], 3, nil, 2, 3, 3, false, make([]float32, 6)) }},
		{"LinearChainBuf: buf too short", func() { LinearChainBuf(y, 3, x, 3, w, 3, nil, 2, 3, 3, false, make([]float32, 5)) }},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || fmt.Sprint(r) != "kernels."+c.want {
					t.Errorf("%s: recovered %v", c.want, r)
				}
			}()
			c.f()
		}()
	}
	// One sample needs no buffer.
	LinearChainBuf(y, 3, x, 3, w, 3, nil, 1, 3, 3, false, nil)
}
