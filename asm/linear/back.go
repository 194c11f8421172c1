package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/cnngen/cnngen/asm/internal/simd"
)

// columns is the loop over the k columns of a row in tiles of c vectors, then
// single vectors, then a masked vector for the last k mod lanes columns. tile
// gets the byte offset of its first column.
//
//	for ; coff+4*lanes*c <= 4*k; coff += 4*lanes*c { tile(c, false) }
//	for ; coff+4*lanes <= 4*k; coff += 4*lanes { tile(1, false) }
//	if coff < 4*k { tile(1, true) }
func columns(i *isa, lbl string, c int, kb Mem, tile func(coff reg.GPVirtual, c int, masked bool)) {
	vb := i.VBytes()
	coff := GP64()
	XORQ(coff, coff)
	widths := []int{c}
	if c > 1 {
		widths = append(widths, 1)
	}
	for _, w := range widths {
		l := fmt.Sprintf("%s_c%d", lbl, w)
		Label(l)
		Commentf("for ; coff+%d <= 4*k; coff += %d", w*vb, w*vb)
		e := GP64()
		LEAQ(Mem{Base: coff, Disp: w * vb}, e)
		CMPQ(e, kb)
		JA(LabelRef(l + "_end"))
		tile(coff, w, false)
		ADDQ(U32(w*vb), coff)
		JMP(LabelRef(l))
		Label(l + "_end")
	}
	Commentf("if coff < 4*k: the last k mod %d columns, masked", i.Lanes)
	CMPQ(coff, kb)
	JE(LabelRef(lbl + "_cdone"))
	tile(coff, 1, true)
	Label(lbl + "_cdone")
}

// backDataTile is a LinearBackData register tile: m samples × c vectors of
// dx columns; pf > 0 prefetches each W row that many bytes ahead.
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
func backData(i *isa, t backDataTile) {
	name := fmt.Sprintf("linearBackData_%dx%d_%s", t.m, t.c*i.Lanes, i.Name)
	TEXT(name, NOSPLIT, "func(dx *float32, ldx int, dy *float32, ldy int, w *float32, ldw int, n, k int, more bool)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearBackData for %d sample(s) (n, k ≥ 1): tiles of %d columns × %d sample(s)", name, t.m, t.c*i.Lanes, t.m),
		fmt.Sprintf("in %d %s accumulators, each lane one element's FMA chain over j ascending from +0,", t.m*t.c, i.Kind),
		"or, if more, continued from dx (the caller runs the chain over blocks of W's rows).")
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
		j := GP64()
		XORQ(j, j)
		Label(lbl + "_j")
		Comment("for j := 0; j < n; j++ { acc[i][c] = fma(dy[i][j], W[j][c], acc[i][c]) }")
		wv := i.Vecs(c)
		for v, x := range wv {
			if masked {
				tl.load(Mem{Base: wj, Disp: v * i.VBytes()}, tp, 0, x)
			} else {
				VMOVUPS(Mem{Base: wj, Disp: v * i.VBytes()}, x)
			}
		}
		if t.pf > 0 && !masked {
			for v := 0; v < c; v++ {
				PREFETCHT0(Mem{Base: wj, Disp: v*i.VBytes() + t.pf})
			}
		}
		for s := range acc {
			b := i.Vec()
			VBROADCASTSS(simd.At(dyp[s], j, 0), b)
			for v := range wv {
				VFMADD231PS(wv[v], b, acc[s][v])
			}
		}
		ADDQ(ldw4, wj)
		ADDQ(U8(4), j)
		CMPQ(j, n4)
		JB(LabelRef(lbl + "_j"))
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
			acc := dW[j][c]
			for i := 0; i < m; i++ { acc = fma(dy[i][j], x[i][c], acc) }
			dW[j][c] = acc
		}
	}
*/
func backWeight(i *isa, t backWeightTile) {
	name := fmt.Sprintf("linearBackWeight_%dx%d_%s", t.r, t.c*i.Lanes, i.Name)
	TEXT(name, NOSPLIT, "func(dw *float32, ldw int, dy *float32, ldy int, x *float32, ldx int, m, n, k int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is LinearBackWeight (m, n, k ≥ 1): tiles of %d rows × %d columns of dW", name, t.r, t.c*i.Lanes),
		fmt.Sprintf("in %d %s accumulators, then single rows; each lane is one element's FMA chain", t.r*t.c, i.Kind),
		"from its value in dW over the samples i ascending.")
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
			Commentf("Tile of %d row(s) × %d column(s) at coff: acc[j][v] = dW[j][c]", r, c*i.Lanes)
			acc := make([][]reg.VecVirtual, r)
			for j := range acc {
				acc[j] = i.Vecs(c)
				for v, a := range acc[j] {
					m := simd.At(dwp[j], coff, v*i.VBytes())
					if masked {
						tl.load(m, tp, 0, a)
					} else {
						VMOVUPS(m, a)
					}
				}
			}
			xi := GP64()
			MOVQ(simd.Arg("x"), xi)
			ADDQ(coff, xi)
			dyi := GP64()
			MOVQ(dycol, dyi)
			cnt := GP64()
			MOVQ(simd.Arg("m"), cnt)
			Label(clbl + "_i")
			Comment("for i := 0; i < m; i++ { acc[j][c] = fma(dy[i][j], x[i][c], acc[j][c]) }")
			xv := i.Vecs(c)
			for v, x := range xv {
				m := Mem{Base: xi, Disp: v * i.VBytes()}
				if masked {
					tl.load(m, tp, 0, x)
				} else {
					VMOVUPS(m, x)
				}
			}
			for j := range acc {
				b := i.Vec()
				VBROADCASTSS(Mem{Base: dyi, Disp: 4 * j}, b)
				for v := range xv {
					VFMADD231PS(xv[v], b, acc[j][v])
				}
			}
			ADDQ(ldx4, xi)
			ADDQ(ldy4, dyi)
			DECQ(cnt)
			JNZ(LabelRef(clbl + "_i"))
			Comment("dW[j][c] = acc[j][c]")
			for j := range acc {
				for v, a := range acc[j] {
					m := simd.At(dwp[j], coff, v*i.VBytes())
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
