package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// Limits on a state_dict's pickle. A real one takes about 100 bytes and nesting 4 per
// tensor; the limits bound what a hostile pickle can make gopickle allocate.
const (
	maxPickle    = 4 << 20 // bytes of data.pkl
	maxMarkDepth = 256     // open MARKs
	maxLine      = 4096    // bytes of a newline-terminated argument
	maxLong      = 64      // bytes of a LONG1/LONG4 integer
)

// allowedClasses are the only globals a state_dict pickle may name, with what the
// unpickler makes of them (collections.OrderedDict is gopickle's own).
var allowedClasses = map[string]any{
	"collections.OrderedDict":         nil,
	"torch._utils._rebuild_tensor_v2": rebuildTensor{},
	"torch._utils._rebuild_parameter": rebuildParameter{},
	"torch.FloatStorage":              &storageType{F32},
	"torch.HalfStorage":               &storageType{F16},
	"torch.BFloat16Storage":           &storageType{BF16},
	"torch.LongStorage":               &storageType{I64},
}

// classError is a global the pickle names but a state_dict does not need.
type classError struct{ class string }

func (e *classError) Error() string {
	msg := fmt.Sprintf("data.pkl names class %s, which a state_dict does not need (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.{Float,Half,BFloat16,Long}Storage are allowed; nothing is executed)", e.class)
	if !strings.HasPrefix(e.class, "torch.") && !strings.HasPrefix(e.class, "collections.") {
		msg += "; if the file holds a whole pickled model, save model.state_dict() instead"
	}
	return msg
}

// findClass is the unpickler's hook for GLOBAL, INST and STACK_GLOBAL: it allows the
// classes of a state_dict and nothing else.
func findClass(module, name string) (any, error) {
	if v := allowedClasses[module+"."+name]; v != nil {
		return v, nil
	}
	return nil, &classError{module + "." + name}
}

// storageType is torch.FloatStorage and its kin, as a persistent id names them.
type storageType struct{ dtype DType }

// storageRef is one storage of the archive: PREFIX/data/KEY.
type storageRef struct {
	key   string
	dtype DType
	numel int64
	file  any // *zip.File, or whatever the lookup gave
}

// tensorRef is what torch._utils._rebuild_tensor_v2 makes: a view of a storage.
type tensorRef struct {
	st     *storageRef
	offset int64
	shape  []int
	stride []int
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 takes 6 or 7 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: argument 1 is a %s, not a storage", pyType(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset is not a non-negative int")
	}
	shape, ok1 := intTuple(args[2])
	stride, ok2 := intTuple(args[3])
	if !ok1 || !ok2 || len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size and stride are not tuples of non-negative ints of one length")
	}
	return &tensorRef{st: st, offset: int64(off), shape: shape, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks): the parameter's tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_rebuild_parameter takes 3 arguments, got %d", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument 1 is a %s, not a tensor", pyType(args[0]))
	}
	return t, nil
}

func intTuple(v any) ([]int, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int, t.Len())
	for i := range out {
		d, ok := t.Get(i).(int)
		if !ok || d < 0 || int64(d) > 1<<40 {
			return nil, false
		}
		out[i] = d
	}
	return out, true
}

// pyType names the Python type of an unpickled value for a message.
func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *types.Tuple:
		return "tuple"
	case *types.List:
		return "list"
	case *types.Dict:
		return "dict"
	case *types.OrderedDict:
		return "OrderedDict"
	case *tensorRef:
		return "tensor"
	case *storageRef:
		return "storage"
	case *storageType:
		return "storage class"
	}
	return fmt.Sprintf("%T", v)
}

// storageLookup finds PREFIX/data/KEY: its size in bytes and a handle for reading it.
type storageLookup func(key string) (size uint64, file any, ok bool)

// namedTensor is one entry of an unpickled state_dict.
type namedTensor struct {
	name string
	t    *tensorRef
}

