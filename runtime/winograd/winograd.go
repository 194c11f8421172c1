package winograd

import (
	"runtime"
	"sync"
	"unsafe"

	"github.com/cnngen/cnngen/runtime/kernels"
)

// NR is the output-channel block of the packed transformed weights
// (kernels.NR): each of the 36 GEMMs runs as kernels.ConvNHWC calls of NR
// output channels.
const NR = kernels.NR

// PackSize is the length of the transformed weights of a 3×3 convolution from
// cin to cout channels: 36 positions × ⌈cout/NR⌉ blocks × cin × NR.
func PackSize(cin, cout int) int { return 36 * ocBlocks(cout) * cin * NR }

func ocBlocks(cout int) int { return (cout + NR - 1) / NR }

// Pack transforms 3×3 weights w (OIHW, torchvision's layout: w[((oc*cin+ic)*3+ky)*3+kx])
// into the Winograd domain, U = G g Gᵀ per (oc, ic) pair, with
//
//	G = | 1/4     0     0  |
//	    | -1/6  -1/6  -1/6 |
//	    | -1/6   1/6  -1/6 |
//	    | 1/24  1/12   1/6 |
//	    | 1/24 -1/12   1/6 |
//	    |  0      0     1  |
//
// and lays U out as 36 consecutive 1×1-convolution packs, one per position
// ξ = 6k+l of the 6×6 transform: dst[((ξ*OCB+ob)*cin+ic)*NR+j] = U[k][l] of
// output channel ob*NR+j (zero past cout). U is computed in float64 as
// (G' g G'ᵀ)/576 with the integer matrix G' = 24·G, skipping G's zeros (so
// an infinite weight gives infinities, not 0·Inf NaNs, where G is zero), and
// rounded once to float32. Pack runs on up to GOMAXPROCS goroutines.
func Pack(dst, w []float32, cin, cout int) {
	switch {
	case cin < 1 || cout < 1:
		panic("winograd.Pack: bad channel counts")
	case len(w) < cout*cin*9:
		panic("winograd.Pack: w too short")
	case len(dst) < PackSize(cin, cout):
		panic("winograd.Pack: dst too short")
	}
	ocb := ocBlocks(cout)
	dst = dst[:PackSize(cin, cout)]
	// The output-channel blocks write disjoint parts of dst: split them over
	// up to GOMAXPROCS goroutines.
	parts := min(ocb, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			packBlocks(dst, w, cin, cout, p*ocb/parts, (p+1)*ocb/parts)
		}()
	}
	wg.Wait()
}

// packBlocks is Pack for the output-channel blocks [lo, hi).
func packBlocks(dst, w []float32, cin, cout, lo, hi int) {
	ocb := ocBlocks(cout)
	for xi := 0; xi < 36; xi++ {
		clear(dst[(xi*ocb+lo)*cin*NR : (xi*ocb+hi)*cin*NR])
	}
	for oc := lo * NR; oc < min(hi*NR, cout); oc++ {
		for ic := 0; ic < cin; ic++ {
			u := transformWeights((*[9]float32)(w[(oc*cin+ic)*9:]))
			for xi, v := range u {
				dst[((xi*ocb+oc/NR)*cin+ic)*NR+oc%NR] = float32(v)
			}
		}
	}
}

// gInt is 24·G, whose entries are small integers.
var gInt = [6][3]float64{{6, 0, 0}, {-4, -4, -4}, {-4, 4, -4}, {1, 2, 4}, {1, -2, 4}, {0, 0, 24}}

// transformWeights returns G g Gᵀ of one 3×3 kernel in float64, by position
// ξ = 6k+l. Each product is rounded before its sum (the explicit float64
// conversions forbid fusing them), so the result does not depend on GOAMD64.
func transformWeights(g *[9]float32) [36]float64 {
	var t [6][3]float64 // G' g
	for k := range t {
		for b := 0; b < 3; b++ {
			s := 0.0
			for a := 0; a < 3; a++ {
				if gInt[k][a] != 0 {
					s += float64(gInt[k][a] * float64(g[a*3+b]))
				}
			}
			t[k][b] = s
		}
	}
	var u [36]float64
	for k := 0; k < 6; k++ {
		for l := 0; l < 6; l++ {
			s := 0.0
			for b := 0; b < 3; b++ {
				if gInt[l][b] != 0 {
					s += float64(t[k][b] * gInt[l][b])
				}
			}
			u[6*k+l] = s / 576
		}
	}
	return u
}

// TileRows is the number of 4-pixel tile rows of an output of height oh, the
// range Conv's t0, t1 index.
func TileRows(oh int) int { return (oh + 3) / 4 }

