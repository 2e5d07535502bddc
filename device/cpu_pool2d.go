package device

import "math"

var _ Pool = (*CPU)(nil)

// cpuPool is one pooling call split across the CPU's threads by image
// plane (n, c): each thread reads and writes its own planes only, so the
// sums of the backward passes run in a fixed order.
type cpuPool struct {
	g          ConvGeom
	x, y, idx  []float32
	max, back  bool
	accumulate bool
}

func (t *cpuPool) run(lo, hi int) {
	for p := lo; p < hi; p++ {
		t.plane(p)
	}
}

// plane pools plane p = n·C + c.
func (t *cpuPool) plane(p int) {
	if g := &t.g; g.PH == 0 && g.PW == 0 && g.DH == 1 && g.DW == 1 {
		t.planeInside(p)
		return
	}
	t.planeGeneric(p)
}

// planeInside pools plane p when every window lies inside the image (no
// padding, no dilation), as planeGeneric would: the same maxima and
// indices (the first NaN, else the first maximum, of a window in row
// order), and the same sums in the same order.
func (t *cpuPool) planeInside(p int) {
	g := &t.g
	oh, ow := g.OutH(), g.OutW()
	l := oh * ow
	n, c := p/g.C, p%g.C
	w, kh, kw, sh, sw := g.W, g.KH, g.KW, g.SH, g.SW
	x := t.x[p*g.H*w : (p+1)*g.H*w]
	y := t.y[p*l : (p+1)*l]
	var idx []float32
	if t.max {
		idx = t.idx[(c*g.N+n)*l : (c*g.N+n+1)*l]
		idx = idx[:len(y)]
	}
	if t.back && !t.accumulate {
		clear(x)
	}
	inv := 1 / float32(kh*kw)
	for yo := range oh {
		top := yo * sh * w
		yr := y[yo*ow : (yo+1)*ow]
		switch {
		case t.max && t.back:
			ir := idx[yo*ow : (yo+1)*ow]
			for xo, v := range yr {
				k := int(ir[xo])
				x[top+k/kw*w+xo*sw+k%kw] += v
			}
		case t.max && kh == 2 && kw == 2:
			r0, r1 := x[top:top+w], x[top+w:top+2*w]
			ir := idx[yo*ow : (yo+1)*ow]
			for xo := range yr {
				j := xo * sw
				best, at := r0[j], 0
				if v := r0[j+1]; v > best || v != v && best == best {
					best, at = v, 1
				}
				if v := r1[j]; v > best || v != v && best == best {
					best, at = v, 2
				}
				if v := r1[j+1]; v > best || v != v && best == best {
					best, at = v, 3
				}
				yr[xo], ir[xo] = best, float32(at)
			}
		case t.max:
			ir := idx[yo*ow : (yo+1)*ow]
			for xo := range yr {
				j0 := top + xo*sw
				best, at := x[j0], 0
				for i := range kh {
					row := x[j0+i*w : j0+i*w+kw]
					for j, v := range row {
						if v > best || v != v && best == best {
							best, at = v, i*kw+j
						}
					}
				}
				yr[xo], ir[xo] = best, float32(at)
			}
		case t.back:
			for xo, gv := range yr {
				v := gv * inv
				j0 := top + xo*sw
				for i := range kh {
					row := x[j0+i*w : j0+i*w+kw]
					for j := range row {
						row[j] += v
					}
				}
			}
		default:
			for xo := range yr {
				j0 := top + xo*sw
				var s float32
				for i := range kh {
					for _, v := range x[j0+i*w : j0+i*w+kw] {
						s += v
					}
				}
				yr[xo] = s * inv
			}
		}
	}
}

