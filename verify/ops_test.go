package verify

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------------
// Hand-computed forward values.

// TestConv2DHand checks a 1-channel 3×3 convolution of a 4×4 input against values
// computed by hand, without and with padding and stride.
func TestConv2DHand(t *testing.T) {
	x := make([]float64, 16) // x[r][c] = 4r + c + 1
	for i := range x {
		x[i] = float64(i + 1)
	}
	w := []float64{
		1, 2, 0,
		0, 1, 0,
		-1, 0, 3,
	}
	b := []float64{0.5}
	// y(i,j) = x[i][j] + 2x[i][j+1] + x[i+1][j+1] − x[i+2][j] + 3x[i+2][j+2] + 0.5
	//        = 6·x[i][j] + 29 + 0.5.
	d := Conv2D{N: 1, C: 1, H: 4, W: 4, OutC: 1, KH: 3, KW: 3, SH: 1, SW: 1, Groups: 1}
	refCheckClose(t, "conv p0 s1", d.Forward(x, w, b), []float64{35.5, 41.5, 59.5, 65.5})
	refCheckClose(t, "conv p0 s1 no bias", d.Forward(x, w, nil), []float64{35, 41, 59, 65})

	// Padding 1, stride 2: 2×2 output. y(0,0) sees x[0..1][0..1] through w[1..2][1..2]:
	// 1·1 + 0·2 + 0·5 + 3·6 = 19. y(0,1) sees x[0..1][1..3] through w[1..2][0..2]:
	// 0·2 + 1·3 + 0·4 − 1·6 + 0·7 + 3·8 = 21. y(1,0) sees x[1..3][0..1] through
	// w[0..2][1..2]: 2·5+0·6 + 1·9+0·10 + 0·13+3·14 = 61. y(1,1) sees x[1..3][1..3]
	// through all of w: 6·x[1][1] + 29 = 65.
	d = Conv2D{N: 1, C: 1, H: 4, W: 4, OutC: 1, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, Groups: 1}
	refCheckClose(t, "conv p1 s2", d.Forward(x, w, b), []float64{19.5, 21.5, 61.5, 65.5})

	// Groups: 2 channels, 2 groups, 1×1 kernel: each output sees only its own channel.
	d = Conv2D{N: 1, C: 2, H: 1, W: 2, OutC: 2, KH: 1, KW: 1, SH: 1, SW: 1, Groups: 2}
	refCheckClose(t, "conv groups", d.Forward([]float64{1, 2, 3, 4}, []float64{10, 100}, []float64{0, 1}),
		[]float64{10, 20, 301, 401})
}

// TestReLUAtZero checks relu and its gradient at 0, around it and at NaN.
func TestReLUAtZero(t *testing.T) {
	x := []float64{-1, 0, math.Copysign(0, -1), 2, math.NaN()}
	y := ReLU(x)
	if y[0] != 0 || y[1] != 0 || y[2] != 0 || y[3] != 2 || !math.IsNaN(y[4]) {
		t.Errorf("ReLU(%v) = %v", x, y)
	}
	dx := ReLUBackward(x, []float64{5, 5, 5, 5, 5})
	refCheckClose(t, "relu dx", dx, []float64{0, 0, 0, 5, 5})
}

