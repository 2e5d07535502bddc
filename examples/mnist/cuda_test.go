//go:build cuda

package main

import (
	"math"
	"testing"
	"time"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
)

// TestCUDAEpochMatchesCPU trains one epoch of the protocol on the GPU and
// on the CPU from the same seed; the test accuracies must agree within 0.3
// points. It logs both epoch times.
func TestCUDAEpochMatchesCPU(t *testing.T) {
	dir, err := data.DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := data.LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	gpu, err := device.NewCUDA(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Epochs: 1, Batch: 128, LR: 0.05, Momentum: 0.9, Seed: 1}
	acc := map[string]float64{}
	for _, d := range []device.Device{gpu, device.NewCPU(0)} {
		start := time.Now()
		a, err := Train(d, train, test, cfg, nil)
		if err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		acc[d.Name()] = a
		t.Logf("%s: one epoch with evaluation in %.2fs, test accuracy %.4f", d.Name(), time.Since(start).Seconds(), a)
	}
	if diff := math.Abs(acc["cuda"] - acc["cpu"]); diff > 0.003 {
		t.Fatalf("GPU accuracy %.4f and CPU accuracy %.4f differ by %.2f points, more than 0.3", acc["cuda"], acc["cpu"], 100*diff)
	}
}
