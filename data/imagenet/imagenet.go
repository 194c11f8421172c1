// Package imagenet prepares images for the ImageNet classifiers of torchvision and
// names their classes, so that a model loaded from a torchvision state_dict sees
// the tensor PyTorch would give it:
//
//	img = PIL.Image.open(path).convert("RGB")
//	x = Compose([Resize(256), CenterCrop(224), ToTensor(),
//	             Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(img)
//
// Preprocess does the same to an image.Image: the resize is Pillow's antialiased
// bilinear resampling reimplemented in fixed point, so for a PNG the result equals
// torchvision's bit for bit (testdata/make.py writes the fixtures that check this).
// JPEG files differ a little more, because Go's image/jpeg decoder is not libjpeg:
// its inverse DCT rounds differently. Converting the decoder's YCbCr planes to RGB is
// done as libjpeg does it (the "fancy" chroma upsampling and its integer tables);
// what remains is a level or two of 8 bits here and there, at most 3 on the files
// measured (README.md, "Weights and classification", has the figures).
//
// As in torchvision, EXIF orientation is ignored, alpha is dropped without
// compositing, and a grey image is replicated to three channels. Two deliberate
// differences from PIL: a 16-bit PNG keeps the high byte of each sample (PIL opens
// 16-bit grey as 32-bit integers and convert("RGB") saturates them at 255), and a
// CMYK JPEG is converted with Go's formula, not PIL's.
//
// ClassNames are the 1000 ImageNet-1k class names in torchvision's order, the
// meta["categories"] of its ImageNet weights, written to classes.txt by classes.py.
package imagenet

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"strings"
)

// The constants of torchvision's ImageNet evaluation transform.
const (
	ResizeSize = 256 // the shorter side after Resize
	CropSize   = 224 // the side of the center crop, for 224×224 models
)

// Mean and Std are the per-channel (R, G, B) normalization of torchvision's ImageNet
// models, for pixel values scaled to [0, 1].
var (
	Mean = [3]float32{0.485, 0.456, 0.406}
	Std  = [3]float32{0.229, 0.224, 0.225}
)

// Transform is torchvision's Compose([Resize(Resize), CenterCrop(Crop), ToTensor(),
// Normalize(Mean, Std)]) applied to a PIL image.
type Transform struct {
	Resize    int // the shorter side after resizing (the longer one keeps the aspect ratio)
	Crop      int // the side of the square center crop
	Mean, Std [3]float32
}

// Eval returns the ImageNet evaluation transform for a model taking crop×crop
// inputs: Resize(256), CenterCrop(crop), the ImageNet mean and std. Models of 227
// (alexnet2012, as the BVLC reference model) take the same 256 resize.
func Eval(crop int) Transform {
	return Transform{Resize: ResizeSize, Crop: crop, Mean: Mean, Std: Std}
}

// Preprocess applies Eval(size) to img and returns the 3×size×size tensor, channels
// first (CHW), as torchvision would feed it to the model.
func Preprocess(img image.Image, size int) ([]float32, error) {
	x := make([]float32, 3*size*size)
	if err := Eval(size).Apply(x, img); err != nil {
		return nil, err
	}
	return x, nil
}

// Len is the length of the tensor Apply writes: 3×Crop×Crop.
func (t Transform) Len() int { return 3 * t.Crop * t.Crop }

