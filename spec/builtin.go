package spec

import (
	"embed"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
)

//go:embed *.cnn
var builtin embed.FS

// Builtin returns the names of the specs shipped in this directory ("alexnet",
// "vgg16_bn", ...), sorted.
func Builtin() []string {
	entries, _ := builtin.ReadDir(".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".cnn"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// LoadBuiltin parses the shipped spec with the given name. Its Model.File is
// "spec/NAME.cnn", the path relative to the module root.
func LoadBuiltin(name string) (*Model, error) {
	src, err := builtin.ReadFile(name + ".cnn")
	if err != nil {
		return nil, fmt.Errorf("no built-in spec %q; the built-in specs are %s", name, strings.Join(Builtin(), ", "))
	}
	return Parse(path.Join("spec", name+".cnn"), src)
}

// ParseFile reads and parses the spec file at path.
func ParseFile(path string) (*Model, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Load resolves arg as a spec file if it names an existing file or ends in ".cnn",
// and as a built-in spec name otherwise.
func Load(arg string) (*Model, error) {
	if strings.HasSuffix(arg, ".cnn") {
		return ParseFile(arg)
	}
	if _, err := os.Stat(arg); err == nil {
		return ParseFile(arg)
	}
	return LoadBuiltin(arg)
}
