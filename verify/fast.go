package verify

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/spec"
)

// FastBound runs net in evaluation mode on x (n samples, NCHW) in float64 and
// returns the reference logits and, for each logit, a bound on how far a generated
// model in fast mode may be from it. The bound is derived from fast mode's methods,
// layer by layer, not fitted to measurements; fast reports the layers that run one
// (gen.Fast for generated models: a Winograd convolution, a linear layer with
// bfloat16 weights), nil none:
//
// A layer computed from an input known within e (elementwise, |x̂ − x| ≤ e) is
// within e' of its reference output, where with u = 2⁻²⁴, γ(k) = k·u/(1 − k·u),
// W the layer's weights (batch norm folded in, as the evaluation program folds it:
// w·scale and b·scale + shift, each rounded once, δ = u; else δ = 0), A = |W|·(|x| + e)
// and P = √(W²·e²) (see rss: the errors a layer receives are propagated as
// independent). A sum of k terms in one chain of roundings (an FMA chain) is charged
// γ̃(k) = min(γ(k), exp(Lambda·√k·u + k·u²/(1 − u)) − 1), the probabilistic bound of
// Higham and Mary (2019) that exact mode's tolerances use (Lambda): the chain's
// roundings independent and of mean zero, it holds with probability at least
// 1 − 2k·exp(−Lambda²(1 − u)²/2) per sum; the short fixed sequences of roundings
// (Winograd's transforms, a bias) keep the worst case γ:
//
//   - direct convolution, K = C/groups·KH·KW terms in one FMA chain started from the
//     bias: e' = P + δ·(A + |b|) + γ̃(K)·(1 + δ)·(A + |b|);
//   - Winograd F(4×4, 3×3) (fast reports which convolutions run so), step by step
//     as runtime/winograd computes it (its doc.go), per 6×6 tile d of the input
//     and channel c: Û = fl(G g Gᵀ) from float64 sums is within u·Um of U, Um =
//     |G g Gᵀ| + 2⁻²⁶·|G||g||Gᵀ|; V̂ = Bᵀ d̂ B, four roundings deep, is within
//     γ(4)·Wd of V = Bᵀ d̂ B, Wd = |Bᵀ|(|d| + e)|B|, and |V| ≤ Vm = |Bᵀ d B| +
//     |Bᵀ| e |B|; M̂, the FMA chain over the C channels from +0, is within
//     γ̃(C)·Σ_c |Û||V̂| of Σ_c Û ⊙ V̂; Ŷ = Aᵀ M̂ A + b, six roundings deep and one
//     for the bias, is within γ(7)·(|Aᵀ||M̂||A| + |b|) of Aᵀ M̂ A + b. So with
//     R1 = |Aᵀ|(Σ_c Um ⊙ Vm)|A| and R2 = |Aᵀ|(Σ_c Um ⊙ Wd)|A| over the output's
//     4×4 tile: e' = P + δ·(A + |b|) + (1 + δ)·(ka·R1 + kb·R2 + γ(7)·|b|), ka =
//     (γ̃(C)(1 + u) + u)(1 + γ(7)) + γ(7), kb = (γ̃(C)(1 + u) + u + 1)·γ(4)·(1 + γ(7)).
//     runtime/winograd's tests hold the kernels to the coarser γ(C + 13)·(|b| +
//     Σ_c |Aᵀ|[(|G||g||Gᵀ|) ⊙ Wd]|A|), every term's roundings against the absolute
//     transforms; here the long chain's roundings scale with the transformed
//     magnitudes |U|, |V| and the absolute transforms only with the input
//     transform's four, which on VGG-16 (random weights, seed 1, with γ for the
//     chains) made the bound after its last convolution 16 times smaller (0.065
//     of the output's scale against 1.05);
//   - a linear layer that fast reports with bfloat16 weights: their rounding is
//     not bounded but applied (see below), and the rest is the sum of 16 lanes of
//     ⌈K/16⌉ FMAs, a 4-level tree and the bias: e' = P + γ̃(⌈K/16⌉ + 5)·(A + |b|),
//     with W the rounded weights;
//   - any other linear layer, one FMA chain from the bias over its K inputs (the
//     GEMM exact mode runs small layers as, gen.LinearGEMM): e' = P + γ̃(K)·(A + |b|);
//   - a batch norm on its own, y = x·s + t in float64 rounded once: e' = |s|·e +
//     2u·(|s|·(|x| + e) + |t|);
//   - ReLU keeps e where x ≥ 0 and takes max(0, x + e) where x < 0 (reluErr: an
//     input that stays negative gives exactly 0); dropout and flatten keep e; a max
//     pool takes the window's largest e; the average pool averages e and adds
//     u·mean(|x| + e) for its rounding.
//   - local response normalization, computed in float64 from the float32 input and
//     rounded once: e' = lrnErr (the input errors through the largest derivatives
//     over the box x ± e, plus that rounding).
//
// The layers run on the weights as fast mode holds them: a bfloat16 layer's weights
// rounded to float32 and then to bfloat16 (roundBF16, as kernels.BF16 rounds them).
// That rounding is no random error to bound but a known change of the weights, so
// FastBound follows it exactly: the bounds above are around the logits of the net
// with the rounded weights, and each logit's bound adds how far those are from the
// reference logits. A bound on the rounding (each weight within 2⁻⁸ of itself,
// their sum by Hoeffding's inequality at Lambda) would charge each linear layer
// 2⁻⁸·Lambda of its output's scale, more than a VGG's convolutions together, and
// would let weights rounded the wrong way pass.
//
// Any other layer kind has no bound here: FastBound returns an error for it.
func FastBound(net *Net, x []float64, n int, fast func(*spec.Layer) bool) (logits, bound []float64, err error) {
	logits, _, bound, _, err = fastBounds(net, x, n, fast)
	return logits, bound, err
}

