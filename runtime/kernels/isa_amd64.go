//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"sync"
	"time"
)

// What the CPU has, before any SetISA.
var hasAVX512, hasAVX2 = useAVX512, useAVX2

func isa() string {
	switch {
	case useAVX512:
		return "avx512"
	case useAVX2:
		return "avx2"
	}
	return "go"
}

func isas() []string {
	var s []string
	if hasAVX512 {
		s = append(s, "avx512")
	}
	if hasAVX2 {
		s = append(s, "avx2")
	}
	return append(s, "go")
}

func setISA(name string) error {
	switch {
	case name == "avx512" && hasAVX512:
		useAVX512, useAVX2 = true, hasAVX2
	case name == "avx2" && hasAVX2:
		useAVX512, useAVX2 = false, true
	case name == "go":
		useAVX512, useAVX2 = false, false
	default:
		return fmt.Errorf("kernels: ISA %q not available on this CPU; have %v", name, isas())
	}
	return nil
}

// peakFLOPPerIter is what one iteration of the peak loops does: 24 FMAs of 16 (zmm)
// or 8 (ymm) lanes, 2 FLOP each.
func peakGFLOPS(threads int, d time.Duration) float64 {
	var loop func(int)
	var flopPerIter float64
	switch {
	case useAVX512:
		loop, flopPerIter = peakFMA_12x2_avx512, 24*16*2
	case useAVX2:
		loop, flopPerIter = peakFMA_12x2_avx2, 24*8*2
	default:
		return 0
	}
	// Calibrate the iteration count on one thread, then run every thread at once.
	n := 1 << 16
	for {
		start := time.Now()
		loop(n)
		if el := time.Since(start); el > d/8 || n > 1<<30 {
			n = int(float64(n) * float64(d) / float64(el))
			break
		}
		n *= 4
	}
	if threads < 1 {
		threads = 1
	}
	rates := make([]float64, threads)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			loop(n)
			rates[t] = float64(n) * flopPerIter / time.Since(start).Seconds()
		}()
	}
	wg.Wait()
	total := 0.0
	for _, r := range rates {
		total += r
	}
	return total / 1e9
}
