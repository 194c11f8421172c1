package main

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeCurve draws the training curve of the epochs so far into a PNG: the train and
// test loss in the upper panel and the test error (100 − accuracy, in percent) in the
// lower one, both against the epoch.
func writeCurve(path, model string, rs []epochResult) error {
	loss := plot.New()
	loss.Title.Text = fmt.Sprintf("cnn train -model %s", model)
	loss.X.Label.Text = "epoch"
	loss.Y.Label.Text = "cross-entropy loss"
	acc := plot.New()
	acc.X.Label.Text = "epoch"
	acc.Y.Label.Text = "test error (%)"
	var trainL, testL, testE plotter.XYs
	for _, r := range rs {
		x := float64(r.Epoch)
		trainL = append(trainL, plotter.XY{X: x, Y: r.TrainLoss})
		testL = append(testL, plotter.XY{X: x, Y: r.TestLoss})
		testE = append(testE, plotter.XY{X: x, Y: 100 * (1 - r.TestAcc)})
	}
	add := func(p *plot.Plot, name string, xys plotter.XYs, c color.Color) error {
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color, pts.Color = c, c
		p.Add(l, pts)
		p.Legend.Add(name, l, pts)
		return nil
	}
	blue, red := color.RGBA{B: 200, A: 255}, color.RGBA{R: 200, A: 255}
	if err := add(loss, "train", trainL, blue); err != nil {
		return err
	}
	if err := add(loss, "test", testL, red); err != nil {
		return err
	}
	if err := add(acc, "test error", testE, red); err != nil {
		return err
	}
	loss.Legend.Top = true
	acc.Legend.Top = true
	const w, h = 6 * vg.Inch, 6 * vg.Inch
	img := vgimg.New(w, h)
	canvases := plot.Align([][]*plot.Plot{{loss}, {acc}}, draw.Tiles{Rows: 2, Cols: 1}, draw.New(img))
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[1][0])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
