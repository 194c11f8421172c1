package imagenet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// expect is testdata/expect.json, written by testdata/make.py.
type expect struct {
	Torch, Torchvision, Pillow string
	Cases                      []struct {
		Input, Want         string
		Crop                int
		RowStep             int `json:"row_step"`
		SHA256              string
		Mean, Std, Min, Max [3]float64
	}
}

// diff is how far one preprocessing result is from torchvision's.
type diff struct {
	maxLevels  int     // largest difference of the 8-bit values behind the tensors
	meanLevels float64 // mean absolute difference, 8-bit levels
	maxNorm    float64 // largest difference of the normalized values
	meanNorm   float64 // mean absolute difference of the normalized values
	n          int     // values compared
}

// crop8 is the 8-bit crop behind Eval(crop).Apply: the part that Resize and
// CenterCrop leave, before ToTensor and Normalize.
func crop8(img image.Image, crop int) []uint8 {
	src := toRGB(img)
	w, h := ResizedSize(src.w, src.h, ResizeSize)
	left, top := cropOffset(w, crop), cropOffset(h, crop)
	return resizeWindow(src, w, h, left, left+crop, top, top+crop).pix
}

func loadExpect(t *testing.T) *expect {
	t.Helper()
	data, err := os.ReadFile("testdata/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expect
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Cases) == 0 {
		t.Fatal("expect.json lists no cases")
	}
	return &e
}

// normalize is ToTensor then Normalize, in float32 as torch does it.
func normalize(v uint8, c int) float32 { return (float32(v)/255 - Mean[c]) / Std[c] }

// compare compares the tensor x (3×crop×crop) with torchvision's sampled rows.
func compare(t *testing.T, x []float32, crop, step int, want image.Image) diff {
	t.Helper()
	wb := want.Bounds()
	if wb.Dx() != crop || wb.Dy() != (crop+step-1)/step {
		t.Fatalf("want image is %v; expected %d×%d", wb, crop, (crop+step-1)/step)
	}
	var d diff
	var sumL, sumN float64
	for r := range wb.Dy() {
		y := r * step
		for xx := range crop {
			c := want.At(xx, r).(interface {
				RGBA() (uint32, uint32, uint32, uint32)
			})
			rr, gg, bb, _ := c.RGBA()
			for ch, v := range [3]uint8{uint8(rr >> 8), uint8(gg >> 8), uint8(bb >> 8)} {
				got := x[ch*crop*crop+y*crop+xx]
				exp := normalize(v, ch)
				dn := math.Abs(float64(got) - float64(exp))
				// The 8-bit level behind got.
				lv := int(math.Round(float64(got*Std[ch]+Mean[ch]) * 255))
				dl := abs(lv - int(v))
				d.maxLevels = max(d.maxLevels, dl)
				d.maxNorm = max(d.maxNorm, dn)
				sumL += float64(dl)
				sumN += dn
				d.n++
			}
		}
	}
	d.meanLevels, d.meanNorm = sumL/float64(d.n), sumN/float64(d.n)
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// opaque hides an image's concrete type, so that toRGB takes the generic path
// (Go's own YCbCr to RGB conversion).
type opaque struct{ image.Image }

// JPEG bounds, in 8-bit levels (one level is 1/255/std ≈ 0.0175 normalized). What
// remains after libjpeg's upsampling and colour tables is the inverse DCT: Go's
// rounds differently from libjpeg's default (islow), which moves a Y, Cb or Cr
// sample by a level now and then; blue takes Y + 1.772·Cb, so one pixel can move by
// about three, and the resize averages such errors rather than adding them.
// Measured over the whole crops of the fixtures: max 1 to 3 levels by file, mean
// 0.013 to 0.030 levels; on twelve more files (photographs, diagrams, cjpeg's 4:1:1
// and 4:1:0) max 3, mean at most 0.05. The bounds leave one level, and twice the
// mean, of margin; Go's own YCbCr conversion is off by up to 58 levels, 1.1 on
// average, and a resize error shows as tens of levels.
const (
	jpegMaxLevels  = 4
	jpegMeanLevels = 0.1
)

// Our preprocessing against torchvision's Resize(256), CenterCrop, ToTensor,
// Normalize on a PIL image: PNG bit for bit (the whole crop, by its SHA-256, and
// the stored rows value by value); JPEG within the bounds above.
func TestMatchesTorchvision(t *testing.T) {
	e := loadExpect(t)
	t.Logf("fixtures from torch %s, torchvision %s, Pillow %s", e.Torch, e.Torchvision, e.Pillow)
	for _, c := range e.Cases {
		t.Run(c.Input+"/"+strconv.Itoa(c.Crop), func(t *testing.T) {
			img, err := DecodeFile(filepath.Join("testdata", c.Input))
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join("testdata", c.Want))
			if err != nil {
				t.Fatal(err)
			}
			want, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			x, err := Preprocess(img, c.Crop)
			if err != nil {
				t.Fatal(err)
			}
			d := compare(t, x, c.Crop, c.RowStep, want)
			sum := sha256.Sum256(crop8(img, c.Crop))
			same := hex.EncodeToString(sum[:]) == c.SHA256
			// For the record: Go's own YCbCr conversion (chroma replicated).
			xs, _ := Preprocess(opaque{img}, c.Crop)
			ds := compare(t, xs, c.Crop, c.RowStep, want)
			t.Logf("%-24s crop %d: max %d levels (%.4f normalized), mean %.4f levels (%.5f); whole crop identical: %v; with Go's YCbCr conversion: max %d, mean %.4f levels",
				c.Input, c.Crop, d.maxLevels, d.maxNorm, d.meanLevels, d.meanNorm, same, ds.maxLevels, ds.meanLevels)

			meanTol := 1e-6 // float64 sums of the same float32 values, in another order
			if strings.HasSuffix(c.Input, ".png") {
				if !same || d.maxLevels != 0 || d.maxNorm != 0 {
					t.Errorf("PNG: differs from torchvision's (max %d levels, %g normalized on the stored rows; whole crop identical: %v)", d.maxLevels, d.maxNorm, same)
				}
			} else {
				if d.maxLevels > jpegMaxLevels || d.meanLevels > jpegMeanLevels {
					t.Errorf("JPEG: max %d levels, mean %.4f levels; the bounds are %d and %g", d.maxLevels, d.meanLevels, jpegMaxLevels, jpegMeanLevels)
				}
				meanTol = jpegMeanLevels / 255 / 0.224
			}
			// The whole crop's per-channel statistics, computed by torch.
			n := c.Crop * c.Crop
			for ch := range 3 {
				var s, s2 float64
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, v := range x[ch*n : (ch+1)*n] {
					s += float64(v)
					s2 += float64(v) * float64(v)
					lo, hi = min(lo, float64(v)), max(hi, float64(v))
				}
				mean := s / float64(n)
				std := math.Sqrt(max(s2/float64(n)-mean*mean, 0))
				if math.Abs(mean-c.Mean[ch]) > meanTol || math.Abs(std-c.Std[ch]) > 10*meanTol+1e-6 {
					t.Errorf("channel %d: mean %.7f std %.7f; torchvision %.7f %.7f", ch, mean, std, c.Mean[ch], c.Std[ch])
				}
				if strings.HasSuffix(c.Input, ".png") && (lo != c.Min[ch] || hi != c.Max[ch]) {
					t.Errorf("channel %d: range [%g, %g]; torchvision [%g, %g]", ch, lo, hi, c.Min[ch], c.Max[ch])
				}
			}
		})
	}
}
