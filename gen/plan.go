// Package gen turns a spec.Model into Go source for a shape-specialized model
// package, in two visible steps: Build makes a Plan (plain data: for every layer its
// shapes, algorithm, memory layout, register tile, thread partition, and the arena
// offsets of its buffers), and Emit turns a Plan into Go source with jennifer.
//
// Build is a list of passes, each a small function over the plan:
//
//	lower → fuse → layout → partition → fusePools → streams → allocate
//
// lower makes one step per spec layer; fuse folds ReLU into the conv, batch norm or
// linear step before it, folds batch norm into the conv before it (evaluation
// program only) and turns identity layers into aliases; layout gives every
// activation that a convolution reads the zero halo its padding needs, so no layer
// pads at run time; partition fixes how each step's work is split over threads;
// fusePools has a convolution compute the max pool after it when the pool's
// windows tile its output (evaluation program only); streams marks the first
// layers that write their big output with streaming stores; allocate places every
// buffer in one arena, reusing memory where lifetimes allow.
//
// A plan has two programs. Eval is inference only: batch norm folded, activations
// freed as soon as the next layer has read them. Grad runs forward in either mode
// (batch statistics or running statistics, dropout on or off, chosen at run time)
// and keeps what Backward needs; its backward steps mirror the forward ones.
package gen

import (
	"fmt"
	"sort"

	"github.com/cnngen/cnngen/runtime/kernels"
	"github.com/cnngen/cnngen/runtime/nn"
	"github.com/cnngen/cnngen/spec"
)

// Op is what a step computes.
type Op int

const (
	OpInput   Op = iota + 1 // NCHW user input → NHWC activation (with halo)
	OpConv                  // direct convolution, NHWC, packed weights; fused bias, batch norm (Eval), ReLU
	OpBN                    // batch norm with batch or running statistics; fused ReLU
	OpReLU                  // standalone ReLU
	OpMaxPool               // max pool; Grad records the argmax
	OpAvgPool               // adaptive average pool
	OpLRN                   // local response normalization
	OpDropout               // dropout (Grad program only: Eval aliases it)
	OpFlatten               // NHWC → torch's C·H·W order
	OpLinear                // x·Wᵀ + b with W in place; fused ReLU
)

var opNames = [...]string{OpInput: "input", OpConv: "conv", OpBN: "batchnorm", OpReLU: "relu",
	OpMaxPool: "maxpool", OpAvgPool: "avgpool", OpLRN: "lrn", OpDropout: "dropout", OpFlatten: "flatten", OpLinear: "linear"}

func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Buffer is a tensor in the model's arena, per sample: an NHWC activation with a zero
// halo of PH rows and PW columns on each side, or a flat vector. The arena holds
// MaxBatch samples of every buffer, sample-major, so a buffer's arena offset is
// Off×MaxBatch.
type Buffer struct {
	ID      int
	Name    string // "x", "act features.0", "grad features.0", ...
	C, H, W int    // interior shape; flat vectors have H = W = 1
	PH, PW  int    // zero halo
	Flat    bool
	Int     bool // int32 (argmax), in the integer arena
	Size    int  // values per sample, halo included
	Off     int  // per-sample offset in its arena, set by allocate
	// First and Last are the first and last step (program order, forward then
	// backward) that touch the buffer; set by allocate.
	First, Last int
}

// RowStride is the distance between rows, ColStride between pixels.
func (b *Buffer) RowStride() int { return (b.W + 2*b.PW) * b.C }

// Interior is the offset of pixel (0, 0) inside a sample.
func (b *Buffer) Interior() int { return b.PH*b.RowStride() + b.PW*b.C }

func (b *Buffer) String() string {
	if b.Flat {
		return fmt.Sprintf("%s[%d]", b.Name, b.C)
	}
	s := fmt.Sprintf("%s[%dx%dx%d NHWC", b.Name, b.H, b.W, b.C)
	if b.PH != 0 || b.PW != 0 {
		s += fmt.Sprintf(" halo %dx%d", b.PH, b.PW)
	}
	return s + "]"
}

// Partition says how a step splits its work over the threads. Every partition splits
// outputs, never a sum, so results do not depend on the thread count.
type Partition int

const (
	ByRows     Partition = iota + 1 // (sample, output row) pairs
	ByChannels                      // channels (batch norm statistics)
	ByOutputs                       // output features (linear forward, weight gradients)
	ByInputs                        // input features (linear input gradient)
	BySamples                       // samples
	ByBlocks                        // convolution channel blocks, each worker walking every row
)

var partNames = [...]string{ByRows: "rows", ByChannels: "channels", ByOutputs: "outputs", ByInputs: "inputs", BySamples: "samples", ByBlocks: "blocks"}

