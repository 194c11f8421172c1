package weights

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"unsafe"

	"github.com/cnngen/cnngen/runtime"
)

// Options tunes a load. The zero value loads strictly, without a checksum.
type Options struct {
	// NonStrict loads the tensors the file and the model share and lists the rest in
	// the Report (Missing: left as they were; Skipped: not read) instead of failing.
	// A shared tensor of the wrong shape or dtype is an error all the same.
	NonStrict bool
	// SHA256, if not empty, is the expected SHA-256 of the whole file in hex: the
	// file is hashed before anything else is read, and a mismatch is ErrChecksum.
	SHA256 string
}

// Report says what a load did.
type Report struct {
	Format  string   // "safetensors" or "pth"
	Loaded  []string // the model's tensors written, params then buffers, in model order
	Missing []string // the model's tensors the file lacks, left unchanged (NonStrict only)
	Skipped []string // the file's tensors the model lacks, not read (NonStrict only)
	Ignored []string // num_batches_tracked entries the model keeps no buffer for
}

// LoadFile loads the weights of the file at path into m, then calls m.Sync. The
// format is taken from the content: a zip archive is a torch.save file, anything
// else safetensors, except that a .pth or .pt file is never read as safetensors. The
// file is mapped into memory where the platform allows it, and read
// through os.File otherwise; either way its bytes are never copied whole.
func LoadFile(m runtime.Model, path string, opt Options) (*Report, error) {
	var rep *Report
	err := withFile(path, func(src source) error {
		var err error
		rep, err = load(m, src, opt)
		return err
	})
	return rep, err
}

// Load loads weights from r, which holds size bytes, into m, then calls m.Sync.
// name names the file in errors; an extension .pth or .pt in it makes a content
// that is not a zip archive an error of that format rather than of safetensors.
func Load(m runtime.Model, r io.ReaderAt, size int64, name string, opt Options) (*Report, error) {
	return load(m, source{r: r, size: size, name: name}, opt)
}

// LoadBytes loads weights held in memory, such as a //go:embed file, into m, then
// calls m.Sync. data is only read, never retained.
func LoadBytes(m runtime.Model, data []byte, name string, opt Options) (*Report, error) {
	return load(m, source{r: bytes.NewReader(data), size: int64(len(data)), name: name, data: data}, opt)
}

// ReadFile decodes every tensor of the file at path, for tools (conversion,
// inspection). Unlike LoadFile it keeps all of them in memory at once.
func ReadFile(path string) (*File, error) {
	var f *File
	err := withFile(path, func(src source) error {
		var err error
		f, err = read(src, "")
		return err
	})
	return f, err
}

// Read decodes every tensor of a safetensors or torch.save file of size bytes,
// telling the format from the content as Load does.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	return read(source{r: r, size: size, name: name}, "")
}

// ReadSafetensors decodes every tensor of a safetensors file of size bytes.
func ReadSafetensors(r io.ReaderAt, size int64, name string) (*File, error) {
	return read(source{r: r, size: size, name: name}, "safetensors")
}

// ReadPTH decodes every tensor of a state_dict file written by torch.save (the zip
// format of PyTorch 1.6 and later).
func ReadPTH(r io.ReaderAt, size int64, name string) (*File, error) {
	return read(source{r: r, size: size, name: name}, "pth")
}

// source is a file being read.
type source struct {
	r    io.ReaderAt
	size int64
	name string
	data []byte // the whole file when it is in memory (LoadBytes, a mapped file)
}

func (s source) file() string {
	if s.name == "" {
		return "<input>"
	}
	return s.name
}

// withFile opens path and calls fn with it, mapped into memory if possible.
func withFile(path string, fn func(source) error) error {
	f, err := os.Open(path)
	if err != nil {
		return pathErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return pathErr(path, err)
	}
	if fi.IsDir() {
		return &Error{File: path, Msg: "is a directory"}
	}
	src := source{r: f, size: fi.Size(), name: path}
	data, unmap, err := mapFile(f, src.size)
	if err != nil {
		return fn(src) // not mappable (empty, a pipe, no mmap here): read through f
	}
	defer unmap()
	src.r, src.data = bytes.NewReader(data), data
	return mapped(src, fn)
}

