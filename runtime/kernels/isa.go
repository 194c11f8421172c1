package kernels

import "time"

// ISA names the instruction set the kernels run on: "avx512", "avx2" or "go".
func ISA() string { return isa() }

// ISAs lists the instruction sets this CPU and build can run, best first; "go" (the
// pure-Go twins) is always last.
func ISAs() []string { return isas() }

// SetISA restricts the kernels to one of ISAs(), so that tests and benchmarks can run
// the same work through every path (in exact mode they must agree bit for bit). It
// must not be called while kernels run.
func SetISA(name string) error { return setISA(name) }

// PeakGFLOPS measures the float32 FMA peak of the current ISA: threads goroutines
// each run a loop of independent vector FMA chains for about d, and the sum of their
// rates is returned. It returns 0 for the pure-Go kernels, which have no such loop.
func PeakGFLOPS(threads int, d time.Duration) float64 { return peakGFLOPS(threads, d) }