func (p Partition) String() string {
	if p > 0 && int(p) < len(partNames) {
		return partNames[p]
	}
	return "-"
}

// Step is one forward operation and, in the Grad program, its backward.
type Step struct {
	Op    Op
	Layer *spec.Layer   // the layer computed (conv, linear, ...); nil for OpInput
	Fused []*spec.Layer // layers folded into this step (batch norm, ReLU)
	BN    *spec.Layer   // Eval: the batch norm folded into this conv
	ReLU  bool          // ReLU fused into the epilogue
	In    *Buffer
	Out   *Buffer
	Saved *Buffer // Grad: what backward needs beyond In and Out (argmax, LRN scale, dropout mask)
	// Backward: gradient buffers for Out and In (Grad program).
	DOut, DIn *Buffer

	Algo      string    // "direct", "gemm", "chain", ...
	Tile      string    // register tile, for conv and linear
	Part      Partition // forward partition
	BackPart  string    // backward partitions, for the plan printout
	ConvIndex int       // index among the model's convolutions (packed weights)
	// Eval: Pool is the max pool after this convolution whose windows tile its
	// output, which this step computes too, a block's rows at a time while they
	// are in cache (see fusePools); PoolOf, on that pool's step, is this step.
	Pool, PoolOf *Step
	// Stream: this convolution writes its output with streaming stores
	// (kernels.ConvNHWCStream; see streams).
	Stream bool
}

// fastAlgo is the algorithm an evaluation step runs in fast mode, "" where it is
// the exact one.
func fastAlgo(st *Step) string {
	switch {
	case st.Op == OpLinear && !LinearGEMM(st.Layer):
		return "dot16 bf16"
	case st.Op == OpConv && Winograd(st.Layer):
		return "winograd F(4x4,3x3)"
	case st.Op == OpMaxPool && st.PoolOf != nil && Winograd(st.PoolOf.Layer):
		return "own pass" // after a Winograd convolution, which does not pool
	}
	return ""
}

// Winograd reports whether fast mode runs convolution l as Winograd F(4×4, 3×3)
// (runtime/winograd): 3×3, stride 1, padding 1, one group, an output of at least
// winogradMinHW on each side (winogradSmallMinHW with winogradSmallMinC input
// channels), where its 4× fewer multiplies pay for reading transformed weights 4×
// the size, and at least winogradMinC input channels: the transforms cost per input
// and per output channel, the multiplies they save per pair of them, so a first
// layer loses (VGG's, 3 → 64 at 224×224: 1.53 ms as Winograd against 0.67 ms direct
// on two threads, in one series).
func Winograd(l *spec.Layer) bool {
	if l.Kind != spec.Conv || l.KH != 3 || l.KW != 3 || l.SH != 1 || l.SW != 1 || l.PH != 1 || l.PW != 1 ||
		l.Groups != 1 || l.In.C < winogradMinC {
		return false
	}
	side := min(l.Out.H, l.Out.W)
	return side >= winogradMinHW || side >= winogradSmallMinHW && l.In.C >= winogradSmallMinC
}

// winogradMinHW is the smallest output side of a Winograd convolution with any
// channel count, winogradSmallMinHW that of one with at least winogradSmallMinC
// input channels. At 28² to 224² Winograd ran 2.1–2.7× faster on the Intel Xeon; at
// 14² and AlexNet's 13² only 1.1–1.7× with the weights in cache, and at batch 1 the
// transformed weights (4× the size: 113 MB for VGG's three 14² layers) come from
// memory, which that machine streamed at 11–16 GB/s a core, so those layers stayed
// direct. On the AMD EPYC (Zen 5: 25–43 GB/s a core), 2026-11-27, fast mode with
// them as Winograd, three alternated runs of each binary on two threads: AlexNet's
// 13² layers 1.83–1.93 against 1.84–1.98 ms at batch 1 and 9.5–10.2 against
// 14.5–14.9 ms at batch 8 (the whole net 26.5–28.1 against 31.1–31.8 ms); VGG-16's
// 14² layers 7.5–8.1 against 8.6–8.8 ms at batch 1 and 33.0–33.5 against 57.5–59.4
// ms at batch 8 (the net 262–274 against 297–305 ms). With few channels the
// transforms cost more than they save at batch 1: VGG-MNIST's 14² layer (32 → 64)
// took 0.068–0.089 ms as Winograd against 0.044–0.051 direct (and 1.5–2.0 against
// 2.5 ms at batch 64), so the small outputs need winogradSmallMinC channels, which
// the ImageNet nets' 13² and 14² layers have (192 to 512).
const (
	winogradMinHW      = 20
	winogradSmallMinHW = 13
	winogradSmallMinC  = 128
)

