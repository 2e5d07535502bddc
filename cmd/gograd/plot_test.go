package main

import (
	"bytes"
	"image/png"
	"io"
	"math"
	"testing"
)

func sampleRows(n int) []metricsRow {
	rows := make([]metricsRow, n)
	for i := range rows {
		f := float64(i + 1)
		rows[i] = metricsRow{Epoch: i + 1, LR: 0.05 / f, TrainLoss: 0.3 / f, ValAcc: 0.95 + 0.003*f, TestAcc: 0.95 + 0.0031*f, Seconds: 8, SamplesPerSec: 7000}
	}
	return rows
}

func sampleConfusion() [10][10]int {
	var c [10][10]int
	for t := range 10 {
		for p := range 10 {
			c[t][p] = (t*7 + p*3) % 5
		}
		c[t][t] = 950 + t
	}
	return c
}

// TestPlots checks that the plots render for one epoch, many epochs,
// without a validation set and for an empty confusion matrix.
func TestPlots(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rows   int
		hasVal bool
	}{{"one epoch", 1, true}, {"ten epochs", 10, true}, {"no validation", 3, false}, {"many epochs", 57, true}} {
		var buf bytes.Buffer
		if err := plotCurves(&buf, sampleRows(tc.rows), tc.hasVal); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := png.Decode(&buf); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	diverged := sampleRows(4)
	diverged[2].TrainLoss = math.NaN()
	diverged[3].TrainLoss = math.Inf(1)
	for _, rows := range [][]metricsRow{diverged, diverged[2:]} {
		if err := plotCurves(io.Discard, rows, true); err != nil {
			t.Errorf("a diverged run: %v", err)
		}
	}
	for _, c := range [][10][10]int{sampleConfusion(), {}} {
		var buf bytes.Buffer
		if err := plotConfusion(&buf, c, "epoch 1"); err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(&buf); err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkPlotCurves(b *testing.B) {
	rows := sampleRows(10)
	b.ReportAllocs()
	for b.Loop() {
		if err := plotCurves(io.Discard, rows, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlotConfusion(b *testing.B) {
	c := sampleConfusion()
	b.ReportAllocs()
	for b.Loop() {
		if err := plotConfusion(io.Discard, c, "epoch 10"); err != nil {
			b.Fatal(err)
		}
	}
}
