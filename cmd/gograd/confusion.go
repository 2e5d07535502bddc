package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// confusionMatrix counts images by true class (row) and predicted class
// (column), for any number of classes.
type confusionMatrix struct {
	n      int   // the number of classes
	counts []int // n*n counts, row-major: counts[t*n+p]
}

// confusion counts the [true][predicted] pairs of pred and labels for n
// classes. Every class must be in 0..n-1: the predictions come from n
// outputs and the labels from a set of n classes, checked when loaded.
func confusion(n int, pred []int, labels []uint8) *confusionMatrix {
	if len(pred) != len(labels) {
		panic(fmt.Sprintf("confusion: %d predictions for %d labels", len(pred), len(labels)))
	}
	c := &confusionMatrix{n: n, counts: make([]int, n*n)}
	for i, p := range pred {
		t := int(labels[i])
		if p < 0 || p >= n || t >= n {
			panic(fmt.Sprintf("confusion: image %d has true class %d and predicted class %d, outside 0..%d", i, t, p, n-1))
		}
		c.counts[t*n+p]++
	}
	return c
}

// at is the number of images of true class t predicted as class p.
func (c *confusionMatrix) at(t, p int) int { return c.counts[t*c.n+p] }

// correct is the number of images predicted as their true class.
func (c *confusionMatrix) correct() int {
	k := 0
	for t := range c.n {
		k += c.at(t, t)
	}
	return k
}

// total is the number of images counted.
func (c *confusionMatrix) total() int {
	k := 0
	for _, v := range c.counts {
		k += v
	}
	return k
}

// maxCount is the largest count, 0 for an empty matrix.
func (c *confusionMatrix) maxCount() int {
	m := 0
	for _, v := range c.counts {
		m = max(m, v)
	}
	return m
}

// textMatrixClasses is the most classes whose confusion matrix
// writeReport prints in full; for more it lists the commonest confusions.
const textMatrixClasses = 20

// topConfusions is the number of confusions writeReport lists for more
// than textMatrixClasses classes.
const topConfusions = 20

// writeReport prints the accuracy, a per-class precision and recall table
// and the confusion matrix (for many classes, the commonest confusions).
// names names the classes; nil for digits, which their indices name. The
// table ends each row with the class's name when there are names.
// bench/torch_load.py prints the same lines.
func writeReport(w io.Writer, c *confusionMatrix, names []string) {
	n := c.n
	predicted, actual := make([]int, n), make([]int, n)
	for t := range n {
		for p := range n {
			predicted[p] += c.at(t, p)
			actual[t] += c.at(t, p)
		}
	}
	correct, total := c.correct(), c.total()
	fmt.Fprintf(w, "test accuracy: %s (%d/%d)\n\n", pct(ratio(correct, total)), correct, total)
	if names != nil {
		fmt.Fprintf(w, "class  precision  recall  support  name\n")
	} else {
		fmt.Fprintf(w, "class  precision  recall  support\n")
	}
	for k := range n {
		fmt.Fprintf(w, "%5d  %9s  %6s  %7d", k, pct(ratio(c.at(k, k), predicted[k])), pct(ratio(c.at(k, k), actual[k])), actual[k])
		if names != nil {
			fmt.Fprintf(w, "  %s", names[k])
		}
		fmt.Fprintln(w)
	}
	if n > textMatrixClasses {
		writeTopConfusions(w, c, names)
		return
	}
	width := max(5, len(strconv.Itoa(c.maxCount())))
	fmt.Fprintf(w, "\nconfusion matrix (rows: true class, columns: predicted class)\n")
	fmt.Fprintf(w, "true\\pred")
	for p := range n {
		fmt.Fprintf(w, " %*d", width, p)
	}
	fmt.Fprintln(w)
	for t := range n {
		fmt.Fprintf(w, "%9d", t)
		for p := range n {
			fmt.Fprintf(w, " %*d", width, c.at(t, p))
		}
		fmt.Fprintln(w)
	}
}

// writeTopConfusions lists the topConfusions commonest confusions of c,
// the most images first, then by true and predicted class.
func writeTopConfusions(w io.Writer, c *confusionMatrix, names []string) {
	type pair struct{ t, p, count int }
	var pairs []pair
	errors := 0
	for t := range c.n {
		for p := range c.n {
			if k := c.at(t, p); t != p && k > 0 {
				pairs = append(pairs, pair{t, p, k})
				errors += k
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.t, b.t), cmp.Compare(a.p, b.p))
	})
	fmt.Fprintf(w, "\nconfusion matrix: %dx%d, too large to print; the commonest of %d confusions of %d errors:\n",
		c.n, c.n, len(pairs), errors)
	fmt.Fprintf(w, " true  predicted   images\n")
	for _, q := range pairs[:min(topConfusions, len(pairs))] {
		fmt.Fprintf(w, "%5d  %9d  %7d", q.t, q.p, q.count)
		if names != nil {
			fmt.Fprintf(w, "  %s -> %s", names[q.t], names[q.p])
		}
		fmt.Fprintln(w)
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
