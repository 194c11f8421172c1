package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestSpanCoversExactlyOnce(t *testing.T) {
	for total := 0; total < 40; total++ {
		for n := 1; n < 9; n++ {
			next := 0
			for w := 0; w < n; w++ {
				lo, hi := Span(total, w, n)
				if lo != next || hi < lo {
					t.Fatalf("Span(%d, %d, %d) = [%d, %d), want start %d", total, w, n, lo, hi, next)
				}
				if d := hi - lo; d != total/n && d != total/n+1 {
					t.Fatalf("Span(%d, %d, %d) uneven: %d items", total, w, n, d)
				}
				next = hi
			}
			if next != total {
				t.Fatalf("Span(%d, ·, %d) covers [0, %d)", total, n, next)
			}
		}
	}
}

func TestRunCallsEveryWorkerOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := New(threads)
		var counts [8]atomic.Int32
		var total atomic.Int64
		f := func(w, n int) {
			if n != threads {
				t.Errorf("n = %d, want %d", n, threads)
			}
			counts[w].Add(1)
			lo, hi := Span(1000, w, n)
			for i := lo; i < hi; i++ {
				total.Add(int64(i))
			}
		}
		for rep := 0; rep < 50; rep++ {
			p.Run(f)
		}
		for w := 0; w < threads; w++ {
			if c := counts[w].Load(); c != 50 {
				t.Errorf("threads=%d: worker %d ran %d times, want 50", threads, w, c)
			}
		}
		if got := total.Load(); got != 50*999*1000/2 {
			t.Errorf("threads=%d: sum %d", threads, got)
		}
		p.Close()
	}
}

func TestRunAllocatesNothing(t *testing.T) {
	p := New(2)
	defer p.Close()
	var sink atomic.Int64
	f := func(w, n int) { sink.Add(int64(w)) }
	if a := testing.AllocsPerRun(100, func() { p.Run(f) }); a != 0 {
		t.Errorf("Run allocates %v times per call", a)
	}
}

func BenchmarkRun(b *testing.B) {
	p := New(2)
	defer p.Close()
	f := func(w, n int) {}
	for b.Loop() {
		p.Run(f)
	}
}

// Runs separated by more than spinFor find the workers (and the caller) parked;
// runs whose workers take longer than spinFor park the caller. Both must still
// run every worker exactly once per Run, and Close must stop parked workers.
func TestRunAcrossParking(t *testing.T) {
	for _, threads := range []int{2, 3} {
		p := New(threads)
		var counts [3]atomic.Int32
		slow := func(w, n int) {
			counts[w].Add(1)
			if w == n-1 {
				time.Sleep(2 * spinFor) // the caller parks waiting for this worker
			}
		}
		for rep := 0; rep < 4; rep++ {
			p.Run(slow)
			time.Sleep(2 * spinFor) // the workers park waiting for the next Run
		}
		for w := 0; w < threads; w++ {
			if c := counts[w].Load(); c != 4 {
				t.Errorf("threads=%d: worker %d ran %d times, want 4", threads, w, c)
			}
		}
		p.Close()
	}
}

// BenchmarkRunLayer runs layer-sized tasks (50 µs per worker) back to back:
// ns/op above 50,000 is what handing out a task and waiting for it costs.
func BenchmarkRunLayer(b *testing.B) {
	p := New(2)
	defer p.Close()
	f := func(w, n int) {
		for t := time.Now(); time.Since(t) < 50*time.Microsecond; {
		}
	}
	for b.Loop() {
		p.Run(f)
	}
}
