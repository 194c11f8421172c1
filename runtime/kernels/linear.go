package kernels

// Lanes is the number of interleaved partial sums of the linear-layer dot products.
const Lanes = 16

// Linear computes y = x·Wᵀ + bias for m samples and n outputs over k inputs, with W
// in torchvision's layout (n×k, row-major, row stride ldw) used in place: row i of x
// starts at x[i*ldx], y[i*ldy+j] receives output j of sample i. bias is nil for none.
//
// Linear's order (LinearBF16's too, which fast mode runs; exact mode runs its linear
// layers as LinearChain or as a GEMM, each output one FMA chain). Each output is the
// dot product of two rows that are contiguous in k, so it is summed in Lanes
// interleaved FMA chains, lane l taking k ≡ l (mod
// Lanes) in ascending order, and the lanes are combined by a fixed tree:
//
//	s[l] = +0; for k := l; k < K; k += 16 { s[l] = fma(x[i][k], W[j][k], s[l]) }
//	t8[l] = s[l] + s[l+8]     (l < 8)
//	t4[l] = t8[l] + t8[l+4]   (l < 4)
//	t2[l] = t4[l] + t4[l+2]   (l < 2)
//	y = t2[0] + t2[1]; if bias != nil { y += bias[j] }; if relu && y < 0 { y = 0 }
//
// This is the order a 16-lane vector (one zmm, or two ymm) reduces in, so AVX-512,
// AVX2 and pure Go agree bit for bit, and it does not depend on m: a sample's
// outputs are the same whatever batch it is in.
func Linear(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	if m <= 0 || n <= 0 {
		return
	}
	checkLinear("Linear", len(y), ldy, len(x), ldx, len(w), ldw, bias, m, n, k)
	linear(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
}

// checkLinear panics, naming kernel fn, unless a forward linear call's slices
// (their lengths ly, lx, lw) hold m samples × n outputs over k inputs (m, n ≥ 1).
func checkLinear(fn string, ly, ldy, lx, ldx, lw, ldw int, bias []float32, m, n, k int) {
	switch {
	case k < 1:
		panic("kernels." + fn + ": k < 1")
	case ly < (m-1)*ldy+n:
		panic("kernels." + fn + ": y too short")
	case lx < (m-1)*ldx+k:
		panic("kernels." + fn + ": x too short")
	case lw < (n-1)*ldw+k:
		panic("kernels." + fn + ": w too short")
	case bias != nil && len(bias) < n:
		panic("kernels." + fn + ": bias too short")
	}
}

// linearGo is Linear's pure-Go twin.
func linearGo(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	for i := 0; i < m; i++ {
		xi := x[i*ldx:]
		xi = xi[:k]
		for j := 0; j < n; j++ {
			wj := w[j*ldw:]
			wj = wj[:k]
			v := Dot16(xi, wj)
			if bias != nil {
				v += bias[j]
			}
			if relu && v < 0 {
				v = 0
			}
			y[i*ldy+j] = v
		}
	}
}

// Dot16 is the dot product of a and b (same length) in Linear's exact order.
func Dot16(a, b []float32) float32 {
	var s [Lanes]float32
	b = b[:len(a)]
	k := 0
	for ; k+Lanes <= len(a); k += Lanes {
		aa := (*[Lanes]float32)(a[k:])
		bb := (*[Lanes]float32)(b[k:])
		for l := range s {
			s[l] = FMA32(aa[l], bb[l], s[l])
		}
	}
	for l := 0; k+l < len(a); l++ {
		s[l] = FMA32(a[k+l], b[k+l], s[l])
	}
	for l := 0; l < 8; l++ {
		s[l] += s[l+8]
	}
	for l := 0; l < 4; l++ {
		s[l] += s[l+4]
	}
	s[0] += s[2]
	s[1] += s[3]
	return s[0] + s[1]
}

// LinearBackData computes the input gradient dx = dy·W for m samples: dx[i*ldx+c]
// for c < k, from dy (m×n, row stride ldy) and W (n×k, row stride ldw). Each element
// is one FMA chain over the outputs j in ascending order, starting from +0:
//
//	acc = +0; for j < n { acc = fma(dy[i][j], W[j][c], acc) }; dx[i][c] = acc
func LinearBackData(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, m, n, k int) {
	if m <= 0 || k <= 0 {
		return
	}
	switch {
	case n < 1:
		panic("kernels.LinearBackData: n < 1")
	case len(dx) < (m-1)*ldx+k:
		panic("kernels.LinearBackData: dx too short")
	case len(dy) < (m-1)*ldy+n:
		panic("kernels.LinearBackData: dy too short")
	case len(w) < (n-1)*ldw+k:
		panic("kernels.LinearBackData: w too short")
	}
	linearBackData(dx, ldx, dy, ldy, w, ldw, m, n, k)
}

func linearBackDataGo(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, m, n, k int) {
	for i := 0; i < m; i++ {
		d := dx[i*ldx:]
		d = d[:k]
		clear(d)
		for j := 0; j < n; j++ {
			g := dy[i*ldy+j]
			wj := w[j*ldw:]
			wj = wj[:k]
			for c := range d {
				d[c] = FMA32(g, wj[c], d[c])
			}
		}
	}
}

// LinearBackWeight accumulates the weight gradient dW += dyᵀ·x for n outputs and k
// inputs over m samples: each element's FMA chain runs from +0 over the samples in
// ascending order, and its sum is then added to dW, as PyTorch adds a batch's
// gradient to .grad:
//
//	acc = +0; for i < m { acc = fma(dy[i][j], x[i][c], acc) }; dW[j][c] += acc
//
// (Starting the chain from dW[j][c] would round differently and, with a short
// chain, wait for dW's load at every tile of the kernels.)
func LinearBackWeight(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	if m <= 0 || n <= 0 || k <= 0 {
		return
	}
	switch {
	case len(dw) < (n-1)*ldw+k:
		panic("kernels.LinearBackWeight: dw too short")
	case len(dy) < (m-1)*ldy+n:
		panic("kernels.LinearBackWeight: dy too short")
	case len(x) < (m-1)*ldx+k:
		panic("kernels.LinearBackWeight: x too short")
	}
	linearBackWeight(dw, ldw, dy, ldy, x, ldx, m, n, k)
}

func linearBackWeightGo(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	for j := 0; j < n; j++ {
		d := dw[j*ldw:]
		d = d[:k]
		for c := range d {
			var acc float32
			for i := 0; i < m; i++ {
				acc = FMA32(dy[i*ldy+j], x[i*ldx+c], acc)
			}
			d[c] += acc
		}
	}
}
