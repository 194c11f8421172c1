package spec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a problem in a spec file, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Limits that keep a malformed or hostile spec from exhausting memory in inference or
// in the code generated from it.
const (
	maxDim    = 1 << 16 // any channel count, spatial size, kernel, stride or padding
	maxLayers = 4096
	maxSize   = 1 << 31 // values in one sample's activation, or in one weight tensor
)

// token is one whitespace-separated word of a line, with its 1-based column.
type token struct {
	text string
	col  int
}

type line struct {
	num    int
	indent bool // the line starts with a space or tab
	toks   []token
}

// Parse parses and validates a spec. filename is used in error messages and in
// Model.File. The returned error, if any, is an *Error.
func Parse(filename string, src []byte) (*Model, error) {
	p := &parser{file: filename}
	m, err := p.parse(src)
	if err != nil {
		return nil, err
	}
	return m, nil
}

type parser struct {
	file string
}

func (p *parser) errf(lineNum, col int, format string, args ...any) error {
	return &Error{Pos{p.file, lineNum, col}, fmt.Sprintf(format, args...)}
}

func (p *parser) pos(l line, t token) Pos { return Pos{p.file, l.num, t.col} }

// split cuts src into lines of tokens, dropping comments and blank lines.
func (p *parser) split(src []byte) ([]line, error) {
	var lines []line
	for i, raw := range bytes.Split(src, []byte("\n")) {
		num := i + 1
		if !utf8.Valid(raw) {
			return nil, p.errf(num, 1, "invalid UTF-8")
		}
		s := strings.TrimSuffix(string(raw), "\r")
		if j := strings.IndexByte(s, '#'); j >= 0 {
			s = s[:j]
		}
		var l line
		l.num = num
		l.indent = len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
		col := 1
		for k := 0; k < len(s); {
			r, size := utf8.DecodeRuneInString(s[k:])
			if r == ' ' || r == '\t' {
				k += size
				col++
				continue
			}
			start, startCol := k, col
			for k < len(s) {
				r, size = utf8.DecodeRuneInString(s[k:])
				if r == ' ' || r == '\t' {
					break
				}
				k += size
				col++
			}
			l.toks = append(l.toks, token{s[start:k], startCol})
		}
		if len(l.toks) > 0 {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

func (p *parser) parse(src []byte) (*Model, error) {
	lines, err := p.split(src)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, p.errf(1, 1, "empty spec: expected 'net NAME' and 'input C H W' followed by layers")
	}
	m := &Model{File: p.file}
	var (
		haveNet, haveInput bool
		section            string // current section, "" at top level
		sectionIdx         int
		sectionLine        line
		sectionEmpty       bool
		names              = map[string]Pos{}
	)
	closeSection := func() error {
		if section != "" && sectionEmpty {
			return p.errf(sectionLine.num, sectionLine.toks[0].col, "section %q has no layers; expected indented layer lines after it", section)
		}
		section = ""
		return nil
	}
	for _, l := range lines {
		t0 := l.toks[0]
		word := t0.text
		switch {
		case word == "net" && !l.indent:
			if haveNet {
				return nil, p.errf(l.num, t0.col, "duplicate 'net' line")
			}
			if len(l.toks) != 2 {
				return nil, p.errf(l.num, t0.col, "net: expected 'net NAME'")
			}
			if !isIdent(l.toks[1].text) {
				return nil, p.errf(l.num, l.toks[1].col, "net: malformed name %q; expected letters, digits and '_', starting with a letter", l.toks[1].text)
			}
			m.Name = l.toks[1].text
			haveNet = true
			continue
		case word == "input" && !l.indent:
			if !haveNet {
				return nil, p.errf(l.num, t0.col, "expected 'net NAME' before 'input'")
			}
			if haveInput {
				return nil, p.errf(l.num, t0.col, "duplicate 'input' line")
			}
			if len(l.toks) != 4 {
				return nil, p.errf(l.num, t0.col, "input: expected 'input C H W' (channels, height, width)")
			}
			var dims [3]int
			for i := range dims {
				v, err := p.posInt(l, l.toks[1+i], "input")
				if err != nil {
					return nil, err
				}
				dims[i] = v
			}
			m.Input = Shape{C: dims[0], H: dims[1], W: dims[2]}
			haveInput = true
			continue
		}
		if !haveNet {
			return nil, p.errf(l.num, t0.col, "expected 'net NAME' as the first line, found %q", word)
		}
		if !haveInput {
			return nil, p.errf(l.num, t0.col, "expected 'input C H W' before the layers, found %q", word)
		}
		_, isLayer := layerKeywords[word]
		if !l.indent && !isLayer {
			// A section header.
			if len(l.toks) != 1 {
				return nil, p.errf(l.num, t0.col, "unknown layer %q; expected one of %s, or a section name alone on its line", word, keywordList())
			}
			if !isIdent(word) {
				return nil, p.errf(l.num, t0.col, "malformed section name %q; expected letters, digits and '_', starting with a letter", word)
			}
			if err := closeSection(); err != nil {
				return nil, err
			}
			if prev, dup := names[word]; dup {
				return nil, p.errf(l.num, t0.col, "duplicate name %q (first used at %s)", word, prev)
			}
			names[word] = p.pos(l, t0)
			section, sectionIdx, sectionLine, sectionEmpty = word, 0, l, true
			continue
		}
		if !isLayer {
			return nil, p.errf(l.num, t0.col, "unknown layer %q; expected one of %s", word, keywordList())
		}
		if !l.indent {
			if err := closeSection(); err != nil {
				return nil, err
			}
		} else if section == "" {
			return nil, p.errf(l.num, t0.col, "indented layer %q outside a section; expected a section name (like 'features') on a line of its own before it", word)
		}
		layers, err := p.layerLine(l)
		if err != nil {
			return nil, err
		}
		for _, ly := range layers {
			if section != "" {
				ly.Name = fmt.Sprintf("%s.%d", section, sectionIdx)
				sectionIdx++
				sectionEmpty = false
			} else {
				ly.Name = ly.Kind.String()
				if prev, dup := names[ly.Name]; dup {
					return nil, p.errf(l.num, t0.col, "duplicate name %q (first used at %s); a top-level layer is named by its keyword, so put repeated layers in a section", ly.Name, prev)
				}
				names[ly.Name] = ly.Pos
			}
			m.Layers = append(m.Layers, ly)
			if len(m.Layers) > maxLayers {
				return nil, p.errf(l.num, t0.col, "too many layers (more than %d)", maxLayers)
			}
		}
	}
	if err := closeSection(); err != nil {
		return nil, err
	}
	last := lines[len(lines)-1]
	if !haveNet {
		return nil, p.errf(last.num, 1, "missing 'net NAME' line")
	}
	if !haveInput {
		return nil, p.errf(last.num, 1, "missing 'input C H W' line")
	}
	if len(m.Layers) == 0 {
		return nil, p.errf(last.num, 1, "the spec has no layers")
	}
	if err := p.infer(m); err != nil {
		return nil, err
	}
	return m, nil
}

var layerKeywords = map[string]Kind{
	"conv": Conv, "relu": ReLU, "maxpool": MaxPool, "avgpool": AvgPool, "lrn": LRN,
	"batchnorm": BatchNorm, "dropout": Dropout, "flatten": Flatten, "linear": Linear,
	"vgg": 0,
}

func keywordList() string {
	return "conv, relu, maxpool, avgpool, lrn, batchnorm, dropout, flatten, linear, vgg"
}

func isIdent(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// option is a parsed "nameVALUE" or "name=VALUE" token.
type option struct {
	name, value string
	tok         token
	valueCol    int
}

func splitOption(t token) option {
	i := 0
	for i < len(t.text) && (t.text[i] >= 'a' && t.text[i] <= 'z' || t.text[i] >= 'A' && t.text[i] <= 'Z') {
		i++
	}
	o := option{name: t.text[:i], value: t.text[i:], tok: t, valueCol: t.col + i}
	if strings.HasPrefix(o.value, "=") {
		o.value = o.value[1:]
		o.valueCol++
	}
	return o
}

// layerLine parses one layer line; "vgg" expands to several layers.
func (p *parser) layerLine(l line) ([]*Layer, error) {
	t0 := l.toks[0]
	kw := t0.text
	if kw == "vgg" {
		return p.vgg(l)
	}
	ly := &Layer{Kind: layerKeywords[kw], Pos: p.pos(l, t0)}
	args := l.toks[1:]
	// Leading positional numbers.
	var nums []token
	for len(args) > 0 && startsNumeric(args[0].text) {
		nums = append(nums, args[0])
		args = args[1:]
	}
	opts := map[string]option{}
	for _, a := range args {
		o := splitOption(a)
		if o.name == "" {
			return nil, p.errf(l.num, a.col, "%s: unexpected %q; numbers come first, then options like %s", kw, a.text, optionHelp(ly.Kind))
		}
		if _, ok := allowedOptions[ly.Kind][o.name]; !ok {
			return nil, p.errf(l.num, a.col, "%s: unknown option %q; expected %s", kw, o.name, optionHelp(ly.Kind))
		}
		if prev, dup := opts[o.name]; dup {
			return nil, p.errf(l.num, a.col, "%s: option %q given twice (first at column %d)", kw, o.name, prev.tok.col)
		}
		opts[o.name] = o
	}
	flag := func(name string) (bool, error) {
		o, ok := opts[name]
		if ok && o.value != "" {
			return false, p.errf(l.num, o.valueCol, "%s: option %q takes no value", kw, name)
		}
		return ok, nil
	}
	// pair reads an option given as N or HxW.
	pair := func(name string, def [2]int, min int) ([2]int, error) {
		o, ok := opts[name]
		if !ok {
			return def, nil
		}
		return p.pairValue(l, kw, o, min)
	}
	real := func(name string, def float64) (float64, error) {
		o, ok := opts[name]
		if !ok {
			return def, nil
		}
		if o.value == "" {
			return 0, p.errf(l.num, o.valueCol, "%s: option %q needs a value, e.g. %s%s", kw, name, name, "0.5")
		}
		v, err := strconv.ParseFloat(o.value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, p.errf(l.num, o.valueCol, "%s: malformed number %q for %q; expected a finite decimal number", kw, o.value, name)
		}
		return v, nil
	}
	wantNums := func(min, max int, what string) error {
		if len(nums) < min {
			return p.errf(l.num, t0.col+len(kw), "%s: missing number; expected %s", kw, what)
		}
		if len(nums) > max {
			return p.errf(l.num, nums[max].col, "%s: unexpected number %q; expected %s", kw, nums[max].text, what)
		}
		return nil
	}
	var err error
	switch ly.Kind {
	case Conv:
		if err = wantNums(1, 2, "'conv [IN] OUT k<K> ...'"); err != nil {
			return nil, err
		}
		if ly.OutC, err = p.posInt(l, nums[len(nums)-1], kw); err != nil {
			return nil, err
		}
		if len(nums) == 2 {
			if ly.In.C, err = p.posInt(l, nums[0], kw); err != nil {
				return nil, err
			}
		}
		if _, ok := opts["k"]; !ok {
			return nil, p.errf(l.num, t0.col+len(kw), "conv: missing kernel size; expected an option like k3 or k1x7")
		}
		k, err := pair("k", [2]int{}, 1)
		if err != nil {
			return nil, err
		}
		s, err := pair("s", [2]int{1, 1}, 1)
		if err != nil {
			return nil, err
		}
		pd, err := pair("p", [2]int{0, 0}, 0)
		if err != nil {
			return nil, err
		}
		ly.KH, ly.KW, ly.SH, ly.SW, ly.PH, ly.PW = k[0], k[1], s[0], s[1], pd[0], pd[1]
		ly.Groups = 1
		if o, ok := opts["g"]; ok {
			if ly.Groups, err = p.optInt(l, kw, o, 1); err != nil {
				return nil, err
			}
		}
		nobias, err := flag("nobias")
		if err != nil {
			return nil, err
		}
		ly.Bias = !nobias
	case Linear:
		if err = wantNums(1, 2, "'linear [IN] OUT'"); err != nil {
			return nil, err
		}
		if ly.OutC, err = p.posInt(l, nums[len(nums)-1], kw); err != nil {
			return nil, err
		}
		if len(nums) == 2 {
			if ly.In.C, err = p.posInt(l, nums[0], kw); err != nil {
				return nil, err
			}
		}
		nobias, err := flag("nobias")
		if err != nil {
			return nil, err
		}
		ly.Bias = !nobias
	case MaxPool:
		if err = wantNums(0, 0, "options only: 'maxpool k<K> [s<S>] [p<P>]'"); err != nil {
			return nil, err
		}
		if _, ok := opts["k"]; !ok {
			return nil, p.errf(l.num, t0.col+len(kw), "maxpool: missing kernel size; expected an option like k2 or k3")
		}
		k, err := pair("k", [2]int{}, 1)
		if err != nil {
			return nil, err
		}
		s, err := pair("s", k, 1)
		if err != nil {
			return nil, err
		}
		pd, err := pair("p", [2]int{0, 0}, 0)
		if err != nil {
			return nil, err
		}
		if pd[0] > k[0]/2 || pd[1] > k[1]/2 {
			o := opts["p"]
			return nil, p.errf(l.num, o.valueCol, "maxpool: padding %dx%d is more than half the kernel %dx%d (PyTorch rejects it)", pd[0], pd[1], k[0], k[1])
		}
		ly.KH, ly.KW, ly.SH, ly.SW, ly.PH, ly.PW = k[0], k[1], s[0], s[1], pd[0], pd[1]
	case AvgPool:
		if err = wantNums(1, 2, "'avgpool H [W]' (the adaptive output size)"); err != nil {
			return nil, err
		}
		h, err := p.posInt(l, nums[0], kw)
		if err != nil {
			return nil, err
		}
		w := h
		if len(nums) == 2 {
			if w, err = p.posInt(l, nums[1], kw); err != nil {
				return nil, err
			}
		}
		ly.Out = Shape{H: h, W: w}
	case LRN:
		if err = wantNums(1, 1, "'lrn SIZE [alpha<A>] [beta<B>] [k<K>]'"); err != nil {
			return nil, err
		}
		if ly.Size, err = p.posInt(l, nums[0], kw); err != nil {
			return nil, err
		}
		if ly.Alpha, err = real("alpha", 1e-4); err != nil {
			return nil, err
		}
		if ly.Beta, err = real("beta", 0.75); err != nil {
			return nil, err
		}
		if ly.K, err = real("k", 1); err != nil {
			return nil, err
		}
		if ly.K <= 0 {
			o := opts["k"]
			return nil, p.errf(l.num, o.valueCol, "lrn: k must be positive, got %v", ly.K)
		}
		if ly.Alpha < 0 {
			o := opts["alpha"]
			return nil, p.errf(l.num, o.valueCol, "lrn: alpha must not be negative, got %v", ly.Alpha)
		}
	case BatchNorm:
		if err = wantNums(0, 0, "options only: 'batchnorm [eps<E>] [momentum<M>]'"); err != nil {
			return nil, err
		}
		if ly.Eps, err = real("eps", 1e-5); err != nil {
			return nil, err
		}
		if ly.Momentum, err = real("momentum", 0.1); err != nil {
			return nil, err
		}
		if ly.Eps <= 0 {
			o := opts["eps"]
			return nil, p.errf(l.num, o.valueCol, "batchnorm: eps must be positive, got %v", ly.Eps)
		}
		if ly.Momentum < 0 || ly.Momentum > 1 {
			o := opts["momentum"]
			return nil, p.errf(l.num, o.valueCol, "batchnorm: momentum must be in [0, 1], got %v", ly.Momentum)
		}
	case Dropout:
		if err = wantNums(0, 1, "'dropout [P]' with 0 ≤ P < 1"); err != nil {
			return nil, err
		}
		ly.P = 0.5
		if len(nums) == 1 {
			v, err := strconv.ParseFloat(nums[0].text, 64)
			if err != nil || math.IsNaN(v) {
				return nil, p.errf(l.num, nums[0].col, "dropout: malformed number %q; expected a probability like 0.5", nums[0].text)
			}
			if v < 0 || v >= 1 {
				return nil, p.errf(l.num, nums[0].col, "dropout: probability %v out of range; expected 0 ≤ P < 1", v)
			}
			ly.P = v
		}
	case ReLU, Flatten:
		if err = wantNums(0, 0, "no arguments"); err != nil {
			return nil, err
		}
	}
	return []*Layer{ly}, nil
}

var allowedOptions = map[Kind]map[string]struct{}{
	Conv:      {"k": {}, "s": {}, "p": {}, "g": {}, "nobias": {}},
	Linear:    {"nobias": {}},
	MaxPool:   {"k": {}, "s": {}, "p": {}},
	AvgPool:   {},
	LRN:       {"alpha": {}, "beta": {}, "k": {}},
	BatchNorm: {"eps": {}, "momentum": {}},
	Dropout:   {},
	ReLU:      {},
	Flatten:   {},
}

func optionHelp(k Kind) string {
	switch k {
	case Conv:
		return "k<K>, s<S>, p<P>, g<G>, nobias"
	case Linear:
		return "nobias"
	case MaxPool:
		return "k<K>, s<S>, p<P>"
	case LRN:
		return "alpha<A>, beta<B>, k<K>"
	case BatchNorm:
		return "eps<E>, momentum<M>"
	}
	return "no options"
}

func startsNumeric(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '.' || s[0] == '-' || s[0] == '+')
}

// posInt parses a positive integer token.
func (p *parser) posInt(l line, t token, what string) (int, error) {
	return p.intValue(l, what, t.text, t.col, 1)
}

func (p *parser) optInt(l line, kw string, o option, min int) (int, error) {
	if o.value == "" {
		return 0, p.errf(l.num, o.valueCol, "%s: option %q needs a value, e.g. %s2", kw, o.name, o.name)
	}
	return p.intValue(l, kw, o.value, o.valueCol, min)
}

func (p *parser) intValue(l line, what, s string, col, min int) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, p.errf(l.num, col, "%s: number %q too large; expected at most %d", what, s, maxDim)
		}
		return 0, p.errf(l.num, col, "%s: malformed number %q; expected an integer", what, s)
	}
	if v < min {
		return 0, p.errf(l.num, col, "%s: %d out of range; expected an integer ≥ %d", what, v, min)
	}
	if v > maxDim {
		return 0, p.errf(l.num, col, "%s: number %q too large; expected at most %d", what, s, maxDim)
	}
	return v, nil
}

