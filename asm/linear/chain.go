package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// chainTile is a LinearChain kernel: one vector of outputs (a lane per W
// row) × g samples, g accumulators. x comes packed as xt[k][g] (sample
// minor), so every broadcast of a step is one displacement off one pointer.
// (Two and four vectors of rows per step, for more independent chains at
// small g, measured no faster: README.md.)
type chainTile struct {
	g  int  // samples per call
	pf int  // if > 0, prefetch each W row this many bytes ahead
	t1 bool // PREFETCHT1 (else PREFETCHT0)
}

const chainSig = "func(y *float32, ldy int, xt *float32, w *float32, ldw int, bias *float32, n, k int, lo float32, more bool)"

// chainGen holds what lives across a LinearChain kernel's blocks of rows.
type chainGen struct {
	isa  *isa
	t    chainTile
	name string

	lanes int // the rows of one step
	cols  []int

	kblk  Mem // k / lanes: whole blocks of inputs
	ktail Mem // k % lanes
	nrem  Mem // outputs left
	yrow  Mem // &y[0][j]
	wrow  Mem // &W[j][0]
	brow  Mem // &bias[j]
	ldw4  Mem
	ldy4  Mem
	rows  Mem // lanes pointers: the step's W rows, the last valid one repeated
}

func chainName(i *isa, t chainTile) string {
	return fmt.Sprintf("linearChain_%dx%d_%s", i.Lanes, t.g, i.Name)
}

/*
	for j := 0; j < n; j++ {
		for i := 0; i < g; i++ {
			acc := bias[j]               // or y[i][j] if more
			for c := 0; c < k; c++ { acc = fma(xt[c][i], W[j][c], acc) }
			y[i][j] = lo > acc ? lo : acc
		}
	}
*/
func chain(i *isa, t chainTile) {
	g := &chainGen{isa: i, t: t, lanes: i.Lanes, name: chainName(i, t)}
	g.cols = transposeCols(i.Lanes)
	TEXT(g.name, NOSPLIT, chainSig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearChain for %d sample(s) × n outputs (n, k ≥ 1): each output one FMA chain", g.name, t.g),
		"over its k inputs in order, from bias[j] (or from y[i][j] if more). W is torchvision's n×k",
		fmt.Sprintf("layout (row stride ldw); %d rows at a time are read %d inputs at a time and transposed", i.Lanes, i.Lanes),
		fmt.Sprintf("in registers, so that a lane of a %s is an output and the FMAs take one input column", i.Kind),
		fmt.Sprintf("at a time. xt is x packed as xt[c][i] (c < k, i < %d); y[i][j] is at y[i*ldy+j]. lo is 0", t.g),
		"for relu, else -Inf: y = lo > acc ? lo : acc. The last rows may be a partial step: its",
		"missing rows repeat the last row and are neither read from bias or y nor stored.",
		g.variant())
	g.setup()
	g.blocks()
	simd.Ret()
}

func (g *chainGen) setup() {
	l := g.lanes
	Commentf("kblk = k / %d; ktail = k %% %d", l, l)
	k := simd.LoadGP("k")
	t := GP64()
	MOVQ(k, t)
	ANDQ(U8(l-1), t)
	SHRQ(U8(g.isa.Log2), k)
	g.kblk, g.ktail = AllocLocal(8), AllocLocal(8)
	MOVQ(k, g.kblk)
	MOVQ(t, g.ktail)
	g.nrem = simd.Local("n")
	g.yrow = simd.Local("y")
	g.wrow = simd.Local("w")
	g.brow = simd.Local("bias")
	g.ldw4 = simd.Local4("ldw")
	g.ldy4 = simd.Local4("ldy")
	g.rows = AllocLocal(8 * g.lanes)
}

func (g *chainGen) variant() string {
	if g.t.pf == 0 {
		return ""
	}
	lvl := "L1 (PREFETCHT0)"
	if g.t.t1 {
		lvl = "L2 (PREFETCHT1)"
	}
	return fmt.Sprintf("Each row is prefetched %d bytes ahead into %s.", g.t.pf, lvl)
}

