// Package nn holds the shape-generic helpers that generated models call outside their
// hot loops: packing convolution weights into the kernels' layouts (at Sync), folding
// batch norm, the phase decomposition of strided input gradients, zeroing halos.
// Everything here takes its dimensions as arguments; the per-layer loops that run on
// every Forward and Backward are generated with constants instead.
package nn

import (
	"math"
	goruntime "runtime"
	"sync"

	"github.com/cnngen/cnngen/runtime/kernels"
)

// ConvDims are a convolution's dimensions as the packing functions need them.
type ConvDims struct {
	Groups, ICg, OCg int // groups and channels per group
	KH, KW, SH, SW   int // kernel and stride
}

// OCB is the number of output-channel blocks of kernels.NR per group.
func (d ConvDims) OCB() int { return (d.OCg + kernels.NR - 1) / kernels.NR }

// ICB is the number of input-channel blocks of kernels.NR per group.
func (d ConvDims) ICB() int { return (d.ICg + kernels.NR - 1) / kernels.NR }

// PackConv packs OIHW weights w (and bias b, nil for none) into the forward layout
// [group][ocBlock][ky][kx][ic][NR] that kernels.ConvNHWC reads, and the bias into
// [group][ocBlock][NR]; channels past OCg in the last block are zero. If scale is not
// nil, batch norm is folded in: w'[oc] = w[oc]·scale[oc], b'[oc] = b[oc]·scale[oc] +
// shift[oc], computed in float64 and rounded once.
func PackConv(dst, dstBias, w, b []float32, d ConvDims, scale, shift []float64) {
	blocks := d.Groups * d.OCB()
	inParallel(blocks, blocks*d.KH*d.KW*d.ICg*kernels.NR, func(lo, hi int) {
		packConvBlocks(dst, dstBias, w, b, d, scale, shift, lo, hi)
	})
}

// packConvBlocks is PackConv for the output-channel blocks [lo, hi), numbered
// g*OCB+blk.
func packConvBlocks(dst, dstBias, w, b []float32, d ConvDims, scale, shift []float64, lo, hi int) {
	NR := kernels.NR
	ocb := d.OCB()
	taps := d.KH * d.KW
	size := taps * d.ICg * NR
	row := d.ICg * taps // one output channel's weights in w
	gather := packGatherFor(PackConvSize(d))
	if scale != nil {
		gather = kernels.PackGather // the fold rereads what it gathered
	}
	for u := lo; u < hi; u++ {
		g, blk := u/ocb, u%ocb
		nj := min(NR, d.OCg-blk*NR)
		oc0 := g*d.OCg + blk*NR
		base := dst[u*size : (u+1)*size]
		// Row (t, ic) of the block is lane j = w[(oc0+j)*row + ic*taps + t], the
		// lanes past OCg +0 (PackGather writes them). A pass takes packChunk input
		// channels of every tap: its part of the nj rows of w stays in L1 while
		// each tap gathers from it.
		for ic0 := 0; ic0 < d.ICg; ic0 += packChunk {
			n := min(packChunk, d.ICg-ic0)
			for t := 0; t < taps; t++ {
				o := base[(t*d.ICg+ic0)*NR : (t*d.ICg+ic0+n)*NR]
				gather(o, w[oc0*row+ic0*taps+t:], n, taps, row, nj)
				if scale != nil {
					// Batch norm folded in, on the values just gathered:
					// v = float32(float64(v) * scale[oc]).
					sc := scale[oc0 : oc0+nj]
					for i := 0; i < n; i++ {
						r := o[i*NR : i*NR+nj]
						for j, s := range sc {
							r[j] = float32(float64(r[j]) * s)
						}
					}
				}
			}
		}
		bias := dstBias[u*NR : (u+1)*NR]
		clear(bias)
		for j := 0; j < nj; j++ {
			oc := oc0 + j
			var bv float64
			if b != nil {
				bv = float64(b[oc])
			}
			if scale != nil {
				bv = float64(bv*scale[oc]) + shift[oc]
			}
			bias[j] = float32(bv)
		}
	}
	kernels.PackFence() // order gather's streaming stores before the caller's
}

// packGatherFor is the gather for a pack of size floats: one larger than
// packStreamMin, which the next layer's reads find in memory rather than in
// the core's caches whatever the pack does, is stored past the caches (the
// pack functions then end with kernels.PackFence).
func packGatherFor(size int) func(dst, src []float32, n, sstep, jstride, nj int) {
	if size >= packStreamMin {
		return kernels.PackGatherNT
	}
	return kernels.PackGather
}

// packStreamMin is the pack size in floats from which the packs stream their
// stores: 2 MiB, a core's L2.
const packStreamMin = 1 << 19

// packChunk is the rows (input channels for PackConv, output channels for
// PackConvBackData) a pass of the packs gathers for every tap: NR rows of w
// of packChunk·taps values each, 36 KiB for 3×3 kernels, are read from memory
// once per pass and from cache for the other taps.
const packChunk = 32

