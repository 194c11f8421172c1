package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// columns is the loop over the k columns of a row in tiles of c vectors, then
// one tile of the remaining whole vectors (fewer than c), then a masked vector
// for the last k mod lanes columns. tile gets the byte offset of its first
// column.
//
//	for ; coff+4*lanes*c <= 4*k; coff += 4*lanes*c { tile(c, false) }
//	if w := (4*k-coff)/(4*lanes); w > 0 { tile(w, false); coff += 4*lanes*w }
//	if coff < 4*k { tile(1, true) }
func columns(i *isa, lbl string, c int, kb Mem, tile func(coff reg.GPVirtual, c int, masked bool)) {
	vb := i.VBytes()
	coff := GP64()
	XORQ(coff, coff)
	l := fmt.Sprintf("%s_c%d", lbl, c)
	Label(l)
	Commentf("for ; coff+%d <= 4*k; coff += %d", c*vb, c*vb)
	e := GP64()
	LEAQ(Mem{Base: coff, Disp: c * vb}, e)
	CMPQ(e, kb)
	JA(LabelRef(l + "_end"))
	tile(coff, c, false)
	ADDQ(U32(c*vb), coff)
	JMP(LabelRef(l))
	Label(l + "_end")
	for w := c - 1; w >= 1; w-- {
		l := fmt.Sprintf("%s_c%d", lbl, w)
		Commentf("if coff+%d <= 4*k: the last %d whole vectors", w*vb, w)
		e := GP64()
		LEAQ(Mem{Base: coff, Disp: w * vb}, e)
		CMPQ(e, kb)
		JA(LabelRef(l + "_end"))
		tile(coff, w, false)
		ADDQ(U32(w*vb), coff)
		JMP(LabelRef(lbl + "_tail"))
		Label(l + "_end")
	}
	Label(lbl + "_tail")
	Commentf("if coff < 4*k: the last k mod %d columns, masked", i.Lanes)
	CMPQ(coff, kb)
	JE(LabelRef(lbl + "_cdone"))
	tile(coff, 1, true)
	Label(lbl + "_cdone")
}

// backDataTile is a LinearBackData register tile: m samples × c vectors of
// dx columns; pf > 0 prefetches each W row that many bytes ahead, pf < 0
// prefetches the tile's columns of the W rows -pf (1, 2, 4 or 8) and -pf+1
// ahead.
// backDataTile is a LinearBackData register tile: m samples × c vectors of
// columns. pf < 0 prefetches W's rows -pf and -pf+1 ahead, pf > 0 each row pf
// bytes ahead, pf = 0 nothing.
type backDataTile struct{ m, c, pf int }

