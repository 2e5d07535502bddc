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
	genReluGrad("reluGradBiasAVX", true)
	genReluGrad("reluGradAVX", false)
	genSGD()
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
