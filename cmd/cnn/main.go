// Command cnn runs the generated models: it checks them against the float64
// reference, benchmarks them, classifies images and trains.
//
// Usage:
//
//	cnn verify   [-model NAME|all] [-mode exact|fast] [-batch N] [-samples S] [-json]
//	cnn bench    -model NAME -batch N -threads T -mode exact|fast [-train] [-reps R] [-json]
//	cnn classify -model NAME -weights FILE [-top 5] [-batch B] [-threads T] [-json] IMAGE...
//	cnn train    [-model vgg_mnist] [-epochs E] [-batch B] [-lr X] [-threads T] [-seed S] [-out F] [-resume F] [-json]
//	cnn export   -model NAME -o FILE [-weights IN | -seed S]
//
// Run "cnn COMMAND -h" for every flag.
package main

import (
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"verify", "check generated models against the float64 reference", verifyCmd},
	{"bench", "time a model per layer and end to end", benchCmd},
	{"classify", "classify JPEG or PNG images with a model and a weight file", classifyCmd},
	{"train", "train a model (vgg_mnist on MNIST by default)", trainCmd},
	{"export", "write a model's weights as safetensors", exportCmd},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cnn runs cnngen's generated models.\n\nUsage:\n  cnn COMMAND [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cnn COMMAND -h' for a command's flags.")
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "cnn: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
