// Command cpureport summarises the results that bench/cpu_compare.sh
// collects: it prints the training and SGEMM comparison tables of gograd
// against PyTorch and NumPy on the CPU, as Markdown, and draws them as a
// PNG.
//
//	go run ./bench/cpureport -in results.tsv -png cpu_compare.png
//
// Each line of the input is a record of whitespace-separated fields:
//
//	train <config> <round> epoch <n> <seconds>   the training loop of epoch n
//	train <config> <round> acc <fraction>        test accuracy after the last epoch
//	train <config> <round> rss_mib <MiB>         peak resident memory of the run
//	train <config> <round> samples <n>           training samples per epoch
//	                                             (default: 468 batches of 128)
//	gemm <config> <round> <product> <GFLOP/s>    one matrix product
//
// Configurations named gograd are gograd's; the others are PyTorch
// ("torch-...") or NumPy ("numpy-...") in an OpenBLAS environment ("env":
// as the machine sets it, "unset": OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
// unset). The epoch time of a run is the median of the epochs after the
// first, which is a warm-up; a configuration's time is the median over its
// runs, and its best time the fastest run. On a shared machine the best run
// is the one least disturbed. Ratios compare gograd with the fastest
// PyTorch configuration, median with median and best with best; SGEMM
// figures likewise, as the median and the best round.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// samplesPerEpoch is the MNIST protocol's 468 batches of 128.
const samplesPerEpoch = 468 * 128

func main() {
	in := flag.String("in", "", "results `file` written by bench/cpu_compare.sh (default stdin)")
	png := flag.String("png", "", "write the plot to this PNG `file`")
	flag.Parse()
	if err := run(*in, *png, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cpureport:", err)
		os.Exit(1)
	}
}

func run(in, png string, w io.Writer) error {
	r := io.Reader(os.Stdin)
	if in != "" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	res, err := parse(r)
	if err != nil {
		return err
	}
	train := res.trainTable()
	gemm := res.gemmTable()
	printTrain(w, train)
	printGEMM(w, gemm)
	if png == "" {
		return nil
	}
	f, err := os.Create(png)
	if err != nil {
		return err
	}
	if err := drawPlot(f, train, gemm); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// results holds the parsed records.
type results struct {
	epochs map[string][]float64         // config: epoch seconds of every run, warm-up left out
	runs   map[string]map[int][]float64 // config: round: epoch seconds
	acc    map[string][]float64         // config: accuracy of each run
	rss    map[string][]float64         // config: peak MiB of each run
	// samples is a configuration's training samples per epoch, where a
	// record gives it; samplesPerEpoch otherwise.
	samples map[string]float64
	gemm    map[string]map[string][]float64
	prods   []string // products in input order
}

func parse(r io.Reader) (*results, error) {
	res := &results{epochs: map[string][]float64{}, runs: map[string]map[int][]float64{}, acc: map[string][]float64{},
		rss: map[string][]float64{}, samples: map[string]float64{}, gemm: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("line %d: %s: %q", line, why, sc.Text()) }
		if len(f) < 5 {
			return nil, bad("want at least 5 fields")
		}
		round, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, bad("round is not an integer")
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, bad("value is not a number")
		}
		cfg := f[1]
		switch {
		case f[0] == "train" && f[3] == "epoch" && len(f) == 6:
			if res.runs[cfg] == nil {
				res.runs[cfg] = map[int][]float64{}
			}
			res.runs[cfg][round] = append(res.runs[cfg][round], v)
		case f[0] == "train" && f[3] == "acc":
			res.acc[cfg] = append(res.acc[cfg], v)
		case f[0] == "train" && f[3] == "rss_mib":
			res.rss[cfg] = append(res.rss[cfg], v)
		case f[0] == "train" && f[3] == "samples":
			res.samples[cfg] = v
		case f[0] == "gemm":
			if res.gemm[cfg] == nil {
				res.gemm[cfg] = map[string][]float64{}
			}
			if !slices.Contains(res.prods, f[3]) {
				res.prods = append(res.prods, f[3])
			}
			res.gemm[cfg][f[3]] = append(res.gemm[cfg][f[3]], v)
		default:
			return nil, bad("unknown record")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for cfg, rounds := range res.runs {
		for _, secs := range rounds {
			if len(secs) > 1 {
				res.epochs[cfg] = append(res.epochs[cfg], median(secs[1:]))
			}
		}
	}
	if len(res.epochs) == 0 && len(res.gemm) == 0 {
		return nil, errors.New("no results")
	}
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// trainRow is one configuration's training summary.
type trainRow struct {
	config         string
	epoch, best    float64 // median and fastest run, seconds
	runs           int
	ratio, ratioB  float64 // epoch and best / the fastest PyTorch configuration's
	accLo, accHi   float64
	accMean        float64
	rssMiB         float64 // largest over the runs
	samples        float64 // training samples per epoch
	hasAcc, hasRSS bool
}

// configs returns the configurations with gograd first, then sorted.
func configs[V any](m map[string]V) []string {
	var cs []string
	for c := range m {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		gi, gj := strings.HasPrefix(cs[i], "gograd"), strings.HasPrefix(cs[j], "gograd")
		if gi != gj {
			return gi
		}
		return cs[i] < cs[j]
	})
	return cs
}

func (res *results) trainTable() []trainRow {
	torchMed, torchBest := 0.0, 0.0
	for cfg, e := range res.epochs {
		if strings.HasPrefix(cfg, "torch") {
			if torchMed == 0 || median(e) < torchMed {
				torchMed = median(e)
			}
			if torchBest == 0 || slices.Min(e) < torchBest {
				torchBest = slices.Min(e)
			}
		}
	}
	var rows []trainRow
	for _, cfg := range configs(res.epochs) {
		e := res.epochs[cfg]
		r := trainRow{config: cfg, epoch: median(e), best: slices.Min(e), runs: len(e), samples: samplesPerEpoch}
		if n := res.samples[cfg]; n > 0 {
			r.samples = n
		}
		if torchMed > 0 {
			r.ratio, r.ratioB = r.epoch/torchMed, r.best/torchBest
		}
		if a := res.acc[cfg]; len(a) > 0 {
			r.accLo, r.accHi, r.hasAcc = slices.Min(a), slices.Max(a), true
			for _, v := range a {
				r.accMean += v / float64(len(a))
			}
		}
		if m := res.rss[cfg]; len(m) > 0 {
			r.rssMiB, r.hasRSS = slices.Max(m), true
		}
		rows = append(rows, r)
	}
	return rows
}

func printTrain(w io.Writer, rows []trainRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "| configuration | epoch (s): median of runs | best run | samples/s (median) | vs fastest PyTorch: median | best | test accuracy after the last epoch: mean (range) | peak RSS (MiB) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		acc, rss, ratio, ratioB := "-", "-", "-", "-"
		if r.hasAcc {
			acc = fmt.Sprintf("%.2f%%", 100*r.accLo)
			if r.accHi != r.accLo {
				acc = fmt.Sprintf("%.2f%% (%.2f-%.2f)", 100*r.accMean, 100*r.accLo, 100*r.accHi)
			}
		}
		if r.hasRSS {
			rss = fmt.Sprintf("%.0f", r.rssMiB)
		}
		if r.ratio > 0 {
			ratio, ratioB = fmt.Sprintf("%.2fx", r.ratio), fmt.Sprintf("%.2fx", r.ratioB)
		}
		fmt.Fprintf(w, "| %s | %.3f (%d runs) | %.3f | %.0f | %s | %s | %s | %s |\n", r.config, r.epoch, r.runs, r.best,
			r.samples/r.epoch, ratio, ratioB, acc, rss)
	}
	fmt.Fprintln(w)
}

