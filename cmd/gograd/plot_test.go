package main

import (
	"bytes"
	"fmt"
	"image/png"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/gograd/gograd/data"
	"gonum.org/v1/plot"
)

func sampleRows(n int) []metricsRow {
	rows := make([]metricsRow, n)
	for i := range rows {
		f := float64(i + 1)
		rows[i] = metricsRow{Epoch: i + 1, LR: 0.05 / f, TrainLoss: 0.3 / f, ValAcc: 0.95 + 0.003*f, TestAcc: 0.95 + 0.0031*f, Seconds: 8, SamplesPerSec: 7000}
	}
	return rows
}

// sampleConfusion is a confusion matrix of n classes with a large
// diagonal and a few errors.
func sampleConfusion(n int) *confusionMatrix {
	c := &confusionMatrix{n: n, counts: make([]int, n*n)}
	for t := range n {
		for p := range n {
			c.counts[t*n+p] = (t*7 + p*3) % 5
		}
		c.counts[t*n+t] = 950 + t
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
	if err := plotConfusion(io.Discard, &confusionMatrix{n: 10, counts: make([]int, 100)}, nil, "epoch 1"); err != nil {
		t.Errorf("an empty confusion matrix: %v", err)
	}
}

// TestPlotConfusionClasses checks that the confusion plot renders for one
// class to the most a folder may have, named or not, as a PNG that grows
// from 780x720 pixels for ten classes to 960x900 for twenty and more.
func TestPlotConfusionClasses(t *testing.T) {
	for _, tc := range []struct {
		n    int
		w, h int
	}{{1, 780, 720}, {2, 780, 720}, {10, 780, 720}, {13, 834, 774}, {20, 960, 900}, {21, 960, 900}, {57, 960, 900}, {100, 960, 900}, {data.MaxClasses, 960, 900}} {
		names := make([]string, tc.n)
		for k := range names {
			names[k] = fmt.Sprintf("class-%d-with-a-long-name", k)
		}
		for _, ns := range [][]string{nil, names} {
			var buf bytes.Buffer
			if err := plotConfusion(&buf, sampleConfusion(tc.n), ns, "epoch 3"); err != nil {
				t.Fatalf("%d classes: %v", tc.n, err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("%d classes: %v", tc.n, err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("%d classes: the plot is %dx%d, want %dx%d", tc.n, b.Dx(), b.Dy(), tc.w, tc.h)
			}
		}
	}
}

// The confusion plot labels every class up to twenty, by name where there
// are names (cut short when long), and every few classes by index beyond.
func TestClassTicks(t *testing.T) {
	labels := func(ticks plot.ConstantTicks) (all []string) {
		for _, tk := range ticks {
			if tk.Label != "" {
				all = append(all, tk.Label)
			}
		}
		return all
	}
	if got := labels(classTicks(3, []string{"ant", "bee", "a-very-long-class-name"})); !slices.Equal(got, []string{"ant", "bee", "a-very-long-c…"}) {
		t.Errorf("3 named classes: ticks %q", got)
	}
	if got := labels(classTicks(20, nil)); len(got) != 20 || got[19] != "19" {
		t.Errorf("20 classes: ticks %q", got)
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{21, []string{"0", "2", "4", "6", "8", "10", "12", "14", "16", "18", "20"}},
		{57, []string{"0", "5", "10", "15", "20", "25", "30", "35", "40", "45", "50", "55"}},
		{100, []string{"0", "10", "20", "30", "40", "50", "60", "70", "80", "90"}},
		{256, []string{"0", "50", "100", "150", "200", "250"}},
	} {
		ticks := classTicks(tc.n, make([]string, tc.n))
		if got := labels(ticks); !slices.Equal(got, tc.want) {
			t.Errorf("%d classes: tick labels %q, want %q", tc.n, got, tc.want)
		}
		if wantTicks := map[bool]int{true: tc.n, false: len(tc.want)}[tc.n <= 50]; len(ticks) != wantTicks {
			t.Errorf("%d classes: %d ticks, want %d", tc.n, len(ticks), wantTicks)
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
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := sampleConfusion(n)
			b.ReportAllocs()
			for b.Loop() {
				if err := plotConfusion(io.Discard, c, nil, "epoch 10"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
