//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// The instruction sets the assembly kernels may use, decided once from CPUID. They
// are variables so tests can switch each path off in turn and run the same vectors
// through AVX-512, AVX2 and pure Go.
var (
	useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ
	useAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// amd reports an AMD CPU (CPUID vendor "AuthenticAMD"). The dispatch tunes a few
// choices by vendor where the same kernel measured differently on the two
// machines it was tuned on, an Intel Xeon (family 6 model 207) and an AMD EPYC
// (Zen 5, family 26); a variable so that tests can run both choices, which give
// the same bits.
var amd = vendor() == "AuthenticAMD"

// vendor returns the 12-byte CPUID vendor string.
func vendor() string {
	_, b, c, d := cpuid(0, 0)
	var s [12]byte
	for i, r := range [3]uint32{b, d, c} {
		for j := range 4 {
			s[4*i+j] = byte(r >> (8 * j))
		}
	}
	return string(s[:])
}
