// Command cnngen is the cnngen generator CLI: it reads architecture specs
// (spec/*.cnn) and reports on them or generates Go code from them.
//
// Usage:
//
//	cnngen info SPEC                  layer table: name, torchvision name, output shape, params, MACs
//	cnngen plan SPEC                  the generator's plan: steps, layouts, tiles, partitions, arena
//	cnngen generate -spec F -out DIR  write the model package's *_gen.go files into DIR
//
// SPEC is a path to a .cnn file or the name of a built-in spec (alexnet, vgg16_bn, ...).
// cnngen never imports the generated model packages, so a broken generated package can
// always be regenerated.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/cnngen/cnngen/gen"
	"github.com/cnngen/cnngen/spec"
)

func usage(w io.Writer) {
	fmt.Fprint(w, `cnngen generates shape-specialized Go code for convolutional networks.

Usage:
  cnngen info SPEC                   print every layer: torchvision name, output shape, params, MACs
  cnngen plan SPEC                   print the generator's plan for the spec
  cnngen generate -spec F -out DIR   generate the model package into DIR

SPEC is a .cnn file or a built-in spec name: `)
	for i, n := range spec.Builtin() {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprint(w, n)
	}
	fmt.Fprintln(w)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "info":
		return info(args[1:], stdout, stderr)
	case "plan":
		return plan(args[1:], stdout, stderr)
	case "generate":
		return generate(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "cnngen: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func info(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: cnngen info SPEC") }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	m, err := spec.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	writeInfo(stdout, m)
	return 0
}

func writeInfo(w io.Writer, m *spec.Model) {
	fmt.Fprintf(w, "net %s  input %v  (%s)\n", m.Name, m.Input, m.File)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tname\toutput\tparams\tMACs\t")
	for _, l := range m.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t\n", describe(l), l.Name, l.Out, l.NumParams(), l.MACs())
	}
	tw.Flush()
	fmt.Fprintf(w, "total params=%d macs=%d\n", m.NumParams(), m.MACs())
}

// describe renders a layer as PyTorch would construct it.
func describe(l *spec.Layer) string {
	switch l.Kind {
	case spec.Conv:
		s := fmt.Sprintf("Conv2d(%d, %d, %s, stride=%s, padding=%s", l.In.C, l.OutC, hw(l.KH, l.KW), hw(l.SH, l.SW), hw(l.PH, l.PW))
		if l.Groups != 1 {
			s += fmt.Sprintf(", groups=%d", l.Groups)
		}
		if !l.Bias {
			s += ", bias=False"
		}
		return s + ")"
	case spec.ReLU:
		return "ReLU"
	case spec.MaxPool:
		s := fmt.Sprintf("MaxPool2d(%s, stride=%s", hw(l.KH, l.KW), hw(l.SH, l.SW))
		if l.PH != 0 || l.PW != 0 {
			s += ", padding=" + hw(l.PH, l.PW)
		}
		return s + ")"
	case spec.AvgPool:
		return fmt.Sprintf("AdaptiveAvgPool2d((%d, %d))", l.Out.H, l.Out.W)
	case spec.LRN:
		return fmt.Sprintf("LocalResponseNorm(%d, alpha=%g, beta=%g, k=%g)", l.Size, l.Alpha, l.Beta, l.K)
	case spec.BatchNorm:
		return fmt.Sprintf("BatchNorm2d(%d)", l.In.C)
	case spec.Dropout:
		return fmt.Sprintf("Dropout(p=%g)", l.P)
	case spec.Flatten:
		return "Flatten"
	case spec.Linear:
		s := fmt.Sprintf("Linear(%d, %d", l.In.Size(), l.OutC)
		if !l.Bias {
			s += ", bias=False"
		}
		return s + ")"
	}
	return l.Kind.String()
}

func hw(h, w int) string {
	if h == w {
		return fmt.Sprint(h)
	}
	return fmt.Sprintf("(%d, %d)", h, w)
}

func plan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: cnngen plan SPEC") }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	m, err := spec.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	p, err := gen.Build(m, packageName(m.Name), m.File)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	p.Print(stdout)
	return 0
}

// packageName is the Go package for a net: its name without underscores, lower case.
func packageName(net string) string {
	return strings.ToLower(strings.ReplaceAll(net, "_", ""))
}

func generate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "", "the spec file (required)")
	out := fs.String("out", "", "the package directory to write (required)")
	source := fs.String("source", "", "the spec path to name in generated headers (default: -spec as given)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnngen generate -spec F -out DIR [-source NAME]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *specPath == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	m, err := spec.ParseFile(*specPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	src := *source
	if src == "" {
		src = filepath.ToSlash(*specPath)
	}
	p, err := gen.Build(m, packageName(m.Name), src)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rel, err := filepath.Rel(*out, *specPath)
	if err != nil {
		rel = *specPath
	}
	files, err := gen.Emit(p, filepath.ToSlash(rel))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, f := range files {
		if err := writeIfChanged(filepath.Join(*out, f.Name), f.Src); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

// writeIfChanged writes data to path atomically (temp file + rename), leaving an
// identical file untouched so build caches and timestamps stay valid.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
