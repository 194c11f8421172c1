package gen

import (
	"fmt"
	"github.com/cnngen/cnngen/runtime/winograd"
	"slices"

	"github.com/dave/jennifer/jen"

	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/runtime/nn"
)

// program emits the step functions of one program: evalN for Eval, fwdN and bwdN...
// for Grad.
func (e *emitter) program(f *jen.File, prog *Program) {
	grad := prog.Name == "grad"
	for i, st := range prog.Steps {
		name := stepFunc("eval", i, st, "")
		if grad {
			name = stepFunc("fwd", i, st, "")
		}
		g := &stepGen{e: e, prog: prog, st: st, grad: grad}
		f.Comment(fmt.Sprintf("%s computes %s.", name, describe(st)))
		f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id(name).Params(jen.Id("w"), jen.Id("nw").Int()).Block(g.forward()...)
	}
	if !grad {
		return
	}
	for i := len(prog.Steps) - 1; i >= 0; i-- {
		st := prog.Steps[i]
		g := &stepGen{e: e, prog: prog, st: st, grad: true}
		for _, part := range backwardParts(st) {
			name := stepFunc("bwd", i, st, part)
			f.Comment(fmt.Sprintf("%s is the backward pass (%s) of %s.", name, partDoc[part], describe(st)))
			f.Func().Params(jen.Id("m").Op("*").Id("Model")).Id(name).Params(jen.Id("w"), jen.Id("nw").Int()).Block(g.backward(part)...)
		}
	}
}

var partDoc = map[string]string{
	"":       "input gradient",
	"Mask":   "ReLU mask on the output gradient",
	"Bias":   "bias gradient",
	"Weight": "weight gradient",
	"Data":   "input gradient",
}

// backwardParts lists the backward functions of a step, in the order they run.
func backwardParts(st *Step) []string {
	switch st.Op {
	case OpConv:
		parts := []string{}
		if st.ReLU {
			parts = append(parts, "Mask")
		}
		if st.Layer.Bias {
			parts = append(parts, "Bias")
		}
		return append(parts, "Weight", "Data")
	case OpLinear:
		parts := []string{}
		if st.ReLU {
			parts = append(parts, "Mask")
		}
		return append(parts, "Weight", "Data")
	}
	return []string{""}
}

type stepGen struct {
	e    *emitter
	prog *Program
	st   *Step
	grad bool
}

// ref is the Go expression for a buffer's slice.
func (g *stepGen) ref(b *Buffer) string {
	switch {
	case !g.grad:
		return fmt.Sprintf("m.eb[%d]", b.ID)
	case b.Int:
		return fmt.Sprintf("m.gi[%d]", b.ID)
	}
	return fmt.Sprintf("m.gb[%d]", b.ID)
}

// geom declares a buffer's geometry as constants with the given prefix:
// <p>S (values per sample), <p>RS (row stride), <p>I (offset of pixel 0,0).
func geom(prefix string, b *Buffer) []jen.Code {
	return []jen.Code{
		x("%sS = %d", prefix, b.Size),
		x("%sRS = %d", prefix, b.RowStride()),
		x("%sI = %d", prefix, b.Interior()),
	}
}

// zeroHalos clears, for the samples this worker owns, the halo of a buffer the step
// writes; the interior is written by the step itself.
func (g *stepGen) zeroHalos(b *Buffer) []jen.Code {
	if b.Flat || (b.PH == 0 && b.PW == 0) {
		return nil
	}
	return []jen.Code{
		jen.Comment("The next convolution reads a zero halo around this buffer."),
		jen.Qual(pkgNN, "ZeroHalos").Call(x("%s", g.ref(b)), x("m.n"), jen.Lit(b.Size), jen.Lit(b.H), jen.Lit(b.W), jen.Lit(b.C), jen.Lit(b.PH), jen.Lit(b.PW), jen.Id("w"), jen.Id("nw")),
	}
}

func (g *stepGen) forward() []jen.Code {
	st := g.st
	switch st.Op {
	case OpInput:
		return g.inputFwd()
	case OpConv:
		return g.convFwd()
	case OpBN:
		return g.bnFwd()
	case OpReLU:
		return g.reluFwd()
	case OpMaxPool:
		return g.maxPoolFwd()
	case OpAvgPool:
		return g.avgPoolFwd()
	case OpLRN:
		return g.lrnFwd()
	case OpDropout:
		return g.dropoutFwd()
	case OpFlatten:
		return g.flattenFwd()
	case OpLinear:
		return g.linearFwd()
	}
	panic(fmt.Sprintf("gen: no forward emitter for %v", st.Op))
}

func (g *stepGen) backward(part string) []jen.Code {
	st := g.st
	switch st.Op {
	case OpInput:
		return g.inputBwd()
	case OpConv:
		switch part {
		case "Mask":
			return g.reluMask(st.Out, st.DOut)
		case "Bias":
			return g.convBiasBwd()
		case "Weight":
			return g.convWeightBwd()
		case "Data":
			return g.convDataBwd()
		}
	case OpBN:
		return g.bnBwd()
	case OpReLU:
		return g.reluBwd()
	case OpMaxPool:
		return g.maxPoolBwd()
	case OpAvgPool:
		return g.avgPoolBwd()
	case OpLRN:
		return g.lrnBwd()
	case OpDropout:
		return g.dropoutBwd()
	case OpFlatten:
		return g.flattenBwd()
	case OpLinear:
		switch part {
		case "Mask":
			return g.reluMask(st.Out, st.DOut)
		case "Weight":
			return g.linearWeightBwd()
		case "Data":
			return g.linearDataBwd()
		}
	}
	panic(fmt.Sprintf("gen: no backward emitter for %v part %q", st.Op, part))
}

// rows renders the loop over this worker's (sample, row) pairs of an h-row tensor:
//
//	lo, hi := parallel.Span(m.n*h, w, nw)
//	for r := lo; r < hi; r++ { b, y := r/h, r%h; body }
func rows(h int, y string, body ...jen.Code) []jen.Code {
	inner := append([]jen.Code{x("b, %s := r/%d, r%%%d", y, h, h)}, body...)
	return []jen.Code{span(fmt.Sprintf("m.n*%d", h)), loop("r", "lo", "hi", inner...)}
}

/*
	for each claim of inputClaim rows [r0, r1) {
		for r := r0; r < r1; r++ {
			b, y := r/H, r%H
			nn.ToNHWC(out row y of sample b, m.x row y of sample b's first plane, C, H*W, W)
		}
	}
*/
func (g *stepGen) inputFwd() []jen.Code {
	out := g.st.Out
	code := []jen.Code{
		jen.Const().Defs(append([]jen.Code{x("C, H, W = %d, %d, %d", out.C, out.H, out.W)}, geom("O", out)...)...),
		x("out := %s", g.ref(out)),
	}
	code = append(code, g.zeroHalos(out)...)
	return append(code,
		jen.Comment("The workers claim rows as they become free: a Forward's first task may find"),
		jen.Comment("some of them still waking up, and the others take their rows."),
		x("const CLAIM = %d", inputClaim),
		x("rows := m.n * H"),
		jen.For().Block(
			x("r0 := int(m.next.Add(CLAIM)) - CLAIM"),
			jen.If(x("r0 >= rows")).Block(jen.Return()),
			x("r1 := min(r0+CLAIM, rows)"),
			loop("r", "r0", "r1",
				x("b, y := r/H, r%%H"),
				jen.Qual(pkgNN, "ToNHWC").Call(x("out[b*OS+OI+y*ORS:]"), x("m.x[(b*C*H+y)*W:]"), x("C"), x("H*W"), x("W")),
			),
		),
	)
}

// inputClaim is how many rows of the input a worker converts per claim.
const inputClaim = 16

func (g *stepGen) inputBwd() []jen.Code {
	d := g.st.DOut
	return append([]jen.Code{
		jen.Const().Defs(append([]jen.Code{x("C, H, W = %d, %d, %d", d.C, d.H, d.W)}, geom("D", d)...)...),
		x("dout, dx := %s, %s", g.ref(d), g.ref(g.prog.DX)),
	}, rows(d.H, "y",
		jen.Qual(pkgNN, "FromNHWC").Call(x("dx[(b*C*H+y)*W:]"), x("dout[b*DS+DI+y*DRS:]"), x("C"), x("H*W"), x("W")),
	)...)
}

