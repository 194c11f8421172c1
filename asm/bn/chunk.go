package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// kernel describes one batch-norm kernel for the chunk driver (emit): what
// it reads and writes, and the code of one vector of one pixel.
type kernel struct {
	name    string       // Go name without tile and ISA: bnSum
	api     string       // what it implements: BNSum, BNApply with relu
	sig     string       // avo signature
	doc     []string     // the Doc lines after the first
	impl    []string     // the Go that body implements, quoted above each pixel loop
	streams []stream     // float32 operands walked pixel by pixel
	consts  []string     // per-channel float64 arrays the kernel only reads
	accs    []string     // per-channel float64 accumulators, in registers for a chunk
	vecs    map[*isa]int // vectors per chunk, a power of two

	setup func(e *emitter)      // once per call, before the chunks
	init  func(c *chunk)        // once per chunk, before its pixel loop
	body  func(c *chunk, j int) // vector j of the chunk at the current pixel
}

// stream is a float32 operand: its pointer and stride (in float32s) parameters.
type stream struct{ ptr, stride string }

// emitter is one kernel being emitted for one ISA.
type emitter struct {
	k      *kernel
	i      *isa
	name   string
	stride map[string]Mem            // stream stride in bytes
	rem    Mem                       // channels not yet done
	off    Mem                       // first channel of the next chunk
	vars   map[string]reg.VecVirtual // values set up once (zero, cnt)
	labels int
}

func (e *emitter) label() string {
	e.labels++
	return fmt.Sprintf("%s_%d", e.name, e.labels)
}

// emit generates k for ISA i: the channels in chunks (outer) of up to
// vecs[i] vectors, each chunk's accumulators in registers across its pixel
// loop (inner), so that each channel's chain runs in pixel order:
//
//	off := 0
//	for n-off >= V*L { chunk(off, V vectors); off += V*L }   // V = vecs[i], L = lanes
//	for v := V/2; v >= 1; v /= 2 { if n-off >= v*L { chunk(off, v vectors); off += v*L } }
//	if off < n { chunk(off, 1 vector, lanes >= n-off masked off) }
//
// The pixel loop of every unmasked chunk prefetches the chunk's bytes of each
// stream prefetchPixels pixels ahead (prefetches never fault, past the end of
// an operand either).
func (k *kernel) emit(i *isa) {
	V, L := k.vecs[i], i.lanes
	name := fmt.Sprintf("%s_%dch_%s", k.name, V*L, i.name)
	TEXT(name, NOSPLIT, k.sig)
	Pragma("noescape")
	Doc(append([]string{fmt.Sprintf("%s is %s on %s in chunks of up to %d channels (%d %s per pixel);",
		name, k.api, i.name, V*L, V, i.kind)}, k.doc...)...)

	e := &emitter{k: k, i: i, name: name, stride: map[string]Mem{}, vars: map[string]reg.VecVirtual{}}
	for _, s := range k.streams {
		e.stride[s.stride] = simd.Local4(s.stride)
	}
	e.rem = simd.Local("n")
	e.off = AllocLocal(8)
	MOVQ(U32(0), e.off)
	if k.setup != nil {
		k.setup(e)
	}
	full := e.label()
	Label(full)
	Commentf("Chunks of %d channels while they last", V*L)
	next := e.label()
	CMPQ(e.rem, U32(V*L))
	JB(LabelRef(next))
	e.chunk(V, false)
	JMP(LabelRef(full))
	for v := V / 2; v >= 1; v /= 2 {
		Label(next)
		next = e.label()
		Commentf("%d channels if as many are left", v*L)
		CMPQ(e.rem, U32(v*L))
		JB(LabelRef(next))
		e.chunk(v, false)
	}
	Label(next)
	done := name + "_done"
	Commentf("The last n%%%d channels, under a mask", L)
	CMPQ(e.rem, U8(0))
	JE(LabelRef(done))
	e.chunk(1, true)
	Label(done)
	simd.Ret()
}

// chunk is one run of v vectors of channels through all np pixels.
type chunk struct {
	*emitter
	v    int
	tail *tail                       // the masked last vector (then v = 1)
	ptr  map[string]reg.GPVirtual    // stream pointers at the current pixel
	base map[string]reg.GPVirtual    // &array[off] of each per-channel array
	pre  map[string]reg.VecVirtual   // tail: consts loaded under the mask
	acc  map[string][]reg.VecVirtual // accumulators
	vals map[string][]reg.VecVirtual // per-chunk values set by init (kcn)
}

