package imagenet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassNames(t *testing.T) {
	names := ClassNames()
	if len(names) != 1000 {
		t.Fatalf("%d class names, want 1000", len(names))
	}
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || n != strings.TrimSpace(n) || seen[n] {
			t.Errorf("class %d: bad or repeated name %q", i, n)
		}
		seen[n] = true
	}
	// Indices every ImageNet user knows.
	for i, want := range map[int]string{0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby", 285: "Egyptian cat", 999: "toilet tissue"} {
		if names[i] != want || ClassName(i) != want {
			t.Errorf("class %d is %q, want %q", i, names[i], want)
		}
	}
	names[0] = "changed"
	if ClassName(0) != "tench" || ClassName(-1) != "" || ClassName(1000) != "" {
		t.Error("ClassNames returned the package's own slice, or ClassName accepts bad indices")
	}
}

// torchvision's rules for the resized size and the crop offset.
func TestResizedSizeAndCrop(t *testing.T) {
	for _, c := range []struct{ w, h, size, ww, wh int }{
		{500, 375, 256, 341, 256}, // int(256·500/375) = int(341.33)
		{333, 500, 256, 256, 384}, // int(384.38)
		{150, 199, 256, 256, 339}, // upscaling
		{256, 300, 256, 256, 300}, // unchanged
		{300, 300, 256, 256, 256},
		{1, 100000, 256, 256, 25600000},
	} {
		if w, h := ResizedSize(c.w, c.h, c.size); w != c.ww || h != c.wh {
			t.Errorf("ResizedSize(%d, %d, %d) = %d, %d; want %d, %d", c.w, c.h, c.size, w, h, c.ww, c.wh)
		}
	}
	for _, c := range []struct{ n, crop, want int }{
		{341, 224, 58}, // round(58.5) = 58: Python rounds half to even
		{343, 224, 60}, // round(59.5) = 60
		{256, 224, 16},
		{256, 227, 14}, // round(14.5) = 14
		{224, 224, 0},
		{200, 224, -12}, // padded: (224-200)//2 on the left
		{201, 224, -11},
	} {
		if got := cropOffset(c.n, c.crop); got != c.want {
			t.Errorf("cropOffset(%d, %d) = %d, want %d", c.n, c.crop, got, c.want)
		}
	}
}

// A uniform image stays uniform through the resize, at every size, up or down.
func TestUniformImage(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {7, 3}, {300, 200}, {1000, 257}, {256, 256}} {
		img := image.NewNRGBA(image.Rect(0, 0, size[0], size[1]))
		for i := 0; i < len(img.Pix); i += 4 {
			copy(img.Pix[i:], []uint8{200, 0, 255, 7}) // alpha is dropped, not composited
		}
		x, err := Preprocess(img, 224)
		if err != nil {
			t.Fatal(err)
		}
		for c, v := range [3]uint8{200, 0, 255} {
			want := (float32(v)/255 - Mean[c]) / Std[c]
			for i, got := range x[c*224*224 : (c+1)*224*224] {
				if got != want {
					t.Fatalf("%v image, channel %d, value %d: %g, want %g", size, c, i, got, want)
				}
			}
		}
	}
}

// Resizing only the crop's window gives the same pixels as resizing everything and
// cropping afterwards.
func TestWindowEqualsWholeResize(t *testing.T) {
	src := &rgb8{w: 61, h: 47, pix: make([]uint8, 61*47*3)}
	for i := range src.pix {
		src.pix[i] = uint8(i*7919>>3 ^ i)
	}
	for _, out := range [][2]int{{30, 23}, {61, 29}, {37, 47}, {100, 77}, {61, 47}} {
		whole := resizeWindow(src, out[0], out[1], 0, out[0], 0, out[1])
		x0, x1, y0, y1 := out[0]/5, out[0]-out[0]/4, out[1]/3, out[1]-1
		win := resizeWindow(src, out[0], out[1], x0, x1, y0, y1)
		for y := y0; y < y1; y++ {
			got := win.pix[(y-y0)*win.w*3 : (y-y0+1)*win.w*3]
			want := whole.pix[(y*whole.w+x0)*3 : (y*whole.w+x1)*3]
			if !bytes.Equal(got, want) {
				t.Fatalf("resize to %v: row %d of the window differs", out, y)
			}
		}
	}
}

