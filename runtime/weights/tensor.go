package weights

import (
	"encoding/binary"
	"io"
	"math"
)

// DType is a tensor's element type, spelled as safetensors spells it.
type DType string

// The dtypes of safetensors. Load reads F32, F16 and BF16 (and I64 for
// num_batches_tracked); the others are recognised so that a file holding them is
// well formed, but a tensor of those types does not load.
const (
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F64    DType = "F64"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

// Size is the number of bytes of one element, 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, Bool, F8E4M3, F8E5M2:
		return 1
	}
	return 0
}

// decodable reports whether Data can hold the dtype's values: F32, F16 and BF16
// exactly, I64 converted to float32 (exact up to 2^24).
func (d DType) decodable() bool {
	return d == F32 || d == F16 || d == BF16 || d == I64
}

// float reports whether a model's float32 parameter may load from the dtype.
func (d DType) float() bool {
	return d == F32 || d == F16 || d == BF16
}

// Tensor is one decoded tensor of a file.
type Tensor struct {
	DType DType // as stored in the file
	Shape []int
	// Data holds the values in row-major order as float32: F32, F16 and BF16 exactly,
	// I64 converted (exact up to 2^24). It is nil for every other dtype.
	Data []float32
}

// File is the decoded content of a weight file.
type File struct {
	Format   string            // "safetensors" or "pth"
	Names    []string          // the tensors' names in file order
	Tensors  map[string]Tensor // by name
	Metadata map[string]string // safetensors' __metadata__; nil for .pth
}

// decode converts len(dst) elements of dtype dt from their little-endian bytes src.
func decode(dst []float32, src []byte, dt DType) {
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = f16(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		panic("weights: decode of " + string(dt))
	}
}

// f16 widens an IEEE 754 half-precision value exactly.
func f16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // infinity, NaN (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero, subnormal: mant · 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// chunk is the size of the buffer through which tensors are read: a multiple of every
// element size.
const chunk = 64 << 10

// readDecode decodes len(dst) elements of dtype dt from r at byte offset off.
func readDecode(dst []float32, r io.ReaderAt, off int64, dt DType, buf []byte) error {
	es := dt.Size()
	for len(dst) > 0 {
		k := min(len(dst), len(buf)/es)
		b := buf[:k*es]
		n, err := r.ReadAt(b, off)
		if n < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		decode(dst[:k], b, dt)
		dst = dst[k:]
		off += int64(len(b))
	}
	return nil
}
