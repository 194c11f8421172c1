package runtime

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropy is torch.nn.functional.cross_entropy with mean reduction: it
// returns the mean over the n samples of −log softmax(logits)[label], writes its
// gradient (softmax − onehot)/n into dlogits (n×classes), and counts the samples whose
// largest logit is the label. Sums run in float64 with the max subtracted, so large
// logits do not overflow. It allocates nothing.
func SoftmaxCrossEntropy(logits []float32, labels []int, classes int, dlogits []float32) (loss float64, correct int, err error) {
	n := len(labels)
	if classes < 1 || len(logits) != n*classes || len(dlogits) != n*classes {
		return 0, 0, fmt.Errorf("runtime: SoftmaxCrossEntropy: %d logits, %d gradient values for %d labels of %d classes", len(logits), len(dlogits), n, classes)
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return 0, 0, fmt.Errorf("runtime: SoftmaxCrossEntropy: label %d of sample %d out of range [0, %d)", l, i, classes)
		}
	}
	for i := 0; i < n; i++ {
		z := logits[i*classes : (i+1)*classes]
		d := dlogits[i*classes : (i+1)*classes]
		best := 0
		for j, v := range z {
			if v > z[best] {
				best = j
			}
		}
		if best == labels[i] {
			correct++
		}
		m := float64(z[best])
		var s float64
		for _, v := range z {
			s += math.Exp(float64(v) - m)
		}
		logS := math.Log(s)
		loss += logS - (float64(z[labels[i]]) - m)
		for j, v := range z {
			p := math.Exp(float64(v)-m) / s
			if j == labels[i] {
				p--
			}
			d[j] = float32(p / float64(n))
		}
	}
	return loss / float64(n), correct, nil
}