// unpickleStateDict runs data.pkl through gopickle, after scanPickle, with findClass
// and a persistent-id hook that resolves storages through lookup. It returns the
// state_dict's tensors in order, each checked against its storage.
func unpickleStateDict(data []byte, lookup storageLookup, file string) ([]namedTensor, error) {
	if err := scanPickle(data); err != nil {
		return nil, pickleErr(file, err)
	}
	storages := map[string]*storageRef{}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() != 5 || t.Get(0) != "storage" {
			return nil, errors.New("persistent id is not a ('storage', type, key, location, numel) tuple")
		}
		typ, ok1 := t.Get(1).(*storageType)
		key, ok2 := t.Get(2).(string)
		_, ok3 := t.Get(3).(string)
		numel, ok4 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || !ok4 || numel < 0 {
			return nil, errors.New("persistent id is not a ('storage', type, key, location, numel) tuple")
		}
		if s := storages[key]; s != nil {
			if s.dtype != typ.dtype || s.numel != int64(numel) {
				return nil, fmt.Errorf("storage data/%s is named twice with different types or sizes", key)
			}
			return s, nil
		}
		size, f, ok := lookup(key)
		if !ok {
			return nil, fmt.Errorf("storage data/%s is missing from the archive", key)
		}
		es := uint64(typ.dtype.Size())
		if size%es != 0 || size/es != uint64(numel) {
			return nil, fmt.Errorf("storage data/%s holds %d bytes, not the %d elements of %d bytes its persistent id says", key, size, numel, es)
		}
		s := &storageRef{key: key, dtype: typ.dtype, numel: int64(numel), file: f}
		storages[key] = s
		return s, nil
	}
	v, err := safeLoad(&u)
	if err != nil {
		return nil, pickleErr(file, err)
	}
	var out []namedTensor
	seen := map[string]bool{}
	add := func(k, v any) error {
		name, ok := k.(string)
		if !ok {
			return formatErr(file, "", "data.pkl is not a state_dict: it has a key of type %s", pyType(k))
		}
		if seen[name] {
			return formatErr(file, name, "appears twice in the state_dict")
		}
		seen[name] = true
		switch t := v.(type) {
		case *tensorRef:
			if err := checkView(t); err != nil {
				return formatErr(file, name, "%v", err)
			}
			out = append(out, namedTensor{name, t})
			return nil
		case *types.Dict, *types.OrderedDict:
			return formatErr(file, name, "holds a dict, not a tensor: a training checkpoint? Save the model's state_dict itself")
		}
		return formatErr(file, name, "holds a %s, not a tensor", pyType(v))
	}
	switch d := v.(type) {
	case *types.OrderedDict:
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			if err := add(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	case *types.Dict:
		for _, e := range *d {
			if err := add(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, formatErr(file, "", "data.pkl holds a %s, not a state_dict (a dict of tensors)", pyType(v))
	}
	return out, nil
}

// pickleErr wraps an error of scanPickle or gopickle.
func pickleErr(file string, err error) *Error {
	var ce *classError
	if errors.As(err, &ce) {
		return &Error{File: file, Kind: ErrFormat, Msg: ce.Error()}
	}
	return &Error{File: file, Kind: ErrFormat, Msg: "data.pkl: " + clip(err.Error())}
}

// checkView checks that a tensor is a contiguous view inside its storage.
func checkView(t *tensorRef) error {
	numel, ok := numelOf(t.shape, min(t.st.numel, math.MaxInt))
	if !ok {
		return fmt.Errorf("shape %v has more elements than its storage data/%s (%d)", t.shape, t.st.key, t.st.numel)
	}
	if numel == 0 {
		return nil
	}
	want := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			return fmt.Errorf("stride %v for shape %v is not contiguous; save tensor.contiguous()", t.stride, t.shape)
		}
		want *= t.shape[i]
	}
	if t.offset > t.st.numel-numel {
		return fmt.Errorf("elements [%d, %d) run past its storage data/%s of %d", t.offset, t.offset+numel, t.st.key, t.st.numel)
	}
	return nil
}

// safeLoad runs gopickle, turning a panic of it into an error: scanPickle rules out
// what would make it allocate without bound, but not every malformed stack (an odd
// number of SETITEMS items, an unhashable key) that it indexes without checking.
func safeLoad(u *pickle.Unpickler) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle (%v)", r)
		}
	}()
	return u.Load()
}

