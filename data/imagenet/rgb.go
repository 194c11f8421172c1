package imagenet

import (
	"image"
	"image/color"
)

// toRGB converts img to 8-bit RGB the way PIL's Image.convert("RGB") sees the same
// file: alpha is dropped (not composited), grey is replicated, 16-bit samples keep
// their high byte, and YCbCr (JPEG) is converted as libjpeg does it (see ycbcr).
func toRGB(img image.Image) *rgb8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &rgb8{w: w, h: h, pix: make([]uint8, w*h*3)}
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, out)
	case *image.Gray:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			o := out.pix[y*w*3:]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			o := out.pix[y*w*3:]
			for x := range w {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			o := out.pix[y*w*3:]
			for x := range w {
				p := row[4*x : 4*x+4]
				if p[3] == 0xff {
					o[3*x], o[3*x+1], o[3*x+2] = p[0], p[1], p[2]
				} else {
					c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
					o[3*x], o[3*x+1], o[3*x+2] = c.R, c.G, c.B
				}
			}
		}
	case *image.Paletted:
		var pal [256][3]uint8 // indices past the palette are black
		for i, c := range m.Palette[:min(len(m.Palette), 256)] {
			pal[i] = straight(c)
		}
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			o := out.pix[y*w*3:]
			for x, i := range row {
				copy(o[3*x:3*x+3], pal[i][:])
			}
		}
	default:
		// Every other model (16-bit, CMYK, ...).
		for y := range h {
			o := out.pix[y*w*3:]
			for x := range w {
				c := straight(img.At(b.Min.X+x, b.Min.Y+y))
				copy(o[3*x:3*x+3], c[:])
			}
		}
	}
	return out
}

// straight returns c's colour without its alpha, not premultiplied, 8 bits a
// channel (the high byte of 16-bit values): what PIL keeps when it drops alpha.
func straight(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case nil:
		return [3]uint8{}
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.NRGBA64:
		return [3]uint8{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)}
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
}

// libjpeg's YCbCr → RGB tables (jdcolor.c, build_ycc_rgb_table): 16 fraction bits,
// Cr→R and Cb→B rounded to integers, the green terms summed before rounding.
var crR, cbB, crG, cbG [256]int32

func init() {
	const scale = 16
	fix := func(x float64) int32 { return int32(x*(1<<scale) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + 1<<(scale-1)) >> scale
		cbB[i] = (fix(1.77200)*x + 1<<(scale-1)) >> scale
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + 1<<(scale-1)
	}
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ycbcrToRGB converts as libjpeg(-turbo) does by default, which is what PIL decodes
// JPEG files with: subsampled chroma is first brought to full resolution by
// libjpeg's "fancy" upsampling (a triangle filter: 3/4 of the nearer chroma sample
// and 1/4 of the farther, in each subsampled direction; edges replicated), where
// libjpeg uses it (4:2:0, 4:2:2 and 4:4:0 with a chroma width over 2), and by
// replication otherwise; then each pixel goes through libjpeg's integer tables.
// Go's own YCbCr.At replicates chroma and rounds differently; on subsampled files
// that alone moves colour edges by tens of levels.
func ycbcrToRGB(m *image.YCbCr, out *rgb8) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	hs, vs := 1, 1 // chroma subsampling factors
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	// The chroma planes as libjpeg sees them: samples cw×ch starting at the
	// chroma sample of the image's first pixel. An image whose origin is not a
	// multiple of the subsampling (a SubImage) has no such grid: replicate.
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	fancy := b.Min.X%hs == 0 && b.Min.Y%vs == 0 &&
		((hs == 2 && vs == 1 && cw > 2) || (hs == 2 && vs == 2 && cw > 2) || (hs == 1 && vs == 2))
	if !fancy {
		for y := range h {
			o := out.pix[y*w*3:]
			for x := range w {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				yv, cb, cr := int32(m.Y[yi]), m.Cb[ci], m.Cr[ci]
				o[3*x] = clamp8(yv + crR[cr])
				o[3*x+1] = clamp8(yv + (cbG[cb]+crG[cr])>>16)
				o[3*x+2] = clamp8(yv + cbB[cb])
			}
		}
		return
	}
	c0 := m.COffset(b.Min.X, b.Min.Y)
	crow := func(plane []uint8, r int) []uint8 {
		r = max(0, min(r, ch-1)) // libjpeg's context rows replicate the edge rows
		return plane[c0+r*m.CStride : c0+r*m.CStride+cw]
	}
	cb, cr := make([]uint8, w+1), make([]uint8, w+1) // one row of full-resolution chroma
	sums := make([]int32, cw)
	for y := range h {
		for p, plane := range [2][]uint8{m.Cb, m.Cr} {
			full := cb
			if p == 1 {
				full = cr
			}
			near := crow(plane, y/vs)
			if vs == 2 {
				// Output row 2i mixes chroma row i with row i-1, row 2i+1 with i+1.
				far := crow(plane, y/2-1)
				if y%2 == 1 {
					far = crow(plane, y/2+1)
				}
				for i := range cw {
					sums[i] = 3*int32(near[i]) + int32(far[i])
				}
			}
			switch {
			case hs == 2 && vs == 2: // h2v2_fancy_upsample
				last, this := sums[0], sums[0]
				for i := range cw {
					next := sums[min(i+1, cw-1)]
					if i == 0 {
						full[0] = uint8((this*4 + 8) >> 4)
					} else {
						full[2*i] = uint8((this*3 + last + 8) >> 4)
					}
					if i == cw-1 {
						full[2*i+1] = uint8((this*4 + 7) >> 4)
					} else {
						full[2*i+1] = uint8((this*3 + next + 7) >> 4)
					}
					last, this = this, next
				}
			case hs == 2: // h2v1_fancy_upsample
				for i := range cw {
					v := int32(near[i])
					if i == 0 {
						full[0] = near[0]
					} else {
						full[2*i] = uint8((3*v + int32(near[i-1]) + 1) >> 2)
					}
					if i == cw-1 {
						full[2*i+1] = near[i]
					} else {
						full[2*i+1] = uint8((3*v + int32(near[i+1]) + 2) >> 2)
					}
				}
			default: // h1v2_fancy_upsample
				bias := int32(1)
				if y%2 == 1 {
					bias = 2
				}
				for i := range cw {
					full[i] = uint8((sums[i] + bias) >> 2)
				}
			}
		}
		yrow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
		o := out.pix[y*w*3:]
		for x, yv := range yrow {
			yv := int32(yv)
			o[3*x] = clamp8(yv + crR[cr[x]])
			o[3*x+1] = clamp8(yv + (cbG[cb[x]]+crG[cr[x]])>>16)
			o[3*x+2] = clamp8(yv + cbB[cb[x]])
		}
	}
}
