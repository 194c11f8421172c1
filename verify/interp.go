package verify

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/cnngen/cnngen/spec"
)

// Net holds a spec.Model's parameters and buffers by torchvision state_dict name, in
// torchvision layout (conv weight OIHW, linear weight out×in), and interprets the model
// with the reference operators of this package.
//
// Params must hold every name of Model.Params() and Buffers every name of
// Model.Buffers() (batch norm running_mean and running_var), each with exactly the
// tensor's number of values; Forward checks this. Extra entries are ignored.
//
// Forward and Backward never modify Model or Params. A train-mode Forward writes Buffers, so it must
// not run concurrently with any other use of the same Net; eval-mode Forward and
// Backward only read, and may run concurrently with each other.
type Net struct {
	Model   *spec.Model
	Params  map[string][]float64 // every name in Model.Params()
	Buffers map[string][]float64 // every name in Model.Buffers() (BN running_mean / running_var)
}

// tensors returns the model's parameters (or buffers) without ever panicking on a
// malformed model: nil layers and convolutions with Groups < 1 (whose weight shape is
// undefined) are skipped, and Forward reports them as errors.
func tensors(m *spec.Model, buffers bool) []spec.Tensor {
	if m == nil {
		return nil
	}
	var ts []spec.Tensor
	for _, l := range m.Layers {
		if l == nil || (l.Kind == spec.Conv && l.Groups < 1) {
			continue
		}
		if buffers {
			ts = append(ts, l.Buffers()...)
		} else {
			ts = append(ts, l.Params()...)
		}
	}
	return ts
}

// NewNet returns a Net for m with PyTorch's defaults for a freshly constructed module's
// state that matters here: every parameter zero, every running_mean 0 and every
// running_var 1. Use InitRandom, or write Params and Buffers, to give it weights.
func NewNet(m *spec.Model) *Net {
	net := &Net{Model: m, Params: map[string][]float64{}, Buffers: map[string][]float64{}}
	for _, t := range tensors(m, false) {
		net.Params[t.Name] = make([]float64, max(t.Len(), 0))
	}
	for _, t := range tensors(m, true) {
		v := make([]float64, max(t.Len(), 0))
		if strings.HasSuffix(t.Name, ".running_var") {
			for i := range v {
				v[i] = 1
			}
		}
		net.Buffers[t.Name] = v
	}
	return net
}

// Clone returns a deep copy of net's parameters and buffers (sharing the Model, which
// Net never modifies).
func (net *Net) Clone() *Net {
	c := &Net{Model: net.Model, Params: map[string][]float64{}, Buffers: map[string][]float64{}}
	for k, v := range net.Params {
		c.Params[k] = append([]float64(nil), v...)
	}
	for k, v := range net.Buffers {
		c.Buffers[k] = append([]float64(nil), v...)
	}
	return c
}

// InitRandom fills every parameter and buffer with deterministic pseudo-random values
// drawn from a PCG generator seeded with seed, visiting the tensors in state_dict order,
// so the same model and seed always give the same values on every platform. The scales
// keep activations O(1) through deep nets such as VGG-19, with or without batch norm,
// and in eval mode as well as train mode:
//
//   - conv and linear weights: U(−√(6/fanin), √(6/fanin)), Kaiming-uniform with ReLU
//     gain (fanin = Cin/groups·KH·KW for conv, In for linear; variance 2/fanin);
//   - conv and linear biases: U(−1/√fanin, 1/√fanin), PyTorch's default;
//   - batch norm weight (gamma): U(0.8, 1.2); bias (beta): U(−0.1, 0.1);
//   - running_mean: U(−0.1, 0.1); running_var: U(0.5, 1.5).
//
// Layers whose parameter shapes are undefined (nil layers, convolutions with
// Groups < 1) are skipped; Forward reports them.
func (net *Net) InitRandom(seed uint64) {
	if net.Model == nil {
		return
	}
	r := rand.New(rand.NewPCG(seed, 0x636e6e67656e)) // "cnngen"
	uniform := func(v []float64, lo, hi float64) {
		for i := range v {
			v[i] = lo + (hi-lo)*r.Float64()
		}
	}
	if net.Params == nil {
		net.Params = map[string][]float64{}
	}
	if net.Buffers == nil {
		net.Buffers = map[string][]float64{}
	}
	for _, l := range net.Model.Layers {
		if l == nil || (l.Kind == spec.Conv && l.Groups < 1) {
			continue
		}
		fanin := 1
		switch l.Kind {
		case spec.Conv:
			fanin = l.In.C / l.Groups * l.KH * l.KW
		case spec.Linear:
			fanin = l.In.Size()
		}
		fanin = max(fanin, 1)
		for _, t := range l.Params() {
			v := make([]float64, max(t.Len(), 0))
			isBias := strings.HasSuffix(t.Name, ".bias")
			switch {
			case l.Kind == spec.BatchNorm && isBias:
				uniform(v, -0.1, 0.1)
			case l.Kind == spec.BatchNorm:
				uniform(v, 0.8, 1.2)
			case isBias:
				b := 1 / math.Sqrt(float64(fanin))
				uniform(v, -b, b)
			default:
				b := math.Sqrt(6 / float64(fanin))
				uniform(v, -b, b)
			}
			net.Params[t.Name] = v
		}
		for i, t := range l.Buffers() {
			v := make([]float64, max(t.Len(), 0))
			if i == 0 {
				uniform(v, -0.1, 0.1) // running_mean
			} else {
				uniform(v, 0.5, 1.5) // running_var
			}
			net.Buffers[t.Name] = v
		}
	}
}

