package weights

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	src := newFake(tinyParams, tinyBuffers, 1)
	data := writeBytes(t, src)
	if n := binary.LittleEndian.Uint64(data); n%8 != 0 {
		t.Errorf("header of %d bytes does not align the data to 8", n)
	}
	dst := newFake(tinyParams, tinyBuffers, 0)
	rep, err := LoadBytes(dst, data, "tiny.safetensors", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if digest(dst) != digest(src) || dst.syncs != 1 {
		t.Errorf("values differ after the round trip, or Sync called %d times", dst.syncs)
	}
	if rep.Format != "safetensors" || len(rep.Loaded) != len(tinyParams)+len(tinyBuffers) || rep.Missing != nil || rep.Skipped != nil {
		t.Errorf("report %+v", rep)
	}
	// Write is deterministic.
	if !bytes.Equal(writeBytes(t, src), data) {
		t.Error("two writes differ")
	}
	f, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)), "x")
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || f.Metadata["model"] != "fake" || len(f.Names) != 12 || f.Names[0] != "features.0.weight" {
		t.Errorf("file %+v", f)
	}
}

func TestSaveFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	src := newFake(tinyParams, tinyBuffers, 2)
	for range 2 { // a new file, then over an old one
		if err := SaveFile(src, path); err != nil {
			t.Fatal(err)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("directory holds %d files, want 1 (no temporary left)", len(es))
	}
	dst := newFake(tinyParams, tinyBuffers, 0)
	if _, err := LoadFile(dst, path, Options{}); err != nil {
		t.Fatal(err)
	}
	if digest(dst) != digest(src) {
		t.Error("values differ after SaveFile and LoadFile")
	}
	// A failed save leaves the old file and no temporary.
	bad := newFake(tinyParams, tinyBuffers, 3)
	bad.params[1].Value = bad.params[1].Value[:3]
	err := SaveFile(bad, path)
	if err == nil || !strings.Contains(err.Error(), `weights: `+path+`: tensor "features.0.bias": 3 values for shape [8]`) {
		t.Errorf("got %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("directory holds %d files after a failed save", len(es))
	}
	if _, err := LoadFile(dst, path, Options{}); err != nil || digest(dst) != digest(src) {
		t.Errorf("old file damaged by a failed save: %v", err)
	}
	if err := SaveFile(src, filepath.Join(dir, "no", "such", "dir.safetensors")); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

func TestF16(t *testing.T) {
	for h := range 1 << 16 {
		got := f16(uint16(h))
		sign, exp, mant := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch exp {
		case 0x1f:
			want = math.Inf(1)
			if mant != 0 {
				want = math.NaN()
			}
		case 0:
			want = math.Ldexp(float64(mant), -24)
		default:
			want = math.Ldexp(float64(mant|0x400), exp-25)
		}
		if sign == 1 {
			want = -want
		}
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("f16(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (sign == 1) {
			t.Fatalf("f16(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestNonStrict(t *testing.T) {
	src := newFake([]shaped{{"a", []int{2}}, {"extra", []int{3}}, {"b", []int{4}}}, []shaped{{"bn.num_batches_tracked", nil}}, 4)
	data := writeBytes(t, src)
	dst := newFake([]shaped{{"a", []int{2}}, {"b", []int{4}}, {"gone", []int{1}}}, nil, 0)
	dst.params[2].Value[0] = 42
	_, err := LoadBytes(dst, data, "f.safetensors", Options{})
	if err == nil || !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `tensor "gone": missing from the file; the file has 1 tensors the model does not: "extra"`) {
		t.Fatalf("strict: got %v", err)
	}
	rep, err := LoadBytes(dst, data, "f.safetensors", Options{NonStrict: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Loaded, []string{"a", "b"}) || !slices.Equal(rep.Missing, []string{"gone"}) ||
		!slices.Equal(rep.Skipped, []string{"extra"}) || !slices.Equal(rep.Ignored, []string{"bn.num_batches_tracked"}) {
		t.Errorf("report %+v", rep)
	}
	if dst.params[2].Value[0] != 42 || dst.params[1].Value[3] != src.params[2].Value[3] {
		t.Error("values wrong after a non-strict load")
	}
}

func TestSHA256(t *testing.T) {
	data := smallPTH(t)
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	m := smallModel()
	if _, err := LoadBytes(m, data, "s.pth", Options{SHA256: strings.ToUpper(good)}); err != nil {
		t.Fatal(err)
	}
	// Through a plain ReaderAt too (hashed by streaming).
	if _, err := Load(m, bytes.NewReader(data), int64(len(data)), "s.pth", Options{SHA256: good}); err != nil {
		t.Fatal(err)
	}
	sum[0] ^= 1
	m = smallModel()
	_, err := LoadBytes(m, data, "s.pth", Options{SHA256: hex.EncodeToString(sum[:])})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "weights: s.pth: SHA-256 is "+good+", want ") {
		t.Errorf("got %v", err)
	}
	if m.syncs != 0 {
		t.Error("model touched after a checksum error")
	}
	_, err = LoadBytes(m, data, "s.pth", Options{SHA256: "abc"})
	if err == nil || !strings.Contains(err.Error(), `Options.SHA256 "abc" is not a SHA-256 in hex`) {
		t.Errorf("got %v", err)
	}
}

// failingReader fails every read that reaches past limit.
type failingReader struct {
	r     io.ReaderAt
	limit int64
}

func (f failingReader) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.limit {
		return 0, errors.New("disk on fire")
	}
	return f.r.ReadAt(b, off)
}

// TestAtomic checks that a load failing while it decodes (after the headers were
// fine) leaves the model as it was.
func TestAtomic(t *testing.T) {
	src := newFake(tinyParams, tinyBuffers, 5)
	data := writeBytes(t, src)
	dst := newFake(tinyParams, tinyBuffers, 6)
	before := digest(dst)
	_, err := Load(dst, failingReader{bytes.NewReader(data), int64(len(data)) - 10}, int64(len(data)), "f.safetensors", Options{})
	if err == nil || !strings.Contains(err.Error(), `weights: f.safetensors: tensor "features.5.running_var": reading the data: disk on fire`) {
		t.Errorf("got %v", err)
	}
	if digest(dst) != before || dst.syncs != 0 {
		t.Error("a failed load changed the model")
	}
	// .pth: corrupt the last storage, so that its CRC fails after the others decoded.
	pth := smallPTH(t)
	i := bytes.Index(pth, []byte(f32bytes(-1, -2)))
	pth[i] ^= 1
	m := smallModel()
	_, err = LoadBytes(m, pth, "s.pth", Options{})
	if err == nil || !strings.Contains(err.Error(), `weights: s.pth: tensor "b": reading its storage archive/data/1: zip: checksum error`) {
		t.Errorf("got %v", err)
	}
	if digest(m) != digest(smallModel()) || m.syncs != 0 {
		t.Error("a failed load changed the model")
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadFile(smallModel(), filepath.Join(dir, "none.pth"), Options{})
	if err == nil || !strings.Contains(err.Error(), "none.pth: open: no such file or directory") {
		t.Errorf("got %v", err)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	os.WriteFile(empty, nil, 0o644)
	_, err = LoadFile(smallModel(), empty, Options{})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "truncated: 0 bytes") {
		t.Errorf("got %v", err)
	}
	_, err = LoadFile(smallModel(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("got %v", err)
	}
}

// TestPTHKinds loads .pth features the fixtures lack: BF16 storages, two tensors that
// are views of one storage, a scalar, _rebuild_parameter, a plain dict.
func TestPTHKinds(t *testing.T) {
	var p pk
	p.op("\x80\x02}(")
	// "a": elements 1..4 of a BF16 storage of 6 as 2×2; "s": element 5 of it, a scalar.
	p.str("a").tensor(pt{"", "BFloat16Storage", "7", 6, 1, []int{2, 2}, []int{2, 1}})
	p.str("s").tensor(pt{"", "BFloat16Storage", "7", 6, 5, nil, nil})
	p.str("h").parameter(pt{"", "HalfStorage", "x", 3, 0, []int{3}, []int{1}})
	p.op("u.")
	bf := func(vs ...float32) string {
		var b []byte
		for _, v := range vs {
			u := math.Float32bits(v) >> 16
			b = append(b, byte(u), byte(u>>8))
		}
		return string(b)
	}
	data := zipFile(t, p.Bytes(),
		[2]string{"data/7", bf(9, 1, 2, 3, 4, -0.5)},
		[2]string{"data/x", "\x00\x3c\x00\xc0\x01\x00"}) // f16 1, -2, 2^-24
	m := newFake([]shaped{{"h", []int{3}}, {"a", []int{2, 2}}}, []shaped{{"s", nil}}, 0)
	rep, err := LoadBytes(m, data, "kinds.pth", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Loaded, []string{"h", "a", "s"}) {
		t.Errorf("report %+v", rep)
	}
	if !equal32(m.params[0].Value, []float32{1, -2, 0x1p-24}) || !equal32(m.params[1].Value, []float32{1, 2, 3, 4}) || m.buffers[0].Value[0] != -0.5 {
		t.Errorf("values %v %v %v", m.params[0].Value, m.params[1].Value, m.buffers[0].Value)
	}
	f, err := ReadPTH(bytes.NewReader(data), int64(len(data)), "kinds.pth")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Names, []string{"a", "s", "h"}) || f.Tensors["a"].DType != BF16 || f.Tensors["h"].DType != F16 {
		t.Errorf("file %+v", f)
	}
}