/*
	for i := 0; i < m; i++ {
		for c := 0; c < k; c++ {
			acc := +0
			for j := 0; j < n; j++ { acc = fma(dy[i][j], W[j][c], acc) }
			dx[i][c] = acc
		}
	}
*/
// With np, backData emits the twin of a prefetching tile without its prefetch
// (the kernel's name gets "np").
func backData(i *isa, t backDataTile, np bool) {
	suffix, pfDoc := "", "It prefetches nothing."
	if np {
		t.pf = 0
	}
	switch {
	case np:
		suffix, pfDoc = "np", "It prefetches nothing (the twin of the kernel without \"np\", which prefetches W's rows)."
	case t.pf < 0:
		pfDoc = fmt.Sprintf("It prefetches W's rows j+%d and j+%d.", -t.pf, -t.pf+1)
	case t.pf > 0:
		pfDoc = fmt.Sprintf("It prefetches each W row %d bytes ahead.", t.pf)
	}
	name := fmt.Sprintf("linearBackData_%dx%d%s_%s", t.m, t.c*i.Lanes, suffix, i.Name)
	TEXT(name, NOSPLIT, "func(dx *float32, ldx int, dy *float32, ldy int, w *float32, ldw int, n, k int, more bool)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearBackData for %d sample(s) (n, k ≥ 1): tiles of %d columns × %d sample(s)", name, t.m, t.c*i.Lanes, t.m),
		fmt.Sprintf("in %d %s accumulators, each lane one element's FMA chain over j ascending from +0,", t.m*t.c, i.Kind),
		"or, if more, continued from dx (the caller runs the chain over blocks of W's rows).",
		pfDoc)
	Comment("dyp[i] = &dy[i*ldy]")
	ldy4 := simd.Load4("ldy")
	dyp := make([]reg.GPVirtual, t.m)
	for s := range dyp {
		dyp[s] = GP64()
		if s == 0 {
			MOVQ(simd.Arg("dy"), dyp[s])
		} else {
			LEAQ(simd.At(dyp[s-1], ldy4, 0), dyp[s])
		}
	}
	kb, n4, ldw4, ldx4 := simd.Local4("k"), simd.Local4("n"), simd.Local4("ldw"), simd.Local4("ldx")
	n8 := AllocLocal(8)
	{
		Comment("n8 = 4*n - 8: two more rows are left while j <= n8")
		r := GP64()
		MOVQ(n4, r)
		SUBQ(U8(8), r)
		MOVQ(r, n8)
	}
	tr := GP64()
	MOVQ(simd.Arg("k"), tr)
	ANDQ(U8(i.Lanes-1), tr)
	tl := setupTail(i, tr)

	columns(i, name, t.c, kb, func(coff reg.GPVirtual, c int, masked bool) {
		lbl := fmt.Sprintf("%s_%dx%d", name, t.m, c)
		if masked {
			lbl += "m"
		}
		var tp reg.GPVirtual
		if masked && i == avx2 {
			tp = tl.avx2Ptr()
		}
		Commentf("Tile of %d sample(s) × %d column(s) at coff: acc[i][v] = more ? dx[i][c] : +0", t.m, c*i.Lanes)
		acc := make([][]reg.VecVirtual, t.m)
		for s := range acc {
			acc[s] = i.Vecs(c)
		}
		CMPB(simd.Arg("more"), U8(0))
		JE(LabelRef(lbl + "_zero"))
		dp := GP64()
		MOVQ(simd.Arg("dx"), dp)
		ADDQ(coff, dp)
		for s := range acc {
			for v, a := range acc[s] {
				m := Mem{Base: dp, Disp: v * i.VBytes()}
				if masked {
					tl.load(m, tp, 0, a)
				} else {
					VMOVUPS(m, a)
				}
			}
			if s+1 < len(acc) {
				ADDQ(ldx4, dp)
			}
		}
		JMP(LabelRef(lbl + "_j0"))
		Label(lbl + "_zero")
		for s := range acc {
			for _, a := range acc[s] {
				VXORPS(a, a, a)
			}
		}
		Label(lbl + "_j0")
		wj := GP64()
		MOVQ(simd.Arg("w"), wj)
		ADDQ(coff, wj)
		lw := GP64()
		MOVQ(ldw4, lw)
		j := GP64()
		XORQ(j, j)
		// step is one j: row (wj)+off of W, broadcasts dy[i][j+dj].
		var pfRow Mem
		step := func(row Mem, dj int) {
			wv := i.Vecs(c)
			for v, x := range wv {
				m := row
				m.Disp += v * i.VBytes()
				if masked {
					tl.load(m, tp, 0, x)
				} else {
					VMOVUPS(m, x)
				}
			}
			if t.pf > 0 && !masked {
				for v := 0; v < c; v++ {
					m := row
					m.Disp += v*i.VBytes() + t.pf
					PREFETCHT0(m)
				}
			}
			if t.pf < 0 && !masked {
				for v := 0; v < c; v++ {
					m := pfRow
					m.Disp += v * i.VBytes()
					if dj == 1 {
						m = simd.At(pfRow.Base, lw, v*i.VBytes())
					}
					PREFETCHT0(m)
				}
			}
			for s := range acc {
				b := i.Vec()
				VBROADCASTSS(simd.At(dyp[s], j, 4*dj), b)
				for v := range wv {
					VFMADD231PS(wv[v], b, acc[s][v])
				}
			}
		}
		Comment("for j := 0; j+2 <= n; j += 2 { acc[i][c] = fma(dy[i][j], W[j][c], acc[i][c]); the same for j+1 }")
		CMPQ(n4, U8(8))
		JB(LabelRef(lbl + "_j1"))
		Label(lbl + "_j2")
		if t.pf < 0 {
			Commentf("prefetch W[j+%d], W[j+%d]", -t.pf, -t.pf+1)
			pr := GP64()
			LEAQ(Mem{Base: wj, Index: lw, Scale: uint8(-t.pf)}, pr)
			pfRow = Mem{Base: pr}
		}
		step(Mem{Base: wj}, 0)
		step(simd.At(wj, lw, 0), 1)
		LEAQ(Mem{Base: wj, Index: lw, Scale: 2}, wj)
		ADDQ(U8(8), j)
		CMPQ(j, n8)
		JLE(LabelRef(lbl + "_j2"))
		Label(lbl + "_j1")
		Comment("if j < n { acc[i][c] = fma(dy[i][j], W[j][c], acc[i][c]) }")
		CMPQ(j, n4)
		JAE(LabelRef(lbl + "_jdone"))
		pf := t.pf
		t.pf = 0
		step(Mem{Base: wj}, 0)
		t.pf = pf
		Label(lbl + "_jdone")
		Comment("dx[i][c] = acc[i][c]")
		dp = GP64()
		MOVQ(simd.Arg("dx"), dp)
		ADDQ(coff, dp)
		for s := range acc {
			for v, a := range acc[s] {
				m := Mem{Base: dp, Disp: v * i.VBytes()}
				if masked {
					tl.store(a, tp, m)
				} else {
					VMOVUPS(a, m)
				}
			}
			if s+1 < len(acc) {
				ADDQ(ldx4, dp)
			}
		}
	})
	simd.Ret()
}

