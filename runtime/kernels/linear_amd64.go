//go:build amd64 && !purego

package kernels

// The assembly kernels are not generated yet (the avo kernels issue): until they
// are, amd64 runs the pure-Go twins too. Dispatch on useAVX512 / useAVX2 goes here.

func linear(y []float32, ldy int, x []float32, ldx int, w []float32, ldw int, bias []float32, m, n, k int, relu bool) {
	linearGo(y, ldy, x, ldx, w, ldw, bias, m, n, k, relu)
}

func linearBackData(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, m, n, k int) {
	linearBackDataGo(dx, ldx, dy, ldy, w, ldw, m, n, k)
}

func linearBackWeight(dw []float32, ldw int, dy []float32, ldy int, x []float32, ldx int, m, n, k int) {
	linearBackWeightGo(dw, ldw, dy, ldy, x, ldx, m, n, k)
}