// rowPtr is the stack slot of row r's pointer.
func (g *chainGen) rowPtr(r int) Mem { return Mem{Base: g.rows.Base, Disp: g.rows.Disp + 8*r} }

// blocks is the loop over steps of lanes outputs.
//
//	for ; n > 0; n -= lanes { step(min(n, lanes)) }
func (g *chainGen) blocks() {
	i, l := g.isa, g.lanes
	Label(g.name + "_block")
	Commentf("nr = min(n, %d): the rows of this step", l)
	nr := GP64()
	MOVQ(g.nrem, nr)
	CMPQ(nr, U8(l))
	big := GP64()
	MOVQ(U32(l), big)
	CMOVQGT(big, nr)

	Comment("rows[r] = &W[j+min(r, nr-1)][0]: a missing row repeats the last one")
	{
		p, q, ldw := GP64(), GP64(), GP64()
		MOVQ(g.wrow, p)
		MOVQ(g.ldw4, ldw)
		for r := 0; r < l; r++ {
			MOVQ(p, g.rowPtr(r))
			if r+1 < l {
				LEAQ(simd.At(p, ldw, 0), q)
				CMPQ(nr, U8(r+1))
				CMOVQHI(q, p)
			}
		}
	}

	Comment("The mask of the step's nr rows")
	var km reg.OpmaskVirtual
	var mptr Mem
	{
		c := GP64()
		MOVQ(nr, c)
		if i == avx512 {
			km = simd.LoadOpmask(tailKMask, c)
		} else {
			mptr = simd.TailPtr(tailTable, 16, c)
		}
	}
	maskLoad := func(m Mem, x reg.VecVirtual) {
		if i == avx512 {
			VMOVUPS_Z(m, km, x)
			return
		}
		p := GP64()
		MOVQ(mptr, p)
		VMOVUPS(Mem{Base: p}, x)
		VMASKMOVPS(m, x, x)
	}

	acc := i.Vecs(g.t.g)
	Comment("acc[i] = more ? y[i][j:][:nr] : bias[j:][:nr]")
	{
		src := GP64()
		ldy := GP64()
		MOVQ(g.brow, src)
		XORQ(ldy, ldy)
		more := GP64()
		MOVBQZX(simd.Arg("more"), more)
		TESTQ(more, more)
		JZ(LabelRef(g.name + "_init"))
		MOVQ(g.yrow, src)
		MOVQ(g.ldy4, ldy)
		Label(g.name + "_init")
		for s := 0; s < g.t.g; s++ {
			if s > 0 {
				ADDQ(ldy, src)
			}
			maskLoad(Mem{Base: src}, acc[s])
		}
	}

	off, xp, cnt := GP64(), GP64(), GP64()
	XORQ(off, off)
	MOVQ(simd.Arg("xt"), xp)
	MOVQ(g.kblk, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef(g.name + "_tail"))
	Label(g.name + "_k")
	Commentf("for c0 := 0; c0+%d <= k; c0 += %d { for c := c0; c < c0+%d; c++ { acc[i] = fma(xt[c][i], W[j:][:%d][c], acc[i]) } }", l, l, l, l)
	g.step(off, xp, acc, nil, func(m Mem, x reg.VecVirtual) { VMOVUPS(m, x) })
	ADDQ(U8(4*l), off)
	ADDQ(U32(4*l*g.t.g), xp)
	DECQ(cnt)
	JNZ(LabelRef(g.name + "_k"))

	Label(g.name + "_tail")
	Commentf("if t := k %% %d; t > 0 { the same for c < c0+t: the rows read under a mask }", l)
	t := GP64()
	MOVQ(g.ktail, t)
	TESTQ(t, t)
	JZ(LabelRef(g.name + "_out"))
	var load func(m Mem, x reg.VecVirtual)
	if i == avx512 {
		c := GP64()
		MOVQ(t, c)
		kt := simd.LoadOpmask(tailKMask, c)
		load = func(m Mem, x reg.VecVirtual) { VMOVUPS_Z(m, kt, x) }
	} else {
		c := GP64()
		MOVQ(t, c)
		tptr := simd.TailPtr(tailTable, 16, c)
		load = func(m Mem, x reg.VecVirtual) {
			p := GP64()
			MOVQ(tptr, p)
			VMOVUPS(Mem{Base: p}, x)
			VMASKMOVPS(m, x, x)
		}
	}
	g.step(off, xp, acc, t, load)
	Label(g.name + "_tailend")

	Label(g.name + "_out")
	Comment("y[i][j:j+nr] = lo > acc ? lo : acc")
	lo := i.Vec()
	VBROADCASTSS(simd.Arg("lo"), lo)
	dst, ldy := GP64(), GP64()
	MOVQ(g.yrow, dst)
	MOVQ(g.ldy4, ldy)
	for s := 0; s < g.t.g; s++ {
		if s > 0 {
			ADDQ(ldy, dst)
		}
		a := acc[s]
		VMAXPS(a, lo, a)
		m := Mem{Base: dst}
		if i == avx512 {
			VMOVUPS(a, km, m)
		} else {
			mk, p := i.Vec(), GP64()
			MOVQ(mptr, p)
			VMOVUPS(Mem{Base: p}, mk)
			VMASKMOVPS(a, mk, m)
		}
	}

	Commentf("j += %d: W, y and bias move on a step", l)
	{
		r := GP64()
		MOVQ(g.ldw4, r)
		IMUL3Q(U8(l), r, r)
		ADDQ(r, g.wrow)
	}
	ADDQ(U32(4*l), g.yrow)
	ADDQ(U32(4*l), g.brow)
	SUBQ(U8(l), g.nrem)
	JG(LabelRef(g.name + "_block"))
}