// backWeightTile is a LinearBackWeight register tile: r rows of dW × c vectors
// of columns.
type backWeightTile struct{ r, c int }

/*
	for j := 0; j < n; j++ {
		for c := 0; c < k; c++ {
			acc := float32(0)
			for i := 0; i < m; i++ { acc = fma(dy[i][j], x[i][c], acc) }
			dW[j][c] += acc
		}
	}
*/
func backWeight(i *isa, t backWeightTile) {
	name := fmt.Sprintf("linearBackWeight_%dx%d_%s", t.r, t.c*i.Lanes, i.Name)
	TEXT(name, NOSPLIT, "func(dw *float32, ldw int, dy *float32, ldy int, x *float32, ldx int, m, n, k int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearBackWeight (m, n, k ≥ 1): tiles of %d rows × %d columns of dW", name, t.r, t.c*i.Lanes),
		fmt.Sprintf("in %d %s accumulators, then single rows; each lane is one element's FMA chain", t.r*t.c, i.Kind),
		"from +0 over the samples i ascending, then added to dW.")
	kb, ldw4, ldx4, ldy4 := simd.Local4("k"), simd.Local4("ldw"), simd.Local4("ldx"), simd.Local4("ldy")
	nrem, dwrow, dycol := simd.Local("n"), simd.Local("dw"), simd.Local("dy")
	tr := GP64()
	MOVQ(simd.Arg("k"), tr)
	ANDQ(U8(i.Lanes-1), tr)
	tl := setupTail(i, tr)

	rowTile := func(r int) {
		lbl := fmt.Sprintf("%s_%d", name, r)
		Commentf("Tile of %d row(s): dwp[j] = &dW[j][0]", r)
		dwp := make([]reg.GPVirtual, r)
		l := GP64()
		MOVQ(ldw4, l)
		for j := range dwp {
			dwp[j] = GP64()
			if j == 0 {
				MOVQ(dwrow, dwp[j])
			} else {
				LEAQ(simd.At(dwp[j-1], l, 0), dwp[j])
			}
		}
		columns(i, lbl, t.c, kb, func(coff reg.GPVirtual, c int, masked bool) {
			clbl := fmt.Sprintf("%s_%dx%d", lbl, r, c)
			if masked {
				clbl += "m"
			}
			var tp reg.GPVirtual
			if masked && i == avx2 {
				tp = tl.avx2Ptr()
			}
			Commentf("Tile of %d row(s) × %d column(s) at coff: acc[j][v] = +0", r, c*i.Lanes)
			acc := make([][]reg.VecVirtual, r)
			for j := range acc {
				acc[j] = i.Vecs(c)
				for _, a := range acc[j] {
					VXORPS(a, a, a)
				}
			}
			xi := GP64()
			MOVQ(simd.Arg("x"), xi)
			ADDQ(coff, xi)
			dyi := GP64()
			MOVQ(dycol, dyi)
			lx, ly := GP64(), GP64()
			MOVQ(ldx4, lx)
			MOVQ(ldy4, ly)
			cnt := GP64()
			MOVQ(simd.Arg("m"), cnt)
			// step is one sample: x row xrow, dy row dyrow.
			step := func(xrow, dyrow Mem) {
				xv := i.Vecs(c)
				for v, x := range xv {
					m := xrow
					m.Disp += v * i.VBytes()
					if masked {
						tl.load(m, tp, 0, x)
					} else {
						VMOVUPS(m, x)
					}
				}
				for j := range acc {
					b := i.Vec()
					m := dyrow
					m.Disp += 4 * j
					VBROADCASTSS(m, b)
					for v := range xv {
						VFMADD231PS(xv[v], b, acc[j][v])
					}
				}
			}
			Comment("for i := 0; i+2 <= m; i += 2 { acc[j][c] = fma(dy[i][j], x[i][c], acc[j][c]); the same for i+1 }")
			CMPQ(cnt, U8(2))
			JB(LabelRef(clbl + "_i1"))
			Label(clbl + "_i2")
			step(Mem{Base: xi}, Mem{Base: dyi})
			step(simd.At(xi, lx, 0), simd.At(dyi, ly, 0))
			LEAQ(Mem{Base: xi, Index: lx, Scale: 2}, xi)
			LEAQ(Mem{Base: dyi, Index: ly, Scale: 2}, dyi)
			SUBQ(U8(2), cnt)
			CMPQ(cnt, U8(2))
			JAE(LabelRef(clbl + "_i2"))
			Label(clbl + "_i1")
			Comment("if i < m { acc[j][c] = fma(dy[i][j], x[i][c], acc[j][c]) }")
			CMPQ(cnt, U8(0))
			JE(LabelRef(clbl + "_idone"))
			step(Mem{Base: xi}, Mem{Base: dyi})
			Label(clbl + "_idone")
			Comment("dW[j][c] += acc[j][c]")
			for j := range acc {
				for v, a := range acc[j] {
					m := simd.At(dwp[j], coff, v*i.VBytes())
					if masked {
						d := i.Vec()
						tl.load(m, tp, 0, d)
						VADDPS(d, a, a)
					} else {
						VADDPS(m, a, a)
					}
					if masked {
						tl.store(a, tp, m)
					} else {
						VMOVUPS(a, m)
					}
				}
			}
		})
		Commentf("next rows: dW += %d*ldw, dy += %d, n -= %d", r, r, r)
		LEAQ(simd.At(dwp[r-1], l, 0), l)
		MOVQ(l, dwrow)
		ADDQ(U8(4*r), dycol)
		SUBQ(U8(r), nrem)
	}

	if t.r > 1 {
		Label(name + "_rows")
		Commentf("for ; n >= %d; n -= %d", t.r, t.r)
		CMPQ(nrem, U8(t.r))
		JL(LabelRef(name + "_row"))
		rowTile(t.r)
		JMP(LabelRef(name + "_rows"))
	}
	Label(name + "_row")
	Comment("for ; n > 0; n--")
	CMPQ(nrem, U8(0))
	JE(LabelRef(name + "_done"))
	rowTile(1)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	simd.Ret()
}

