package kernels

import "math"

// MaxPoolNHWC computes np output pixels of a max pool over channels-last data,
// for c channels:
//
//	for p < np, ch < c:
//	    o := -Inf
//	    for ky < kh { for kx < kw {
//	        v := in[p*sx + ky*sy + kx*sc + ch]
//	        if v > o || v != v { o = v }
//	    }}
//	    out[p*so + ch] = o
//
// in points at the first output pixel's top-left tap, channel 0; sx is the input
// stride between output pixels (stride×C for an NHWC row of C channels), sy between
// kernel rows (row width×C), sc between kernel columns (C). There are no bounds
// inside the kernel: a padded pool calls it on the windows that lie inside the input.
//
// The selection rule is exact, and every variant (AVX-512, AVX2, pure Go) returns
// the same bits: a value replaces the running maximum only if strictly greater, so
// the first of equal values is kept (+0 before -0 gives +0, -0 before +0 gives -0);
// a NaN replaces it, payload and all, and stays until a later NaN replaces it (the
// result is the window's last NaN if it has one). out is written only at
// out[p*so+ch] for ch < c, and must not overlap in.
//
// np ≤ 0 or c ≤ 0 does nothing; kh, kw ≥ 1, strides ≥ 0, and so ≥ c when np > 1.
func MaxPoolNHWC(out []float32, so int, in []float32, sx, sy, sc, c, kh, kw, np int) {
	if np <= 0 || c <= 0 {
		return
	}
	switch {
	case kh < 1 || kw < 1:
		panic("kernels.MaxPoolNHWC: empty window")
	case so < 0 || sx < 0 || sy < 0 || sc < 0 || (np > 1 && so < c):
		panic("kernels.MaxPoolNHWC: negative or overlapping strides")
	case len(out) < (np-1)*so+c:
		panic("kernels.MaxPoolNHWC: out too short")
	case len(in) < (np-1)*sx+(kh-1)*sy+(kw-1)*sc+c:
		panic("kernels.MaxPoolNHWC: in too short")
	}
	maxPoolNHWC(out, so, in, sx, sy, sc, c, kh, kw, np)
}

// maxPoolNHWCGo is MaxPoolNHWC's pure-Go twin: the contract's loop, with the
// running maxima kept in out.
func maxPoolNHWCGo(out []float32, so int, in []float32, sx, sy, sc, c, kh, kw, np int) {
	negInf := float32(math.Inf(-1))
	for p := 0; p < np; p++ {
		o := out[p*so:]
		o = o[:c]
		for ch := range o {
			o[ch] = negInf
		}
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				x := in[p*sx+ky*sy+kx*sc:]
				x = x[:len(o)]
				for ch, v := range x {
					if v > o[ch] || v != v {
						o[ch] = v
					}
				}
			}
		}
	}
}

// MaxPoolNHWCArg is MaxPoolNHWC that also records, for every output, the input
// position of the selected tap (what the training step's backward pass routes
// the gradient to):
//
//	for p < np, ch < c:
//	    o := -Inf; a := base[p]
//	    for ky < kh { for kx < kw {
//	        v := in[p*sx + ky*sy + kx*sc + ch]
//	        if v > o || v != v { o = v; a = base[p] + ky*rowW + kx }
//	    }}
//	    out[p*so + ch] = o; arg[p*sa + ch] = int32(a)
//
// where base[p] = base0 + p*baseStep is the flat input position (y*W + x) of
// output p's top-left tap and rowW the input width W: for an unpadded pool at
// stride (SH, SW), output row oy has base0 = oy*SH*W and baseStep = SW. The
// selection rule, and so out, is MaxPoolNHWC's bit for bit; a is the position
// of the tap it selects: the window's last NaN if it has one, else its first
// largest value, else (every tap -Inf) the first tap, base[p]. The position is
// taken modulo 2^32 as int32(a) does. out is written only at out[p*so+ch], arg
// only at arg[p*sa+ch], for ch < c; neither may overlap in.
//
// np ≤ 0 or c ≤ 0 does nothing; kh, kw ≥ 1, strides ≥ 0, so ≥ c and sa ≥ c
// when np > 1.
func MaxPoolNHWCArg(out []float32, so int, arg []int32, sa int, in []float32, sx, sy, sc, c, kh, kw, np int, base0, baseStep, rowW int) {
	if np <= 0 || c <= 0 {
		return
	}
	switch {
	case kh < 1 || kw < 1:
		panic("kernels.MaxPoolNHWCArg: empty window")
	case so < 0 || sa < 0 || sx < 0 || sy < 0 || sc < 0 || (np > 1 && (so < c || sa < c)):
		panic("kernels.MaxPoolNHWCArg: negative or overlapping strides")
	case len(out) < (np-1)*so+c:
		panic("kernels.MaxPoolNHWCArg: out too short")
	case len(arg) < (np-1)*sa+c:
		panic("kernels.MaxPoolNHWCArg: arg too short")
	case len(in) < (np-1)*sx+(kh-1)*sy+(kw-1)*sc+c:
		panic("kernels.MaxPoolNHWCArg: in too short")
	}
	maxPoolNHWCArg(out, so, arg, sa, in, sx, sy, sc, c, kh, kw, np, base0, baseStep, rowW)
}

// maxPoolNHWCArgGo is MaxPoolNHWCArg's pure-Go twin: the contract's loop, with
// the running maxima and positions kept in out and arg.
func maxPoolNHWCArgGo(out []float32, so int, arg []int32, sa int, in []float32, sx, sy, sc, c, kh, kw, np int, base0, baseStep, rowW int) {
	negInf := float32(math.Inf(-1))
	for p := 0; p < np; p++ {
		base := base0 + p*baseStep
		o := out[p*so:]
		o = o[:c]
		a := arg[p*sa:]
		a = a[:len(o)]
		for ch := range o {
			o[ch] = negInf
			a[ch] = int32(base)
		}
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				at := int32(base + ky*rowW + kx)
				x := in[p*sx+ky*sy+kx*sc:]
				x = x[:len(o)]
				for ch, v := range x {
					if v > o[ch] || v != v {
						o[ch] = v
						a[ch] = at
					}
				}
			}
		}
	}
}