// The chunk size rule, chosen by measurement (doc.go, BenchmarkChunkTiles): a
// chunk's V and M should stay within about half of one core's L2 (2 MB on
// the machines measured), and the transformed weights, which every chunk
// reads whole (36·cin·cout floats: 37.7 MB for 512 channels), should cost no
// more than about 256 kB per tile.
const (
	chunkVMBytes   = 1 << 20
	chunkUPerTile  = 256 << 10
	chunkMinTiles  = 4
	gemmTilePixels = 14 // the AVX-512 GEMM kernel's pixel tile (kernels, asm/conv)
)

// chunkOverride, if positive, replaces chunkTiles' rule (tests, benchmarks).
var chunkOverride int

// chunkTiles is how many tiles Conv transforms, multiplies and transforms
// back at a time: the larger of what keeps V[36][tiles][cin] and
// M[36][tiles][cout] within chunkVMBytes and what spreads the transformed
// weights to chunkUPerTile per tile, in whole 14-pixel GEMM tiles when there
// are at least 28, and at least 4.
func chunkTiles(cin, cout int) int {
	if chunkOverride > 0 {
		return chunkOverride
	}
	t := max(chunkVMBytes/(36*4*(pad16(cin)+pad16(cout))), 36*4*cin*cout/chunkUPerTile)
	if t >= 2*gemmTilePixels {
		t -= t % gemmTilePixels
	}
	return max(t, chunkMinTiles)
}

func pad16(n int) int { return (n + 15) &^ 15 }

// geometry is the layout of Conv's scratch for a chunk of up to tiles tiles.
type geometry struct {
	tiles       int // tiles per chunk
	cinP, coutP int // channel strides of V and M per tile (multiples of 16)
	vs, ms      int // position strides of V and M (+16 floats, so that the 36
	// positions of a tile fall in different cache sets)
}

func newGeometry(oh, ow, cin, cout int) geometry {
	tiles := min(chunkTiles(cin, cout), TileRows(oh)*TileRows(ow))
	g := geometry{tiles: tiles, cinP: pad16(cin), coutP: pad16(cout)}
	g.vs = tiles*g.cinP + 16
	g.ms = tiles*g.coutP + 16
	return g
}

// size is the scratch length: 16 floats of alignment slack, V, M, a 6×6
// input tile and a 4×4 output tile for the tiles at the edges, and zeros for
// a nil bias.
func (g geometry) size() int {
	return 16 + 36*g.vs + 36*g.ms + 36*g.cinP + 16*g.coutP + g.coutP
}

// ScratchSize is the length of the scratch slice Conv needs for an output of
// oh×ow pixels from cin to cout channels. Each concurrent caller needs its own.
func ScratchSize(oh, ow, cin, cout int) int { return newGeometry(oh, ow, cin, cout).size() }