// fastBounds returns FastBound's logits and bound, and beside them the logits of
// the net with its weights rounded as fast mode rounds them and the bound of fast
// mode's rounding errors around those (roundingBound).
func fastBounds(net *Net, x []float64, n int, fast func(*spec.Layer) bool) (logits, rounded, bound, rb []float64, err error) {
	var pass *Pass
	var perr error
	concurrently(
		func() { rounded, rb, err = roundingBound(net, x, n, fast) },
		func() { pass, perr = net.Forward(x, n, false, nil) })
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	bound = make([]float64, len(rb))
	for j, r := range pass.Logits {
		bound[j] = rb[j] + math.Abs(rounded[j]-r)
	}
	return pass.Logits, rounded, bound, rb, nil
}

// roundingBound is FastBound around the logits of net with its weights rounded
// as fast mode rounds them: it returns those logits and, for each, the bound of
// fast mode's rounding errors (everything in FastBound but the weights' rounding).
func roundingBound(net *Net, x []float64, n int, fast func(*spec.Layer) bool) (rounded, bound []float64, err error) {
	if err := net.Validate(); err != nil {
		return nil, nil, err
	}
	m := net.Model
	if len(x) != n*m.Input.Size() {
		return nil, nil, fmt.Errorf("verify: FastBound: input has %d values, want %d", len(x), n*m.Input.Size())
	}
	const u = Unit
	gamma := func(k int) float64 { return float64(k) * u / (1 - float64(k)*u) }
	chain := func(k int) float64 {
		n := float64(k)
		return min(gamma(k), math.Expm1(Lambda*math.Sqrt(n)*u+n*u*u/(1-u)))
	}
	cur := append([]float64(nil), x...)
	e := make([]float64, len(cur))
	layers := m.Layers
	for i := 0; i < len(layers); i++ {
		l := layers[i]
		switch l.Kind {
		case spec.Conv:
			d := convDims(l, n)
			w, b := net.Params[l.Name+".weight"], net.Params[l.Name+".bias"]
			if b == nil {
				b = make([]float64, l.OutC)
			}
			delta := 0.0
			if i+1 < len(layers) && layers[i+1].Kind == spec.BatchNorm {
				bn := layers[i+1]
				s, t := bnScaleShift(net, bn)
				w2, b2 := make([]float64, len(w)), make([]float64, len(b))
				per := len(w) / l.OutC
				for k := range w {
					w2[k] = w[k] * s[k/per]
				}
				for o := range b {
					b2[o] = b[o]*s[o] + t[o]
				}
				w, b, delta = w2, b2, u
				i++ // folded
			}
			var y, A, P, R1, R2 []float64
			wino := fast != nil && fast(l)
			concurrently(
				func() { y = d.Forward(cur, w, b) },
				func() { A = d.Forward(addv(absv(cur), e), absv(w), nil) },
				func() { P = rss(e, w, func(a, b []float64) []float64 { return d.Forward(a, b, nil) }) },
				func() {
					if wino {
						R1, R2 = winogradTerms(d, cur, e, w)
					}
				})
			var k, ka, kb float64
			if wino {
				gc, g4 := chain(l.In.C), gamma(4)
				k = gamma(7)
				ka = (gc*(1+u)+u)*(1+k) + k
				kb = ((gc*(1+u)+u)*g4 + g4) * (1 + k)
			} else {
				k = chain(d.C / d.Groups * d.KH * d.KW)
			}
			plane := d.OutH() * d.OutW()
			ne := make([]float64, len(y))
			for j := range y {
				ab := math.Abs(b[(j/plane)%l.OutC])
				if R1 != nil {
					ne[j] = P[j] + delta*(A[j]+ab) + (1+delta)*(ka*R1[j]+kb*R2[j]+k*ab)
					continue
				}
				ne[j] = P[j] + delta*(A[j]+ab) + k*(1+delta)*(A[j]+ab)
			}
			cur, e = y, ne
		case spec.BatchNorm:
			s, t := bnScaleShift(net, l)
			plane := l.In.H * l.In.W
			y, ne := make([]float64, len(cur)), make([]float64, len(cur))
			for j, v := range cur {
				c := (j / plane) % l.In.C
				y[j] = v*s[c] + t[c]
				ne[j] = math.Abs(s[c])*e[j] + 2*u*(math.Abs(s[c])*(math.Abs(v)+e[j])+math.Abs(t[c]))
			}
			cur, e = y, ne
		case spec.ReLU:
			e = reluErr(cur, e)
			cur = ReLU(cur)
		case spec.LRN:
			d := lrnDims(l, n)
			y := d.Forward(cur)
			cur, e = y, lrnErr(d, cur, e, y)
		case spec.Dropout, spec.Flatten:
		case spec.MaxPool:
			d := maxPoolDims(l, n)
			cur, e = d.Forward(cur), d.Forward(e)
		case spec.AvgPool:
			d := avgPoolDims(l, n)
			y := d.Forward(cur)
			ea := d.Forward(e)
			ma := d.Forward(addv(absv(cur), e))
			for j := range ea {
				ea[j] += u * ma[j]
			}
			cur, e = y, ea
		case spec.Linear:
			d := linearDims(l, n)
			w, b := net.Params[l.Name+".weight"], net.Params[l.Name+".bias"]
			k := chain(d.In) // fp32 weights in one chain of K FMAs from the bias
			if fast != nil && fast(l) {
				// bfloat16 weights in 16 lanes of ⌈K/16⌉ FMAs, a 4-level tree and the bias.
				w = roundBF16(w)
				k = chain((d.In+15)/16 + 5)
			}
			// One after the other: VGG's first linear layer holds 822 MB of float64
			// weights, and A and P each make a copy; these passes are short.
			y := d.Forward(cur, w, b)
			A := d.Forward(addv(absv(cur), e), absv(w), nil)
			P := rss(e, w, func(a, b []float64) []float64 { return d.Forward(a, b, nil) })
			ne := make([]float64, len(y))
			for j := range y {
				ab := 0.0
				if b != nil {
					ab = math.Abs(b[j%d.Out])
				}
				ne[j] = P[j] + k*(A[j]+ab)
			}
			cur, e = y, ne
		default:
			return nil, nil, fmt.Errorf("verify: FastBound: %s: no fast-mode bound for %v", l.Name, l.Kind)
		}
	}
	return cur, e, nil
}