// convConsts declares a convolution step's dimensions.
func (g *stepGen) convConsts() (*ConvPlan, jen.Code) {
	st := g.st
	l := st.Layer
	_, c := g.e.p.convOf(l)
	in, out := st.In, st.Out
	defs := []jen.Code{
		x("H, W, C = %d, %d, %d", l.In.H, l.In.W, l.In.C),
		x("OH, OW, OC = %d, %d, %d", l.Out.H, l.Out.W, l.OutC),
		x("KH, KW, SH, SW, PH, PW = %d, %d, %d, %d, %d, %d", l.KH, l.KW, l.SH, l.SW, l.PH, l.PW),
		x("G, ICg, OCg, OCB, ICB = %d, %d, %d, %d, %d", c.Groups, c.ICg, c.OCg, c.OCB, c.ICB),
		x("NR = %d", kernels.NR),
		x("PACK = KH * KW * ICg * NR // one output-channel block of packed weights"),
	}
	defs = append(defs, geom("I", in)...)
	defs = append(defs, x("IOFF = %d // input offset of the top-left tap of output (0, 0)", (in.PH-l.PH)*in.RowStride()+(in.PW-l.PW)*in.C))
	defs = append(defs, geom("O", out)...)
	return c, jen.Const().Defs(defs...)
}

/*
	for each run of rows [r0, r1) this worker claims (see chunked) {
		for u := 0; u < G*OCB; u++ {           // channel blocks (group, block)
			for r := r0; r < r1; r++ {
				b, oy := r/OH, r%OH
				kernels.ConvNHWC(out row oy, block u, ..., relu)
			}
		}
	}

or, for a schedule split by blocks, each claimed block over every row.
*/
func (g *stepGen) convFwd() []jen.Code {
	st := g.st
	c, consts := g.convConsts()
	pack, bias := "pack", "bias"
	if !g.grad {
		pack, bias = "packE", "biasE"
	}
	bufs := x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out))
	if st.Pool != nil && !Winograd(st.Layer) { // (only the eval program pools in a convolution)
		bufs = x("in := %s // the output rows go to the ring", g.ref(st.In))
	}
	code := []jen.Code{
		consts,
		bufs,
		x("wt, bias := m.w.%s[%d], m.w.%s[%d]", pack, st.ConvIndex, bias, st.ConvIndex),
	}
	code = append(code, g.zeroHalos(st.Out)...)
	if !g.grad && Winograd(st.Layer) {
		code = append(code, jen.If(x("m.fast")).Block(
			jen.Comment("Fast mode: Winograd F(4×4, 3×3); the workers split the tile rows of the batch."),
			x("const TR = %d // tile rows per sample", winograd.TileRows(st.Layer.Out.H)),
			span("m.n*TR"),
			jen.For(x("r := lo; r < hi;")).Block(
				x("b, t0 := r/TR, r%%TR"),
				x("t1 := min(TR, t0+hi-r)"),
				jen.Qual(pkgWinograd, "Conv").Call(x("out[b*OS+OI:]"), x("ORS"), x("in[b*IS+IOFF:]"), x("IRS"), x("OH"), x("OW"), x("C"), x("OC"), x("m.w.wino[%d]", st.ConvIndex), x("bias"), jen.Lit(st.ReLU), x("t0"), x("t1"), x("m.wscratch[w]")),
				x("r += t1 - t0"),
			),
			jen.Return(),
		))
	}
	// Without groups a kernel row's KW taps × C channels are one contiguous run of
	// the input, in the pack's order too: one tap of KW*C channels sums them in the
	// same order with fewer loop trips (AlexNet's and VGG's first layers, C = 3).
	cin, kw := x("ICg"), x("KW")
	if st.Layer.Groups == 1 {
		cin, kw = x("KW*C"), jen.Lit(1)
	}
	body := []jen.Code{x("b, oy := r/OH, r%%OH")}
	// A convolution that max pools its output itself writes a window's rows to
	// the worker's ring (see poolRing): claims and blocks' row runs are whole
	// windows, so rows oy-PKH+1 … oy sit in the ring's rows 0 … PKH-1 in order.
	dst, pooled := x("out[b*OS+OI+oy*ORS+g*OCg+ob*NR:]"), st.Pool != nil
	if pooled {
		dst = x("ring[oy%%PKH*ORS+g*OCg+ob*NR:]")
	}
	args := []jen.Code{dst, x("OC"), x("in[b*IS+IOFF+oy*SH*IRS+g*ICg:]"), x("SW*C"), x("IRS"), x("C"), cin, x("KH"), kw,
		x("wt[u*PACK:]"), x("bias[u*NR:]"), x("OW"), x("min(NR, OCg-ob*NR)"), jen.Lit(st.ReLU)}
	next, call := "wt[u2*PACK : (u2+1)*PACK]", "ConvNHWCNext"
	// The input rows the next output row adds.
	nin := x("nin = %s", jen.Qual(pkgNN, "Head").Call(x("in[b*IS+IOFF+((oy+1)*SH+KH-SH)*IRS:]"), x("SH*IRS")).GoString())
	switch {
	case c.Fwd.RowMajor:
		// Each row runs every block; the weights stay in cache. The first block's
		// call prefetches the next row's new input rows. The output either streams
		// to memory (st.Stream: far bigger than the caches, no read for ownership,
		// and the next layer prefetches its input rows anyway; each worker fences
		// before it is done), or each block's call prefetches its share of the
		// next row's output: few channels per call (a first layer's) leave too few
		// kernel iterations for one call to cover a whole row.
		next = ""
		ahead := []jen.Code{jen.If(x("u == 0")).Block(nin)}
		// A ring's next row is in cache: then only the input is prefetched.
		if st.Stream || pooled {
			if st.Stream {
				call = "ConvNHWCStream"
			}
			body = append(body, jen.Var().Id("nin").Index().Float32())
			args = append(args, x("nin"))
		} else {
			ahead = append(ahead, x("nout = %s", jen.Qual(pkgNN, "Part").Call(x("out[b*OS+OI+(oy+1)*ORS:][:OW*OC]"), x("u"), x("G*OCB")).GoString()))
			body = append(body, jen.Var().Id("nin").Op(",").Id("nout").Index().Float32())
			args = append(args, x("nin"), x("nout"))
		}
		body = append(body, jen.If(x("r+1 < r1 && oy+1 < OH")).Block(ahead...))
	case !c.Fwd.ByBlocks:
		args = append(args, jen.Qual(pkgNN, "Part").Call(x("nx"), x("r-r0"), x("r1-r0")))
		// A rows split runs over big activations: while the first block computes a
		// row, it also prefetches the input rows the next row adds and that row's
		// output (all its channels), which would otherwise come from memory; a
		// ring's next row is in cache already.
		if pooled {
			body = append(body,
				jen.Var().Id("nin").Index().Float32(),
				jen.If(x("u == 0 && r+1 < r1 && oy+1 < OH")).Block(nin),
			)
			args = append(args, x("nin"))
			break
		}
		body = append(body,
			jen.Var().Id("nin").Op(",").Id("nout").Index().Float32(),
			jen.If(x("u == 0 && r+1 < r1 && oy+1 < OH")).Block(
				nin,
				x("nout = out[b*OS+OI+(oy+1)*ORS:][:OW*OC]"),
			),
		)
		args = append(args, x("nin"), x("nout"))
	default:
		args = append(args, jen.Qual(pkgNN, "Part").Call(x("nx"), x("r-r0"), x("r1-r0")))
	}
	body = append(body, jen.Qual(pkgKernels, call).Call(args...))
	group := 1
	if pl := st.Pool; pl != nil {
		// The max pool of the next step: after the last row of a row of windows,
		// pool the block's channels of those rows while they are in cache.
		l := pl.Layer
		group = l.KH
		code = append(code, jen.Const().Defs(append([]jen.Code{x("PKH, PKW = %d, %d // %s: %d×%d windows at stride %d×%d", l.KH, l.KW, l.Name, l.KH, l.KW, l.SH, l.SW)}, geom("P", pl.Out)...)...))
		code = append(code, x("pout, ring := %s, m.pring[w]", g.ref(pl.Out)))
		code = append(code, g.zeroHalos(pl.Out)...)
		body = append(body, jen.If(x("oy%%PKH == PKH-1")).Block(
			jen.Qual(pkgKernels, "MaxPoolNHWC").Call(x("pout[b*PS+PI+oy/PKH*PRS+g*OCg+ob*NR:]"), x("OC"), x("ring[g*OCg+ob*NR:]"), x("PKW*OC"), x("ORS"), x("OC"), x("min(NR, OCg-ob*NR)"), x("PKH"), x("PKW"), x("OW/PKW")),
		))
	}
	var after []jen.Code
	if next != "" {
		after = g.nextFirst(pack)
	}
	return append(code, chunked(c.Fwd, st.Stream, "m.n*OH", "G*OCB", next, after, group,
		x("g, ob := u/OCB, u%%OCB"), body...)...)
}

