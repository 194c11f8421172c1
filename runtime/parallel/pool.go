// Package parallel is the persistent worker pool generated models run their layers
// on: a fixed set of goroutines started once, woken per layer with no allocation and
// no locks in the work itself. A layer either partitions its work by worker index
// (see Span) or lets the workers claim pieces from a shared counter; either way no
// sum is split, so which thread computes which output never changes a bit.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long a worker waiting for the next task, or the caller waiting for
// the workers, spins before it parks. A model runs its layers back to back, so the
// next task almost always comes within it; parking between them costs a futex
// wake-up per worker per layer, 20–100 µs measured on a shared 2-vCPU VM whose idle
// vCPUs the host deschedules, which is 10% of AlexNet's batch-1 forward pass.
const spinFor = 200 * time.Microsecond

// Pool runs a function on a fixed number of workers. The zero value is not usable;
// use New. A Pool's Run must not be called concurrently with itself.
type Pool struct {
	n      int
	f      func(w, n int)
	epoch  atomic.Uint64 // Run count; a change tells the workers f is set
	left   atomic.Int64  // workers of the current Run still busy (the caller excluded)
	closed atomic.Bool
	// Parking: a worker (or the caller, slot 0) that stops spinning sets its
	// sleeping flag and blocks on its wake channel; whoever clears a set flag
	// owes it one token.
	sleeping []paddedFlag
	wake     []chan struct{}
	once     sync.Once
}

// paddedFlag keeps each worker's flag on its own cache line.
type paddedFlag struct {
	v atomic.Int32
	_ [60]byte
}

// New starts a pool of threads workers (at least 1). The calling goroutine is worker
// 0, so threads-1 goroutines are started.
func New(threads int) *Pool {
	if threads < 1 {
		threads = 1
	}
	p := &Pool{n: threads, sleeping: make([]paddedFlag, threads), wake: make([]chan struct{}, threads)}
	for w := range p.wake {
		p.wake[w] = make(chan struct{}, 1)
	}
	for w := 1; w < threads; w++ {
		go p.worker(w)
	}
	return p
}

func (p *Pool) worker(w int) {
	seen := uint64(0)
	for {
		p.await(w, func() bool { return p.epoch.Load() != seen })
		if p.closed.Load() {
			return
		}
		seen = p.epoch.Load()
		p.f(w, p.n)
		if p.left.Add(-1) == 0 {
			p.notify(0)
		}
	}
}

// await returns once ready() holds: it spins for spinFor, then parks slot w until
// notify(w).
func (p *Pool) await(w int, ready func() bool) {
	var start time.Time
	for i := 0; !ready(); i++ {
		if i&255 != 255 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
			continue
		}
		if time.Since(start) < spinFor {
			runtime.Gosched() // yields only to goroutines of the same process
			continue
		}
		f := &p.sleeping[w].v
		f.Store(1)
		if ready() {
			if f.Swap(0) == 0 {
				<-p.wake[w] // notify cleared the flag first: take its token
			}
			return
		}
		<-p.wake[w]
		start = time.Time{}
	}
}

// notify wakes slot w if it is parked.
func (p *Pool) notify(w int) {
	if p.sleeping[w].v.Swap(0) == 1 {
		p.wake[w] <- struct{}{}
	}
}

// Threads is the number of workers.
func (p *Pool) Threads() int { return p.n }

// Run calls f(w, n) for every worker w in [0, n) concurrently, n = Threads(), and
// returns when all calls have returned. f should be a value made once (a method
// value stored in a field), so that Run allocates nothing.
func (p *Pool) Run(f func(w, n int)) {
	if p.n == 1 {
		f(0, 1)
		return
	}
	p.f = f
	p.left.Store(int64(p.n - 1))
	p.epoch.Add(1)
	for w := 1; w < p.n; w++ {
		p.notify(w)
	}
	f(0, p.n)
	p.await(0, func() bool { return p.left.Load() == 0 })
	p.f = nil
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.once.Do(func() {
		p.closed.Store(true)
		p.epoch.Add(1)
		for w := 1; w < p.n; w++ {
			p.notify(w)
		}
	})
}

// Span splits [0, total) into n contiguous parts as evenly as possible and returns
// worker w's part [lo, hi). The first total%n workers get one item more.
func Span(total, w, n int) (lo, hi int) {
	q, r := total/n, total%n
	lo = w*q + min(w, r)
	hi = lo + q
	if w < r {
		hi++
	}
	return lo, hi
}
