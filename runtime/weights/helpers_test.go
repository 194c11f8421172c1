package weights

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cnngen/cnngen/runtime"
)

// fakeModel is a runtime.Model that only holds tensors.
type fakeModel struct {
	params, buffers []runtime.Param
	syncs           int
}

func (m *fakeModel) Name() string                              { return "fake" }
func (m *fakeModel) InputShape() [3]int                        { return [3]int{1, 1, 1} }
func (m *fakeModel) Classes() int                              { return 1 }
func (m *fakeModel) Forward([]float32, int) ([]float32, error) { return nil, errors.New("fake") }
func (m *fakeModel) Backward([]float32) ([]float32, error)     { return nil, errors.New("fake") }
func (m *fakeModel) Params() []runtime.Param                   { return m.params }
func (m *fakeModel) Buffers() []runtime.Param                  { return m.buffers }
func (m *fakeModel) Sync() error                               { m.syncs++; return nil }
func (m *fakeModel) SetTraining(bool)                          {}
func (m *fakeModel) ZeroGrad()                                 {}

type shaped struct {
	name  string
	shape []int
}

// tinyTensors are the names and shapes of generated/tiny's state_dict.
var tinyParams = []shaped{
	{"features.0.weight", []int{8, 3, 5, 5}}, {"features.0.bias", []int{8}},
	{"features.4.weight", []int{12, 4, 3, 3}}, {"features.4.bias", []int{12}},
	{"features.5.weight", []int{12}}, {"features.5.bias", []int{12}},
	{"classifier.1.weight", []int{32, 108}}, {"classifier.1.bias", []int{32}},
	{"classifier.4.weight", []int{10, 32}}, {"classifier.4.bias", []int{10}},
}
var tinyBuffers = []shaped{{"features.5.running_mean", []int{12}}, {"features.5.running_var", []int{12}}}

// newFake makes a fake model with the given tensors, filled from seed (0: zeros).
func newFake(params, buffers []shaped, seed uint64) *fakeModel {
	r := rand.New(rand.NewPCG(seed, 1))
	mk := func(ts []shaped) []runtime.Param {
		var out []runtime.Param
		for _, t := range ts {
			n := 1
			for _, d := range t.shape {
				n *= d
			}
			v := make([]float32, n)
			if seed != 0 {
				for i := range v {
					v[i] = float32(r.NormFloat64())
				}
			}
			out = append(out, runtime.Param{Name: t.name, Shape: slices.Clone(t.shape), Value: v})
		}
		return out
	}
	return &fakeModel{params: mk(params), buffers: mk(buffers)}
}

// digest hashes every value of a model, to tell whether a load changed it.
func digest(m runtime.Model) [32]byte {
	h := sha256.New()
	var b [4]byte
	for _, p := range slices.Concat(m.Params(), m.Buffers()) {
		h.Write([]byte(p.Name))
		for _, v := range p.Value {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return [32]byte(h.Sum(nil))
}

func writeBytes(t testing.TB, m runtime.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pk builds pickles opcode by opcode, as protocol 2 writes them.
type pk struct{ bytes.Buffer }

func (p *pk) op(s string) *pk { p.WriteString(s); return p }
func (p *pk) global(mod, name string) *pk {
	return p.op("c" + mod + "\n" + name + "\n")
}
func (p *pk) str(s string) *pk {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	return p.op("X" + string(n[:]) + s)
}
func (p *pk) int(i int) *pk {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(int32(i)))
	return p.op("J" + string(n[:]))
}
func (p *pk) ints(is []int) *pk {
	p.op("(")
	for _, i := range is {
		p.int(i)
	}
	return p.op("t")
}

// pt is one tensor of a hand-made state_dict pickle.
type pt struct {
	name, class, key string
	numel, offset    int
	shape, stride    []int
}

// tensor writes _rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict()).
func (p *pk) tensor(t pt) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op("((").str("storage").global("torch", t.class).str(t.key).str("cpu").int(t.numel).op("tQ")
	p.int(t.offset).ints(t.shape).ints(t.stride)
	p.op("\x89").global("collections", "OrderedDict").op(")R")
	return p.op("tR")
}

// stateDict writes OrderedDict([(name, tensor), ...]).
func stateDict(ts ...pt) []byte {
	var p pk
	p.op("\x80\x02").global("collections", "OrderedDict").op(")R(")
	for _, t := range ts {
		p.str(t.name).tensor(t)
	}
	p.op("u.")
	return p.Bytes()
}

// zipFile builds a torch.save-like archive: PREFIX/data.pkl, then the given entries
// (name relative to PREFIX/), stored.
func zipFile(t testing.TB, pkl []byte, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	add := func(name string, data []byte) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	add("data.pkl", pkl)
	for _, e := range entries {
		add(e[0], []byte(e[1]))
	}
	add("version", []byte("3\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// f32bytes is the little-endian encoding of vs.
func f32bytes(vs ...float32) string {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return string(b)
}

// smallPTH is a two-tensor state_dict ("w" 2×3 and "b" 2) for the model smallModel.
func smallPTH(t testing.TB) []byte {
	return zipFile(t, stateDict(
		pt{"w", "FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1}},
		pt{"b", "FloatStorage", "1", 2, 0, []int{2}, []int{1}},
	), [2]string{"data/0", f32bytes(1, 2, 3, 4, 5, 6)}, [2]string{"data/1", f32bytes(-1, -2)})
}

func smallModel() *fakeModel {
	return newFake([]shaped{{"w", []int{2, 3}}, {"b", []int{2}}}, nil, 0)
}

// safetensors builds a file from a raw JSON header and data.
func safetensors(header string, data string) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	return []byte(string(n[:]) + header + data)
}

// parameter writes _rebuild_parameter(tensor, True, OrderedDict()), as saving a dict
// of nn.Parameter does.
func (p *pk) parameter(t pt) *pk {
	p.global("torch._utils", "_rebuild_parameter").op("(")
	p.tensor(t)
	return p.op("\x88").global("collections", "OrderedDict").op(")Rt").op("R")
}
