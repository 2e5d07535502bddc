// Command asm generates the amd64 microkernels of package sgemm with avo.
//
// Run it through go generate in the parent directory:
//
//	go run -C asm . -out ../kernel_amd64.s -stubs ../kernel_amd64.go -pkg sgemm
//
// Every microkernel has the signature
//
//	func(k int, a, b, c *float32, ldc int, beta float32)
//
// and computes the mr×nr tile C = A·B + beta·C, where a holds k packed columns of
// mr values (alpha already applied), b holds k packed rows of nr values, and c
// points at the tile's first element with rows ldc floats apart. beta == 0 writes
// C without reading it, so NaNs in C do not leak into the result.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

const signature = "func(k int, a, b, c *float32, ldc int, beta float32)"

func main() {
	ConstraintExpr("amd64,!purego")
	genKernel(avx512)
	genKernel(avx2)
	genTranspose4()
	genCopyScaled(12)
	genCopyScaled(6)
	Generate()
}

// isa describes a vector instruction set for the microkernel generator.
type isa struct {
	name   string
	mr     int  // rows of the tile, one broadcast each
	vecs   int  // vectors per tile row
	width  int  // float32 lanes per vector
	unroll int  // k steps per loop iteration
	bcst   bool // use embedded-broadcast FMAs instead of a broadcast register
	regs   func(i int) VecPhysical
	zero   func(r VecPhysical)
}

var avx512 = isa{
	name: "kernelAVX512", mr: 12, vecs: 2, width: 16, unroll: 4, bcst: true,
	regs: func(i int) VecPhysical { return zmm(i) },
	zero: func(r VecPhysical) { VPXORD(r, r, r) },
}

var avx2 = isa{
	name: "kernelAVX2", mr: 6, vecs: 2, width: 8, unroll: 4,
	regs: func(i int) VecPhysical { return ymm(i) },
	zero: func(r VecPhysical) { VXORPS(r, r, r) },
}

func zmm(i int) VecPhysical {
	return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
		Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}[i]
}

func ymm(i int) VecPhysical {
	return []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}[i]
}

