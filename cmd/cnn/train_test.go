package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// trainTo runs a short training on MNIST and returns the checkpoint it wrote.
func trainTo(t *testing.T, out string, epochs, threads int, resume string, stopAfter int) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	f := trainFlags{model: "vgg_mnist", epochs: epochs, batch: 16, threads: threads, lr: 0.05, momentum: 0.9, wd: 5e-4,
		schedule: "cosine", seed: 3, limit: 3, testLimit: 32, asJSON: true, out: out, resume: resume, stdout: &stdout, stderr: &stderr,
		curve: filepath.Join(t.TempDir(), "curve.png"), stopAfter: stopAfter}
	if err := train(&f); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(&stdout)
	for {
		var r epochResult
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if r.Epoch < 1 || r.TrainLoss <= 0 || r.ImagesPerSec <= 0 || r.TestAcc < 0 || r.TestAcc > 1 {
			t.Errorf("implausible epoch line %+v", r)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Same seed, exact mode: bit-identical weights, statistics and momentum for any
// thread count.
func TestTrainDeterministicAcrossThreads(t *testing.T) {
	dir := t.TempDir()
	one := trainTo(t, filepath.Join(dir, "t1.safetensors"), 1, 1, "", 0)
	two := trainTo(t, filepath.Join(dir, "t2.safetensors"), 1, 2, "", 0)
	if !bytes.Equal(one, two) {
		t.Error("checkpoints after training with 1 and 2 threads differ")
	}
}

// A 2-epoch run stopped after epoch 1 and resumed from its checkpoint ends exactly
// where the uninterrupted run does.
func TestTrainResume(t *testing.T) {
	dir := t.TempDir()
	straight := trainTo(t, filepath.Join(dir, "straight.safetensors"), 2, 2, "", 0)
	half := filepath.Join(dir, "half.safetensors")
	trainTo(t, half, 2, 2, "", 1)
	resumed := trainTo(t, filepath.Join(dir, "resumed.safetensors"), 2, 2, half, 0)
	if !bytes.Equal(straight, resumed) {
		t.Error("a run resumed after epoch 1 differs from the uninterrupted run")
	}
	var stderr bytes.Buffer
	f := trainFlags{model: "vgg_mnist", epochs: 1, batch: 16, threads: 1, lr: 0.05, seed: 4, limit: 1, testLimit: 16, resume: half, stdout: io.Discard, stderr: &stderr, schedule: "none"}
	if err := train(&f); err == nil {
		t.Error("resuming with another seed: no error")
	}
}
