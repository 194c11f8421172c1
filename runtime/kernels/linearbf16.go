package kernels

import "math"

// BF16 rounds float32 values to bfloat16, the upper 16 bits of a float32
// (sign, 8 exponent bits, 7 mantissa bits): dst[i] = bf16(src[i]) for
// i < len(src). Rounding is to nearest, ties to even, on the float32's bits,
// so values above the largest bfloat16 (0x1.fep127) by half an ulp or more
// round to ±Inf, subnormals round like any other value (no flush to zero),
// ±0 and ±Inf are kept, and a NaN stays a NaN of the same sign with its
// upper payload bits and the quiet bit set. It panics if dst is shorter than
// src.
//
// Widened back (a 16-bit left shift: math.Float32frombits(uint32(h)<<16),
// which is exact), a result differs from the float32 by at most half a
// bfloat16 ulp. bfloat16 keeps 8 significant bits, so that is a relative
// error of at most 2^-8 (2^-8/(1+2^-8), reached at 1+2^-8, a tie that rounds
// to 1) for normal values, and an absolute error of at most 2^-134 for values
// below 2^-126; values of magnitude 0x1.ffp127 and above become ±Inf.
func BF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic("kernels.BF16: dst too short")
	}
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = bf16(f)
	}
}

// bf16 rounds one float32 to bfloat16 (BF16's rounding).
func bf16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep sign and upper payload, make it quiet
		return uint16(b>>16) | 0x0040
	}
	// Add half an ulp of the result, less one unless the kept part is odd
	// (ties to even); a carry out of the mantissa bumps the exponent, up to
	// Inf from the largest finite values.
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// widenBF16 is the exact float32 value of bfloat16 h.
func widenBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// LinearBF16 is Linear with W given as bfloat16 (as BF16 makes it; same n×k
// layout, row stride ldw in elements): y = x·Wᵀ + bias for m samples and n
// outputs over k inputs, with row i of x at x[i*ldx] and output j of sample i
// at y[i*ldy+j]; bias is nil for none.
//
// Each weight is widened exactly to float32 and the rest is Linear's exact
// order (Lanes interleaved FMA chains, the same fixed reduction tree, bias,
// relu), so LinearBF16(x, W16) equals Linear(x, widen(W16)) bit for bit, on
// every ISA, whatever the batch. Against Linear on the float32 weights W that
// W16 = BF16(W) was rounded from, each |widen(W16[j][c]) - W[j][c]| ≤
// 2^-8·|W[j][c]| (normal weights below 0x1.ffp127), so an output moves by at
// most 2^-8·Σ_c |W[j][c]·x[i][c]| plus the rounding errors of the two
// float32 accumulations, each at most γ(⌈k/16⌉+5) times its Σ_c |w·x| +
// |bias[j]|, with γ(n) = n·2^-24/(1-n·2^-24) (asm/linearbf16/README.md).
//
// At batch 1 the layer streams W from memory: bfloat16 halves the bytes read,
// and the kernels run at the same bytes per second as Linear's, twice the
// weights per second.
func LinearBF16(y []float32, ldy int, x []float32, ldx int, w []uint16, ldw int, bias []float32, m, n, k int, relu bool) {
	if m <= 0 || n <= 0 {
		return
	}
	checkLinear("LinearBF16", len(y), ldy, len(x), ldx, len(w), ldw, bias, m, n, k)
	linearBF16(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu, nil)
}

// LinearBF16Buf is LinearBF16 with the caller's buffer for the partial sums of
// calls that run in input chunks (at least LinearBF16BufLen(m, n) floats), so
// that it never allocates; LinearBF16 takes one from a sync.Pool, which a garbage
// collection may empty.
func LinearBF16Buf(y []float32, ldy int, x []float32, ldx int, w []uint16, ldw int, bias []float32, m, n, k int, relu bool, buf []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	checkLinear("LinearBF16Buf", len(y), ldy, len(x), ldx, len(w), ldw, bias, m, n, k)
	if len(buf) < LinearBF16BufLen(m, n) {
		panic("kernels.LinearBF16Buf: buf too short")
	}
	linearBF16(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu, buf)
}

// LinearBF16BufLen is the length of LinearBF16Buf's buffer for m samples and n
// outputs: the Lanes partial sums of every sample for up to linearPartRows
// outputs at a time (none for one sample, which never runs in chunks).
func LinearBF16BufLen(m, n int) int {
	if m <= 1 {
		return 0
	}
	return Lanes * m * min(n, linearPartRows)
}

// linearPartRows bounds the outputs whose partial sums wait at once in a chunked
// LinearBF16 call: a row chunk of the dispatch (ks.rows·linearPartTiles, at most
// 24·4 on AVX-512).
const linearPartRows = 96

// linearBF16Go is LinearBF16's pure-Go twin: it widens each row of W and
// takes Dot16 of it with each sample, as linearGo does.
func linearBF16Go(y []float32, ldy int, x []float32, ldx int, w []uint16, ldw int, bias []float32, m, n, k int, relu bool) {
	for j := 0; j < n; j++ {
		wj := w[j*ldw:]
		wj = wj[:k]
		for i := 0; i < m; i++ {
			xi := x[i*ldx:]
			xi = xi[:k]
			// Dot16's order on the widened row, widening as it goes (no buffer, so
			// Forward allocates nothing on the pure-Go path either).
			var s [Lanes]float32
			for c, h := range wj {
				s[c%Lanes] = FMA32(xi[c], widenBF16(h), s[c%Lanes])
			}
			for l := 0; l < 8; l++ {
				s[l] += s[l+8]
			}
			for l := 0; l < 4; l++ {
				s[l] += s[l+4]
			}
			s[0] += s[2]
			s[1] += s[3]
			v := s[0] + s[1]
			if bias != nil {
				v += bias[j]
			}
			if relu && v < 0 {
				v = 0
			}
			y[i*ldy+j] = v
		}
	}
}
