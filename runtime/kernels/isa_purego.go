//go:build !amd64 || purego

package kernels

import (
	"fmt"
	"time"
)

func isa() string    { return "go" }
func isas() []string { return []string{"go"} }

func setISA(name string) error {
	if name != "go" {
		return fmt.Errorf("kernels: ISA %q not available in this build; only go", name)
	}
	return nil
}

func peakGFLOPS(int, time.Duration) float64 { return 0 }