// reluErr bounds |relu(x̂) − relu(x)| for |x̂ − x| ≤ e: ReLU is 1-Lipschitz, so e
// where x ≥ 0, and monotone, so where x < 0, relu(x̂) ≤ max(0, x + e) and relu(x) =
// 0: exactly 0 where the input stays negative (x + e ≤ 0).
func reluErr(x, e []float64) []float64 {
	out := make([]float64, len(x))
	for j, v := range x {
		out[j] = e[j]
		if v < 0 {
			out[j] = max(0, v+e[j])
		}
	}
	return out
}

// concurrently runs each f on its own goroutine and returns when all have. The
// layers' reference passes are independent and each computes its own output, so
// the results do not depend on the order they run in.
func concurrently(fs ...func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(f)
	}
	wg.Wait()
}

// roundBF16 rounds each weight to float32 and then to bfloat16 (8 significant
// bits, to nearest, ties to even), as fast mode stores them (kernels.BF16):
// the result is the weight the kernel widens back and multiplies by.
func roundBF16(w []float64) []float64 {
	r := make([]float64, len(w))
	for i, v := range w {
		r[i] = bf16Value(float64(float32(v)))
	}
	return r
}

// bf16Value is v (a float32 value) rounded to bfloat16: 8 significant bits down
// to 2⁻¹²⁶, a fixed step of 2⁻¹³³ below it (bfloat16 has float32's exponent
// range), ±Inf from 0x1.ffp127 up. NaN, ±Inf and ±0 are kept.
func bf16Value(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	_, exp := math.Frexp(v) // |v| = f·2^exp, 0.5 ≤ f < 1
	q := math.Ldexp(1, max(exp-8, -133))
	r := math.RoundToEven(v/q) * q
	if math.Abs(r) > 0x1.fep127 {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}

// rss propagates input errors e through a layer's weights w (op applies weights
// to an input with no bias) as a root sum of squares: √(Σ w²·e²). This is the one
// step of FastBound that is not a worst case: it treats the errors of different
// inputs as independent, as verify's exact-mode tolerances do (the worst case,
// Σ|w|·e, grows by Σ|w| ≈ 10–20 per layer and says nothing after a few layers).
func rss(e, w []float64, op func(x, w []float64) []float64) []float64 {
	e2, w2 := make([]float64, len(e)), make([]float64, len(w))
	for i, v := range e {
		e2[i] = v * v
	}
	for i, v := range w {
		w2[i] = v * v
	}
	p := op(e2, w2)
	for i, v := range p {
		p[i] = math.Sqrt(v)
	}
	return p
}

// lrnErr bounds, per output, how far local response normalization y = LRN(x)
// (NCHW) computed as the generated code does (the window's squares summed in
// float64, s = K + α/n·Σ, x·s^−β in float64, rounded once to float32) is from y
// when its input is known within e. For x̂ in the box [x − e, x + e], s ≥ smin =
// K + α/n·Σ_j max(0, |x_j| − e_j)², so by the mean value theorem
//
//	|y_c(x̂) − y_c(x)| ≤ smin^−β·e_c + 2β·α/n·smin^(−β−1)·(|x_c| + e_c)·Σ_j (|x_j| + e_j)·e_j
//
// (j over c's window), and the float64 steps and the final rounding add at most
// (u + 2⁻⁴⁸)·(|y_c| + that). K ≤ 0 can make smin 0 and the bound infinite.
func lrnErr(d LocalResponseNorm, x, e, y []float64) []float64 {
	hw := d.H * d.W
	a := d.Alpha / float64(d.Size)
	out := make([]float64, len(x))
	for i := range x {
		c := (i / hw) % d.C
		base := i - c*hw // channel 0 of this sample and pixel
		lo, hi := d.window(c)
		smin, t := d.K, 0.0
		for j := lo; j <= hi; j++ {
			v, ej := math.Abs(x[base+j*hw]), e[base+j*hw]
			m := math.Max(0, v-ej)
			smin += a * m * m
			t += (v + ej) * ej
		}
		prop := math.Pow(smin, -d.Beta)*e[i] + 2*d.Beta*a*math.Pow(smin, -d.Beta-1)*(math.Abs(x[i])+e[i])*t
		out[i] = prop + (Unit+0x1p-48)*(math.Abs(y[i])+prop)
	}
	return out
}

// bnScaleShift is an evaluation-mode batch norm as y = x·s + t.
func bnScaleShift(net *Net, l *spec.Layer) (s, t []float64) {
	g, b := net.Params[l.Name+".weight"], net.Params[l.Name+".bias"]
	rm, rv := net.Buffers[l.Name+".running_mean"], net.Buffers[l.Name+".running_var"]
	s, t = make([]float64, len(g)), make([]float64, len(g))
	for c := range g {
		s[c] = g[c] / math.Sqrt(rv[c]+l.Eps)
		t[c] = b[c] - rm[c]*s[c]
	}
	return s, t
}

func absv(v []float64) []float64 {
	a := make([]float64, len(v))
	for i, x := range v {
		a[i] = math.Abs(x)
	}
	return a
}

func addv(a, b []float64) []float64 {
	c := make([]float64, len(a))
	for i := range a {
		c[i] = a[i] + b[i]
	}
	return c
}

// The Winograd F(4×4, 3×3) matrices (Lavin & Gray), as absolute values.
var (
	wBT = [6][6]float64{{4, 0, 5, 0, 1, 0}, {0, 4, 4, 1, 1, 0}, {0, 4, 4, 1, 1, 0}, {0, 2, 1, 2, 1, 0}, {0, 2, 1, 2, 1, 0}, {0, 4, 0, 5, 0, 1}}
	wG  = [6][3]float64{{1. / 4, 0, 0}, {1. / 6, 1. / 6, 1. / 6}, {1. / 6, 1. / 6, 1. / 6}, {1. / 24, 1. / 12, 1. / 6}, {1. / 24, 1. / 12, 1. / 6}, {0, 0, 1}}
	wAT = [4][6]float64{{1, 1, 1, 1, 1, 0}, {0, 1, 1, 2, 2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, 1, 8, 8, 1}}
)

// The Winograd F(4×4, 3×3) matrices with their signs (runtime/winograd/doc.go).
var (
	sBT = [6][6]float64{{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}}
	sG  = [6][3]float64{{1. / 4, 0, 0}, {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6}, {1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}}
)

// gGt returns G g Gᵀ (6×6) for a 3×3 kernel g with matrix G (signed or absolute).
func gGt(G *[6][3]float64, g []float64) (u [36]float64) {
	var t [6][3]float64
	for i := 0; i < 6; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				t[i][j] += G[i][k] * g[k*3+j]
			}
		}
	}
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			for k := 0; k < 3; k++ {
				u[i*6+j] += t[i][k] * G[j][k]
			}
		}
	}
	return u
}

