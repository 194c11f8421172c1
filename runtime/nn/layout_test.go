package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestToNHWC checks both conversions against the definition, element by element
// (bits, NaN payloads included), for channel counts with and without a loop of
// their own, row widths around the three-channel loop's unrolling, and plane
// strides beyond the row; the values past each row must stay untouched.
func TestToNHWC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const guard = 7
	for _, c := range []int{1, 2, 3, 4, 5} {
		for _, w := range []int{1, 2, 3, 4, 5, 7, 8, 9, 224} {
			for _, plane := range []int{w, w + 3} {
				src := make([]float32, (c-1)*plane+w)
				for i := range src {
					src[i] = math.Float32frombits(rng.Uint32())
				}
				dst := make([]float32, c*w+guard)
				for i := range dst {
					dst[i] = -1
				}
				ToNHWC(dst, src, c, plane, w)
				for i := 0; i < w; i++ {
					for ch := 0; ch < c; ch++ {
						if got, want := math.Float32bits(dst[i*c+ch]), math.Float32bits(src[ch*plane+i]); got != want {
							t.Fatalf("ToNHWC c=%d w=%d plane=%d: pixel %d channel %d is %#x, want %#x", c, w, plane, i, ch, got, want)
						}
					}
				}
				for i := c * w; i < len(dst); i++ {
					if dst[i] != -1 {
						t.Fatalf("ToNHWC c=%d w=%d plane=%d: wrote dst[%d] past the row", c, w, plane, i)
					}
				}
				back := make([]float32, len(src)+guard)
				for i := range back {
					back[i] = -1
				}
				FromNHWC(back, dst, c, plane, w)
				for ch := 0; ch < c; ch++ {
					for i := 0; i < w; i++ {
						if got, want := math.Float32bits(back[ch*plane+i]), math.Float32bits(src[ch*plane+i]); got != want {
							t.Fatalf("FromNHWC c=%d w=%d plane=%d: channel %d pixel %d is %#x, want %#x", c, w, plane, ch, i, got, want)
						}
					}
					// Between the rows of two planes and after the last: untouched.
					end := ch*plane + plane
					if ch == c-1 {
						end = len(back)
					}
					for i := ch*plane + w; i < end; i++ {
						if back[i] != -1 {
							t.Fatalf("FromNHWC c=%d w=%d plane=%d: wrote back[%d] outside the rows", c, w, plane, i)
						}
					}
				}
			}
		}
	}
}

func BenchmarkToNHWC(b *testing.B) {
	const c, h, w = 3, 224, 224
	src := make([]float32, c*h*w)
	dst := make([]float32, h*w*c)
	b.SetBytes(int64(8 * len(src)))
	for b.Loop() {
		for y := 0; y < h; y++ {
			ToNHWC(dst[y*w*c:], src[y*w:], c, h*w, w)
		}
	}
}
