package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

// exportCmd writes a model's weights as an F32 safetensors file: those of a weight
// file (a torchvision .pth, a safetensors file in F16 or BF16, a `cnn train`
// checkpoint) or, without one, the seeded initial weights of runtime.InitTorch.
func exportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "model name (required)")
	out := fs.String("o", "", "the safetensors file to write (required)")
	in := fs.String("weights", "", "load these weights first (.pth or safetensors); without it, the model's initial weights")
	seed := fs.Uint64("seed", 1, "seed of the initial weights (without -weights)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn export -model NAME -o FILE [-weights IN | -seed S]")
		fmt.Fprintln(stderr, "Writes the model's parameters and batch-norm statistics under their torchvision names as F32\nsafetensors: converts a .pth state_dict or a checkpoint, or saves the seeded initial weights.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *model == "" || *out == "" {
		fs.Usage()
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if seedSet && *in != "" {
		fmt.Fprintln(stderr, "cnn export: -seed only applies without -weights")
		return 2
	}
	msg, err := export(*model, *in, *out, *seed)
	if err != nil {
		fmt.Fprintln(stderr, "cnn export:", err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

// export writes model's weights (loaded from in, or initialized from seed) to out
// and says what it did.
func export(model, in, out string, seed uint64) (string, error) {
	e, err := generated.Lookup(model)
	if err != nil {
		return "", err
	}
	m, err := e.New(runtime.Config{MaxBatch: 1, Threads: 1})
	if err != nil {
		return "", fmt.Errorf("%s: %v", model, err)
	}
	defer m.Close()
	from := fmt.Sprintf("initial weights, seed %d", seed)
	if in != "" {
		rep, err := loadWeights(m, in)
		if err != nil {
			return "", err
		}
		from = fmt.Sprintf("from %s (%s)", in, rep.Format)
		if out := append(rep.Ignored, rep.Skipped...); len(out) > 0 {
			from += "; left out " + list(out, 3)
		}
	} else if err := runtime.InitTorch(m, seed); err != nil {
		return "", err
	}
	if err := weights.SaveFile(m, out); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s: %s, %d tensors, %s", out, model, len(m.Params())+len(m.Buffers()), from), nil
}

// list joins the first n names and counts the rest.
func list(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
