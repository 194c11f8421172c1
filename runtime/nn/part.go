package nn

// Part returns the i-th of n consecutive, nearly equal parts of s (0 ≤ i < n):
// s[i*len(s)/n : (i+1)*len(s)/n]. The parts cover s in order without overlap.
// Generated convolutions hand each row of a claim one part of the weights to
// prefetch (kernels.ConvNHWCNext), so that a claim's rows together bring in
// the next block's weights.
func Part(s []float32, i, n int) []float32 {
	return s[i*len(s)/n : (i+1)*len(s)/n]
}

// Head returns the first n elements of s, or all of s if it is shorter.
func Head(s []float32, n int) []float32 {
	return s[:min(n, len(s))]
}