// winogradMinC is the fewest input channels a Winograd convolution has.
const winogradMinC = 16

// Fast reports whether fast mode runs layer l with one of its reduced-precision
// methods: a convolution as Winograd F(4×4, 3×3), a linear layer with bfloat16
// weights (every linear layer but those exact mode runs as a GEMM, which fast mode
// runs the same way). verify.FastBound takes it to bound fast mode's error.
func Fast(l *spec.Layer) bool {
	return Winograd(l) || (l.Kind == spec.Linear && !LinearGEMM(l))
}

// LinearGEMM reports whether linear layer l runs as a GEMM on a packed copy of its
// weights rather than with kernels.LinearChain on the weights in place: when they take at most
// gemmMaxWeights bytes and the layer has at least kernels.NR outputs (a
// classifier's 10 would fill a third of each FMA and read 3.2× its weights). The
// copy is the layer's weights as a 1×1 convolution's forward pack ([ocBlock][K][NR],
// nn.PackConv), and
// kernels.ConvNHWC runs it with the samples as pixels: register tiles of up to 14
// samples × 32 outputs, each output one FMA chain from the bias over the K inputs
// in order. LinearChain sums in the same order (the same bits), but it must
// transpose every block of 16 W rows in registers: with W in L2 that takes longer
// than the FMAs (22–41 GB/s of W on one core at batch 1), and when W streams from
// memory it still costs up to 5–10% at batch 1 (1–2% between two series). Big layers
// (AlexNet's and VGG's, 16–411 MB) therefore stay in place: their batch-1 cost is
// streaming W from memory once, and a second copy would double the model's largest
// tensors. Fast mode runs these layers the same way and streams the other linear
// layers' weights as bfloat16 (kernels.LinearBF16, 16 interleaved chains).
func LinearGEMM(l *spec.Layer) bool {
	return l.Kind == spec.Linear && 4*l.In.Size()*l.OutC <= gemmMaxWeights && l.OutC >= kernels.NR
}

// gemmMaxWeights is the largest linear layer (bytes of fp32 weights) that runs as
// a GEMM: one core's L2.
const gemmMaxWeights = 2 << 20

// Held is the name of the layer whose output the step's Out holds: the last layer
// fused into it, or its own.
func (s *Step) Held() string {
	if len(s.Fused) > 0 {
		return s.Fused[len(s.Fused)-1].Name
	}
	return s.Name()
}

// Name is the step's layer name, "input" for OpInput.
func (s *Step) Name() string {
	if s.Layer == nil {
		return "input"
	}
	return s.Layer.Name
}

// Program is one sequence of steps over one arena layout.
type Program struct {
	Name    string // "eval" or "grad"
	Steps   []*Step
	Buffers []*Buffer
	Aliases map[string]*Buffer // layer name → the buffer holding its output
	// Arena and IntArena are the per-sample sizes of the float and int32 arenas.
	Arena, IntArena int
	// Logits is the buffer holding the logits; DX the input gradient (NCHW) and
	// DLogits the incoming gradient (Grad only).
	Logits, DX, DLogits *Buffer
	// GradOf maps an activation to its gradient buffer (Grad only).
	GradOf map[*Buffer]*Buffer
}

// Plan is everything the emitter needs, as plain data.
type Plan struct {
	Model   *spec.Model
	Package string // Go package name: the net name without underscores
	Source  string // spec path for the header, e.g. "spec/vgg16.cnn"
	Eval    *Program
	Grad    *Program
	Convs   []*ConvPlan
	Params  []ParamPlan
	Buffers []ParamPlan // batch norm running statistics
}

// ParamPlan places one torchvision tensor in the model's parameter (or buffer) slab.
type ParamPlan struct {
	spec.Tensor
	Off int
}

// ConvPlan describes the packed weights of one convolution.
type ConvPlan struct {
	Layer    *spec.Layer
	BN       *spec.Layer // the batch norm folded into it in Eval, if any
	Groups   int
	ICg, OCg int // channels per group
	OCB      int // output-channel blocks of kernels.NR per group
	ICB      int // input-channel blocks per group (backward data)
	PackSize int // floats in one forward pack: Groups*OCB*KH*KW*ICg*NR
	BiasSize int // Groups*OCB*NR
	Dims     nn.ConvDims
	BackData string // how the input gradient is computed
	BackPack int    // floats in the backward-data pack (nn.PackConvBackData)
	// HaloY and HaloX are the zero halo the output gradient needs so that the
	// input gradient reads it with no bounds (nn.BackDataHalo).
	HaloY, HaloX int
	Weight       ParamPlan
	Bias         *ParamPlan
	// Fwd and Data are the schedules of the forward convolution and of the
	// input-gradient convolution; WgradTaps says the weight gradient's units are
	// (block, kernel row) rather than blocks (see wgradUnits).
	Fwd, Data Schedule
	WgradTaps bool
	WChunk    int // output rows per weight-gradient call (input in L2)
}