// scanPickle walks a pickle's opcodes without running them, as Python's
// pickletools.genops does, and rejects one that gopickle should not run: an unknown
// or out-of-band opcode, an argument running past the end, a line longer than
// maxLine, a LONG of more than maxLong bytes or none, MARKs nested deeper than
// maxMarkDepth, a GLOBAL or INST naming a class outside allowedClasses, and any
// string naming the modules __builtin__ or copy_reg, whose classes gopickle would
// resolve itself rather than through findClass.
func scanPickle(p []byte) error {
	i, at, depth := 0, 0, 0 // at: the current opcode's offset
	need := func(n uint64) error {
		if n > uint64(len(p)-i) {
			return fmt.Errorf("truncated: opcode at offset %d needs %d bytes, %d are left", at, n, len(p)-i)
		}
		return nil
	}
	line := func() (string, error) {
		j := bytes.IndexByte(p[i:min(len(p), i+maxLine)], '\n')
		if j < 0 {
			return "", fmt.Errorf("opcode at offset %d: no newline within %d bytes", at, maxLine)
		}
		s := string(p[i : i+j])
		i += j + 1
		return s, nil
	}
	str := func(n uint64) error {
		if err := need(n); err != nil {
			return err
		}
		s := string(p[i : i+int(n)])
		i += int(n)
		return checkModule(s)
	}
	for i < len(p) {
		at = i
		op := p[i]
		i++
		var err error
		switch op {
		case '.': // STOP
			return nil
		case '(': // MARK
			depth++
			if depth > maxMarkDepth {
				return fmt.Errorf("MARKs nested deeper than %d", maxMarkDepth)
			}
		case 't', 'l', 'd', 'u', 'e', '1', 'o', '\x90', '\x91': // pop a mark
			depth = max(depth-1, 0)
		case '0', '2', 'N', 'Q', 'R', 'a', 'b', '}', ']', 's', ')', '\x81', '\x85', '\x86',
			'\x87', '\x88', '\x89', '\x8f', '\x92', '\x93', '\x94':
			// no argument
		case 'F', 'I', 'P', 'g', 'p': // FLOAT INT PERSID GET PUT: a line
			_, err = line()
		case 'L': // LONG: a line of digits
			var s string
			if s, err = line(); err == nil && len(s) > maxLong {
				err = fmt.Errorf("LONG of %d digits at offset %d", len(s), at)
			}
		case 'S', 'V': // STRING UNICODE
			var s string
			if s, err = line(); err == nil {
				err = checkModule(strings.Trim(s, `'"`))
			}
		case 'c', 'i': // GLOBAL INST: module and name lines
			var mod, name string
			if mod, err = line(); err == nil {
				if name, err = line(); err == nil {
					if _, ok := allowedClasses[mod+"."+name]; !ok {
						return &classError{mod + "." + name}
					}
				}
			}
			if op == 'i' {
				depth = max(depth-1, 0)
			}
		case 'K', 'h', 'q', '\x80', '\x82': // 1-byte argument
			err = need(1)
			i++
		case 'M', '\x83': // 2 bytes
			err = need(2)
			i += 2
		case 'J', 'j', 'r', '\x84': // 4 bytes
			err = need(4)
			i += 4
		case 'G': // BINFLOAT
			err = need(8)
			i += 8
		case 'U', 'C', '\x8c': // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE
			if err = need(1); err == nil {
				n := uint64(p[i])
				i++
				err = str(n)
			}
		case 'T', 'X', 'B': // BINSTRING BINUNICODE BINBYTES: 4-byte length
			if err = need(4); err == nil {
				n := uint64(binary.LittleEndian.Uint32(p[i:]))
				i += 4
				err = str(n)
			}
		case '\x8d', '\x8e', '\x96': // BINUNICODE8 BINBYTES8 BYTEARRAY8
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(p[i:])
				i += 8
				err = str(n)
			}
		case '\x8a': // LONG1
			if err = need(1); err == nil {
				n := uint64(p[i])
				i++
				if n == 0 || n > maxLong {
					err = fmt.Errorf("LONG1 of %d bytes at offset %d", n, at)
				} else {
					err = str(n)
				}
			}
		case '\x8b': // LONG4
			if err = need(4); err == nil {
				n := binary.LittleEndian.Uint32(p[i:])
				i += 4
				if n == 0 || n > maxLong {
					err = fmt.Errorf("LONG4 of %d bytes at offset %d", n, at)
				} else {
					err = str(uint64(n))
				}
			}
		case '\x95': // FRAME: the frame's bytes are more opcodes
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(p[i:])
				i += 8
				err = need(n)
			}
		default:
			return fmt.Errorf("opcode 0x%02x at offset %d is not one a state_dict uses", op, at)
		}
		if err != nil {
			return err
		}
	}
	return errors.New("truncated: no STOP opcode")
}

// checkModule rejects a string naming a module that gopickle resolves by itself.
func checkModule(s string) error {
	if s == "__builtin__" || s == "copy_reg" {
		return &classError{s + ".*"}
	}
	return nil
}
