//go:build amd64 && !purego

package kernels

// The assembly kernels are not generated yet (the avo kernels issue): until they
// are, amd64 runs the pure-Go twins too. Dispatch on useAVX512 / useAVX2 goes here.

func convNHWC(out []float32, so int, in []float32, sx, sy, sc, cin, kh, kw int, w, bias []float32, np, nr int, relu bool) {
	convNHWCGo(out, so, in, sx, sy, sc, cin, kh, kw, w, bias, np, nr, relu)
}

func convWgrad(dw []float32, x []float32, sx int, dy []float32, so int, np, nc, nr int) {
	convWgradGo(dw, x, sx, dy, so, np, nc, nr)
}
