package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cnngen/cnngen/data/mnist"
	"github.com/cnngen/cnngen/generated"
	"github.com/cnngen/cnngen/runtime"
	"github.com/cnngen/cnngen/runtime/optim"
)

// epochResult is one line of `cnn train -json`.
type epochResult struct {
	Epoch        int     `json:"epoch"`
	LR           float64 `json:"lr"` // at the end of the epoch
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_accuracy"`
	TestLoss     float64 `json:"test_loss"`
	TestAcc      float64 `json:"test_accuracy"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Seconds      float64 `json:"seconds"`
}

type trainFlags struct {
	model                  string
	epochs, batch, threads int
	lr, momentum, wd       float64
	nesterov               bool
	schedule               string
	seed                   uint64
	limit, testLimit       int
	asJSON                 bool
	dataDir, out, resume   string
	curve                  string
	stopAfter              int // tests: stop after this many epochs, as if killed
	stdout, stderr         io.Writer
	isTerminal             bool
}

func trainCmd(args []string, stdout, stderr io.Writer) int {
	var f trainFlags
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "vgg_mnist", "model to train (a 1×28×28 input, 10 classes)")
	fs.IntVar(&f.epochs, "epochs", 2, "epochs")
	fs.IntVar(&f.batch, "batch", 64, "batch size")
	fs.Float64Var(&f.lr, "lr", 0.05, "initial learning rate")
	fs.Float64Var(&f.momentum, "momentum", 0.9, "SGD momentum")
	fs.Float64Var(&f.wd, "wd", 5e-4, "weight decay")
	fs.BoolVar(&f.nesterov, "nesterov", false, "Nesterov momentum")
	fs.StringVar(&f.schedule, "schedule", "cosine", "learning-rate schedule: cosine, step (×0.1 every 2 epochs) or none")
	fs.IntVar(&f.threads, "threads", 2, "worker threads")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the initial weights, the shuffles and the dropout masks")
	fs.IntVar(&f.limit, "limit", 0, "train on at most this many batches per epoch (0: all)")
	fs.IntVar(&f.testLimit, "test-limit", 0, "evaluate on at most this many test images (0: all 10,000)")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object per epoch")
	fs.StringVar(&f.dataDir, "data", "", "directory of the MNIST IDX files (default: the GoMNIST module's)")
	fs.StringVar(&f.out, "out", "", "write a checkpoint (safetensors: weights, batch norm statistics, momentum) here after every epoch")
	fs.StringVar(&f.resume, "resume", "", "continue from this checkpoint, as if the run had not stopped")
	fs.StringVar(&f.curve, "curve", "train.png", "write the loss and test-error curve here after every epoch (PNG; empty: none)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cnn train [-model vgg_mnist] [-epochs E] [-batch B] [-lr X] [-threads T] [-seed S] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || f.epochs < 1 || f.batch < 1 || f.threads < 1 || f.lr <= 0 {
		fs.Usage()
		return 2
	}
	f.stdout, f.stderr = stdout, stderr
	if file, ok := stderr.(*os.File); ok {
		f.isTerminal = term.IsTerminal(int(file.Fd()))
	}
	if err := train(&f); err != nil {
		fmt.Fprintln(stderr, "cnn train:", err)
		return 1
	}
	return 0
}

func schedule(f *trainFlags) (optim.Schedule, error) {
	switch f.schedule {
	case "cosine":
		return optim.Cosine{Base: f.lr, Epochs: f.epochs}, nil
	case "step":
		return optim.StepLR{Base: f.lr, Gamma: 0.1, Every: 2}, nil
	case "none":
		return optim.StepLR{Base: f.lr}, nil
	}
	return nil, fmt.Errorf("unknown -schedule %q; expected cosine, step or none", f.schedule)
}

func train(f *trainFlags) error {
	e, err := generated.Lookup(f.model)
	if err != nil {
		return err
	}
	sched, err := schedule(f)
	if err != nil {
		return err
	}
	dir := f.dataDir
	if dir == "" {
		if dir, err = mnist.Dir(); err != nil {
			return err
		}
	}
	trainSet, testSet, err := mnist.Load(dir)
	if err != nil {
		return err
	}
	m, err := e.New(runtime.Config{MaxBatch: f.batch, Threads: f.threads, Training: true, NoInputGrad: true, Seed: f.seed})
	if err != nil {
		return err
	}
	defer m.Close()
	if s := m.InputShape(); s != [3]int{1, trainSet.Rows, trainSet.Cols} || m.Classes() != 10 {
		return fmt.Errorf("model %s takes %v inputs with %d classes; MNIST needs 1×%d×%d and 10", f.model, s, m.Classes(), trainSet.Rows, trainSet.Cols)
	}
	if err := runtime.InitTorch(m, f.seed); err != nil {
		return err
	}
	opt, err := optim.NewSGD(m, f.momentum, f.wd, f.nesterov)
	if err != nil {
		return err
	}
	opt.ZeroGrad = true // Step leaves the gradients zero for the next Backward
	first := 0
	if f.resume != "" {
		if first, err = loadCheckpoint(f.resume, m, opt, f.seed); err != nil {
			return err
		}
		if first >= f.epochs {
			return fmt.Errorf("%s has already trained %d epochs; ask for more with -epochs", f.resume, first)
		}
	}
	batches := mnist.NewBatches(trainSet, f.batch, f.seed)
	dl := make([]float32, f.batch*10)
	enc := json.NewEncoder(f.stdout)
	var results []epochResult
	for epoch := first; epoch < f.epochs; epoch++ {
		batches.Seek(epoch, 0)
		// Each epoch's dropout masks and batches depend on the seed and the epoch
		// only, so a run resumed from a checkpoint repeats the uninterrupted one.
		m.Seed(f.seed ^ uint64(epoch+1)*0x9e3779b97f4a7c15)
		steps := batches.Len()
		if f.limit > 0 {
			steps = min(steps, f.limit)
		}
		var bar *progressbar.ProgressBar
		if f.isTerminal && !f.asJSON {
			bar = progressbar.NewOptions(steps, progressbar.OptionSetWriter(f.stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch+1, f.epochs)),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("batch"), progressbar.OptionClearOnFinish())
		}
		start := time.Now()
		var lossSum float64
		var correct, seen int
		m.SetTraining(true)
		for s := 0; s < steps; s++ {
			lr := sched.LR(float64(epoch) + float64(s)/float64(steps))
			x, labels, n := batches.Next()
			logits, err := m.Forward(x, n)
			if err != nil {
				return err
			}
			loss, ok, err := runtime.SoftmaxCrossEntropy(logits, labels, 10, dl[:n*10])
			if err != nil {
				return err
			}
			if _, err := m.Backward(dl[:n*10]); err != nil {
				return err
			}
			if err := opt.Step(m, lr); err != nil {
				return err
			}
			lossSum += float64(loss * float64(n))
			correct += ok
			seen += n
			if bar != nil {
				bar.Add(1)
			}
		}
		elapsed := time.Since(start)
		if bar != nil {
			bar.Finish()
		}
		testLoss, testAcc, err := evaluate(m, testSet, f.batch, f.testLimit)
		if err != nil {
			return err
		}
		r := epochResult{Epoch: epoch + 1, LR: sched.LR(float64(epoch + 1)), TrainLoss: lossSum / float64(seen), TrainAcc: float64(correct) / float64(seen),
			TestLoss: testLoss, TestAcc: testAcc, ImagesPerSec: float64(seen) / elapsed.Seconds(), Seconds: elapsed.Seconds()}
		if f.out != "" {
			if err := saveCheckpoint(f.out, m, opt, epoch+1, f.seed); err != nil {
				return err
			}
		}
		results = append(results, r)
		if f.stopAfter > 0 && epoch+1 >= f.stopAfter {
			return nil
		}
		if f.curve != "" {
			if err := writeCurve(f.curve, f.model, results); err != nil {
				return fmt.Errorf("writing the curve %s: %w", f.curve, err)
			}
		}
		if f.asJSON {
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(f.stdout, "epoch %d/%d  lr %.4g  train loss %.4f  train acc %.2f%%  test loss %.4f  test acc %.2f%%  %.0f images/s\n",
				r.Epoch, f.epochs, r.LR, r.TrainLoss, 100*r.TrainAcc, r.TestLoss, 100*r.TestAcc, r.ImagesPerSec)
		}
	}
	return nil
}

// evaluate runs the model in evaluation mode over the test set (or its first limit
// images) and returns the mean loss and the accuracy.
func evaluate(m generated.Model, set *mnist.Set, batch, limit int) (loss, acc float64, err error) {
	m.SetTraining(false)
	defer m.SetTraining(true)
	n := set.N
	if limit > 0 {
		n = min(n, limit)
	}
	if n == 0 {
		return 0, 0, errors.New("empty test set")
	}
	px := set.Rows * set.Cols
	x := make([]float32, batch*px)
	labels := make([]int, batch)
	dl := make([]float32, batch*10)
	var lossSum float64
	correct := 0
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		for j := 0; j < k; j++ {
			mnist.Normalize(x[j*px:(j+1)*px], set.Images[(i+j)*px:(i+j+1)*px])
			labels[j] = int(set.Labels[i+j])
		}
		logits, err := m.Forward(x[:k*px], k)
		if err != nil {
			return 0, 0, err
		}
		l, c, err := runtime.SoftmaxCrossEntropy(logits, labels[:k], 10, dl[:k*10])
		if err != nil {
			return 0, 0, err
		}
		lossSum += float64(l * float64(k))
		correct += c
	}
	return lossSum / float64(n), float64(correct) / float64(n), nil
}
