package kernels

import "math"

// PackGather fills n rows of NR float32 lanes of dst with values of src taken
// at a fixed pattern of strides: lane j of row i is src[i*sstep + j*jstride]
// for j < nj and +0 for j ≥ nj (the padding lanes of a partial block):
//
//	for i := 0; i < n; i++ {
//	    for j := 0; j < NR; j++ {
//	        dst[i*NR+j] = 0
//	        if j < nj { dst[i*NR+j] = src[i*sstep+j*jstride] }
//	    }
//	}
//
// It is the gather of the weight packs (runtime/nn's PackConv and
// PackConvBackData): a row is NR output (or input) channels of one kernel tap
// and input (or output) channel, each from its own row of the OIHW weights.
// Every variant (AVX-512, AVX2, pure Go) moves the bits unchanged (NaN
// payloads, −0 and subnormals included) and writes all n*NR values of
// dst[:n*NR], nothing else; the source values of lanes ≥ nj are not read.
// It needs 0 ≤ nj ≤ NR, n, sstep, jstride ≥ 0, len(dst) ≥ n*NR and, if n and
// nj are not 0, len(src) > (n-1)*sstep + (nj-1)*jstride; dst and src must not
// overlap.
func PackGather(dst, src []float32, n, sstep, jstride, nj int) {
	if checkPackGather("PackGather", dst, src, n, sstep, jstride, nj) {
		packGather(dst, src, n, sstep, jstride, nj)
	}
}

// PackGatherNT is PackGather, with the same results, whose stores bypass the
// caches (VMOVNTPS) when dst starts on a 64-byte boundary: for packs larger
// than the cache, which the next reader takes from memory anyway, it saves
// reading each destination line before writing it. A pack that is read again
// while still cached is better written by PackGather. The pure-Go twin, and
// a dst that is not aligned, store normally.
//
// Streaming stores are weakly ordered: the goroutine that made them must call
// PackFence after its last PackGatherNT and before it tells another
// goroutine the values are there (an SFENCE per call would cost more than
// the stores save: ~25% of a VGG layer's pack).
func PackGatherNT(dst, src []float32, n, sstep, jstride, nj int) {
	if checkPackGather("PackGatherNT", dst, src, n, sstep, jstride, nj) {
		packGatherNT(dst, src, n, sstep, jstride, nj)
	}
}

// PackFence orders the stores of the calling goroutine's earlier
// PackGatherNT calls before its later stores: call it once after a run of
// PackGatherNT and before publishing their output (closing a channel,
// sync.WaitGroup.Done, returning to a caller that hands it on). It must run
// on the ISA the PackGatherNT calls ran on (SetISA must not be called
// between them). If the Go scheduler moves the goroutine to another thread in
// between, the switch itself drains the write-combining buffers (it runs
// LOCK-prefixed instructions, which order streaming stores on x86).
func PackFence() { packFence() }

// checkPackGather panics, naming the function, on arguments PackGather does
// not take, does the calls that need no kernel (n = 0, nj = 0) and reports
// whether a kernel has work left.
func checkPackGather(fn string, dst, src []float32, n, sstep, jstride, nj int) bool {
	switch {
	case nj < 0 || nj > NR:
		panic("kernels." + fn + ": nj out of [0, NR]")
	case n < 0:
		panic("kernels." + fn + ": negative n")
	case sstep < 0:
		panic("kernels." + fn + ": negative sstep")
	case jstride < 0:
		panic("kernels." + fn + ": negative jstride")
	case n > len(dst)/NR:
		panic("kernels." + fn + ": dst too short")
	}
	if n == 0 {
		return false
	}
	if nj == 0 {
		clear(dst[:n*NR])
		return false
	}
	// The last value read is src[(n-1)*sstep + (nj-1)*jstride]; each term is
	// checked on its own first so that the sum cannot overflow.
	if (n > 1 && sstep >= len(src)) || (nj > 1 && jstride >= len(src)) ||
		(n-1)*sstep >= len(src) || (n-1)*sstep+(nj-1)*jstride >= len(src) {
		panic("kernels." + fn + ": src too short")
	}
	return true
}

// packGatherIndexOK reports whether the lane offsets j*jstride (j < nj) fit
// the assembly's signed 32-bit gather indices; if not, the pure-Go twin runs.
func packGatherIndexOK(jstride, nj int) bool {
	return (nj-1)*jstride <= math.MaxInt32
}

// packGatherGo is PackGather's pure-Go twin (n ≥ 1, 1 ≤ nj ≤ NR, lengths
// checked). It copies float32 values without arithmetic, so their bits pass
// through.
func packGatherGo(dst, src []float32, n, sstep, jstride, nj int) {
	for i := 0; i < n; i++ {
		o := dst[i*NR : (i+1)*NR]
		s := src[i*sstep:]
		for j := range o[:nj] {
			o[j] = s[j*jstride]
		}
		clear(o[nj:])
	}
}