// Schedule is how a convolution's kernel calls are laid over the workers and the
// caches: the workers claim either runs of at most Chunk rows (so a run's input
// stays in L2 while every channel block runs over it), or channel blocks, each
// over every row or a part of them (see chunked in emit_ops.go). Both give the
// same bits: no sum is ever cut.
type Schedule struct {
	ByBlocks bool // the workers claim channel blocks, each running its block over its rows
	Chunk    int  // rows per claim in a row split (unused by a block split)
	// RowMajor is a forward rows split whose weights are so small
	// (rowMajorWeights) that each row runs every block before the next: a call
	// then prefetches its share of the next row's output, so that all of it is
	// in L2 when that row is stored, unless the output streams (Step.Stream).
	RowMajor bool
}

// streamOutBytes is the smallest output (per sample) a RowMajor convolution
// without a fused pool writes with streaming stores: twice one core's L2, so
// that it could not stay in cache for the next layer anyway. VGG's first
// layer writes 12.8 MB.
const streamOutBytes = 4 << 20

// rowMajorWeights is the most packed weights a RowMajor rows split may have:
// they stay in L2 (and mostly L1) however the rows and blocks interleave. VGG's
// first layer (3 → 64, 7 KB) writes 12.8 MB at 224×224 and computes only 27
// FMAs per output: block by block its stores waited for memory, row by row with
// the next row's output prefetched it ran 1.4–2× faster (cnn bench -model vgg16
// -threads 1: 3.05–3.31 → 1.51–2.20 ms).
const rowMajorWeights = 32 << 10

func (s Schedule) String() string {
	if s.ByBlocks {
		return "blocks"
	}
	if s.RowMajor {
		return fmt.Sprintf("rows, %d-row chunks, every block per row", s.Chunk)
	}
	return fmt.Sprintf("rows, %d-row chunks", s.Chunk)
}

// chunkBudget is the input bytes a chunk may hold: a quarter of one core's L2
// (2 MB on the machines measured), leaving room for a block of packed weights.
const chunkBudget = 512 << 10

// schedule chooses a Schedule for rows output rows (per sample) made of units
// channel blocks, each row reading rowBytes of new input (step rows of rowBytes
// per output row, window rows for the first), every block's packed weights
// taking blockBytes. It sizes the chunk to chunkBudget, then picks the split
// that moves fewer bytes from beyond L2 for one sample on two workers (the
// machine kind's cores), counting what chunked really does:
//
//	rows:   every claim of ⌈rows/claims⌉ rows reads all the weights, unless they
//	        fit beside the chunk (then each worker reads them once); the input is
//	        read once.
//	blocks: every block's weights are read once; every block reads the whole
//	        input, unless it fits in L2 beside the block (then once per worker).
//	        (With few blocks chunked also cuts the rows into parts, each reading
//	        its block's weights again; the model leaves that out.)
//
// A block split needs at least 4 blocks, so that uneven thread counts still
// balance. Deep layers, whose weights outweigh their activations (VGG's 28×28
// and 14×14 stages), split by blocks; wide shallow ones split by rows.
func schedule(rows, units, rowBytes, step, window, blockBytes int) Schedule {
	chunk := 1
	for chunk < rows && (chunk*step+window)*rowBytes <= chunkBudget {
		chunk++
	}
	const workers = 2
	ceil := func(a, b int) int { return (a + b - 1) / b }
	claim := min(chunk, max(1, rows/(4*workers))) // as chunked claims at batch 1
	weights, input := units*blockBytes, (rows*step+window)*rowBytes
	byRows := input + workers*weights
	if weights > chunkBudget {
		byRows = input + ceil(rows, claim)*weights
	}
	byBlocks := weights + workers*input
	if input+blockBytes > 2*chunkBudget {
		byBlocks = weights + units*input
	}
	return Schedule{ByBlocks: units >= 4 && byBlocks < byRows, Chunk: chunk}
}