// Validate checks that the model is well formed and that Params and Buffers hold every
// tensor with the right length. Forward calls it; it is exported so a caller can check
// weights loaded from elsewhere before running anything.
//
// The model checks are: at least one layer, no nil layer, unique names, the first
// layer's input is Model.Input and every other layer's input is the previous layer's
// output (C, H and W), every kind is known and its hyper-parameters are valid (as the
// operators' Validate methods define), and every layer's Out is what its kind computes
// from In.
func (net *Net) Validate() error {
	if err := checkModel(net.Model); err != nil {
		return err
	}
	for _, t := range net.Model.Params() {
		v, ok := net.Params[t.Name]
		if !ok {
			return fmt.Errorf("verify: parameter %s is missing", t.Name)
		}
		if len(v) != t.Len() {
			return fmt.Errorf("verify: parameter %s has %d values, want %d (shape %v)", t.Name, len(v), t.Len(), t.Shape)
		}
	}
	for _, t := range net.Model.Buffers() {
		v, ok := net.Buffers[t.Name]
		if !ok {
			return fmt.Errorf("verify: buffer %s is missing", t.Name)
		}
		if len(v) != t.Len() {
			return fmt.Errorf("verify: buffer %s has %d values, want %d (shape %v)", t.Name, len(v), t.Len(), t.Shape)
		}
	}
	return nil
}

func sameCHW(a, b spec.Shape) bool { return a.C == b.C && a.H == b.H && a.W == b.W }

// The operators' dimensions for layer l on a batch of n.

func convDims(l *spec.Layer, n int) Conv2D {
	return Conv2D{N: n, C: l.In.C, H: l.In.H, W: l.In.W, OutC: l.OutC,
		KH: l.KH, KW: l.KW, SH: l.SH, SW: l.SW, PH: l.PH, PW: l.PW, Groups: l.Groups}
}

func maxPoolDims(l *spec.Layer, n int) MaxPool2D {
	return MaxPool2D{N: n, C: l.In.C, H: l.In.H, W: l.In.W,
		KH: l.KH, KW: l.KW, SH: l.SH, SW: l.SW, PH: l.PH, PW: l.PW}
}

func avgPoolDims(l *spec.Layer, n int) AdaptiveAvgPool2D {
	return AdaptiveAvgPool2D{N: n, C: l.In.C, H: l.In.H, W: l.In.W, OH: l.Out.H, OW: l.Out.W}
}

func lrnDims(l *spec.Layer, n int) LocalResponseNorm {
	return LocalResponseNorm{N: n, C: l.In.C, H: l.In.H, W: l.In.W,
		Size: l.Size, Alpha: l.Alpha, Beta: l.Beta, K: l.K}
}

func bnDims(l *spec.Layer, n int) BatchNorm2D {
	return BatchNorm2D{N: n, C: l.In.C, H: l.In.H, W: l.In.W, Eps: l.Eps, Momentum: l.Momentum}
}

func linearDims(l *spec.Layer, n int) Linear {
	return Linear{N: n, In: l.In.Size(), Out: l.OutC}
}

