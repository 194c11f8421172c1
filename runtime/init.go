package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// InitTorch gives m the initial weights PyTorch's layers give themselves, from a
// seeded source (the distributions match; the values are not PyTorch's): convolution
// and linear weights and biases uniform in ±1/√fanIn (kaiming_uniform_ with a=√5),
// batch norm weight 1 and bias 0, running mean 0 and running variance 1. It ends with
// Sync.
func InitTorch(m Model, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x696e6974))
	ps := m.Params()
	shapes := map[string][]int{}
	for _, p := range ps {
		shapes[p.Name] = p.Shape
	}
	for _, p := range ps {
		dot := strings.LastIndexByte(p.Name, '.')
		prefix, kind := p.Name[:max(dot, 0)], p.Name[dot+1:]
		if dot < 0 || (kind != "weight" && kind != "bias") {
			return fmt.Errorf("runtime: InitTorch: parameter %q is neither a weight nor a bias", p.Name)
		}
		w := shapes[prefix+".weight"]
		switch {
		case len(w) == 1 && kind == "weight": // batch norm γ
			fill(p.Value, 1)
		case len(w) == 1: // batch norm β
			fill(p.Value, 0)
		case len(w) >= 2:
			fan := 1
			for _, d := range w[1:] {
				fan *= d
			}
			bound := 1 / math.Sqrt(float64(fan))
			for i := range p.Value {
				p.Value[i] = float32((2*rng.Float64() - 1) * bound)
			}
		default:
			return fmt.Errorf("runtime: InitTorch: %q has no weight to take its fan-in from", p.Name)
		}
	}
	for _, b := range m.Buffers() {
		if strings.HasSuffix(b.Name, ".running_var") {
			fill(b.Value, 1)
		} else {
			fill(b.Value, 0)
		}
	}
	return m.Sync()
}

func fill(v []float32, x float32) {
	for i := range v {
		v[i] = x
	}
}
