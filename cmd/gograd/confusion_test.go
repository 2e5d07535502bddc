package main

import (
	"fmt"
	"strings"
	"testing"
)

// The confusion matrix of three classes counts each (true, predicted)
// pair of a hand-built set.
func TestConfusionCounts(t *testing.T) {
	labels := []uint8{0, 0, 0, 1, 1, 2, 2, 2, 2, 2}
	pred := []int{0, 0, 2, 1, 0, 2, 2, 1, 2, 0}
	c := confusion(3, pred, labels)
	want := [3][3]int{
		{2, 0, 1},
		{1, 1, 0},
		{1, 1, 3},
	}
	for tr := range 3 {
		for p := range 3 {
			if got := c.at(tr, p); got != want[tr][p] {
				t.Errorf("true %d predicted %d: %d images, want %d", tr, p, got, want[tr][p])
			}
		}
	}
	if c.correct() != 6 || c.total() != 10 || c.maxCount() != 3 {
		t.Errorf("correct %d, total %d, largest count %d; want 6, 10, 3", c.correct(), c.total(), c.maxCount())
	}
}

// Labels past the tenth class are counted in their own rows and columns.
func TestConfusionManyClasses(t *testing.T) {
	const n = 130
	var labels []uint8
	var pred []int
	for k := range n {
		// Class k has k%3+1 images; the first is predicted as k+1.
		for i := range k%3 + 1 {
			labels = append(labels, uint8(k))
			pred = append(pred, map[bool]int{true: (k + 1) % n, false: k}[i == 0])
		}
	}
	c := confusion(n, pred, labels)
	for k := range n {
		if got := c.at(k, k); got != k%3 {
			t.Errorf("class %d: %d correct, want %d", k, got, k%3)
		}
		if got := c.at(k, (k+1)%n); got != 1 {
			t.Errorf("class %d: %d predicted as %d, want 1", k, got, (k+1)%n)
		}
	}
	if c.total() != len(labels) || c.correct() != len(labels)-n {
		t.Errorf("total %d, correct %d; want %d, %d", c.total(), c.correct(), len(labels), len(labels)-n)
	}
}

// A prediction outside the classes is a bug, not a count to drop.
func TestConfusionOutOfRange(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "predicted class 3") {
			t.Errorf("recovered %v, want a panic naming predicted class 3", r)
		}
	}()
	confusion(3, []int{0, 3}, []uint8{0, 1})
}

// The report of three named classes: precision and recall follow from
// TestConfusionCounts' matrix, and every row names its class.
func TestWriteReportNamed(t *testing.T) {
	labels := []uint8{0, 0, 0, 1, 1, 2, 2, 2, 2, 2}
	pred := []int{0, 0, 2, 1, 0, 2, 2, 1, 2, 0}
	var b strings.Builder
	writeReport(&b, confusion(3, pred, labels), []string{"ant", "bee", "cat"})
	want := `test accuracy: 60.00% (6/10)

class  precision  recall  support  name
    0     50.00%  66.67%        3  ant
    1     50.00%  50.00%        2  bee
    2     75.00%  60.00%        5  cat

confusion matrix (rows: true class, columns: predicted class)
true\pred     0     1     2
        0     2     0     1
        1     1     1     0
        2     1     1     3
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Digits, or classes without names, are named by their index alone, as
// the report of MNIST always was; a class never predicted has no precision.
func TestWriteReportDigits(t *testing.T) {
	var b strings.Builder
	writeReport(&b, confusion(2, []int{0, 0, 0}, []uint8{0, 1, 1}), nil)
	want := `test accuracy: 33.33% (1/3)

class  precision  recall  support
    0     33.33%  100.00%        1
    1          -   0.00%        2

confusion matrix (rows: true class, columns: predicted class)
true\pred     0     1
        0     1     0
        1     2     0
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

// With more classes than the report prints as a matrix, every class has
// its row, named, and the commonest confusions are listed instead.
func TestWriteReportManyClasses(t *testing.T) {
	const n = 30
	var labels []uint8
	var pred []int
	names := make([]string, n)
	for k := range n {
		names[k] = fmt.Sprintf("class%02d", k)
		// Class k has 10 images, of which k%5 are predicted as class 0.
		for i := range 10 {
			labels = append(labels, uint8(k))
			pred = append(pred, map[bool]int{true: k, false: 0}[i >= k%5])
		}
	}
	var b strings.Builder
	writeReport(&b, confusion(n, pred, labels), names)
	out := b.String()
	for k := range n {
		// Class 0 is predicted for its own 10 images and 60 others.
		precision := map[bool]string{true: "14.29%", false: "100.00%"}[k == 0]
		row := fmt.Sprintf("\n%5d  %9s  %6s  %7d  %s\n", k, precision, pct(float64(10-k%5)/10), 10, names[k])
		if !strings.Contains(out, row) {
			t.Errorf("no row %q in:\n%s", row, out)
		}
	}
	if strings.Contains(out, "true\\pred") {
		t.Errorf("a %dx%d matrix printed in full:\n%s", n, n, out)
	}
	// 24 classes have 1 to 4 images confused with class 0, 6 of each
	// count: the 6 confusions of 4 images come first, in class order,
	// then those of 3.
	for _, want := range []string{
		"confusion matrix: 30x30, too large to print; the commonest of 24 confusions of 60 errors:\n true  predicted   images\n" +
			"    4          0        4  class04 -> class00\n    9          0        4  class09 -> class00\n",
		"   29          0        4  class29 -> class00\n    3          0        3  class03 -> class00\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks\n%s\nin:\n%s", want, out)
		}
	}
	if lines := strings.Count(out[strings.Index(out, " true  predicted"):], "\n"); lines != 1+topConfusions {
		t.Errorf("%d confusion lines, want %d:\n%s", lines-1, topConfusions, out)
	}
}
