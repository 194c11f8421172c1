//go:build !amd64 || purego

package kernels

// Without assembly every kernel is its pure-Go twin.

func convNHWC(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool, _ [][]float32, _ bool) {
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

func bnSum(sum []float64, x []float32, sx, np, n int) { bnSumGo(sum, x, sx, np, n) }

func bnSumSq(sq []float64, x []float32, sx, np, n int, mean []float64) {
	bnSumSqGo(sq, x, sx, np, n, mean)
}

func bnApply(out []float32, so int, x []float32, sx, np, n int, scale, shift []float64, relu bool) {
	bnApplyGo(out, so, x, sx, np, n, scale, shift, relu)
}

func bnBackSums(sg, sgx []float64, d []float32, sd int, x []float32, sx int, out []float32, so int, np, n int, mean, invstd []float64) {
	bnBackSumsGo(sg, sgx, d, sd, x, sx, out, so, np, n, mean, invstd)
}

func bnBackData(dx []float32, sdx int, d []float32, sd int, x []float32, sx int, np, n int, mean, invstd, kc, sg, sgx []float64, cnt float64) {
	bnBackDataGo(dx, sdx, d, sd, x, sx, np, n, mean, invstd, kc, sg, sgx, cnt)
}

func bnBackDataEval(dx []float32, sdx int, d []float32, sd int, np, n int, kc []float64) {
	bnBackDataEvalGo(dx, sdx, d, sd, np, n, kc)
}

func sgdUpdate(v, g, buf []float32, lr, wd, mom float32, first, nesterov, zeroGrad bool) {
	sgdUpdateGo(v, g, buf, lr, wd, mom, first, nesterov, zeroGrad)
}

func linearBF16(y []float32, ldy int, x []float32, ldx int, w []uint16, ldw int, bias []float32, m, n, k int, relu bool, _ []float32) {
	linearBF16Go(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
}

func maxPoolNHWCArg(out []float32, so int, arg []int32, sa int, in []float32, sx, sy, sc, c, kh, kw, np int, base0, baseStep, rowW int) {
	maxPoolNHWCArgGo(out, so, arg, sa, in, sx, sy, sc, c, kh, kw, np, base0, baseStep, rowW)
}

func packGather(dst, src []float32, n, sstep, jstride, nj int) {
	packGatherGo(dst, src, n, sstep, jstride, nj)
}

func packGatherNT(dst, src []float32, n, sstep, jstride, nj int) {
	packGatherGo(dst, src, n, sstep, jstride, nj)
}

func packFence() {}

func linearChain(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool, _ []float32) {
	linearChainGo(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
}
