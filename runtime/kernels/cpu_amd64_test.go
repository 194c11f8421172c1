//go:build amd64 && !purego

package kernels

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestCPUID checks the generated cpuid against golang.org/x/sys/cpu's own
// CPUID reading (leaf 1's FMA and AVX bits, leaf 7's AVX2 bit) and, on Linux,
// vendor against /proc/cpuinfo's vendor_id.
func TestCPUID(t *testing.T) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		t.Skipf("CPUID's largest standard leaf is %d; the checks need 7", maxLeaf)
	}
	_, _, c1, _ := cpuid(1, 0)
	if got := c1>>12&1 == 1; got != cpu.X86.HasFMA {
		t.Errorf("cpuid(1): FMA bit %v, x/sys/cpu HasFMA %v", got, cpu.X86.HasFMA)
	}
	if got := c1>>28&1 == 1; cpu.X86.HasAVX && !got {
		t.Errorf("cpuid(1): AVX bit clear, x/sys/cpu HasAVX true")
	}
	_, b7, _, _ := cpuid(7, 0)
	if got := b7>>5&1 == 1; cpu.X86.HasAVX2 && !got {
		t.Errorf("cpuid(7): AVX2 bit clear, x/sys/cpu HasAVX2 true")
	}
	v := vendor()
	if runtime.GOOS != "linux" {
		t.Logf("vendor %q (no /proc/cpuinfo to compare with)", v)
		return
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	for line := range strings.Lines(string(info)) {
		if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "vendor_id" {
			if want := strings.TrimSpace(val); v != want {
				t.Fatalf("vendor() = %q, /proc/cpuinfo vendor_id %q", v, want)
			}
			if amd != (v == "AuthenticAMD") {
				t.Fatalf("amd = %v for vendor %q", amd, v)
			}
			return
		}
	}
	t.Skip("no vendor_id in /proc/cpuinfo")
}
