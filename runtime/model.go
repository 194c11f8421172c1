// Package runtime is the hand-written support every generated model imports: the
// Model contract, configuration, and (in subpackages) the compute kernels, the worker
// pool and weight loading. It never imports the spec parser or the generator, so a
// user's binary carries neither.
package runtime

import (
	"fmt"
	"time"
)

// Mode selects how a model sums.
type Mode int

const (
	// Exact sums every output element in one fixed order with fused multiply-adds and
	// never splits a sum across threads: results are bit-identical for any thread
	// count and for the AVX-512, AVX2 and pure-Go kernels.
	Exact Mode = iota
	// Fast, for inference instances only, runs 3×3 stride-1 convolutions with
	// outputs of at least 20×20 as Winograd F(4×4, 3×3) and reads the weights of the
	// linear layers that run in place (not gen.LinearGEMM) as bfloat16; its results
	// are held to verify.FastBound, a bound derived from those methods. Results still
	// do not depend on the thread count or the ISA.
	Fast
)

func (m Mode) String() string {
	switch m {
	case Exact:
		return "exact"
	case Fast:
		return "fast"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "exact" or "fast".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "exact":
		return Exact, nil
	case "fast":
		return Fast, nil
	}
	return 0, fmt.Errorf("unknown mode %q; expected exact or fast", s)
}

// Config configures a model instance.
type Config struct {
	MaxBatch int  // the largest batch Forward accepts; 0 means 1
	Threads  int  // worker threads; 0 means 1
	Mode     Mode // Exact or Fast
	// Training makes the instance able to run Backward: it then holds gradient
	// buffers and the activations Backward needs. An inference-only instance
	// (Training false) holds none of them.
	Training bool
	// Seed seeds the instance's random source (dropout masks in training mode): the
	// same seed gives the same masks, whatever the thread count.
	Seed uint64
	// NoInputGrad makes Backward skip dL/dx, the gradient of the network's input,
	// and return nil for it: the parameters' gradients are the same bits. A
	// training loop never needs it (PyTorch skips it too when the input does not
	// require grad), and for AlexNet's strided 11×11 first convolution it is the
	// most expensive pass of the step.
	NoInputGrad bool
}

// Param is a named tensor of a model in torchvision's layout (conv OIHW, linear
// out×in). Value and Grad are views into the model's memory.
type Param struct {
	Name  string // the torchvision state_dict key, e.g. "features.0.weight"
	Shape []int
	Value []float32
	Grad  []float32 // nil for buffers and for inference-only instances
}

// Model is the contract every generated model meets.
type Model interface {
	Name() string
	InputShape() [3]int // C, H, W of one sample
	Classes() int
	// Forward runs an NCHW batch of n ≤ MaxBatch samples. The logits (n×Classes) are
	// a view into the model's memory, valid until the next call. A wrong length or n
	// is an error.
	Forward(x []float32, n int) ([]float32, error)
	// Backward, after Forward on a training instance, takes dL/dlogits and returns
	// dL/dx (nil with Config.NoInputGrad), accumulating every parameter's Grad.
	Backward(dlogits []float32) ([]float32, error)
	// Params are the learnable tensors, in state_dict order.
	Params() []Param
	// Buffers are batch norm's running_mean and running_var, in state_dict order.
	Buffers() []Param
	// Sync re-derives whatever the model keeps beside the Values (packed weights,
	// folded batch norm) after Params or Buffers were written from outside.
	Sync() error
	// SetTraining switches dropout and batch norm between training and evaluation.
	SetTraining(bool)
	// ZeroGrad sets every parameter gradient to zero.
	ZeroGrad()
}

// Task is one unit of a generated model's Forward or Backward: a layer's forward
// computation, or one part of its backward (input gradient, weight gradient, ...).
// Models list their tasks for profiling (cnn bench).
type Task struct {
	Layer string // the layer (with the layers fused into it, e.g. "features.0+features.1")
	Kind  string // "conv", "linear", "maxpool", ...
	Phase string // "forward", "backward data", "backward weight", "backward bias", "relu mask", "backward"
	Algo  string // the algorithm, e.g. "direct", "gemm", "chain"
	MACs  int64  // multiply-accumulates per sample
	Bytes int64  // weight bytes read per call (linear layers stream theirs)
}

// Profiled is a model that reports the wall time of every task.
type Profiled interface {
	// Tasks lists the tasks that Forward (and, for a training instance, Backward)
	// run, in order: Forward's first.
	Tasks() []Task
	// SetProfile makes Forward and Backward call f after each task with its index in
	// Tasks and its duration; nil turns it off.
	SetProfile(f func(task int, d time.Duration))
}
