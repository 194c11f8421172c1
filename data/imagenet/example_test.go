package imagenet_test

import (
	"fmt"
	"log"

	"github.com/cnngen/cnngen/data/imagenet"
)

// The tensor torchvision's Compose([Resize(256), CenterCrop(224), ToTensor(),
// Normalize(mean, std)]) gives a PIL image, for a model's Forward.
func ExamplePreprocess() {
	img, err := imagenet.DecodeFile("testdata/a_500x375.png")
	if err != nil {
		log.Fatal(err)
	}
	x, err := imagenet.Preprocess(img, 224)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Bounds().Size(), "→", len(x), "values, 3×224×224")
	fmt.Printf("first pixel: %.4f %.4f %.4f\n", x[0], x[224*224], x[2*224*224])
	// Output:
	// (500,375) → 150528 values, 3×224×224
	// first pixel: -1.3815 -1.7556 2.0823
}

// Top names the most probable classes of a 1000-class output.
func ExampleTop() {
	logits := make([]float32, 1000)
	logits[281], logits[285] = 9, 8
	for _, p := range imagenet.Top(logits, 2) {
		fmt.Printf("%d %s %.3f\n", p.Class, p.Name, p.Prob)
	}
	// Output:
	// 281 tabby 0.671
	// 285 Egyptian cat 0.247
}
