package weights

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var sink byte

// TestMappedShrink checks that a mapped file cut short while it is read gives an
// error, not a crash (SIGBUS).
func TestMappedShrink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := os.WriteFile(path, make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	err := withFile(path, func(src source) error {
		if src.data == nil {
			t.Skip("not mapped")
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		sink = src.data[len(src.data)-1] // faults: the page is gone
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "the file changed while it was being read") {
		t.Errorf("got %v", err)
	}
}