// Build plans m for the generated package pkg; source is the spec path used in
// generated comments.
func Build(m *spec.Model, pkg, source string) (*Plan, error) {
	p := &Plan{Model: m, Package: pkg, Source: source}
	off := 0
	for _, t := range m.Params() {
		p.Params = append(p.Params, ParamPlan{t, off})
		off += t.Len()
	}
	off = 0
	for _, t := range m.Buffers() {
		p.Buffers = append(p.Buffers, ParamPlan{t, off})
		off += t.Len()
	}
	for _, l := range m.Layers {
		if l.Kind == spec.Conv {
			p.Convs = append(p.Convs, p.convPlan(l))
		}
	}
	for _, name := range []string{"eval", "grad"} {
		prog := &Program{Name: name, Aliases: map[string]*Buffer{}}
		for _, pass := range []func(*Plan, *Program) error{lower, fuse, layout, partition, fusePools, streams, allocate} {
			if err := pass(p, prog); err != nil {
				return nil, fmt.Errorf("%s: %s program: %w", m.File, name, err)
			}
		}
		if name == "eval" {
			p.Eval = prog
		} else {
			p.Grad = prog
		}
	}
	return p, nil
}

func (p *Plan) param(name string) *ParamPlan {
	for i := range p.Params {
		if p.Params[i].Name == name {
			return &p.Params[i]
		}
	}
	return nil
}

// buffer returns the running-statistics slot of the given name.
func (p *Plan) buffer(name string) *ParamPlan {
	for i := range p.Buffers {
		if p.Buffers[i].Name == name {
			return &p.Buffers[i]
		}
	}
	return nil
}

func (p *Plan) convPlan(l *spec.Layer) *ConvPlan {
	c := &ConvPlan{Layer: l, Groups: l.Groups, ICg: l.In.C / l.Groups, OCg: l.OutC / l.Groups}
	c.OCB = (c.OCg + kernels.NR - 1) / kernels.NR
	c.ICB = (c.ICg + kernels.NR - 1) / kernels.NR
	c.PackSize = c.Groups * c.OCB * l.KH * l.KW * c.ICg * kernels.NR
	c.BiasSize = c.Groups * c.OCB * kernels.NR
	c.Weight = *p.param(l.Name + ".weight")
	if l.Bias {
		c.Bias = p.param(l.Name + ".bias")
	}
	c.Dims = nn.ConvDims{Groups: l.Groups, ICg: c.ICg, OCg: c.OCg, KH: l.KH, KW: l.KW, SH: l.SH, SW: l.SW}
	c.BackPack = nn.PackConvBackDataSize(c.Dims)
	c.HaloY = nn.BackDataHalo(l.In.H, l.Out.H, l.KH, l.SH, l.PH)
	c.HaloX = nn.BackDataHalo(l.In.W, l.Out.W, l.KW, l.SW, l.PW)
	if l.SH == 1 && l.SW == 1 {
		c.BackData = "conv with flipped weights"
	} else {
		c.BackData = fmt.Sprintf("conv per stride phase (%d×%d phases)", l.SH, l.SW)
	}
	f32 := 4
	inRow := (l.In.W + 2*l.PW) * l.In.C * f32
	block := l.KH * l.KW * c.ICg * kernels.NR * f32 // one block's packed weights, bytes
	c.Fwd = schedule(l.Out.H, c.Groups*c.OCB, inRow, l.SH, l.KH-l.SH, block)
	c.Fwd.RowMajor = !c.Fwd.ByBlocks && c.Groups*c.OCB*block <= rowMajorWeights
	// The input gradient reads the output gradient (with its halo) over about
	// ⌈KH/SH⌉ rows per input row.
	dyRow := (l.Out.W + 2*c.HaloX) * l.OutC * f32
	taps := (l.KH + l.SH - 1) / l.SH
	c.Data = schedule(l.In.H, c.Groups*c.ICB, dyRow, 1, taps-1, taps*((l.KW+l.SW-1)/l.SW)*c.OCg*kernels.NR*f32)
	c.WgradTaps = c.Groups*c.OCB < 2
	c.WChunk = 1
	for c.WChunk < l.Out.H && ((c.WChunk+1)*l.SH+l.KH-l.SH)*inRow <= chunkBudget {
		c.WChunk++
	}
	for i, other := range p.Model.Layers {
		if other == l && i+1 < len(p.Model.Layers) && p.Model.Layers[i+1].Kind == spec.BatchNorm {
			c.BN = p.Model.Layers[i+1]
		}
	}
	return c
}

func (p *Plan) convOf(l *spec.Layer) (int, *ConvPlan) {
	for i, c := range p.Convs {
		if c.Layer == l {
			return i, c
		}
	}
	return -1, nil
}

func newBuffer(prog *Program, name string, s spec.Shape) *Buffer {
	b := &Buffer{ID: len(prog.Buffers), Name: name, C: s.C, H: s.H, W: s.W, Flat: s.Flat}
	prog.Buffers = append(prog.Buffers, b)
	return b
}

