//go:build amd64 && !purego

package winograd

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestAVX2NoEVEX checks that the AVX2 kernels use no AVX-512 instruction (and
// so only Y0-Y15): avo lists what each function requires above its TEXT line.
func TestAVX2NoEVEX(t *testing.T) {
	f, err := os.Open("winograd_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var requires string
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "// Requires: "); ok {
			requires = r
		}
		if strings.HasPrefix(line, "TEXT ·") && strings.Contains(line, "_avx2(") {
			n++
			if strings.Contains(requires, "AVX512") {
				t.Errorf("%s requires %s", line, requires)
			}
		}
	}
	if n != 2 {
		t.Fatalf("found %d AVX2 kernels in winograd_amd64.s, want 2", n)
	}
}
