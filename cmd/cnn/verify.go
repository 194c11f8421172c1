package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
	"github.com/cnngen/cnngen/verify"
)

// verifyCmd runs verify.Compare for one model or all: an inference instance in
// evaluation mode, and a training instance in evaluation and training mode with
// gradients.
func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "all", "model name, or all")
	mode := fs.String("mode", "exact", "numeric mode: exact or fast")
	batch := fs.Int("batch", 2, "samples per check")
	seed := fs.Uint64("seed", 1, "seed of the weights, inputs and output gradients")
	threads := fs.Int("threads", 2, "worker threads")
	asJSON := fs.Bool("json", false, "print one JSON report per check")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn verify [-model NAME|all] [-mode exact|fast] [-batch N] [-seed S] [-threads T] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	md, err := runtime.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "cnn verify:", err)
		return 2
	}
	if *batch < 1 {
		fmt.Fprintln(stderr, "cnn verify: -batch must be at least 1")
		return 2
	}
	entries := generated.All
	if *model != "all" {
		e, err := generated.Lookup(*model)
		if err != nil {
			fmt.Fprintln(stderr, "cnn verify:", err)
			return 2
		}
		entries = []generated.Entry{e}
	}
	failed := false
	enc := json.NewEncoder(stdout)
	for _, e := range entries {
		sm, err := spec.LoadBuiltin(e.Name)
		if err != nil {
			fmt.Fprintln(stderr, "cnn verify:", err)
			return 1
		}
		checks := []struct {
			cfg runtime.Config
			opt verify.Options
		}{
			{runtime.Config{MaxBatch: *batch, Threads: *threads, Mode: md}, verify.Options{Batch: *batch, Seed: *seed}},
			{runtime.Config{MaxBatch: *batch, Threads: *threads, Mode: md, Training: true, Seed: *seed}, verify.Options{Batch: *batch, Seed: *seed, Backward: true}},
			{runtime.Config{MaxBatch: *batch, Threads: *threads, Mode: md, Training: true, Seed: *seed}, verify.Options{Batch: *batch, Seed: *seed, Backward: true, Train: true}},
		}
		for _, c := range checks {
			m, err := e.New(c.cfg)
			if err != nil {
				fmt.Fprintf(stderr, "cnn verify: %s: %v\n", e.Name, err)
				return 1
			}
			rep, err := verify.Compare(m, sm, c.opt)
			m.Close()
			if err != nil {
				fmt.Fprintf(stderr, "cnn verify: %s: %v\n", e.Name, err)
				failed = true
				continue
			}
			failed = failed || !rep.Pass
			if *asJSON {
				enc.Encode(rep)
			} else {
				kind := "inference instance"
				if c.cfg.Training {
					kind = "training instance"
				}
				fmt.Fprintf(stdout, "%s (%s, %s mode)\n", e.Name, kind, md)
				rep.Write(stdout)
				fmt.Fprintln(stdout)
			}
		}
	}
	if failed {
		fmt.Fprintln(stderr, "cnn verify: FAIL")
		return 1
	}
	return 0
}
