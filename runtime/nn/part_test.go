package nn

import "testing"

// TestPartCovers checks that the n parts of s are consecutive, cover s exactly
// and differ in length by at most one, for nil, short and long slices.
func TestPartCovers(t *testing.T) {
	for _, l := range []int{0, 1, 5, 16, 1000, 147456} {
		s := make([]float32, l)
		for i := range s {
			s[i] = float32(i)
		}
		for _, n := range []int{1, 2, 3, 7, 14, 56, 224} {
			next, lmin, lmax := 0, l, 0
			for i := 0; i < n; i++ {
				p := Part(s, i, n)
				if len(p) > 0 && p[0] != float32(next) {
					t.Fatalf("len %d, n %d: part %d starts at %v, want %d", l, n, i, p[0], next)
				}
				next += len(p)
				lmin, lmax = min(lmin, len(p)), max(lmax, len(p))
			}
			if next != l {
				t.Errorf("len %d, n %d: parts cover %d elements", l, n, next)
			}
			if lmax-lmin > 1 {
				t.Errorf("len %d, n %d: part lengths %d..%d", l, n, lmin, lmax)
			}
		}
	}
	if p := Part(nil, 0, 3); len(p) != 0 {
		t.Errorf("Part(nil) = %v", p)
	}
}

func TestHead(t *testing.T) {
	s := []float32{1, 2, 3}
	for n, want := range []int{0, 1, 2, 3, 3, 3} {
		if got := Head(s, n); len(got) != want || (want > 0 && &got[0] != &s[0]) {
			t.Errorf("Head(s, %d) has %d elements, want the first %d", n, len(got), want)
		}
	}
	if got := Head(nil, 5); len(got) != 0 {
		t.Errorf("Head(nil, 5) = %v", got)
	}
}
