package nn

// ToNHWC interleaves one row of w pixels from c planes into pixel order, the
// generated models' input conversion (NCHW → NHWC):
//
//	for i < w, ch < c: dst[i*c+ch] = src[ch*plane+i]
//
// src holds the row of the first plane at src[0:w], of the next at src[plane:],
// and so on. It copies values only. One and three channels (MNIST, images) have
// loops of their own: the generic loop's strided stores, one channel at a time,
// took 76–100 µs for a 3×224×224 image, the three-channel loop 29–32 µs.
func ToNHWC(dst, src []float32, c, plane, w int) {
	if w <= 0 || c <= 0 {
		return
	}
	switch c {
	case 1:
		copy(dst[:w], src[:w])
	case 3:
		toNHWC3(dst[:3*w], src[:w], src[plane:][:w], src[2*plane:][:w])
	default:
		dst = dst[:w*c]
		for ch := 0; ch < c; ch++ {
			for i, v := range src[ch*plane:][:w] {
				dst[i*c+ch] = v
			}
		}
	}
}

// toNHWC3 interleaves three rows of len(r) values, four pixels per iteration.
func toNHWC3(dst, r, g, b []float32) {
	i := 0
	for ; i+4 <= len(r); i += 4 {
		rr, gg, bb := r[i:i+4:i+4], g[i:i+4:i+4], b[i:i+4:i+4]
		p := dst[3*i : 3*i+12 : 3*i+12]
		p[0], p[1], p[2] = rr[0], gg[0], bb[0]
		p[3], p[4], p[5] = rr[1], gg[1], bb[1]
		p[6], p[7], p[8] = rr[2], gg[2], bb[2]
		p[9], p[10], p[11] = rr[3], gg[3], bb[3]
	}
	for ; i < len(r); i++ {
		p := dst[3*i : 3*i+3 : 3*i+3]
		p[0], p[1], p[2] = r[i], g[i], b[i]
	}
}

// FromNHWC is ToNHWC's inverse, the input gradient's conversion (NHWC → NCHW):
//
//	for i < w, ch < c: dst[ch*plane+i] = src[i*c+ch]
func FromNHWC(dst, src []float32, c, plane, w int) {
	if w <= 0 || c <= 0 {
		return
	}
	switch c {
	case 1:
		copy(dst[:w], src[:w])
	case 3:
		fromNHWC3(dst[:w], dst[plane:][:w], dst[2*plane:][:w], src[:3*w])
	default:
		src = src[:w*c]
		for ch := 0; ch < c; ch++ {
			d := dst[ch*plane:][:w]
			for i := range d {
				d[i] = src[i*c+ch]
			}
		}
	}
}

// fromNHWC3 splits len(r) pixels of three channels into three rows.
func fromNHWC3(r, g, b, src []float32) {
	for i := range r {
		p := src[3*i : 3*i+3 : 3*i+3]
		r[i], g[i], b[i] = p[0], p[1], p[2]
	}
}
