//go:build amd64 && !purego

package main

import "golang.org/x/sys/cpu"

// fma512 and fma256 run n iterations of 12 independent FMAs of 16 or 8
// float32 lanes, with no loads or stores: the FMA units' peak.
//
//go:noescape
func fma512(n int)

//go:noescape
func fma256(n int)

// fmaLoops returns the FMA loops this CPU can run, widest first, with the
// FLOP of one iteration.
func fmaLoops() []fmaLoop {
	var l []fmaLoop
	if cpu.X86.HasAVX512F {
		l = append(l, fmaLoop{"avx512", 384, fma512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		l = append(l, fmaLoop{"avx2", 192, fma256})
	}
	return l
}
