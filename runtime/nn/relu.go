package nn

import "math"

// ReLUMask zeroes dout[i] wherever the ReLU output out[i] is not positive (zero,
// -0 or NaN), the backward of a ReLU fused into the layer before it, as PyTorch's
// threshold_backward does: the gradient becomes +0 there whatever it was (NaN
// included), and passes unchanged elsewhere. It masks the bits instead of
// branching: ReLU outputs are zero about half the time, in no pattern a branch
// predictor learns. len(dout) must be at least len(out).
func ReLUMask(out, dout []float32) {
	dout = dout[:len(out)]
	for i, v := range out {
		var m uint32
		if v > 0 {
			m = ^uint32(0)
		}
		dout[i] = math.Float32frombits(math.Float32bits(dout[i]) & m)
	}
}
