package weights

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/runtime"
)

// expectation is what testdata/make.py computed with PyTorch for one tensor.
type expectation struct {
	DType  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	SHA256 string    `json:"sha256"` // of the float32 values, little-endian
	First  []float64 `json:"first"`
	Sum    float64   `json:"sum"`
	Value  []int64   `json:"value"` // integer tensors
}

func expectations(t *testing.T) (map[string]map[string]expectation, []float64) {
	t.Helper()
	b, err := os.ReadFile("testdata/tiny_expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var logits []float64
	if err := json.Unmarshal(raw["logits"], &logits); err != nil {
		t.Fatal(err)
	}
	delete(raw, "logits")
	exp := map[string]map[string]expectation{}
	for k, v := range raw {
		var m map[string]expectation
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		exp[k] = m
	}
	return exp, logits
}

func sha32(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkValues holds every tensor of m against PyTorch's numbers.
func checkValues(t *testing.T, m runtime.Model, exp map[string]expectation) {
	t.Helper()
	ps := slices.Concat(m.Params(), m.Buffers())
	if len(ps) != 12 {
		t.Fatalf("model has %d tensors", len(ps))
	}
	for _, p := range ps {
		e, ok := exp[p.Name]
		if !ok {
			t.Errorf("%s: no expectation", p.Name)
			continue
		}
		if !slices.Equal(e.Shape, p.Shape) || sha32(p.Value) != e.SHA256 {
			t.Errorf("%s: shape %v (want %v) or values differ from PyTorch's", p.Name, p.Shape, e.Shape)
		}
		var sum float64
		for _, v := range p.Value {
			sum += float64(v)
		}
		if math.Abs(sum-e.Sum) > 1e-9*(1+math.Abs(e.Sum)) {
			t.Errorf("%s: sum %v, PyTorch's %v", p.Name, sum, e.Sum)
		}
		for i, f := range e.First {
			if p.Value[i] != float32(f) {
				t.Errorf("%s[%d] = %v, PyTorch's %v", p.Name, i, p.Value[i], f)
			}
		}
	}
}

// TestPyTorch loads the state_dict PyTorch saved (testdata/make.py) into the
// generated tiny model, from .pth and from safetensors in F32, F16 and BF16, and holds
// every value against what PyTorch computed.
func TestPyTorch(t *testing.T) {
	exp, logits := expectations(t)
	for _, c := range []struct{ file, variant string }{
		{"tiny.pth", "F32"},
		{"tiny.safetensors", "F32"},
		{"tiny_f16.pth", "F16"},
		{"tiny_f16.safetensors", "F16"},
		{"tiny_bf16.safetensors", "BF16"},
	} {
		t.Run(c.file, func(t *testing.T) {
			m, err := tiny.New(runtime.Config{MaxBatch: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			path := filepath.Join("testdata", c.file)
			rep, err := LoadFile(m, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Loaded) != 12 || !slices.Equal(rep.Ignored, []string{"features.5.num_batches_tracked"}) {
				t.Errorf("report %+v", rep)
			}
			checkValues(t, m, exp[c.variant])
			// A few values printed by make.py, typed in by hand.
			if c.variant == "F32" {
				w := m.Params()[0].Value
				b := m.Params()[9].Value
				if w[0] != -0.11127175390720367 || w[1] != -0.11492214351892471 || w[2] != -0.08751978725194931 ||
					b[0] != -0.1059933602809906 || b[9] != 0.10961737483739853 {
					t.Errorf("spot values %v %v", w[:3], b)
				}
				// The weights landed where the model computes with them (Sync ran): its
				// logits are PyTorch's for the same input, within float32 rounding.
				x := make([]float32, 3*23*23)
				for i := range x {
					x[i] = float32(math.Sin(float64(i)))
				}
				y, err := m.Forward(x, 1)
				if err != nil {
					t.Fatal(err)
				}
				for i, want := range logits {
					if math.Abs(float64(y[i])-want) > 1e-5 {
						t.Errorf("logit %d = %v, PyTorch's %v", i, y[i], want)
					}
				}
			}
			// The tools' reader agrees, and sees num_batches_tracked.
			f, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Names) != 13 {
				t.Errorf("%d tensors", len(f.Names))
			}
			nbt := f.Tensors["features.5.num_batches_tracked"]
			if nbt.DType != I64 || len(nbt.Shape) != 0 || len(nbt.Data) != 1 || nbt.Data[0] != 7 {
				t.Errorf("num_batches_tracked %+v", nbt)
			}
			for name, e := range exp[c.variant] {
				if tt := f.Tensors[name]; string(tt.DType) != e.DType || (tt.DType != I64 && sha32(tt.Data) != e.SHA256) {
					t.Errorf("ReadFile: %s differs", name)
				}
			}
		})
	}
}

// TestPyTorchSave saves the loaded tiny model and loads it back into a fresh one.
// (testdata/make.py --check FILE verifies such a file with PyTorch.)
func TestPyTorchSave(t *testing.T) {
	exp, _ := expectations(t)
	m, err := tiny.New(runtime.Config{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := LoadFile(m, "testdata/tiny.pth", Options{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	if p := os.Getenv("WEIGHTS_SAVE_TINY"); p != "" {
		path = p // to check the file with make.py --check
	}
	if err := SaveFile(m, path); err != nil {
		t.Fatal(err)
	}
	m2, err := tiny.New(runtime.Config{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	rep, err := LoadFile(m2, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ignored) != 0 || len(rep.Loaded) != 12 {
		t.Errorf("report %+v", rep)
	}
	checkValues(t, m2, exp["F32"])
}
