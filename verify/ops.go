package verify

import (
	"errors"
	"fmt"
	"math"
)

// mustLen panics if a slice does not have the length an operator requires.
func mustLen(op, name string, s []float64, want int) {
	if len(s) != want {
		panic(fmt.Sprintf("verify: %s: %s has %d values, want %d", op, name, len(s), want))
	}
}

// mustValid panics with err if it is not nil.
func mustValid(err error) {
	if err != nil {
		panic("verify: " + err.Error())
	}
}

// ---------------------------------------------------------------------------------
// conv2d

// Conv2D describes a 2-D convolution as torch.nn.Conv2d with dilation 1: a batch of N
// inputs of C×H×W, OutC output channels, a KH×KW kernel, stride SH×SW, zero padding of
// PH rows above and below and PW columns left and right, and Groups groups.
//
// With G = Groups, Cg = C/G input channels and Og = OutC/G output channels per group,
// output channel o belongs to group g = o/Og and
//
//	y[n,o,i,j] = b[o] + Σ_{c<Cg} Σ_{p<KH} Σ_{q<KW} w[o,c,p,q] · x[n, g·Cg+c, i·SH−PH+p, j·SW−PW+q]
//
// where x is zero outside 0 ≤ row < H, 0 ≤ col < W, and b is zero without bias. The
// weight w is OIHW: OutC×Cg×KH×KW. The output is N×OutC×OutH×OutW.
type Conv2D struct {
	N, C, H, W int
	OutC       int
	KH, KW     int
	SH, SW     int
	PH, PW     int
	Groups     int
}

// OutH is the output height, ⌊(H + 2·PH − KH)/SH⌋ + 1.
func (d Conv2D) OutH() int { return (d.H+2*d.PH-d.KH)/d.SH + 1 }

// OutW is the output width, ⌊(W + 2·PW − KW)/SW⌋ + 1.
func (d Conv2D) OutW() int { return (d.W+2*d.PW-d.KW)/d.SW + 1 }

// WeightLen is the number of weight values, OutC·(C/Groups)·KH·KW.
func (d Conv2D) WeightLen() int { return d.OutC * (d.C / d.Groups) * d.KH * d.KW }

// Validate reports whether the dimensions describe a valid convolution.
func (d Conv2D) Validate() error {
	switch {
	case d.N < 1 || d.C < 1 || d.H < 1 || d.W < 1:
		return fmt.Errorf("conv2d: input %d×%d×%d×%d must be positive", d.N, d.C, d.H, d.W)
	case d.OutC < 1:
		return fmt.Errorf("conv2d: %d output channels, want at least 1", d.OutC)
	case d.KH < 1 || d.KW < 1:
		return fmt.Errorf("conv2d: kernel %d×%d must be positive", d.KH, d.KW)
	case d.SH < 1 || d.SW < 1:
		return fmt.Errorf("conv2d: stride %d×%d must be positive", d.SH, d.SW)
	case d.PH < 0 || d.PW < 0:
		return fmt.Errorf("conv2d: padding %d×%d must not be negative", d.PH, d.PW)
	case d.Groups < 1:
		return fmt.Errorf("conv2d: %d groups, want at least 1", d.Groups)
	case d.C%d.Groups != 0 || d.OutC%d.Groups != 0:
		return fmt.Errorf("conv2d: %d groups must divide both %d input and %d output channels", d.Groups, d.C, d.OutC)
	case d.H+2*d.PH < d.KH || d.W+2*d.PW < d.KW:
		return fmt.Errorf("conv2d: kernel %d×%d is larger than the padded input %d×%d", d.KH, d.KW, d.H+2*d.PH, d.W+2*d.PW)
	}
	return nil
}

func (d Conv2D) check(x, w []float64) {
	mustValid(d.Validate())
	mustLen("conv2d", "x", x, d.N*d.C*d.H*d.W)
	mustLen("conv2d", "weight", w, d.WeightLen())
}

