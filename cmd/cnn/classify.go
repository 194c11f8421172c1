package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/cnngen/cnngen/data/imagenet"
	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

// classResult and imageResult are `cnn classify -json`'s output: one imageResult
// per image, in the order given.
type classResult struct {
	Class int     `json:"class"`
	Name  string  `json:"name"` // the ImageNet name; "" for a model without 1000 classes
	Prob  float64 `json:"prob"`
}

type imageResult struct {
	Image string        `json:"image"`
	Top   []classResult `json:"top,omitempty"`
	Error string        `json:"error,omitempty"` // the image could not be classified
}

func classifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "model name, e.g. alexnet or vgg16_bn (required)")
	weightsPath := fs.String("weights", "", "the model's weights: a torchvision state_dict (.pth) or a safetensors file (required)")
	top := fs.Int("top", 5, "classes to print per image")
	asJSON := fs.Bool("json", false, "print one JSON object per image: {image, top: [{class, name, prob}]}")
	threads := fs.Int("threads", 2, "worker threads (model and image decoding)")
	batch := fs.Int("batch", 8, "images per forward pass")
	mode := fs.String("mode", "exact", "numeric mode: exact or fast")
	resize := fs.Int("resize", imagenet.ResizeSize, "shorter side after resizing, before the center crop to the model's input size")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn classify -model NAME -weights FILE [-top 5] [-json] [-threads T] [-batch B] IMAGE...")
		fmt.Fprintln(stderr, "Classifies JPEG and PNG images as torchvision's ImageNet models do: Resize(256), CenterCrop to the\nmodel's input, ToTensor, Normalize(ImageNet mean and std); prints the top classes with softmax probabilities.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *model == "" || *top < 1 || *threads < 1 || *batch < 1 || *resize < 1 {
		fs.Usage()
		return 2
	}
	if *weightsPath == "" {
		fmt.Fprintln(stderr, "cnn classify: -weights is required: a torchvision state_dict (.pth) or safetensors file for", *model)
		return 2
	}
	md, err := runtime.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "cnn classify:", err)
		return 2
	}
	images := fs.Args()
	c, err := newClassifier(*model, *weightsPath, runtime.Config{MaxBatch: min(*batch, len(images)), Threads: *threads, Mode: md}, *resize)
	if err != nil {
		fmt.Fprintln(stderr, "cnn classify:", err)
		return 1
	}
	defer c.close()
	failed := false
	enc := json.NewEncoder(stdout)
	for len(images) > 0 {
		chunk := images[:min(len(images), c.batch)]
		images = images[len(chunk):]
		for _, r := range c.classify(chunk, *top) {
			if r.Error != "" {
				failed = true
				fmt.Fprintln(stderr, "cnn classify:", r.Error)
			}
			if *asJSON {
				enc.Encode(r)
			} else if r.Error == "" {
				writeResult(stdout, r)
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

func writeResult(w io.Writer, r imageResult) {
	fmt.Fprintln(w, r.Image)
	for _, p := range r.Top {
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("class %d", p.Class)
		}
		fmt.Fprintf(w, "  %7.3f%%  %4d  %s\n", 100*p.Prob, p.Class, name)
	}
}

// classifier is an inference instance with its weights and its preprocessing.
type classifier struct {
	m       generated.Model
	tr      imagenet.Transform
	batch   int
	threads int
	x       []float32 // batch × the input of one image
}

func newClassifier(model, weightsPath string, cfg runtime.Config, resize int) (*classifier, error) {
	e, err := generated.Lookup(model)
	if err != nil {
		return nil, err
	}
	m, err := e.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", model, err)
	}
	tr, err := transformFor(m, resize)
	if err != nil {
		m.Close()
		return nil, err
	}
	if _, err := loadWeights(m, weightsPath); err != nil {
		m.Close()
		return nil, err
	}
	return &classifier{m: m, tr: tr, batch: max(cfg.MaxBatch, 1), threads: max(cfg.Threads, 1), x: make([]float32, max(cfg.MaxBatch, 1)*tr.Len())}, nil
}

// transformFor is torchvision's ImageNet evaluation transform for m's input size
// (224, or 227 for alexnet2012), with the given resize.
func transformFor(m runtime.Model, resize int) (imagenet.Transform, error) {
	s := m.InputShape()
	if s[0] != 3 || s[1] != s[2] {
		return imagenet.Transform{}, fmt.Errorf("model %s takes %d×%d×%d inputs; cnn classify feeds square RGB images (3×S×S) to ImageNet-style models (for 1×28×28 digits, see examples/embed)", m.Name(), s[0], s[1], s[2])
	}
	tr := imagenet.Eval(s[1])
	tr.Resize = resize
	return tr, nil
}

func (c *classifier) close() { c.m.Close() }

// classify decodes and preprocesses up to c.batch images (c.threads at a time),
// runs the good ones through the model in one batch and returns one result per
// image, with the error of those that failed.
func (c *classifier) classify(paths []string, top int) []imageResult {
	res := make([]imageResult, len(paths))
	n := c.tr.Len()
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(c.threads, len(paths)) {
		wg.Go(func() {
			for i := range next {
				res[i].Image = paths[i]
				img, err := imagenet.DecodeFile(paths[i]) // its errors name the file
				if err == nil {
					if err = c.tr.Apply(c.x[i*n:(i+1)*n], img); err != nil {
						err = fmt.Errorf("%s: %v", paths[i], err)
					}
				}
				if err != nil {
					res[i].Error = err.Error()
				}
			}
		})
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()

	// Move the good samples together, run them, hand out the results.
	var good []int
	for i := range res {
		if res[i].Error == "" {
			copy(c.x[len(good)*n:(len(good)+1)*n], c.x[i*n:(i+1)*n])
			good = append(good, i)
		}
	}
	if len(good) == 0 {
		return res
	}
	logits, err := c.m.Forward(c.x[:len(good)*n], len(good))
	k := c.m.Classes()
	for j, i := range good {
		if err != nil {
			res[i].Error = fmt.Sprintf("%s: %v", paths[i], err)
			continue
		}
		l := logits[j*k : (j+1)*k]
		if !finite(l) {
			res[i].Error = fmt.Sprintf("%s: the model's output is not finite (NaN or Inf): are the weights right?", paths[i])
			continue
		}
		for _, p := range imagenet.Top(l, top) {
			res[i].Top = append(res[i].Top, classResult{Class: p.Class, Name: p.Name, Prob: p.Prob})
		}
	}
	return res
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// checkpointPrefix marks the tensors of a `cnn train -out` checkpoint that are not
// the model's (the optimizer's momentum): classify and export skip them.
const checkpointPrefix = "optim."

// loadWeights loads a state_dict (.pth or safetensors) into m strictly, except that
// a checkpoint's optimizer tensors are skipped: every tensor of the model must be
// in the file with its shape, and the file may hold nothing else.
func loadWeights(m runtime.Model, path string) (*weights.Report, error) {
	rep, err := weights.LoadFile(m, path, weights.Options{})
	if err == nil || !errors.Is(err, weights.ErrMismatch) {
		return rep, err
	}
	// Perhaps only a checkpoint's extra tensors: load what matches, and accept it if
	// nothing of the model is missing and everything skipped is optimizer state.
	rep2, err2 := weights.LoadFile(m, path, weights.Options{NonStrict: true})
	if err2 != nil || len(rep2.Missing) > 0 {
		return rep, err
	}
	for _, s := range rep2.Skipped {
		if !strings.HasPrefix(s, checkpointPrefix) {
			return rep, err
		}
	}
	return rep2, nil
}
