//go:build !amd64 || purego

package kernels

func isa() string { return "go" }
