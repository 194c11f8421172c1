//go:build !amd64 || purego

package kernels

// convISAs lists the implementations: without assembly only the pure-Go twin.
func convISAs() []convISA {
	return []convISA{{"go", true, func() {}}}
}

func convRestoreISA() func() { return func() {} }
