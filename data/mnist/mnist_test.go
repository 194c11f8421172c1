package mnist

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T) (*Set, *Set) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

// The real files: their sizes, and the first labels every MNIST user knows.
func TestLoadRealData(t *testing.T) {
	train, test := load(t)
	if train.N != 60000 || test.N != 10000 || train.Rows != 28 || train.Cols != 28 {
		t.Fatalf("train %d×%d×%d, test %d", train.N, train.Rows, train.Cols, test.N)
	}
	if got := train.Labels[:5]; string(got) != string([]byte{5, 0, 4, 1, 9}) {
		t.Errorf("first training labels %v, want [5 0 4 1 9]", got)
	}
	if got := test.Labels[:3]; string(got) != string([]byte{7, 2, 1}) {
		t.Errorf("first test labels %v, want [7 2 1]", got)
	}
	var hist [10]int
	for _, l := range test.Labels {
		hist[l]++
	}
	// The test set's class counts, as published.
	if hist != [10]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009} {
		t.Errorf("test label counts %v", hist)
	}
}

func TestBatchesShuffleDeterministic(t *testing.T) {
	train, _ := load(t)
	a, b := NewBatches(train, 100, 7), NewBatches(train, 100, 7)
	seen := make([]bool, train.N)
	count := 0
	for {
		xa, ya, n := a.Next()
		xb, yb, _ := b.Next()
		if n == 0 {
			break
		}
		for i := range ya {
			if ya[i] != yb[i] || xa[i*784+300] != xb[i*784+300] {
				t.Fatal("same seed, different batches")
			}
		}
		count += n
	}
	if count != train.N {
		t.Errorf("an epoch served %d samples, want %d", count, train.N)
	}
	// Each sample once per epoch.
	a.Seek(1, 0)
	for _, k := range a.order {
		if seen[k] {
			t.Fatalf("sample %d twice", k)
		}
		seen[k] = true
	}
	// Epochs differ, seeking reproduces.
	e0 := append([]int(nil), NewBatches(train, 100, 7).order[:20]...)
	c := NewBatches(train, 100, 7)
	c.Seek(1, 0)
	same := true
	for i := range e0 {
		same = same && e0[i] == c.order[i]
	}
	if same {
		t.Error("epoch 1 starts with epoch 0's order")
	}
	c.Seek(0, 3)
	_, y, _ := c.Next()
	d := NewBatches(train, 100, 7)
	for i := 0; i < 3; i++ {
		d.Next()
	}
	_, y2, _ := d.Next()
	for i := range y {
		if y[i] != y2[i] {
			t.Fatal("Seek(0, 3) differs from three Next calls")
		}
	}
}

func TestNormalize(t *testing.T) {
	dst := make([]float32, 2)
	Normalize(dst, []byte{0, 255})
	if d := dst[0] - float32(-Mean/Std); d > 1e-6 || d < -1e-6 {
		t.Errorf("pixel 0 → %v", dst[0])
	}
	if d := dst[1] - float32((1-Mean)/Std); d > 1e-6 || d < -1e-6 {
		t.Errorf("pixel 255 → %v", dst[1])
	}
}

func TestMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, zip bool) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if zip {
			z := gzip.NewWriter(f)
			z.Write(data)
			z.Close()
		} else {
			f.Write(data)
		}
		return p
	}
	labels := write("labels", []byte{0, 0, 8, 1, 0, 0, 0, 2, 3, 4}, false)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"badmagic", []byte{0, 0, 8, 1, 0, 0, 0, 1}, "IDX magic number 0x00000801"},
		{"truncated", []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3}, "truncated: the header promises 8 bytes"},
		{"zerodim", []byte{0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2}, "dimension 0 is 0"},
		{"huge", []byte{0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0, 0, 2}, "out of range"},
		{"short", []byte{0, 0}, "reading the IDX magic number"},
		{"mismatch", []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9}, "has 1 images but"},
	} {
		for _, zip := range []bool{false, true} {
			p := write(c.name, c.data, zip)
			_, err := LoadSet(p, labels)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s (gzip %v): error %v, want %q naming the file", c.name, zip, err, c.want)
			}
		}
	}
	img := write("img", []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2}, false)
	badLabel := write("badlabel", []byte{0, 0, 8, 1, 0, 0, 0, 2, 3, 12}, false)
	if _, err := LoadSet(img, badLabel); err == nil || !strings.Contains(err.Error(), "label 12 of item 1 is not a digit") {
		t.Errorf("bad label: %v", err)
	}
}
