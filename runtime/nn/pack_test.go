package nn

import (
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/cnngen/cnngen/runtime/kernels"
)

func TestPhases(t *testing.T) {
	for k := 1; k <= 11; k++ {
		for s := 1; s <= 5; s++ {
			total := 0
			for r, p := range Phases(k, s) {
				if p.R != r {
					t.Fatalf("Phases(%d, %d)[%d].R = %d", k, s, r, p.R)
				}
				// The taps of phase r are r, r+s, ... < k.
				n := 0
				for tap := r; tap < k; tap += s {
					n++
				}
				if p.T != n {
					t.Errorf("Phases(%d, %d)[%d].T = %d, want %d", k, s, r, p.T, n)
				}
				total += p.T
			}
			if total != k {
				t.Errorf("Phases(%d, %d) cover %d taps, want %d", k, s, total, k)
			}
		}
	}
}

func TestBackDataHalo(t *testing.T) {
	for _, c := range []struct{ n, k, s, p, want int }{
		{224, 3, 1, 1, 1},  // VGG: k-1-p
		{13, 3, 1, 0, 2},   // no padding: k-1
		{224, 11, 4, 2, 2}, // AlexNet conv1
		{227, 11, 4, 0, 2}, // AlexNet 2012 conv1
		{8, 1, 2, 0, 0},    // 1×1 stride 2: odd inputs get no gradient
	} {
		on := (c.n+2*c.p-c.k)/c.s + 1
		if got := BackDataHalo(c.n, on, c.k, c.s, c.p); got != c.want {
			t.Errorf("BackDataHalo(%d, %d, %d, %d, %d) = %d, want %d", c.n, on, c.k, c.s, c.p, got, c.want)
		}
	}
}

// PackConv then reading the pack the way ConvNHWC does gives back the OIHW weight.
func TestPackConvLayout(t *testing.T) {
	// ICg = 37: a block of input channels that is not a multiple of 16 or 32.
	for _, d := range []ConvDims{
		{Groups: 2, ICg: 3, OCg: 40, KH: 3, KW: 2, SH: 1, SW: 1},
		{Groups: 1, ICg: 37, OCg: 33, KH: 3, KW: 3, SH: 1, SW: 1},
	} {
		testPackConvLayout(t, d)
	}
}

func testPackConvLayout(t *testing.T, d ConvDims) {
	t.Helper()
	oc, NR := d.Groups*d.OCg, kernels.NR
	w := make([]float32, oc*d.ICg*d.KH*d.KW)
	b := make([]float32, oc)
	for i := range w {
		w[i] = float32(i + 1)
	}
	for i := range b {
		b[i] = float32(-i - 1)
	}
	pack := make([]float32, PackConvSize(d))
	bias := make([]float32, d.Groups*d.OCB()*NR)
	PackConv(pack, bias, w, b, d, nil, nil)
	for g := 0; g < d.Groups; g++ {
		for o := 0; o < d.OCB()*NR; o++ {
			blk, j := o/NR, o%NR
			base := (g*d.OCB() + blk) * d.KH * d.KW * d.ICg * NR
			for ic := 0; ic < d.ICg; ic++ {
				for ky := 0; ky < d.KH; ky++ {
					for kx := 0; kx < d.KW; kx++ {
						got := pack[base+((ky*d.KW+kx)*d.ICg+ic)*NR+j]
						var want float32
						if o < d.OCg {
							want = w[(((g*d.OCg+o)*d.ICg+ic)*d.KH+ky)*d.KW+kx]
						}
						if got != want {
							t.Fatalf("g%d oc%d ic%d tap %d,%d: %v, want %v", g, o, ic, ky, kx, got, want)
						}
					}
				}
			}
			var want float32
			if o < d.OCg {
				want = b[g*d.OCg+o]
			}
			if got := bias[(g*d.OCB()+blk)*NR+j]; got != want {
				t.Fatalf("bias g%d oc%d: %v, want %v", g, o, got, want)
			}
		}
	}
}