// inParallel runs f over [0, units) split into contiguous parts on up to
// GOMAXPROCS goroutines when the work (floats written) is large enough to pay
// for them. The parts write disjoint outputs, so the result does not depend on
// the split.
func inParallel(units, work int, f func(lo, hi int)) {
	n := min(units, goruntime.GOMAXPROCS(0))
	if n <= 1 || work < 1<<16 {
		f(0, units)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(units*i/n, units*(i+1)/n)
		}()
	}
	f(0, units/n)
	wg.Wait()
}

// PackConvSize is the length of PackConv's dst.
func PackConvSize(d ConvDims) int { return d.Groups * d.OCB() * d.KH * d.KW * d.ICg * kernels.NR }

// BNFold returns the per-channel scale γ/√(var+ε) and shift β − mean·scale of an
// evaluation-mode batch norm, in float64.
func BNFold(scale, shift []float64, gamma, beta, mean, variance []float32, eps float64) {
	for c := range scale {
		s := float64(gamma[c]) / math.Sqrt(float64(variance[c])+eps)
		scale[c] = s
		shift[c] = float64(beta[c]) - float64(float64(mean[c])*s) // rounded product: no build may fuse it
	}
}

// Phase is one residue class of a strided convolution's input gradient along one
// dimension. The input positions i with (i+pad) mod stride = R receive gradient from
// the kernel taps R, R+stride, ..., T of them; the input gradient at those positions
// is a stride-1 correlation of the output gradient with those taps reversed.
type Phase struct {
	R int // residue (the first tap)
	T int // number of taps (may be 0: those inputs get no gradient)
}

// Phases returns the stride phases of a kernel of size k; for stride 1 there is one
// phase holding every tap.
func Phases(k, stride int) []Phase {
	ps := make([]Phase, stride)
	for r := range ps {
		t := 0
		if r < k {
			t = (k - r + stride - 1) / stride
		}
		ps[r] = Phase{R: r, T: t}
	}
	return ps
}

// PackConvBackData packs OIHW weights for the input gradient: for every phase pair
// (py, px) of Phases(KH, SH) × Phases(KW, SW) in order, the layout
// [group][icBlock][jy][jx][oc][NR] with tap (jy, jx) holding the original tap
// (ry + SH·(Ty−1−jy), rx + SW·(Tx−1−jx)), reversed so that the gradient is a forward
// correlation; lanes are input channels. Phases with no taps take no space.
func PackConvBackData(dst, w []float32, d ConvDims) {
	units := d.Groups * d.ICB()
	inParallel(units, len(dst), func(lo, hi int) { packBackDataUnits(dst, w, d, lo, hi) })
}

// packBackDataUnits is PackConvBackData for the (group, input-channel block)
// units [lo, hi) of every phase pair.
func packBackDataUnits(dst, w []float32, d ConvDims, lo, hi int) {
	NR := kernels.NR
	icb := d.ICB()
	kk := d.KH * d.KW
	gather := packGatherFor(PackConvBackDataSize(d))
	// The phase pairs with taps, and where each one's packs start in dst.
	type phasePair struct {
		py, px Phase
		off    int // offset of the phase pair's packs in dst
		unit   int // floats of one unit's pack
	}
	var room [16]phasePair // strides up to 4 without a heap allocation
	pairs := room[:0]
	off := 0
	for _, py := range Phases(d.KH, d.SH) {
		for _, px := range Phases(d.KW, d.SW) {
			n := py.T * px.T
			if n == 0 {
				continue
			}
			unit := n * d.OCg * NR
			pairs = append(pairs, phasePair{py, px, off, unit})
			off += d.Groups * icb * unit
		}
	}
	for u := lo; u < hi; u++ {
		g, ib := u/icb, u%icb
		nj := min(NR, d.ICg-ib*NR)
		// Row o of tap (jy, jx) is lane j = w[(oc*ICg + ib*NR + j)*kk + ky*KW + kx]
		// with oc = g*OCg + o, the lanes past ICg +0 (PackGather writes them). A
		// pass takes packChunk output channels, whose nj·kk weights each are
		// contiguous in w, through every tap of every phase pair.
		for o0 := 0; o0 < d.OCg; o0 += packChunk {
			n := min(packChunk, d.OCg-o0)
			src := w[((g*d.OCg+o0)*d.ICg+ib*NR)*kk:]
			for _, pp := range pairs {
				py, px := pp.py, pp.px
				base := dst[pp.off+u*pp.unit : pp.off+(u+1)*pp.unit]
				for jy := 0; jy < py.T; jy++ {
					ky := py.R + d.SH*(py.T-1-jy)
					for jx := 0; jx < px.T; jx++ {
						kx := px.R + d.SW*(px.T-1-jx)
						tap := (jy*px.T + jx) * d.OCg * NR
						o := base[tap+o0*NR : tap+(o0+n)*NR]
						gather(o, src[ky*d.KW+kx:], n, d.ICg*kk, kk, nj)
					}
				}
			}
		}
	}
	kernels.PackFence() // order gather's streaming stores before the caller's
}