// prefetch emits the W prefetch of row pointer p, if the tile has one.
func (g *chainGen) prefetch(p, off reg.GPVirtual) {
	if g.t.pf == 0 {
		return
	}
	if g.t.t1 {
		PREFETCHT1(simd.At(p, off, g.t.pf))
	} else {
		PREFETCHT0(simd.At(p, off, g.t.pf))
	}
}

// step is lanes rows × lanes inputs (or, t != nil, the first t inputs): the
// rows' vectors at byte offset off, transposed in registers, then for each
// input column c the FMAs of every sample with xt[c][i] broadcast. A tail
// step ends at label _tailend.
func (g *chainGen) step(off, xp reg.GPVirtual, acc []reg.VecVirtual, t reg.GPVirtual, load func(Mem, reg.VecVirtual)) {
	i, l := g.isa, g.lanes
	rows := i.Vecs(l)
	for r := range rows {
		p := GP64()
		MOVQ(g.rowPtr(r), p)
		if t == nil {
			g.prefetch(p, off)
		}
		load(simd.At(p, off, 0), rows[r])
	}
	Commentf("col[c][r] = W[j+r][c0+c]: the %d×%d block transposed in registers", l, l)
	cols := transpose(i, rows)
	var bc reg.VecVirtual
	if i != avx512 {
		bc = i.Vec()
	}
	Comment("acc[i] = fma(xt[c0+c][i], col[c], acc[i]) for c ascending")
	for c := 0; c < l; c++ {
		if t != nil && c > 0 {
			CMPQ(t, U8(c))
			JBE(LabelRef(g.name + "_tailend"))
		}
		g.fmas(xp, c, cols[g.cols[c]], acc, bc)
	}
}

// fmas is column c's FMAs: acc[i] = fma(xt[c][i], col, acc[i]).
func (g *chainGen) fmas(xp reg.GPVirtual, c int, col reg.VecVirtual, acc []reg.VecVirtual, bc reg.VecVirtual) {
	for s, a := range acc {
		x := Mem{Base: xp, Disp: 4 * (c*g.t.g + s)}
		if g.isa == avx512 {
			VFMADD231PS_BCST(x, col, a)
		} else {
			VBROADCASTSS(x, bc)
			VFMADD231PS(bc, col, a)
		}
	}
}