// Forward returns y = conv(x, w) + b. b may be nil (no bias); otherwise it has OutC
// values.
//
// Each output is summed from its bias over c, then the kernel row p, then the
// kernel column q, skipping the taps that fall in the padding, as the definition
// reads. The loops run in that order with the output plane innermost (each tap
// adds w·x to a whole row of outputs), which gives every output the same sequence
// of additions as summing it alone, at several times the speed.
func (d Conv2D) Forward(x, w, b []float64) []float64 {
	d.check(x, w)
	if b != nil {
		mustLen("conv2d", "bias", b, d.OutC)
	}
	oh, ow := d.OutH(), d.OutW()
	cg, og := d.C/d.Groups, d.OutC/d.Groups
	y := make([]float64, d.N*d.OutC*oh*ow)
	for n := 0; n < d.N; n++ {
		for o := 0; o < d.OutC; o++ {
			g := o / og
			yo := y[(n*d.OutC+o)*oh*ow:][:oh*ow]
			if b != nil {
				for k := range yo {
					yo[k] = b[o]
				}
			}
			for c := 0; c < cg; c++ {
				xc := x[(n*d.C+g*cg+c)*d.H*d.W:][:d.H*d.W] // input channel g·Cg+c
				wc := w[(o*cg+c)*d.KH*d.KW:][:d.KH*d.KW]   // w[o,c,:,:]
				for p := 0; p < d.KH; p++ {
					for q := 0; q < d.KW; q++ {
						wv := wc[p*d.KW+q]
						// Output columns j whose tap col = j·SW − PW + q is inside the row.
						jlo := max(0, (d.PW-q+d.SW-1)/d.SW)
						jhi := min(ow, (d.W-1+d.PW-q)/d.SW+1)
						if d.W-1+d.PW-q < 0 || jlo >= jhi {
							continue
						}
						for i := 0; i < oh; i++ {
							r := i*d.SH - d.PH + p
							if r < 0 || r >= d.H {
								continue
							}
							xr, yr := xc[r*d.W:][:d.W], yo[i*ow:][:ow]
							col := jlo*d.SW - d.PW + q
							if d.SW == 1 {
								ys := yr[jlo:jhi]
								xs := xr[col:][:len(ys)]
								for j, v := range xs {
									ys[j] += wv * v
								}
								continue
							}
							for j := jlo; j < jhi; j, col = j+1, col+d.SW {
								yr[j] += wv * xr[col]
							}
						}
					}
				}
			}
		}
	}
	return y
}

