package weights_test

import (
	"bytes"
	_ "embed"
	"fmt"
	"log"

	"github.com/cnngen/cnngen/generated/tiny"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/weights"
)

// A state_dict saved by torch.save(model.state_dict(), "tiny.pth") loads unchanged.
func ExampleLoadFile() {
	m, err := tiny.New(runtime.Config{MaxBatch: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	rep, err := weights.LoadFile(m, "testdata/tiny.pth", weights.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.Format, len(rep.Loaded), "tensors; ignored", rep.Ignored)
	// Output: pth 12 tensors; ignored [features.5.num_batches_tracked]
}

//go:embed testdata/tiny_f16.safetensors
var tinyWeights []byte

// Weights embedded in the binary load from memory; F16 widens to float32.
func ExampleLoadBytes() {
	m, err := tiny.New(runtime.Config{MaxBatch: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if _, err := weights.LoadBytes(m, tinyWeights, "tiny_f16.safetensors", weights.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Params()[0].Name, m.Params()[0].Value[0])
	// Output: features.0.weight -0.11126709
}

// A file that does not fit the model is an error naming the file and the tensor.
func ExampleLoadBytes_mismatch() {
	m, err := tiny.New(runtime.Config{MaxBatch: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	var b bytes.Buffer
	conv3x3 := runtime.Param{Name: "features.0.weight", Shape: []int{8, 3, 3, 3}, Value: make([]float32, 8*3*3*3)}
	if err := weights.WriteSafetensors(&b, []runtime.Param{conv3x3}, nil); err != nil {
		log.Fatal(err)
	}
	_, err = weights.LoadBytes(m, b.Bytes(), "other.safetensors", weights.Options{})
	fmt.Println(err)
	// Output: weights: other.safetensors: tensor "features.0.weight": shape [8 3 3 3] in the file, [8 3 5 5] in the model
}
