package weights

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets load arbitrary bytes into a model with tiny's tensors and hold
// the package to its promises: no panic, and a failed load leaves the model as it was.
//
//	go test -run '^$' -fuzz FuzzSafetensors ./runtime/weights/
//	go test -run '^$' -fuzz FuzzPTH ./runtime/weights/
//	go test -run '^$' -fuzz FuzzPickle ./runtime/weights/

// fuzzTemplate is the model fuzzLoad loads into, copied afresh for every input.
var fuzzTemplate = newFake(tinyParams, tinyBuffers, 9)

func fuzzModel() *fakeModel {
	m := &fakeModel{}
	for _, p := range fuzzTemplate.params {
		p.Value = slices.Clone(p.Value)
		m.params = append(m.params, p)
	}
	for _, p := range fuzzTemplate.buffers {
		p.Value = slices.Clone(p.Value)
		m.buffers = append(m.buffers, p)
	}
	return m
}

var fuzzDigest = digest(fuzzTemplate)

func fuzzLoad(t *testing.T, data []byte, name string) {
	m := fuzzModel()
	before := fuzzDigest
	_, err := LoadBytes(m, data, name, Options{})
	if err != nil && (digest(m) != before || m.syncs != 0) {
		t.Fatalf("failed load (%v) changed the model", err)
	}
	if err == nil && m.syncs != 1 {
		t.Fatal("no Sync after a load")
	}
	m = fuzzModel()
	if _, err := LoadBytes(m, data, name, Options{NonStrict: true}); err != nil && digest(m) != before {
		t.Fatalf("failed load (%v) changed the model", err)
	}
	if f, err := Read(bytes.NewReader(data), int64(len(data)), name); err == nil {
		for _, n := range f.Names {
			tt := f.Tensors[n]
			numel := 1
			for _, d := range tt.Shape {
				numel *= d
			}
			if tt.DType.decodable() && len(tt.Data) != numel {
				t.Fatalf("%s: %d values for shape %v", n, len(tt.Data), tt.Shape)
			}
		}
	}
}

func seedFiles(f *testing.F, ext string) {
	for _, p := range []string{"tiny", "tiny_f16", "tiny_bf16"} {
		if b, err := os.ReadFile("testdata/" + p + ext); err == nil {
			f.Add(b)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	seedFiles(f, ".safetensors")
	f.Add(writeBytes(f, newFake(tinyParams, tinyBuffers, 1)))
	f.Add(writeBytes(f, smallModel()))
	f.Add(safetensors(`{`+w6+`,"b":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]}}`, data8[:28]))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, data, "fuzz.safetensors")
	})
}

func FuzzPTH(f *testing.F) {
	seedFiles(f, ".pth")
	f.Add(smallPTH(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, data, "fuzz.pth")
	})
}

// tinyStorages are the sizes of testdata/tiny.pth's storages, and its data.pkl.
func tinyStorages(f *testing.F) (map[string]uint64, []byte) {
	zr, err := zip.OpenReader("testdata/tiny.pth")
	if err != nil {
		f.Fatal(err)
	}
	defer zr.Close()
	sizes := map[string]uint64{}
	var pkl []byte
	for _, e := range zr.File {
		if k, ok := strings.CutPrefix(e.Name, "tiny/data/"); ok {
			sizes[k] = e.UncompressedSize64
		}
		if e.Name == "tiny/data.pkl" {
			rc, _ := e.Open()
			pkl, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	return sizes, pkl
}

// FuzzPickle runs data.pkl alone: mutations of a whole archive mostly break its
// CRCs, so this is the target that explores the pickle (scanPickle, gopickle, the
// state_dict checks).
func FuzzPickle(f *testing.F) {
	sizes, pkl := tinyStorages(f)
	f.Add(pkl)
	f.Add(stateDict(pt{"w", "HalfStorage", "0", 6, 0, []int{2, 3}, []int{3, 1}}))
	f.Add(checkpoint(stateDict(pt{"w", "FloatStorage", "1", 8, 0, []int{2, 3}, []int{3, 1}})))
	var p pk
	f.Add(p.op("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00").str("collections").str("OrderedDict").op("\x93\x94)R.").Bytes())
	lookup := func(key string) (uint64, any, bool) {
		s, ok := sizes[key]
		return s, nil, ok
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := unpickleStateDict(data, lookup, "fuzz")
		if err != nil {
			return
		}
		for _, x := range ts {
			if err := checkView(x.t); err != nil {
				t.Fatalf("%s: accepted a bad view: %v", x.name, err)
			}
		}
	})
}
