//go:build !linux

package winograd

import "testing"

// guarded returns a float32 slice of length n (no guard page here: only Linux
// tests map one after the operand).
func guarded(t testing.TB, k, n int) []float32 { return make([]float32, n) }