// transpose emits the in-register transpose of lanes vectors (rows[r] lane c
// = W[r][c]) and returns the result registers; transposeCols says which of
// them holds which column. Per 128-bit lane, VUNPCKLPS/HPS interleave row
// pairs, VUNPCKLPD/HPD pairs of pairs; then 128-bit blocks move whole:
// VSHUFF32X4 twice on AVX-512 (rows 4 and 8 apart), VPERM2F128 once on AVX2.
// 4·16 shuffles for AVX-512, 3·8 for AVX2.
func transpose(i *isa, rows []reg.VecVirtual) []reg.VecVirtual {
	R := append([]reg.VecVirtual(nil), rows...)
	for _, st := range transposeStages(len(R)) {
		for _, r := range st.pairs {
			a, b := R[r], R[r+st.dist]
			lo, hi := i.Vec(), i.Vec()
			switch st.op {
			case "ps":
				VUNPCKLPS(b, a, lo)
				VUNPCKHPS(b, a, hi)
			case "pd":
				VUNPCKLPD(b, a, lo)
				VUNPCKHPD(b, a, hi)
			case "f32x4":
				VSHUFF32X4(U8(0x88), b, a, lo)
				VSHUFF32X4(U8(0xdd), b, a, hi)
			case "f128":
				VPERM2F128(U8(0x20), b, a, lo)
				VPERM2F128(U8(0x31), b, a, hi)
			}
			R[r], R[r+st.dist] = lo, hi
		}
	}
	return R
}

// transposeStage is one level of the transpose: op on each pair (r, r+dist).
type transposeStage struct {
	op    string
	dist  int
	pairs []int
}

func transposeStages(n int) []transposeStage {
	pairs := func(dist int) []int {
		var p []int
		for r := 0; r < n; r++ {
			if r&dist == 0 {
				p = append(p, r)
			}
		}
		return p
	}
	st := []transposeStage{{"ps", 1, pairs(1)}, {"pd", 2, pairs(2)}}
	if n == 8 {
		return append(st, transposeStage{"f128", 4, pairs(4)})
	}
	return append(st, transposeStage{"f32x4", 4, pairs(4)}, transposeStage{"f32x4", 8, pairs(8)})
}

// transposeCols runs transposeStages on labels (lane c of row r is r*n+c) and
// returns, for each column c, the register that holds it; it panics unless
// every result register is one column with the rows in lane order.
func transposeCols(n int) []int {
	R := make([][]int, n)
	for r := range R {
		R[r] = make([]int, n)
		for c := range R[r] {
			R[r][c] = r*n + c
		}
	}
	for _, st := range transposeStages(n) {
		for _, r := range st.pairs {
			a, b := R[r], R[r+st.dist]
			R[r], R[r+st.dist] = shuffle(st.op, a, b, false), shuffle(st.op, a, b, true)
		}
	}
	cols := make([]int, n)
	for r, v := range R {
		c := v[0] % n
		for l, e := range v {
			if e != l*n+c {
				panic(fmt.Sprintf("transpose: register %d lane %d holds W[%d][%d]", r, l, e/n, e%n))
			}
		}
		cols[c] = r
	}
	return cols
}

// shuffle models one instruction of transpose on lane labels: hi selects the
// second instruction of the pair (UNPCKH*, the odd 128-bit blocks).
func shuffle(op string, a, b []int, hi bool) []int {
	n := len(a)
	out := make([]int, n)
	h := 0
	if hi {
		h = 1
	}
	switch op {
	case "ps", "pd":
		w := 1
		if op == "pd" {
			w = 2
		}
		for q := 0; q < n; q += 4 {
			o := q
			for e := h * 2 / w; e < (h+1)*2/w; e++ {
				for _, src := range [][]int{a, b} {
					copy(out[o:o+w], src[q+e*w:q+e*w+w])
					o += w
				}
			}
		}
	case "f32x4": // imm 0x88 (blocks 0, 2 of a then of b) or 0xdd (1, 3)
		for q := 0; q < 4; q++ {
			src := a
			if q >= 2 {
				src = b
			}
			s := 2*(q%2) + h
			copy(out[4*q:4*q+4], src[4*s:4*s+4])
		}
	case "f128": // imm 0x20 (a.lo, b.lo) or 0x31 (a.hi, b.hi)
		copy(out[:4], a[4*h:4*h+4])
		copy(out[4:], b[4*h:4*h+4])
	}
	return out
}