// nextFirst renders what a convolution's last claims prefetch instead of a block
// of their own: statements that set nx to the packed weights of the block the
// worker most likely runs first in the program's next convolution, or nil if
// there is none or its weights are small (RowMajor). Otherwise every worker
// would start that layer waiting for a block (0.3–0.6 MB) from memory: warming
// that block before the layer made AlexNet's 13×13 conv4 2.7–3.4% faster on one
// thread (asm/conv/README.md). In a rows split every claim
// starts with block 0; in a blocks split claim w (the workers' first claims go
// round them in order, most of the time) runs block w/parts. Fast mode runs a
// Winograd convolution from its own weights, so there the prefetch is skipped.
func (g *stepGen) nextFirst(pack string) []jen.Code {
	steps := g.prog.Steps
	i := slices.Index(steps, g.st)
	var ns *Step
	for _, o := range steps[i+1:] {
		if o.Op == OpConv {
			ns = o
			break
		}
	}
	if ns == nil {
		return nil
	}
	_, nc := g.e.p.convOf(ns.Layer)
	if nc.Fwd.RowMajor {
		return nil
	}
	l := ns.Layer
	size, units := l.KH*l.KW*nc.ICg*kernels.NR, nc.Groups*nc.OCB
	set := x("nx = m.w.%s[%d][:%d] // %s's first block", pack, ns.ConvIndex, size, l.Name)
	if nc.Fwd.ByBlocks {
		rows := fmt.Sprintf("m.n*%d", l.Out.H)
		if ns.Pool != nil && ns.Pool.Layer.KH > 1 {
			rows = fmt.Sprintf("m.n*%d/%d", l.Out.H, ns.Pool.Layer.KH)
		}
		set = jen.If(x("nu := w / min(%s, (8*nw+%d)/%d); nu < %d", rows, units-1, units, units)).Block(
			x("nx = m.w.%s[%d][nu*%d : (nu+1)*%d] // the block of %s's claim w", pack, ns.ConvIndex, size, size, l.Name),
		)
	}
	if !g.grad && Winograd(l) {
		return []jen.Code{jen.If(x("!m.fast")).Block(set)}
	}
	return []jen.Code{set}
}

// chunked renders a convolution's loop nest under schedule s over rows (sample,
// row) pairs and units channel blocks; unit is the statement naming the block
// from u, and body runs for row r of the claim's rows [r0, r1). Workers claim work
// from m.next as they become free (a shared counter, no lock), so a core slowed by
// another job does less of it; who computes an output never changes its bits,
// since no sum is split.
//
//	rows split:   claim CLAIM rows at a time (CHUNK, or less so that every worker
//	              gets several), run every block over them (RowMajor: run every
//	              block over each row in turn);
//	blocks split: claim one block at a time, run it over every row (or over one of
//	              ⌈8·workers/blocks⌉ parts of the rows when blocks are few).
//
// If next is not empty, it renders the packed weights of block u2, and the loop
// also sets nx to the weights the worker will most likely read after the block it
// runs: the next block over the same rows in a rows split, the block of the claim
// c+nw in a blocks split (claims go round the workers). body prefetches them,
// a part per row (kernels.ConvNHWCNext with nn.Part(nx, r-r0, r1-r0)), so that
// a block's first row does not wait for its weights to come from memory. With
// fence (a rows split whose body streams its stores), each worker calls
// kernels.StoreFence before it leaves the claim loop.
func chunked(s Schedule, fence bool, rows, units, next string, after []jen.Code, group int, unit jen.Code, body ...jen.Code) []jen.Code {
	if s.ByBlocks {
		claim := []jen.Code{
			x("c := int(m.next.Add(1)) - 1"),
			jen.If(x("c >= (%s)*parts", units)).Block(jen.Return()),
			x("u, part := c/parts, c%%parts"),
			unit,
		}
		parts := x("parts := min(rows, (8*nw+(%s)-1)/(%s))", units, units)
		if group > 1 {
			claim = append(claim, x("r0, r1 := %d*(part*(rows/%d)/parts), %d*((part+1)*(rows/%d)/parts)", group, group, group, group))
			parts = x("parts := min(rows/%d, (8*nw+(%s)-1)/(%s)) // of the rows in groups of %d", group, units, units, group)
		} else {
			claim = append(claim, x("r0, r1 := part*rows/parts, (part+1)*rows/parts"))
		}
		if next != "" {
			pf := jen.If(x("u2 := (c + nw) / parts; u2 != u && u2 < %s", units)).Block(x("nx = %s", next))
			comment := []jen.Code{jen.Comment("Prefetch the block this worker most likely claims next, unless it is this one.")}
			if after != nil {
				pf = pf.Else().If(x("u2 >= %s", units)).Block(after...)
				comment = []jen.Code{
					jen.Comment("Prefetch the block this worker most likely claims next, unless it is this one"),
					jen.Comment("(after its last claim, most likely, the one it runs first in the next layer)."),
				}
			}
			claim = append(append(claim, comment...), jen.Var().Id("nx").Index().Float32(), pf)
		}
		return []jen.Code{
			jen.Comment("The workers claim channel blocks, each run over every row; with fewer than"),
			jen.Comment("8 blocks per worker, over a part of the rows, so that a slow core holds up"),
			jen.Comment("the others by a small claim."),
			x("rows := %s", rows),
			parts,
			jen.For().Block(append(claim, loop("r", "r0", "r1", body...))...),
		}
	}
	block := []jen.Code{unit}
	if next != "" {
		block = append(block,
			jen.Comment("Prefetch the next block (the first, for the next claim) over these rows,"),
			jen.Comment("unless it is this one."),
			jen.Var().Id("nx").Index().Float32(),
			jen.If(x("u2 := (u + 1) %% (%s); u2 != u", units)).Block(x("nx = %s", next)),
		)
		if after != nil {
			block = append(block,
				jen.Comment("In its last claim, most likely, the block the worker runs first in the next layer."),
				jen.If(x("u == %s-1 && r0+nw*claim >= rows", units)).Block(after...),
			)
		}
	}
	done := []jen.Code{jen.Return()}
	if fence {
		done = []jen.Code{jen.Qual(pkgKernels, "StoreFence").Call().Comment("order this worker's streaming stores before the step ends"), jen.Return()}
	}
	nest := loop("u", 0, units, append(block, loop("r", "r0", "r1", body...))...)
	if s.RowMajor {
		nest = loop("r", "r0", "r1", loop("u", 0, units, append(block, body...)...))
	}
	return []jen.Code{
		jen.Comment("The workers claim rows, a few at a time; each runs every channel block over them."),
		jen.Const().Id("CHUNK").Op("=").Lit(s.Chunk).Comment("rows whose input stays in L2 while every block runs over them"),
		x("rows := %s", rows),
		claimSize(group),
		jen.For().Block(
			x("r0 := int(m.next.Add(int64(claim))) - claim"),
			jen.If(x("r0 >= rows")).Block(done...),
			x("r1 := min(r0+claim, rows)"),
			nest,
		),
	}
}

// claimSize renders the rows split's claim: CHUNK rows, or fewer so that every
// worker gets several claims, and a multiple of group.
func claimSize(group int) jen.Code {
	if group > 1 {
		return x("claim := max(%d, min(CHUNK, rows/(4*nw))/%d*%d) // whole groups of %d rows", group, group, group, group)
	}
	return x("claim := min(CHUNK, max(1, rows/(4*nw)))")
}

// reluMask zeroes the output gradient where the fused ReLU's output is not positive.
func (g *stepGen) reluMask(out, dout *Buffer) []jen.Code {
	if out.Flat {
		return []jen.Code{
			x("out, dout := %s, %s", g.ref(out), g.ref(dout)),
			span(fmt.Sprintf("m.n*%d", out.C)),
			jen.Qual(pkgNN, "ReLUMask").Call(x("out[lo:hi]"), x("dout[lo:hi]")),
		}
	}
	return append([]jen.Code{
		jen.Const().Defs(append(append([]jen.Code{x("W, C = %d, %d", out.W, out.C)}, geom("O", out)...), geom("D", dout)...)...),
		x("out, dout := %s, %s", g.ref(out), g.ref(dout)),
	}, rows(out.H, "y",
		jen.Qual(pkgNN, "ReLUMask").Call(x("out[b*OS+OI+y*ORS:][:W*C]"), x("dout[b*DS+DI+y*DRS:][:W*C]")),
	)...)
}