// lower makes one step per layer, each writing a new buffer.
func lower(p *Plan, prog *Program) error {
	m := p.Model
	x := newBuffer(prog, "x", m.Input)
	prog.Steps = append(prog.Steps, &Step{Op: OpInput, Out: x, Part: ByRows})
	in := x
	for _, l := range m.Layers {
		st := &Step{Layer: l, In: in}
		switch l.Kind {
		case spec.Conv:
			st.Op = OpConv
			st.ConvIndex, _ = p.convOf(l)
		case spec.ReLU:
			st.Op = OpReLU
		case spec.MaxPool:
			st.Op = OpMaxPool
		case spec.AvgPool:
			st.Op = OpAvgPool
		case spec.LRN:
			st.Op = OpLRN
		case spec.BatchNorm:
			st.Op = OpBN
		case spec.Dropout:
			st.Op = OpDropout
		case spec.Flatten:
			st.Op = OpFlatten
		case spec.Linear:
			st.Op = OpLinear
		default:
			return fmt.Errorf("%s: layer kind %v has no generator", l.Name, l.Kind)
		}
		st.Out = newBuffer(prog, "act "+l.Name, l.Out)
		prog.Steps = append(prog.Steps, st)
		in = st.Out
	}
	return nil
}

// fuse folds ReLU and (Eval) batch norm into the step before, and turns identity
// layers into aliases of their input.
func fuse(p *Plan, prog *Program) error {
	var out []*Step
	// redirect makes every later reader of st.Out read to instead.
	redirect := func(st *Step, to *Buffer) {
		for _, later := range prog.Steps {
			if later.In == st.Out {
				later.In = to
			}
		}
	}
	eval := prog.Name == "eval"
	for _, st := range prog.Steps {
		var prev *Step
		if len(out) > 0 {
			prev = out[len(out)-1]
		}
		switch {
		case st.Op == OpReLU && prev != nil && !prev.ReLU && prev.Out == st.In &&
			(prev.Op == OpConv || prev.Op == OpLinear || prev.Op == OpBN):
			prev.ReLU = true
			prev.Fused = append(prev.Fused, st.Layer)
			redirect(st, prev.Out)
			continue
		case eval && st.Op == OpBN && prev != nil && prev.Op == OpConv && !prev.ReLU && prev.BN == nil && prev.Out == st.In:
			prev.BN = st.Layer
			prev.Fused = append(prev.Fused, st.Layer)
			redirect(st, prev.Out)
			continue
		case eval && st.Op == OpDropout,
			st.Op == OpAvgPool && st.Layer.In.H == st.Layer.Out.H && st.Layer.In.W == st.Layer.Out.W,
			// A 1×1 NHWC activation is already in C·H·W order.
			st.Op == OpFlatten && st.Layer.In.H == 1 && st.Layer.In.W == 1 && !st.In.Flat:
			// Identity: the layer's output is its input.
			prog.Aliases[st.Name()] = st.In
			redirect(st, st.In)
			continue
		}
		out = append(out, st)
	}
	prog.Steps = out
	// Drop buffers nobody writes any more.
	var bufs []*Buffer
	used := map[*Buffer]bool{}
	for _, st := range prog.Steps {
		used[st.In] = true
		used[st.Out] = true
	}
	for _, b := range prog.Buffers {
		if used[b] {
			b.ID = len(bufs)
			bufs = append(bufs, b)
		}
	}
	prog.Buffers = bufs
	// A step's output is the output of its last layer; the outputs of the layers
	// fused before it are not held anywhere.
	for _, st := range prog.Steps {
		if st.Layer != nil {
			prog.Aliases[st.Held()] = st.Out
		}
	}
	// An identity layer aliases its input, which may itself have been redirected to
	// a fused step's output: resolve to the buffers that exist.
	for name, b := range prog.Aliases {
		for _, st := range prog.Steps {
			if st.Out == b {
				prog.Aliases[name] = st.Out
			}
		}
	}
	last := prog.Steps[len(prog.Steps)-1]
	prog.Logits = last.Out
	if !last.Out.Flat {
		return fmt.Errorf("the last layer's output %v is not flat; end the net with a linear layer or flatten", last.Out)
	}
	return nil
}

