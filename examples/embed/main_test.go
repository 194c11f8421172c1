package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/data/mnist"
)

// drawDigit draws a 28×28 digit the way MNIST has them (white strokes about 2.5
// pixels wide on black, in the centre 20×20 box): a 0 is an ellipse, a 1 a slanted
// bar, a 7 a bar with a slanted stem.
func drawDigit(d int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, side, side))
	// seg is the distance from p to the segment ab.
	seg := func(px, py, ax, ay, bx, by float64) float64 {
		dx, dy := bx-ax, by-ay
		t := max(0, min(1, ((px-ax)*dx+(py-ay)*dy)/(dx*dx+dy*dy)))
		return math.Hypot(px-ax-t*dx, py-ay-t*dy)
	}
	for y := range side {
		for x := range side {
			px, py := float64(x)+0.5, float64(y)+0.5
			var dist float64
			switch d {
			case 0:
				dist = math.Abs(math.Hypot((px-14)/5.5, (py-14)/8.5)-1) * 6.5
			case 1:
				dist = seg(px, py, 16, 5, 12, 23)
			case 7:
				dist = min(seg(px, py, 8, 6, 20, 6), seg(px, py, 20, 6, 12, 23))
			}
			v := max(0, min(1, 2.2-dist)) // anti-aliased stroke
			img.SetGray(x, y, color.Gray{uint8(255 * v)})
		}
	}
	return img
}

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runDigits(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return code, o.String(), e.String()
}

// The program on digits it draws: white on black PNGs, and dark on light colour
// JPEGs read with -invert.
func TestDrawnDigits(t *testing.T) {
	dir := t.TempDir()
	var pngs, jpgs []string
	for _, d := range []int{0, 1, 7} {
		img := drawDigit(d)
		p := filepath.Join(dir, fmt.Sprintf("%d.png", d))
		writeImage(t, p, img)
		pngs = append(pngs, p)
		inv := image.NewRGBA(img.Rect)
		for i, v := range img.Pix {
			copy(inv.Pix[4*i:], []uint8{255 - v, 255 - v/2, 255 - v, 255}) // dark green ink on white
		}
		j := filepath.Join(dir, fmt.Sprintf("%d_inverted.jpg", d))
		writeImage(t, j, inv)
		jpgs = append(jpgs, j)
	}
	for _, c := range []struct {
		args  []string
		paths []string
		top   int
	}{{nil, pngs, 1}, {[]string{"-invert", "-top", "3"}, jpgs, 3}} {
		code, out, errOut := runDigits(append(c.args, c.paths...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(c.paths) {
			t.Fatalf("%v: output\n%s", c.args, out)
		}
		for i, d := range []int{0, 1, 7} {
			prefix := fmt.Sprintf("%s: %d (", c.paths[i], d)
			if !strings.HasPrefix(lines[i], prefix) || strings.Count(lines[i], "%)") != c.top {
				t.Errorf("%v: %q, want a line starting %q with %d digits", c.args, lines[i], prefix, c.top)
			}
		}
	}
}

// The embedded weights read real MNIST test digits, written as PNG files and read
// back through the program, as well as training measured (98.98% on the test set).
func TestMNISTDigits(t *testing.T) {
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	_, test, err := mnist.Load(dir)
	if err != nil {
		t.Skip(err)
	}
	c, err := newClassifier()
	if err != nil {
		t.Fatal(err)
	}
	defer c.m.Close()
	const n = 50
	tmp := t.TempDir()
	correct := 0
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, side, side))
		copy(img.Pix, test.Images[i*side*side:(i+1)*side*side])
		p := filepath.Join(tmp, fmt.Sprintf("%d.png", i))
		writeImage(t, p, img)
		preds, err := c.classifyFile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		if preds[0].digit == int(test.Labels[i]) {
			correct++
		}
	}
	t.Logf("%d of the first %d test digits right", correct, n)
	if correct < n-2 {
		t.Errorf("%d of %d test digits right; the embedded weights scored 98.98%%", correct, n)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	writeImage(t, big, image.NewGray(image.Rect(0, 0, 32, 28)))
	text := filepath.Join(dir, "digit.png")
	os.WriteFile(text, []byte("seven"), 0o644)
	good := filepath.Join(dir, "one.png")
	writeImage(t, good, drawDigit(1))
	code, out, errOut := runDigits(big, text, filepath.Join(dir, "missing.png"), good)
	if code != 1 || !strings.HasPrefix(out, good+": 1 (") {
		t.Errorf("exit %d, output %q", code, out)
	}
	for _, want := range []string{"big.png: the image is 32×28; the model reads 28×28 digits", "digit.png: not a PNG or JPEG image", "missing.png: no such file"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, _ := runDigits(); code != 2 {
		t.Errorf("no images: exit %d, want 2", code)
	}
	if code, _, _ := runDigits("-top", "0", good); code != 2 {
		t.Errorf("-top 0: exit %d, want 2", code)
	}
}