/*
	for oc := lo; oc < hi; oc++ {
		var s float64
		for b, y, x { s += float64(dout[b*DS+DI+y*DRS+x*OC+oc]) }
		grad[oc] += float32(s)
	}
*/
func (g *stepGen) convBiasBwd() []jen.Code {
	st := g.st
	l := st.Layer
	d := st.DOut
	bp := g.e.p.param(l.Name + ".bias")
	return []jen.Code{
		jen.Const().Defs(append([]jen.Code{x("OH, OW, OC = %d, %d, %d", l.Out.H, l.Out.W, l.OutC)}, geom("D", d)...)...),
		x("dout := %s", g.ref(d)),
		x("grad := m.grads[%d:%d]", bp.Off, bp.Off+l.OutC),
		jen.Comment("Each worker sums its output channels over every pixel, in pixel order."),
		span("OC"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		x("var s [OC]float64"),
		jen.Comment("kernels.BNSum: each channel's float64 sum over the row's pixels, in order."),
		loop("b", 0, "m.n", loop("y", 0, "OH",
			jen.Qual(pkgKernels, "BNSum").Call(x("s[lo:hi]"), x("dout[b*DS+DI+y*DRS+lo:]"), x("OC"), x("OW"), x("hi-lo")),
		)),
		loop("oc", "lo", "hi", x("grad[oc] += float32(s[oc])")),
	}
}

/*
for each unit u this worker claims {   // output-channel blocks (group, block), or (block, kernel row)

		dw := the unit's scratch; clear(dw)
		for b := 0; b < m.n; b++ { for oy0 := 0; oy0 < OH; oy0 += WCHUNK { for ky := ... {
			// one call per kernel row: its KW taps × C channels are one contiguous run
			kernels.ConvWgrad(dw[ky*KW*ICg*NR:], in[b*IS+IOFF+(oy0*SH+ky)*IRS:], SW*C, SH*IRS, dout[b*DS+DI+oy0*DRS+ob*NR:], OC, DRS, OW, rows, KW*C, nr)
		}}}
		nn.AddConvGrad(grad, dw, dims, blk, first tap, last tap + 1)
	}
*/
func (g *stepGen) convWeightBwd() []jen.Code {
	st := g.st
	l := st.Layer
	c, consts := g.convConsts()
	d := st.DOut
	code := []jen.Code{
		consts,
		jen.Const().Defs(append(geom("D", d), x("WCHUNK = %d // output rows whose input stays in L2 across the channel tiles", c.WChunk))...),
		x("in, dout := %s, %s", g.ref(st.In), g.ref(d)),
		x("scratch := m.dwScratch[%d]", st.ConvIndex),
		x("grad := m.grads[%d:%d]", c.Weight.Off, c.Weight.Off+c.Weight.Len()),
		jen.Comment("Each unit's gradient is a whole FMA chain over (sample, row, column) per"),
		jen.Comment("element, never split across workers."),
	}
	var unit []jen.Code
	kyLo, kyHi := "0", "KH"
	if c.WgradTaps {
		code = append(code, jen.Comment("Units are (block, kernel row): too few blocks to keep every worker busy."), x("const UNITS = G * OCB * KH"))
		unit = append(unit, x("blk, ky0 := u/KH, u%%KH"), x("dw := scratch[u*KW*ICg*NR:][:KW*ICg*NR]"))
		kyLo, kyHi = "ky0", "ky0 + 1"
	} else {
		code = append(code, jen.Comment("Units are output-channel blocks, with every kernel tap."), x("const UNITS = G * OCB"))
		unit = append(unit, x("blk := u"), x("dw := scratch[u*KH*KW*ICg*NR:][:KH*KW*ICg*NR]"))
	}
	if l.Groups == 1 {
		unit = append(unit, x("ob := blk"))
	} else {
		unit = append(unit, x("g, ob := blk/OCB, blk%%OCB"))
	}
	unit = append(unit, x("nr := min(NR, OCg-ob*NR)"), jen.Clear(jen.Id("dw")))
	// row is the kernel row's index within the unit's scratch.
	row := "ky"
	if kyLo != "0" {
		row = "(ky - ky0)"
	}
	taps := [2]string{"0", "KH * KW"} // the unit's taps, in scratch order
	if c.WgradTaps {
		taps = [2]string{"ky0 * KW", "(ky0 + 1) * KW"}
	}
	var call jen.Code
	if l.Groups == 1 {
		unit = append(unit, jen.Comment("A kernel row's KW taps × C channels are one contiguous run of the input."))
		call = jen.Qual(pkgKernels, "ConvWgrad").Call(x("dw[%s*KW*ICg*NR:]", row), x("in[b*IS+IOFF+(oy0*SH+ky)*IRS:]"), x("SW*C"), x("SH*IRS"),
			x("dout[b*DS+DI+oy0*DRS+ob*NR:]"), x("OC"), x("DRS"), x("OW"), x("rows"), x("KW*C"), x("nr"))
	} else {
		call = loop("kx", 0, "KW", jen.Qual(pkgKernels, "ConvWgrad").Call(x("dw[(%s*KW+kx)*ICg*NR:]", row), x("in[b*IS+IOFF+(oy0*SH+ky)*IRS+kx*C+g*ICg:]"), x("SW*C"), x("SH*IRS"),
			x("dout[b*DS+DI+oy0*DRS+g*OCg+ob*NR:]"), x("OC"), x("DRS"), x("OW"), x("rows"), x("ICg"), x("nr")))
	}
	unit = append(unit,
		loop("b", 0, "m.n", jen.For(x("oy0 := 0; oy0 < OH; oy0 += WCHUNK")).Block(
			x("rows := min(WCHUNK, OH-oy0)"),
			loop("ky", kyLo, kyHi, call),
		)),
		jen.Qual(pkgNN, "AddConvGrad").Call(x("grad"), x("dw"), x("convInfo[%d].dims", st.ConvIndex), x("blk"), x("%s", taps[0]), x("%s", taps[1])),
	)
	code = append(code, jen.Comment("The workers claim units as they become free (see chunked)."))
	return append(code, jen.For().Block(append([]jen.Code{
		x("u := int(m.next.Add(1)) - 1"),
		jen.If(x("u >= UNITS")).Block(jen.Return()),
	}, unit...)...))
}

/*
for each input row r of the runs this worker claims (see chunked), for each input-channel block {

		b, iy := r/H, r%H
		py := (iy+PH)%SH  and for each x phase px: the input pixels ix ≡ px are a stride-1
		correlation of the output gradient with the phase's reversed taps (nn.PackConvBackData)
	}
*/
func (g *stepGen) convDataBwd() []jen.Code {
	st := g.st
	l := st.Layer
	c, consts := g.convConsts()
	d, di := st.DOut, st.DIn
	phY, phX := nn.Phases(l.KH, l.SH), nn.Phases(l.KW, l.SW)
	// Pack offsets of every phase pair, as PackConvBackData lays them out.
	offs := make([][]int, len(phY))
	off := 0
	for i, py := range phY {
		offs[i] = make([]int, len(phX))
		for j, px := range phX {
			offs[i][j] = off
			off += c.Groups * c.ICB * py.T * px.T * c.OCg * kernels.NR
		}
	}
	code := []jen.Code{
		consts,
		jen.Const().Defs(append(geom("D", d), geom("X", di)...)...),
		x("dout, dx := %s, %s", g.ref(d), g.ref(di)),
		x("wt := m.w.packB[%d]", st.ConvIndex),
	}
	code = append(code, g.zeroHalos(di)...)
	// With one phase (stride 1) a block's packed weights are contiguous, and each
	// row prefetches a part of the next block's (see chunked).
	single, next := len(phY) == 1 && len(phX) == 1, ""
	if single {
		blk := phY[0].T * phX[0].T * c.OCg * kernels.NR
		next = fmt.Sprintf("wt[u2*%d : (u2+1)*%d]", blk, blk)
	}
	var body []jen.Code
	body = append(body, x("b, iy := r/H, r%%H"), x("qy := (iy + PH) / SH"), x("row := dx[b*XS+XI+iy*XRS+g*ICg+ib*NR:]"))
	// One case per y phase, with the x phases unrolled.
	var cases []jen.Code
	for i, py := range phY {
		var stmts []jen.Code
		for j, px := range phX {
			// First input column of this x phase, and how many.
			ix0 := ((px.R-l.PW)%l.SW + l.SW) % l.SW
			if ix0 >= l.In.W {
				continue
			}
			npx := (l.In.W - ix0 + l.SW - 1) / l.SW
			if py.T == 0 || px.T == 0 {
				stmts = append(stmts, jen.Comment(fmt.Sprintf("phase (%d, %d) has no taps: no gradient reaches these inputs", py.R, px.R)),
					loop("p", 0, npx, jen.Clear(x("row[(%d+p*SW)*C:][:nr]", ix0))))
				continue
			}
			qx := (ix0 + l.PW) / l.SW
			// Without groups the phase's px.T taps × OCg channels of a row are one
			// contiguous run of the output gradient, as in the forward call.
			cin, kw := jen.Lit(c.OCg), jen.Lit(px.T)
			if l.Groups == 1 {
				cin, kw = jen.Lit(px.T*c.OCg), jen.Lit(1)
			}
			call := jen.Qual(pkgKernels, "ConvNHWC")
			args := []jen.Code{x("row[%d*C:]", ix0), x("SW*C"), x("dout[b*DS+(qy-%d+DPH)*DRS+(%d-%d+DPW)*OC+g*OCg:]", py.T-1, qx, px.T-1), x("OC"), x("DRS"), x("OC"), cin, jen.Lit(py.T), kw,
				x("wt[%d+u*%d:]", offs[i][j], py.T*px.T*c.OCg*kernels.NR), jen.Nil(), jen.Lit(npx), x("nr"), jen.False()}
			if single {
				call = jen.Qual(pkgKernels, "ConvNHWCNext")
				args = append(args, jen.Qual(pkgNN, "Part").Call(x("nx"), x("r-r0"), x("r1-r0")))
			}
			stmts = append(stmts,
				jen.Comment(fmt.Sprintf("x phase %d: %d taps × %d taps, input columns %d, %d, ...", px.R, py.T, px.T, ix0, ix0+l.SW)),
				call.Call(args...),
			)
		}
		if len(phY) == 1 {
			body = append(body, stmts...)
		} else {
			cases = append(cases, jen.Case(jen.Lit(py.R)).Block(stmts...))
		}
	}
	if len(cases) > 0 {
		body = append(body, jen.Switch(x("(iy + PH) %% SH")).Block(cases...))
	}
	code = append(code, jen.Const().Defs(x("DPH, DPW = %d, %d // the output gradient's halo", d.PH, d.PW)))
	code = append(code, chunked(c.Data, false, "m.n*H", "G*ICB", next, nil, 1,
		x("g, ib := u/ICB, u%%ICB; nr := min(NR, ICg-ib*NR)"), body...)...)
	return code
}

func (g *stepGen) bnConsts() jen.Code {
	st := g.st
	l := st.Layer
	defs := []jen.Code{
		x("H, W, C = %d, %d, %d", l.In.H, l.In.W, l.In.C),
		x("EPS, MOM = %v, %v", l.Eps, l.Momentum),
	}
	defs = append(defs, geom("I", st.In)...)
	defs = append(defs, geom("O", st.Out)...)
	return jen.Const().Defs(defs...)
}

func (g *stepGen) bnTensors() jen.Code {
	p := g.e.p
	l := g.st.Layer
	C := l.In.C
	gm, bt := p.param(l.Name+".weight").Off, p.param(l.Name+".bias").Off
	rm, rv := p.buffer(l.Name+".running_mean").Off, p.buffer(l.Name+".running_var").Off
	return x("gamma, beta, rm, rv := m.w.vals[%d:%d], m.w.vals[%d:%d], m.bufs[%d:%d], m.bufs[%d:%d]", gm, gm+C, bt, bt+C, rm, rm+C, rv, rv+C)
}

/*
lo, hi := parallel.Span(C, w, nw)   // this worker's channels
training: per channel, mean and biased variance over (sample, row, column) in
float64, summed in that order; the running statistics updated with the unbiased
variance. Evaluation: the running statistics.
out = in·γ/σ + (β − mean·γ/σ), then ReLU if fused.
The pixels are scanned once per pass, each worker reading its channels' contiguous run.
*/
func (g *stepGen) bnFwd() []jen.Code {
	st := g.st
	code := []jen.Code{g.bnConsts(), x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out)), g.bnTensors()}
	code = append(code, g.zeroHalos(st.Out)...)
	code = append(code,
		span("C"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		x("cnt := float64(m.n * H * W)"),
		x("var scale, shift [C]float64"),
	)
	evalStats := loop("c", "lo", "hi",
		x("invstd := 1 / sqrt(float64(rv[c])+EPS)"),
		x("scale[c] = float64(gamma[c]) * invstd"),
		x("shift[c] = float64(beta[c]) - float64(float64(rm[c])*scale[c])"),
	)
	if g.grad {
		stat := "m." + bnStatField(st)
		train := []jen.Code{
			x("var sum, sq [C]float64"),
			pixelsIn(jen.Qual(pkgKernels, "BNSum").Call(x("sum[lo:hi]"), x("p"), x("C"), x("W"), x("hi-lo"))),
			loop("c", "lo", "hi", x("sum[c] /= cnt")),
			pixelsIn(jen.Qual(pkgKernels, "BNSumSq").Call(x("sq[lo:hi]"), x("p"), x("C"), x("W"), x("hi-lo"), x("sum[lo:hi]"))),
			loop("c", "lo", "hi",
				x("mean, v := sum[c], sq[c]/cnt"),
				x("invstd := 1 / sqrt(v+EPS)"),
				x("%s[c], %s[C+c] = mean, invstd", stat, stat),
				x("unbiased := v"),
				jen.If(x("cnt > 1")).Block(x("unbiased = sq[c] / (cnt - 1)")),
				x("rm[c] = float32(float64((1-MOM)*float64(rm[c])) + float64(MOM*mean))"),
				x("rv[c] = float32(float64((1-MOM)*float64(rv[c])) + float64(MOM*unbiased))"),
				x("scale[c] = float64(gamma[c]) * invstd"),
				x("shift[c] = float64(beta[c]) - float64(mean*scale[c])"),
			),
		}
		code = append(code, jen.If(x("m.training")).Block(train...).Else().Block(evalStats))
	} else {
		code = append(code, evalStats)
	}
	code = append(code, loop("b", 0, "m.n", loop("y", 0, "H",
		jen.Qual(pkgKernels, "BNApply").Call(x("out[b*OS+OI+y*ORS+lo:]"), x("C"), x("in[b*IS+II+y*IRS+lo:]"), x("C"), x("W"), x("hi-lo"), x("scale[lo:hi]"), x("shift[lo:hi]"), jen.Lit(st.ReLU)),
	)))
	return code
}