// Backward returns dx = dL/dx, dw = dL/dw and db = dL/db (OutC values, Σ_{n,i,j} dy[n,o,i,j])
// given dy = dL/dy (N×OutC×OutH×OutW). Each term of the forward sum contributes
// w·dy to dx and x·dy to dw.
func (d Conv2D) Backward(x, w, dy []float64) (dx, dw, db []float64) {
	d.check(x, w)
	oh, ow := d.OutH(), d.OutW()
	mustLen("conv2d", "dy", dy, d.N*d.OutC*oh*ow)
	cg, og := d.C/d.Groups, d.OutC/d.Groups
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	db = make([]float64, d.OutC)
	for n := 0; n < d.N; n++ {
		for o := 0; o < d.OutC; o++ {
			g := o / og
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					gy := dy[((n*d.OutC+o)*oh+i)*ow+j]
					db[o] += gy
					for c := 0; c < cg; c++ {
						ci := g*cg + c
						for p := 0; p < d.KH; p++ {
							r := i*d.SH - d.PH + p
							if r < 0 || r >= d.H {
								continue
							}
							for q := 0; q < d.KW; q++ {
								col := j*d.SW - d.PW + q
								if col < 0 || col >= d.W {
									continue
								}
								wi := ((o*cg+c)*d.KH+p)*d.KW + q
								xi := ((n*d.C+ci)*d.H+r)*d.W + col
								dx[xi] += w[wi] * gy
								dw[wi] += x[xi] * gy
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, db
}

// ---------------------------------------------------------------------------------
// relu

// ReLU returns y = max(x, 0) elementwise, as torch.relu: a NaN input gives NaN.
func ReLU(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		if v > 0 || math.IsNaN(v) {
			y[i] = v
		}
	}
	return y
}

// ReLUBackward returns dx = dy where x > 0 and 0 where x ≤ 0 (in particular 0 at
// exactly x = 0), as PyTorch's threshold_backward. Where x is NaN the gradient passes,
// as it does in PyTorch (NaN ≤ 0 is false).
func ReLUBackward(x, dy []float64) []float64 {
	mustLen("relu", "dy", dy, len(x))
	dx := make([]float64, len(x))
	for i, v := range x {
		if !(v <= 0) {
			dx[i] = dy[i]
		}
	}
	return dx
}

// ---------------------------------------------------------------------------------
// max pool

// MaxPool2D describes torch.nn.MaxPool2d(kernel (KH,KW), stride (SH,SW), padding
// (PH,PW)) with dilation 1 and floor mode, on N×C×H×W inputs.
//
// Output (i,j) of each plane is the maximum of the input over the window of rows
// i·SH−PH ... i·SH−PH+KH−1 and columns j·SW−PW ... j·SW−PW+KW−1, clipped to the input
// (padding is implicitly −Inf, so it never wins). The output is N×C×OutH×OutW.
//
// The winner of a window is found exactly as PyTorch's CPU kernel does: scanning the
// clipped window row by row, left to right, starting from max = −Inf, a value v
// replaces the current winner when v > max or v is NaN. So among equal maxima the
// FIRST in scan order wins; a NaN in the window makes the output NaN, and with several
// NaNs the LAST NaN wins; if every value is −Inf the first element of the clipped
// window wins. Backward routes each output's gradient to its window's winner, and the
// gradients of overlapping windows that share a winner add up.
type MaxPool2D struct {
	N, C, H, W int
	KH, KW     int
	SH, SW     int
	PH, PW     int
}

// OutH is the output height, ⌊(H + 2·PH − KH)/SH⌋ + 1.
func (d MaxPool2D) OutH() int { return (d.H+2*d.PH-d.KH)/d.SH + 1 }

// OutW is the output width, ⌊(W + 2·PW − KW)/SW⌋ + 1.
func (d MaxPool2D) OutW() int { return (d.W+2*d.PW-d.KW)/d.SW + 1 }

// Validate reports whether the dimensions describe a valid max pool. As in PyTorch, the
// padding may be at most half the kernel, so every window holds at least one input.
func (d MaxPool2D) Validate() error {
	switch {
	case d.N < 1 || d.C < 1 || d.H < 1 || d.W < 1:
		return fmt.Errorf("maxpool: input %d×%d×%d×%d must be positive", d.N, d.C, d.H, d.W)
	case d.KH < 1 || d.KW < 1:
		return fmt.Errorf("maxpool: kernel %d×%d must be positive", d.KH, d.KW)
	case d.SH < 1 || d.SW < 1:
		return fmt.Errorf("maxpool: stride %d×%d must be positive", d.SH, d.SW)
	case d.PH < 0 || d.PW < 0 || 2*d.PH > d.KH || 2*d.PW > d.KW:
		return fmt.Errorf("maxpool: padding %d×%d must be between 0 and half the kernel %d×%d", d.PH, d.PW, d.KH, d.KW)
	case d.H+2*d.PH < d.KH || d.W+2*d.PW < d.KW:
		return fmt.Errorf("maxpool: kernel %d×%d is larger than the padded input %d×%d", d.KH, d.KW, d.H+2*d.PH, d.W+2*d.PW)
	}
	return nil
}

// winners returns, for every output element, the flat index into x of its window's
// winner, along with the output.
func (d MaxPool2D) winners(x []float64) (y []float64, arg []int) {
	mustValid(d.Validate())
	mustLen("maxpool", "x", x, d.N*d.C*d.H*d.W)
	oh, ow := d.OutH(), d.OutW()
	y = make([]float64, d.N*d.C*oh*ow)
	arg = make([]int, len(y))
	for nc := 0; nc < d.N*d.C; nc++ {
		plane := nc * d.H * d.W
		for i := 0; i < oh; i++ {
			r0, r1 := max(i*d.SH-d.PH, 0), min(i*d.SH-d.PH+d.KH, d.H)
			for j := 0; j < ow; j++ {
				c0, c1 := max(j*d.SW-d.PW, 0), min(j*d.SW-d.PW+d.KW, d.W)
				best, at := math.Inf(-1), plane+r0*d.W+c0
				for r := r0; r < r1; r++ {
					for c := c0; c < c1; c++ {
						v := x[plane+r*d.W+c]
						if v > best || math.IsNaN(v) {
							best, at = v, plane+r*d.W+c
						}
					}
				}
				k := (nc*oh+i)*ow + j
				y[k], arg[k] = best, at
			}
		}
	}
	return y, arg
}

// Forward returns the max-pooled x.
func (d MaxPool2D) Forward(x []float64) []float64 {
	y, _ := d.winners(x)
	return y
}

// Backward returns dx: each dy element added to the input element that won its
// window in the forward pass (see MaxPool2D).
func (d MaxPool2D) Backward(x, dy []float64) []float64 {
	y, arg := d.winners(x)
	mustLen("maxpool", "dy", dy, len(y))
	dx := make([]float64, len(x))
	for k, at := range arg {
		dx[at] += dy[k]
	}
	return dx
}

// ---------------------------------------------------------------------------------
// adaptive average pool

// AdaptiveAvgPool2D describes torch.nn.AdaptiveAvgPool2d((OH, OW)) on N×C×H×W inputs.
//
// Output row i averages input rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and output column j input
// columns [⌊j·W/OW⌋, ⌈(j+1)·W/OW⌉), PyTorch's start_index and end_index. Windows may
// overlap (when OH does not divide H) and may repeat inputs (when OH > H); when OH = H
// and OW = W the pool is the identity. As in PyTorch the window sum is divided by the
// window height and then by its width. The output is N×C×OH×OW.
type AdaptiveAvgPool2D struct {
	N, C, H, W int
	OH, OW     int
}

// Validate reports whether the dimensions describe a valid adaptive average pool.
func (d AdaptiveAvgPool2D) Validate() error {
	switch {
	case d.N < 1 || d.C < 1 || d.H < 1 || d.W < 1:
		return fmt.Errorf("avgpool: input %d×%d×%d×%d must be positive", d.N, d.C, d.H, d.W)
	case d.OH < 1 || d.OW < 1:
		return fmt.Errorf("avgpool: output %d×%d must be positive", d.OH, d.OW)
	}
	return nil
}

// AdaptiveWindow returns PyTorch's adaptive pooling window [start, end) of output index
// i when pooling in input values to out outputs: start = ⌊i·in/out⌋,
// end = ⌈(i+1)·in/out⌉.
func AdaptiveWindow(i, in, out int) (start, end int) {
	return i * in / out, ((i+1)*in + out - 1) / out
}

// Forward returns the pooled x.
func (d AdaptiveAvgPool2D) Forward(x []float64) []float64 {
	mustValid(d.Validate())
	mustLen("avgpool", "x", x, d.N*d.C*d.H*d.W)
	y := make([]float64, d.N*d.C*d.OH*d.OW)
	for nc := 0; nc < d.N*d.C; nc++ {
		plane := nc * d.H * d.W
		for i := 0; i < d.OH; i++ {
			r0, r1 := AdaptiveWindow(i, d.H, d.OH)
			for j := 0; j < d.OW; j++ {
				c0, c1 := AdaptiveWindow(j, d.W, d.OW)
				s := 0.0
				for r := r0; r < r1; r++ {
					for c := c0; c < c1; c++ {
						s += x[plane+r*d.W+c]
					}
				}
				y[(nc*d.OH+i)*d.OW+j] = s / float64(r1-r0) / float64(c1-c0)
			}
		}
	}
	return y
}

// Backward returns dx: each dy element divided by its window's height and width and
// added to every input of its window (overlapping windows accumulate).
func (d AdaptiveAvgPool2D) Backward(dy []float64) []float64 {
	mustValid(d.Validate())
	mustLen("avgpool", "dy", dy, d.N*d.C*d.OH*d.OW)
	dx := make([]float64, d.N*d.C*d.H*d.W)
	for nc := 0; nc < d.N*d.C; nc++ {
		plane := nc * d.H * d.W
		for i := 0; i < d.OH; i++ {
			r0, r1 := AdaptiveWindow(i, d.H, d.OH)
			for j := 0; j < d.OW; j++ {
				c0, c1 := AdaptiveWindow(j, d.W, d.OW)
				g := dy[(nc*d.OH+i)*d.OW+j] / float64(r1-r0) / float64(c1-c0)
				for r := r0; r < r1; r++ {
					for c := c0; c < c1; c++ {
						dx[plane+r*d.W+c] += g
					}
				}
			}
		}
	}
	return dx
}

// ---------------------------------------------------------------------------------
// local response normalization

// LocalResponseNorm describes torch.nn.LocalResponseNorm(Size, Alpha, Beta, K) on
// N×C×H×W inputs. At every position,
//
//	b_c = a_c / D_c^Beta,   D_c = K + Alpha · S_c / Size,   S_c = Σ_{c'=c−⌊Size/2⌋}^{c+⌊(Size−1)/2⌋} a_{c'}²
//
// where channels outside 0..C−1 contribute zero. This is torch.nn.functional.
// local_response_norm, which pads the squared input with ⌊Size/2⌋ zero channels before
// and ⌊(Size−1)/2⌋ after and average-pools it over Size channels (so the divisor is
// always Size, even at the edges). For even Size the window is not centred: it reaches
// one channel further back than forward.
type LocalResponseNorm struct {
	N, C, H, W  int
	Size        int
	Alpha, Beta float64
	K           float64
}

// Validate reports whether the dimensions describe a valid LRN.
func (d LocalResponseNorm) Validate() error {
	switch {
	case d.N < 1 || d.C < 1 || d.H < 1 || d.W < 1:
		return fmt.Errorf("lrn: input %d×%d×%d×%d must be positive", d.N, d.C, d.H, d.W)
	case d.Size < 1:
		return fmt.Errorf("lrn: size %d, want at least 1", d.Size)
	}
	return nil
}

// window returns the channels [lo, hi] summed into S_c, clipped to 0..C−1.
func (d LocalResponseNorm) window(c int) (lo, hi int) {
	return max(c-d.Size/2, 0), min(c+(d.Size-1)/2, d.C-1)
}

// denominators returns D_c for every element of x.
func (d LocalResponseNorm) denominators(x []float64) []float64 {
	mustValid(d.Validate())
	mustLen("lrn", "x", x, d.N*d.C*d.H*d.W)
	hw := d.H * d.W
	den := make([]float64, len(x))
	for n := 0; n < d.N; n++ {
		for c := 0; c < d.C; c++ {
			lo, hi := d.window(c)
			for p := 0; p < hw; p++ {
				s := 0.0
				for cc := lo; cc <= hi; cc++ {
					v := x[(n*d.C+cc)*hw+p]
					s += v * v
				}
				den[(n*d.C+c)*hw+p] = d.K + d.Alpha*(s/float64(d.Size))
			}
		}
	}
	return den
}

// Forward returns b = a / D^Beta.
func (d LocalResponseNorm) Forward(x []float64) []float64 {
	den := d.denominators(x)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v / math.Pow(den[i], d.Beta)
	}
	return y
}

// Backward returns dx, derived from the definition: with g = dL/db,
//
//	dL/da_j = g_j · D_j^−Beta − (2·Alpha·Beta/Size) · a_j · Σ_{c : j ∈ window(c)} g_c · a_c · D_c^(−Beta−1)
//
// at every position, where window(c) is the channel range summed into S_c.
func (d LocalResponseNorm) Backward(x, dy []float64) []float64 {
	den := d.denominators(x)
	mustLen("lrn", "dy", dy, len(x))
	hw := d.H * d.W
	dx := make([]float64, len(x))
	f := 2 * d.Alpha * d.Beta / float64(d.Size)
	for n := 0; n < d.N; n++ {
		for c := 0; c < d.C; c++ {
			lo, hi := d.window(c)
			for p := 0; p < hw; p++ {
				k := (n*d.C+c)*hw + p
				dx[k] += dy[k] / math.Pow(den[k], d.Beta)
				// b_c depends on a_j for every j in its window through D_c.
				t := f * dy[k] * x[k] * math.Pow(den[k], -d.Beta-1)
				for j := lo; j <= hi; j++ {
					kj := (n*d.C+j)*hw + p
					dx[kj] -= t * x[kj]
				}
			}
		}
	}
	return dx
}

// ---------------------------------------------------------------------------------
// batch norm

// BatchNorm2D describes torch.nn.BatchNorm2d(C, eps=Eps, momentum=Momentum) (affine,
// tracking running statistics) on N×C×H×W inputs. gamma and beta are the layer's
// weight and bias.
//
// Eval mode normalizes with the running statistics:
//
//	y = (x − running_mean[c]) / sqrt(running_var[c] + Eps) · gamma[c] + beta[c]
//
// Train mode normalizes with the statistics of the batch over (N, H, W) per channel,
// using the biased variance (divided by m = N·H·W):
//
//	mean[c] = Σ x / m,  var[c] = Σ (x − mean[c])² / m,  y = (x − mean[c]) / sqrt(var[c] + Eps) · gamma[c] + beta[c]
//
// and then (UpdateRunning) moves the running statistics towards them, the variance in
// its unbiased form:
//
//	running_mean = (1 − Momentum)·running_mean + Momentum·mean
//	running_var  = (1 − Momentum)·running_var  + Momentum·var·m/(m − 1)
type BatchNorm2D struct {
	N, C, H, W int
	Eps        float64
	Momentum   float64
}

// Validate reports whether the dimensions describe a valid batch norm. (Train mode
// additionally needs m = N·H·W > 1; see ValidateTrain.)
func (d BatchNorm2D) Validate() error {
	switch {
	case d.N < 1 || d.C < 1 || d.H < 1 || d.W < 1:
		return fmt.Errorf("batchnorm: input %d×%d×%d×%d must be positive", d.N, d.C, d.H, d.W)
	case !(d.Eps >= 0) || math.IsInf(d.Eps, 0):
		return fmt.Errorf("batchnorm: eps %v must be finite and not negative", d.Eps)
	}
	return nil
}

// ValidateTrain is Validate plus PyTorch's requirement that training sees more than one
// value per channel.
func (d BatchNorm2D) ValidateTrain() error {
	if err := d.Validate(); err != nil {
		return err
	}
	if d.N*d.H*d.W < 2 {
		return errors.New("batchnorm: training needs more than 1 value per channel (N·H·W > 1)")
	}
	return nil
}

func (d BatchNorm2D) count() int { return d.N * d.H * d.W }

func (d BatchNorm2D) at(n, c, p int) int { return (n*d.C+c)*d.H*d.W + p }

// affine returns y = (x − mean)/sqrt(variance + Eps)·gamma + beta per channel.
func (d BatchNorm2D) affine(x, gamma, beta, mean, variance []float64) []float64 {
	y := make([]float64, len(x))
	for c := 0; c < d.C; c++ {
		sd := math.Sqrt(variance[c] + d.Eps)
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				k := d.at(n, c, p)
				y[k] = (x[k]-mean[c])/sd*gamma[c] + beta[c]
			}
		}
	}
	return y
}

func (d BatchNorm2D) checkParams(x, gamma []float64, stats ...[]float64) {
	mustLen("batchnorm", "x", x, d.N*d.C*d.H*d.W)
	mustLen("batchnorm", "gamma", gamma, d.C)
	for _, s := range stats {
		mustLen("batchnorm", "per-channel input", s, d.C)
	}
}

// Eval returns y in eval mode, normalizing with the given running mean and variance.
func (d BatchNorm2D) Eval(x, gamma, beta, runMean, runVar []float64) []float64 {
	mustValid(d.Validate())
	d.checkParams(x, gamma, beta, runMean, runVar)
	return d.affine(x, gamma, beta, runMean, runVar)
}

// EvalBackward returns the gradients of eval mode, where y is an affine map of x:
// dx = dy·gamma/sqrt(runVar+Eps), dgamma[c] = Σ dy·(x−runMean)/sqrt(runVar+Eps) and
// dbeta[c] = Σ dy, summing over (N, H, W).
func (d BatchNorm2D) EvalBackward(x, gamma, runMean, runVar, dy []float64) (dx, dgamma, dbeta []float64) {
	mustValid(d.Validate())
	d.checkParams(x, gamma, runMean, runVar)
	mustLen("batchnorm", "dy", dy, len(x))
	dx = make([]float64, len(x))
	dgamma = make([]float64, d.C)
	dbeta = make([]float64, d.C)
	for c := 0; c < d.C; c++ {
		sd := math.Sqrt(runVar[c] + d.Eps)
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				k := d.at(n, c, p)
				dx[k] = dy[k] * gamma[c] / sd
				dgamma[c] += dy[k] * (x[k] - runMean[c]) / sd
				dbeta[c] += dy[k]
			}
		}
	}
	return dx, dgamma, dbeta
}

