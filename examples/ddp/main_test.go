package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets the tests run this test binary as the ddp command itself
// (under mpirun too): with GOGRAD_DDP_MAIN=1 it runs main with the
// arguments in GOGRAD_DDP_ARGS.
func TestMain(m *testing.M) {
	if os.Getenv("GOGRAD_DDP_MAIN") == "1" {
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("GOGRAD_DDP_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOneProcess trains on a slice of MNIST in one process.
func TestOneProcess(t *testing.T) {
	out := runMain(t, nil, "-dist none -limit 4096 -epochs 1 -threads 1")
	if !strings.Contains(out, "ddp: none, 1 ranks") || !strings.Contains(out, "test accuracy") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}
