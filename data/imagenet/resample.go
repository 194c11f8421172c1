package imagenet

import "math"

// The resampler below is Pillow's (src/libImaging/Resample.c; the fixtures were made
// with Pillow 9.4) for 8-bit images and the bilinear filter, which is what torchvision's
// Resize does to a PIL image: a separable two-pass resample, horizontal first, each
// pass rounding to 8 bits. When it shrinks, the triangle filter is stretched by
// the scale factor (antialiasing: every source pixel under the stretched filter
// contributes). Weights are computed in float64 exactly as Pillow computes them,
// then turned into fixed point with 22 fraction bits, and sums are integers, so
// the result is Pillow's to the bit.
//
// Go may fuse x*y+z into one FMA on some platforms; the explicit float64
// conversions below keep every product rounded on its own, as Pillow's C is
// compiled for x86-64 (no FMA contraction).

// precisionBits is Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2.
const precisionBits = 22

// taps are the fixed-point filter weights of one resampling pass, for outputs
// from ... to-1 of it.
type taps struct {
	from, ksize int     // the first output; weights per output (the widest window)
	lo, n       []int   // output from+i reads inputs lo[i] ... lo[i]+n[i]-1
	k           []int32 // output from+i's weights are k[i*ksize : i*ksize+n[i]]
}

// bilinear is Pillow's bilinear (triangle) filter, support 1.
func bilinear(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// newTaps mirrors Pillow's precompute_coeffs (box 0..inSize) followed by
// normalize_coeffs_8bpc, for the bilinear filter, but only for outputs from ... to-1
// of the outSize: each output's weights depend on its index alone.
func newTaps(inSize, outSize, from, to int) *taps {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := 1 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	t := &taps{from: from, ksize: ksize, lo: make([]int, to-from), n: make([]int, to-from), k: make([]int32, (to-from)*ksize)}
	w := make([]float64, ksize)
	for xx := from; xx < to; xx++ {
		center := float64(float64(xx)+0.5) * scale
		ss := 1 / filterscale
		// C's (int) truncates toward zero, as Go's conversion does.
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := range xmax {
			w[x] = bilinear(float64(float64(x+xmin)-center+0.5) * ss)
			ww += w[x]
		}
		i := xx - from
		k := t.k[i*ksize : i*ksize+ksize]
		for x := range xmax {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				k[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		t.lo[i], t.n[i] = xmin, xmax
	}
	return t
}

// at returns the first input and the weights of output xx.
func (t *taps) at(xx int) (int, []int32) {
	i := xx - t.from
	return t.lo[i], t.k[i*t.ksize : i*t.ksize+t.n[i]]
}

// clip8 is Pillow's clip8: the sum's integer part, clamped to 0..255.
func clip8(s int32) uint8 {
	s >>= precisionBits
	if s < 0 {
		return 0
	}
	if s > 255 {
		return 255
	}
	return uint8(s)
}

// rgb8 is an 8-bit RGB image, 3 bytes per pixel, rows packed.
type rgb8 struct {
	w, h int
	pix  []uint8
}

// resizeWindow resizes src to outW×outH as Pillow does, but computes only output
// columns [x0, x1) and rows [y0, y1): each output pixel depends on its own taps
// alone, so the window is bit-identical to the same part of the whole resize. The
// result is (x1-x0)×(y1-y0).
func resizeWindow(src *rgb8, outW, outH, x0, x1, y0, y1 int) *rgb8 {
	needH, needV := outW != src.w, outH != src.h
	img := src
	var tv *taps
	// Source rows the vertical pass reads (all of them in the window if it is not
	// needed).
	rlo, rhi := y0, y1
	if needV {
		tv = newTaps(src.h, outH, y0, y1)
		rlo, rhi = src.h, 0
		for y := y0; y < y1; y++ {
			lo, k := tv.at(y)
			rlo, rhi = min(rlo, lo), max(rhi, lo+len(k))
		}
	}
	if needH {
		th := newTaps(src.w, outW, x0, x1)
		tmp := &rgb8{w: x1 - x0, h: rhi - rlo, pix: make([]uint8, (x1-x0)*(rhi-rlo)*3)}
		for y := rlo; y < rhi; y++ {
			in := src.pix[y*src.w*3 : (y+1)*src.w*3]
			out := tmp.pix[(y-rlo)*tmp.w*3:]
			for xx := x0; xx < x1; xx++ {
				lo, k := th.at(xx)
				const half = 1 << (precisionBits - 1)
				s0, s1, s2 := int32(half), int32(half), int32(half)
				p := in[lo*3 : (lo+len(k))*3]
				for i, w := range k {
					s0 += int32(p[3*i]) * w
					s1 += int32(p[3*i+1]) * w
					s2 += int32(p[3*i+2]) * w
				}
				o := out[(xx-x0)*3:]
				o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		img = tmp
	} else {
		// Columns x0..x1 of rows rlo..rhi, unchanged.
		tmp := &rgb8{w: x1 - x0, h: rhi - rlo, pix: make([]uint8, (x1-x0)*(rhi-rlo)*3)}
		for y := rlo; y < rhi; y++ {
			copy(tmp.pix[(y-rlo)*tmp.w*3:(y-rlo+1)*tmp.w*3], src.pix[(y*src.w+x0)*3:(y*src.w+x1)*3])
		}
		img = tmp
	}
	if !needV {
		return img // rows rlo..rhi are y0..y1
	}
	out := &rgb8{w: img.w, h: y1 - y0, pix: make([]uint8, img.w*(y1-y0)*3)}
	row := img.w * 3
	for yy := y0; yy < y1; yy++ {
		lo, k := tv.at(yy)
		lo -= rlo
		o := out.pix[(yy-y0)*row : (yy-y0+1)*row]
		for c := range o {
			s := int32(1 << (precisionBits - 1))
			for i, w := range k {
				s += int32(img.pix[(lo+i)*row+c]) * w
			}
			o[c] = clip8(s)
		}
	}
	return out
}