// checkLayer checks one layer's hyper-parameters and output shape.
func checkLayer(l *spec.Layer) error {
	if l.In.C < 1 || l.In.H < 1 || l.In.W < 1 {
		return fmt.Errorf("input shape %v must be positive", l.In)
	}
	want := l.In
	switch l.Kind {
	case spec.Conv:
		d := convDims(l, 1)
		if err := d.Validate(); err != nil {
			return err
		}
		want = spec.Shape{C: d.OutC, H: d.OutH(), W: d.OutW()}
	case spec.ReLU:
	case spec.MaxPool:
		d := maxPoolDims(l, 1)
		if err := d.Validate(); err != nil {
			return err
		}
		want = spec.Shape{C: d.C, H: d.OutH(), W: d.OutW()}
	case spec.AvgPool:
		if err := avgPoolDims(l, 1).Validate(); err != nil {
			return err
		}
		want = spec.Shape{C: l.In.C, H: l.Out.H, W: l.Out.W}
	case spec.LRN:
		if err := lrnDims(l, 1).Validate(); err != nil {
			return err
		}
	case spec.BatchNorm:
		if err := bnDims(l, 1).Validate(); err != nil {
			return err
		}
	case spec.Dropout:
		if err := (Dropout{P: l.P}).Validate(); err != nil {
			return err
		}
	case spec.Flatten:
		want = spec.Shape{C: l.In.Size(), H: 1, W: 1}
	case spec.Linear:
		if err := linearDims(l, 1).Validate(); err != nil {
			return err
		}
		want = spec.Shape{C: l.OutC, H: 1, W: 1}
	default:
		return fmt.Errorf("unknown layer kind %v", l.Kind)
	}
	if !sameCHW(l.Out, want) {
		return fmt.Errorf("output shape is %d×%d×%d, but the layer computes %d×%d×%d", l.Out.C, l.Out.H, l.Out.W, want.C, want.H, want.W)
	}
	return nil
}

// checkModel checks that m is a well-formed chain of layers (see Net.Validate).
func checkModel(m *spec.Model) error {
	if m == nil {
		return errors.New("verify: nil model")
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("verify: model %q has no layers", m.Name)
	}
	if m.Input.C < 1 || m.Input.H < 1 || m.Input.W < 1 {
		return fmt.Errorf("verify: model %q: input shape %v must be positive", m.Name, m.Input)
	}
	seen := map[string]bool{}
	prev := m.Input
	for i, l := range m.Layers {
		if l == nil {
			return fmt.Errorf("verify: model %q: layer %d is nil", m.Name, i)
		}
		if l.Name == "" {
			return fmt.Errorf("verify: model %q: layer %d (%v) has no name", m.Name, i, l.Kind)
		}
		if seen[l.Name] {
			return fmt.Errorf("verify: model %q: two layers are named %s", m.Name, l.Name)
		}
		seen[l.Name] = true
		if !sameCHW(l.In, prev) {
			return fmt.Errorf("verify: %s (%v): input shape is %d×%d×%d, but the previous layer gives %d×%d×%d",
				l.Name, l.Kind, l.In.C, l.In.H, l.In.W, prev.C, prev.H, prev.W)
		}
		if err := checkLayer(l); err != nil {
			return fmt.Errorf("verify: %s (%v): %v", l.Name, l.Kind, err)
		}
		prev = l.Out
	}
	return nil
}

// Pass is the record of one Forward: the input, every layer's output and what Backward
// needs. Backward reads Input and Out, so they must not be modified in between.
type Pass struct {
	Net    *Net                 // the net that ran; Backward reads its Model and Params
	N      int                  // batch size
	Train  bool                 // train mode (batch statistics, dropout masks) or eval mode
	Input  []float64            // a copy of the input x, n×C×H×W
	Out    map[string][]float64 // each layer's output, by layer name (spec Layer.Name, e.g. "features.0", "flatten")
	Logits []float64            // output of the last layer, n×Classes (the same slice as Out[last layer])

	masks map[string][]float64 // dropout masks used in train mode, copied
	stats map[string][2][]float64
	// stats holds, per batch norm layer, the mean and variance it normalized with:
	// the batch mean and biased variance in train mode, copies of the running
	// statistics in eval mode.
}

