//go:build !amd64 || purego

package kernels

import "testing"

// packISAs lists PackGather's implementations: only Go here.
func packISAs() []convISA { return convISAs() }

// packRestoreISA returns a function restoring the dispatch flags.
func packRestoreISA() func() { return convRestoreISA() }

// forEachPackISA runs f as a subtest per implementation.
func forEachPackISA(t *testing.T, f func(t *testing.T)) { forEachConvISA(t, f) }