// BatchStats returns the per-channel batch mean and biased variance of x over (N, H, W).
func (d BatchNorm2D) BatchStats(x []float64) (mean, variance []float64) {
	mustValid(d.Validate())
	mustLen("batchnorm", "x", x, d.N*d.C*d.H*d.W)
	m := float64(d.count())
	mean = make([]float64, d.C)
	variance = make([]float64, d.C)
	for c := 0; c < d.C; c++ {
		s := 0.0
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				s += x[d.at(n, c, p)]
			}
		}
		mean[c] = s / m
		v := 0.0
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				e := x[d.at(n, c, p)] - mean[c]
				v += e * e
			}
		}
		variance[c] = v / m
	}
	return mean, variance
}

// Train returns y in train mode, normalizing with the batch statistics, and those
// statistics (mean and biased variance, per channel) for UpdateRunning.
func (d BatchNorm2D) Train(x, gamma, beta []float64) (y, mean, variance []float64) {
	mustValid(d.ValidateTrain())
	d.checkParams(x, gamma, beta)
	mean, variance = d.BatchStats(x)
	return d.affine(x, gamma, beta, mean, variance), mean, variance
}

// TrainBackward returns the gradients of train mode, through the batch statistics.
// With m = N·H·W, x̂ = (x − mean)/sqrt(var + Eps) and sums over (N, H, W) of channel c:
//
//	dbeta = Σ dy,   dgamma = Σ dy·x̂,   dx = gamma/sqrt(var + Eps) · (dy − dbeta/m − x̂·dgamma/m)
func (d BatchNorm2D) TrainBackward(x, gamma, dy []float64) (dx, dgamma, dbeta []float64) {
	mustValid(d.ValidateTrain())
	d.checkParams(x, gamma)
	mustLen("batchnorm", "dy", dy, len(x))
	mean, variance := d.BatchStats(x)
	m := float64(d.count())
	dx = make([]float64, len(x))
	dgamma = make([]float64, d.C)
	dbeta = make([]float64, d.C)
	for c := 0; c < d.C; c++ {
		sd := math.Sqrt(variance[c] + d.Eps)
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				k := d.at(n, c, p)
				dbeta[c] += dy[k]
				dgamma[c] += dy[k] * (x[k] - mean[c]) / sd
			}
		}
		for n := 0; n < d.N; n++ {
			for p := 0; p < d.H*d.W; p++ {
				k := d.at(n, c, p)
				xh := (x[k] - mean[c]) / sd
				dx[k] = gamma[c] / sd * (dy[k] - dbeta[c]/m - xh*dgamma[c]/m)
			}
		}
	}
	return dx, dgamma, dbeta
}

