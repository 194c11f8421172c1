package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestReLUMask(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	outs := []float32{1, 0, negZero, nan, inf, 1e-45, -1, 3}
	douts := []float32{nan, 5, -2, 7, -inf, negZero, 9, 0.5}
	want := []float32{nan, 0, 0, 0, -inf, negZero, 0, 0.5}
	d := append([]float32(nil), douts...)
	ReLUMask(outs, d)
	for i := range want {
		if math.Float32bits(d[i]) != math.Float32bits(want[i]) {
			t.Errorf("out %v, dout %v: got %v (%#x), want %v (%#x)", outs[i], douts[i], d[i], math.Float32bits(d[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func BenchmarkReLUMask(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	out, dout := make([]float32, 1<<18), make([]float32, 1<<18)
	for i := range out {
		out[i] = max(0, float32(rng.NormFloat64()))
		dout[i] = 1
	}
	b.SetBytes(8 << 18)
	for b.Loop() {
		ReLUMask(out, dout)
	}
}