// streamUpdate emits the read-modify-write bandwidth probe that the
// LinearBackWeight benchmarks compare with where dW's traffic bounds the
// kernel: it loads and stores back every vector of p[:n] in place, the
// traffic of a call to LinearBackWeight on a dW of n float32s.
//
//	for i := 0; i < n; i += 8*lanes { p[i:][:8*lanes] = p[i:][:8*lanes] }
func streamUpdate(i *isa) {
	name := "linearStreamUpdate_" + i.Name
	TEXT(name, NOSPLIT, "func(p *float32, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s loads and stores back p[:n] (n > 0 a multiple of %d) with %s moves:", name, 8*i.Lanes, i.Kind),
		"the read-modify-write bandwidth probe of the LinearBackWeight benchmarks.")
	p := GP64()
	MOVQ(simd.Arg("p"), p)
	end := simd.Load4("n")
	ADDQ(p, end)
	Label(name + "_loop")
	Commentf("p[:%d] = p[:%d]", 8*i.Lanes, 8*i.Lanes)
	v := i.Vecs(8)
	for a, x := range v {
		VMOVUPS(Mem{Base: p, Disp: a * i.VBytes()}, x)
	}
	for a, x := range v {
		VMOVUPS(x, Mem{Base: p, Disp: a * i.VBytes()})
	}
	ADDQ(U32(8*i.VBytes()), p)
	CMPQ(p, end)
	JB(LabelRef(name + "_loop"))
	simd.Ret()
}