// pixelsIn loops over every row with p the input from the row's channel lo on.
func pixelsIn(body ...jen.Code) jen.Code {
	return loop("b", 0, "m.n", loop("y", 0, "H",
		append([]jen.Code{x("p := in[b*IS+II+y*IRS+lo:]")}, body...)...))
}

/*
lo, hi := parallel.Span(C, w, nw)   // this worker's channels
g = dout (0, written back, where a fused ReLU's output is not positive); x̂ = (in − mean)/σ
dγ += Σ g·x̂; dβ += Σ g   (per channel, in float64, in pixel order)
training: dx = γ/σ/M · (M·g − Σg − x̂·Σg·x̂); evaluation: dx = g·γ/σ
*/
func (g *stepGen) bnBwd() []jen.Code {
	st := g.st
	p := g.e.p
	l := st.Layer
	C := l.In.C
	gm, bt := p.param(l.Name+".weight").Off, p.param(l.Name+".bias").Off
	stat := "m." + bnStatField(st)
	code := []jen.Code{
		g.bnConsts(),
		jen.Const().Defs(append(geom("D", st.DOut), geom("X", st.DIn)...)...),
		x("in, out, dout, dx := %s, %s, %s, %s", g.ref(st.In), g.ref(st.Out), g.ref(st.DOut), g.ref(st.DIn)),
		g.bnTensors(),
		x("_, _ = beta, out"),
		x("dgamma, dbeta := m.grads[%d:%d], m.grads[%d:%d]", gm, gm+C, bt, bt+C),
	}
	code = append(code, g.zeroHalos(st.DIn)...)
	// A fused ReLU masks the gradient in place, as the conv and linear steps do: the
	// held gradient is then dL/d(ReLU input).
	mask := jen.Nil()
	if st.ReLU {
		mask = x("out[b*OS+OI+y*ORS+lo:]")
	}
	code = append(code,
		span("C"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		x("cnt := float64(m.n * H * W)"),
		x("var mean, invstd, sg, sgx, k [C]float64"),
		loop("c", "lo", "hi",
			jen.If(x("m.training")).Block(x("mean[c], invstd[c] = %s[c], %s[C+c]", stat, stat)).Else().Block(
				x("mean[c], invstd[c] = float64(rm[c]), 1/sqrt(float64(rv[c])+EPS)")),
		),
		loop("b", 0, "m.n", loop("y", 0, "H",
			jen.Qual(pkgKernels, "BNBackSums").Call(x("sg[lo:hi]"), x("sgx[lo:hi]"), x("dout[b*DS+DI+y*DRS+lo:]"), x("C"), x("in[b*IS+II+y*IRS+lo:]"), x("C"), mask, x("C"), x("W"), x("hi-lo"), x("mean[lo:hi]"), x("invstd[lo:hi]")),
		)),
		loop("c", "lo", "hi",
			x("dgamma[c] += float32(sgx[c])"),
			x("dbeta[c] += float32(sg[c])"),
			x("k[c] = float64(gamma[c]) * invstd[c]"),
		),
		jen.If(x("m.training")).Block(
			loop("b", 0, "m.n", loop("y", 0, "H",
				jen.Qual(pkgKernels, "BNBackData").Call(x("dx[b*XS+XI+y*XRS+lo:]"), x("C"), x("dout[b*DS+DI+y*DRS+lo:]"), x("C"), x("in[b*IS+II+y*IRS+lo:]"), x("C"), x("W"), x("hi-lo"),
					x("mean[lo:hi]"), x("invstd[lo:hi]"), x("k[lo:hi]"), x("sg[lo:hi]"), x("sgx[lo:hi]"), x("cnt")),
			)),
		).Else().Block(
			loop("b", 0, "m.n", loop("y", 0, "H",
				jen.Qual(pkgKernels, "BNBackDataEval").Call(x("dx[b*XS+XI+y*XRS+lo:]"), x("C"), x("dout[b*DS+DI+y*DRS+lo:]"), x("C"), x("W"), x("hi-lo"), x("k[lo:hi]")),
			)),
		),
	)
	return code
}

func (g *stepGen) reluFwd() []jen.Code {
	st := g.st
	in, out := st.In, st.Out
	if in.Flat {
		return []jen.Code{
			x("in, out := %s, %s", g.ref(in), g.ref(out)),
			span(fmt.Sprintf("m.n*%d", in.C)),
			jen.For(x("i := lo; i < hi; i++")).Block(x("v := in[i]"), jen.If(x("v < 0")).Block(x("v = 0")), x("out[i] = v")),
		}
	}
	code := []jen.Code{
		jen.Const().Defs(append(append([]jen.Code{x("W, C = %d, %d", in.W, in.C)}, geom("I", in)...), geom("O", out)...)...),
		x("in, out := %s, %s", g.ref(in), g.ref(out)),
	}
	code = append(code, g.zeroHalos(out)...)
	return append(code, rows(in.H, "y",
		x("s, d := in[b*IS+II+y*IRS:][:W*C], out[b*OS+OI+y*ORS:][:W*C]"),
		jen.For(x("i, v := range s")).Block(jen.If(x("v < 0")).Block(x("v = 0")), x("d[i] = v")),
	)...)
}

func (g *stepGen) reluBwd() []jen.Code {
	st := g.st
	out, d, di := st.Out, st.DOut, st.DIn
	if out.Flat {
		return []jen.Code{
			x("out, dout, dx := %s, %s, %s", g.ref(out), g.ref(d), g.ref(di)),
			span(fmt.Sprintf("m.n*%d", out.C)),
			jen.For(x("i := lo; i < hi; i++")).Block(jen.If(x("out[i] > 0")).Block(x("dx[i] = dout[i]")).Else().Block(x("dx[i] = 0"))),
		}
	}
	code := []jen.Code{
		jen.Const().Defs(append(append(append([]jen.Code{x("W, C = %d, %d", out.W, out.C)}, geom("O", out)...), geom("D", d)...), geom("X", di)...)...),
		x("out, dout, dx := %s, %s, %s", g.ref(out), g.ref(d), g.ref(di)),
	}
	code = append(code, g.zeroHalos(di)...)
	return append(code, rows(out.H, "y",
		x("o, s, t := out[b*OS+OI+y*ORS:][:W*C], dout[b*DS+DI+y*DRS:][:W*C], dx[b*XS+XI+y*XRS:][:W*C]"),
		jen.For(x("i, v := range o")).Block(jen.If(x("v > 0")).Block(x("t[i] = s[i]")).Else().Block(x("t[i] = 0"))),
	)...)
}

func (g *stepGen) poolConsts() jen.Code {
	st := g.st
	l := st.Layer
	defs := []jen.Code{
		x("H, W, C = %d, %d, %d", l.In.H, l.In.W, l.In.C),
		x("OH, OW = %d, %d", l.Out.H, l.Out.W),
	}
	defs = append(defs, geom("I", st.In)...)
	defs = append(defs, geom("O", st.Out)...)
	return jen.Const().Defs(defs...)
}

/*
for each output pixel and channel: the first maximum of the window in row-major order
(a NaN counts as a maximum, as in PyTorch); the grad program records its position.
*/
func (g *stepGen) maxPoolFwd() []jen.Code {
	st := g.st
	l := st.Layer
	var pre []jen.Code
	if conv := st.PoolOf; conv != nil && !g.grad {
		if !Winograd(conv.Layer) {
			return []jen.Code{jen.Comment(fmt.Sprintf("The step of %s computes this pool, a block's rows at a time.", conv.Name()))}
		}
		pre = []jen.Code{
			jen.Comment(fmt.Sprintf("In exact mode %s computed this pool; in fast mode it ran Winograd,", conv.Name())),
			jen.Comment("which does not pool."),
			jen.If(x("!m.fast")).Block(jen.Return()),
		}
	}
	code := []jen.Code{
		g.poolConsts(),
		jen.Const().Defs(x("KH, KW, SH, SW, PH, PW = %d, %d, %d, %d, %d, %d", l.KH, l.KW, l.SH, l.SW, l.PH, l.PW)),
		x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out)),
	}
	code = append(pre, code...)
	if g.grad {
		code = append(code, x("arg := %s", g.ref(st.Saved)))
	}
	code = append(code, g.zeroHalos(st.Out)...)
	if l.PH == 0 && l.PW == 0 {
		// Unpadded windows lie inside the input: one kernel call per output row.
		if g.grad {
			// The grad program records each output's input position y·W + x.
			return append(code, rows(l.Out.H, "oy",
				jen.Qual(pkgKernels, "MaxPoolNHWCArg").Call(x("out[b*OS+OI+oy*ORS:]"), x("C"), x("arg[(b*OH+oy)*OW*C:]"), x("C"), x("in[b*IS+II+oy*SH*IRS:]"), x("SW*C"), x("IRS"), x("C"), x("C"), x("KH"), x("KW"), x("OW"), x("oy*SH*W"), x("SW"), x("W")),
			)...)
		}
		return append(code, rows(l.Out.H, "oy",
			jen.Qual(pkgKernels, "MaxPoolNHWC").Call(x("out[b*OS+OI+oy*ORS:]"), x("C"), x("in[b*IS+II+oy*SH*IRS:]"), x("SW*C"), x("IRS"), x("C"), x("C"), x("KH"), x("KW"), x("OW")),
		)...)
	}
	// Per output pixel, every channel at once: the window's taps in row-major order,
	// each a contiguous run of C values.
	init := []jen.Code{x("o := out[b*OS+OI+oy*ORS+ox*C:][:C]")}
	if g.grad {
		init = append(init, x("a := arg[((b*OH+oy)*OW+ox)*C:][:C]"))
	}
	init = append(init, jen.For(x("c := range o")).Block(x("o[c] = negInf")))
	if g.grad {
		init = append(init, jen.For(x("c := range a")).Block(x("a[c] = int32(ys*W + xs)")))
	}
	update := []jen.Code{x("o[c] = v")}
	if g.grad {
		update = append(update, x("a[c] = at"))
	}
	tap := []jen.Code{x("src := in[b*IS+II+y*IRS+x*C:][:C]")}
	if g.grad {
		tap = append(tap, x("at := int32(y*W + x)"))
	}
	tap = append(tap, jen.For(x("c, v := range src")).Block(
		jen.If(x("v > o[c] || v != v")).Block(update...),
	))
	body := append(init, loop("y", "ys", "ye", loop("x", "xs", "xe", tap...)))
	return append(code, rows(l.Out.H, "oy",
		x("ys, ye := max(oy*SH-PH, 0), min(oy*SH-PH+KH, H)"),
		loop("ox", 0, "OW",
			append([]jen.Code{x("xs, xe := max(ox*SW-PW, 0), min(ox*SW-PW+KW, W)")}, body...)...,
		),
	)...)
}

