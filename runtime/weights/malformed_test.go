package weights

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// malformedCase is one bad file and the error it must give.
type malformedCase struct {
	name string
	file string // the name passed to LoadBytes
	data []byte
	kind error  // ErrFormat or ErrMismatch
	want string // a substring of the error
}

// small is the safetensors model of the cases: "w" 2×3 and "b" 2.
const w6 = `"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}`

var data8 = strings.Repeat("\x00", 32)

func safetensorsCases(t *testing.T) []malformedCase {
	good := writeBytes(t, smallModel())
	le := func(n uint64) string {
		b := make([]byte, 8)
		for i := range b {
			b[i] = byte(n >> (8 * i))
		}
		return string(b)
	}
	return []malformedCase{
		{"empty", "e.safetensors", nil, ErrFormat,
			"weights: e.safetensors: truncated: 0 bytes, less than the 8-byte header length a safetensors file starts with"},
		{"absurd header length", "a.safetensors", []byte(le(1<<60) + "{}"), ErrFormat,
			"weights: a.safetensors: safetensors header length 1152921504606846976 exceeds the 104857600-byte limit: not a safetensors file, or a corrupt one"},
		{"header longer than file", "h.safetensors", []byte(le(1000) + `{"w":{}}`), ErrFormat,
			"weights: h.safetensors: truncated: the safetensors header length is 1000 bytes but only 8 bytes follow it"},
		{"truncated data", "t.safetensors", good[:len(good)-5], ErrFormat,
			`weights: t.safetensors: tensor "b": truncated: data_offsets [24, 32] run past the 27 bytes of data the file has`},
		{"overlap", "o.safetensors", safetensors(`{`+w6+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`, data8[:24]), ErrFormat,
			`weights: o.safetensors: tensor "b": data_offsets [16, 24] overlap those of tensor "w" [0, 24]`},
		{"out of order", "r.safetensors", safetensors(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[32,24]}}`, data8), ErrFormat,
			`weights: r.safetensors: tensor "b": data_offsets [32, 24] are out of order: begin after end`},
		{"gap", "g.safetensors", safetensors(`{`+w6+`,"b":{"dtype":"F32","shape":[1],"data_offsets":[28,32]}}`, data8), ErrFormat,
			`weights: g.safetensors: tensor "b": the 4 bytes of data between tensor "w" and this one belong to no tensor`},
		{"trailing data", "d.safetensors", safetensors(`{`+w6+`}`, data8), ErrFormat,
			"weights: d.safetensors: the last 8 bytes of the file belong to no tensor"},
		{"size disagrees with shape", "s.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}`, data8[:24]), ErrFormat,
			`weights: s.safetensors: tensor "w": shape [2 4] of F32 takes 32 bytes but data_offsets [0, 24] span 24`},
		{"huge shape", "s.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,24]}}`, data8[:24]), ErrFormat,
			`shape [2147483647 2147483647 2147483647] of F32 takes 3.961e+28 bytes but data_offsets [0, 24] span 24`},
		{"unknown dtype", "u.safetensors", safetensors(`{"w":{"dtype":"F33","shape":[2,3],"data_offsets":[0,24]}}`, data8[:24]), ErrFormat,
			`weights: u.safetensors: tensor "w": unknown dtype "F33"`},
		{"duplicate name", "2.safetensors", safetensors(`{`+w6+`,`+w6+`}`, data8[:24]), ErrFormat,
			`weights: 2.safetensors: tensor "w": appears twice in the safetensors header`},
		{"not an object", "n.safetensors", safetensors(`[1, 2]  `, ""), ErrFormat,
			"weights: n.safetensors: safetensors header does not start with '{'"},
		{"bad JSON", "j.safetensors", safetensors(`{"w":{"dtype":"F32",,}}`, ""), ErrFormat,
			`weights: j.safetensors: tensor "w": malformed safetensors header entry: invalid character ','`},
		{"unterminated JSON", "j.safetensors", safetensors(`{"w":{"dtype":"F32"}`, ""), ErrFormat,
			`weights: j.safetensors: tensor "w": safetensors header entry lacks dtype, shape or data_offsets`},
		{"junk after JSON", "j.safetensors", safetensors(`{}  x`, ""), ErrFormat,
			`weights: j.safetensors: safetensors header has 3 bytes after its JSON object`},
		{"negative dimension", "n.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}}`, data8[:24]), ErrFormat,
			`weights: n.safetensors: tensor "w": malformed shape: dimension -2 is not a non-negative integer`},
		{"fractional offset", "n.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,2.4e1]}}`, data8[:24]), ErrFormat,
			`weights: n.safetensors: tensor "w": malformed data_offsets: 2.4e1 is not a non-negative integer`},
		{"three offsets", "n.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24,24]}}`, data8[:24]), ErrFormat,
			`weights: n.safetensors: tensor "w": data_offsets must be [begin, end], not 3 numbers`},
		{"invalid UTF-8", "8.safetensors", safetensors("{\"w\xff\":1}", ""), ErrFormat,
			"weights: 8.safetensors: safetensors header is not valid UTF-8"},
		{"bad metadata", "m.safetensors", safetensors(`{"__metadata__":{"a":1}}`, ""), ErrFormat,
			"weights: m.safetensors: safetensors __metadata__ is not an object of strings"},
		// Files that are well formed but do not fit the model.
		{"missing tensor", "x.safetensors", safetensors(`{`+w6+`}`, data8[:24]), ErrMismatch,
			`weights: x.safetensors: tensor "b": missing from the file; Options.NonStrict loads what matches`},
		{"unexpected tensor", "x.safetensors", safetensors(`{`+w6+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},"c":{"dtype":"F32","shape":[],"data_offsets":[32,36]}}`, data8+"\x00\x00\x00\x00"), ErrMismatch,
			`weights: x.safetensors: tensor "c": in the file but not in the model; Options.NonStrict loads what matches`},
		{"module. prefix", "x.safetensors", safetensors(`{"module.w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"module.b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}`, data8), ErrMismatch,
			`weights: x.safetensors: tensor "w": missing from the file, as are "b"; the file has 2 tensors the model does not: "module.w", "module.b" (the file's names carry DataParallel's "module." prefix: save model.module.state_dict())`},
		{"wrong shape", "x.safetensors", safetensors(`{"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}`, data8), ErrMismatch,
			`weights: x.safetensors: tensor "w": shape [3 2] in the file, [2 3] in the model`},
		{"wrong dtype", "x.safetensors", safetensors(`{"w":{"dtype":"I32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}`, data8), ErrMismatch,
			`weights: x.safetensors: tensor "w": dtype I32: the model's float32 tensors load from F32, F16 or BF16`},
		{"F64", "x.safetensors", safetensors(`{"w":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]},"b":{"dtype":"F32","shape":[2],"data_offsets":[48,56]}}`, data8+data8[:24]), ErrMismatch,
			`weights: x.safetensors: tensor "w": dtype F64: the model's float32 tensors load from F32, F16 or BF16`},
	}
}