// layout gives conv inputs the zero halo their padding needs, and in the Grad
// program adds gradient buffers (with the halo the input-gradient convolution needs)
// and the saved state of pools, LRN and dropout.
func layout(p *Plan, prog *Program) error {
	for _, st := range prog.Steps {
		if st.Op == OpConv {
			if st.In.Flat {
				return fmt.Errorf("%s: conv on a flat input", st.Name())
			}
			st.In.PH = max(st.In.PH, st.Layer.PH)
			st.In.PW = max(st.In.PW, st.Layer.PW)
			st.Algo = "direct"
			st.Tile = fmt.Sprintf("pixels×%d", kernels.NR)
		}
		if st.Op == OpLinear {
			st.Algo = "chain"
			st.Tile = "rows×samples"
			if LinearGEMM(st.Layer) {
				st.Algo = "gemm"
				st.Tile = fmt.Sprintf("samples×%d", kernels.NR)
			}
		}
	}
	if prog.Name == "grad" {
		gradOf := map[*Buffer]*Buffer{}
		grad := func(b *Buffer) *Buffer {
			if g, ok := gradOf[b]; ok {
				return g
			}
			g := &Buffer{ID: len(prog.Buffers), Name: "grad " + b.Name, C: b.C, H: b.H, W: b.W, Flat: b.Flat}
			prog.Buffers = append(prog.Buffers, g)
			gradOf[b] = g
			return g
		}
		for _, st := range prog.Steps {
			st.DOut = grad(st.Out)
			if st.Op != OpInput {
				st.DIn = grad(st.In)
			}
			l := st.Layer
			switch st.Op {
			case OpConv:
				_, c := p.convOf(l)
				st.DOut.PH = max(st.DOut.PH, c.HaloY)
				st.DOut.PW = max(st.DOut.PW, c.HaloX)
			case OpMaxPool:
				st.Saved = &Buffer{ID: len(prog.Buffers), Name: "argmax " + l.Name, C: l.Out.C, H: l.Out.H, W: l.Out.W, Int: true}
				prog.Buffers = append(prog.Buffers, st.Saved)
			case OpLRN:
				st.Saved = &Buffer{ID: len(prog.Buffers), Name: "scale " + l.Name, C: l.Out.C, H: l.Out.H, W: l.Out.W}
				prog.Buffers = append(prog.Buffers, st.Saved)
			case OpDropout:
				// The mask is kept in C·H·W order whatever the activation's layout,
				// so it reads the same as a PyTorch mask.
				st.Saved = &Buffer{ID: len(prog.Buffers), Name: "mask " + l.Name, C: l.Out.Size(), H: 1, W: 1, Flat: true}
				prog.Buffers = append(prog.Buffers, st.Saved)
			}
		}
		prog.DX = &Buffer{ID: len(prog.Buffers), Name: "dx", C: p.Model.Input.Size(), H: 1, W: 1, Flat: true}
		prog.Buffers = append(prog.Buffers, prog.DX)
		prog.DLogits = gradOf[prog.Logits]
		prog.GradOf = gradOf
	}
	for _, b := range prog.Buffers {
		b.Size = (b.H + 2*b.PH) * (b.W + 2*b.PW) * b.C
	}
	return nil
}

// partition fixes each step's split over threads.
func partition(p *Plan, prog *Program) error {
	for _, st := range prog.Steps {
		switch st.Op {
		case OpLinear:
			st.Part = ByOutputs
			st.BackPart = "dx by inputs, dW by outputs"
		case OpBN:
			st.Part = ByChannels
			st.BackPart = "channels"
		case OpFlatten, OpDropout:
			st.Part = BySamples
			st.BackPart = "samples"
		case OpConv:
			_, c := p.convOf(st.Layer)
			st.Part = ByRows
			if c.Fwd.ByBlocks {
				st.Part = ByBlocks
			}
			st.Tile = fmt.Sprintf("pixels×%d", kernels.NR)
			if !c.Fwd.ByBlocks {
				st.Tile += fmt.Sprintf(", %d-row chunks", c.Fwd.Chunk)
				if c.Fwd.RowMajor {
					st.Tile += ", every block per row"
				}
			}
			units := "output-channel blocks"
			if c.WgradTaps {
				units = "(block, kernel row)"
			}
			st.BackPart = fmt.Sprintf("dx by %s, dW by %s", c.Data, units)
		default:
			st.Part = ByRows
			st.BackPart = "rows"
		}
	}
	return nil
}

// fusePools gives the eval program's max pools whose windows tile their input
// (kernel = stride, no padding, the input a whole number of windows) and follow
// the convolution whose output only they read to that convolution: after
// it has computed a block's rows for a row of windows, it pools them, reading
// the rows back from L1/L2 instead of from memory in a pass of their own. Its
// direct path writes those rows to a per-worker ring of a window's rows
// (poolRing) and never touches its output buffer; a Winograd convolution in fast
// mode does not pool, writes the whole output there, and its pool step runs as
// before. The pool's output is written while the convolution still reads its
// input, so allocate keeps them apart.
func fusePools(p *Plan, prog *Program) error {
	if prog.Name != "eval" {
		return nil
	}
	for i, st := range prog.Steps[:len(prog.Steps)-1] {
		pl := prog.Steps[i+1]
		if st.Op != OpConv || pl.Op != OpMaxPool || pl.In != st.Out || st.Out == prog.Logits {
			continue
		}
		l, c := pl.Layer, st.Layer.Out
		if l.KH != l.SH || l.KW != l.SW || l.PH != 0 || l.PW != 0 ||
			c.H%l.KH != 0 || c.W%l.KW != 0 || l.Out.H != c.H/l.KH || l.Out.W != c.W/l.KW {
			continue
		}
		readers := 0
		for _, o := range prog.Steps {
			if o.In == st.Out {
				readers++
			}
		}
		if readers != 1 {
			continue
		}
		st.Pool, pl.PoolOf = pl, st
		pl.Algo = "in " + st.Name()
	}
	return nil
}