// btdB returns Bᵀ d B (6×6) for a 6×6 tile d with matrix Bᵀ (signed or absolute).
func btdB(BT *[6][6]float64, d *[6][6]float64) (v [36]float64) {
	var t [6][6]float64
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			for k := 0; k < 6; k++ {
				t[i][j] += BT[i][k] * d[k][j]
			}
		}
	}
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			for k := 0; k < 6; k++ {
				v[i*6+j] += t[i][k] * BT[j][k]
			}
		}
	}
	return v
}

// winogradTerms returns, per output, R1 = |Aᵀ| S1 |A| and R2 = |Aᵀ| S2 |A| over
// the output's 4×4 tile, where for the actual input x̂ = x ± e (NCHW, unpadded)
// and weights w (OIHW)
//
//	S1 = Σ_c Um_c ⊙ (|Bᵀ x_c B| + |Bᵀ| e_c |B|)   (bounds Σ_c |Û_c| |V_c(x̂)| / (1+u))
//	S2 = Σ_c Um_c ⊙ (|Bᵀ| (|x_c| + e_c) |B|)       (the input transform's rounding scale)
//	Um_c = |G w_c Gᵀ| + 2⁻²⁶·|G| |w_c| |Gᵀ|        (U's float32 rounding and float64 sums)
func winogradTerms(d Conv2D, x, e, w []float64) (r1, r2 []float64) {
	oh, ow := d.OutH(), d.OutW()
	th, tw := (oh+3)/4, (ow+3)/4
	C, OC := d.C, d.OutC
	U := make([][36]float64, OC*C)
	for k := range U {
		g := w[k*9 : k*9+9]
		var ag [9]float64
		for i, v := range g {
			ag[i] = math.Abs(v)
		}
		s, a := gGt(&sG, g), gGt(&wG, ag[:])
		for i := range s {
			U[k][i] = math.Abs(s[i]) + 0x1p-26*a[i]
		}
	}
	r1 = make([]float64, d.N*OC*oh*ow)
	r2 = make([]float64, d.N*OC*oh*ow)
	V1, V2 := make([][36]float64, C), make([][36]float64, C)
	for n := 0; n < d.N; n++ {
		for ty := 0; ty < th; ty++ {
			for tx := 0; tx < tw; tx++ {
				for c := 0; c < C; c++ {
					var xt, et, mt [6][6]float64
					for i := 0; i < 6; i++ {
						for j := 0; j < 6; j++ {
							y, xx := 4*ty-d.PH+i, 4*tx-d.PW+j
							if y >= 0 && y < d.H && xx >= 0 && xx < d.W {
								k := ((n*C+c)*d.H+y)*d.W + xx
								xt[i][j], et[i][j] = x[k], e[k]
								mt[i][j] = math.Abs(x[k]) + e[k]
							}
						}
					}
					vs, ve, vm := btdB(&sBT, &xt), btdB(&wBT, &et), btdB(&wBT, &mt)
					for i := range vs {
						V1[c][i] = math.Abs(vs[i]) + ve[i]
					}
					V2[c] = vm
				}
				for o := 0; o < OC; o++ {
					var S1, S2 [36]float64
					for c := 0; c < C; c++ {
						u, v1, v2 := &U[o*C+c], &V1[c], &V2[c]
						for k := range S1 {
							S1[k] += u[k] * v1[k]
							S2[k] += u[k] * v2[k]
						}
					}
					for q, S := range [2]*[36]float64{&S1, &S2} {
						dst := r1
						if q == 1 {
							dst = r2
						}
						var t [4][6]float64
						for i := 0; i < 4; i++ {
							for j := 0; j < 6; j++ {
								for k := 0; k < 6; k++ {
									t[i][j] += wAT[i][k] * S[k*6+j]
								}
							}
						}
						for i := 0; i < 4; i++ {
							for j := 0; j < 4; j++ {
								y, xx := 4*ty+i, 4*tx+j
								if y >= oh || xx >= ow {
									continue
								}
								s := 0.0
								for k := 0; k < 6; k++ {
									s += t[i][k] * wAT[j][k]
								}
								dst[((n*OC+o)*oh+y)*ow+xx] = s
							}
						}
					}
				}
			}
		}
	}
	return r1, r2
}

