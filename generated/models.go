// Package generated lists every model package generated from the shipped specs, so
// that tools (cmd/cnn) and tests can run any of them by name. Each model lives in its
// own package, generated/<name without underscores>; import that package directly in
// your own binary to carry only the model you use.
package generated

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cnngen/cnngen/generated/alexnet"
	"github.com/cnngen/cnngen/generated/alexnet2012"
	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/generated/vgg11"
	"github.com/cnngen/cnngen/generated/vgg11bn"
	"github.com/cnngen/cnngen/generated/vgg13"
	"github.com/cnngen/cnngen/generated/vgg13bn"
	"github.com/cnngen/cnngen/generated/vgg16"
	"github.com/cnngen/cnngen/generated/vgg16bn"
	"github.com/cnngen/cnngen/generated/vgg19"
	"github.com/cnngen/cnngen/generated/vgg19bn"
	"github.com/cnngen/cnngen/generated/vggcifar"
	"github.com/cnngen/cnngen/generated/vggmnist"
	"github.com/cnngen/cnngen/runtime"
)

// Model is what every generated model offers beyond runtime.Model.
type Model interface {
	runtime.Model
	// Close stops the instance's worker threads.
	Close()
	// Seed restarts the random source of the dropout masks.
	Seed(uint64)
	// DropoutMasks reports the last training Forward's dropout multipliers.
	DropoutMasks() []runtime.Param
	// Layers, Activation and Gradient report a training instance's held layer
	// outputs and gradients in NCHW order.
	Layers() []string
	Activation(layer string) ([]float32, bool)
	Gradient(layer string) ([]float32, bool)
}

// Entry is one generated model.
type Entry struct {
	Name    string // the spec's net name, e.g. "vgg16_bn"
	Spec    string // the spec file, relative to the module root
	MACs    int64  // multiply-accumulates per sample
	Params  int    // learnable values
	New     func(runtime.Config) (Model, error)
	NewFrom func(src Model, cfg runtime.Config) (Model, error)
}

// All lists every generated model, sorted by name.
var All = []Entry{
	{Name: "alexnet", Spec: "spec/alexnet.cnn", MACs: alexnet.MACs, Params: alexnet.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(alexnet.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(alexnet.NewFrom(src.(*alexnet.Model), c))
		}},
	{Name: "alexnet2012", Spec: "spec/alexnet2012.cnn", MACs: alexnet2012.MACs, Params: alexnet2012.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(alexnet2012.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(alexnet2012.NewFrom(src.(*alexnet2012.Model), c))
		}},
	{Name: "tiny", Spec: "spec/tiny.cnn", MACs: tiny.MACs, Params: tiny.NumParams,
		New:     func(c runtime.Config) (Model, error) { return wrap(tiny.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) { return wrap(tiny.NewFrom(src.(*tiny.Model), c)) }},
	{Name: "vgg11", Spec: "spec/vgg11.cnn", MACs: vgg11.MACs, Params: vgg11.NumParams,
		New:     func(c runtime.Config) (Model, error) { return wrap(vgg11.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) { return wrap(vgg11.NewFrom(src.(*vgg11.Model), c)) }},
	{Name: "vgg11_bn", Spec: "spec/vgg11_bn.cnn", MACs: vgg11bn.MACs, Params: vgg11bn.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vgg11bn.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vgg11bn.NewFrom(src.(*vgg11bn.Model), c))
		}},
	{Name: "vgg13", Spec: "spec/vgg13.cnn", MACs: vgg13.MACs, Params: vgg13.NumParams,
		New:     func(c runtime.Config) (Model, error) { return wrap(vgg13.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) { return wrap(vgg13.NewFrom(src.(*vgg13.Model), c)) }},
	{Name: "vgg13_bn", Spec: "spec/vgg13_bn.cnn", MACs: vgg13bn.MACs, Params: vgg13bn.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vgg13bn.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vgg13bn.NewFrom(src.(*vgg13bn.Model), c))
		}},
	{Name: "vgg16", Spec: "spec/vgg16.cnn", MACs: vgg16.MACs, Params: vgg16.NumParams,
		New:     func(c runtime.Config) (Model, error) { return wrap(vgg16.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) { return wrap(vgg16.NewFrom(src.(*vgg16.Model), c)) }},
	{Name: "vgg16_bn", Spec: "spec/vgg16_bn.cnn", MACs: vgg16bn.MACs, Params: vgg16bn.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vgg16bn.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vgg16bn.NewFrom(src.(*vgg16bn.Model), c))
		}},
	{Name: "vgg19", Spec: "spec/vgg19.cnn", MACs: vgg19.MACs, Params: vgg19.NumParams,
		New:     func(c runtime.Config) (Model, error) { return wrap(vgg19.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) { return wrap(vgg19.NewFrom(src.(*vgg19.Model), c)) }},
	{Name: "vgg19_bn", Spec: "spec/vgg19_bn.cnn", MACs: vgg19bn.MACs, Params: vgg19bn.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vgg19bn.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vgg19bn.NewFrom(src.(*vgg19bn.Model), c))
		}},
	{Name: "vgg_cifar", Spec: "spec/vgg_cifar.cnn", MACs: vggcifar.MACs, Params: vggcifar.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vggcifar.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vggcifar.NewFrom(src.(*vggcifar.Model), c))
		}},
	{Name: "vgg_mnist", Spec: "spec/vgg_mnist.cnn", MACs: vggmnist.MACs, Params: vggmnist.NumParams,
		New: func(c runtime.Config) (Model, error) { return wrap(vggmnist.New(c)) },
		NewFrom: func(src Model, c runtime.Config) (Model, error) {
			return wrap(vggmnist.NewFrom(src.(*vggmnist.Model), c))
		}},
}

func wrap[M Model](m M, err error) (Model, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Lookup returns the model with the given net name.
func Lookup(name string) (Entry, error) {
	for _, e := range All {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("no generated model %q; the models are %s", name, strings.Join(Names(), ", "))
}

// Names returns every model's name, sorted.
func Names() []string {
	var ns []string
	for _, e := range All {
		ns = append(ns, e.Name)
	}
	sort.Strings(ns)
	return ns
}