func (g *stepGen) maxPoolBwd() []jen.Code {
	st := g.st
	code := []jen.Code{
		g.poolConsts(),
		jen.Const().Defs(append(geom("D", st.DOut), geom("X", st.DIn)...)...),
		x("dout, dx, arg := %s, %s, %s", g.ref(st.DOut), g.ref(st.DIn), g.ref(st.Saved)),
	}
	code = append(code, g.zeroHalos(st.DIn)...)
	if l := st.Layer; l.PH == 0 && l.PW == 0 && l.KH == l.SH && l.KW == l.SW && l.Out.H*l.SH == l.In.H && l.Out.W*l.SW == l.In.W {
		return append(append(code,
			jen.Const().Defs(x("KH, KW = %d, %d", l.KH, l.KW)),
			jen.Comment("The windows tile the input without overlap, so a row of windows owns its KH"),
			jen.Comment("input rows: clear them, then add each output gradient at its recorded"),
			jen.Comment("position while they are still in cache. Split by output rows."),
		), rows(l.Out.H, "oy",
			loop("ky", 0, "KH", jen.Clear(x("dx[b*XS+XI+(oy*KH+ky)*XRS:][:W*C]"))),
			loop("ox", 0, "OW",
				x("a, d := arg[((b*OH+oy)*OW+ox)*C:][:C], dout[b*DS+DI+oy*DRS+ox*C:][:C]"),
				jen.For(x("k, at := range a")).Block(
					x("dx[b*XS+XI+int(at)/W*XRS+int(at)%%W*C+k] += d[k]"),
				),
			),
		)...)
	}
	return append(code,
		jen.Comment("Channels are independent and windows overlap: split by channel, so each input"),
		jen.Comment("gradient is summed by one worker, in output scan order."),
		span("C"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		loop("b", 0, "m.n",
			loop("y", 0, "H", loop("x", 0, "W", jen.Clear(x("dx[b*XS+XI+y*XRS+x*C:][lo:hi]")))),
			loop("oy", 0, "OH", loop("ox", 0, "OW",
				x("a, d := arg[((b*OH+oy)*OW+ox)*C:][lo:hi], dout[b*DS+DI+oy*DRS+ox*C:][lo:hi]"),
				jen.For(x("k, at := range a")).Block(
					x("dx[b*XS+XI+int(at)/W*XRS+int(at)%%W*C+lo+k] += d[k]"),
				),
			)),
		),
	)
}

/*
window of output (oy, ox): rows [oy·H/OH, ⌈(oy+1)·H/OH⌉), columns likewise (PyTorch's
adaptive_avg_pool2d); the mean is summed in float64 in row-major order.
*/
func (g *stepGen) avgPoolFwd() []jen.Code {
	st := g.st
	l := st.Layer
	code := []jen.Code{g.poolConsts(), x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out))}
	code = append(code, g.zeroHalos(st.Out)...)
	return append(code, rows(l.Out.H, "oy",
		x("ys, ye := oy*H/OH, ((oy+1)*H+OH-1)/OH"),
		loop("ox", 0, "OW",
			x("xs, xe := ox*W/OW, ((ox+1)*W+OW-1)/OW"),
			x("var acc [C]float64"),
			loop("y", "ys", "ye", loop("x", "xs", "xe",
				jen.For(x("c, v := range in[b*IS+II+y*IRS+x*C:][:C]")).Block(x("acc[c] += float64(v)")),
			)),
			x("cnt := float64((ye - ys) * (xe - xs))"),
			x("o := out[b*OS+OI+oy*ORS+ox*C:][:C]"),
			jen.For(x("c := range o")).Block(x("o[c] = float32(acc[c] / cnt)")),
		),
	)...)
}