// UpdateRunning updates runMean and runVar in place from the batch statistics returned
// by Train (mean and biased variance), as PyTorch does after a train-mode forward:
// runMean = (1−Momentum)·runMean + Momentum·mean and
// runVar = (1−Momentum)·runVar + Momentum·variance·m/(m−1), with m = N·H·W.
func (d BatchNorm2D) UpdateRunning(runMean, runVar, mean, variance []float64) {
	mustValid(d.ValidateTrain())
	for _, s := range [][]float64{runMean, runVar, mean, variance} {
		mustLen("batchnorm", "per-channel input", s, d.C)
	}
	m := float64(d.count())
	for c := 0; c < d.C; c++ {
		runMean[c] = (1-d.Momentum)*runMean[c] + d.Momentum*mean[c]
		runVar[c] = (1-d.Momentum)*runVar[c] + d.Momentum*variance[c]*m/(m-1)
	}
}

// ---------------------------------------------------------------------------------
// dropout

// Dropout describes torch.nn.Dropout(P) in train mode with a given mask (in eval mode
// dropout is the identity and needs no operator).
//
// With a mask of 0/1 values, one per element (1 keeps the element),
//
//	y = x · (mask / (1 − P))      for 0 ≤ P < 1
//	y = x · 0                     for P = 1 (PyTorch's special case; the mask is unused)
//
// As in PyTorch, P = 0 is the identity whatever the mask.
type Dropout struct {
	P float64
}

