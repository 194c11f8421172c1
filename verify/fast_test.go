package verify

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cnngen/cnngen/spec"
)

// FastBound's logits are the evaluation-mode reference's, and its bounds are
// positive, finite and grow with the Winograd term when convolutions run so.
func TestFastBound(t *testing.T) {
	sm, err := spec.LoadBuiltin("vgg_mnist")
	if err != nil {
		t.Fatal(err)
	}
	net := NewNet(sm)
	net.InitRandom(3)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 2*sm.Input.Size())
	for i := range x {
		x[i] = float64(float32(rng.NormFloat64()))
	}
	pass, err := net.Forward(x, 2, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, bd, err := FastBound(net, x, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wino, bw, err := FastBound(net, x, 2, func(l *spec.Layer) bool { return l.Name == "features.0" })
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range pass.Logits {
		if math.Abs(direct[i]-want) > 1e-9*math.Abs(want) || wino[i] != direct[i] {
			t.Fatalf("logit %d: %v / %v, reference %v", i, direct[i], wino[i], want)
		}
		if !(bd[i] > 0 && bd[i] < math.Inf(1)) || !(bw[i] > bd[i]) {
			t.Fatalf("logit %d: bound %v direct, %v with Winograd", i, bd[i], bw[i])
		}
	}
	lrn, err := spec.LoadBuiltin("alexnet2012")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewNet(lrn)
	if _, _, err := FastBound(ln, make([]float64, lrn.Input.Size()), 1, nil); err == nil || !strings.Contains(err.Error(), "no fast-mode bound") {
		t.Errorf("LRN: error %v", err)
	}
}
