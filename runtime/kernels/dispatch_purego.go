//go:build !amd64 || purego

package kernels

// Without assembly every kernel is its pure-Go twin.

func convNHWC(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool) {
	convNHWCGo(out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu)
}

func convWgrad(dw []float32, x []float32, sx, sxr int, dy []float32, so, sor int, np, nrows, nc, nr int) {
	convWgradGo(dw, x, sx, sxr, dy, so, sor, np, nrows, nc, nr)
}

func linear(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	linearGo(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
}

func linearBackData(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, m, n, k int) {
	linearBackDataGo(dx, ldx, dy, ldy, w, ldw, m, n, k)
}

func linearBackWeight(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	linearBackWeightGo(dw, ldw, dy, ldy, x, ldx, m, n, k)
}

func maxPoolNHWC(out []float32, so int, in []float32, sx, sy, sc, c, kh, kw, np int) {
	maxPoolNHWCGo(out, so, in, sx, sy, sc, c, kh, kw, np)
}
