package nn

import "github.com/cnngen/cnngen/runtime/parallel"

// Part returns the i-th of n consecutive, nearly equal parts of s (0 ≤ i < n),
// split as parallel.Span splits work. The parts cover s in order without overlap.
// Generated convolutions hand each row of a claim one part of the weights to
// prefetch (kernels.ConvNHWCNext), so that a claim's rows together bring in
// the next block's weights.
func Part(s []float32, i, n int) []float32 {
	lo, hi := parallel.Span(len(s), i, n)
	return s[lo:hi]
}

// Head returns the first n elements of s, or all of s if it is shorter.
func Head(s []float32, n int) []float32 {
	return s[:min(n, len(s))]
}