// Every weight lands in exactly one place of the input-gradient pack.
func TestPackConvBackDataCoversEveryWeight(t *testing.T) {
	d := ConvDims{Groups: 2, ICg: 5, OCg: 3, KH: 5, KW: 3, SH: 2, SW: 3}
	oc := d.Groups * d.OCg
	w := make([]float32, oc*d.ICg*d.KH*d.KW)
	for i := range w {
		w[i] = float32(i + 1)
	}
	pack := make([]float32, PackConvBackDataSize(d))
	PackConvBackData(pack, w, d)
	seen := map[float32]int{}
	for _, v := range pack {
		if v != 0 {
			seen[v]++
		}
	}
	for _, v := range w {
		if seen[v] != 1 {
			t.Fatalf("weight %v appears %d times in the pack", v, seen[v])
		}
	}
}

func TestZeroHalo(t *testing.T) {
	const h, w, c, ph, pw = 3, 4, 2, 1, 2
	buf := make([]float32, (h+2*ph)*(w+2*pw)*c)
	for i := range buf {
		buf[i] = 1
	}
	ZeroHalo(buf, h, w, c, ph, pw)
	rs := (w + 2*pw) * c
	for y := 0; y < h+2*ph; y++ {
		for x := 0; x < w+2*pw; x++ {
			inside := y >= ph && y < ph+h && x >= pw && x < pw+w
			for k := 0; k < c; k++ {
				if v := buf[y*rs+x*c+k]; (v == 1) != inside {
					t.Fatalf("(%d, %d, %d) = %v, inside %v", y, x, k, v, inside)
				}
			}
		}
	}
}

// The packs of a convolution large enough to be packed on several goroutines
// equal the ones packed in one piece, bit for bit, padding lanes included.
func TestPackConvParallel(t *testing.T) {
	if goruntime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: PackConv never splits")
	}
	for _, d := range []ConvDims{
		{Groups: 1, ICg: 64, OCg: 200, KH: 3, KW: 3, SH: 1, SW: 1},
		{Groups: 2, ICg: 48, OCg: 70, KH: 5, KW: 5, SH: 1, SW: 1},
		{Groups: 1, ICg: 3, OCg: 330, KH: 11, KW: 11, SH: 4, SW: 4},
	} {
		w := make([]float32, d.Groups*d.OCg*d.ICg*d.KH*d.KW)
		b := make([]float32, d.Groups*d.OCg)
		for i := range w {
			w[i] = float32(i%1013) - 500
		}
		for i := range b {
			b[i] = float32(i) / 3
		}
		scale, shift := make([]float64, len(b)), make([]float64, len(b))
		for i := range scale {
			scale[i], shift[i] = 1+float64(i)/7, float64(i)/11
		}
		size := PackConvSize(d)
		nb := d.Groups * d.OCB() * kernels.NR
		if size < 1<<16 {
			t.Fatalf("%+v: pack of %d floats is too small to be split", d, size)
		}
		got, gotB := make([]float32, size), make([]float32, nb)
		want, wantB := make([]float32, size), make([]float32, nb)
		for i := range got {
			got[i], want[i] = 7, 9 // stale values: both must clear them
		}
		PackConv(got, gotB, w, b, d, scale, shift)
		packConvBlocks(want, wantB, w, b, d, scale, shift, 0, d.Groups*d.OCB())
		if !slices.Equal(got, want) || !slices.Equal(gotB, wantB) {
			t.Errorf("%+v: PackConv differs from the single-piece pack", d)
		}
		bsize := PackConvBackDataSize(d)
		got, want = make([]float32, bsize), make([]float32, bsize)
		for i := range got {
			got[i], want[i] = 7, 9
		}
		PackConvBackData(got, w, d)
		packBackDataUnits(want, w, d, 0, d.Groups*d.ICB())
		if !slices.Equal(got, want) {
			t.Errorf("%+v: PackConvBackData differs from the single-piece pack", d)
		}
	}
}

