// Package spec parses cnngen architecture specs (*.cnn files), validates them,
// infers every layer's output shape and counts parameters and multiply-accumulates.
//
// A parsed Model is the single description of a network that the generator (package
// gen) and the float64 reference (package verify) both work from. Layer and parameter
// names follow torchvision's module paths exactly ("features.0.weight",
// "classifier.6.bias"), so a torchvision state_dict maps onto a Model with no
// renaming table.
package spec

import "fmt"

// Kind is the kind of a layer.
type Kind int

// The layer kinds. Every kind has a forward and a backward definition in package verify
// and in the generator.
const (
	Conv      Kind = iota + 1 // torch.nn.Conv2d (dilation 1)
	ReLU                      // torch.nn.ReLU
	MaxPool                   // torch.nn.MaxPool2d (floor mode, dilation 1)
	AvgPool                   // torch.nn.AdaptiveAvgPool2d
	LRN                       // torch.nn.LocalResponseNorm
	BatchNorm                 // torch.nn.BatchNorm2d (affine, tracking running stats)
	Dropout                   // torch.nn.Dropout
	Flatten                   // torch.flatten(x, 1)
	Linear                    // torch.nn.Linear
)

var kindNames = [...]string{
	Conv:      "conv",
	ReLU:      "relu",
	MaxPool:   "maxpool",
	AvgPool:   "avgpool",
	LRN:       "lrn",
	BatchNorm: "batchnorm",
	Dropout:   "dropout",
	Flatten:   "flatten",
	Linear:    "linear",
}

// String returns the keyword that introduces the kind in a spec file.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Shape is the shape of one sample's activation: C channels of H×W. A flat vector of
// n features (after Flatten or Linear) is {n, 1, 1} with Flat set.
type Shape struct {
	C, H, W int
	Flat    bool
}

// Size is the number of values in one sample.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string {
	if s.Flat {
		return fmt.Sprintf("%d", s.C)
	}
	return fmt.Sprintf("%d×%d×%d", s.C, s.H, s.W)
}

// Pos is a position in a spec file.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Layer is one module of the network, with its hyper-parameters and its inferred
// input and output shapes. Only the fields of its Kind are meaningful.
type Layer struct {
	Kind Kind
	// Name is the torchvision module path ("features.0", "avgpool", "classifier.6").
	// The implicit flatten before the first linear layer is named "flatten".
	Name string
	Pos  Pos // where the layer was written; zero for the implicit flatten
	In   Shape
	Out  Shape

	// Conv and MaxPool.
	KH, KW int // kernel
	SH, SW int // stride
	PH, PW int // zero padding (MaxPool: implicit -Inf padding)

	// Conv: Groups ≥ 1 divides both In.C and OutC. Conv and Linear: Bias.
	Groups int
	Bias   bool

	// Conv: output channels. Linear: output features (Out.C).
	OutC int

	// LRN: torch.nn.LocalResponseNorm(Size, Alpha, Beta, K).
	Size        int
	Alpha, Beta float64
	K           float64

	// BatchNorm: Eps and Momentum as torch.nn.BatchNorm2d (1e-5, 0.1 by default).
	Eps, Momentum float64

	// Dropout: probability of zeroing an element in training.
	P float64
}

// Tensor names one parameter or buffer of a layer and gives its shape in torchvision's
// layout (conv weight OIHW, linear weight out×in).
type Tensor struct {
	Name  string
	Shape []int
}

// Len is the number of elements of t.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Params returns the layer's learnable parameters in torchvision's state_dict order.
func (l *Layer) Params() []Tensor {
	switch l.Kind {
	case Conv:
		ps := []Tensor{{l.Name + ".weight", []int{l.OutC, l.In.C / l.Groups, l.KH, l.KW}}}
		if l.Bias {
			ps = append(ps, Tensor{l.Name + ".bias", []int{l.OutC}})
		}
		return ps
	case Linear:
		ps := []Tensor{{l.Name + ".weight", []int{l.OutC, l.In.Size()}}}
		if l.Bias {
			ps = append(ps, Tensor{l.Name + ".bias", []int{l.OutC}})
		}
		return ps
	case BatchNorm:
		return []Tensor{{l.Name + ".weight", []int{l.In.C}}, {l.Name + ".bias", []int{l.In.C}}}
	}
	return nil
}

// Buffers returns the layer's float buffers in torchvision's state_dict order:
// batch norm's running_mean and running_var. (torchvision also stores an integer
// num_batches_tracked, which does not take part in any computation with momentum set.)
func (l *Layer) Buffers() []Tensor {
	if l.Kind == BatchNorm {
		return []Tensor{{l.Name + ".running_mean", []int{l.In.C}}, {l.Name + ".running_var", []int{l.In.C}}}
	}
	return nil
}

// NumParams is the number of learnable values in the layer.
func (l *Layer) NumParams() int {
	n := 0
	for _, t := range l.Params() {
		n += t.Len()
	}
	return n
}

// MACs is the number of multiply-accumulates of one sample's forward pass through the
// layer, counting only convolutions and linear layers and excluding bias additions.
func (l *Layer) MACs() int64 {
	switch l.Kind {
	case Conv:
		return int64(l.Out.Size()) * int64(l.In.C/l.Groups*l.KH*l.KW)
	case Linear:
		return int64(l.In.Size()) * int64(l.OutC)
	}
	return 0
}

// Model is a validated network with every shape inferred.
type Model struct {
	Name   string // from the "net" line
	File   string // the file it was parsed from, as given to Parse
	Input  Shape  // one sample, C×H×W
	Layers []*Layer
}

// Output is the shape of the network's output for one sample.
func (m *Model) Output() Shape {
	if len(m.Layers) == 0 {
		return m.Input
	}
	return m.Layers[len(m.Layers)-1].Out
}

// Classes is the number of output values per sample (the logits).
func (m *Model) Classes() int { return m.Output().Size() }

// Params returns every learnable parameter in state_dict order.
func (m *Model) Params() []Tensor {
	var ps []Tensor
	for _, l := range m.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Buffers returns every float buffer (batch norm running statistics) in state_dict order.
func (m *Model) Buffers() []Tensor {
	var bs []Tensor
	for _, l := range m.Layers {
		bs = append(bs, l.Buffers()...)
	}
	return bs
}

// NumParams is the number of learnable values in the model.
func (m *Model) NumParams() int {
	n := 0
	for _, l := range m.Layers {
		n += l.NumParams()
	}
	return n
}

// MACs is the number of multiply-accumulates of one sample's forward pass.
func (m *Model) MACs() int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.MACs()
	}
	return n
}

// Layer returns the layer with the given name, or nil.
func (m *Model) Layer(name string) *Layer {
	for _, l := range m.Layers {
		if l.Name == name {
			return l
		}
	}
	return nil
}
