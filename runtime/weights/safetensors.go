package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxHeader is the largest safetensors header this package reads (the reference
// implementation's limit): a larger header length is taken for a corrupt file.
const MaxHeader = 100 << 20

// entry is one tensor of a file, located and checked but not yet decoded.
type entry struct {
	name  string
	dtype DType
	shape []int
	numel int
	off   int64       // safetensors: absolute byte offset of the data
	st    *storageRef // pth: the storage holding the data
	elem  int64       // pth: offset in the storage, in elements
}

// index is a parsed file: its tensors in file order and how to decode them.
type index struct {
	format  string
	entries []*entry
	meta    map[string]string
	// decode decodes es[i], widened to float32, into dst[i] (len es[i].numel).
	decode func(es []*entry, dst [][]float32) error
}

// parseSafetensors reads and checks the header of a safetensors file of size bytes:
// every tensor's dtype, shape and offsets, and that the tensors tile the data exactly
// (no overlap, no gap, nothing after the last one).
func parseSafetensors(r io.ReaderAt, size int64, file string) (*index, error) {
	if size < 8 {
		return nil, formatErr(file, "", "truncated: %d bytes, less than the 8-byte header length a safetensors file starts with", size)
	}
	var lb [8]byte
	if err := readAt(r, lb[:], 0); err != nil {
		return nil, ioErr(file, "", "reading the header length", err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	switch {
	case n > MaxHeader:
		return nil, formatErr(file, "", "safetensors header length %d exceeds the %d-byte limit: not a safetensors file, or a corrupt one", n, MaxHeader)
	case n > uint64(size-8):
		return nil, formatErr(file, "", "truncated: the safetensors header length is %d bytes but only %d bytes follow it", n, size-8)
	case n < 2:
		return nil, formatErr(file, "", "safetensors header length %d is too short for a JSON object", n)
	}
	h := make([]byte, n)
	if err := readAt(r, h, 8); err != nil {
		return nil, ioErr(file, "", "reading the header", err)
	}
	if h[0] != '{' {
		return nil, formatErr(file, "", "safetensors header does not start with '{'")
	}
	if !utf8.Valid(h) {
		return nil, formatErr(file, "", "safetensors header is not valid UTF-8")
	}
	dataStart := 8 + int64(n)
	dataLen := size - dataStart
	idx, err := parseHeader(h, dataStart, dataLen, file)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, chunk)
	idx.decode = func(es []*entry, dst [][]float32) error {
		for i, e := range es {
			if err := readDecode(dst[i], r, e.off, e.dtype, buf); err != nil {
				return ioErr(file, e.name, "reading the data", err)
			}
		}
		return nil
	}
	return idx, nil
}

// headerEntry is one tensor's entry in the JSON header, before checking.
type headerEntry struct {
	DType   *string        `json:"dtype"`
	Shape   *[]json.Number `json:"shape"`
	Offsets *[]json.Number `json:"data_offsets"`
}

// parseHeader checks the JSON header h; the data it describes is dataLen bytes at
// dataStart.
func parseHeader(h []byte, dataStart, dataLen int64, file string) (*index, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, formatErr(file, "", "safetensors header is not a JSON object")
	}
	idx := &index{format: "safetensors"}
	type span struct {
		e          *entry
		begin, end int64
	}
	var spans []span
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, formatErr(file, "", "safetensors header is not valid JSON: %v", err)
		}
		name := t.(string) // object keys are strings
		if seen[name] {
			return nil, formatErr(file, name, "appears twice in the safetensors header")
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&idx.meta); err != nil {
				return nil, formatErr(file, "", "safetensors __metadata__ is not an object of strings: %v", err)
			}
			continue
		}
		var he headerEntry
		if err := dec.Decode(&he); err != nil {
			return nil, formatErr(file, name, "malformed safetensors header entry: %v", err)
		}
		if he.DType == nil || he.Shape == nil || he.Offsets == nil {
			return nil, formatErr(file, name, "safetensors header entry lacks dtype, shape or data_offsets")
		}
		dt := DType(*he.DType)
		es := int64(dt.Size())
		if es == 0 {
			return nil, formatErr(file, name, "unknown dtype %q", *he.DType)
		}
		shape := make([]int, len(*he.Shape))
		for i, d := range *he.Shape {
			v, err := strconv.ParseInt(string(d), 10, 64)
			if err != nil || v < 0 || v > math.MaxInt32 {
				return nil, formatErr(file, name, "malformed shape: dimension %s is not a non-negative integer", d)
			}
			shape[i] = int(v)
		}
		if len(*he.Offsets) != 2 {
			return nil, formatErr(file, name, "data_offsets must be [begin, end], not %d numbers", len(*he.Offsets))
		}
		var off [2]int64
		for i, d := range *he.Offsets {
			v, err := strconv.ParseInt(string(d), 10, 64)
			if err != nil || v < 0 {
				return nil, formatErr(file, name, "malformed data_offsets: %s is not a non-negative integer", d)
			}
			off[i] = v
		}
		begin, end := off[0], off[1]
		if begin > end {
			return nil, formatErr(file, name, "data_offsets [%d, %d] are out of order: begin after end", begin, end)
		}
		if end > dataLen {
			return nil, formatErr(file, name, "truncated: data_offsets [%d, %d] run past the %d bytes of data the file has", begin, end, dataLen)
		}
		numel, ok := numelOf(shape, min(dataLen, math.MaxInt))
		if !ok || numel*es != end-begin {
			return nil, formatErr(file, name, "shape %v of %s takes %s bytes but data_offsets [%d, %d] span %d", shape, dt, bytesOf(shape, es), begin, end, end-begin)
		}
		e := &entry{name: name, dtype: dt, shape: shape, numel: int(numel), off: dataStart + begin}
		spans = append(spans, span{e, begin, end})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, formatErr(file, "", "safetensors header is not valid JSON")
	}
	if rest := h[dec.InputOffset():]; len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, formatErr(file, "", "safetensors header has %d bytes after its JSON object", len(rest))
	}
	// The tensors must tile the data: sorted by offset, each begins where the last ended.
	slices.SortStableFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return cmpInt64(a.begin, b.begin)
		}
		return cmpInt64(a.end, b.end)
	})
	var prev span
	for i, s := range spans {
		switch {
		case i > 0 && s.begin < prev.end:
			return nil, formatErr(file, s.e.name, "data_offsets [%d, %d] overlap those of tensor %q [%d, %d]", s.begin, s.end, prev.e.name, prev.begin, prev.end)
		case i == 0 && s.begin > 0:
			return nil, formatErr(file, s.e.name, "the %d bytes of data before this tensor belong to no tensor", s.begin)
		case i > 0 && s.begin > prev.end:
			return nil, formatErr(file, s.e.name, "the %d bytes of data between tensor %q and this one belong to no tensor", s.begin-prev.end, prev.e.name)
		}
		prev = s
		idx.entries = append(idx.entries, s.e)
	}
	if prev.end != dataLen {
		return nil, formatErr(file, "", "the last %d bytes of the file belong to no tensor", dataLen-prev.end)
	}
	return idx, nil
}

// numelOf returns the number of elements of shape, and false if it exceeds limit.
func numelOf(shape []int, limit int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	for _, d := range shape {
		if n > limit/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, n <= limit
}

// bytesOf spells out the size of a tensor for a message, even when it overflows.
func bytesOf(shape []int, es int64) string {
	n := float64(es)
	for _, d := range shape {
		n *= float64(d)
	}
	if n < 1<<53 {
		return strconv.FormatInt(int64(n), 10)
	}
	return strconv.FormatFloat(n, 'g', 4, 64)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readAt fills b from r at off.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// ioErr wraps an error met while reading: a short read is a truncated file
// (ErrFormat), anything else an I/O error.
func ioErr(file, tensor, msg string, err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	e := &Error{File: file, Tensor: tensor, Msg: msg, Err: err}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		e.Kind = ErrFormat
		e.Msg = "truncated: " + msg
	}
	return e
}
