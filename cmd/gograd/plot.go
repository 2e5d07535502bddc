package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot colours.
var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
)

const plotDPI = 120

// plotCurves draws the training loss (left) and the validation and test
// accuracy (right) per epoch as a PNG.
func plotCurves(w io.Writer, rows []metricsRow, hasVal bool) error {
	// A diverged run has infinite or NaN losses, which are left out.
	var loss, val, test plotter.XYs
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		x := float64(r.Epoch)
		if l := r.TrainLoss; l > 0 && !math.IsInf(l, 0) {
			loss = append(loss, plotter.XY{X: x, Y: math.Log10(l)})
			lo, hi = min(lo, math.Log10(l)), max(hi, math.Log10(l))
		}
		val = append(val, plotter.XY{X: x, Y: 100 * r.ValAcc})
		test = append(test, plotter.XY{X: x, Y: 100 * r.TestAcc})
	}

	lp := newPlot("Training loss", "epoch", "mean cross-entropy (log scale)")
	if len(loss) > 0 {
		// The loss falls by orders of magnitude: a log scale shows every
		// epoch. It is drawn as log10 values on a linear axis.
		// Spanning half a decade or more, the axis has a labelled tick.
		pad := max(0.15, (0.5-(hi-lo))/2)
		lp.Y.Min, lp.Y.Max = lo-pad, hi+pad
		lp.Y.Tick.Marker = logTicks(lp.Y.Min, lp.Y.Max)
	}
	if err := addSeries(lp, "train loss", loss, blue); err != nil {
		return err
	}
	ap := newPlot("Accuracy", "epoch", "accuracy (%)")
	ap.Legend.Left = false
	ap.Legend.Top = false
	if hasVal {
		if err := addSeries(ap, "validation", val, orange); err != nil {
			return err
		}
	}
	if err := addSeries(ap, "test", test, green); err != nil {
		return err
	}
	lp.Legend.Top = true
	for _, p := range []*plot.Plot{lp, ap} {
		epochAxis(p, len(rows))
	}

	c := vgimg.NewWith(vgimg.UseWH(11*vg.Inch, 4.5*vg.Inch), vgimg.UseDPI(plotDPI))
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 3, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	lp.Draw(tiles.At(dc, 0, 0))
	ap.Draw(tiles.At(dc, 1, 0))
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

