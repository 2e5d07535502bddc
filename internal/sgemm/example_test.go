package sgemm_test

import (
	"fmt"

	"github.com/gograd/gograd/internal/sgemm"
)

func ExampleContext_Sgemm() {
	ctx := sgemm.New(1)
	a := []float32{ // 2×3
		1, 2, 3,
		4, 5, 6,
	}
	b := []float32{ // 3×2
		1, 0,
		0, 1,
		1, 1,
	}
	c := make([]float32, 2*2)
	ctx.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	fmt.Println(c)

	// Aᵀ·A: A is stored 2×3, so op(A) = Aᵀ is 3×2 with lda = 3.
	ata := make([]float32, 3*3)
	ctx.Sgemm(true, false, 3, 3, 2, 1, a, 3, a, 3, 0, ata, 3)
	fmt.Println(ata)
	// Output:
	// [4 5 10 11]
	// [17 22 27 22 29 36 27 36 45]
}
