package generated

import (
	"testing"

	"github.com/cnngen/cnngen/spec"
)

// Every shipped spec has a generated model in the registry, with the spec's counts.
func TestRegistryCoversEverySpec(t *testing.T) {
	names := spec.Builtin()
	if len(All) != len(names) {
		t.Errorf("registry has %d models, spec/ has %d specs", len(All), len(names))
	}
	for _, n := range names {
		e, err := Lookup(n)
		if err != nil {
			t.Error(err)
			continue
		}
		m, err := spec.LoadBuiltin(n)
		if err != nil {
			t.Fatal(err)
		}
		if e.MACs != m.MACs() || e.Params != m.NumParams() {
			t.Errorf("%s: registry MACs %d params %d, spec %d %d", n, e.MACs, e.Params, m.MACs(), m.NumParams())
		}
	}
}