// mapped calls fn on a mapped file, turning the fault of reading a page the file no
// longer has (it shrank meanwhile) into an error. Any other panic goes on.
func mapped(src source, fn func(source) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(interface{ Addr() uintptr })
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(src.data)))
			if !ok || f.Addr() < lo || f.Addr()-lo >= uintptr(len(src.data)) {
				panic(r)
			}
			err = &Error{File: src.file(), Msg: "the file changed while it was being read (truncated by another process?)"}
		}
	}()
	return fn(src)
}

func pathErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &Error{File: path, Msg: pe.Op, Err: pe.Err}
	}
	return &Error{File: path, Err: err}
}

// legacyMagic starts a pre-1.6 torch.save file: PROTO 2, then LONG1 of the magic number.
const legacyMagic = "\x80\x02\x8a\x0a"

// parse tells the format from the content (or takes the one asked for) and parses.
func parse(src source, format string) (*index, error) {
	file := src.file()
	var head [4]byte
	n, _ := src.r.ReadAt(head[:], 0)
	magic := string(head[:n])
	isZip := magic == "PK\x03\x04" || magic == "PK\x05\x06"
	ext := strings.ToLower(filepath.Ext(src.name))
	if format == "" {
		format = "safetensors"
		if isZip || ext == ".pth" || ext == ".pt" {
			format = "pth"
		}
	}
	if format == "pth" {
		switch {
		case magic == legacyMagic:
			return nil, formatErr(file, "", "a legacy (pre-1.6) torch.save file, which is not supported: load and save it again with PyTorch 1.6 or later")
		case !isZip:
			return nil, formatErr(file, "", "not a zip archive, as torch.save writes")
		}
		return parsePTH(src.r, src.size, file)
	}
	return parseSafetensors(src.r, src.size, file)
}

// read decodes every tensor of a file.
func read(src source, format string) (*File, error) {
	idx, err := parse(src, format)
	if err != nil {
		return nil, err
	}
	f := &File{Format: idx.format, Tensors: map[string]Tensor{}, Metadata: idx.meta}
	var es []*entry
	var dst [][]float32
	for _, e := range idx.entries {
		f.Names = append(f.Names, e.name)
		t := Tensor{DType: e.dtype, Shape: e.shape}
		if e.dtype.decodable() {
			t.Data = make([]float32, e.numel)
			es, dst = append(es, e), append(dst, t.Data)
		}
		f.Tensors[e.name] = t
	}
	if err := idx.decode(es, dst); err != nil {
		return nil, err
	}
	return f, nil
}

// isNBT reports whether name is batch norm's num_batches_tracked.
func isNBT(name string) bool {
	return name == "num_batches_tracked" || strings.HasSuffix(name, ".num_batches_tracked")
}