// TestMaxPoolHand checks the first-maximum rule on ties, the accumulation of overlapping
// windows, the padding and NaN handling.
func TestMaxPoolHand(t *testing.T) {
	// All equal: every 2×2 window (stride 1) of a 3×3 plane is a tie; each routes its
	// gradient to its top-left element.
	d := MaxPool2D{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, SH: 1, SW: 1}
	x := []float64{7, 7, 7, 7, 7, 7, 7, 7, 7}
	refCheckClose(t, "tie y", d.Forward(x), []float64{7, 7, 7, 7})
	refCheckClose(t, "tie dx", d.Backward(x, []float64{1, 2, 3, 4}), []float64{1, 2, 0, 3, 4, 0, 0, 0, 0})

	// A tie within a window, first in scan order (row-major) wins: the 9 at (0,2) comes
	// before the 9 at (1,0).
	d = MaxPool2D{N: 1, C: 1, H: 2, W: 3, KH: 2, KW: 3, SH: 1, SW: 1}
	x = []float64{1, 2, 9, 9, 3, 4}
	refCheckClose(t, "row-major tie dx", d.Backward(x, []float64{1}), []float64{0, 0, 1, 0, 0, 0})

	// Overlapping 3/2 windows sharing their winner (column 2) accumulate.
	d = MaxPool2D{N: 1, C: 1, H: 1, W: 5, KH: 1, KW: 3, SH: 1, SW: 2}
	x = []float64{1, 2, 8, 3, 4}
	refCheckClose(t, "overlap y", d.Forward(x), []float64{8, 8})
	refCheckClose(t, "overlap dx", d.Backward(x, []float64{0.25, 0.5}), []float64{0, 0, 0.75, 0, 0})

	// Padding is −Inf: all-negative inputs are never replaced by a padded 0.
	d = MaxPool2D{N: 1, C: 1, H: 3, W: 3, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1}
	x = []float64{-9, -8, -7, -6, -5, -4, -3, -2, -1}
	refCheckClose(t, "pad y", d.Forward(x), []float64{-5, -4, -2, -1})
	refCheckClose(t, "pad dx", d.Backward(x, []float64{1, 2, 3, 4}), []float64{0, 0, 0, 0, 1, 2, 0, 3, 4})

	// All −Inf: the first element of the clipped window wins.
	d = MaxPool2D{N: 1, C: 1, H: 2, W: 2, KH: 2, KW: 2, SH: 2, SW: 2}
	inf := math.Inf(-1)
	x = []float64{inf, inf, inf, inf}
	if y := d.Forward(x); !math.IsInf(y[0], -1) {
		t.Errorf("all −Inf: y = %v", y)
	}
	refCheckClose(t, "all −Inf dx", d.Backward(x, []float64{1}), []float64{1, 0, 0, 0})

	// NaN wins, and the last NaN in scan order wins.
	nan := math.NaN()
	x = []float64{nan, 5, nan, 1}
	if y := d.Forward(x); !math.IsNaN(y[0]) {
		t.Errorf("NaN window: y = %v, want NaN", y)
	}
	refCheckClose(t, "NaN dx", d.Backward(x, []float64{1}), []float64{0, 0, 1, 0})
}