// Forward runs a batch of n samples through the net. x is n×C×H×W NCHW for the model's
// input shape C×H×W.
//
// In eval mode (train false) batch norm uses the running statistics and dropout is
// the identity; masks is ignored and may be nil.
//
// In train mode batch norm normalizes with the batch statistics and updates
// net.Buffers as PyTorch does (see BatchNorm2D), and each dropout layer with
// 0 < P < 1 uses masks[layer name]: n×size values, each 0 (drop) or 1 (keep), for the
// layer's n×C×H×W (or n×F) input; a missing or malformed mask is an error. For P = 0
// (identity) and P = 1 (all zero) a mask is not needed; if given, it is still
// checked.
//
// Everything is checked before anything is computed (see Validate; also the length of
// x, n ≥ 1, the masks, and n·H·W > 1 for batch norm in train mode), so an error leaves
// net.Buffers untouched. The returned Pass holds copies of the input, the masks and
// the batch-norm statistics it used; Backward reads the parameters from net.Params,
// which must therefore not change between Forward and Backward (they are not copied,
// as VGG's would take a gigabyte).
func (net *Net) Forward(x []float64, n int, train bool, masks map[string][]float64) (*Pass, error) {
	if err := net.Validate(); err != nil {
		return nil, err
	}
	m := net.Model
	if n < 1 {
		return nil, fmt.Errorf("verify: batch size %d, want at least 1", n)
	}
	if len(x) != n*m.Input.Size() {
		return nil, fmt.Errorf("verify: input has %d values, want n×C×H×W = %d×%d = %d", len(x), n, m.Input.Size(), n*m.Input.Size())
	}
	p := &Pass{
		Net: net, N: n, Train: train,
		Input: append([]float64(nil), x...),
		Out:   map[string][]float64{},
		masks: map[string][]float64{},
		stats: map[string][2][]float64{},
	}
	if train {
		for _, l := range m.Layers {
			switch l.Kind {
			case spec.BatchNorm:
				if err := bnDims(l, n).ValidateTrain(); err != nil {
					return nil, fmt.Errorf("verify: %s: %v", l.Name, err)
				}
			case spec.Dropout:
				mask, ok := masks[l.Name]
				need := l.P > 0 && l.P < 1
				if !ok {
					if need {
						return nil, fmt.Errorf("verify: %s: dropout in train mode needs a mask (masks[%q])", l.Name, l.Name)
					}
					continue
				}
				if len(mask) != n*l.In.Size() {
					return nil, fmt.Errorf("verify: %s: dropout mask has %d values, want n×%d = %d", l.Name, len(mask), l.In.Size(), n*l.In.Size())
				}
				for i, v := range mask {
					if v != 0 && v != 1 {
						return nil, fmt.Errorf("verify: %s: dropout mask value %v at %d; want 0 or 1", l.Name, v, i)
					}
				}
				p.masks[l.Name] = append([]float64(nil), mask...)
			}
		}
	}

	cur := p.Input
	for _, l := range m.Layers {
		var y []float64
		switch l.Kind {
		case spec.Conv:
			y = convDims(l, n).Forward(cur, net.Params[l.Name+".weight"], p.bias(l))
		case spec.ReLU:
			y = ReLU(cur)
		case spec.MaxPool:
			y = maxPoolDims(l, n).Forward(cur)
		case spec.AvgPool:
			y = avgPoolDims(l, n).Forward(cur)
		case spec.LRN:
			y = lrnDims(l, n).Forward(cur)
		case spec.BatchNorm:
			d := bnDims(l, n)
			gamma, beta := net.Params[l.Name+".weight"], net.Params[l.Name+".bias"]
			rm, rv := net.Buffers[l.Name+".running_mean"], net.Buffers[l.Name+".running_var"]
			if train {
				var mean, variance []float64
				y, mean, variance = d.Train(cur, gamma, beta)
				d.UpdateRunning(rm, rv, mean, variance)
				p.stats[l.Name] = [2][]float64{mean, variance}
			} else {
				p.stats[l.Name] = [2][]float64{append([]float64(nil), rm...), append([]float64(nil), rv...)}
				y = d.Eval(cur, gamma, beta, rm, rv)
			}
		case spec.Dropout:
			if train {
				y = Dropout{P: l.P}.Forward(cur, p.masks[l.Name])
			} else {
				y = append([]float64(nil), cur...)
			}
		case spec.Flatten:
			y = append([]float64(nil), cur...)
		case spec.Linear:
			y = linearDims(l, n).Forward(cur, net.Params[l.Name+".weight"], p.bias(l))
		default:
			// Unreachable: Validate rejects unknown kinds.
			return nil, fmt.Errorf("verify: %s: unknown layer kind %v", l.Name, l.Kind)
		}
		p.Out[l.Name] = y
		cur = y
	}
	p.Logits = cur
	return p, nil
}

// bias returns layer l's bias as used by the pass, or nil without bias.
func (p *Pass) bias(l *spec.Layer) []float64 {
	if !l.Bias {
		return nil
	}
	return p.Net.Params[l.Name+".bias"]
}

