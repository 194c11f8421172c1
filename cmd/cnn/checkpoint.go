package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/optim"
	"github.com/cnngen/cnngen/runtime/weights"
)

// A checkpoint is a safetensors file: the model's parameters and buffers under their
// torchvision names (so it loads into any tool that reads state_dicts, and into
// cnn classify), the SGD momentum buffers as "optim.momentum.<name>", and in the
// metadata the model, the epochs completed, the optimizer's step count and the seed.
const momentumPrefix = "optim.momentum."

func saveCheckpoint(path string, m runtime.Model, opt *optim.SGD, epochs int, seed uint64) error {
	ts := slices.Concat(m.Params(), m.Buffers())
	if buf := opt.State(); buf != nil {
		for i, p := range m.Params() {
			ts = append(ts, runtime.Param{Name: momentumPrefix + p.Name, Shape: p.Shape, Value: buf[i]})
		}
	}
	return weights.SaveTensors(path, ts, map[string]string{
		"format": "pt",
		"model":  m.Name(),
		"epochs": strconv.Itoa(epochs),
		"steps":  strconv.Itoa(opt.Steps()),
		"seed":   strconv.FormatUint(seed, 10),
	})
}

// loadCheckpoint restores a checkpoint written by saveCheckpoint for the same model
// and returns the number of epochs it had completed. Every tensor must be there with
// its shape; nothing is changed unless all of them are.
func loadCheckpoint(path string, m runtime.Model, opt *optim.SGD, seed uint64) (int, error) {
	f, err := weights.ReadFile(path)
	if err != nil {
		return 0, err
	}
	md := f.Metadata
	if md["model"] != m.Name() {
		return 0, fmt.Errorf("%s: a checkpoint of model %q, not %q", path, md["model"], m.Name())
	}
	if md["seed"] != strconv.FormatUint(seed, 10) {
		return 0, fmt.Errorf("%s: written with -seed %s; resume with the same seed (not %d) to continue the same run", path, md["seed"], seed)
	}
	epochs, err1 := strconv.Atoi(md["epochs"])
	steps, err2 := strconv.Atoi(md["steps"])
	if err1 != nil || err2 != nil || epochs < 0 || steps < 0 {
		return 0, fmt.Errorf("%s: malformed checkpoint metadata epochs=%q steps=%q", path, md["epochs"], md["steps"])
	}
	get := func(name string, shape []int) ([]float32, error) {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q missing", path, name)
		}
		if !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, the model %v", path, name, t.Shape, shape)
		}
		return t.Data, nil
	}
	targets := slices.Concat(m.Params(), m.Buffers())
	vals := make([][]float32, len(targets))
	for i, p := range targets {
		if vals[i], err = get(p.Name, p.Shape); err != nil {
			return 0, err
		}
	}
	var momentum [][]float32
	hasMomentum := false
	for name := range f.Tensors {
		hasMomentum = hasMomentum || strings.HasPrefix(name, momentumPrefix)
	}
	if hasMomentum {
		for _, p := range m.Params() {
			v, err := get(momentumPrefix+p.Name, p.Shape)
			if err != nil {
				return 0, err
			}
			momentum = append(momentum, slices.Clone(v))
		}
	}
	if err := opt.SetState(momentum, steps); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for i, p := range targets {
		copy(p.Value, vals[i])
	}
	return epochs, m.Sync()
}