// PackConvBackData's layout, spelled out: for each phase pair (py, px), each
// (group, input-channel block) unit holds its taps (jy, jx), kernel tap
// (py.R+SH·(py.T-1-jy), px.R+SW·(px.T-1-jx)), as [tap][o][j] with j the input
// channel within the block; lanes past ICg are zero.
func TestPackConvBackDataLayout(t *testing.T) {
	for _, d := range []ConvDims{
		{Groups: 1, ICg: 40, OCg: 5, KH: 3, KW: 3, SH: 1, SW: 1},
		{Groups: 2, ICg: 5, OCg: 3, KH: 5, KW: 3, SH: 2, SW: 3},
	} {
		NR, kk := kernels.NR, d.KH*d.KW
		w := make([]float32, d.Groups*d.OCg*d.ICg*kk)
		for i := range w {
			w[i] = float32(i + 1)
		}
		pack := make([]float32, PackConvBackDataSize(d))
		for i := range pack {
			pack[i] = -1 // stale: every value must be written
		}
		PackConvBackData(pack, w, d)
		off := 0
		for _, py := range Phases(d.KH, d.SH) {
			for _, px := range Phases(d.KW, d.SW) {
				n := py.T * px.T
				if n == 0 {
					continue
				}
				for g := 0; g < d.Groups; g++ {
					for ib := 0; ib < d.ICB(); ib++ {
						base := off + (g*d.ICB()+ib)*n*d.OCg*NR
						for jy := 0; jy < py.T; jy++ {
							for jx := 0; jx < px.T; jx++ {
								ky, kx := py.R+d.SH*(py.T-1-jy), px.R+d.SW*(px.T-1-jx)
								for o := 0; o < d.OCg; o++ {
									for j := 0; j < NR; j++ {
										got := pack[base+((jy*px.T+jx)*d.OCg+o)*NR+j]
										var want float32
										if ic := ib*NR + j; ic < d.ICg {
											want = w[(((g*d.OCg+o)*d.ICg+ic)*d.KH+ky)*d.KW+kx]
										}
										if got != want {
											t.Fatalf("%+v: phase (%d,%d) g%d ib%d tap (%d,%d) o%d j%d: %v, want %v", d, py.R, px.R, g, ib, ky, kx, o, j, got, want)
										}
									}
								}
							}
						}
					}
				}
				off += d.Groups * d.ICB() * n * d.OCg * NR
			}
		}
		if off != len(pack) {
			t.Fatalf("%+v: phases cover %d of %d values", d, off, len(pack))
		}
	}
}

