package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"

	"github.com/cnngen/cnngen/runtime"
)

// SaveFile writes m's parameters and then its buffers to path as an F32 safetensors
// file, atomically: into a temporary file in the same directory, synced, then renamed
// over path, so that path holds either the old file or the whole new one.
func SaveFile(m runtime.Model, path string) error {
	return atomicWrite(path, func(w io.Writer) error { return Write(w, m) })
}

// SaveTensors writes ts in order to path as an F32 safetensors file with the given
// metadata, atomically as SaveFile does: for checkpoints that hold more than a model
// (optimizer state, the epoch).
func SaveTensors(path string, ts []runtime.Param, metadata map[string]string) error {
	return atomicWrite(path, func(w io.Writer) error { return WriteSafetensors(w, ts, metadata) })
}

// atomicWrite writes path through a synced temporary file and a rename.
func atomicWrite(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return pathErr(path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			var we *Error
			if errors.As(err, &we) && we.File == "" {
				we.File = path
			} else if !errors.As(err, &we) {
				err = &Error{File: path, Err: err}
			}
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err = tmp.Chmod(mode); err != nil && goruntime.GOOS != "windows" {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if goruntime.GOOS != "windows" {
		d, err := os.Open(dir)
		if err != nil {
			return pathErr(path, err)
		}
		defer d.Close()
		if err := d.Sync(); err != nil {
			return pathErr(path, err)
		}
	}
	return nil
}

// Write writes m's parameters and then its buffers to w as an F32 safetensors file,
// with metadata {"format": "pt", "model": m.Name()}.
func Write(w io.Writer, m runtime.Model) error {
	md := map[string]string{"format": "pt"}
	if n := m.Name(); n != "" {
		md["model"] = n
	}
	return WriteSafetensors(w, slices.Concat(m.Params(), m.Buffers()), md)
}

// WriteSafetensors writes ts in order as an F32 safetensors file with the given
// __metadata__ (none if empty). The header lists the tensors in the same order and
// is padded with spaces to a multiple of 8 bytes, so the data is aligned; the output
// depends only on the arguments.
func WriteSafetensors(w io.Writer, ts []runtime.Param, metadata map[string]string) error {
	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		b, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return err
		}
		h.WriteString(`"__metadata__":`)
		h.Write(b)
	}
	seen := map[string]bool{}
	var off int64
	for _, t := range ts {
		n, ok := numelOf(t.Shape, math.MaxInt64/4)
		switch {
		case t.Name == "" || t.Name == "__metadata__":
			return &Error{Tensor: t.Name, Msg: "not a tensor name"}
		case seen[t.Name]:
			return &Error{Tensor: t.Name, Msg: "two tensors have this name"}
		case !ok || n != int64(len(t.Value)) || slices.ContainsFunc(t.Shape, func(d int) bool { return d < 0 }):
			return &Error{Tensor: t.Name, Msg: fmt.Sprintf("%d values for shape %v", len(t.Value), t.Shape)}
		}
		seen[t.Name] = true
		if h.Len() > 1 {
			h.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		h.Write(name)
		h.WriteString(`:{"dtype":"F32","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+4*n)
		off += 4 * n
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(h.Len()))
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	if _, err := w.Write(h.Bytes()); err != nil {
		return err
	}
	buf := make([]byte, chunk)
	for _, t := range ts {
		v := t.Value
		for len(v) > 0 {
			k := min(len(v), len(buf)/4)
			for i, x := range v[:k] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
			}
			if _, err := w.Write(buf[:4*k]); err != nil {
				return err
			}
			v = v[k:]
		}
	}
	return nil
}
