package kernels

// ISA names the instruction set the kernels run on: "avx512", "avx2" or "go".
func ISA() string { return isa() }
