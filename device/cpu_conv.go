package device

var _ Im2col = (*CPU)(nil)

// cpuConvTask is one Im2col or Col2im call split across the CPU's threads:
// im2col over the rows (c, i, j, n) of the column matrix, col2im over the
// image planes (n, c), so that no two threads write one value and the sums
// of col2im run in a fixed order.
type cpuConvTask struct {
	col, x []float32
	g      ConvGeom
	fill   float32
	back   bool // col2im
	acc    bool
}

func (t *cpuConvTask) run(lo, hi int) {
	if t.back {
		for p := lo; p < hi; p++ {
			cpuCol2imPlane(t.x, t.col, &t.g, p, t.acc)
		}
		return
	}
	for r := lo; r < hi; r++ {
		cpuIm2colRow(t.col, t.x, &t.g, r, t.fill)
	}
}

// Im2col writes the column matrix of x into col (see Im2col).
func (c *CPU) Im2col(col, x Buffer, g ConvGeom, fill float32) error {
	return c.convCols("im2col", col, x, g, fill, false, false)
}

// Col2im adds col back onto the pixels of x it was read from (see Im2col).
func (c *CPU) Col2im(x, col Buffer, g ConvGeom, accumulate bool) error {
	return c.convCols("col2im", col, x, g, 0, true, accumulate)
}

func (c *CPU) convCols(op string, col, x Buffer, g ConvGeom, fill float32, back, acc bool) error {
	if err := CheckIm2col(op, col, x, g); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: op}
	cs, err := cpuData(name, "col", col, g.ColRows()*g.ColCols())
	if err != nil {
		return err
	}
	xs, err := cpuData(name, "x", x, g.N*g.C*g.H*g.W)
	if err != nil {
		return err
	}
	t, ok := c.colTasks.Get().(*cpuConvTask)
	if !ok {
		t = new(cpuConvTask)
	}
	defer c.colTasks.Put(t)
	*t = cpuConvTask{col: cs, x: xs, g: g, fill: fill, back: back, acc: acc}
	n := g.ColRows() * g.N
	if back {
		n = g.N * g.C
	}
	work := len(cs)
	if c.serial(n, work) {
		t.run(0, n)
		return nil
	}
	c.run(n, t)
	return nil
}

// cpuValid returns the range [lo, hi) of output positions o < out whose
// input position o·s + k·d - p lies in [0, n).
func cpuValid(out, n, s, k, d, p int) (lo, hi int) {
	off := k*d - p // input position of output 0
	lo = 0
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	hi = out
	if last := n - 1 - off; last < 0 {
		hi = 0
	} else if h := last/s + 1; h < hi {
		hi = h
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// cpuIm2colRow writes row r = ((c·KH + i)·KW + j)·N + n of the column matrix.
func cpuIm2colRow(col, x []float32, g *ConvGeom, r int, fill float32) {
	oh, ow := g.OutH(), g.OutW()
	n := r % g.N
	j := (r / g.N) % g.KW
	i := (r / (g.N * g.KW)) % g.KH
	c := r / (g.N * g.KW * g.KH)
	dst := col[r*oh*ow : (r+1)*oh*ow]
	plane := x[(n*g.C+c)*g.H*g.W : (n*g.C+c+1)*g.H*g.W]
	hlo, hhi := cpuValid(oh, g.H, g.SH, i, g.DH, g.PH)
	wlo, whi := cpuValid(ow, g.W, g.SW, j, g.DW, g.PW)
	for y := range oh {
		row := dst[y*ow : (y+1)*ow]
		if y < hlo || y >= hhi {
			for k := range row {
				row[k] = fill
			}
			continue
		}
		for k := 0; k < wlo; k++ {
			row[k] = fill
		}
		for k := whi; k < ow; k++ {
			row[k] = fill
		}
		if whi <= wlo {
			continue
		}
		src := plane[(y*g.SH+i*g.DH-g.PH)*g.W:]
		base := wlo*g.SW + j*g.DW - g.PW
		if g.SW == 1 {
			copy(row[wlo:whi], src[base:base+whi-wlo])
			continue
		}
		out := row[wlo:whi]
		src = src[base : base+(len(out)-1)*g.SW+1]
		for k := range out {
			out[k] = src[k*g.SW]
		}
	}
}

// cpuCol2imPlane sums into plane p = n·C + c of x every element of the
// column matrix read from it, in the order (i, j, oh, ow).
func cpuCol2imPlane(x, col []float32, g *ConvGeom, p int, acc bool) {
	oh, ow := g.OutH(), g.OutW()
	n, c := p/g.C, p%g.C
	plane := x[p*g.H*g.W : (p+1)*g.H*g.W]
	if !acc {
		clear(plane)
	}
	for i := range g.KH {
		hlo, hhi := cpuValid(oh, g.H, g.SH, i, g.DH, g.PH)
		for j := range g.KW {
			wlo, whi := cpuValid(ow, g.W, g.SW, j, g.DW, g.PW)
			if whi <= wlo {
				continue
			}
			r := ((c*g.KH+i)*g.KW+j)*g.N + n
			src := col[r*oh*ow : (r+1)*oh*ow]
			for y := hlo; y < hhi; y++ {
				dst := plane[(y*g.SH+i*g.DH-g.PH)*g.W:]
				base := wlo*g.SW + j*g.DW - g.PW
				in := src[y*ow+wlo : y*ow+whi]
				if g.SW == 1 {
					d := dst[base : base+len(in)]
					for k, v := range in {
						d[k] += v
					}
					continue
				}
				d := dst[base : base+(len(in)-1)*g.SW+1]
				for k, v := range in {
					d[k*g.SW] += v
				}
			}
		}
	}
}

// cpuIm2colImage writes the column matrix of one image x, [C, H, W], into
// col, [C·KH·KW, oh·ow], walking (c, i, j) directly so that no row index
// is divided apart, with the valid ranges of each kernel offset computed
// once.
func cpuIm2colImage(col, x []float32, g *ConvGeom, oh, ow int, fill float32) {
	l := oh * ow
	hw := g.H * g.W
	r := 0
	for c := range g.C {
		plane := x[c*hw : (c+1)*hw]
		for i := range g.KH {
			hlo, hhi := cpuValid(oh, g.H, g.SH, i, g.DH, g.PH)
			for j := range g.KW {
				wlo, whi := cpuValid(ow, g.W, g.SW, j, g.DW, g.PW)
				dst := col[r*l : (r+1)*l]
				r++
				if whi <= wlo || hhi <= hlo {
					for k := range dst {
						dst[k] = fill
					}
					continue
				}
				for k := range dst[:hlo*ow] {
					dst[k] = fill
				}
				for k := hhi * ow; k < l; k++ {
					dst[k] = fill
				}
				n := whi - wlo
				base := wlo*g.SW + j*g.DW - g.PW
				for y := hlo; y < hhi; y++ {
					for k := y * ow; k < y*ow+wlo; k++ {
						dst[k] = fill
					}
					for k := y*ow + whi; k < (y+1)*ow; k++ {
						dst[k] = fill
					}
					row := dst[y*ow+wlo : y*ow+whi]
					src := plane[(y*g.SH+i*g.DH-g.PH)*g.W+base:]
					if g.SW == 1 {
						copy(row, src[:n])
						continue
					}
					src = src[:(n-1)*g.SW+1]
					for k := range row {
						row[k] = src[k*g.SW]
					}
				}
			}
		}
	}
}