// Conv computes tile rows [t0, t1) of a 3×3, stride-1, pad-1 convolution by
// Winograd F(4×4, 3×3), optionally followed by ReLU: output rows
// [4*t0, min(4*t1, oh)), all ow columns, all cout channels.
//
// in points at the top-left tap of output (0, 0) in an NHWC buffer with a zero
// halo of one pixel (the padding): input pixel (y, x), y < oh+2, x < ow+2,
// channel c is in[y*irs+x*cin+c], padding included; tile rows [t0, t1) read
// input rows [4*t0, min(4*t1+2, oh+2)). Nothing else is read: the tiles at the
// bottom and right edges, which would reach up to two pixels past row oh+1 or
// column ow+1 when oh or ow is not a multiple of 4, are copied into scratch
// and zero-padded there. out receives output pixel (y, x), channel j at
// out[y*ors+x*cout+j]; nothing else is written. u holds the transformed
// weights (Pack); bias has cout values (nil: +0 is added). scratch has at
// least ScratchSize(oh, ow, cin, cout) values, and each concurrent caller
// needs its own.
//
// Each 4×4 output tile is computed on its own, so the result depends neither
// on t0, t1 nor on the instruction set (AVX-512, AVX2 and pure Go give the same
// bits; kernels.SetISA selects). Per tile, input channel c and output channel
// j (transform.go has the exact operations):
//
//	V = Bᵀ d B                         (d the 6×6 input tile, channel c)
//	M[ξ] = fma chain over c of V[ξ]·U[ξ], starting from +0 (kernels.ConvNHWC)
//	Y = Aᵀ M A + bias[j]; if relu && Y < 0 { Y = 0 }
//
// The work runs in chunks of tiles (chunkTiles): all of a chunk's input
// transforms into V[36][tiles][cin], the 36 GEMMs M[ξ] = V[ξ]·U[ξ] by
// kernels.ConvNHWC as 1×1 convolutions, then its output transforms.
func Conv(out []float32, ors int, in []float32, irs int, oh, ow, cin, cout int, u, bias []float32, relu bool, t0, t1 int, scratch []float32) {
	switch {
	case oh < 1 || ow < 1 || cin < 1 || cout < 1:
		panic("winograd.Conv: bad shape")
	case t0 < 0 || t1 < t0 || t1 > TileRows(oh):
		panic("winograd.Conv: bad tile rows")
	case irs < (ow+2)*cin || ors < ow*cout:
		panic("winograd.Conv: overlapping rows")
	case len(in) < (oh+1)*irs+(ow+2)*cin:
		panic("winograd.Conv: in too short")
	case len(out) < (oh-1)*ors+ow*cout:
		panic("winograd.Conv: out too short")
	case len(u) < PackSize(cin, cout):
		panic("winograd.Conv: u too short")
	case bias != nil && len(bias) < cout:
		panic("winograd.Conv: bias too short")
	case len(scratch) < ScratchSize(oh, ow, cin, cout):
		panic("winograd.Conv: scratch too short")
	}
	if t0 == t1 {
		return
	}
	g := newGeometry(oh, ow, cin, cout)
	s := scratch[align64(scratch):]
	v, s := s[:36*g.vs], s[36*g.vs:]
	m, s := s[:36*g.ms], s[36*g.ms:]
	edgeIn, s := s[:36*g.cinP], s[36*g.cinP:]
	edgeOut, s := s[:16*g.coutP], s[16*g.coutP:]
	if bias == nil {
		bias = s[:cout]
		clear(bias)
	}
	ocb := ocBlocks(cout)
	tw := TileRows(ow)
	fullW := ow / 4 // tiles 0..fullW-1 of a row lie inside the output
	for k0 := t0 * tw; k0 < t1*tw; k0 += g.tiles {
		k1 := min(k0+g.tiles, t1*tw)
		n := k1 - k0

		// V[ξ][slot][c] for the chunk's tiles, a run of a tile row at a time.
		for k := k0; k < k1; {
			ty, tx := k/tw, k%tw
			slot := k - k0
			if 4*ty+4 <= oh && tx < fullW {
				nt := min(fullW-tx, k1-k)
				inputTransform(v[slot*g.cinP:], g.vs, g.cinP, in[4*ty*irs+4*tx*cin:], cin, irs, nt, cin)
				k += nt
				continue
			}
			gatherEdge(edgeIn, g.cinP, in, irs, cin, oh+2-4*ty, ow+2-4*tx, 4*ty, 4*tx)
			inputTransform(v[slot*g.cinP:], g.vs, g.cinP, edgeIn, g.cinP, 6*g.cinP, 1, cin)
			k++
		}

		// M[ξ] = V[ξ]·U[ξ]: 36 GEMMs of n tiles × cin → cout.
		for xi := 0; xi < 36; xi++ {
			for ob := 0; ob < ocb; ob++ {
				kernels.ConvNHWC(m[xi*g.ms+ob*NR:], g.coutP, v[xi*g.vs:], g.cinP, cin, cin, cin, 1, 1,
					u[(xi*ocb+ob)*cin*NR:], nil, n, min(NR, cout-ob*NR), false)
			}
		}

		// Y for the chunk's tiles, written at the valid output pixels.
		for k := k0; k < k1; {
			ty, tx := k/tw, k%tw
			slot := k - k0
			if 4*ty+4 <= oh && tx < fullW {
				nt := min(fullW-tx, k1-k)
				outputTransform(out[4*ty*ors+4*tx*cout:], cout, ors, m[slot*g.coutP:], g.ms, g.coutP, nt, cout, bias, relu)
				k += nt
				continue
			}
			outputTransform(edgeOut, g.coutP, 4*g.coutP, m[slot*g.coutP:], g.ms, g.coutP, 1, cout, bias, relu)
			for i := 0; i < min(4, oh-4*ty); i++ {
				for j := 0; j < min(4, ow-4*tx); j++ {
					copy(out[(4*ty+i)*ors+(4*tx+j)*cout:][:cout], edgeOut[(i*4+j)*g.coutP:])
				}
			}
			k++
		}
	}
}

// gatherEdge copies the part of the 6×6 input tile at (y0, x0) that lies in
// the input (its first rows × cols pixels) to dst (pixel stride cinP, row
// stride 6*cinP), and zeros in the rest.
func gatherEdge(dst []float32, cinP int, in []float32, irs, cin, rows, cols, y0, x0 int) {
	clear(dst)
	for y := 0; y < min(6, rows); y++ {
		for x := 0; x < min(6, cols); x++ {
			copy(dst[(y*6+x)*cinP:][:cin], in[(y0+y)*irs+(x0+x)*cin:])
		}
	}
}

// align64 is the offset of s's first 64-byte-aligned element (at most 15).
func align64(s []float32) int {
	for i := 0; i < 16 && i < len(s); i++ {
		if uintptr(unsafe.Pointer(&s[i]))%64 == 0 {
			return i
		}
	}
	return 0
}