// streams marks the convolutions that write their output with streaming stores
// (Step.Stream): a RowMajor forward with no fused pool and more than
// streamOutBytes of output per sample, in both programs.
func streams(p *Plan, prog *Program) error {
	for _, st := range prog.Steps {
		if st.Op != OpConv {
			continue
		}
		if _, c := p.convOf(st.Layer); c.Fwd.RowMajor && st.Pool == nil && st.Out.Size*4 > streamOutBytes {
			st.Stream = true
			st.Tile += ", output streamed"
		}
	}
	return nil
}

// allocate places the buffers in the arenas. A buffer lives from the first to the
// last step that touches it (forward steps, then in Grad the backward steps in
// reverse); two buffers share memory only if their lifetimes do not overlap.
func allocate(p *Plan, prog *Program) error {
	n := len(prog.Steps)
	for _, b := range prog.Buffers {
		b.First, b.Last = -1, -1
	}
	touch := func(b *Buffer, t int) {
		if b == nil {
			return
		}
		if b.First < 0 || t < b.First {
			b.First = t
		}
		if t > b.Last {
			b.Last = t
		}
	}
	for i, st := range prog.Steps {
		touch(st.In, i)
		touch(st.Out, i)
		touch(st.Saved, i)
		if st.Pool != nil {
			// The pool's output is written while this step reads its input.
			touch(st.In, i+1)
		}
	}
	if prog.Name == "eval" {
		// The logits are read by the caller after the last step.
		touch(prog.Logits, n)
	} else {
		// Backward step for forward step i runs at time 2n-1-i. Forward
		// activations stay until their backward use.
		for i, st := range prog.Steps {
			t := 2*n - 1 - i
			touch(st.In, t)
			touch(st.Out, t)
			touch(st.Saved, t)
			touch(st.DOut, t)
			touch(st.DIn, t)
			if i > 0 {
				// The step before reads this step's DIn as its DOut.
				touch(st.DIn, t+1)
			}
		}
		touch(prog.DLogits, n)
		touch(prog.DX, 2*n)
		// Every layer's gradient is held until the next Backward, so that it can be
		// inspected (Gradient) and checked layer by layer against the reference.
		for _, st := range prog.Steps {
			touch(st.DOut, 2*n)
		}
		// Forward outputs of a training pass must survive until Backward, and
		// the logits until the caller has read them: nothing written in the
		// forward half may be reused in it. Extending every forward buffer to
		// the backward half does that.
		for _, b := range prog.Buffers {
			if b.First < n && b.Last < n {
				b.Last = n
			}
		}
		touch(prog.Logits, 2*n)
	}
	var err error
	prog.Arena, err = place(prog.Buffers, false)
	if err != nil {
		return err
	}
	prog.IntArena, err = place(prog.Buffers, true)
	return err
}

// place assigns offsets first-fit in order of first use; it returns the arena size.
// Every offset is a multiple of 16 values, so that a buffer's first sample
// starts on 64 bytes (if the arena does: Go places allocations of 32 KiB and
// more on pages) for the kernels' vector and streaming stores.
func place(bufs []*Buffer, ints bool) (int, error) {
	type span struct{ off, end, last int }
	var order []*Buffer
	for _, b := range bufs {
		if b.Int == ints && b.First >= 0 {
			order = append(order, b)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].First < order[j].First })
	var live []span
	size := 0
	for _, b := range order {
		// Free spans whose buffers are dead before b starts.
		var keep []span
		for _, s := range live {
			if s.last >= b.First {
				keep = append(keep, s)
			}
		}
		live = keep
		off := 0
		for {
			conflict := false
			for _, s := range live {
				if off < s.end && s.off < off+size16(b.Size) {
					off = s.end
					conflict = true
				}
			}
			if !conflict {
				break
			}
		}
		b.Off = off
		live = append(live, span{off, off + size16(b.Size), b.Last})
		size = max(size, off+b.Size)
	}
	if size >= 1<<31 {
		return 0, fmt.Errorf("arena of %d values per sample is too large", size)
	}
	return size, nil
}

// size16 rounds n values up to a multiple of 16.
func size16(n int) int { return (n + 15) &^ 15 }