// genKernel emits one microkernel. Registers: the mr·vecs accumulators come first,
// then vecs registers for a row of B, then the broadcast register (unless the FMAs
// broadcast from memory), the last one also holding beta at the end.
func genKernel(s isa) {
	nr := s.vecs * s.width
	TEXT(s.name, NOSPLIT, signature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %dx%d tile: C = A·B + beta·C (C is not read when beta == 0).", s.name, s.mr, nr))

	nacc := s.mr * s.vecs
	acc := func(i, v int) VecPhysical { return s.regs(i*s.vecs + v) }
	brow := func(v int) VecPhysical { return s.regs(nacc + v) }
	bcast := s.regs(nacc + s.vecs)

	k, a, b := RCX, RSI, RDI
	Load(Param("k"), k)
	Load(Param("a"), a)
	Load(Param("b"), b)

	Comment("Prefetch the C tile: its rows are far apart and likely not cached.")
	c, ldc := RDX, RBX
	Load(Param("c"), c)
	Load(Param("ldc"), ldc)
	SHLQ(Imm(2), ldc)
	cp := RAX
	MOVQ(c, cp)
	for i := 0; i < s.mr; i++ {
		for off := 0; off < 4*nr; off += 64 {
			PREFETCHT0(Mem{Base: cp, Disp: off})
		}
		// The last line of the row, which may start a new cache line.
		PREFETCHT0(Mem{Base: cp, Disp: 4*nr - 4})
		if i < s.mr-1 {
			ADDQ(ldc, cp)
		}
	}

	for i := 0; i < nacc; i++ {
		s.zero(s.regs(i))
	}

	step := func(u int) {
		for v := 0; v < s.vecs; v++ {
			VMOVUPS(Mem{Base: b, Disp: 4 * (u*nr + v*s.width)}, brow(v))
		}
		for i := 0; i < s.mr; i++ {
			am := Mem{Base: a, Disp: 4 * (u*s.mr + i)}
			if s.bcst {
				for v := 0; v < s.vecs; v++ {
					VFMADD231PS_BCST(am, brow(v), acc(i, v))
				}
				continue
			}
			VBROADCASTSS(am, bcast)
			for v := 0; v < s.vecs; v++ {
				VFMADD231PS(brow(v), bcast, acc(i, v))
			}
		}
	}

	Comment("Main loop: unrolled k steps.")
	Label(s.name + "_loop")
	CMPQ(k, Imm(uint64(s.unroll)))
	JL(LabelRef(s.name + "_tail"))
	for u := 0; u < s.unroll; u++ {
		step(u)
	}
	ADDQ(U32(4*s.unroll*s.mr), a)
	ADDQ(U32(4*s.unroll*nr), b)
	SUBQ(Imm(uint64(s.unroll)), k)
	JMP(LabelRef(s.name + "_loop"))

	Comment("Remaining k steps one at a time.")
	Label(s.name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(s.name + "_store"))
	step(0)
	ADDQ(U32(4*s.mr), a)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JMP(LabelRef(s.name + "_tail"))

	Label(s.name + "_store")
	beta, err := Param("beta").Resolve()
	if err != nil {
		panic(err)
	}
	bits := GP32()
	MOVL(beta.Addr, bits)
	SHLL(Imm(1), bits) // drop the sign: -0 counts as zero
	JNZ(LabelRef(s.name + "_accumulate"))

	Comment("beta == 0: overwrite C.")
	for i := 0; i < s.mr; i++ {
		for v := 0; v < s.vecs; v++ {
			VMOVUPS(acc(i, v), Mem{Base: c, Disp: 4 * v * s.width})
		}
		if i < s.mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()

	Comment("C = A·B + beta·C.")
	Label(s.name + "_accumulate")
	VBROADCASTSS(beta.Addr, bcast)
	for i := 0; i < s.mr; i++ {
		for v := 0; v < s.vecs; v++ {
			m := Mem{Base: c, Disp: 4 * v * s.width}
			VFMADD231PS(m, bcast, acc(i, v))
			VMOVUPS(acc(i, v), m)
		}
		if i < s.mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// genTranspose4 emits transpose4, which packs 4 rows of a matrix into columns:
//
//	dst[c*ldd+r] = alpha * src[r*lds+c]  for r < 4, c < 8*n8.
//
// Each step loads a 4×8 block, transposes it with unpack and shuffle, and
// writes eight 4-float columns. It uses AVX only, so every amd64 kernel can
// use it.
func genTranspose4() {
	TEXT("transpose4", NOSPLIT, "func(n8 int, src *float32, lds int, dst *float32, ldd int, alpha float32)")
	Pragma("noescape")
	Doc("transpose4 sets dst[c*ldd+r] = alpha*src[r*lds+c] for r < 4 and c < 8*n8.")
	n, src, lds, dst, ldd := RCX, RSI, R8, RDI, R9
	Load(Param("n8"), n)
	Load(Param("src"), src)
	Load(Param("lds"), lds)
	Load(Param("dst"), dst)
	Load(Param("ldd"), ldd)
	SHLQ(Imm(2), lds)
	SHLQ(Imm(2), ldd)
	lds3, ldd3, dst4 := R10, R11, R12
	LEAQ(Mem{Base: lds, Index: lds, Scale: 2}, lds3)
	LEAQ(Mem{Base: ldd, Index: ldd, Scale: 2}, ldd3)
	alpha, err := Param("alpha").Resolve()
	if err != nil {
		panic(err)
	}
	VBROADCASTSS(alpha.Addr, Y15)

	Label("transpose4_loop")
	VMOVUPS(Mem{Base: src}, Y0)
	VMOVUPS(Mem{Base: src, Index: lds, Scale: 1}, Y1)
	VMOVUPS(Mem{Base: src, Index: lds, Scale: 2}, Y2)
	VMOVUPS(Mem{Base: src, Index: lds3, Scale: 1}, Y3)
	VUNPCKLPS(Y1, Y0, Y4) // r0c0 r1c0 r0c1 r1c1 | columns 4, 5
	VUNPCKHPS(Y1, Y0, Y5) // columns 2, 3 | 6, 7
	VUNPCKLPS(Y3, Y2, Y6)
	VUNPCKHPS(Y3, Y2, Y7)
	VSHUFPS(Imm(0x44), Y6, Y4, Y0) // column 0 | column 4
	VSHUFPS(Imm(0xee), Y6, Y4, Y1) // column 1 | column 5
	VSHUFPS(Imm(0x44), Y7, Y5, Y2) // column 2 | column 6
	VSHUFPS(Imm(0xee), Y7, Y5, Y3) // column 3 | column 7
	for _, y := range []VecPhysical{Y0, Y1, Y2, Y3} {
		VMULPS(Y15, y, y)
	}
	LEAQ(Mem{Base: dst, Index: ldd, Scale: 4}, dst4)
	VMOVUPS(X0, Mem{Base: dst})
	VMOVUPS(X1, Mem{Base: dst, Index: ldd, Scale: 1})
	VMOVUPS(X2, Mem{Base: dst, Index: ldd, Scale: 2})
	VMOVUPS(X3, Mem{Base: dst, Index: ldd3, Scale: 1})
	VEXTRACTF128(Imm(1), Y0, Mem{Base: dst4})
	VEXTRACTF128(Imm(1), Y1, Mem{Base: dst4, Index: ldd, Scale: 1})
	VEXTRACTF128(Imm(1), Y2, Mem{Base: dst4, Index: ldd, Scale: 2})
	VEXTRACTF128(Imm(1), Y3, Mem{Base: dst4, Index: ldd3, Scale: 1})
	ADDQ(Imm(32), src)
	LEAQ(Mem{Base: dst4, Index: ldd, Scale: 4}, dst)
	DECQ(n)
	JNZ(LabelRef("transpose4_loop"))
	VZEROUPPER()
	RET()
}

// genCopyScaled emits copyScaled<w>, which copies k rows of w floats into a
// dense block, scaling them:
//
//	dst[l*w+c] = alpha * src[l*lds+c]  for l < k, c < w.
func genCopyScaled(w int) {
	name := fmt.Sprintf("copyScaled%d", w)
	TEXT(name, NOSPLIT, "func(k int, src *float32, lds int, dst *float32, alpha float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[l*%d+c] = alpha*src[l*lds+c] for l < k and c < %d.", name, w, w))
	n, src, lds, dst := RCX, RSI, R8, RDI
	Load(Param("k"), n)
	Load(Param("src"), src)
	Load(Param("lds"), lds)
	Load(Param("dst"), dst)
	SHLQ(Imm(2), lds)
	alpha, err := Param("alpha").Resolve()
	if err != nil {
		panic(err)
	}
	VBROADCASTSS(alpha.Addr, Y15)
	Label(name + "_loop")
	for off := 0; off < w; {
		m, d := Mem{Base: src, Disp: 4 * off}, Mem{Base: dst, Disp: 4 * off}
		switch {
		case w-off >= 8:
			VMULPS(m, Y15, Y0)
			VMOVUPS(Y0, d)
			off += 8
		case w-off >= 4:
			VMULPS(m, X15, X0)
			VMOVUPS(X0, d)
			off += 4
		default:
			VMOVSS(m, X0)
			VMULSS(X15, X0, X0)
			VMOVSS(X0, d)
			off++
		}
	}
	ADDQ(lds, src)
	ADDQ(U32(4*w), dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}