// TestAdaptiveWindows checks PyTorch's window formula on non-dividing sizes, both
// shrinking and growing, and the pooled values.
func TestAdaptiveWindows(t *testing.T) {
	type win struct{ s, e int }
	for _, c := range []struct {
		in, out int
		want    []win
	}{
		{5, 3, []win{{0, 2}, {1, 4}, {3, 5}}},
		{3, 5, []win{{0, 1}, {0, 2}, {1, 2}, {1, 3}, {2, 3}}},
		{6, 3, []win{{0, 2}, {2, 4}, {4, 6}}},
		{4, 4, []win{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{13, 6, []win{{0, 3}, {2, 5}, {4, 7}, {6, 9}, {8, 11}, {10, 13}}},
	} {
		for i, w := range c.want {
			if s, e := AdaptiveWindow(i, c.in, c.out); s != w.s || e != w.e {
				t.Errorf("AdaptiveWindow(%d, %d, %d) = [%d,%d), want [%d,%d)", i, c.in, c.out, s, e, w.s, w.e)
			}
		}
	}

	// 5→3 along W: windows [0,2) [1,4) [3,5) of 1..5.
	d := AdaptiveAvgPool2D{N: 1, C: 1, H: 1, W: 5, OH: 1, OW: 3}
	refCheckClose(t, "5→3 y", d.Forward([]float64{1, 2, 3, 4, 5}), []float64{1.5, 3, 4.5})
	refCheckClose(t, "5→3 dx", d.Backward([]float64{1, 1, 1}), []float64{0.5, 0.5 + 1.0/3, 1.0 / 3, 1.0/3 + 0.5, 0.5})
	// 3→5 along H: windows [0,1) [0,2) [1,2) [1,3) [2,3) of 1..3.
	d = AdaptiveAvgPool2D{N: 1, C: 1, H: 3, W: 1, OH: 5, OW: 1}
	refCheckClose(t, "3→5 y", d.Forward([]float64{1, 2, 3}), []float64{1, 1.5, 2, 2.5, 3})
	refCheckClose(t, "3→5 dx", d.Backward([]float64{1, 1, 1, 1, 1}), []float64{1.5, 2, 1.5})
	// Same size: identity.
	r := rand.New(rand.NewPCG(3, 3))
	x := fdRandVec(r, 2*3*4*5, -1, 1)
	d = AdaptiveAvgPool2D{N: 2, C: 3, H: 4, W: 5, OH: 4, OW: 5}
	refCheckClose(t, "identity", d.Forward(x), x)
}

// TestLRNHand checks LRN on a 1×3×1×1 input against hand computations for odd and even
// sizes.
func TestLRNHand(t *testing.T) {
	x := []float64{1, 2, 3}
	for _, c := range []struct {
		size           int
		alpha, beta, k float64
		want           []float64
	}{
		// size 3: window c−1..c+1; alpha/size = 1: D = 1 + (5, 14, 13).
		{size: 3, alpha: 3, beta: 1, k: 1, want: []float64{1.0 / 6, 2.0 / 15, 3.0 / 14}},
		// size 2: window c−1..c (pad 1 before, 0 after); alpha/size = 1: D = 1 + (1, 5, 13).
		{size: 2, alpha: 2, beta: 1, k: 1, want: []float64{1.0 / 2, 2.0 / 6, 3.0 / 14}},
		// size 4: window c−2..c+1; alpha/size = 1, beta 1/2: D = 1 + (5, 14, 14).
		{size: 4, alpha: 4, beta: 0.5, k: 1, want: []float64{1 / math.Sqrt(6), 2 / math.Sqrt(15), 3 / math.Sqrt(15)}},
		// size 1: only the channel itself; alpha/size = 0.5, k 2, beta 0.75.
		{size: 1, alpha: 0.5, beta: 0.75, k: 2, want: []float64{1 / math.Pow(2.5, 0.75), 2 / math.Pow(4, 0.75), 3 / math.Pow(6.5, 0.75)}},
		// size 5 on 3 channels: every window clips to all channels, S = 14, divisor still 5.
		{size: 5, alpha: 1e-4, beta: 0.75, k: 2, want: []float64{
			1 / math.Pow(2+1e-4*14/5, 0.75), 2 / math.Pow(2+1e-4*14/5, 0.75), 3 / math.Pow(2+1e-4*14/5, 0.75)}},
	} {
		d := LocalResponseNorm{N: 1, C: 3, H: 1, W: 1, Size: c.size, Alpha: c.alpha, Beta: c.beta, K: c.k}
		refCheckClose(t, fmt.Sprintf("lrn size %d", c.size), d.Forward(x), c.want)
	}
}

// TestBatchNormHand checks train-mode statistics, the normalized output and the running
// statistics update, and eval mode, against hand computations.
func TestBatchNormHand(t *testing.T) {
	// N=2, C=1, H=1, W=2: the channel holds 1, 2, 3, 6: mean 3, biased variance
	// (4+1+0+9)/4 = 3.5, unbiased 14/3.
	d := BatchNorm2D{N: 2, C: 1, H: 1, W: 2, Eps: 1e-5, Momentum: 0.1}
	x := []float64{1, 2, 3, 6}
	y, mean, variance := d.Train(x, []float64{2}, []float64{0.5})
	refCheckClose(t, "mean", mean, []float64{3})
	refCheckClose(t, "var", variance, []float64{3.5})
	sd := math.Sqrt(3.5 + 1e-5)
	refCheckClose(t, "train y", y, []float64{-2/sd*2 + 0.5, -1/sd*2 + 0.5, 0.5, 3/sd*2 + 0.5})
	rm, rv := []float64{0.5}, []float64{2}
	d.UpdateRunning(rm, rv, mean, variance)
	refCheckClose(t, "running_mean", rm, []float64{0.9*0.5 + 0.1*3})
	refCheckClose(t, "running_var", rv, []float64{0.9*2 + 0.1*14.0/3})

	// Momentum 1 replaces the running statistics by the batch's (variance unbiased).
	d.Momentum = 1
	d.UpdateRunning(rm, rv, mean, variance)
	refCheckClose(t, "momentum 1", append(rm, rv...), []float64{3, 14.0 / 3})

	// Eval mode with two channels.
	d = BatchNorm2D{N: 1, C: 2, H: 1, W: 2, Eps: 0.5}
	y = d.Eval([]float64{1, 2, 3, 4}, []float64{2, -1}, []float64{0, 10}, []float64{1, 5}, []float64{1.5, 3.5})
	refCheckClose(t, "eval y", y, []float64{0, 2 / math.Sqrt(2), 10 + 2/math.Sqrt(4), 10 + 1/math.Sqrt(4)})

	if err := (BatchNorm2D{N: 1, C: 3, H: 1, W: 1}).ValidateTrain(); err == nil {
		t.Error("train mode with one value per channel: no error")
	}
}

// TestDropoutHand checks scaling by 1/(1−p) and the p = 0 and p = 1 edges.
func TestDropoutHand(t *testing.T) {
	x := []float64{2, 3, 4, -8}
	mask := []float64{1, 0, 1, 1}
	refCheckClose(t, "p=0.5", Dropout{P: 0.5}.Forward(x, mask), []float64{4, 0, 8, -16})
	refCheckClose(t, "p=0.75", Dropout{P: 0.75}.Forward(x, mask), []float64{8, 0, 16, -32})
	refCheckClose(t, "p=0", Dropout{P: 0}.Forward(x, mask), x)
	refCheckClose(t, "p=0 nil mask", Dropout{P: 0}.Forward(x, nil), x)
	refCheckClose(t, "p=1", Dropout{P: 1}.Forward(x, nil), []float64{0, 0, 0, 0})
	refCheckClose(t, "p=1 backward", Dropout{P: 1}.Backward(nil, x), []float64{0, 0, 0, 0})
	if (Dropout{P: 1.5}).Validate() == nil || (Dropout{P: math.NaN()}).Validate() == nil {
		t.Error("invalid dropout probability accepted")
	}
}

// TestLinearHand checks y = x·wᵀ + b on a 2×3 → 2×2 case.
func TestLinearHand(t *testing.T) {
	d := Linear{N: 2, In: 3, Out: 2}
	x := []float64{1, 2, 3, 4, 5, 6}
	w := []float64{1, 0, -1, 2, 1, 0}
	refCheckClose(t, "linear y", d.Forward(x, w, []float64{10, 20}), []float64{8, 24, 8, 33})
	dx, dw, db := d.Backward(x, w, []float64{1, 0, 0, 1})
	refCheckClose(t, "linear dx", dx, []float64{1, 0, -1, 2, 1, 0})
	refCheckClose(t, "linear dw", dw, []float64{1, 2, 3, 4, 5, 6})
	refCheckClose(t, "linear db", db, []float64{1, 1})
}

// TestSoftmaxCrossEntropyHand checks values, numerical stability and errors.
func TestSoftmaxCrossEntropyHand(t *testing.T) {
	loss, g, err := SoftmaxCrossEntropy([]float64{0, 0}, 1, 2, []int{0})
	if err != nil || !refClose(loss, math.Ln2) {
		t.Errorf("loss = %v, %v; want ln 2", loss, err)
	}
	refCheckClose(t, "dlogits", g, []float64{-0.5, 0.5})

	// Huge logits: no overflow. Sample 0: loss 1000, sample 1: loss ≈ 0; mean 500.
	loss, g, err = SoftmaxCrossEntropy([]float64{1000, 0, 0, 1000}, 2, 2, []int{1, 1})
	if err != nil || !refClose(loss, 500) {
		t.Errorf("huge logits: loss = %v, %v; want 500", loss, err)
	}
	refCheckClose(t, "huge dlogits", g, []float64{0.5, -0.5, 0, 0})

	for _, c := range []struct {
		logits    []float64
		n, k      int
		labels    []int
		errSubstr string
	}{
		{[]float64{0, 0}, 1, 2, []int{2}, "label"},
		{[]float64{0, 0}, 1, 2, []int{-1}, "label"},
		{[]float64{0, 0}, 1, 2, []int{0, 1}, "labels"},
		{[]float64{0, 0, 0}, 1, 2, []int{0}, "logits"},
		{nil, 0, 2, nil, "positive"},
	} {
		if _, _, err := SoftmaxCrossEntropy(c.logits, c.n, c.k, c.labels); err == nil || !strings.Contains(err.Error(), c.errSubstr) {
			t.Errorf("SoftmaxCrossEntropy(%v, %d, %d, %v): err = %v, want one mentioning %q", c.logits, c.n, c.k, c.labels, err, c.errSubstr)
		}
	}
}

// TestOpsPanicOnBadLength checks that the operators refuse wrong lengths and invalid
// dimensions loudly instead of computing garbage.
func TestOpsPanicOnBadLength(t *testing.T) {
	for name, f := range map[string]func(){
		"conv x": func() {
			Conv2D{N: 1, C: 1, H: 2, W: 2, OutC: 1, KH: 1, KW: 1, SH: 1, SW: 1, Groups: 1}.Forward(make([]float64, 3), []float64{1}, nil)
		},
		"conv groups": func() {
			Conv2D{N: 1, C: 3, H: 2, W: 2, OutC: 2, KH: 1, KW: 1, SH: 1, SW: 1, Groups: 2}.Forward(make([]float64, 12), []float64{1}, nil)
		},
		"conv groups0": func() {
			Conv2D{N: 1, C: 1, H: 2, W: 2, OutC: 1, KH: 1, KW: 1, SH: 1, SW: 1}.Forward(make([]float64, 4), []float64{1}, nil)
		},
		"maxpool pad": func() {
			MaxPool2D{N: 1, C: 1, H: 4, W: 4, KH: 2, KW: 2, SH: 1, SW: 1, PH: 2}.Forward(make([]float64, 16))
		},
		"linear b":     func() { Linear{N: 1, In: 2, Out: 2}.Forward(make([]float64, 2), make([]float64, 4), []float64{1}) },
		"dropout mask": func() { Dropout{P: 0.5}.Forward(make([]float64, 2), []float64{1}) },
		"relu dy":      func() { ReLUBackward(make([]float64, 2), []float64{1}) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", name)
				} else if !strings.HasPrefix(r.(string), "verify: ") {
					t.Errorf("%s: panic %q does not name the package", name, r)
				}
			}()
			f()
		}()
	}
}

