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
