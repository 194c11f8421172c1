package nn

import "testing"

// packBenchShapes are the convolutions the pack benchmarks time: VGG-16's
// widest and narrowest 3×3 layers and AlexNet's strided 11×11 first layer.
var packBenchShapes = []struct {
	name string
	d    ConvDims
}{
	{"vgg512x512", ConvDims{Groups: 1, ICg: 512, OCg: 512, KH: 3, KW: 3, SH: 1, SW: 1}},
	{"vgg64x64", ConvDims{Groups: 1, ICg: 64, OCg: 64, KH: 3, KW: 3, SH: 1, SW: 1}},
	{"alexnet1", ConvDims{Groups: 1, ICg: 3, OCg: 64, KH: 11, KW: 11, SH: 4, SW: 4}},
}

// BenchmarkPackConv times PackConv (no batch norm fold) on each shape and
// reports ns per weight.
func BenchmarkPackConv(b *testing.B) {
	for _, s := range packBenchShapes {
		d := s.d
		b.Run(s.name, func(b *testing.B) {
			w, bias := packBenchWeights(d)
			dst := make([]float32, PackConvSize(d))
			db := make([]float32, d.Groups*d.OCB()*32)
			b.SetBytes(int64(8 * len(w)))
			PackConv(dst, db, w, bias, d, nil, nil) // fault dst in
			for b.Loop() {
				PackConv(dst, db, w, bias, d, nil, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(w)), "ns/weight")
		})
	}
}

// BenchmarkPackConvBackData times PackConvBackData on each shape and reports
// ns per weight.
func BenchmarkPackConvBackData(b *testing.B) {
	for _, s := range packBenchShapes {
		d := s.d
		b.Run(s.name, func(b *testing.B) {
			w, _ := packBenchWeights(d)
			dst := make([]float32, PackConvBackDataSize(d))
			b.SetBytes(int64(8 * len(w)))
			PackConvBackData(dst, w, d) // fault dst in
			for b.Loop() {
				PackConvBackData(dst, w, d)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(w)), "ns/weight")
		})
	}
}

func packBenchWeights(d ConvDims) (w, b []float32) {
	w = make([]float32, d.Groups*d.OCg*d.ICg*d.KH*d.KW)
	b = make([]float32, d.Groups*d.OCg)
	for i := range w {
		w[i] = float32(i%1013) - 500
	}
	for i := range b {
		b[i] = float32(i)
	}
	return w, b
}
