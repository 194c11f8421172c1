package weights

import (
	"archive/zip"
	"errors"
	"io"
	"path"
	"strings"
)

// parsePTH opens the zip archive torch.save writes, unpickles PREFIX/data.pkl into a
// list of tensors and checks each against its storage PREFIX/data/KEY.
func parsePTH(r io.ReaderAt, size int64, file string) (*index, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, &Error{File: file, Kind: ErrFormat, Msg: "not a PyTorch state_dict archive", Err: err}
	}
	files := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, f := range zr.File {
		files[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 && dir != "/" {
			if pkl != nil {
				return nil, formatErr(file, "", "zip archive holds both %s and %s", pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, formatErr(file, "", "zip archive has no PREFIX/data.pkl: not a file of torch.save")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if files[prefix+"constants.pkl"] != nil {
		return nil, formatErr(file, "", "a TorchScript archive (torch.jit.save), not a state_dict: save model.state_dict() with torch.save")
	}
	if f := files[prefix+"byteorder"]; f != nil {
		b, err := readEntry(f, 16)
		if err != nil {
			return nil, &Error{File: file, Kind: ErrFormat, Msg: "reading " + f.Name, Err: err}
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, formatErr(file, "", "byteorder %q: only little-endian archives are supported", clip(s))
		}
	}
	if pkl.UncompressedSize64 > maxPickle {
		return nil, formatErr(file, "", "%s is %d bytes, more than the %d a state_dict needs", pkl.Name, pkl.UncompressedSize64, maxPickle)
	}
	data, err := readEntry(pkl, maxPickle)
	if err != nil {
		return nil, &Error{File: file, Kind: ErrFormat, Msg: "reading " + pkl.Name, Err: err}
	}
	lookup := func(key string) (uint64, any, bool) {
		f := files[prefix+"data/"+key]
		if f == nil || !plausible(f, size) {
			return 0, nil, false
		}
		return f.UncompressedSize64, f, true
	}
	ts, err := unpickleStateDict(data, lookup, file)
	if err != nil {
		return nil, err
	}
	idx := &index{format: "pth"}
	for _, t := range ts {
		n, _ := numelOf(t.t.shape, t.t.st.numel) // checked by unpickleStateDict
		idx.entries = append(idx.entries, &entry{name: t.name, dtype: t.t.st.dtype, shape: t.t.shape, numel: int(n), st: t.t.st, elem: t.t.offset})
	}
	idx.decode = func(es []*entry, dst [][]float32) error { return decodePTH(es, dst, file) }
	return idx, nil
}

// plausible reports whether a zip entry's sizes can be true of a file of size bytes:
// stored entries lie inside it, deflated ones expand at most 1032 times (deflate's
// limit), so a lying header cannot make a reader allocate beyond the file's means.
func plausible(f *zip.File, size int64) bool {
	off, err := f.DataOffset()
	if err != nil || off < 0 || f.CompressedSize64 > uint64(size-off) {
		return false
	}
	switch f.Method {
	case zip.Store:
		return f.UncompressedSize64 == f.CompressedSize64
	case zip.Deflate:
		return f.UncompressedSize64/1032 <= f.CompressedSize64
	}
	return false
}

// readEntry reads a small entry whole, at most max bytes, checking its CRC.
func readEntry(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errors.New("entry too large")
	}
	return b, nil
}

// decodePTH decodes tensors from their storages, reading each storage once, whole and
// in order, so that the zip reader checks its CRC-32.
func decodePTH(es []*entry, dst [][]float32, file string) error {
	var order []*storageRef
	users := map[*storageRef][]int{}
	for i, e := range es {
		if users[e.st] == nil {
			order = append(order, e.st)
		}
		users[e.st] = append(users[e.st], i)
	}
	buf := make([]byte, chunk)
	for _, s := range order {
		f := s.file.(*zip.File)
		first := es[users[s][0]].name
		rc, err := f.Open()
		if err != nil {
			return &Error{File: file, Tensor: first, Kind: ErrFormat, Msg: "opening its storage " + f.Name, Err: err}
		}
		es64 := int64(s.dtype.Size())
		var pos int64
		for {
			n, end, err := fill(rc, buf)
			if err != nil {
				rc.Close()
				return &Error{File: file, Tensor: first, Kind: ErrFormat, Msg: "reading its storage " + f.Name, Err: err}
			}
			for _, i := range users[s] {
				e := es[i]
				a, b := e.elem*es64, (e.elem+int64(e.numel))*es64
				lo, hi := max(a, pos), min(b, pos+int64(n))
				hi = lo + (hi-lo)/es64*es64 // whole elements (they are: sizes were checked)
				if lo < hi {
					decode(dst[i][(lo-a)/es64:(hi-a)/es64], buf[lo-pos:hi-pos], s.dtype)
				}
			}
			pos += int64(n)
			if end {
				break
			}
		}
		rc.Close()
		if pos != s.numel*es64 {
			return formatErr(file, first, "truncated: its storage %s holds %d bytes, not %d", f.Name, pos, s.numel*es64)
		}
	}
	return nil
}

// fill reads into buf until it is full or r ends; end reports a clean end.
func fill(r io.Reader, buf []byte) (n int, end bool, err error) {
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}