// planeGeneric pools plane p for any geometry.
func (t *cpuPool) planeGeneric(p int) {
	g := &t.g
	oh, ow := g.OutH(), g.OutW()
	l := oh * ow
	n, c := p/g.C, p%g.C
	x := t.x[p*g.H*g.W : (p+1)*g.H*g.W]
	y := t.y[p*l : (p+1)*l]
	var idx []float32
	if t.max {
		idx = t.idx[(c*g.N+n)*l : (c*g.N+n+1)*l]
	}
	if t.back && !t.accumulate {
		clear(x)
	}
	inv := 1 / float32(g.KH*g.KW)
	for yo := range oh {
		h0 := yo*g.SH - g.PH
		ilo, ihi := max(0, (-h0+g.DH-1)/g.DH), min(g.KH, (g.H-h0+g.DH-1)/g.DH)
		for xo := range ow {
			w0 := xo*g.SW - g.PW
			jlo, jhi := max(0, (-w0+g.DW-1)/g.DW), min(g.KW, (g.W-w0+g.DW-1)/g.DW)
			o := yo*ow + xo
			switch {
			case t.max && t.back:
				k := int(idx[o])
				x[(h0+k/g.KW*g.DH)*g.W+w0+k%g.KW*g.DW] += y[o]
			case t.max:
				best, at := float32(math.Inf(-1)), ilo*g.KW+jlo
				found := false
				for i := ilo; i < ihi && !found; i++ {
					row := x[(h0+i*g.DH)*g.W:]
					for j := jlo; j < jhi; j++ {
						v := row[w0+j*g.DW]
						if v != v {
							best, at, found = v, i*g.KW+j, true
							break
						}
						if v > best {
							best, at = v, i*g.KW+j
						}
					}
				}
				y[o], idx[o] = best, float32(at)
			case t.back:
				v := y[o] * inv
				for i := ilo; i < ihi; i++ {
					row := x[(h0+i*g.DH)*g.W:]
					for j := jlo; j < jhi; j++ {
						row[w0+j*g.DW] += v
					}
				}
			default:
				var s float32
				for i := ilo; i < ihi; i++ {
					row := x[(h0+i*g.DH)*g.W:]
					for j := jlo; j < jhi; j++ {
						s += row[w0+j*g.DW]
					}
				}
				y[o] = s * inv
			}
		}
	}
}

func (c *CPU) pool(op string, task cpuPool, x, y, idx Buffer) error {
	t, ok := c.poolTasks.Get().(*cpuPool)
	if !ok {
		t = new(cpuPool)
	}
	defer c.poolTasks.Put(t)
	*t = task
	g := t.g
	if err := CheckPool(op, g, x, y, idx); err != nil {
		return cpuErr(err)
	}
	name := cpuOp{kind: op}
	var err error
	if t.x, err = cpuData(name, "x", x, g.N*g.C*g.H*g.W); err != nil {
		return err
	}
	out := g.N * g.C * g.OutH() * g.OutW()
	if t.y, err = cpuData(name, "y", y, out); err != nil {
		return err
	}
	if idx != nil {
		if t.idx, err = cpuData(name, "idx", idx, out); err != nil {
			return err
		}
	}
	planes := g.N * g.C
	if c.serial(planes, out*g.KH*g.KW) {
		t.run(0, planes)
		return nil
	}
	c.run(planes, t)
	return nil
}

// MaxPool2d writes the max pooling of x into y and the window index of
// each maximum into idx (see Pool).
func (c *CPU) MaxPool2d(y, idx, x Buffer, g ConvGeom) error {
	return c.pool("max_pool2d", cpuPool{g: g, max: true}, x, y, idx)
}

// MaxPool2dGrad sends each gradient to its maximum (see Pool).
func (c *CPU) MaxPool2dGrad(dx, gy, idx Buffer, g ConvGeom, accumulate bool) error {
	return c.pool("max_pool2d_grad", cpuPool{g: g, max: true, back: true, accumulate: accumulate}, dx, gy, idx)
}

// AvgPool2d writes the average pooling of x into y (see Pool).
func (c *CPU) AvgPool2d(y, x Buffer, g ConvGeom) error {
	return c.pool("avg_pool2d", cpuPool{g: g}, x, y, nil)
}

// AvgPool2dGrad spreads each gradient over its window (see Pool).
func (c *CPU) AvgPool2dGrad(dx, gy Buffer, g ConvGeom, accumulate bool) error {
	return c.pool("avg_pool2d_grad", cpuPool{g: g, back: true, accumulate: accumulate}, dx, gy, nil)
}
