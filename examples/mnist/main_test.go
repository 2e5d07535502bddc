package main

import (
	"testing"

	"github.com/gograd/gograd/data"
	"github.com/gograd/gograd/device"
)

// TestTrainSubset trains one epoch on the first 10,000 MNIST training images
// and checks the accuracy on the full test set. It uses batches of 32 (312
// steps): with the protocol's 128 the epoch is only 78 steps, after which
// PyTorch too reaches only 87-89%.
func TestTrainSubset(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on MNIST")
	}
	dir, err := data.DefaultMNISTDir()
	if err != nil {
		t.Fatalf("this test needs MNIST: %v\nfetch it with: go mod download %s@%s (make test does)", err, data.MNISTModule, data.MNISTVersion)
	}
	train, test, err := data.LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := Train(device.NewCPU(0), train.Subset(10000), test, Config{Epochs: 1, Batch: 32, LR: 0.05, Momentum: 0.9, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy after one epoch on 10k samples: %.4f", acc)
	if acc < 0.90 {
		t.Fatalf("test accuracy %.4f, want at least 0.90", acc)
	}
}