// chunk emits one chunk at channel off: pointers, accumulators loaded, the
// pixel loop, accumulators stored, off and rem advanced.
func (e *emitter) chunk(v int, masked bool) {
	k, i := e.k, e.i
	c := &chunk{emitter: e, v: v, ptr: map[string]reg.GPVirtual{}, base: map[string]reg.GPVirtual{},
		pre: map[string]reg.VecVirtual{}, acc: map[string][]reg.VecVirtual{}, vals: map[string][]reg.VecVirtual{}}
	o := GP64()
	MOVQ(e.off, o)
	for _, s := range k.streams {
		p := GP64()
		MOVQ(simd.Arg(s.ptr), p)
		LEAQ(Mem{Base: p, Index: o, Scale: 4}, p)
		c.ptr[s.ptr] = p
	}
	for _, a := range append(append([]string{}, k.consts...), k.accs...) {
		p := GP64()
		MOVQ(simd.Arg(a), p)
		LEAQ(Mem{Base: p, Index: o, Scale: 8}, p)
		c.base[a] = p
	}
	if masked {
		t := GP64()
		MOVQ(e.rem, t)
		c.tail = setupTail(i, t)
		for _, a := range k.consts {
			c.pre[a] = i.vec()
			c.loadPD(Mem{Base: c.base[a]}, c.pre[a])
		}
	}
	for _, a := range k.accs {
		c.acc[a] = i.vecs(v)
		for j, r := range c.acc[a] {
			c.loadPD(c.arr(a, j), r)
		}
	}
	if k.init != nil {
		k.init(c)
	}
	// pf[s]: the distance in bytes from the current pixel of stream s to the
	// one prefetched, prefetchPixels(v) pixels ahead.
	pf := map[string]reg.GPVirtual{}
	if !masked {
		for _, s := range k.streams {
			r := GP64()
			MOVQ(e.stride[s.stride], r)
			IMUL3Q(U32(prefetchPixels(i, v)), r, r)
			pf[s.ptr] = r
		}
	}
	cnt := GP64()
	MOVQ(simd.Arg("np"), cnt)
	loop := e.label()
	Label(loop)
	Comment(k.impl...)
	if !masked {
		Commentf("prefetch the chunk's bytes of each stream %d pixels ahead into L2", prefetchPixels(i, v))
		for _, s := range k.streams {
			n := v * i.b32()
			for o := 0; o < n; o += 64 {
				PREFETCHT1(Mem{Base: c.ptr[s.ptr], Index: pf[s.ptr], Scale: 1, Disp: o})
			}
			if (n-1)%64 != 0 {
				// the last line, when the chunk does not start a line
				PREFETCHT1(Mem{Base: c.ptr[s.ptr], Index: pf[s.ptr], Scale: 1, Disp: n - 1})
			}
		}
	}
	for j := 0; j < v; j++ {
		k.body(c, j)
	}
	for _, s := range k.streams {
		ADDQ(e.stride[s.stride], c.ptr[s.ptr])
	}
	DECQ(cnt)
	JNZ(LabelRef(loop))
	for _, a := range k.accs {
		for j, r := range c.acc[a] {
			c.storePD(r, c.arr(a, j))
		}
	}
	if !masked {
		ADDQ(U32(v*i.lanes), e.off)
		SUBQ(U32(v*i.lanes), e.rem)
	}
}

// at is vector j of stream s at the current pixel.
func (c *chunk) at(s string, j int) Mem { return Mem{Base: c.ptr[s], Disp: j * c.i.b32()} }

// arr is vector j of per-channel array a.
func (c *chunk) arr(a string, j int) Mem { return Mem{Base: c.base[a], Disp: j * c.i.b64()} }

// con is vector j of const array a as an operand: memory, or in the tail
// the register it was loaded into under the mask.
func (c *chunk) con(a string, j int) Op {
	if c.tail != nil {
		return c.pre[a]
	}
	return c.arr(a, j)
}

// load returns a new vector holding float64(s[j*lanes+l]); in the tail, lanes
// >= t are 0 and their memory is not read.
func (c *chunk) load(s string, j int) reg.VecVirtual {
	x := c.i.vec()
	m := c.at(s, j)
	switch {
	case c.tail == nil:
		VCVTPS2PD(m, x)
	case c.i == avx512:
		VCVTPS2PD_Z(m, c.tail.k, x)
	default:
		h := XMM()
		VMASKMOVPS(m, c.tail.m32, h)
		VCVTPS2PD(h, x)
	}
	return x
}

// store rounds x to float32 and writes it to vector j of stream s (in the
// tail only lanes < t). With relu, VMAXPS v, zero, v is Intel's max(src1 = 0,
// src2 = v), which returns v unless 0 > v: NaN and -0 pass.
func (c *chunk) store(x reg.VecVirtual, s string, j int, relu bool) {
	y := c.i.half()
	if c.i == avx512 {
		VCVTPD2PS(x, y)
	} else {
		VCVTPD2PSY(x, y)
	}
	if relu {
		VMAXPS(y, c.vars["zero"], y)
	}
	m := c.at(s, j)
	switch {
	case c.tail == nil:
		VMOVUPS(y, m)
	case c.i == avx512:
		VMOVUPS(y, c.tail.k, m)
	default:
		VMASKMOVPS(y, c.tail.m32, m)
	}
}

// loadPD and storePD move float64 vectors (under the mask in the tail).
func (c *chunk) loadPD(m Mem, x reg.VecVirtual) {
	switch {
	case c.tail == nil:
		VMOVUPD(m, x)
	case c.i == avx512:
		VMOVUPD_Z(m, c.tail.k, x)
	default:
		VMASKMOVPD(m, c.tail.m64, x)
	}
}

func (c *chunk) storePD(x reg.VecVirtual, m Mem) {
	switch {
	case c.tail == nil:
		VMOVUPD(x, m)
	case c.i == avx512:
		VMOVUPD(x, c.tail.k, m)
	default:
		VMASKMOVPD(x, c.tail.m64, m)
	}
}
