//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// chainUse selects the chunked LinearChain dispatch if chunk (any call with
// more than one sample group then runs in chunks of W of at most 4 KiB, so
// several row chunks and input chunks carry their chains through y), and
// returns the function that restores the defaults.
func chainUse(chunk bool) (restore func()) {
	l2, cb := chainL2, chainChunkBytes
	if chunk {
		chainL2, chainChunkBytes = -1, 4<<10
	}
	return func() { chainL2, chainChunkBytes = l2, cb }
}

var (
	chainTestM = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 25}
	chainTestN = []int{1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 33, 47}
	chainTestK = []int{1, 7, 8, 9, 15, 16, 17, 33, 100, 1037}
)

// TestLinearChainKernelsMatchGo runs every LinearChain kernel (g = 1 … 12 on
// AVX-512, 1 … 5 on AVX2, as whole calls or as the groups of larger m) and
// the chunked dispatch against linearChainGo, bit for
// bit: partial row blocks (n mod lanes), input tails (k mod lanes), padded
// strides, bias or none, relu, special values. Inputs end at a PROT_NONE page
// and outputs sit among sentinels.
func TestLinearChainKernelsMatchGo(t *testing.T) {
	isas := linAvailable(t)
	rng := rand.New(rand.NewPCG(21, 22))
	var arena linArena
	defer arena.free()
	c := 0
	for _, k := range chainTestK {
		for _, m := range chainTestM {
			for _, n := range chainTestN {
				c++
				ldx, ldw, ldy := linLayout(c, k, n)
				mode := c % 5
				x := arena.tail(t, (m-1)*ldx+k)
				w := arena.tail(t, (n-1)*ldw+k)
				b := arena.tail(t, n)
				linFillMode(rng, x, mode, k, true)
				linFillMode(rng, w, mode, k, false)
				linFill(rng, b, false, 0.1)
				v := c % 4
				relu := v&1 != 0
				var bias []float32
				if v&2 != 0 {
					bias = b
				}
				want := linOutBuf((m-1)*ldy + n)
				linearChainGo(want[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu)
				for _, isa := range isas {
					for _, chunk := range []bool{false, true} {
						what := fmt.Sprintf("%s chunk=%v m=%d n=%d k=%d ldx=%d ldw=%d ldy=%d bias=%v relu=%v mode=%d",
							isa, chunk, m, n, k, ldx, ldw, ldy, bias != nil, relu, mode)
						got := linOutBuf((m-1)*ldy + n)
						restore, restoreChain := linUse(isa), chainUse(chunk)
						linCatch(t, what, func() { linearChain(got[linGuard:], ldy, x, ldx, w, ldw, bias, m, n, k, relu, nil) })
						restoreChain()
						restore()
						linCompare(t, what, got, want, m, n, ldy)
					}
				}
				arena.free()
			}
		}
	}
}

// BenchmarkLinearChain runs BenchmarkLinear's shapes through LinearChain: GB/s
// of W for the streaming shapes, GFLOP/s and (cached shapes) %peak for all.
func BenchmarkLinearChain(b *testing.B) { linForwardBench(b, LinearChain) }