// A crop larger than the resized image is padded with zeros (before normalization),
// as torchvision's CenterCrop pads.
func TestCropLargerThanImage(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 4, 6))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	tr := Transform{Resize: 4, Crop: 9, Mean: Mean, Std: Std}
	x := make([]float32, tr.Len())
	if err := tr.Apply(x, img); err != nil {
		t.Fatal(err)
	}
	// Resized 4×6; padded left (9-4)//2 = 2, top (9-6)//2 = 1.
	for y := range 9 {
		for xx := range 9 {
			inside := xx >= 2 && xx < 6 && y >= 1 && y < 7
			v := uint8(0)
			if inside {
				v = 255
			}
			if got, want := x[y*9+xx], (float32(v)/255-Mean[0])/Std[0]; got != want {
				t.Errorf("(%d, %d) = %g, want %g", xx, y, got, want)
			}
		}
	}
}

// The image types Go's decoders return convert as PIL's convert("RGB") does.
func TestToRGB(t *testing.T) {
	r := image.Rect(0, 0, 2, 1)
	nrgba := image.NewNRGBA(r)
	copy(nrgba.Pix, []uint8{10, 20, 30, 0, 40, 50, 60, 128})
	rgba := image.NewRGBA(r)
	copy(rgba.Pix, []uint8{10, 20, 30, 255, 20, 25, 30, 128}) // premultiplied: 20·255/128 = 39.8
	gray := image.NewGray(r)
	copy(gray.Pix, []uint8{9, 250})
	gray16 := image.NewGray16(r)
	copy(gray16.Pix, []uint8{0x12, 0xff, 0xfa, 0x00}) // big-endian: the high byte stays
	pal := image.NewPaletted(r, color.Palette{color.RGBA{1, 2, 3, 255}, color.NRGBA{4, 5, 6, 0}})
	copy(pal.Pix, []uint8{1, 0})
	for _, c := range []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"NRGBA", nrgba, []uint8{10, 20, 30, 40, 50, 60}},
		{"RGBA", rgba, []uint8{10, 20, 30, 39, 49, 59}},
		{"Gray", gray, []uint8{9, 9, 9, 250, 250, 250}},
		{"Gray16", gray16, []uint8{0x12, 0x12, 0x12, 0xfa, 0xfa, 0xfa}},
		{"Paletted", pal, []uint8{4, 5, 6, 1, 2, 3}},
		{"Gray SubImage", gray.SubImage(image.Rect(1, 0, 2, 1)), []uint8{250, 250, 250}},
	} {
		if got := toRGB(c.img).pix; !bytes.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A YCbCr image that is a window of a larger one (a SubImage) converts to the same
// pixels as the larger one where libjpeg's chroma grid still applies (an origin on
// the grid), except on its first row and column, where the upsampler replicates the
// edge instead of reading outside; and without a panic at any origin.
func TestYCbCrSubImage(t *testing.T) {
	const w, h = 37, 23
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 31)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*17), uint8(255-i*5)
		}
		whole := toRGB(m)
		for _, o := range []image.Point{{0, 0}, {1, 1}, {4, 2}, {3, 5}, {8, 4}} {
			sub := toRGB(m.SubImage(image.Rect(o.X, o.Y, w, h)))
			if sub.w != w-o.X || sub.h != h-o.Y {
				t.Fatalf("%v, origin %v: %d×%d", ratio, o, sub.w, sub.h)
			}
			if o.X%4 != 0 || o.Y%2 != 0 {
				continue // off the chroma grid: converted with replicated chroma
			}
			for y := o.Y + 1; y < h; y++ {
				got := sub.pix[((y-o.Y)*sub.w+1)*3 : (y-o.Y+1)*sub.w*3]
				want := whole.pix[(y*w+o.X+1)*3 : (y+1)*w*3]
				if !bytes.Equal(got, want) {
					t.Errorf("%v, origin %v: row %d differs from the whole image's", ratio, o, y)
					break
				}
			}
		}
	}
}

func TestApplyErrors(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for _, c := range []struct {
		tr   Transform
		dst  int
		img  image.Image
		want string
	}{
		{Eval(224), 3*224*224 - 1, img, "holds"},
		{Eval(0), 0, img, "between 1 and 65536"},
		{Transform{Resize: 256, Crop: 4, Mean: Mean}, 48, img, "Std[0]"},
		{Transform{Resize: 256, Crop: 4, Mean: Mean, Std: [3]float32{1, float32(math.NaN()), 1}}, 48, img, "Std[1]"},
		{Eval(4), 48, image.NewGray(image.Rect(3, 3, 3, 9)), "empty"},
		{Eval(4), 48, nil, "no image"},
	} {
		err := c.tr.Apply(make([]float32, c.dst), c.img)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.tr, err, c.want)
		}
	}
	if _, err := Preprocess(img, -1); err == nil {
		t.Error("Preprocess with size -1: no error")
	}
}