func (p *parser) pairValue(l line, kw string, o option, min int) ([2]int, error) {
	if o.value == "" {
		return [2]int{}, p.errf(l.num, o.valueCol, "%s: option %q needs a value, e.g. %s3 or %s1x7", kw, o.name, o.name, o.name)
	}
	a, b, two := strings.Cut(o.value, "x")
	if _, err := strconv.Atoi(a); err != nil && !two && !errors.Is(err, strconv.ErrRange) {
		return [2]int{}, p.errf(l.num, o.valueCol, "%s: malformed number %q for %q; expected an integer or HxW", kw, o.value, o.name)
	}
	h, err := p.intValue(l, kw+" "+o.name, a, o.valueCol, min)
	if err != nil {
		return [2]int{}, err
	}
	if !two {
		return [2]int{h, h}, nil
	}
	w, err := p.intValue(l, kw+" "+o.name, b, o.valueCol+len(a)+1, min)
	if err != nil {
		return [2]int{}, err
	}
	return [2]int{h, w}, nil
}

// vgg expands torchvision's make_layers(cfg, batch_norm).
func (p *parser) vgg(l line) ([]*Layer, error) {
	args := l.toks[1:]
	bn := false
	if n := len(args); n > 0 && args[n-1].text == "batchnorm" {
		bn = true
		args = args[:n-1]
	}
	if len(args) == 0 {
		return nil, p.errf(l.num, l.toks[0].col+3, "vgg: missing configuration; expected channel counts and M, e.g. 'vgg 64 M 128 M'")
	}
	var out []*Layer
	for _, a := range args {
		pos := p.pos(l, a)
		if a.text == "M" {
			out = append(out, &Layer{Kind: MaxPool, Pos: pos, KH: 2, KW: 2, SH: 2, SW: 2})
			continue
		}
		if !startsNumeric(a.text) {
			if a.text == "batchnorm" {
				return nil, p.errf(l.num, a.col, "vgg: 'batchnorm' must come last, after the configuration list")
			}
			return nil, p.errf(l.num, a.col, "vgg: unexpected %q; expected a channel count, M, or a final 'batchnorm'", a.text)
		}
		c, err := p.posInt(l, a, "vgg")
		if err != nil {
			return nil, err
		}
		out = append(out, &Layer{Kind: Conv, Pos: pos, OutC: c, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, Groups: 1, Bias: true})
		if bn {
			out = append(out, &Layer{Kind: BatchNorm, Pos: pos, Eps: 1e-5, Momentum: 0.1})
		}
		out = append(out, &Layer{Kind: ReLU, Pos: pos})
	}
	return out, nil
}