// load is Load: checksum, parse, match against the model, decode into scratch,
// commit, Sync.
func load(m runtime.Model, src source, opt Options) (*Report, error) {
	file := src.file()
	if opt.SHA256 != "" {
		if err := checkSHA256(src, opt.SHA256); err != nil {
			return nil, err
		}
	}
	ps := slices.Concat(m.Params(), m.Buffers())
	byName := make(map[string]int, len(ps))
	for i, p := range ps {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		if n != len(p.Value) {
			return nil, fmt.Errorf("weights: model %s: tensor %q has %d values for shape %v", m.Name(), p.Name, len(p.Value), p.Shape)
		}
		if _, dup := byName[p.Name]; dup {
			return nil, fmt.Errorf("weights: model %s: two tensors are named %q", m.Name(), p.Name)
		}
		byName[p.Name] = i
	}
	idx, err := parse(src, "")
	if err != nil {
		return nil, err
	}
	rep := &Report{Format: idx.format}
	matched := make([]*entry, len(ps))
	var unexpected []string
	for _, e := range idx.entries {
		i, ok := byName[e.name]
		if !ok {
			if isNBT(e.name) {
				rep.Ignored = append(rep.Ignored, e.name)
			} else {
				unexpected = append(unexpected, e.name)
			}
			continue
		}
		if !slices.Equal(e.shape, ps[i].Shape) {
			return nil, mismatchErr(file, e.name, "shape %v in the file, %v in the model", e.shape, ps[i].Shape)
		}
		if !e.dtype.float() && !(e.dtype == I64 && isNBT(e.name)) {
			return nil, mismatchErr(file, e.name, "dtype %s: the model's float32 tensors load from F32, F16 or BF16", e.dtype)
		}
		matched[i] = e
	}
	var missing []string
	for i, p := range ps {
		if matched[i] == nil {
			missing = append(missing, p.Name)
		}
	}
	if !opt.NonStrict && (len(missing) > 0 || len(unexpected) > 0) {
		return nil, strictErr(file, missing, unexpected, byName)
	}
	// Decode everything into scratch: nothing of the model changes before all of it
	// has been read.
	total := 0
	for _, e := range matched {
		if e != nil {
			total += e.numel
		}
	}
	scratch := make([]float32, total)
	var es []*entry
	var dst [][]float32
	var into []int
	for i, e := range matched {
		if e != nil {
			es, dst, into = append(es, e), append(dst, scratch[:e.numel:e.numel]), append(into, i)
			scratch = scratch[e.numel:]
		}
	}
	if err := idx.decode(es, dst); err != nil {
		return nil, err
	}
	for k, i := range into {
		copy(ps[i].Value, dst[k])
		rep.Loaded = append(rep.Loaded, ps[i].Name)
	}
	if err := m.Sync(); err != nil {
		return nil, &Error{File: file, Msg: "Sync after loading", Err: err}
	}
	if opt.NonStrict {
		rep.Missing, rep.Skipped = missing, unexpected
	}
	return rep, nil
}

// strictErr reports the tensors a strict load found missing or unexpected.
func strictErr(file string, missing, unexpected []string, byName map[string]int) error {
	var msg string
	var tensor string
	if len(missing) > 0 {
		tensor, msg = missing[0], "missing from the file"
		if len(missing) > 1 {
			msg += ", as are " + quoteList(missing[1:], 5)
		}
		if len(unexpected) > 0 {
			msg += fmt.Sprintf("; the file has %d tensors the model does not: %s", len(unexpected), quoteList(unexpected, 5))
		}
	} else {
		tensor, msg = unexpected[0], "in the file but not in the model"
		if len(unexpected) > 1 {
			msg += ", nor are " + quoteList(unexpected[1:], 5)
		}
	}
	prefixed := len(unexpected) > 0
	for _, n := range unexpected {
		if _, ok := byName[strings.TrimPrefix(n, "module.")]; !ok || !strings.HasPrefix(n, "module.") {
			prefixed = false
		}
	}
	if prefixed {
		msg += ` (the file's names carry DataParallel's "module." prefix: save model.module.state_dict())`
	}
	msg += "; Options.NonStrict loads what matches"
	return mismatchErr(file, tensor, "%s", msg)
}

// checkSHA256 hashes the whole file and compares with want (hex).
func checkSHA256(src source, want string) error {
	file := src.file()
	w, err := hex.DecodeString(want)
	if err != nil || len(w) != sha256.Size {
		return &Error{File: file, Msg: fmt.Sprintf("Options.SHA256 %q is not a SHA-256 in hex (64 digits)", clip(want))}
	}
	var got []byte
	if src.data != nil {
		sum := sha256.Sum256(src.data)
		got = sum[:]
	} else {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(src.r, 0, src.size), make([]byte, 1<<20)); err != nil {
			return ioErr(file, "", "hashing the file", err)
		}
		got = h.Sum(nil)
	}
	if !bytes.Equal(got, w) {
		return &Error{File: file, Kind: ErrChecksum, Msg: fmt.Sprintf("SHA-256 is %x, want %s", got, strings.ToLower(want))}
	}
	return nil
}
