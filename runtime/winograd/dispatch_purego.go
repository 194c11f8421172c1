//go:build !amd64 || purego

package winograd

// Without assembly the transforms are their pure-Go twins.

func inputTransform(v []float32, vs, vt int, in []float32, sx, sy, nt, nc int) {
	inputTransformGo(v, vs, vt, in, sx, sy, nt, nc)
}

func outputTransform(out []float32, so, sy int, m []float32, ms, mt, nt, nc int, bias []float32, relu bool) {
	outputTransformGo(out, so, sy, m, ms, mt, nt, nc, bias, relu)
}
