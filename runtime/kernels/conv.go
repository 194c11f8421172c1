package kernels

// NR is the output-channel block of the convolution kernels: packed weights and
// biases come in blocks of NR output channels (zero-padded), and one call computes
// up to NR output channels of a run of output pixels. AVX-512 holds a block in two
// zmm registers; AVX2 computes it in two passes of two ymm registers.
const NR = 32

// ConvNHWC computes np output pixels × nr ≤ NR output channels of a direct
// convolution on NHWC data, optionally followed by ReLU. It is the forward kernel of
// every convolution, and the input-gradient kernel of stride-1 convolutions (run on
// the padded output gradient with flipped, transposed weights).
//
// in points at the input value under the first output pixel's top-left tap, in a
// buffer already zero-padded: there are no bounds inside the kernel. sx is the input
// stride between consecutive output pixels (stride×C), sy between kernel rows
// (padded width×C), sc between kernel columns (C); cin channels are read at each
// tap, contiguous. w is packed [kh][kw][cin][NR], bias [NR] (nil for none); out
// receives pixel p's channel j at out[p*so+j].
//
// Exact mode's order, which every variant (AVX-512, AVX2, pure Go) follows bit for
// bit:
//
//	for p < np, j < nr:
//	    acc := bias[j]  (or +0)
//	    for ky < kh { for kx < kw { for c < cin {
//	        acc = fma(in[p*sx+ky*sy+kx*sc+c], w[((ky*kw+kx)*cin+c)*NR+j], acc)
//	    }}}
//	    if relu && acc < 0 { acc = 0 }
//	    out[p*so+j] = acc
func ConvNHWC(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool) {
	if np <= 0 || nr <= 0 {
		return
	}
	checkConv(len(out), so, len(in), sx, sy, sc, cin, kh, kw, len(w), bias, np, nr)
	convNHWC(out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu, nil, false)
}

// ConvNHWCNext is ConvNHWC, with the same results, that also asks for up to
// three ranges of memory to be brought into the core's L2 cache while it
// computes: what a later call will read (the packed weights of the next block,
// the next row's input rows) or write (its output row). The assembly kernels
// prefetch 64-byte lines at each step of their unrolled channel loop, from the
// start of the first range, then of the next, until the ranges or the call
// end: one line a step, or as many (up to 8) as it takes to cover the ranges in
// the steps the call has (a first layer's 9 channels a kernel row leave few). A
// row whose weights or input come from memory waits for their transfer;
// prefetched, they arrive under the FMAs. The pure-Go twin ignores next.
func ConvNHWCNext(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool, next ...[]float32) {
	convNHWCPrefetch("ConvNHWCNext", out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu, next, false)
}

// ConvNHWCStream is ConvNHWCNext, with the same results, that writes out with
// streaming (non-temporal) stores where it can: on AVX-512 and AVX2, for a
// whole block (nr = NR) whose out and pixel stride so (in bytes, 4*so) are
// multiples of 64 bytes. The output then goes to memory without first
// reading its lines into the cache. That pays for an output far bigger than
// the caches, written by a layer that computes little per output and read
// back only later (VGG's first layer: 12.8 MB, 27 FMAs per output); where
// it cannot stream it stores as ConvNHWCNext does.
//
// Streaming stores are weakly ordered: the goroutine that made them must call
// StoreFence after its last ConvNHWCStream and before it tells another
// goroutine the output is there.
func ConvNHWCStream(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool, next ...[]float32) {
	convNHWCPrefetch("ConvNHWCStream", out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu, next, true)
}

// convNHWCPrefetch checks the arguments of ConvNHWCNext or ConvNHWCStream (fn)
// and runs the kernel.
func convNHWCPrefetch(fn string, out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool, next [][]float32, stream bool) {
	if np <= 0 || nr <= 0 {
		return
	}
	if len(next) > 3 {
		panic("kernels." + fn + ": more than three prefetch ranges")
	}
	checkConv(len(out), so, len(in), sx, sy, sc, cin, kh, kw, len(w), bias, np, nr)
	convNHWC(out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu, next, stream)
}

// StoreFence orders the calling goroutine's earlier streaming stores
// (ConvNHWCStream, PackGatherNT) before its later stores; it is PackFence (an
// SFENCE, and nothing without AVX2, where nothing streams).
func StoreFence() { packFence() }