// Apply writes the transformed img into dst, which must hold t.Len() values: one
// CHW sample of an NCHW batch.
func (t Transform) Apply(dst []float32, img image.Image) error {
	if t.Resize < 1 || t.Crop < 1 || t.Resize > 1<<16 || t.Crop > 1<<16 {
		return fmt.Errorf("imagenet: Resize %d and Crop %d must be between 1 and 65536", t.Resize, t.Crop)
	}
	for c := range 3 {
		if !(t.Std[c] > 0) || math.IsInf(float64(t.Std[c]), 0) {
			return fmt.Errorf("imagenet: Std[%d] = %g is not a positive number", c, t.Std[c])
		}
	}
	if len(dst) != t.Len() {
		return fmt.Errorf("imagenet: the output holds %d values; a 3×%d×%d sample needs %d", len(dst), t.Crop, t.Crop, t.Len())
	}
	if img == nil {
		return errors.New("imagenet: no image")
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("imagenet: the image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	if int64(b.Dx())*int64(b.Dy()) > MaxPixels {
		return fmt.Errorf("imagenet: the image has %dx%d pixels, over the limit of %d", b.Dx(), b.Dy(), MaxPixels)
	}
	src := toRGB(img)
	outW, outH := ResizedSize(src.w, src.h, t.Resize)
	left, top := cropOffset(outW, t.Crop), cropOffset(outH, t.Crop)
	// The part of the resized image inside the crop (all of it, when the crop is
	// larger and torchvision pads).
	x0, x1 := max(left, 0), min(left+t.Crop, outW)
	y0, y1 := max(top, 0), min(top+t.Crop, outH)
	win := resizeWindow(src, outW, outH, x0, x1, y0, y1)

	// ToTensor: value/255; Normalize: (v - mean)/std; both in float32, each
	// operation rounded, as torch computes them.
	n := t.Crop * t.Crop
	for c := range 3 {
		mean, std := t.Mean[c], t.Std[c]
		var lut [256]float32
		for v := range lut {
			lut[v] = (float32(v)/255 - mean) / std
		}
		out := dst[c*n : (c+1)*n]
		for y := range t.Crop {
			row := out[y*t.Crop : (y+1)*t.Crop]
			sy := top + y
			if sy < y0 || sy >= y1 {
				for x := range row {
					row[x] = lut[0] // torchvision pads with 0
				}
				continue
			}
			pix := win.pix[(sy-y0)*win.w*3:]
			for x := range row {
				sx := left + x
				if sx < x0 || sx >= x1 {
					row[x] = lut[0]
					continue
				}
				row[x] = lut[pix[(sx-x0)*3+c]]
			}
		}
	}
	return nil
}

// ResizedSize is the size torchvision's Resize(size) gives a w×h image: the shorter
// side becomes size and the longer one int(size × long / short), truncated.
func ResizedSize(w, h, size int) (int, int) {
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	newLong := int(float64(size) * float64(long) / float64(short))
	if w <= h {
		return size, newLong
	}
	return newLong, size
}

// cropOffset is where torchvision's CenterCrop starts a crop of size crop in a side
// of length n: int(round((n - crop) / 2.0)) with Python's round half to even, or,
// when the crop is larger, minus the left (top) padding (crop - n) // 2.
func cropOffset(n, crop int) int {
	if crop > n {
		return -((crop - n) / 2)
	}
	return int(math.RoundToEven(float64(n-crop) / 2))
}

//go:embed classes.txt
var classesTxt string

var classNames = strings.Split(strings.TrimSuffix(classesTxt, "\n"), "\n")

// ClassNames returns the 1000 ImageNet-1k class names in torchvision's class order
// ("tench", "goldfish", ..., "toilet tissue"). The slice is a copy.
func ClassNames() []string { return append([]string(nil), classNames...) }

// ClassName returns the name of ImageNet class i, or "" if there is none.
func ClassName(i int) string {
	if i < 0 || i >= len(classNames) {
		return ""
	}
	return classNames[i]
}

// Prediction is one class of a classifier's output for one sample.
type Prediction struct {
	Class int     // the output index
	Name  string  // the ImageNet class name if there are 1000 classes, else ""
	Prob  float64 // the softmax probability
}

// Top returns the k most probable classes of one sample's logits, most probable
// first (ties by class index), with their softmax probabilities. With 1000 logits
// the classes are named after ImageNet's. k is clamped to 0 ... len(logits).
func Top(logits []float32, k int) []Prediction {
	k = max(0, min(k, len(logits)))
	if k == 0 {
		return nil
	}
	hi := math.Inf(-1)
	for _, v := range logits {
		hi = max(hi, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - hi)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	top := make([]Prediction, k)
	for i, c := range idx[:k] {
		top[i] = Prediction{Class: c, Prob: math.Exp(float64(logits[c])-hi) / sum}
		if len(logits) == len(classNames) {
			top[i].Name = classNames[c]
		}
	}
	return top
}
