//go:build !amd64 || purego

package main

// fmaLoops returns nothing: this build has no FMA loop.
func fmaLoops() []fmaLoop { return nil }
