// Command embed reads handwritten digits: a whole classifier in one static binary,
// its weights compiled in with //go:embed. It is the pattern to copy for any
// generated model: import its package, embed a state_dict, load it with
// weights.LoadBytes, run Forward.
//
// Usage:
//
//	go build -o digits ./examples/embed
//	./digits [-top N] [-invert] IMAGE...
//
// Each IMAGE is a 28×28 PNG or JPEG digit, white on black as in MNIST (-invert for
// dark ink on a light background); colour is converted to grey. It prints the most
// likely digits with their probabilities:
//
//	seven.png: 7 (99.8%)
//
// The embedded weights.safetensors is vgg_mnist (spec/vgg_mnist.cnn, 1.5 MB in F32)
// trained for two epochs on MNIST (98.98% test accuracy), made with
//
//	go run ./cmd/cnn train -model vgg_mnist -epochs 2 -seed 1 -out /tmp/vgg_mnist.ckpt
//	go run ./cmd/cnn export -model vgg_mnist -weights /tmp/vgg_mnist.ckpt -o examples/embed/weights.safetensors
//
// (export keeps the model's tensors and leaves out the optimizer's). Any state_dict
// of the same architecture works: one saved by PyTorch with
// torch.save(model.state_dict(), "weights.pth") embeds the same way (rename the
// embed line), and `cnn export -model vgg_mnist -o ...` writes untrained ones.
package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"
	"sort"

	"github.com/cnngen/cnngen/generated/vggmnist"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

//go:embed weights.safetensors
var weightsFile []byte

// MNIST's normalization, as in training (data/mnist): (pixel/255 − mean)/std.
const (
	mean = 0.1307
	std  = 0.3081
	side = 28
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("digits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	top := fs.Int("top", 1, "digits to print per image")
	invert := fs.Bool("invert", false, "the digits are dark on a light background")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: digits [-top N] [-invert] IMAGE...  (28×28 PNG or JPEG digits)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *top < 1 {
		fs.Usage()
		return 2
	}
	c, err := newClassifier()
	if err != nil {
		fmt.Fprintln(stderr, "digits:", err)
		return 1
	}
	defer c.m.Close()
	status := 0
	for _, path := range fs.Args() {
		preds, err := c.classifyFile(path, *invert)
		if err != nil {
			fmt.Fprintln(stderr, "digits:", err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s:", path)
		for i, p := range preds[:min(*top, len(preds))] {
			if i > 0 {
				fmt.Fprint(stdout, ",")
			}
			fmt.Fprintf(stdout, " %d (%.1f%%)", p.digit, 100*p.prob)
		}
		fmt.Fprintln(stdout)
	}
	return status
}

// classifier is the model with the embedded weights.
type classifier struct {
	m *vggmnist.Model
	x []float32
}

func newClassifier() (*classifier, error) {
	m, err := vggmnist.New(runtime.Config{MaxBatch: 1, Threads: 1})
	if err != nil {
		return nil, err
	}
	// Strict: every tensor of the model must be in the file, with its shape.
	if _, err := weights.LoadBytes(m, weightsFile, "weights.safetensors", weights.Options{}); err != nil {
		m.Close()
		return nil, err
	}
	return &classifier{m: m, x: make([]float32, side*side)}, nil
}

type prediction struct {
	digit int
	prob  float64
}

// classifyFile returns the ten digits for the image at path, most likely first.
func (c *classifier) classifyFile(path string, invert bool) ([]prediction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, fmt.Errorf("%s: not a PNG or JPEG image", path)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if err := digitTensor(c.x, img, invert); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	logits, err := c.m.Forward(c.x, 1)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return softmax(logits), nil
}

// digitTensor writes img's grey levels, normalized as in training, into x (1×28×28).
func digitTensor(x []float32, img image.Image, invert bool) error {
	b := img.Bounds()
	if b.Dx() != side || b.Dy() != side {
		return fmt.Errorf("the image is %d×%d; the model reads %d×%d digits", b.Dx(), b.Dy(), side, side)
	}
	for y := range side {
		for xx := range side {
			g := color.GrayModel.Convert(img.At(b.Min.X+xx, b.Min.Y+y)).(color.Gray).Y
			if invert {
				g = 255 - g
			}
			x[y*side+xx] = float32((float64(g)/255 - mean) / std)
		}
	}
	return nil
}

// softmax returns every class with its probability, most likely first.
func softmax(logits []float32) []prediction {
	hi := math.Inf(-1)
	for _, v := range logits {
		hi = max(hi, float64(v))
	}
	var sum float64
	preds := make([]prediction, len(logits))
	for i, v := range logits {
		preds[i] = prediction{i, math.Exp(float64(v) - hi)}
		sum += preds[i].prob
	}
	for i := range preds {
		preds[i].prob /= sum
	}
	sort.SliceStable(preds, func(i, j int) bool { return preds[i].prob > preds[j].prob })
	return preds
}