// gemmTable holds the median and best GFLOP/s of each configuration and
// product.
type gemmTable struct {
	configs, prods []string
	gflops, top    map[string]map[string]float64
}

func (res *results) gemmTable() gemmTable {
	t := gemmTable{configs: configs(res.gemm), prods: res.prods, gflops: map[string]map[string]float64{},
		top: map[string]map[string]float64{}}
	for cfg, byProd := range res.gemm {
		t.gflops[cfg], t.top[cfg] = map[string]float64{}, map[string]float64{}
		for p, v := range byProd {
			t.gflops[cfg][p], t.top[cfg][p] = median(v), slices.Max(v)
		}
	}
	return t
}

// best returns the fastest configuration other than gograd's for product p
// in figures (t.gflops or t.top).
func (t gemmTable) best(figures map[string]map[string]float64, p string) (string, float64) {
	cfg, v := "", 0.0
	for _, c := range t.configs {
		if g, ok := figures[c][p]; ok && !strings.HasPrefix(c, "gograd") && g > v {
			cfg, v = c, g
		}
	}
	return cfg, v
}

func printGEMM(w io.Writer, t gemmTable) {
	if len(t.prods) == 0 {
		return
	}
	fmt.Fprintf(w, "| product (GFLOP/s, median of rounds) | %s | gograd vs fastest OpenBLAS: median | best round |\n", strings.Join(t.configs, " | "))
	fmt.Fprintf(w, "|---|%s---|---|\n", strings.Repeat("---|", len(t.configs)))
	for _, p := range t.prods {
		fmt.Fprintf(w, "| %s |", p)
		for _, c := range t.configs {
			if g, ok := t.gflops[c][p]; ok {
				fmt.Fprintf(w, " %.0f |", g)
			} else {
				fmt.Fprint(w, " - |")
			}
		}
		ratio, ratioB := "-", "-"
		if _, b := t.best(t.gflops, p); b > 0 {
			if g, ok := t.gflops["gograd"][p]; ok {
				ratio = fmt.Sprintf("%.0f%%", 100*g/b)
			}
		}
		if _, b := t.best(t.top, p); b > 0 {
			if g, ok := t.top["gograd"][p]; ok {
				ratioB = fmt.Sprintf("%.0f%%", 100*g/b)
			}
		}
		fmt.Fprintf(w, " %s | %s |\n", ratio, ratioB)
	}
	fmt.Fprintln(w)
}

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
)

