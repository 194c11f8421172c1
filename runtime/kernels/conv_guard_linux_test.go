package kernels

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// convGuarded returns a float32 slice of length n that ends exactly where a
// PROT_NONE page begins, so that a kernel reading (or writing) past the end
// of its operand faults instead of silently reading a neighbour. Slot k keeps
// one mapping, grown as needed, so each operand of a call gets its own.
func convGuarded(t testing.TB, k, n int) []float32 {
	for len(convGuardSlots) <= k {
		convGuardSlots = append(convGuardSlots, nil)
	}
	page := unix.Getpagesize()
	need := (4*n+page-1)/page*page + page
	m := convGuardSlots[k]
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
		convGuardSlots[k] = m
	}
	end := len(m) - page
	if n == 0 {
		return []float32{}
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&m[end-4*n])), n)
}

var convGuardSlots [][]byte
