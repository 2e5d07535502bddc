// Command asm generates the amd64 elementwise kernels of package device with
// avo. Run it through go generate in the parent directory:
//
//	go run -C asm . -out ../cpu_amd64.s -stubs ../cpu_kernels_amd64.go -pkg device
//
// Every kernel works on n float32s, where n is a multiple of 8, with AVX2 and
// FMA; the Go wrappers in cpu_simd_amd64.go check the slices and handle the
// last n%8 values. The loops run 32 values (four vectors) per iteration while
// they can, then 8.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!purego")
	genBiasAct("biasReluAVX", true)
	genBiasAct("biasAddAVX", false)
	genRelu()
	genReluGrad("reluGradBiasAVX", true)
	genReluGrad("reluGradAVX", false)
	genSGD()
	genBNSums()
	genBNGradSums()
	genBNGradSumsRelu()
	genBNScale("bnScaleAVX", false)
	genBNScale("bnScaleReluAVX", true)
	genBNGrad()
	genBNGradRelu()
	Generate()
}

// loop emits a loop over n values (a multiple of 8) held in register n, in
// steps of four vectors and then one: body(v, off) handles vector v of the
// step at byte offset off from the pointers, and advance moves the pointers
// on by the given number of bytes.
func loop(name string, n GPPhysical, body func(v, off int), advance func(bytes int)) {
	Label(name + "_by4")
	CMPQ(n, Imm(32))
	JL(LabelRef(name + "_by1"))
	for v := 0; v < 4; v++ {
		body(v, 32*v)
	}
	advance(128)
	SUBQ(Imm(32), n)
	JMP(LabelRef(name + "_by4"))
	Label(name + "_by1")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body(0, 0)
	advance(32)
	SUBQ(Imm(8), n)
	JMP(LabelRef(name + "_by1"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func addAll(bytes int, ptrs ...GPPhysical) {
	for _, p := range ptrs {
		ADDQ(U32(bytes), p)
	}
}

// genBiasAct emits dst[j] = x[j] + bias[j], followed by max(·, 0) when relu.
// The max keeps a NaN sum, as Go's max does.
func genBiasAct(name string, relu bool) {
	TEXT(name, NOSPLIT, "func(dst, x, bias *float32, n int)")
	Pragma("noescape")
	if relu {
		Doc(name + " sets dst[j] = max(x[j]+bias[j], 0) for j < n, a multiple of 8; a NaN sum stays NaN.")
	} else {
		Doc(name + " sets dst[j] = x[j] + bias[j] for j < n, a multiple of 8.")
	}
	dst, x, bias, n := RDI, RSI, RDX, RCX
	Load(Param("dst"), dst)
	Load(Param("x"), x)
	Load(Param("bias"), bias)
	Load(Param("n"), n)
	zero := Y15
	VXORPS(zero, zero, zero)
	acc := []VecPhysical{Y0, Y1, Y2, Y3}
	loop(name, n, func(v, off int) {
		VMOVUPS(Mem{Base: x, Disp: off}, acc[v])
		VADDPS(Mem{Base: bias, Disp: off}, acc[v], acc[v])
		if relu {
			// VMAXPS returns its first Go operand when either is NaN.
			VMAXPS(acc[v], zero, acc[v])
		}
		VMOVUPS(acc[v], Mem{Base: dst, Disp: off})
	}, func(bytes int) { addAll(bytes, dst, x, bias) })
}

// genRelu emits dst[j] = max(x[j], 0) as Go's max computes it: a NaN stays
// NaN and -0 becomes +0 (VMAXPS keeps x when either is NaN or both are
// zeros; adding +0 then turns -0 into +0 and changes nothing else).
func genRelu() {
	TEXT("reluAVX", NOSPLIT, "func(dst, x *float32, n int)")
	Pragma("noescape")
	Doc("reluAVX sets dst[j] = max(x[j], 0) for j < n, a multiple of 8, as Go's max: NaN stays NaN, -0 becomes +0.")
	dst, x, n := RDI, RSI, RCX
	Load(Param("dst"), dst)
	Load(Param("x"), x)
	Load(Param("n"), n)
	zero := Y15
	VXORPS(zero, zero, zero)
	acc := []VecPhysical{Y0, Y1, Y2, Y3}
	loop("reluAVX", n, func(v, off int) {
		VMOVUPS(Mem{Base: x, Disp: off}, acc[v])
		VMAXPS(acc[v], zero, acc[v])
		VADDPS(zero, acc[v], acc[v])
		VMOVUPS(acc[v], Mem{Base: dst, Disp: off})
	}, func(bytes int) { addAll(bytes, dst, x) })
}

// genReluGrad emits dx[j] = g[j] where y[j] > 0 and 0 elsewhere (NaN
// counts as not positive), and with bias, db[j] += dx[j]. dx may be g.
func genReluGrad(name string, bias bool) {
	sig := "func(dx, y, grad *float32, n int)"
	if bias {
		sig = "func(dx, db, y, grad *float32, n int)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	if bias {
		Doc(name+" sets dx[j] = grad[j] where y[j] > 0, else 0, and adds dx[j] to db[j],",
			"for j < n, a multiple of 8.")
	} else {
		Doc(name + " sets dx[j] = grad[j] where y[j] > 0, else 0, for j < n, a multiple of 8.")
	}
	dx, db, y, g, n := RDI, R8, RSI, RDX, RCX
	Load(Param("dx"), dx)
	if bias {
		Load(Param("db"), db)
	}
	Load(Param("y"), y)
	Load(Param("grad"), g)
	Load(Param("n"), n)
	zero := Y15
	VXORPS(zero, zero, zero)
	val := []VecPhysical{Y0, Y1, Y2, Y3}
	mask := []VecPhysical{Y4, Y5, Y6, Y7}
	ptrs := []GPPhysical{dx, y, g}
	if bias {
		ptrs = append(ptrs, db)
	}
	loop(name, n, func(v, off int) {
		// mask = 0 < y, ordered and quiet (predicate 0x11, LT_OQ).
		VCMPPS(Imm(0x11), Mem{Base: y, Disp: off}, zero, mask[v])
		VANDPS(Mem{Base: g, Disp: off}, mask[v], val[v])
		VMOVUPS(val[v], Mem{Base: dx, Disp: off})
		if bias {
			VADDPS(Mem{Base: db, Disp: off}, val[v], val[v])
			VMOVUPS(val[v], Mem{Base: db, Disp: off})
		}
	}, func(bytes int) { addAll(bytes, ptrs...) })
}

// genSGD emits one step of SGD with momentum, after the first step and
// without Nesterov momentum:
//
//	d = g + wd·p;  buf = mom·buf + damp·d;  p = p - lr·buf
func genSGD() {
	TEXT("sgdMomentumAVX", NOSPLIT, "func(p, grad, buf *float32, n int, lr, mom, damp, wd float32)")
	Pragma("noescape")
	Doc("sgdMomentumAVX sets d = grad + wd*p, buf = mom*buf + damp*d and p = p - lr*buf",
		"for the first n values, a multiple of 8.")
	p, g, buf, n := RDI, RSI, RDX, RCX
	Load(Param("p"), p)
	Load(Param("grad"), g)
	Load(Param("buf"), buf)
	Load(Param("n"), n)
	nlr, mom, damp, wd := Y12, Y13, Y14, Y15
	VBROADCASTSS(resolve("lr").Addr, nlr)
	VXORPS(Y0, Y0, Y0)
	VSUBPS(nlr, Y0, nlr) // -lr
	VBROADCASTSS(resolve("mom").Addr, mom)
	VBROADCASTSS(resolve("damp").Addr, damp)
	VBROADCASTSS(resolve("wd").Addr, wd)
	pv := []VecPhysical{Y0, Y1, Y2, Y3}
	dv := []VecPhysical{Y4, Y5, Y6, Y7}
	bv := []VecPhysical{Y8, Y9, Y10, Y11}
	loop("sgdMomentumAVX", n, func(v, off int) {
		VMOVUPS(Mem{Base: p, Disp: off}, pv[v])
		VMOVUPS(Mem{Base: g, Disp: off}, dv[v])
		VFMADD231PS(pv[v], wd, dv[v]) // d = g + wd*p
		VMULPS(Mem{Base: buf, Disp: off}, mom, bv[v])
		VFMADD231PS(dv[v], damp, bv[v]) // buf = mom*buf + damp*d
		VMOVUPS(bv[v], Mem{Base: buf, Disp: off})
		VFMADD231PS(bv[v], nlr, pv[v]) // p = p - lr*buf
		VMOVUPS(pv[v], Mem{Base: p, Disp: off})
	}, func(bytes int) { addAll(bytes, p, g, buf) })
}

func resolve(param string) *gotypes.Basic {
	b, err := Param(param).Resolve()
	if err != nil {
		panic(err)
	}
	return b
}

// accumulate emits a loop over n values (a multiple of 8) that adds
// body's two vectors per input vector into 4 pairs of accumulators, then
// adds the pairs together and into acc[0:8] and acc[8:16].
func accumulate(name string, n GPPhysical, acc GPPhysical, body func(v, off int, a, b VecPhysical), advance func(bytes int)) {
	as := []VecPhysical{Y0, Y1, Y2, Y3}
	bs := []VecPhysical{Y4, Y5, Y6, Y7}
	for v := range 4 {
		VXORPS(as[v], as[v], as[v])
		VXORPS(bs[v], bs[v], bs[v])
	}
	Label(name + "_by4")
	CMPQ(n, Imm(32))
	JL(LabelRef(name + "_by1"))
	for v := range 4 {
		body(v, 32*v, as[v], bs[v])
	}
	advance(128)
	SUBQ(Imm(32), n)
	JMP(LabelRef(name + "_by4"))
	Label(name + "_by1")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body(0, 0, as[0], bs[0])
	advance(32)
	SUBQ(Imm(8), n)
	JMP(LabelRef(name + "_by1"))
	Label(name + "_done")
	VADDPS(as[1], as[0], as[0])
	VADDPS(as[3], as[2], as[2])
	VADDPS(as[2], as[0], as[0])
	VADDPS(bs[1], bs[0], bs[0])
	VADDPS(bs[3], bs[2], bs[2])
	VADDPS(bs[2], bs[0], bs[0])
	VADDPS(Mem{Base: acc}, as[0], as[0])
	VMOVUPS(as[0], Mem{Base: acc})
	VADDPS(Mem{Base: acc, Disp: 32}, bs[0], bs[0])
	VMOVUPS(bs[0], Mem{Base: acc, Disp: 32})
	VZEROUPPER()
	RET()
}

// genBNSums emits the batch norm statistics of a segment: d = x - shift,
// acc[0:8] += d and acc[8:16] += d*d, lane by lane.
func genBNSums() {
	TEXT("bnSumsAVX", NOSPLIT, "func(acc, x *float32, n int, shift float32)")
	Pragma("noescape")
	Doc("bnSumsAVX adds x[j]-shift into acc[j%8] and its square into acc[8+j%8] for j < n, a multiple of 8.")
	acc, x, n := RDI, RSI, RCX
	Load(Param("acc"), acc)
	Load(Param("x"), x)
	Load(Param("n"), n)
	shift := Y15
	VBROADCASTSS(resolve("shift").Addr, shift)
	d := []VecPhysical{Y8, Y9, Y10, Y11}
	accumulate("bnSumsAVX", n, acc, func(v, off int, a, b VecPhysical) {
		VMOVUPS(Mem{Base: x, Disp: off}, d[v])
		VSUBPS(shift, d[v], d[v])
		VADDPS(d[v], a, a)
		VFMADD231PS(d[v], d[v], b)
	}, func(bytes int) { addAll(bytes, x) })
}

// genBNGradSums emits the sums of the batch norm backward pass over a
// segment: acc[0:8] += g and acc[8:16] += g*(x - mean), lane by lane.
func genBNGradSums() {
	TEXT("bnGradSumsAVX", NOSPLIT, "func(acc, grad, x *float32, n int, mean float32)")
	Pragma("noescape")
	Doc("bnGradSumsAVX adds grad[j] into acc[j%8] and grad[j]*(x[j]-mean) into acc[8+j%8] for j < n, a multiple of 8.")
	acc, g, x, n := RDI, RSI, RDX, RCX
	Load(Param("acc"), acc)
	Load(Param("grad"), g)
	Load(Param("x"), x)
	Load(Param("n"), n)
	mean := Y15
	VBROADCASTSS(resolve("mean").Addr, mean)
	gv := []VecPhysical{Y8, Y9, Y10, Y11}
	dv := []VecPhysical{Y12, Y13, Y14, Y12} // Y15 holds the mean; renaming keeps Y12 reused in a step independent
	accumulate("bnGradSumsAVX", n, acc, func(v, off int, a, b VecPhysical) {
		VMOVUPS(Mem{Base: g, Disp: off}, gv[v])
		VMOVUPS(Mem{Base: x, Disp: off}, dv[v])
		VSUBPS(mean, dv[v], dv[v])
		VADDPS(gv[v], a, a)
		VFMADD231PS(gv[v], dv[v], b)
	}, func(bytes int) { addAll(bytes, g, x) })
}

// genBNScale emits y = x*scale + off, followed with relu by max(·, 0) as
// genRelu computes it (a NaN stays NaN, -0 becomes +0).
func genBNScale(name string, relu bool) {
	TEXT(name, NOSPLIT, "func(y, x *float32, n int, scale, off float32)")
	Pragma("noescape")
	if relu {
		Doc(name+" sets y[j] = max(x[j]*scale + off, 0) for j < n, a multiple of 8,",
			"as Go's max: NaN stays NaN, -0 becomes +0.")
	} else {
		Doc(name + " sets y[j] = x[j]*scale + off for j < n, a multiple of 8.")
	}
	y, x, n := RDI, RSI, RCX
	Load(Param("y"), y)
	Load(Param("x"), x)
	Load(Param("n"), n)
	scale, off, zero := Y14, Y15, Y13
	VBROADCASTSS(resolve("scale").Addr, scale)
	VBROADCASTSS(resolve("off").Addr, off)
	if relu {
		VXORPS(zero, zero, zero)
	}
	val := []VecPhysical{Y0, Y1, Y2, Y3}
	loop(name, n, func(v, o int) {
		VMOVUPS(off, val[v])
		VFMADD231PS(Mem{Base: x, Disp: o}, scale, val[v])
		if relu {
			VMAXPS(val[v], zero, val[v])
			VADDPS(zero, val[v], val[v])
		}
		VMOVUPS(val[v], Mem{Base: y, Disp: o})
	}, func(bytes int) { addAll(bytes, y, x) })
}

// genBNGrad emits the batch norm input gradient dx = a*g + bx*x + d.
func genBNGrad() {
	TEXT("bnGradAVX", NOSPLIT, "func(dx, grad, x *float32, n int, a, bx, d float32)")
	Pragma("noescape")
	Doc("bnGradAVX sets dx[j] = a*grad[j] + bx*x[j] + d for j < n, a multiple of 8. dx may be grad.")
	dx, g, x, n := RDI, RSI, RDX, RCX
	Load(Param("dx"), dx)
	Load(Param("grad"), g)
	Load(Param("x"), x)
	Load(Param("n"), n)
	a, bx, d := Y13, Y14, Y15
	VBROADCASTSS(resolve("a").Addr, a)
	VBROADCASTSS(resolve("bx").Addr, bx)
	VBROADCASTSS(resolve("d").Addr, d)
	val := []VecPhysical{Y0, Y1, Y2, Y3}
	loop("bnGradAVX", n, func(v, o int) {
		VMOVUPS(d, val[v])
		VFMADD231PS(Mem{Base: x, Disp: o}, bx, val[v])
		VFMADD231PS(Mem{Base: g, Disp: o}, a, val[v])
		VMOVUPS(val[v], Mem{Base: dx, Disp: o})
	}, func(bytes int) { addAll(bytes, dx, g, x) })
}

// genBNGradSumsRelu emits genBNGradSums with the gradient masked by the
// ReLU's output: gm = grad where y > 0, else 0 (NaN counts as not
// positive), acc[0:8] += gm and acc[8:16] += gm*(x - mean).
func genBNGradSumsRelu() {
	TEXT("bnGradSumsReluAVX", NOSPLIT, "func(acc, grad, x, y *float32, n int, mean float32)")
	Pragma("noescape")
	Doc("bnGradSumsReluAVX adds gm[j] into acc[j%8] and gm[j]*(x[j]-mean) into acc[8+j%8] for j < n, a multiple of 8,",
		"where gm[j] = grad[j] if y[j] > 0, else 0.")
	acc, g, x, y, n := RDI, RSI, RDX, R8, RCX
	Load(Param("acc"), acc)
	Load(Param("grad"), g)
	Load(Param("x"), x)
	Load(Param("y"), y)
	Load(Param("n"), n)
	mean, zero := Y15, Y14
	VBROADCASTSS(resolve("mean").Addr, mean)
	VXORPS(zero, zero, zero)
	gv := []VecPhysical{Y8, Y9, Y10, Y11}
	dv := []VecPhysical{Y12, Y13, Y12, Y13}
	accumulate("bnGradSumsReluAVX", n, acc, func(v, off int, a, b VecPhysical) {
		// mask = 0 < y, ordered and quiet (predicate 0x11, LT_OQ).
		VCMPPS(Imm(0x11), Mem{Base: y, Disp: off}, zero, gv[v])
		VANDPS(Mem{Base: g, Disp: off}, gv[v], gv[v])
		VMOVUPS(Mem{Base: x, Disp: off}, dv[v])
		VSUBPS(mean, dv[v], dv[v])
		VADDPS(gv[v], a, a)
		VFMADD231PS(gv[v], dv[v], b)
	}, func(bytes int) { addAll(bytes, g, x, y) })
}

// genBNGradRelu emits genBNGrad with the gradient masked by the ReLU's
// output: dx = a*gm + bx*x + d, gm = grad where y > 0, else 0.
func genBNGradRelu() {
	TEXT("bnGradReluAVX", NOSPLIT, "func(dx, grad, x, y *float32, n int, a, bx, d float32)")
	Pragma("noescape")
	Doc("bnGradReluAVX sets dx[j] = a*gm[j] + bx*x[j] + d for j < n, a multiple of 8, where gm[j] = grad[j]",
		"if y[j] > 0, else 0. dx may be grad or y.")
	dx, g, x, y, n := RDI, RSI, RDX, R8, RCX
	Load(Param("dx"), dx)
	Load(Param("grad"), g)
	Load(Param("x"), x)
	Load(Param("y"), y)
	Load(Param("n"), n)
	a, bx, d, zero := Y13, Y14, Y15, Y12
	VBROADCASTSS(resolve("a").Addr, a)
	VBROADCASTSS(resolve("bx").Addr, bx)
	VBROADCASTSS(resolve("d").Addr, d)
	VXORPS(zero, zero, zero)
	val := []VecPhysical{Y0, Y1, Y2, Y3}
	mask := []VecPhysical{Y4, Y5, Y6, Y7}
	loop("bnGradReluAVX", n, func(v, o int) {
		VMOVUPS(d, val[v])
		VFMADD231PS(Mem{Base: x, Disp: o}, bx, val[v])
		VCMPPS(Imm(0x11), Mem{Base: y, Disp: o}, zero, mask[v])
		VANDPS(Mem{Base: g, Disp: o}, mask[v], mask[v])
		VFMADD231PS(mask[v], a, val[v])
		VMOVUPS(val[v], Mem{Base: dx, Disp: o})
	}, func(bytes int) { addAll(bytes, dx, g, x, y) })
}
