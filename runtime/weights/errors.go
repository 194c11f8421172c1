package weights

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The kinds of Error, for errors.Is.
var (
	// ErrFormat: the file is not a well-formed safetensors or PyTorch state_dict file.
	ErrFormat = errors.New("malformed weight file")
	// ErrMismatch: the file is well formed but does not fit the model (a tensor
	// missing or unexpected, a wrong shape or dtype).
	ErrMismatch = errors.New("weights do not fit the model")
	// ErrChecksum: the file's SHA-256 is not the one Options.SHA256 expects.
	ErrChecksum = errors.New("SHA-256 mismatch")
)

// Error is the error every function of this package returns for a file it reads or
// writes. Its text is "weights: FILE: tensor "NAME": MESSAGE" (the tensor part only
// when one is concerned); errors.Is matches its Kind and its underlying error.
type Error struct {
	File   string // the path, or the name given to Load
	Tensor string // the tensor concerned, "" when the error is about the whole file
	Kind   error  // ErrFormat, ErrMismatch or ErrChecksum; nil for an I/O error
	Msg    string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("weights")
	if e.File != "" {
		b.WriteString(": ")
		b.WriteString(e.File)
	}
	if e.Tensor != "" {
		b.WriteString(": tensor ")
		b.WriteString(strconv.Quote(e.Tensor))
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and the underlying error.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// formatErr makes an ErrFormat error.
func formatErr(file, tensor, format string, args ...any) *Error {
	return &Error{File: file, Tensor: tensor, Kind: ErrFormat, Msg: fmt.Sprintf(format, args...)}
}

// mismatchErr makes an ErrMismatch error.
func mismatchErr(file, tensor, format string, args ...any) *Error {
	return &Error{File: file, Tensor: tensor, Kind: ErrMismatch, Msg: fmt.Sprintf(format, args...)}
}

// quoteList lists names for a message: at most max of them, then "and N more".
func quoteList(names []string, max int) string {
	var b strings.Builder
	for i, n := range names {
		if i == max {
			fmt.Fprintf(&b, " and %d more", len(names)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n))
	}
	return b.String()
}

// clip shortens a message taken from elsewhere (gopickle's may print whole values).
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
