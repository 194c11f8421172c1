//go:build !linux

package kernels

import "testing"

// convGuarded returns a float32 slice of length n (no guard page here: only
// Linux tests map one after the operand).
func convGuarded(t testing.TB, k, n int) []float32 { return make([]float32, n) }