func pthCases(t *testing.T) []malformedCase {
	good := smallPTH(t)
	w := pt{"w", "FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1}}
	b := pt{"b", "FloatStorage", "1", 2, 0, []int{2}, []int{1}}
	storages := [][2]string{{"data/0", f32bytes(1, 2, 3, 4, 5, 6)}, {"data/1", f32bytes(-1, -2)}}
	withPickle := func(p []byte) []byte { return zipFile(t, p, storages...) }
	mod := func(f func(*pt)) []byte {
		w := w
		f(&w)
		return withPickle(stateDict(w, b))
	}
	crc := bytes.Clone(good)
	crc[bytes.Index(crc, []byte(f32bytes(1, 2)))] ^= 0x80
	var p pk
	var q pk
	return []malformedCase{
		{"not a zip", "x.pth", []byte("not a zip file at all"), ErrFormat,
			"weights: x.pth: not a zip archive, as torch.save writes"},
		{"legacy format", "x.pt", []byte(legacyMagic + "l\xfc\x9cF\xf9 j\xa8P\x19."), ErrFormat,
			"weights: x.pt: a legacy (pre-1.6) torch.save file, which is not supported: load and save it again with PyTorch 1.6 or later"},
		{"truncated zip", "x.pth", good[:len(good)/2], ErrFormat,
			"weights: x.pth: not a PyTorch state_dict archive: zip: not a valid zip file"},
		{"no data.pkl", "x.pth", noPickle(t), ErrFormat,
			"weights: x.pth: zip archive has no PREFIX/data.pkl: not a file of torch.save"},
		{"CRC error", "x.pth", crc, ErrFormat,
			`weights: x.pth: tensor "w": reading its storage archive/data/0: zip: checksum error`},
		{"TorchScript", "x.pth", zipFile(t, stateDict(w, b), append(storages, [2]string{"constants.pkl", "\x80\x02)."})...), ErrFormat,
			"weights: x.pth: a TorchScript archive (torch.jit.save), not a state_dict: save model.state_dict() with torch.save"},
		{"big-endian", "x.pth", zipFile(t, stateDict(w, b), append(storages, [2]string{"byteorder", "big"})...), ErrFormat,
			`weights: x.pth: byteorder "big": only little-endian archives are supported`},
		{"forbidden class", "x.pth", withPickle(p.op("\x80\x02").global("os", "system").str("echo hi").op("\x85R.").Bytes()), ErrFormat,
			"weights: x.pth: data.pkl names class os.system, which a state_dict does not need (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.{Float,Half,BFloat16,Long}Storage are allowed; nothing is executed); if the file holds a whole pickled model, save model.state_dict() instead"},
		{"class via STACK_GLOBAL", "x.pth", withPickle(q.op("\x80\x04").str("builtins").str("eval").op("\x93").str("1").op("\x85R.").Bytes()), ErrFormat,
			"weights: x.pth: data.pkl names class builtins.eval, which a state_dict does not need"},
		{"__builtin__ via STACK_GLOBAL", "x.pth", withPickle([]byte("\x80\x04\x8c\x0b__builtin__\x8c\x06object\x93.")), ErrFormat,
			"weights: x.pth: data.pkl names class __builtin__.*, which a state_dict does not need"},
		{"copy_reg GLOBAL", "x.pth", withPickle([]byte("\x80\x02ccopy_reg\n_reconstructor\n.")), ErrFormat,
			"weights: x.pth: data.pkl names class copy_reg._reconstructor, which a state_dict does not need"},
		{"DoubleStorage", "x.pth", mod(func(w *pt) { w.class = "DoubleStorage" }), ErrFormat,
			"weights: x.pth: data.pkl names class torch.DoubleStorage, which a state_dict does not need"},
		{"not a dict", "x.pth", withPickle([]byte("\x80\x02]K\x01a.")), ErrFormat,
			"weights: x.pth: data.pkl holds a list, not a state_dict (a dict of tensors)"},
		{"checkpoint", "x.pth", withPickle(checkpoint(stateDict(w, b))), ErrFormat,
			`weights: x.pth: tensor "model": holds a dict, not a tensor: a training checkpoint? Save the model's state_dict itself`},
		{"value not a tensor", "x.pth", withPickle([]byte("\x80\x02}X\x01\x00\x00\x00wK\x05s.")), ErrFormat,
			`weights: x.pth: tensor "w": holds a int, not a tensor`},
		{"missing storage", "x.pth", zipFile(t, stateDict(w, b), storages[0]), ErrFormat,
			"weights: x.pth: data.pkl: storage data/1 is missing from the archive"},
		{"storage size", "x.pth", zipFile(t, stateDict(w, b), storages[0], [2]string{"data/1", f32bytes(1, 2, 3)}), ErrFormat,
			"weights: x.pth: data.pkl: storage data/1 holds 12 bytes, not the 2 elements of 4 bytes its persistent id says"},
		{"view past storage", "x.pth", mod(func(w *pt) { w.offset = 1 }), ErrFormat,
			`weights: x.pth: tensor "w": elements [1, 7) run past its storage data/0 of 6`},
		{"non-contiguous", "x.pth", mod(func(w *pt) { w.stride = []int{1, 2} }), ErrFormat,
			`weights: x.pth: tensor "w": stride [1 2] for shape [2 3] is not contiguous; save tensor.contiguous()`},
		{"shape beyond storage", "x.pth", mod(func(w *pt) { w.shape = []int{1 << 20, 1 << 20}; w.stride = []int{1 << 20, 1} }), ErrFormat,
			`weights: x.pth: tensor "w": shape [1048576 1048576] has more elements than its storage data/0 (6)`},
		{"huge BINBYTES", "x.pth", withPickle([]byte("\x80\x02B\xff\xff\xff\x7f.")), ErrFormat,
			"weights: x.pth: data.pkl: truncated: opcode at offset 2 needs 2147483647 bytes, 1 are left"},
		{"huge FRAME", "x.pth", withPickle([]byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f.")), ErrFormat,
			"weights: x.pth: data.pkl: truncated: opcode at offset 2 needs 9223372036854775807 bytes"},
		{"unknown opcode", "x.pth", withPickle([]byte("\x80\x02\xff.")), ErrFormat,
			"weights: x.pth: data.pkl: opcode 0xff at offset 2 is not one a state_dict uses"},
		{"deep MARKs", "x.pth", withPickle([]byte("\x80\x02" + strings.Repeat("(", 300) + ".")), ErrFormat,
			"weights: x.pth: data.pkl: MARKs nested deeper than 256"},
		{"no STOP", "x.pth", withPickle([]byte("\x80\x02}")), ErrFormat,
			"weights: x.pth: data.pkl: truncated: no STOP opcode"},
		{"odd SETITEMS (gopickle panics)", "x.pth", withPickle([]byte("\x80\x02}(K\x01u.")), ErrFormat,
			"weights: x.pth: data.pkl: malformed pickle (runtime error: index out of range"},
		{"empty LONG1", "x.pth", withPickle([]byte("\x80\x02\x8a\x00.")), ErrFormat,
			"weights: x.pth: data.pkl: LONG1 of 0 bytes at offset 2"},
		{"wrong rebuild arity", "x.pth", withPickle([]byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.")), ErrFormat,
			"weights: x.pth: data.pkl: _rebuild_tensor_v2 takes 6 or 7 arguments, got 0"},
		{"pth wrong shape", "x.pth", zipFile(t, stateDict(pt{"w", "FloatStorage", "0", 6, 0, []int{3, 2}, []int{2, 1}}, b), storages...), ErrMismatch,
			`weights: x.pth: tensor "w": shape [3 2] in the file, [2 3] in the model`},
		{"pth wrong dtype", "x.pth", zipFile(t, stateDict(pt{"w", "LongStorage", "0", 6, 0, []int{2, 3}, []int{3, 1}}, b), [2]string{"data/0", strings.Repeat("\x00", 48)}, storages[1]), ErrMismatch,
			`weights: x.pth: tensor "w": dtype I64: the model's float32 tensors load from F32, F16 or BF16`},
		{"pth missing", "x.pth", zipFile(t, stateDict(w), storages[0]), ErrMismatch,
			`weights: x.pth: tensor "b": missing from the file`},
	}
}

func TestMalformed(t *testing.T) {
	cases := append(safetensorsCases(t), pthCases(t)...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := smallModel()
			for i := range m.params {
				for j := range m.params[i].Value {
					m.params[i].Value[j] = 7
				}
			}
			before := digest(m)
			rep, err := LoadBytes(m, c.data, c.file, Options{})
			if err == nil {
				t.Fatalf("loaded: %+v", rep)
			}
			var we *Error
			if !errors.As(err, &we) || !errors.Is(err, c.kind) {
				t.Errorf("error %v is not an *Error of kind %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
			if digest(m) != before || m.syncs != 0 {
				t.Error("the model changed")
			}
			// The tools' reader gives the same error for a malformed file.
			if c.kind == ErrFormat {
				if _, err2 := Read(bytes.NewReader(c.data), int64(len(c.data)), c.file); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("Read: %v", err2)
				}
			}
		})
	}
}

// TestGood checks the cases' baseline: the valid small files load.
func TestGood(t *testing.T) {
	for _, data := range [][]byte{smallPTH(t), safetensors(`{`+w6+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}`, f32bytes(1, 2, 3, 4, 5, 6, -1, -2))} {
		m := smallModel()
		rep, err := LoadBytes(m, data, "", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := append(m.params[0].Value, m.params[1].Value...); !equal32(got, []float32{1, 2, 3, 4, 5, 6, -1, -2}) || len(rep.Loaded) != 2 {
			t.Errorf("%s: values %v, report %+v", rep.Format, got, rep)
		}
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// noPickle is a zip archive without data.pkl.
func noPickle(t *testing.T) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("archive/data/0")
	f.Write([]byte("1234"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkpoint wraps a state_dict pickle as {"model": state_dict}.
func checkpoint(sd []byte) []byte {
	var p pk
	p.op("\x80\x02}").str("model")
	p.Write(sd[2 : len(sd)-1]) // without PROTO and STOP
	return p.op("s.").Bytes()
}
