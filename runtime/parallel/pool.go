// Package parallel is the persistent worker pool generated models run their layers
// on: a fixed set of goroutines started once, woken per layer with no allocation and
// no locks in the work itself. Each layer partitions its work statically by worker
// index (see Span), so which thread computes which output is fixed by the plan.
package parallel

import "sync"

// Pool runs a function on a fixed number of workers. The zero value is not usable;
// use New. A Pool's Run must not be called concurrently with itself.
type Pool struct {
	n     int
	start []chan func(w, n int)
	wg    sync.WaitGroup
	once  sync.Once
}

// New starts a pool of threads workers (at least 1). The calling goroutine is worker
// 0, so threads-1 goroutines are started.
func New(threads int) *Pool {
	if threads < 1 {
		threads = 1
	}
	p := &Pool{n: threads, start: make([]chan func(w, n int), threads)}
	for w := 1; w < threads; w++ {
		ch := make(chan func(w, n int))
		p.start[w] = ch
		go p.worker(w, ch)
	}
	return p
}

func (p *Pool) worker(w int, ch chan func(w, n int)) {
	for f := range ch {
		f(w, p.n)
		p.wg.Done()
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
	p.wg.Add(p.n - 1)
	for w := 1; w < p.n; w++ {
		p.start[w] <- f
	}
	f(0, p.n)
	p.wg.Wait()
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, ch := range p.start[1:] {
			close(ch)
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