// Validate reports whether P is a probability.
func (d Dropout) Validate() error {
	if !(d.P >= 0 && d.P <= 1) {
		return fmt.Errorf("dropout: probability %v must be between 0 and 1", d.P)
	}
	return nil
}

// factor returns the multiplier of element i.
func (d Dropout) factors(mask []float64, n int) []float64 {
	mustValid(d.Validate())
	f := make([]float64, n)
	switch {
	case d.P == 0:
		for i := range f {
			f[i] = 1
		}
	case d.P == 1:
		// all zero
	default:
		mustLen("dropout", "mask", mask, n)
		scale := 1 / (1 - d.P)
		for i := range f {
			f[i] = mask[i] * scale
		}
	}
	return f
}

// Forward returns the train-mode output for the given mask. The mask is not read (and
// may be nil) when P is 0 or 1.
func (d Dropout) Forward(x, mask []float64) []float64 {
	f := d.factors(mask, len(x))
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v * f[i]
	}
	return y
}

// Backward returns dx = dy · (mask/(1−P)), or dy·0 for P = 1, dy for P = 0.
func (d Dropout) Backward(mask, dy []float64) []float64 {
	return d.Forward(dy, mask)
}

// ---------------------------------------------------------------------------------
// linear

// Linear describes torch.nn.Linear(In, Out) on a batch of N flat inputs (N×In; a
// flattened NCHW activation is read as is, which is torch.flatten(x, 1)). With the
// weight w (Out×In) and bias b,
//
//	y[n,o] = b[o] + Σ_i x[n,i] · w[o,i]      (y = x·wᵀ + b)
type Linear struct {
	N, In, Out int
}