// infer threads shapes through the layers, inserts the implicit flatten, and checks
// every layer against its input.
func (p *parser) infer(m *Model) error {
	in := m.Input
	if in.Size() > maxSize {
		return &Error{Pos{p.file, 1, 1}, fmt.Sprintf("input %v has more than %d values", in, maxSize)}
	}
	m.Layers = implyFlatten(m.Layers)
	for _, ly := range m.Layers {
		fail := func(format string, args ...any) error {
			return &Error{ly.Pos, ly.Kind.String() + ": " + fmt.Sprintf(format, args...)}
		}
		if in.Flat && ly.Kind != Linear && ly.Kind != ReLU && ly.Kind != Dropout && ly.Kind != Flatten {
			return fail("input is a flat vector of %d features; %s needs a C×H×W input", in.C, ly.Kind)
		}
		declared := ly.In.C
		ly.In = in
		switch ly.Kind {
		case Conv:
			if declared != 0 && declared != in.C {
				return fail("input has %d channels but the layer declares %d", in.C, declared)
			}
			if in.C%ly.Groups != 0 {
				return fail("input channels %d not divisible by groups %d", in.C, ly.Groups)
			}
			if ly.OutC%ly.Groups != 0 {
				return fail("output channels %d not divisible by groups %d", ly.OutC, ly.Groups)
			}
			oh := (in.H+2*ly.PH-ly.KH)/ly.SH + 1
			ow := (in.W+2*ly.PW-ly.KW)/ly.SW + 1
			if in.H+2*ly.PH < ly.KH || in.W+2*ly.PW < ly.KW || oh < 1 || ow < 1 {
				return fail("kernel %dx%d with padding %dx%d does not fit the %dx%d input; the output would be empty", ly.KH, ly.KW, ly.PH, ly.PW, in.H, in.W)
			}
			ly.Out = Shape{C: ly.OutC, H: oh, W: ow}
			if w := int64(ly.OutC) * int64(in.C/ly.Groups) * int64(ly.KH*ly.KW); w > maxSize {
				return fail("weight tensor of %d values is too large", w)
			}
		case MaxPool:
			oh := (in.H+2*ly.PH-ly.KH)/ly.SH + 1
			ow := (in.W+2*ly.PW-ly.KW)/ly.SW + 1
			if in.H+2*ly.PH < ly.KH || in.W+2*ly.PW < ly.KW || oh < 1 || ow < 1 {
				return fail("kernel %dx%d does not fit the %dx%d input; the output would be empty", ly.KH, ly.KW, in.H, in.W)
			}
			ly.Out = Shape{C: in.C, H: oh, W: ow}
		case AvgPool:
			ly.Out = Shape{C: in.C, H: ly.Out.H, W: ly.Out.W}
		case ReLU, Dropout, LRN, BatchNorm:
			ly.Out = in
		case Flatten:
			ly.Out = Shape{C: in.Size(), H: 1, W: 1, Flat: true}
		case Linear:
			if declared != 0 && declared != in.Size() {
				return fail("input has %d features but the layer declares %d", in.Size(), declared)
			}
			ly.Out = Shape{C: ly.OutC, H: 1, W: 1, Flat: true}
			if w := int64(ly.OutC) * int64(in.Size()); w > maxSize {
				return fail("weight tensor of %d×%d values is too large", ly.OutC, in.Size())
			}
		}
		if int64(ly.Out.C)*int64(ly.Out.H)*int64(ly.Out.W) > maxSize {
			return fail("output %v has more than %d values", ly.Out, maxSize)
		}
		in = ly.Out
	}
	return nil
}

// implyFlatten inserts torch.flatten(x, 1) where torchvision's forward has it: before
// the first linear layer unless a flatten precedes it, and before the dropout and
// ReLU layers that directly precede that linear layer in its section (AlexNet's
// classifier starts with a dropout that sees the flattened vector).
func implyFlatten(layers []*Layer) []*Layer {
	at := -1
	for i, ly := range layers {
		if ly.Kind == Flatten {
			return layers
		}
		if ly.Kind == Linear {
			at = i
			break
		}
	}
	if at < 0 {
		return layers
	}
	section := func(name string) string {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			return name[:i]
		}
		return name
	}
	for at > 0 {
		prev := layers[at-1]
		if (prev.Kind != Dropout && prev.Kind != ReLU) || section(prev.Name) != section(layers[at].Name) || !strings.Contains(prev.Name, ".") {
			break
		}
		at--
	}
	out := make([]*Layer, 0, len(layers)+1)
	out = append(out, layers[:at]...)
	out = append(out, &Layer{Kind: Flatten, Name: "flatten"})
	return append(out, layers[at:]...)
}