// drawPlot draws the median epoch time of each configuration (left) and the
// GFLOP/s of gograd and the fastest OpenBLAS configuration per product
// (right).
func drawPlot(w io.Writer, train []trainRow, t gemmTable) error {
	ep := plot.New()
	ep.Title.Text = "MNIST MLP: training epoch (median and best run)"
	ep.Y.Label.Text = "seconds per epoch"
	ep.Add(plotter.NewGrid())
	var names []string
	var secs, best plotter.Values
	for _, r := range train {
		names = append(names, r.config)
		secs, best = append(secs, r.epoch), append(best, r.best)
	}
	if len(secs) > 0 {
		width := vg.Points(24)
		var xys plotter.XYLabels
		for i, s := range []struct {
			name string
			v    plotter.Values
			c    color.Color
		}{{"median of runs", secs, blue}, {"best run", best, green}} {
			bars, err := plotter.NewBarChart(s.v, width)
			if err != nil {
				return err
			}
			bars.Color = s.c
			bars.LineStyle.Width = 0
			bars.Offset = vg.Length(2*i-1) * width / 2
			ep.Add(bars)
			ep.Legend.Add(s.name, bars)
			for j, v := range s.v {
				xys.XYs = append(xys.XYs, plotter.XY{X: float64(j) + 0.18*float64(2*i-1), Y: v})
				xys.Labels = append(xys.Labels, fmt.Sprintf("%.2f", v))
			}
		}
		ep.Legend.Top = true
		ep.NominalX(names...)
		ep.X.Min, ep.X.Max = -0.6, float64(len(secs))-0.4
		ep.Y.Min, ep.Y.Max = 0, 1.25*slices.Max(secs)
		labels, err := plotter.NewLabels(xys)
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].XAlign = draw.XCenter
			labels.TextStyle[i].YAlign = draw.YBottom
		}
		ep.Add(labels)
	}

	gp := plot.New()
	gp.Title.Text = "SGEMM: gograd vs the fastest OpenBLAS run"
	gp.Y.Label.Text = "GFLOP/s"
	gp.Add(plotter.NewGrid())
	var ours, theirs plotter.Values
	var labels []string
	for _, p := range t.prods {
		_, b := t.best(t.gflops, p)
		ours = append(ours, t.gflops["gograd"][p])
		theirs = append(theirs, b)
		labels = append(labels, shortName(p))
	}
	if len(ours) > 0 {
		width := vg.Points(9)
		for i, s := range []struct {
			name string
			v    plotter.Values
			c    color.Color
		}{{"gograd", ours, green}, {"OpenBLAS (NumPy or PyTorch)", theirs, orange}} {
			bars, err := plotter.NewBarChart(s.v, width)
			if err != nil {
				return err
			}
			bars.Color = s.c
			bars.LineStyle.Width = 0
			bars.Offset = vg.Length(2*i-1) * width / 2
			gp.Add(bars)
			gp.Legend.Add(s.name, bars)
		}
		gp.Legend.Top = true
		gp.Legend.Left = true
		gp.NominalX(labels...)
		gp.X.Min, gp.X.Max = -0.7, float64(len(ours))-0.3
		gp.Y.Min, gp.Y.Max = 0, 1.25*max(slices.Max(ours), slices.Max(theirs))
		gp.X.Tick.Label.Rotation = 0.6
		gp.X.Tick.Label.XAlign = draw.XRight
	}

	c := vgimg.NewWith(vgimg.UseWH(12*vg.Inch, 5*vg.Inch), vgimg.UseDPI(110))
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 3, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	ep.Draw(tiles.At(dc, 0, 0))
	gp.Draw(tiles.At(dc, 1, 0))
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

// shortName drops a product's shape suffix for the plot's axis:
// "fc1_fwd_128x784x512_NT" becomes "fc1_fwd 128x784x512".
func shortName(p string) string {
	f := strings.Split(p, "_")
	if len(f) >= 3 && strings.Contains(f[2], "x") {
		return f[0] + "_" + f[1] + " " + f[2]
	}
	return strings.ReplaceAll(p, "_", " ")
}