// pngHeader is the start of a PNG file whose IHDR claims w×h RGB pixels.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 4+13)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	dir := t.TempDir()
	var good bytes.Buffer
	png.Encode(&good, image.NewGray(image.Rect(0, 0, 3, 2)))
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 16, 16)), nil)
	files := map[string][]byte{
		"ok.png":        good.Bytes(),
		"ok.jpg":        jpg.Bytes(),
		"empty.png":     nil,
		"text.jpg":      []byte("hello, world"),
		"cut.png":       good.Bytes()[:good.Len()-20],
		"cut.jpg":       jpg.Bytes()[:jpg.Len()/2],
		"huge.png":      pngHeader(100000, 100000),
		"gif.gif":       []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
		"truncated.png": pngHeader(4, 4),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"empty.png":     "empty file",
		"text.jpg":      "not a JPEG or PNG image",
		"gif.gif":       "not a JPEG or PNG image",
		"cut.png":       "png",
		"cut.jpg":       "jpeg",
		"huge.png":      "100000x100000 png image",
		"truncated.png": "truncated png",
	} {
		path := filepath.Join(dir, name)
		_, err := DecodeFile(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v; want one naming the file and saying %q", name, err, want)
		}
	}
	for _, name := range []string{"ok.png", "ok.jpg"} {
		if img, err := DecodeFile(filepath.Join(dir, name)); err != nil || img.Bounds().Empty() {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeFile(filepath.Join(dir, "missing.png")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
}

func TestTop(t *testing.T) {
	logits := []float32{1, 3, 2, 3, -1}
	top := Top(logits, 3)
	if len(top) != 3 || top[0].Class != 1 || top[1].Class != 3 || top[2].Class != 2 {
		t.Fatalf("Top = %+v; want classes 1, 3 (tie, by index), 2", top)
	}
	var sum float64
	for _, p := range Top(logits, 10) {
		sum += p.Prob
		if p.Name != "" {
			t.Errorf("class %d of 5 named %q", p.Class, p.Name)
		}
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("probabilities sum to %g", sum)
	}
	want := math.Exp(3) / (math.Exp(1) + 2*math.Exp(3) + math.Exp(2) + math.Exp(-1))
	if math.Abs(top[0].Prob-want) > 1e-12 {
		t.Errorf("p = %g, want %g", top[0].Prob, want)
	}
	if Top(logits, 0) != nil || Top(nil, 5) != nil || len(Top(logits, -3)) != 0 {
		t.Error("empty Top is not empty")
	}
	big := make([]float32, 1000)
	big[281] = 50 // no overflow: the largest logit is subtracted first
	if p := Top(big, 1)[0]; p.Class != 281 || p.Name != "tabby" || math.Abs(p.Prob-1) > 1e-9 {
		t.Errorf("Top of ImageNet logits: %+v", p)
	}
}

// Any image size, resize and crop: no panic, every value finite.
func TestSizesDoNotPanic(t *testing.T) {
	for w := 1; w < 40; w += 3 {
		for h := 1; h < 40; h += 5 {
			img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
			for _, tr := range []Transform{Eval(5), {Resize: 3, Crop: 7, Mean: Mean, Std: Std}, {Resize: 50, Crop: 1, Mean: Mean, Std: Std}} {
				x := make([]float32, tr.Len())
				if err := tr.Apply(x, img); err != nil {
					t.Fatalf("%dx%d %+v: %v", w, h, tr, err)
				}
				for _, v := range x {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%dx%d %+v: %g", w, h, tr, v)
					}
				}
			}
		}
	}
}

// Whatever the bytes, Decode and Preprocess return an error or a tensor.
func FuzzDecodePreprocess(f *testing.F) {
	for _, name := range []string{"d_150x199_grey.png", "d_150x199_q85_440.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		if b := img.Bounds(); b.Dx()*b.Dy() > 1<<20 {
			return // keep each run fast
		}
		if _, err := Preprocess(img, 16); err != nil {
			t.Fatal(err)
		}
	})
}

// A 12-megapixel photo's worth of 4:2:0 JPEG output to a 224×224 tensor.
func BenchmarkPreprocess12MP(b *testing.B) {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = uint8(i)
	}
	x := make([]float32, 3*224*224)
	tr := Eval(224)
	for b.Loop() {
		if err := tr.Apply(x, img); err != nil {
			b.Fatal(err)
		}
	}
}
