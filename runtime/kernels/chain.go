package kernels

// LinearChain computes y = x·Wᵀ + bias for m samples and n outputs over k inputs,
// with the same arguments as Linear (W in torchvision's layout, n×k row-major with
// row stride ldw, used in place; bias nil for none) but in the order of the
// convolutions and of ConvNHWC run as a GEMM: each output is one FMA chain from its
// bias over the k inputs in ascending order,
//
//	acc = bias[j] (or +0); for c < k { acc = fma(x[i][c], W[j][c], acc) }
//	if relu && acc < 0 { acc = 0 }; y[i*ldy+j] = acc
//
// so a layer gives the same bits whether it runs here or as a GEMM on a packed copy
// of its weights, on every ISA, at every batch size. The kernels read a block of
// one vector of W rows (16 on AVX-512, 8 on AVX2) one vector of inputs at a time
// and transpose it in registers, so that each lane is an output
// (runtime/kernels/chain_amd64.go, asm/linear/chain.go).
func LinearChain(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	if m <= 0 || n <= 0 {
		return
	}
	checkLinear("LinearChain", len(y), ldy, len(x), ldx, len(w), ldw, bias, m, n, k)
	linearChain(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu, nil)
}

// LinearChainBuf is LinearChain with the caller's buffer for the packed inputs
// (at least LinearChainBufLen(m, k) floats), so that it never allocates; LinearChain
// takes one from a sync.Pool, which a garbage collection may empty.
func LinearChainBuf(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool, buf []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	checkLinear("LinearChainBuf", len(y), ldy, len(x), ldx, len(w), ldw, bias, m, n, k)
	if len(buf) < LinearChainBufLen(m, k) {
		panic("kernels.LinearChainBuf: buf too short")
	}
	linearChain(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu, buf)
}

// LinearChainBufLen is the length of LinearChainBuf's buffer for m samples of k
// inputs: the kernels read the samples packed as x[c][i], except a single one.
func LinearChainBufLen(m, k int) int {
	if m <= 1 {
		return 0
	}
	return m * k
}

// linearChainGo is LinearChain's pure-Go twin.
func linearChainGo(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	for i := 0; i < m; i++ {
		xi := x[i*ldx:]
		xi = xi[:k]
		for j := 0; j < n; j++ {
			wj := w[j*ldw:]
			wj = wj[:k]
			var acc float32
			if bias != nil {
				acc = bias[j]
			}
			for c, v := range xi {
				acc = FMA32(v, wj[c], acc)
			}
			if relu && acc < 0 {
				acc = 0
			}
			y[i*ldy+j] = acc
		}
	}
}