func (g *stepGen) avgPoolBwd() []jen.Code {
	st := g.st
	code := []jen.Code{
		g.poolConsts(),
		jen.Const().Defs(append(geom("D", st.DOut), geom("X", st.DIn)...)...),
		x("dout, dx := %s, %s", g.ref(st.DOut), g.ref(st.DIn)),
	}
	code = append(code, g.zeroHalos(st.DIn)...)
	return append(code,
		span("C"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		loop("b", 0, "m.n",
			loop("y", 0, "H", loop("x", 0, "W", jen.Clear(x("dx[b*XS+XI+y*XRS+x*C:][lo:hi]")))),
			loop("oy", 0, "OH",
				x("ys, ye := oy*H/OH, ((oy+1)*H+OH-1)/OH"),
				loop("ox", 0, "OW",
					x("xs, xe := ox*W/OW, ((ox+1)*W+OW-1)/OW"),
					x("cnt := float64((ye - ys) * (xe - xs))"),
					x("d := dout[b*DS+DI+oy*DRS+ox*C:][lo:hi]"),
					loop("y", "ys", "ye", loop("x", "xs", "xe",
						x("t := dx[b*XS+XI+y*XRS+x*C:][lo:hi]"),
						jen.For(x("k, v := range d")).Block(x("t[k] += float32(float64(v) / cnt)")),
					)),
				),
			),
		),
	)
}

// lrnPow renders s^-β, with β = 0.75 (AlexNet's) as square roots.
func lrnPow(s string, beta float64) string {
	if beta == 0.75 {
		return fmt.Sprintf("1 / (sqrt(%s) * sqrt(sqrt(%s)))", s, s)
	}
	return fmt.Sprintf("pow(%s, %v)", s, -beta)
}

/*
s_c = k + α/n · Σ_{j = c−⌊n/2⌋}^{c+⌊(n−1)/2⌋} x_j²;  y_c = x_c · s_c^−β   (torch.nn.LocalResponseNorm)
*/
func (g *stepGen) lrnFwd() []jen.Code {
	st := g.st
	l := st.Layer
	code := []jen.Code{
		jen.Const().Defs(append(append([]jen.Code{
			x("H, W, C = %d, %d, %d", l.In.H, l.In.W, l.In.C),
			x("SIZE, ALPHA, BETA, K = %d, %v, %v, %v", l.Size, l.Alpha, l.Beta, l.K),
		}, geom("I", st.In)...), geom("O", st.Out)...)...),
		x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out)),
	}
	if g.grad {
		code = append(code, x("scale := %s", g.ref(st.Saved)))
	}
	code = append(code, g.zeroHalos(st.Out)...)
	inner := []jen.Code{
		x("var s float64"),
		loop("j", "max(c-SIZE/2, 0)", "min(c+(SIZE-1)/2+1, C)", x("v := float64(px[j])"), x("s += float64(v * v)")),
		x("s = K + float64(ALPHA/SIZE*s)"),
		x("po[c] = float32(float64(px[c]) * (%s))", lrnPow("s", l.Beta)),
	}
	if g.grad {
		inner = append(inner, x("ps[c] = float32(s)"))
	}
	pix := []jen.Code{x("px, po := in[b*IS+II+y*IRS+x*C:][:C], out[b*OS+OI+y*ORS+x*C:][:C]")}
	if g.grad {
		pix = append(pix, x("ps := scale[((b*H+y)*W+x)*C:][:C]"))
	}
	pix = append(pix, loop("c", 0, "C", inner...))
	return append(code, rows(l.In.H, "y", loop("x", 0, "W", pix...))...)
}

/*
dx_c = dy_c·s_c^−β − 2αβ/n · x_c · Σ_{j = c−⌊(n−1)/2⌋}^{c+⌊n/2⌋} dy_j·x_j·s_j^(−β−1)
*/
func (g *stepGen) lrnBwd() []jen.Code {
	st := g.st
	l := st.Layer
	code := []jen.Code{
		jen.Const().Defs(append(append(append([]jen.Code{
			x("H, W, C = %d, %d, %d", l.In.H, l.In.W, l.In.C),
			x("SIZE, ALPHA, BETA, K = %d, %v, %v, %v", l.Size, l.Alpha, l.Beta, l.K),
		}, geom("I", st.In)...), geom("D", st.DOut)...), geom("X", st.DIn)...)...),
		x("in, dout, dx, scale := %s, %s, %s, %s", g.ref(st.In), g.ref(st.DOut), g.ref(st.DIn), g.ref(st.Saved)),
	}
	code = append(code, g.zeroHalos(st.DIn)...)
	return append(code, rows(l.In.H, "y", loop("x", 0, "W",
		x("px, pd, pg := in[b*IS+II+y*IRS+x*C:][:C], dout[b*DS+DI+y*DRS+x*C:][:C], dx[b*XS+XI+y*XRS+x*C:][:C]"),
		x("ps := scale[((b*H+y)*W+x)*C:][:C]"),
		x("var t, p [C]float64"),
		loop("c", 0, "C",
			x("s := float64(ps[c])"),
			x("p[c] = %s", lrnPow("s", l.Beta)),
			x("t[c] = float64(pd[c]) * float64(px[c]) * p[c] / s"),
		),
		loop("c", 0, "C",
			x("var acc float64"),
			loop("j", "max(c-(SIZE-1)/2, 0)", "min(c+SIZE/2+1, C)", x("acc += t[j]")),
			x("pg[c] = float32(float64(float64(pd[c])*p[c]) - float64(2*ALPHA*BETA/SIZE*float64(px[c])*acc))"),
		),
	))...)
}

// elementwise renders a loop over every element of one sample of an activation, with
// i the NHWC (or flat) index and k the C·H·W index of the mask.
func elementwise(b *Buffer, body ...jen.Code) jen.Code {
	if b.Flat {
		return loop("k", 0, b.C, append([]jen.Code{x("i := k")}, body...)...)
	}
	return loop("y", 0, b.H, loop("x", 0, b.W, loop("c", 0, b.C,
		append([]jen.Code{
			x("i := %d + y*%d + x*%d + c", b.Interior(), b.RowStride(), b.C),
			x("k := (c*%d+y)*%d + x", b.H, b.W),
		}, body...)...)))
}

func (g *stepGen) dropoutFwd() []jen.Code {
	st := g.st
	in, out := st.In, st.Out
	code := []jen.Code{x("in, out, mask := %s, %s, %s", g.ref(in), g.ref(out), g.ref(st.Saved))}
	code = append(code, g.zeroHalos(out)...)
	return append(code,
		span("m.n"),
		loop("b", "lo", "hi",
			x("src, dst, mk := in[b*%d:][:%d], out[b*%d:][:%d], mask[b*%d:][:%d]", in.Size, in.Size, out.Size, out.Size, st.Saved.Size, st.Saved.Size),
			jen.If(x("m.training")).Block(elementwise(out, x("dst[i] = src[i] * mk[k]"))).Else().Block(elementwise(out, x("dst[i] = src[i]"), x("_ = mk"))),
		),
	)
}

