package runtime_test

import (
	"math"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/runtime"
)

func TestInitTorch(t *testing.T) {
	m, err := tiny.New(runtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := runtime.InitTorch(m, 1); err != nil {
		t.Fatal(err)
	}
	fan := map[string]int{"features.0": 3 * 25, "features.4": 4 * 9, "classifier.1": 108, "classifier.4": 32}
	for _, p := range m.Params() {
		layer := p.Name[:strings.LastIndexByte(p.Name, '.')]
		if layer == "features.5" { // batch norm
			want := float32(0)
			if strings.HasSuffix(p.Name, "weight") {
				want = 1
			}
			for _, v := range p.Value {
				if v != want {
					t.Fatalf("%s = %v, want %v", p.Name, v, want)
				}
			}
			continue
		}
		bound := 1 / math.Sqrt(float64(fan[layer]))
		var maxAbs float64
		for _, v := range p.Value {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		if maxAbs > bound || maxAbs < bound/2 {
			t.Errorf("%s: max |w| = %v, want close to and below %v", p.Name, maxAbs, bound)
		}
	}
	for _, b := range m.Buffers() {
		want := float32(0)
		if strings.HasSuffix(b.Name, "running_var") {
			want = 1
		}
		for _, v := range b.Value {
			if v != want {
				t.Fatalf("%s = %v, want %v", b.Name, v, want)
			}
		}
	}
}
