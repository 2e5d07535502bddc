package data

import (
	"image"
	"image/color"
)

// imageResizer turns decoded images into C×H×W float32 values in [0, 1] by
// area averaging. It keeps its row buffers from one image to the next, and
// holds at most two rows, so a tall image costs no more than a short one.
type imageResizer struct {
	row  []float32 // C planes of one source row
	hrow []float32 // C planes of that row resized to the output width
	pal  [][3]float32
	// The weights across: output column o is the sum over k of
	// across[start[o]+k] * row[lo[o]+k], k < start[o+1]-start[o].
	across    []float32
	lo, start []int
}

// Luma weights of ITU-R 601, those of Pillow's convert("L").
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// areaSpan returns the first and one past the last index j of an axis of m
// cells whose cell j overlaps cell i of an axis of n cells covering the
// same length.
func areaSpan(i, n, m int) (lo, hi int) {
	// Cell i covers [i*m, (i+1)*m) and cell j covers [j*n, (j+1)*n) in
	// units of 1/(n*m) of the length; int64 keeps the products exact on
	// 32-bit platforms.
	i64, n64, m64 := int64(i), int64(n), int64(m)
	return int(i64 * m64 / n64), int(((i64+1)*m64 + n64 - 1) / n64)
}

// areaWeight is the share of output cell o (of m) that input cell i (of n)
// covers: the length of their overlap over the output cell's length. The
// weights of one output cell sum to 1 exactly before rounding.
func areaWeight(o, m, i, n int) float32 {
	o64, m64, i64, n64 := int64(o), int64(m), int64(i), int64(n)
	overlap := min((o64+1)*n64, (i64+1)*m64) - max(o64*n64, i64*m64)
	return float32(float64(overlap) / float64(n64))
}

// resize writes img resized to h×w with c channels (1: luma, 3: RGB) to
// dst, c*h*w values, row by row: each source row is converted, resized
// across, and added with its weight into the output rows it overlaps.
func (r *imageResizer) resize(dst []float32, img image.Image, c, h, w int) {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	r.row = grow(r.row, c*sw)
	r.hrow = grow(r.hrow, c*w)
	if p, ok := img.(*image.Paletted); ok {
		r.pal = r.pal[:0]
		for _, col := range p.Palette {
			n := color.NRGBA64Model.Convert(col).(color.NRGBA64)
			r.pal = append(r.pal, [3]float32{float32(n.R) / 0xffff, float32(n.G) / 0xffff, float32(n.B) / 0xffff})
		}
	}
	r.weighAcross(sw, w)
	clear(dst)
	for sy := range sh {
		r.readRow(img, b.Min.Y+sy, c, b.Min.X, sw)
		for ch := range c {
			r.resizeLine(r.hrow[ch*w:(ch+1)*w], r.row[ch*sw:(ch+1)*sw])
		}
		lo, hi := areaSpan(sy, sh, h)
		for oy := lo; oy < min(hi, h); oy++ {
			wt := areaWeight(oy, h, sy, sh)
			if wt == 0 {
				continue
			}
			for ch := range c {
				out := dst[(ch*h+oy)*w : (ch*h+oy+1)*w]
				for x, v := range r.hrow[ch*w : (ch+1)*w] {
					out[x] += wt * v
				}
			}
		}
	}
	for i, v := range dst {
		dst[i] = min(1, max(0, v))
	}
}

// weighAcross fills the weights that take a row of n values to m.
func (r *imageResizer) weighAcross(n, m int) {
	r.lo, r.start, r.across = r.lo[:0], r.start[:0], r.across[:0]
	for o := range m {
		lo, hi := areaSpan(o, m, n)
		r.lo = append(r.lo, lo)
		r.start = append(r.start, len(r.across))
		for i := lo; i < min(hi, n); i++ {
			r.across = append(r.across, areaWeight(o, m, i, n))
		}
	}
	r.start = append(r.start, len(r.across))
}

// resizeLine area-averages in onto out with the weights of weighAcross.
func (r *imageResizer) resizeLine(out, in []float32) {
	if len(in) == len(out) {
		copy(out, in)
		return
	}
	for o := range out {
		wts := r.across[r.start[o]:r.start[o+1]]
		src := in[r.lo[o]:][:len(wts)]
		var s float32
		for k, wt := range wts {
			s += wt * src[k]
		}
		out[o] = s
	}
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// readRow converts row y of img, from column x0 on, sw pixels, into r.row:
// c planes of sw values in [0, 1], colour without alpha (Pillow's convert
// drops it) or its luma.
func (r *imageResizer) readRow(img image.Image, y, c, x0, sw int) {
	row := r.row
	switch m := img.(type) {
	case *image.Gray:
		pix := m.Pix[m.PixOffset(x0, y):][:sw]
		for x, p := range pix {
			row[x] = float32(p) / 0xff
		}
		r.spread(c, sw)
	case *image.Gray16:
		pix := m.Pix[m.PixOffset(x0, y):][:2*sw]
		for x := range sw {
			row[x] = float32(uint16(pix[2*x])<<8|uint16(pix[2*x+1])) / 0xffff
		}
		r.spread(c, sw)
	case *image.NRGBA:
		pix := m.Pix[m.PixOffset(x0, y):][:4*sw]
		for x := range sw {
			p := pix[4*x : 4*x+3 : 4*x+3]
			r.put(c, sw, x, float32(p[0])/0xff, float32(p[1])/0xff, float32(p[2])/0xff)
		}
	case *image.RGBA:
		pix := m.Pix[m.PixOffset(x0, y):][:4*sw]
		for x := range sw {
			p := pix[4*x : 4*x+4 : 4*x+4]
			switch a := float32(p[3]); a {
			case 0xff:
				r.put(c, sw, x, float32(p[0])/0xff, float32(p[1])/0xff, float32(p[2])/0xff)
			case 0:
				r.put(c, sw, x, 0, 0, 0)
			default:
				r.put(c, sw, x, min(1, float32(p[0])/a), min(1, float32(p[1])/a), min(1, float32(p[2])/a))
			}
		}
	case *image.YCbCr:
		for x := range sw {
			yi, ci := m.YOffset(x0+x, y), m.COffset(x0+x, y)
			red, green, blue := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			r.put(c, sw, x, float32(red)/0xff, float32(green)/0xff, float32(blue)/0xff)
		}
	case *image.Paletted:
		pix := m.Pix[m.PixOffset(x0, y):][:sw]
		for x, i := range pix {
			var p [3]float32 // an index past the palette is black
			if int(i) < len(r.pal) {
				p = r.pal[i]
			}
			r.put(c, sw, x, p[0], p[1], p[2])
		}
	default:
		for x := range sw {
			n := color.NRGBA64Model.Convert(img.At(x0+x, y)).(color.NRGBA64)
			r.put(c, sw, x, float32(n.R)/0xffff, float32(n.G)/0xffff, float32(n.B)/0xffff)
		}
	}
}

// put stores the colour of pixel x of the row, or its luma when c is 1.
func (r *imageResizer) put(c, sw, x int, red, green, blue float32) {
	if c == 1 {
		r.row[x] = lumaR*red + lumaG*green + lumaB*blue
		return
	}
	r.row[x], r.row[sw+x], r.row[2*sw+x] = red, green, blue
}

// spread copies the gray first plane of the row to the other two when c is
// 3.
func (r *imageResizer) spread(c, sw int) {
	if c == 3 {
		copy(r.row[sw:2*sw], r.row[:sw])
		copy(r.row[2*sw:3*sw], r.row[:sw])
	}
}
