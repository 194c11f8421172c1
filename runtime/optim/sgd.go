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

	"github.com/cnngen/cnngen/runtime"
)

// SGD is torch.optim.SGD: stochastic gradient descent with momentum, dampening 0,
// weight decay (L2, added to the gradient) and optional Nesterov momentum. For every
// parameter value p with gradient g, in float32 as PyTorch does:
//
//	g = g + weightDecay·p
//	buf = g (first step) or momentum·buf + g
//	g = g + momentum·buf (Nesterov) or buf
//	p = p − lr·g
type SGD struct {
	Momentum, WeightDecay float64
	Nesterov              bool
	Threads               int // goroutines for the update; GOMAXPROCS if 0
	params                []runtime.Param
	buf                   [][]float32 // momentum buffers, nil until the first step
	steps                 int
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

// Step applies one update with learning rate lr and returns the model's Sync error.
// The update is elementwise, so it is split over Threads goroutines (GOMAXPROCS if 0)
// in chunks; the result does not depend on the split.
func (o *SGD) Step(m runtime.Model, lr float64) error {
	if o.Momentum != 0 && o.buf == nil {
		o.buf = make([][]float32, len(o.params))
		for i, p := range o.params {
			o.buf[i] = make([]float32, len(p.Value))
		}
	}
	const chunk = 1 << 16
	type piece struct{ p, lo, hi int }
	var pieces []piece
	for i, p := range o.params {
		for lo := 0; lo < len(p.Value); lo += chunk {
			pieces = append(pieces, piece{i, lo, min(lo+chunk, len(p.Value))})
		}
	}
	threads := o.Threads
	if threads <= 0 {
		threads = goruntime.GOMAXPROCS(0)
	}
	threads = max(1, min(threads, len(pieces)))
	first := o.steps == 0
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := t; k < len(pieces); k += threads {
				pc := pieces[k]
				var buf []float32
				if o.buf != nil {
					buf = o.buf[pc.p][pc.lo:pc.hi]
				}
				o.update(o.params[pc.p].Value[pc.lo:pc.hi], o.params[pc.p].Grad[pc.lo:pc.hi], buf, float32(lr), first)
			}
		}()
	}
	wg.Wait()
	o.steps++
	return m.Sync()
}

// update applies the rule to one run of values.
func (o *SGD) update(v, g, buf []float32, lr32 float32, first bool) {
	wd, mom := float32(o.WeightDecay), float32(o.Momentum)
	g = g[:len(v)]
	for k := range v {
		d := g[k]
		if wd != 0 {
			d += wd * v[k]
		}
		if buf != nil {
			if first {
				buf[k] = d
			} else {
				buf[k] = mom*buf[k] + d
			}
			if o.Nesterov {
				d += mom * buf[k]
			} else {
				d = buf[k]
			}
		}
		v[k] -= lr32 * d
	}
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
	return c.Min + (c.Base-c.Min)*(1+math.Cos(math.Pi*min(epoch, float64(c.Epochs))/float64(c.Epochs)))/2
}