func (g *stepGen) dropoutBwd() []jen.Code {
	st := g.st
	d, di := st.DOut, st.DIn
	code := []jen.Code{x("dout, dx, mask := %s, %s, %s", g.ref(d), g.ref(di), g.ref(st.Saved))}
	code = append(code, g.zeroHalos(di)...)
	if d.PH != di.PH || d.PW != di.PW {
		panic("gen: dropout gradient buffers with different halos")
	}
	return append(code,
		span("m.n"),
		loop("b", "lo", "hi",
			x("src, dst, mk := dout[b*%d:][:%d], dx[b*%d:][:%d], mask[b*%d:][:%d]", d.Size, d.Size, di.Size, di.Size, st.Saved.Size, st.Saved.Size),
			jen.If(x("m.training")).Block(elementwise(d, x("dst[i] = src[i] * mk[k]"))).Else().Block(elementwise(d, x("dst[i] = src[i]"), x("_ = mk"))),
		),
	)
}

func (g *stepGen) flattenFwd() []jen.Code {
	st := g.st
	in, out := st.In, st.Out
	if in.Flat {
		return []jen.Code{x("copy(%s[:m.n*%d], %s[:m.n*%d])", g.ref(out), out.Size, g.ref(in), in.Size), x("_, _ = w, nw")}
	}
	return []jen.Code{
		x("in, out := %s, %s", g.ref(in), g.ref(out)),
		span("m.n"),
		loop("b", "lo", "hi",
			x("src, dst := in[b*%d:][:%d], out[b*%d:][:%d]", in.Size, in.Size, out.Size, out.Size),
			elementwise(in, x("dst[k] = src[i]")),
		),
	}
}

func (g *stepGen) flattenBwd() []jen.Code {
	st := g.st
	d, di := st.DOut, st.DIn
	if di.Flat {
		return []jen.Code{x("copy(%s[:m.n*%d], %s[:m.n*%d])", g.ref(di), di.Size, g.ref(d), d.Size), x("_, _ = w, nw")}
	}
	code := []jen.Code{x("dout, dx := %s, %s", g.ref(d), g.ref(di))}
	code = append(code, g.zeroHalos(di)...)
	return append(code,
		span("m.n"),
		loop("b", "lo", "hi",
			x("src, dst := dout[b*%d:][:%d], dx[b*%d:][:%d]", d.Size, d.Size, di.Size, di.Size),
			elementwise(di, x("dst[i] = src[k]")),
		),
	)
}

func (g *stepGen) linearNames() (w, b string) {
	l := g.st.Layer
	K, N := l.In.Size(), l.OutC
	wp := g.e.p.param(l.Name + ".weight")
	w = fmt.Sprintf("m.w.vals[%d:%d]", wp.Off, wp.Off+N*K)
	b = "nil"
	if l.Bias {
		bp := g.e.p.param(l.Name + ".bias")
		b = fmt.Sprintf("m.w.vals[%d:%d]", bp.Off, bp.Off+N)
	}
	return w, b
}

/*
lo, hi := parallel.Span(N, w, nw)   // output features
kernels.LinearChainBuf(out[lo:], N, in, K, W[lo*K:], K, bias[lo:], m.n, hi-lo, K, relu, m.lscratch[w])
*/
func (g *stepGen) linearFwd() []jen.Code {
	st := g.st
	l := st.Layer
	wv, bv := g.linearNames()
	consts := jen.Const().Defs(x("K, N = %d, %d", l.In.Size(), l.OutC))
	idx := slices.Index(linears(g.e.p), l)
	if LinearGEMM(l) {
		// Both modes: fast mode has nothing faster for a layer this small.
		return append([]jen.Code{consts, x("in, out := %s, %s", g.ref(st.In), g.ref(st.Out))}, g.linearGEMM(idx)...)
	}
	code := []jen.Code{consts, x("in, out, wt := %s, %s, %s", g.ref(st.In), g.ref(st.Out), wv)}
	biasArg := jen.Nil()
	if l.Bias {
		code = append(code, x("bias := %s", bv))
		biasArg = x("bias[lo:]")
	}
	exact := jen.Qual(pkgKernels, "LinearChainBuf").Call(x("out[lo:]"), x("N"), x("in"), x("K"), x("wt[lo*K:]"), x("K"), biasArg, x("m.n"), x("hi-lo"), x("K"), jen.Lit(st.ReLU), x("m.lscratch[w]"))
	if g.grad {
		return append(code, span("N"), jen.If(x("lo < hi")).Block(exact))
	}
	return append(code,
		span("N"),
		jen.If(x("lo >= hi")).Block(jen.Return()),
		jen.If(x("m.fast")).Block(
			jen.Comment("Fast mode streams the weights as bfloat16: half the bytes."),
			jen.Qual(pkgKernels, "LinearBF16Buf").Call(x("out[lo:]"), x("N"), x("in"), x("K"), x("m.w.bf16[%d][lo*K:]", idx), x("K"), biasArg, x("m.n"), x("hi-lo"), x("K"), jen.Lit(st.ReLU), x("m.lscratch[w]")),
			jen.Return(),
		),
		exact,
	)
}

/*
lo, hi := parallel.Span(NB, w, nw)  // blocks of NR output features
for b := lo; b < hi; b++ {
	kernels.ConvNHWCNext(out[b*NR:], N, in, K, 0, 0, K, 1, 1, pack[b*K*NR:][:K*NR], bias[b*NR:][:NR], m.n, min(NR, N-b*NR), relu, next block's pack)
}
*/
// linearGEMM is the forward, in both modes, of a linear layer that LinearGEMM picks: the
// samples are a 1×1 convolution's pixels, its K input channels the layer's
// inputs, and the weights the layer's pack (weights.lpack[idx]).
func (g *stepGen) linearGEMM(idx int) []jen.Code {
	l := g.st.Layer
	nb := (l.OutC + kernels.NR - 1) / kernels.NR
	return []jen.Code{
		jen.Const().Defs(x("NB, NR = %d, %d", nb, kernels.NR)),
		x("pack, pbias := m.w.lpack[%d], m.w.lbias[%d]", idx, idx),
		jen.Comment("Blocks of NR outputs over all samples: the samples are a 1×1 convolution's"),
		jen.Comment("pixels, and each output is one FMA chain from its bias over the K inputs."),
		span("NB"),
		loop("b", "lo", "hi",
			x("var next []float32"),
			jen.If(x("b+1 < hi")).Block(x("next = pack[(b+1)*K*NR:][:K*NR]")),
			jen.Qual(pkgKernels, "ConvNHWCNext").Call(x("out[b*NR:]"), x("N"), x("in"), x("K"), jen.Lit(0), jen.Lit(0), x("K"), jen.Lit(1), jen.Lit(1),
				x("pack[b*K*NR:][:K*NR]"), x("pbias[b*NR:][:NR]"), x("m.n"), x("min(NR, N-b*NR)"), jen.Lit(g.st.ReLU), x("next")),
		),
	}
}

func (g *stepGen) linearDataBwd() []jen.Code {
	st := g.st
	l := st.Layer
	wv, _ := g.linearNames()
	return []jen.Code{
		jen.Const().Defs(x("K, N = %d, %d", l.In.Size(), l.OutC)),
		x("dout, dx := %s, %s", g.ref(st.DOut), g.ref(st.DIn)),
		x("wt := %s", wv),
		jen.Comment("Split by input feature: each input gradient is one chain over the outputs."),
		span("K"),
		jen.If(x("lo < hi")).Block(
			jen.Qual(pkgKernels, "LinearBackData").Call(x("dx[lo:]"), x("K"), x("dout"), x("N"), x("wt[lo:]"), x("K"), x("m.n"), x("N"), x("hi-lo")),
		),
	}
}

func (g *stepGen) linearWeightBwd() []jen.Code {
	st := g.st
	l := st.Layer
	K, N := l.In.Size(), l.OutC
	wp := g.e.p.param(l.Name + ".weight")
	code := []jen.Code{
		jen.Const().Defs(x("K, N = %d, %d", K, N)),
		x("in, dout := %s, %s", g.ref(st.In), g.ref(st.DOut)),
		x("dw := m.grads[%d:%d]", wp.Off, wp.Off+N*K),
		jen.Comment("Split by output feature: each weight gradient is one chain over the samples."),
		span("N"),
		jen.If(x("lo < hi")).Block(
			jen.Qual(pkgKernels, "LinearBackWeight").Call(x("dw[lo*K:]"), x("K"), x("dout[lo:]"), x("N"), x("in"), x("K"), x("m.n"), x("hi-lo"), x("K")),
		),
	}
	if l.Bias {
		bp := g.e.p.param(l.Name + ".bias")
		code = append(code,
			x("db := m.grads[%d:%d]", bp.Off, bp.Off+N),
			loop("j", "lo", "hi",
				x("var s float64"),
				loop("i", 0, "m.n", x("s += float64(dout[i*N+j])")),
				x("db[j] += float32(s)"),
			),
		)
	}
	return code
}