// ---------------------------------------------------------------------------------
// Finite-difference gradient checks, one per operator. Each uses the scalar loss
// L = Σ w_i·y_i with fixed random weights w, so dL/dy = w, and compares every analytic
// gradient with central differences (see fdErr for the criterion).

func TestConv2DGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, d := range []Conv2D{
		// stride 2×1, padding 1×2, groups 2, non-square kernel
		{N: 2, C: 4, H: 7, W: 6, OutC: 6, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 2, Groups: 2},
		// square k3 s2 p1, one group
		{N: 2, C: 3, H: 6, W: 5, OutC: 4, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, Groups: 1},
		// depthwise-like: groups = channels
		{N: 1, C: 3, H: 4, W: 4, OutC: 3, KH: 2, KW: 2, SH: 1, SW: 1, Groups: 3},
	} {
		x := fdRandVec(r, d.N*d.C*d.H*d.W, -1, 1)
		w := fdRandVec(r, d.WeightLen(), -1, 1)
		b := fdRandVec(r, d.OutC, -1, 1)
		lw := fdRandVec(r, d.N*d.OutC*d.OutH()*d.OutW(), -1, 1)
		loss := func() float64 { return fdDot(lw, d.Forward(x, w, b)) }
		dx, dw, db := d.Backward(x, w, lw)
		checkFD(t, "conv2d", "x", x, dx, loss)
		checkFD(t, "conv2d", "weight", w, dw, loss)
		checkFD(t, "conv2d", "bias", b, db, loss)
	}
}

func TestReLUGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 1))
	x := fdRandVec(r, 50, -1, 1)
	lw := fdRandVec(r, 50, -1, 1)
	checkFD(t, "relu", "x", x, ReLUBackward(x, lw), func() float64 { return fdDot(lw, ReLU(x)) })
}

func TestMaxPoolGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	for _, d := range []MaxPool2D{
		{N: 2, C: 3, H: 9, W: 7, KH: 3, KW: 3, SH: 2, SW: 2},               // overlapping 3/2
		{N: 2, C: 2, H: 8, W: 7, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1}, // with padding
		{N: 1, C: 2, H: 5, W: 6, KH: 2, KW: 3, SH: 1, SW: 2, PH: 1, PW: 0}, // non-square
	} {
		// Random inputs: ties (where max is not differentiable) have probability 0.
		x := fdRandVec(r, d.N*d.C*d.H*d.W, -1, 1)
		lw := fdRandVec(r, d.N*d.C*d.OutH()*d.OutW(), -1, 1)
		checkFD(t, "maxpool", "x", x, d.Backward(x, lw), func() float64 { return fdDot(lw, d.Forward(x)) })
	}
}

func TestAdaptiveAvgPoolGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 1))
	for _, d := range []AdaptiveAvgPool2D{
		{N: 2, C: 2, H: 5, W: 5, OH: 3, OW: 3}, // 5→3, overlapping windows
		{N: 2, C: 2, H: 3, W: 3, OH: 5, OW: 5}, // 3→5, output larger than input
		{N: 1, C: 3, H: 7, W: 4, OH: 3, OW: 6}, // mixed
		{N: 1, C: 2, H: 6, W: 6, OH: 1, OW: 1}, // global
	} {
		x := fdRandVec(r, d.N*d.C*d.H*d.W, -1, 1)
		lw := fdRandVec(r, d.N*d.C*d.OH*d.OW, -1, 1)
		checkFD(t, "avgpool", "x", x, d.Backward(lw), func() float64 { return fdDot(lw, d.Forward(x)) })
	}
}

func TestLRNGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 1))
	for _, d := range []LocalResponseNorm{
		{N: 2, C: 7, H: 3, W: 2, Size: 5, Alpha: 0.5, Beta: 0.75, K: 1},
		{N: 2, C: 7, H: 2, W: 3, Size: 4, Alpha: 0.8, Beta: 0.6, K: 2}, // even size
		{N: 1, C: 3, H: 2, W: 2, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2},
		{N: 1, C: 4, H: 2, W: 1, Size: 1, Alpha: 1, Beta: 1.5, K: 0.5},
	} {
		// Inputs of a few units make the normalization term matter.
		x := fdRandVec(r, d.N*d.C*d.H*d.W, -2, 2)
		lw := fdRandVec(r, len(x), -1, 1)
		checkFD(t, "lrn", "x", x, d.Backward(x, lw), func() float64 { return fdDot(lw, d.Forward(x)) })
	}
}

func TestBatchNormGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	d := BatchNorm2D{N: 3, C: 2, H: 2, W: 3, Eps: 1e-5, Momentum: 0.1}
	x := fdRandVec(r, d.N*d.C*d.H*d.W, -1, 2)
	gamma := fdRandVec(r, d.C, 0.5, 1.5)
	beta := fdRandVec(r, d.C, -0.5, 0.5)
	lw := fdRandVec(r, len(x), -1, 1)

	// Train: gradients through the batch statistics.
	train := func() float64 { y, _, _ := d.Train(x, gamma, beta); return fdDot(lw, y) }
	dx, dg, db := d.TrainBackward(x, gamma, lw)
	checkFD(t, "batchnorm train", "x", x, dx, train)
	checkFD(t, "batchnorm train", "weight", gamma, dg, train)
	checkFD(t, "batchnorm train", "bias", beta, db, train)

	// Eval: the affine map of the running statistics.
	rm := fdRandVec(r, d.C, -0.5, 0.5)
	rv := fdRandVec(r, d.C, 0.5, 1.5)
	eval := func() float64 { return fdDot(lw, d.Eval(x, gamma, beta, rm, rv)) }
	dx, dg, db = d.EvalBackward(x, gamma, rm, rv, lw)
	checkFD(t, "batchnorm eval", "x", x, dx, eval)
	checkFD(t, "batchnorm eval", "weight", gamma, dg, eval)
	checkFD(t, "batchnorm eval", "bias", beta, db, eval)
}

func TestDropoutGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1))
	for _, p := range []float64{0.5, 0.2, 0} {
		d := Dropout{P: p}
		x := fdRandVec(r, 40, -1, 1)
		mask := fdRandMask(r, len(x), 1-p)
		lw := fdRandVec(r, len(x), -1, 1)
		checkFD(t, "dropout", "x", x, d.Backward(mask, lw), func() float64 { return fdDot(lw, d.Forward(x, mask)) })
	}
}

func TestLinearGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	d := Linear{N: 3, In: 7, Out: 5}
	x := fdRandVec(r, d.N*d.In, -1, 1)
	w := fdRandVec(r, d.Out*d.In, -1, 1)
	b := fdRandVec(r, d.Out, -1, 1)
	lw := fdRandVec(r, d.N*d.Out, -1, 1)
	loss := func() float64 { return fdDot(lw, d.Forward(x, w, b)) }
	dx, dw, db := d.Backward(x, w, lw)
	checkFD(t, "linear", "x", x, dx, loss)
	checkFD(t, "linear", "weight", w, dw, loss)
	checkFD(t, "linear", "bias", b, db, loss)
}

func TestSoftmaxCrossEntropyGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	n, k := 4, 6
	logits := fdRandVec(r, n*k, -3, 3)
	labels := []int{0, 5, 2, 2}
	_, g, err := SoftmaxCrossEntropy(logits, n, k, labels)
	if err != nil {
		t.Fatal(err)
	}
	checkFD(t, "softmax cross-entropy", "logits", logits, g, func() float64 {
		l, _, _ := SoftmaxCrossEntropy(logits, n, k, labels)
		return l
	})
}

// Conv2D.Forward runs its loops with the output plane innermost; every output must
// still be the same sequence of additions as the definition's sum for that output
// alone, bit for bit, over strides, padding (also wider than the kernel's reach),
// groups and rectangular kernels.
func TestConv2DForwardOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range []Conv2D{
		{N: 2, C: 3, H: 7, W: 9, OutC: 4, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, Groups: 1},
		{N: 1, C: 4, H: 11, W: 13, OutC: 6, KH: 5, KW: 3, SH: 2, SW: 3, PH: 2, PW: 1, Groups: 2},
		{N: 1, C: 3, H: 23, W: 23, OutC: 2, KH: 11, KW: 11, SH: 4, SW: 4, PH: 2, PW: 2, Groups: 1},
		{N: 2, C: 2, H: 4, W: 5, OutC: 2, KH: 2, KW: 3, SH: 1, SW: 2, PH: 3, PW: 4, Groups: 1},
		{N: 1, C: 6, H: 1, W: 1, OutC: 3, KH: 1, KW: 1, SH: 1, SW: 1, PH: 0, PW: 0, Groups: 3},
	} {
		x, w, b := make([]float64, d.N*d.C*d.H*d.W), make([]float64, d.WeightLen()), make([]float64, d.OutC)
		for _, v := range [][]float64{x, w, b} {
			for i := range v {
				v[i] = rng.NormFloat64()
			}
		}
		got := d.Forward(x, w, b)
		oh, ow := d.OutH(), d.OutW()
		cg, og := d.C/d.Groups, d.OutC/d.Groups
		for n := 0; n < d.N; n++ {
			for o := 0; o < d.OutC; o++ {
				for i := 0; i < oh; i++ {
					for j := 0; j < ow; j++ {
						s := b[o]
						for c := 0; c < cg; c++ {
							for p := 0; p < d.KH; p++ {
								for q := 0; q < d.KW; q++ {
									r, col := i*d.SH-d.PH+p, j*d.SW-d.PW+q
									if r >= 0 && r < d.H && col >= 0 && col < d.W {
										s += w[((o*cg+c)*d.KH+p)*d.KW+q] * x[((n*d.C+o/og*cg+c)*d.H+r)*d.W+col]
									}
								}
							}
						}
						if k := ((n*d.OutC+o)*oh+i)*ow + j; got[k] != s {
							t.Fatalf("%+v: y[%d,%d,%d,%d] = %v, the definition's sum %v", d, n, o, i, j, got[k], s)
						}
					}
				}
			}
		}
	}
}
