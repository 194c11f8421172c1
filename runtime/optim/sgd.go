// Package optim holds the optimizers and learning-rate schedules that train generated
// models through runtime.Model's Params: each step updates the Values from the Grads
// in place, then calls the model's Sync.
package optim

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/kernels"
)

// SGD is torch.optim.SGD: stochastic gradient descent with momentum, dampening 0,
// weight decay (L2, added to the gradient) and optional Nesterov momentum. For every
// parameter value p with gradient g, in float32 as PyTorch does, each product and
// each sum rounded on its own (kernels.SGDUpdate; never a fused multiply-add):
//
//	g = g + weightDecay·p
//	buf = g (first step) or momentum·buf + g
//	g = g + momentum·buf (Nesterov) or buf
//	p = p − lr·g
type SGD struct {
	Momentum, WeightDecay float64
	Nesterov              bool
	Threads               int // goroutines for the update; GOMAXPROCS if 0
	// ZeroGrad makes Step leave every Grad zero, so the next Backward accumulates
	// from zero and the caller need not call ZeroGrad: the update clears each
	// gradient in the pass that reads it, which costs less than a separate clear.
	ZeroGrad bool
	params   []runtime.Param
	buf      [][]float32 // momentum buffers, nil until the first step
	steps    int
}

// NewSGD returns an optimizer over the model's parameters.
func NewSGD(m runtime.Model, momentum, weightDecay float64, nesterov bool) (*SGD, error) {
	if momentum < 0 || weightDecay < 0 || math.IsNaN(momentum) || math.IsNaN(weightDecay) {
		return nil, fmt.Errorf("optim: momentum %v and weight decay %v must not be negative", momentum, weightDecay)
	}
	if nesterov && momentum == 0 {
		return nil, errors.New("optim: Nesterov momentum needs a momentum")
	}
	ps := m.Params()
	for _, p := range ps {
		if len(p.Grad) != len(p.Value) {
			return nil, fmt.Errorf("optim: parameter %s has no gradient: make the model with Config.Training", p.Name)
		}
	}
	return &SGD{Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, params: ps}, nil
}

// stepChunk is the number of values in one piece of the update: 256 KiB of each
// operand, big enough that a piece costs far more than taking it, small enough
// that the goroutines finish together.
const stepChunk = 1 << 16

// Step applies one update with learning rate lr and returns the model's Sync error.
// The update is elementwise, so it is split into pieces of stepChunk values that
// Threads goroutines (GOMAXPROCS if 0) take in turn as they finish the previous
// one; the result does not depend on the split.
func (o *SGD) Step(m runtime.Model, lr float64) error {
	if o.Momentum != 0 && o.buf == nil {
		o.buf = make([][]float32, len(o.params))
		for i, p := range o.params {
			o.buf[i] = make([]float32, len(p.Value))
		}
	}
	type piece struct{ p, lo, hi int }
	var pieces []piece
	for i, p := range o.params {
		for lo := 0; lo < len(p.Value); lo += stepChunk {
			pieces = append(pieces, piece{i, lo, min(lo+stepChunk, len(p.Value))})
		}
	}
	threads := o.Threads
	if threads <= 0 {
		threads = goruntime.GOMAXPROCS(0)
	}
	threads = max(1, min(threads, len(pieces)))
	lr32, wd, mom := float32(lr), float32(o.WeightDecay), float32(o.Momentum)
	first := o.steps == 0
	var next atomic.Int64
	work := func() {
		for {
			k := int(next.Add(1)) - 1
			if k >= len(pieces) {
				return
			}
			pc := pieces[k]
			p := o.params[pc.p]
			var buf []float32
			if o.buf != nil {
				buf = o.buf[pc.p][pc.lo:pc.hi]
			}
			kernels.SGDUpdate(p.Value[pc.lo:pc.hi], p.Grad[pc.lo:pc.hi], buf, lr32, wd, mom, first, o.Nesterov && buf != nil, o.ZeroGrad)
		}
	}
	var wg sync.WaitGroup
	for range threads - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	o.steps++
	return m.Sync()
}

// Steps is the number of updates applied.
func (o *SGD) Steps() int { return o.steps }

// State returns the momentum buffers (nil before the first step with momentum), in
// parameter order, for checkpoints.
func (o *SGD) State() [][]float32 { return o.buf }

// SetState restores momentum buffers and the step count saved from State and Steps.
func (o *SGD) SetState(buf [][]float32, steps int) error {
	if buf != nil {
		if len(buf) != len(o.params) {
			return fmt.Errorf("optim: %d momentum buffers for %d parameters", len(buf), len(o.params))
		}
		for i, b := range buf {
			if len(b) != len(o.params[i].Value) {
				return fmt.Errorf("optim: momentum buffer of %s has %d values, want %d", o.params[i].Name, len(b), len(o.params[i].Value))
			}
		}
	}
	o.buf, o.steps = buf, steps
	return nil
}

// Schedule gives the learning rate at a point of training, in epochs: 1.5 is half way
// through the second epoch, so a schedule can change the rate every step.
type Schedule interface {
	LR(epoch float64) float64
}

// StepLR is torch.optim.lr_scheduler.StepLR stepped once per epoch:
// Base·Gamma^⌊⌊epoch⌋/Every⌋.
type StepLR struct {
	Base, Gamma float64
	Every       int
}

// LR returns the learning rate at the given point (epochs from 0).
func (s StepLR) LR(epoch float64) float64 {
	if s.Every <= 0 {
		return s.Base
	}
	return s.Base * math.Pow(s.Gamma, float64(int(epoch)/s.Every))
}

// Cosine is torch.optim.lr_scheduler.CosineAnnealingLR in its closed form, stepped
// every batch: Min + (Base−Min)·(1+cos(π·epoch/Epochs))/2, reaching Min at the end of
// the last epoch.
type Cosine struct {
	Base, Min float64
	Epochs    int
}

// LR returns the learning rate at the given point (epochs from 0).
func (c Cosine) LR(epoch float64) float64 {
	if c.Epochs <= 0 {
		return c.Base
	}
	// The conversion rounds the product, so no build fuses it with the sum
	// (see scripts/check_nofma.sh): the same epoch gives the same rate everywhere.
	return c.Min + float64(float64((c.Base-c.Min)*(1+math.Cos(math.Pi*min(epoch, float64(c.Epochs))/float64(c.Epochs))))/2)
}
