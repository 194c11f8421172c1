package kernels

// The batch-norm kernels. Data is NHWC (channels last): a call processes np
// pixels of n contiguous channels, pixel p's channel k of operand x at
// x[p*sx+k], where the stride sx (in float32s) is the full channel count C and
// the n channels are a worker's channel range. The per-channel statistics are
// float64 arrays of length ≥ n, read and (for the sums) written back, so that
// calls for successive rows of pixels continue the same per-channel chains:
// each channel's accumulation runs over the pixels in the order of the calls
// and, within a call, in pixel order.
//
// Every operation is one IEEE double operation, rounded on its own (no fused
// multiply-add anywhere; in Go a product inside float64(...) is rounded before
// it is added). float32 → float64 conversions are exact, float64 → float32
// rounds to nearest even, as Go's float32() does. The AVX-512, AVX2 and
// pure-Go variants therefore return the same bits, except that a NaN may come
// out with another sign or payload (any NaN stays a NaN).
//
// Operands that a kernel writes must not overlap any other operand, except
// where a kernel says that it may run in place.

// BNSum adds the pixels of x to the per-channel sums:
//
//	for p < np { for k < n { sum[k] += float64(x[p*sx+k]) } }
func BNSum(sum []float64, x []float32, sx, np, n int) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNSum"
	bnCheckIn(fn, "x", len(x), sx, np, n)
	bnCheckChan(fn, "sum", sum, n)
	bnSum(sum, x, sx, np, n)
}

// BNSumSq adds the squared deviations of the pixels of x from mean:
//
//	for p < np { for k < n {
//	    d := float64(x[p*sx+k]) - mean[k]
//	    sq[k] += float64(d*d)                   // product rounded, then added
//	}}
func BNSumSq(sq []float64, x []float32, sx, np, n int, mean []float64) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNSumSq"
	bnCheckIn(fn, "x", len(x), sx, np, n)
	bnCheckChan(fn, "sq", sq, n)
	bnCheckChan(fn, "mean", mean, n)
	bnSumSq(sq, x, sx, np, n, mean)
}

// BNApply normalizes: out = x·scale + shift per channel, then an optional
// ReLU, rounded to float32:
//
//	for p < np { for k < n {
//	    v := float32(float64(float64(x[p*sx+k])*scale[k]) + shift[k])
//	    if relu && v < 0 { v = 0 }               // NaN and -0 pass
//	    out[p*so+k] = v
//	}}
//
// out may be x itself with so == sx (in place).
func BNApply(out []float32, so int, x []float32, sx, np, n int, scale, shift []float64, relu bool) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNApply"
	bnCheckOut(fn, "out", len(out), so, np, n)
	bnCheckIn(fn, "x", len(x), sx, np, n)
	bnCheckChan(fn, "scale", scale, n)
	bnCheckChan(fn, "shift", shift, n)
	bnApply(out, so, x, sx, np, n, scale, shift, relu)
}

// BNBackSums accumulates the per-channel sums of the backward pass: Σg and
// Σg·x̂ with x̂ = (x − mean)·invstd. If out is not nil, the layer's output
// went through a fused ReLU, and the gradient d is first masked in place:
// d is set to 0 where the output is not positive, and left alone elsewhere.
//
//	for p < np { for k < n {
//	    if out != nil && !(out[p*so+k] > 0) { d[p*sd+k] = 0 }
//	    g := float64(d[p*sd+k])
//	    xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])
//	    sg[k] += g
//	    sgx[k] += float64(g * xh)
//	}}
//
// so is not used when out is nil.
func BNBackSums(sg, sgx []float64, d []float32, sd int, x []float32, sx int, out []float32, so int, np, n int, mean, invstd []float64) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNBackSums"
	if out != nil {
		bnCheckOut(fn, "d", len(d), sd, np, n)
		bnCheckIn(fn, "out", len(out), so, np, n)
	} else {
		bnCheckIn(fn, "d", len(d), sd, np, n)
	}
	bnCheckIn(fn, "x", len(x), sx, np, n)
	bnCheckChan(fn, "sg", sg, n)
	bnCheckChan(fn, "sgx", sgx, n)
	bnCheckChan(fn, "mean", mean, n)
	bnCheckChan(fn, "invstd", invstd, n)
	bnBackSums(sg, sgx, d, sd, x, sx, out, so, np, n, mean, invstd)
}

// BNBackData computes the input gradient of a batch norm in training mode,
// from the sums of BNBackSums over all cnt pixels of the batch and kc =
// gamma·invstd:
//
//	for p < np { for k < n {
//	    g := float64(d[p*sd+k])
//	    xh := float64((float64(x[p*sx+k]) - mean[k]) * invstd[k])
//	    a := float64(cnt*g) - sg[k]
//	    t := a - float64(xh*sgx[k])
//	    dx[p*sdx+k] = float32(float64(kc[k]/cnt) * t)
//	}}
//
// dx may be d itself with sdx == sd (in place).
func BNBackData(dx []float32, sdx int, d []float32, sd int, x []float32, sx int, np, n int, mean, invstd, kc, sg, sgx []float64, cnt float64) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNBackData"
	bnCheckOut(fn, "dx", len(dx), sdx, np, n)
	bnCheckIn(fn, "d", len(d), sd, np, n)
	bnCheckIn(fn, "x", len(x), sx, np, n)
	bnCheckChan(fn, "mean", mean, n)
	bnCheckChan(fn, "invstd", invstd, n)
	bnCheckChan(fn, "kc", kc, n)
	bnCheckChan(fn, "sg", sg, n)
	bnCheckChan(fn, "sgx", sgx, n)
	bnBackData(dx, sdx, d, sd, x, sx, np, n, mean, invstd, kc, sg, sgx, cnt)
}

