// Command asm generates the amd64 microkernels of package sgemm with avo.
//
// Run it through go generate in the parent directory:
//
//	go run -C asm . -out ../kernel_amd64.s -stubs ../kernel_amd64.go -pkg sgemm
//
// Every microkernel has the signature
//
//	func(k int, a, b *float32, ldb int, c *float32, ldc int, beta float32)
//
// and computes the mr×nr tile C = A·B + beta·C, where a holds k packed columns of
// mr values (alpha already applied), b holds k rows of nr values ldb floats apart
// (packed when ldb == nr), and c points at the tile's first element with rows ldc
// floats apart. beta == 0 writes C without reading it, so NaNs in C do not leak
// into the result.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

const signature = "func(k int, a, b *float32, ldb int, c *float32, ldc int, beta float32)"

func main() {
	ConstraintExpr("amd64,!purego")
	genKernel(avx512)
	genKernel(avx2)
	genRowKernel(avx512, "kernelRowAVX512", 8)
	genRowKernel(avx2, "kernelRowAVX2", 8)
	genTranspose()
	for _, w := range []int{6, 12, 16, 32} {
		genCopy(w)
	}
	Generate()
}

// isa describes a vector instruction set for the microkernel generator.
type isa struct {
	name  string
	mr    int  // rows of the tile, one broadcast each
	vecs  int  // vectors per tile row
	width int  // float32 lanes per vector
	bcst  bool // use embedded-broadcast FMAs instead of a broadcast register
	regs  func(i int) VecPhysical
	zero  func(r VecPhysical)
}

var avx512 = isa{
	name: "kernelAVX512", mr: 12, vecs: 2, width: 16, bcst: true,
	regs: func(i int) VecPhysical { return zmm(i) },
	zero: func(r VecPhysical) { VPXORD(r, r, r) },
}

var avx2 = isa{
	name: "kernelAVX2", mr: 6, vecs: 2, width: 8,
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

	ops := loadOperands()
	a, bRow := ops.a, ops.bRow

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
			VMOVUPS(bRow(u, 4*v*s.width), brow(v))
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

	ops.loop(s.name, s.mr, step)
	store(s.name, s.mr, s.vecs, s.width, acc, c, ldc, bcast)
}

// operands holds the registers of a microkernel's k, a, b and ldb (in bytes),
// loaded from its arguments, and the addresses of B's rows u = 0..3 k steps
// ahead.
type operands struct {
	k, a, b, ldb GPPhysical
	bRow         func(u, off int) Mem
}

func loadOperands() operands {
	k, a, b := RCX, RSI, RDI
	Load(Param("k"), k)
	Load(Param("a"), a)
	Load(Param("b"), b)
	ldb, ldb3 := R8, R9
	Load(Param("ldb"), ldb)
	SHLQ(Imm(2), ldb)
	LEAQ(Mem{Base: ldb, Index: ldb, Scale: 2}, ldb3)
	return operands{k: k, a: a, b: b, ldb: ldb, bRow: func(u, off int) Mem {
		return []Mem{{Base: b, Disp: off}, {Base: b, Index: ldb, Scale: 1, Disp: off},
			{Base: b, Index: ldb, Scale: 2, Disp: off}, {Base: b, Index: ldb3, Scale: 1, Disp: off}}[u]
	}}
}

// loop emits the k loop: step(u) for 4 k steps at a time, then one at a
// time, A advancing by mr values and B by a row per step. It falls through
// to the label name_store.
func (o operands) loop(name string, mr int, step func(u int)) {
	Comment("Main loop: 4 k steps.")
	Label(name + "_loop")
	CMPQ(o.k, Imm(4))
	JL(LabelRef(name + "_tail"))
	for u := 0; u < 4; u++ {
		step(u)
	}
	ADDQ(U32(4*4*mr), o.a)
	LEAQ(Mem{Base: o.b, Index: o.ldb, Scale: 4}, o.b)
	SUBQ(Imm(4), o.k)
	JMP(LabelRef(name + "_loop"))

	Comment("Remaining k steps one at a time.")
	Label(name + "_tail")
	TESTQ(o.k, o.k)
	JZ(LabelRef(name + "_store"))
	step(0)
	ADDQ(U32(4*mr), o.a)
	ADDQ(o.ldb, o.b)
	DECQ(o.k)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_store")
}

