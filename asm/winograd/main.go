// Command winograd generates the transform kernels of runtime/winograd (the
// Winograd F(4×4, 3×3) convolution; runtime/winograd/winograd.go is the
// contract) for AVX-512 and AVX2 with avo: the input transform Bᵀ d B and the
// output transform Aᵀ M A + bias (+ ReLU), vectorized over channels, which are
// contiguous in NHWC. The element-wise products between them are GEMMs that
// runtime/winograd runs with kernels.ConvNHWC as 1×1 convolutions.
//
// Every kernel performs exactly the operations of the pure-Go twins
// (runtime/winograd/transform.go), one vector instruction per float32
// operation, none fused, so the results are the twins' bit for bit.
//
// The plan per kernel: per tile of the run, per vector of channels (then one
// masked vector for nc mod lanes): load the tile, transform its rows into a
// stack buffer, transform that buffer's columns, store (transform.go holds the
// 1-D transforms bt and at).
package main

//go:generate go run . -out ../../runtime/winograd/winograd_amd64.s -stubs ../../runtime/winograd/winograd_amd64_stubs.go -pkg winograd

import (
	. "github.com/mmcloughlin/avo/build"
)

func main() {
	ConstraintExpr("amd64,!purego")
	tables()
	inputTransform(avx512)
	inputTransform(avx2)
	outputTransform(avx512)
	outputTransform(avx2)
	Generate()
}
