package verify

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestWinogradMatrices checks the matrices winogradTerms uses: with their signs,
// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 3×3 correlation of a 6×6 tile d with g (4×4
// outputs), and the absolute matrices are theirs, entry by entry. A wrong sign
// would let |Bᵀ d B| or |G g Gᵀ| understate the magnitudes the bound scales with.
func TestWinogradMatrices(t *testing.T) {
	sAT := [4][6]float64{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 100; trial++ {
		var d [6][6]float64
		g := make([]float64, 9)
		for i := range d {
			for j := range d[i] {
				d[i][j] = rng.NormFloat64()
			}
		}
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		U, V := gGt(&sG, g), btdB(&sBT, &d)
		var M [36]float64
		for k := range M {
			M[k] = U[k] * V[k]
		}
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				y := 0.0
				for k := 0; k < 6; k++ {
					for l := 0; l < 6; l++ {
						y += sAT[i][k] * M[k*6+l] * sAT[j][l]
					}
				}
				want := 0.0
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						want += d[i+ky][j+kx] * g[ky*3+kx]
					}
				}
				if math.Abs(y-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("trial %d: output (%d,%d) is %v by Winograd, %v directly", trial, i, j, y, want)
				}
			}
		}
	}
	for i := range sBT {
		for j := range sBT[i] {
			if math.Abs(sBT[i][j]) != wBT[i][j] {
				t.Errorf("|Bᵀ[%d][%d]| = %v, want %v", i, j, wBT[i][j], math.Abs(sBT[i][j]))
			}
		}
		for j := range sG[i] {
			if math.Abs(sG[i][j]) != wG[i][j] {
				t.Errorf("|G[%d][%d]| = %v, want %v", i, j, wG[i][j], math.Abs(sG[i][j]))
			}
		}
	}
	for i := range sAT {
		for j := range sAT[i] {
			if math.Abs(sAT[i][j]) != wAT[i][j] {
				t.Errorf("|Aᵀ[%d][%d]| = %v, want %v", i, j, wAT[i][j], math.Abs(sAT[i][j]))
			}
		}
	}
}