// CompareFast runs a fast-mode model on random weights and input (opt.Seed, as
// Compare draws them) and holds its logits to FastBound. The first metric gives, as
// Rel, the largest ratio of a logit's error to its bound (Tol 1) and as MaxAbs the
// largest error; the second, the largest bound over the largest |logit| (Tol 0.1): a
// broken layer moves the logits by about their own size, so a bound that large
// would let it pass. The third is the first's stricter form: the logits against
// those of the reference run on the weights as fast mode rounds them (bfloat16),
// with the bound of the rounding errors alone (Tol 1); it shows how far inside
// that bound the model stays, which the first hides where the weights' rounding,
// known exactly, is most of the bound. fast says which layers the model runs with
// fast mode's methods, as for FastBound (gen.Fast for generated models). Run on an
// exact-mode instance, the first metric shows how far inside fast mode's bound
// exact mode stays; the third then fails wherever a layer has bfloat16 weights
// (exact mode does not round them).
func CompareFast(m runtime.Model, sm *spec.Model, opt Options, fast func(*spec.Layer) bool) (*Report, error) {
	if opt.Batch == 0 {
		opt.Batch = 2
	}
	if err := matchSpec(m, sm); err != nil {
		return nil, err
	}
	net := NewNet(sm)
	net.InitRandom(opt.Seed)
	if err := loadInto(m, net); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 77))
	x := randomInput(rng, opt.Batch*sm.Input.Size())
	ref, rounded, bound, rb, err := fastBounds(net, widen(x), opt.Batch, fast)
	if err != nil {
		return nil, err
	}
	got, err := m.Forward(x, opt.Batch)
	if err != nil {
		return nil, err
	}
	rep := &Report{Model: sm.Name, Batch: opt.Batch, Seed: opt.Seed, Pass: true}
	mt := boundMetric("logits / fast-mode bound", got, ref, bound)
	void := Metric{Name: "largest bound / largest |logit|", Len: len(ref), Tol: 0.1}
	scale := 0.0
	for i, r := range ref {
		scale = math.Max(scale, math.Abs(r))
		void.MaxAbs = math.Max(void.MaxAbs, bound[i])
	}
	void.Rel = math.Inf(1)
	if scale > 0 {
		void.Rel = void.MaxAbs / scale
	}
	void.Pass = void.Rel <= void.Tol
	rt := boundMetric("logits / rounding bound (bf16 weights applied)", got, rounded, rb)
	rep.Pass = mt.Pass && void.Pass && rt.Pass
	rep.Metrics = append(rep.Metrics, mt, void, rt)
	return rep, nil
}

// boundMetric holds got to want within bound, elementwise: MaxAbs is the largest
// |got − want|, Rel the largest ratio to its bound (a NaN difference counts as
// infinite, no difference as 0 even where the bound is 0), Tol 1.
func boundMetric(name string, got []float32, want, bound []float64) Metric {
	mt := Metric{Name: name, Len: len(want), Tol: 1}
	for i, r := range want {
		d := math.Abs(float64(got[i]) - r)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		mt.MaxAbs = math.Max(mt.MaxAbs, d)
		if d > 0 {
			mt.Rel = math.Max(mt.Rel, d/bound[i])
		}
	}
	mt.Pass = mt.Rel <= mt.Tol
	return mt
}