func checkConv(lout, so, lin, sx, sy, sc, cin, kh, kw, lw int, bias []float32, np, nr int) {
	switch {
	case nr > NR || cin < 1 || kh < 1 || kw < 1:
		panic("kernels.ConvNHWC: bad tile")
	case so < 0 || sx < 0 || sy < 0 || sc < 0 || (np > 1 && so < nr):
		panic("kernels.ConvNHWC: negative or overlapping strides")
	case lout < (np-1)*so+nr:
		panic("kernels.ConvNHWC: out too short")
	case lin < (np-1)*sx+(kh-1)*sy+(kw-1)*sc+cin:
		panic("kernels.ConvNHWC: in too short")
	case lw < kh*kw*cin*NR:
		panic("kernels.ConvNHWC: w too short")
	case bias != nil && len(bias) < NR:
		panic("kernels.ConvNHWC: bias too short")
	}
}

// convNHWCGo is ConvNHWC's pure-Go twin.
func convNHWCGo(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool) {
	var acc [NR]float32
	for p := 0; p < np; p++ {
		if bias != nil {
			copy(acc[:], bias[:NR])
		} else {
			acc = [NR]float32{}
		}
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				x := in[p*sx+ky*sy+kx*sc:]
				x = x[:cin]
				wt := w[(ky*kw+kx)*cin*NR:]
				wt = wt[:cin*NR]
				for c, xv := range x {
					wc := (*[NR]float32)(wt[c*NR:])
					for j := 0; j < nr; j++ {
						acc[j] = FMA32(xv, wc[j], acc[j])
					}
				}
			}
		}
		o := out[p*so:]
		o = o[:nr]
		for j := range o {
			v := acc[j]
			if relu && v < 0 {
				v = 0
			}
			o[j] = v
		}
	}
}

// ConvWgrad accumulates the weight gradient of one kernel tap (or of a run of
// taps whose input channels follow each other in memory, such as a kernel row's
// taps on NHWC data) over nrows rows of np output pixels: for c < nc input
// channels and j < nr ≤ NR output channels,
//
//	acc := dw[c*NR+j]
//	for r < nrows { for p < np {
//	    acc = fma(x[r*sxr+p*sx+c], dy[r*sor+p*so+j], acc)
//	}}
//	dw[c*NR+j] = acc
//
// x points at the input value under the first pixel's tap (padded buffer, stride sx
// between pixels, sxr between rows), dy at the first pixel's output gradient
// (stride so between pixels, sor between rows). The strides are any non-negative
// values: rows may overlap or interleave. Each element's FMA chain runs over the
// rows, then the pixels of a row, and calls for successive runs continue it in
// order, so a whole batch's reduction is one chain in (sample, row, column) order;
// nrows = 1 is one row (sxr and sor are then not used).
func ConvWgrad(dw []float32, x []float32, sx, sxr int, dy []float32, so, sor int, np, nrows, nc, nr int) {
	switch {
	case nr > NR:
		panic("kernels.ConvWgrad: bad tile")
	case sx < 0 || sxr < 0 || so < 0 || sor < 0:
		panic("kernels.ConvWgrad: negative strides")
	case np <= 0 || nrows <= 0 || nc <= 0 || nr <= 0:
		return
	case len(dw) < (nc-1)*NR+nr:
		panic("kernels.ConvWgrad: dw too short")
	case len(x) < (nrows-1)*sxr+(np-1)*sx+nc:
		panic("kernels.ConvWgrad: x too short")
	case len(dy) < (nrows-1)*sor+(np-1)*so+nr:
		panic("kernels.ConvWgrad: dy too short")
	}
	convWgrad(dw, x, sx, sxr, dy, so, sor, np, nrows, nc, nr)
}

// convWgradGo is ConvWgrad's pure-Go twin.
func convWgradGo(dw []float32, x []float32, sx, sxr int, dy []float32, so, sor int, np, nrows, nc, nr int) {
	for c := 0; c < nc; c++ {
		d := dw[c*NR:]
		d = d[:nr]
		for j := range d {
			acc := d[j]
			for r := 0; r < nrows; r++ {
				xr, dyr := x[r*sxr+c:], dy[r*sor+j:]
				for p := 0; p < np; p++ {
					acc = FMA32(xr[p*sx], dyr[p*so], acc)
				}
			}
			d[j] = acc
		}
	}
}