// PackConvBackDataSize is the length of PackConvBackData's dst.
func PackConvBackDataSize(d ConvDims) int {
	return d.Groups * d.ICB() * d.KH * d.KW * d.OCg * kernels.NR
}

// AddConvGrad adds the weight gradient of the kernel taps [t0, t1) (tap t is
// ky·KW+kx) of one output-channel block blk (numbered g*OCB+ob), computed by
// kernels.ConvWgrad in the layout [t-t0][ic][NR], into an OIHW gradient.
func AddConvGrad(grad, dw []float32, d ConvDims, blk, t0, t1 int) {
	NR := kernels.NR
	ocb := d.OCB()
	g, ob := blk/ocb, blk%ocb
	nj := min(NR, d.OCg-ob*NR)
	taps := d.KH * d.KW
	nt := t1 - t0
	if t0 < 0 || t1 > taps || nt < 1 {
		panic("nn.AddConvGrad: bad tap range")
	}
	dw = dw[:nt*d.ICg*NR]
	if taps == 9 && nt == 9 {
		addConvGrad3x3(grad, dw, d, g, ob, nj)
		return
	}
	for ic0 := 0; ic0 < d.ICg; ic0 += gradTile {
		ic1 := min(ic0+gradTile, d.ICg)
		for j := 0; j < nj; j++ {
			oc := g*d.OCg + ob*NR + j
			row := grad[oc*d.ICg*taps:]
			for ic := ic0; ic < ic1; ic++ {
				o := row[ic*taps+t0 : ic*taps+t1]
				for t := range o {
					o[t] += dw[(t*d.ICg+ic)*NR+j]
				}
			}
		}
	}
}

// gradTile is the input channels AddConvGrad moves per pass: the pass's lines of
// the gradient rows and of dw stay in L1.
const gradTile = 16

// addConvGrad3x3 is AddConvGrad for all nine taps of a 3×3 kernel, unrolled over
// the taps with one bounds check per input channel: 2× the general loop's speed
// (a 384→256 block, 442 KiB of dw: 80–85 against 148–181 µs), which mattered in
// AlexNet's training step, where a block's whole weight-gradient work takes
// ~1.4 ms on one core.
func addConvGrad3x3(grad, dw []float32, d ConvDims, g, ob, nj int) {
	const taps = 9
	NR := kernels.NR
	s := d.ICg * NR // from one tap's [ic][NR] to the next
	for ic0 := 0; ic0 < d.ICg; ic0 += gradTile {
		ic1 := min(ic0+gradTile, d.ICg)
		for j := 0; j < nj; j++ {
			oc := g*d.OCg + ob*NR + j
			row := grad[oc*d.ICg*taps : (oc+1)*d.ICg*taps]
			for ic := ic0; ic < ic1; ic++ {
				o := (*[taps]float32)(row[ic*taps:])
				b := ic*NR + j
				w := dw[b : b+8*s+1]
				o[0] += w[0]
				o[1] += w[s]
				o[2] += w[2*s]
				o[3] += w[3*s]
				o[4] += w[4*s]
				o[5] += w[5*s]
				o[6] += w[6*s]
				o[7] += w[7*s]
				o[8] += w[8*s]
			}
		}
	}
}

// ZeroHalo clears the halo of one sample of an NHWC buffer of h×w pixels of c
// channels with ph rows and pw columns of halo on each side.
func ZeroHalo(buf []float32, h, w, c, ph, pw int) {
	if ph == 0 && pw == 0 {
		return
	}
	rs := (w + 2*pw) * c
	clear(buf[:ph*rs])
	clear(buf[(ph+h)*rs : (2*ph+h)*rs])
	for y := ph; y < ph+h; y++ {
		row := buf[y*rs : (y+1)*rs]
		clear(row[:pw*c])
		clear(row[(pw+w)*c:])
	}
}

// ZeroHalos clears the halo of the samples [lo, hi) = Span(n, w, nw) of a buffer
// of size values per sample: worker w's share, so that the workers of a step split it.
func ZeroHalos(buf []float32, n, size, h, w, c, ph, pw, worker, workers int) {
	q, r := n/workers, n%workers
	lo := worker*q + min(worker, r)
	hi := lo + q
	if worker < r {
		hi++
	}
	for b := lo; b < hi; b++ {
		ZeroHalo(buf[b*size:(b+1)*size], h, w, c, ph, pw)
	}
}

// BackDataHalo is the zero halo the output gradient needs, along one dimension of
// input size n, output size on, kernel k, stride s and padding p, for the input
// gradient to read it with no bounds: input position i reads output rows q−T+1 … q,
// q = (i+p)/s, T the taps of its phase.
func BackDataHalo(n, on, k, s, p int) int {
	ph := Phases(k, s)
	halo := 0
	for i := 0; i < n; i++ {
		t := ph[(i+p)%s].T
		if t == 0 {
			continue
		}
		q := (i + p) / s
		halo = max(halo, -(q - t + 1), q-(on-1))
	}
	return halo
}