// AddConvGrad adds a block's [tap][ic][j] gradient into the OIHW gradient for
// the taps asked for, and leaves every other value alone.
func TestAddConvGrad(t *testing.T) {
	NR := kernels.NR
	for _, c := range []struct {
		d      ConvDims
		blk    int
		t0, t1 int
	}{
		{ConvDims{Groups: 1, ICg: 37, OCg: 40, KH: 3, KW: 3, SH: 1, SW: 1}, 1, 0, 9}, // partial block, tiles + rest
		{ConvDims{Groups: 2, ICg: 20, OCg: 70, KH: 3, KW: 3, SH: 1, SW: 1}, 4, 0, 9}, // 3×3, group 1's first block
		{ConvDims{Groups: 2, ICg: 20, OCg: 70, KH: 3, KW: 3, SH: 1, SW: 1}, 5, 0, 9}, // 3×3, group 1's second block
		{ConvDims{Groups: 1, ICg: 9, OCg: 32, KH: 3, KW: 3, SH: 1, SW: 1}, 0, 3, 6},  // 3×3, one kernel row
		{ConvDims{Groups: 2, ICg: 5, OCg: 3, KH: 5, KW: 3, SH: 2, SW: 3}, 1, 6, 9},   // group 1, one kernel row
		{ConvDims{Groups: 1, ICg: 16, OCg: 32, KH: 1, KW: 1, SH: 1, SW: 1}, 0, 0, 1},
	} {
		d, taps := c.d, c.d.KH*c.d.KW
		grad := make([]float32, d.Groups*d.OCg*d.ICg*taps)
		for i := range grad {
			grad[i] = float32(i%7) / 4
		}
		want := slices.Clone(grad)
		dw := make([]float32, (c.t1-c.t0)*d.ICg*NR)
		for i := range dw {
			dw[i] = float32(i + 1)
		}
		g, ob := c.blk/d.OCB(), c.blk%d.OCB()
		for t := c.t0; t < c.t1; t++ {
			for ic := 0; ic < d.ICg; ic++ {
				for j := 0; j < NR && ob*NR+j < d.OCg; j++ {
					oc := g*d.OCg + ob*NR + j
					want[(oc*d.ICg+ic)*taps+t] += dw[((t-c.t0)*d.ICg+ic)*NR+j]
				}
			}
		}
		AddConvGrad(grad, dw, d, c.blk, c.t0, c.t1)
		if !slices.Equal(grad, want) {
			t.Errorf("%+v block %d taps [%d, %d): gradient differs", d, c.blk, c.t0, c.t1)
		}
	}
}

// packConvRef and packBackDataRef are the packs as plain loops over every
// destination value (the scalar code PackGather replaced).
func packConvRef(dst, dstBias, w, b []float32, d ConvDims, scale, shift []float64) {
	NR, taps := kernels.NR, d.KH*d.KW
	row := d.ICg * taps
	for u := 0; u < d.Groups*d.OCB(); u++ {
		g, blk := u/d.OCB(), u%d.OCB()
		for t := 0; t < taps; t++ {
			for ic := 0; ic < d.ICg; ic++ {
				for j := 0; j < NR; j++ {
					var v float32
					if blk*NR+j < d.OCg {
						oc := g*d.OCg + blk*NR + j
						v = w[oc*row+ic*taps+t]
						if scale != nil {
							v = float32(float64(v) * scale[oc])
						}
					}
					dst[((u*taps+t)*d.ICg+ic)*NR+j] = v
				}
			}
		}
		for j := 0; j < NR; j++ {
			var bv float64
			if blk*NR+j < d.OCg {
				oc := g*d.OCg + blk*NR + j
				if b != nil {
					bv = float64(b[oc])
				}
				if scale != nil {
					bv = float64(bv*scale[oc]) + shift[oc]
				}
			}
			dstBias[u*NR+j] = float32(bv)
		}
	}
}

func packBackDataRef(dst, w []float32, d ConvDims) {
	NR, kk := kernels.NR, d.KH*d.KW
	off := 0
	for _, py := range Phases(d.KH, d.SH) {
		for _, px := range Phases(d.KW, d.SW) {
			n := py.T * px.T
			for u := 0; u < d.Groups*d.ICB(); u++ {
				g, ib := u/d.ICB(), u%d.ICB()
				for jy := 0; jy < py.T; jy++ {
					for jx := 0; jx < px.T; jx++ {
						ky, kx := py.R+d.SH*(py.T-1-jy), px.R+d.SW*(px.T-1-jx)
						for o := 0; o < d.OCg; o++ {
							for j := 0; j < NR; j++ {
								var v float32
								if ic := ib*NR + j; ic < d.ICg {
									v = w[((g*d.OCg+o)*d.ICg+ic)*kk+ky*d.KW+kx]
								}
								dst[off+((u*n+jy*px.T+jx)*d.OCg+o)*NR+j] = v
							}
						}
					}
				}
			}
			off += d.Groups * d.ICB() * n * d.OCg * NR
		}
	}
}