// Validate reports whether the dimensions are positive.
func (d Linear) Validate() error {
	if d.N < 1 || d.In < 1 || d.Out < 1 {
		return fmt.Errorf("linear: dimensions N=%d In=%d Out=%d must be positive", d.N, d.In, d.Out)
	}
	return nil
}

func (d Linear) check(x, w []float64) {
	mustValid(d.Validate())
	mustLen("linear", "x", x, d.N*d.In)
	mustLen("linear", "weight", w, d.Out*d.In)
}

// Forward returns y = x·wᵀ + b; b may be nil (no bias).
func (d Linear) Forward(x, w, b []float64) []float64 {
	d.check(x, w)
	if b != nil {
		mustLen("linear", "bias", b, d.Out)
	}
	y := make([]float64, d.N*d.Out)
	for n := 0; n < d.N; n++ {
		for o := 0; o < d.Out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := 0; i < d.In; i++ {
				s += x[n*d.In+i] * w[o*d.In+i]
			}
			y[n*d.Out+o] = s
		}
	}
	return y
}

// Backward returns dx = dy·w (N×In), dw = dyᵀ·x (Out×In) and db = Σ_n dy (Out).
func (d Linear) Backward(x, w, dy []float64) (dx, dw, db []float64) {
	d.check(x, w)
	mustLen("linear", "dy", dy, d.N*d.Out)
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	db = make([]float64, d.Out)
	for n := 0; n < d.N; n++ {
		for o := 0; o < d.Out; o++ {
			g := dy[n*d.Out+o]
			db[o] += g
			for i := 0; i < d.In; i++ {
				dx[n*d.In+i] += g * w[o*d.In+i]
				dw[o*d.In+i] += g * x[n*d.In+i]
			}
		}
	}
	return dx, dw, db
}

