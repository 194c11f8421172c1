package winograd

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// guarded returns a float32 slice of length n that ends exactly where a
// PROT_NONE page begins, so that a kernel reading or writing past the end of
// its operand faults instead of silently touching a neighbour. Slot k keeps
// one mapping, grown as needed, so each operand of a call gets its own.
func guarded(t testing.TB, k, n int) []float32 {
	for len(guardSlots) <= k {
		guardSlots = append(guardSlots, nil)
	}
	page := unix.Getpagesize()
	need := (4*n+page-1)/page*page + page
	m := guardSlots[k]
	if len(m) < need {
		if m != nil {
			if err := unix.Munmap(m); err != nil {
				t.Fatal(err)
			}
		}
		size := max(need, 1<<20)
		var err error
		m, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Mprotect(m[size-page:], unix.PROT_NONE); err != nil {
			t.Fatal(err)
		}
		guardSlots[k] = m
	}
	if n == 0 {
		return []float32{}
	}
	end := len(m) - page
	return unsafe.Slice((*float32)(unsafe.Pointer(&m[end-4*n])), n)
}

var guardSlots [][]byte