// The packs equal the plain loops bit for bit (NaN payloads, −0 and
// subnormals among the weights; stale values in dst) on AlexNet- and
// VGG-like shapes with partial blocks, on every ISA, with and without the
// batch norm fold, and through the streaming stores of the large packs.
func TestPacksMatchReference(t *testing.T) {
	specials := []uint32{0x80000000, 0x00000001, 0x807fffff, 0x7fc00001, 0xffa5a5a5, 0x7f800000}
	shapes := []ConvDims{
		{Groups: 1, ICg: 3, OCg: 64, KH: 11, KW: 11, SH: 4, SW: 4},  // AlexNet conv1
		{Groups: 2, ICg: 48, OCg: 128, KH: 5, KW: 5, SH: 1, SW: 1},  // AlexNet 2012 conv2, groups
		{Groups: 2, ICg: 3, OCg: 48, KH: 11, KW: 11, SH: 4, SW: 4},  // partial block, strided, groups
		{Groups: 1, ICg: 64, OCg: 64, KH: 3, KW: 3, SH: 1, SW: 1},   // VGG
		{Groups: 1, ICg: 256, OCg: 256, KH: 3, KW: 3, SH: 1, SW: 1}, // VGG, streamed packs
		{Groups: 1, ICg: 70, OCg: 45, KH: 3, KW: 3, SH: 2, SW: 1},   // partial blocks both ways
		{Groups: 3, ICg: 33, OCg: 1, KH: 1, KW: 1, SH: 1, SW: 1},    // one channel
		{Groups: 1, ICg: 600, OCg: 520, KH: 3, KW: 3, SH: 1, SW: 1}, // streamed, partial, ragged chunks
	}
	defer kernels.SetISA(kernels.ISA())
	for _, isa := range kernels.ISAs() {
		if err := kernels.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for k, d := range shapes {
			rng := rand.New(rand.NewPCG(uint64(k), 3))
			oc := d.Groups * d.OCg
			w := make([]float32, oc*d.ICg*d.KH*d.KW)
			for i := range w {
				if rng.IntN(50) == 0 {
					w[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
				} else {
					w[i] = float32(rng.NormFloat64())
				}
			}
			b := make([]float32, oc)
			scale, shift := make([]float64, oc), make([]float64, oc)
			for i := range b {
				b[i], scale[i], shift[i] = float32(rng.NormFloat64()), 0.5+rng.Float64(), rng.NormFloat64()
			}
			nb := d.Groups * d.OCB() * kernels.NR
			for _, fold := range []bool{false, true} {
				sc, sh := scale, shift
				if !fold {
					sc, sh = nil, nil
				}
				got, gotB := packStale(PackConvSize(d)), packStale(nb)
				want, wantB := make([]float32, len(got)), make([]float32, nb)
				PackConv(got, gotB, w, b, d, sc, sh)
				packConvRef(want, wantB, w, b, d, sc, sh)
				if i := packFirstDiff(got, want); i >= 0 {
					t.Errorf("%s %+v fold %v: PackConv[%d] = %#x, want %#x", isa, d, fold, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
				if i := packFirstDiff(gotB, wantB); i >= 0 {
					t.Errorf("%s %+v fold %v: PackConv bias[%d] = %v, want %v", isa, d, fold, i, gotB[i], wantB[i])
				}
			}
			got := packStale(PackConvBackDataSize(d))
			want := make([]float32, len(got))
			PackConvBackData(got, w, d)
			packBackDataRef(want, w, d)
			if i := packFirstDiff(got, want); i >= 0 {
				t.Errorf("%s %+v: PackConvBackData[%d] = %#x, want %#x", isa, d, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
}

// packStale returns n floats of a value no pack writes.
func packStale(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = math.Float32frombits(0x7fbadbad)
	}
	return s
}

// packFirstDiff is the first index where a and b differ in bits, or -1.
func packFirstDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}