// ---------------------------------------------------------------------------------
// softmax cross-entropy

// SoftmaxCrossEntropy returns torch.nn.functional.cross_entropy(logits, labels) with
// mean reduction, and its gradient with respect to the logits. logits is n×classes and
// labels holds n class indices. With z one row of logits and t its label,
//
//	loss = (1/n) Σ_rows ( log Σ_k exp(z_k − max z) + max z − z_t )
//	dlogits = (softmax(z) − onehot(t)) / n
//
// Subtracting the row maximum keeps exp from overflowing. Wrong lengths, n < 1,
// classes < 1 and labels out of range are errors.
func SoftmaxCrossEntropy(logits []float64, n, classes int, labels []int) (loss float64, dlogits []float64, err error) {
	switch {
	case n < 1 || classes < 1:
		return 0, nil, fmt.Errorf("verify: softmax cross-entropy: n=%d and classes=%d must be positive", n, classes)
	case len(logits) != n*classes:
		return 0, nil, fmt.Errorf("verify: softmax cross-entropy: %d logits, want n×classes = %d", len(logits), n*classes)
	case len(labels) != n:
		return 0, nil, fmt.Errorf("verify: softmax cross-entropy: %d labels, want n = %d", len(labels), n)
	}
	for i, t := range labels {
		if t < 0 || t >= classes {
			return 0, nil, fmt.Errorf("verify: softmax cross-entropy: label %d of sample %d is not a class in [0, %d)", t, i, classes)
		}
	}
	dlogits = make([]float64, len(logits))
	for i := 0; i < n; i++ {
		z := logits[i*classes : (i+1)*classes]
		mx := math.Inf(-1)
		for _, v := range z {
			mx = math.Max(mx, v)
		}
		s := 0.0
		for _, v := range z {
			s += math.Exp(v - mx)
		}
		loss += math.Log(s) + mx - z[labels[i]]
		for k, v := range z {
			p := math.Exp(v-mx) / s
			if k == labels[i] {
				p--
			}
			dlogits[i*classes+k] = p / float64(n)
		}
	}
	return loss / float64(n), dlogits, nil
}