// store writes the rows×(vecs·width) accumulators to C, rows ldc bytes
// apart: C = acc when beta is zero (C not read), else C = acc + beta·C with
// one rounding, an FMA. tmp is a free vector register.
func store(name string, rows, vecs, width int, acc func(i, v int) VecPhysical, c, ldc GPPhysical, tmp VecPhysical) {
	beta := resolve("beta")
	bits := GP32()
	MOVL(beta.Addr, bits)
	SHLL(Imm(1), bits) // drop the sign: -0 counts as zero
	JNZ(LabelRef(name + "_accumulate"))

	Comment("beta == 0: overwrite C.")
	for i := 0; i < rows; i++ {
		for v := 0; v < vecs; v++ {
			VMOVUPS(acc(i, v), Mem{Base: c, Disp: 4 * v * width})
		}
		if i < rows-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()

	Comment("C = A·B + beta·C.")
	Label(name + "_accumulate")
	VBROADCASTSS(beta.Addr, tmp)
	for i := 0; i < rows; i++ {
		for v := 0; v < vecs; v++ {
			m := Mem{Base: c, Disp: 4 * v * width}
			VFMADD231PS(m, tmp, acc(i, v))
			VMOVUPS(acc(i, v), m)
		}
		if i < rows-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

const rowSignature = "func(k int, a, b *float32, ldb int, c *float32, beta float32)"

// genRowKernel emits a microkernel for one row of C, vecs vectors wide: the
// row C = A·B + beta·C of s's packed A sliver (row 0 of its s.mr values per
// k step) by k rows of B ldb floats apart. Each element is summed in the
// order and with the roundings of s's tile kernel, so a row computed alone
// equals the same row computed in a tile, bit for bit. With one row nothing
// reuses a row of B, so the FMAs read B from memory, and the vecs
// accumulators are independent chains that hide the FMA latency.
func genRowKernel(s isa, name string, vecs int) {
	width := vecs * s.width
	TEXT(name, NOSPLIT, rowSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a 1x%d row: C = A·B + beta·C (C is not read when beta == 0), A a packed sliver of %d values per k step of which it uses the first.", name, width, s.mr))

	acc := func(_, v int) VecPhysical { return s.regs(v) }
	bcast := s.regs(vecs)
	ops := loadOperands()
	c := RDX
	Load(Param("c"), c)
	for v := 0; v < vecs; v++ {
		s.zero(acc(0, v))
	}
	ops.loop(name, s.mr, func(u int) {
		VBROADCASTSS(Mem{Base: ops.a, Disp: 4 * u * s.mr}, bcast)
		for v := 0; v < vecs; v++ {
			VFMADD231PS(ops.bRow(u, 4*v*s.width), bcast, acc(0, v))
		}
	})
	store(name, 1, vecs, s.width, acc, c, nil, bcast)
}

// genTranspose emits transpose, which packs rows of a matrix into columns or
// merges a transposed tile into C:
//
//	dst[c*ldd+r] = alpha*src[r*lds+c] + beta*dst[c*ldd+r]  for r < 4*n4, c < 8*n8,
//
// where dst is not read when beta is zero. Each step loads a 4×8 block,
// transposes it with unpack and shuffle, and writes eight 4-float columns. The
// steps go down all the rows before moving to the next eight columns, so that
// the destination lines are complete before they leave the L1 cache. It uses
// AVX and FMA only, so every amd64 kernel can use it.
func genTranspose() {
	TEXT("transpose", NOSPLIT, "func(n4, n8 int, src *float32, lds int, dst *float32, ldd int, alpha, beta float32)")
	Pragma("noescape")
	Doc("transpose sets dst[c*ldd+r] = alpha*src[r*lds+c] + beta*dst[c*ldd+r] for r < 4*n4 and c < 8*n8,",
		"without reading dst when beta is zero.")
	n4, n8, srcCol, lds, dstCol, ldd := RBX, RCX, RSI, R8, RDI, R9
	Load(Param("n4"), n4)
	Load(Param("n8"), n8)
	Load(Param("src"), srcCol)
	Load(Param("lds"), lds)
	Load(Param("dst"), dstCol)
	Load(Param("ldd"), ldd)
	SHLQ(Imm(2), lds)
	SHLQ(Imm(2), ldd)
	lds3, ldd3 := R10, R11
	LEAQ(Mem{Base: lds, Index: lds, Scale: 2}, lds3)
	LEAQ(Mem{Base: ldd, Index: ldd, Scale: 2}, ldd3)
	alpha, beta := resolve("alpha"), resolve("beta")
	VBROADCASTSS(alpha.Addr, Y15)
	VBROADCASTSS(beta.Addr, Y14)
	src, dst, dst4, rows := RAX, RDX, R12, R13
	MOVL(beta.Addr, EAX)
	SHLL(Imm(1), EAX) // drop the sign: -0 counts as zero
	JNZ(LabelRef("transpose_accumulate"))

	for _, acc := range []bool{false, true} {
		name := "transpose_overwrite"
		if acc {
			name = "transpose_accumulate"
		}
		Label(name)
		MOVQ(srcCol, src)
		MOVQ(dstCol, dst)
		MOVQ(n4, rows)
		Label(name + "_rows")
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
		cols := []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7}
		for i, y := range []VecPhysical{Y0, Y1, Y2, Y3} {
			VEXTRACTF128(Imm(1), y, cols[4+i])
		}
		for i, x := range cols {
			base := dst
			if i >= 4 {
				base = dst4
			}
			m := []Mem{{Base: base}, {Base: base, Index: ldd, Scale: 1},
				{Base: base, Index: ldd, Scale: 2}, {Base: base, Index: ldd3, Scale: 1}}[i%4]
			if acc {
				VFMADD231PS(m, X14, x)
			}
			VMOVUPS(x, m)
		}
		LEAQ(Mem{Base: src, Index: lds, Scale: 4}, src)
		ADDQ(Imm(16), dst)
		DECQ(rows)
		JNZ(LabelRef(name + "_rows"))
		ADDQ(Imm(32), srcCol)
		LEAQ(Mem{Base: dstCol, Index: ldd, Scale: 8}, dstCol)
		DECQ(n8)
		JNZ(LabelRef(name))
		VZEROUPPER()
		RET()
	}
}

// genCopy emits copy<w>, which copies k rows of up to w floats into a dense
// block of rows of w, scaling them and zeroing the lanes that mask leaves out:
//
//	dst[l*w+c] = alpha * src[l*lds+c]  if mask[c] != 0, else 0,  for l < k, c < w.
//
// mask holds w int32s, all ones for the lanes to copy. Masked loads do not
// touch the memory of the lanes left out.
func genCopy(w int) {
	name := fmt.Sprintf("copy%d", w)
	TEXT(name, NOSPLIT, "func(k int, src *float32, lds int, dst *float32, mask *int32, alpha float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets dst[l*%d+c] = alpha*src[l*lds+c] for l < k and c < %d where mask[c] != 0, and 0 elsewhere.", name, w, w))
	n, src, lds, dst, mask := RCX, RSI, R8, RDI, RDX
	Load(Param("k"), n)
	Load(Param("src"), src)
	Load(Param("lds"), lds)
	Load(Param("dst"), dst)
	Load(Param("mask"), mask)
	SHLQ(Imm(2), lds)
	VBROADCASTSS(resolve("alpha").Addr, Y15)

	// Chunks of 8, 4 and 2 lanes, each with its mask in a register.
	type chunk struct{ off, lanes int }
	var chunks []chunk
	for off := 0; off < w; {
		lanes := 8
		for lanes > w-off {
			lanes /= 2
		}
		chunks = append(chunks, chunk{off, lanes})
		off += lanes
	}
	masks := []VecPhysical{Y8, Y9, Y10, Y11}
	for i, ch := range chunks {
		if ch.lanes == 8 {
			VMOVDQU(Mem{Base: mask, Disp: 4 * ch.off}, masks[i])
		} else {
			VMOVDQU(Mem{Base: mask, Disp: 4 * ch.off}, masks[i].AsX())
		}
	}
	Label(name + "_loop")
	for i, ch := range chunks {
		m, d := Mem{Base: src, Disp: 4 * ch.off}, Mem{Base: dst, Disp: 4 * ch.off}
		switch ch.lanes {
		case 8:
			VMASKMOVPS(m, masks[i], Y0)
			VMULPS(Y15, Y0, Y0)
			VMOVUPS(Y0, d)
		case 4:
			VMASKMOVPS(m, masks[i].AsX(), X0)
			VMULPS(X15, X0, X0)
			VMOVUPS(X0, d)
		case 2:
			VMASKMOVPS(m, masks[i].AsX(), X0)
			VMULPS(X15, X0, X0)
			VMOVSD(X0, d)
		default:
			panic("copy width must be even")
		}
	}
	ADDQ(lds, src)
	ADDQ(U32(4*w), dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}

func resolve(param string) *gotypes.Basic {
	b, err := Param(param).Resolve()
	if err != nil {
		panic(err)
	}
	return b
}
