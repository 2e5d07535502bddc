package device

import "testing"

func TestWalkCollapse(t *testing.T) {
	sh := func(d ...int) [MaxDims]int {
		var r [MaxDims]int
		copy(r[MaxDims-len(d):], d)
		for i := range MaxDims - len(d) {
			r[i] = 0
		}
		return r
	}
	one := func(d ...int) [MaxDims]int { // a shape: leading 1s
		r := sh(d...)
		for i := range MaxDims - len(d) {
			r[i] = 1
		}
		return r
	}
	cases := []struct {
		name string
		in   Walk
		want Walk
	}{
		{"contiguous 2x3x4", Walk{Shape: one(1, 2, 3, 4), A: sh(0, 12, 4, 1), B: sh(0, 12, 4, 1)},
			Walk{Shape: one(1, 1, 1, 24), A: sh(0, 0, 0, 1), B: sh(0, 0, 0, 1)}},
		{"bias row", Walk{Shape: one(1, 1, 5, 3), A: sh(0, 0, 3, 1), B: sh(0, 0, 0, 1)},
			Walk{Shape: one(1, 1, 5, 3), A: sh(0, 0, 3, 1), B: sh(0, 0, 0, 1)}},
		{"unit axes dropped", Walk{Shape: one(2, 1, 1, 3), A: sh(3, 0, 0, 1), B: sh(3, 0, 0, 1)},
			Walk{Shape: one(1, 1, 1, 6), A: sh(0, 0, 0, 1), B: sh(0, 0, 0, 1)}},
		{"transpose kept", Walk{Shape: one(1, 1, 4, 3), A: sh(0, 0, 1, 4), B: sh(0, 0, 1, 4)},
			Walk{Shape: one(1, 1, 4, 3), A: sh(0, 0, 1, 4), B: sh(0, 0, 1, 4)}},
		{"broadcast scalar", Walk{Shape: one(2, 3, 4, 5), A: sh(60, 20, 5, 1), B: sh(0, 0, 0, 0)},
			Walk{Shape: one(1, 1, 1, 120), A: sh(0, 0, 0, 1), B: sh(0, 0, 0, 0)}},
		{"one element", Walk{Shape: one(1, 1, 1, 1), A: sh(0, 0, 0, 1), B: sh(0, 0, 0, 1)},
			Walk{Shape: one(1, 1, 1, 1)}},
	}
	for _, c := range cases {
		if got := c.in.Collapse(); got != c.want {
			t.Errorf("%s: Collapse(%v) = %v, want %v", c.name, c.in, got, c.want)
		}
	}
}