// Grads holds the gradients of a scalar loss L computed by Pass.Backward.
type Grads struct {
	Input  []float64            // dL/dx, n×C×H×W
	Out    map[string][]float64 // gradient w.r.t. each layer's output, by layer name
	Params map[string][]float64 // dL/dparam for every name in Model.Params(), torchvision layout
}

// Backward takes dL/dlogits (n×Classes) and returns dL/dx, dL/d(each layer's output)
// and every parameter gradient, for the forward pass p (in p's mode: in train mode batch
// norm differentiates through the batch statistics and dropout through its mask; in
// eval mode batch norm is the affine map of the running statistics used by Forward).
// Gradients are fresh slices, not accumulated anywhere; Backward may be called more
// than once on the same Pass.
func (p *Pass) Backward(dlogits []float64) (*Grads, error) {
	if p == nil || p.Net == nil {
		return nil, errors.New("verify: Backward on a Pass that did not come from Forward")
	}
	net := p.Net
	if err := net.Validate(); err != nil {
		return nil, err
	}
	m := net.Model
	if len(p.Input) != p.N*m.Input.Size() || len(p.Out) != len(m.Layers) {
		return nil, errors.New("verify: Backward on a Pass that does not match its Net's model")
	}
	for _, l := range m.Layers {
		if len(p.Out[l.Name]) != p.N*l.Out.Size() {
			return nil, fmt.Errorf("verify: Backward: Pass.Out[%q] has %d values, want %d", l.Name, len(p.Out[l.Name]), p.N*l.Out.Size())
		}
	}
	for name, mask := range p.masks {
		if l := m.Layer(name); l == nil || len(mask) != p.N*l.In.Size() {
			return nil, errors.New("verify: Backward on a Pass that does not match its Net's model")
		}
	}
	if want := p.N * m.Classes(); len(dlogits) != want {
		return nil, fmt.Errorf("verify: dlogits has %d values, want n×classes = %d×%d = %d", len(dlogits), p.N, m.Classes(), want)
	}
	g := &Grads{Out: map[string][]float64{}, Params: map[string][]float64{}}
	n := p.N
	dy := append([]float64(nil), dlogits...)
	for i := len(m.Layers) - 1; i >= 0; i-- {
		l := m.Layers[i]
		x := p.Input
		if i > 0 {
			x = p.Out[m.Layers[i-1].Name]
		}
		g.Out[l.Name] = dy
		var dx []float64
		switch l.Kind {
		case spec.Conv:
			var dw, db []float64
			dx, dw, db = convDims(l, n).Backward(x, net.Params[l.Name+".weight"], dy)
			g.Params[l.Name+".weight"] = dw
			if l.Bias {
				g.Params[l.Name+".bias"] = db
			}
		case spec.ReLU:
			dx = ReLUBackward(x, dy)
		case spec.MaxPool:
			dx = maxPoolDims(l, n).Backward(x, dy)
		case spec.AvgPool:
			dx = avgPoolDims(l, n).Backward(dy)
		case spec.LRN:
			dx = lrnDims(l, n).Backward(x, dy)
		case spec.BatchNorm:
			d := bnDims(l, n)
			gamma := net.Params[l.Name+".weight"]
			var dgamma, dbeta []float64
			if p.Train {
				dx, dgamma, dbeta = d.TrainBackward(x, gamma, dy)
			} else {
				st := p.stats[l.Name]
				dx, dgamma, dbeta = d.EvalBackward(x, gamma, st[0], st[1], dy)
			}
			g.Params[l.Name+".weight"] = dgamma
			g.Params[l.Name+".bias"] = dbeta
		case spec.Dropout:
			if p.Train {
				dx = Dropout{P: l.P}.Backward(p.masks[l.Name], dy)
			} else {
				dx = append([]float64(nil), dy...)
			}
		case spec.Flatten:
			dx = append([]float64(nil), dy...)
		case spec.Linear:
			var dw, db []float64
			dx, dw, db = linearDims(l, n).Backward(x, net.Params[l.Name+".weight"], dy)
			g.Params[l.Name+".weight"] = dw
			if l.Bias {
				g.Params[l.Name+".bias"] = db
			}
		default:
			return nil, fmt.Errorf("verify: %s: unknown layer kind %v", l.Name, l.Kind)
		}
		dy = dx
	}
	g.Input = dy
	return g, nil
}
