package kernels

import "testing"

func TestSetISA(t *testing.T) {
	defer SetISA(ISAs()[0])
	for _, name := range ISAs() {
		if err := SetISA(name); err != nil {
			t.Fatal(err)
		}
		if ISA() != name {
			t.Errorf("SetISA(%q): ISA() = %q", name, ISA())
		}
	}
	if ISAs()[len(ISAs())-1] != "go" {
		t.Errorf("ISAs() = %v; go must be last", ISAs())
	}
	if err := SetISA("sse9"); err == nil {
		t.Error("SetISA(sse9): no error")
	}
}
