// Command pack generates the weight-packing gather of runtime/kernels
// (PackGather; runtime/kernels/pack.go is the contract) for AVX-512 and AVX2
// with avo.
//
// A call fills n rows of NR = 32 float32 lanes: lane j of row i is the source
// value i·sstep + j·jstride for j < nj and +0 past it. Each row is a fixed
// pattern of 32 addresses from a moving base, so the kernels build the index
// vector j·jstride once and then issue one VGATHERDPS per vector of the row:
// two zmm under an opmask of the first nj lanes on AVX-512, four ymm under a
// vector mask on AVX2. A gather leaves the lanes its mask excludes as they
// were and does not touch their memory, so every destination register is
// zeroed before its gather and the lanes ≥ nj come out +0 (and lanes of a
// partial block, whose addresses may lie past the source, are never read).
// The values are moved, never computed on: NaN payloads, −0 and subnormals
// arrive as they were.
package main

//go:generate go run . -out ../../runtime/kernels/pack_amd64.s -stubs ../../runtime/kernels/pack_amd64_stubs.go -pkg kernels

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// isa is the vector instruction set a kernel is generated for.
type isa = simd.ISA

var avx512, avx2 = simd.AVX512, simd.AVX2

// nr is the lanes of one packed row: kernels.NR.
const nr = 32

func main() {
	ConstraintExpr("amd64,!purego") // printed as: //go:build amd64 && !purego
	tables()
	for _, nt := range []bool{false, true} {
		gather(avx512, nt)
		gather(avx2, nt)
	}
	fence()
	Generate()
}

// The constant tables. packIota is 0, 1, …, 15 as int32s: times jstride, the
// indices of a row's first vector. packTailMask is 32 all-ones then 32 zero
// uint32s: the 32 lanes starting 32-nj lanes in are the AVX2 gather masks of
// the first nj lanes of a row.
var iotaTab, tailMask Mem

func tables() {
	iotaTab = GLOBL("packIota", RODATA|NOPTR)
	for l := 0; l < 16; l++ {
		DATA(4*l, U32(uint32(l)))
	}
	tailMask = GLOBL("packTailMask", RODATA|NOPTR)
	for l := 0; l < 2*nr; l++ {
		v := uint32(0)
		if l < nr {
			v = 0xffffffff
		}
		DATA(4*l, U32(v))
	}
}

/*
	for i := 0; i < n; i++ {
		for j := 0; j < NR; j++ {
			dst[i*NR+j] = 0
			if j < nj {
				dst[i*NR+j] = src[i*sstep+j*jstride]
			}
		}
	}
*/
//
// With nt the rows are stored with VMOVNTPS (dst 64-byte aligned), past the
// caches; they are weakly ordered until the caller's packFence.
func gather(i *isa, nt bool) {
	name, what := "packGather_"+i.Name, "PackGather"
	store := func(x, m Op) { VMOVUPS(x, m) }
	if nt {
		name, what = "packGatherNT_"+i.Name, "PackGatherNT (dst 64-byte aligned)"
		store = func(x, m Op) { VMOVNTPS(x, m) }
	}
	vecs := nr / i.Lanes
	TEXT(name, NOSPLIT, "func(dst, src *float32, n, sstep, jstride, nj int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is %s (n ≥ 1, 1 ≤ nj ≤ NR, (nj-1)·jstride < 2³¹): each row", name, what),
		fmt.Sprintf("is %d %s VGATHERDPS of the indices j·jstride from src + i·sstep, under a mask of", vecs, i.Kind),
		"the first nj lanes, into zeroed registers:",
		"",
		"\tfor i := 0; i < n; i++ {",
		"\t\tfor j := 0; j < NR; j++ {",
		"\t\t\tdst[i*NR+j] = 0",
		"\t\t\tif j < nj { dst[i*NR+j] = src[i*sstep+j*jstride] }",
		"\t\t}",
		"\t}")

	dst, src := simd.LoadGP("dst"), simd.LoadGP("src")
	n := simd.LoadGP("n")
	sstep := simd.Load4("sstep")

	Comment("idx[v] lane l = (v*lanes + l) * jstride: the offsets of row i's values from src + i*sstep")
	idx := i.Vecs(vecs)
	js := i.Vec()
	VPBROADCASTD(simd.Arg("jstride"), js)
	VPMULLD(iotaTab, js, idx[0])
	step := i.Vec()
	Commentf("step = %d * jstride", i.Lanes)
	VPSLLD(U8(i.Log2), js, step)
	for v := 1; v < vecs; v++ {
		VPADDD(step, idx[v-1], idx[v])
	}

	if i == avx512 {
		Comment("k[v] = the set lanes of packTailMask[32-nj+16*v:][:16]: lane l set iff 16*v+l < nj")
	} else {
		Comment("mask[v] = packTailMask[32-nj+8*v:][:8]: lane l set iff 8*v+l < nj")
	}
	nj := simd.LoadGP("nj")
	p := GP64()
	LEAQ(tailMask.Offset(4*nr), p)
	SHLQ(U8(2), nj)
	SUBQ(nj, p)
	var kmask []reg.OpmaskVirtual
	var vmask []reg.VecVirtual
	for v := 0; v < vecs; v++ {
		mk := i.Vec()
		VMOVUPS(Mem{Base: p, Disp: v * i.VBytes()}, mk)
		if i == avx512 {
			k := K()
			VPTESTMD(mk, mk, k)
			kmask = append(kmask, k)
		} else {
			vmask = append(vmask, mk)
		}
	}

	Label(name + "_row")
	Comment("for ; n > 0; n--, dst += NR, src += sstep: one row")
	for v := 0; v < vecs; v++ {
		Commentf("dst[j] = src[j*jstride] for j < nj, else 0; j in [%d, %d)", v*i.Lanes, (v+1)*i.Lanes)
		x := i.Vec()
		if i == avx512 {
			VPXORD(x, x, x)
		} else {
			VPXOR(x, x, x)
		}
		at := Mem{Base: src, Index: idx[v], Scale: 4}
		if i == avx512 {
			k := K()
			KMOVW(kmask[v], k)
			VGATHERDPS(at, k, x)
		} else {
			mk := i.Vec()
			VMOVAPS(vmask[v], mk)
			VGATHERDPS(mk, at, x)
		}
		store(x, Mem{Base: dst, Disp: v * i.VBytes()})
	}
	ADDQ(U32(4*nr), dst)
	ADDQ(sstep, src)
	DECQ(n)
	JNZ(LabelRef(name + "_row"))
	simd.Ret()
}

/*
PackFence()
*/
func fence() {
	TEXT("packFenceSFENCE", NOSPLIT, "func()")
	Doc("packFenceSFENCE is PackFence on an AVX CPU: an SFENCE, after which the streaming stores of",
		"earlier packGatherNT calls are ordered before every later store (such as the one that",
		"tells another goroutine the pack is done).")
	Comment("Order the preceding VMOVNTPS stores before any later store.")
	SFENCE()
	simd.Ret()
}