// BNBackDataEval computes the input gradient of a batch norm in evaluation
// mode (fixed statistics), kc = gamma·invstd:
//
//	for p < np { for k < n { dx[p*sdx+k] = float32(float64(d[p*sd+k]) * kc[k]) } }
//
// dx may be d itself with sdx == sd (in place).
func BNBackDataEval(dx []float32, sdx int, d []float32, sd int, np, n int, kc []float64) {
	if np <= 0 || n <= 0 {
		return
	}
	const fn = "kernels.BNBackDataEval"
	bnCheckOut(fn, "dx", len(dx), sdx, np, n)
	bnCheckIn(fn, "d", len(d), sd, np, n)
	bnCheckChan(fn, "kc", kc, n)
	bnBackDataEval(dx, sdx, d, sd, np, n, kc)
}

// bnCheckIn checks an operand read at np pixels of n channels with stride s
// (np, n ≥ 1).
func bnCheckIn(fn, name string, l, s, np, n int) {
	switch {
	case s < 0:
		panic(fn + ": negative stride of " + name)
	case l < (np-1)*s+n:
		panic(fn + ": " + name + " too short")
	}
}

// bnCheckOut checks an operand written at np pixels of n channels: its pixels
// must not overlap.
func bnCheckOut(fn, name string, l, s, np, n int) {
	bnCheckIn(fn, name, l, s, np, n)
	if np > 1 && s < n {
		panic(fn + ": overlapping pixels of " + name)
	}
}

func bnCheckChan(fn, name string, v []float64, n int) {
	if len(v) < n {
		panic(fn + ": " + name + " too short")
	}
}

// bnSumGo is BNSum's pure-Go twin.
func bnSumGo(sum []float64, x []float32, sx, np, n int) {
	s := sum[:n]
	for p := 0; p < np; p++ {
		xp := x[p*sx:]
		xp = xp[:len(s)]
		for k, v := range xp {
			s[k] += float64(v)
		}
	}
}

// bnSumSqGo is BNSumSq's pure-Go twin.
func bnSumSqGo(sq []float64, x []float32, sx, np, n int, mean []float64) {
	s, m := sq[:n], mean[:n]
	for p := 0; p < np; p++ {
		xp := x[p*sx:]
		xp = xp[:len(s)]
		for k, v := range xp {
			d := float64(v) - m[k]
			s[k] += float64(d * d)
		}
	}
}

// bnApplyGo is BNApply's pure-Go twin.
func bnApplyGo(out []float32, so int, x []float32, sx, np, n int, scale, shift []float64, relu bool) {
	sc, sh := scale[:n], shift[:n]
	for p := 0; p < np; p++ {
		xp, op := x[p*sx:], out[p*so:]
		xp, op = xp[:len(sc)], op[:len(sc)]
		for k, v := range xp {
			r := float32(float64(float64(v)*sc[k]) + sh[k])
			if relu && r < 0 {
				r = 0
			}
			op[k] = r
		}
	}
}

// bnBackSumsGo is BNBackSums' pure-Go twin.
func bnBackSumsGo(sg, sgx []float64, d []float32, sd int, x []float32, sx int, out []float32, so int, np, n int, mean, invstd []float64) {
	a, b, m, is := sg[:n], sgx[:n], mean[:n], invstd[:n]
	for p := 0; p < np; p++ {
		dp, xp := d[p*sd:], x[p*sx:]
		dp, xp = dp[:len(a)], xp[:len(a)]
		if out != nil {
			op := out[p*so:]
			op = op[:len(a)]
			for k, v := range op {
				if !(v > 0) {
					dp[k] = 0
				}
			}
		}
		for k, v := range dp {
			g := float64(v)
			xh := float64((float64(xp[k]) - m[k]) * is[k])
			a[k] += g
			b[k] += float64(g * xh)
		}
	}
}

// bnBackDataGo is BNBackData's pure-Go twin.
func bnBackDataGo(dx []float32, sdx int, d []float32, sd int, x []float32, sx int, np, n int, mean, invstd, kc, sg, sgx []float64, cnt float64) {
	m, is, kk, a, b := mean[:n], invstd[:n], kc[:n], sg[:n], sgx[:n]
	for p := 0; p < np; p++ {
		dp, xp, tp := d[p*sd:], x[p*sx:], dx[p*sdx:]
		dp, xp, tp = dp[:len(m)], xp[:len(m)], tp[:len(m)]
		for k, v := range dp {
			g := float64(v)
			xh := float64((float64(xp[k]) - m[k]) * is[k])
			s := float64(cnt*g) - a[k]
			t := s - float64(xh*b[k])
			tp[k] = float32(float64(kk[k]/cnt) * t)
		}
	}
}

// bnBackDataEvalGo is BNBackDataEval's pure-Go twin.
func bnBackDataEvalGo(dx []float32, sdx int, d []float32, sd int, np, n int, kc []float64) {
	kk := kc[:n]
	for p := 0; p < np; p++ {
		dp, tp := d[p*sd:], dx[p*sdx:]
		dp, tp = dp[:len(kk)], tp[:len(kk)]
		for k, v := range dp {
			tp[k] = float32(float64(v) * kk[k])
		}
	}
}
