//go:build !linux

package sgemm

// osyield does nothing where the thread cannot yield its core cheaply.
func osyield() {}