// logTicks labels an axis of log10 values at 1, 2 and 5 times the powers of
// ten between lo and hi.
func logTicks(lo, hi float64) plot.ConstantTicks {
	var ts []plot.Tick
	for d := math.Floor(lo); d <= math.Ceil(hi); d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if l := math.Log10(v); l >= lo && l <= hi {
				ts = append(ts, plot.Tick{Value: l, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.TextStyle.Font.Size = vg.Points(12)
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	p.Add(plotter.NewGrid())
	return p
}

// addSeries adds a line with points, named in the legend.
func addSeries(p *plot.Plot, name string, xys plotter.XYs, c color.Color) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(2)
	s.Color = c
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(3)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// epochAxis labels the x axis with whole epochs.
func epochAxis(p *plot.Plot, n int) {
	p.X.Min, p.X.Max = 0.5, float64(n)+0.5
	step := max(1, (n+9)/10)
	var ticks []plot.Tick
	for e := 1; e <= n; e++ {
		label := ""
		if e%step == 0 || e == 1 {
			label = strconv.Itoa(e)
		}
		ticks = append(ticks, plot.Tick{Value: float64(e), Label: label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
}

// confusionGrid is a confusion matrix as a heat map grid: column c is the
// predicted class, row r the true class, and the value the log of the count,
// so that the few errors show next to the large diagonal.
type confusionGrid struct{ m *confusionMatrix }

func (g confusionGrid) Dims() (c, r int)   { return g.m.n, g.m.n }
func (g confusionGrid) Z(c, r int) float64 { return math.Log1p(float64(g.m.at(r, c))) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }

// blues is a white to dark blue colour ramp.
type blues struct{}

func (blues) Colors() []color.Color {
	cs := make([]color.Color, 256)
	for i := range cs {
		t := float64(i) / 255
		mix := func(a, b float64) uint8 { return uint8(math.Round(a + (b-a)*t)) }
		cs[i] = color.RGBA{R: mix(247, 8), G: mix(251, 48), B: mix(255, 107), A: 255}
	}
	return cs
}

// plotAllClasses is the most classes the confusion plot labels one by
// one, with the count in every cell; for more it labels every few classes
// by index and leaves the cells to their colour.
const plotAllClasses = 20

// maxTickName is the most characters of a class name a tick label shows.
const maxTickName = 14

// plotConfusion draws the confusion matrix m as a heat map, true classes
// down and predicted classes across, under a title with the count of
// correct predictions. Up to plotAllClasses classes every row and column
// is labelled, with names (nil for digits, labelled by index), and every
// cell shows its count; more classes are labelled by index every few rows.
func plotConfusion(w io.Writer, m *confusionMatrix, names []string, when string) error {
	n := m.n
	g := confusionGrid{m}
	correct, total := m.correct(), m.total()
	hm := plotter.NewHeatMap(g, blues{})
	hm.Min, hm.Max = 0, math.Log1p(float64(max(m.maxCount(), 1)))

	p := plot.New()
	p.Title.Text = fmt.Sprintf("Test confusion matrix, %s: %d/%d correct (%s)", when, correct, total, pct(float64(correct)/float64(max(total, 1))))
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	ticks := classTicks(n, names)
	p.X.Tick.Marker = ticks
	p.Y.Tick.Marker = ticks
	tickSize := vg.Points(12)
	if n > 10 {
		tickSize = vg.Points(10)
	}
	p.X.Tick.Label.Font.Size = tickSize
	p.Y.Tick.Label.Font.Size = tickSize
	if n <= plotAllClasses && names != nil {
		// Names run down from the x axis, so that long ones do not
		// overlap.
		p.X.Tick.Label.Rotation = math.Pi / 2
		p.X.Tick.Label.XAlign = text.XRight
		p.X.Tick.Label.YAlign = text.YCenter
	}
	p.Add(hm)
	if n <= plotAllClasses {
		lb, err := cellCounts(m, g, hm.Max)
		if err != nil {
			return err
		}
		p.Add(lb)
	}

	// The canvas grows with the classes, from 6.5x6 inches for ten to
	// 8x7.5 for twenty and more.
	grow := vg.Length(min(max(n-10, 0), 10)) * 0.15 * vg.Inch
	c := vgimg.NewWith(vgimg.UseWH(6.5*vg.Inch+grow, 6*vg.Inch+grow), vgimg.UseDPI(plotDPI))
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, vg.Inch/8, -vg.Inch/4, vg.Inch/8, -vg.Inch/8))
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

// classTicks are the ticks of the confusion plot's axes for n classes:
// up to plotAllClasses, every class labelled with its name (or index, where
// names is nil); for more, an index label every 2, 5, 10, 20, 50 or 100
// classes, at most ten or so, with unlabelled ticks between up to 50
// classes.
func classTicks(n int, names []string) plot.ConstantTicks {
	var ticks []plot.Tick
	if n <= plotAllClasses {
		for k := range n {
			label := strconv.Itoa(k)
			if names != nil {
				label = shortName(names[k])
			}
			ticks = append(ticks, plot.Tick{Value: float64(k), Label: label})
		}
		return ticks
	}
	step := 100
	for _, s := range []int{2, 5, 10, 20, 50} {
		if (n-1)/s < 12 {
			step = s
			break
		}
	}
	for k := range n {
		switch {
		case k%step == 0:
			ticks = append(ticks, plot.Tick{Value: float64(k), Label: strconv.Itoa(k)})
		case n <= 50:
			ticks = append(ticks, plot.Tick{Value: float64(k)})
		}
	}
	return ticks
}

// shortName is a class name cut to maxTickName characters for a tick label.
func shortName(s string) string {
	r := []rune(s)
	if len(r) <= maxTickName {
		return s
	}
	return string(r[:maxTickName-1]) + "…"
}

// cellCounts labels every cell of the confusion plot with its count, in
// a font that shrinks as the cells do, white on the dark cells.
func cellCounts(m *confusionMatrix, g confusionGrid, zmax float64) (*plotter.Labels, error) {
	n := m.n
	var xys plotter.XYs
	var labels []string
	for t := range n {
		for pr := range n {
			xys = append(xys, plotter.XY{X: float64(pr), Y: float64(t)})
			labels = append(labels, strconv.Itoa(m.at(t, pr)))
		}
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, fmt.Errorf("plot confusion: %w", err)
	}
	size := vg.Points(min(10, 140/float64(n)))
	for i := range lb.TextStyle {
		t, pr := i/n, i%n
		st := &lb.TextStyle[i]
		st.XAlign, st.YAlign = text.XCenter, text.YCenter
		st.Font.Size = size
		switch {
		case m.at(t, pr) == 0:
			st.Color = color.Gray{Y: 190}
		case g.Z(pr, t) > 0.6*zmax:
			st.Color = color.White
		default:
			st.Color = color.Black
		}
	}
	return lb, nil
}
