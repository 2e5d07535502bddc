//go:build mpi

package main

import (
	"regexp"
	"strconv"
	"testing"
)

// TestTwoRanks trains MNIST as 2 ranks under mpirun, end to end: the ranks
// end with the same weights and the model learns.
func TestTwoRanks(t *testing.T) {
	out := runMain(t, []string{"mpirun", "-np", "2", "--allow-run-as-root", "--oversubscribe"},
		"-dist mpi -limit 8192 -epochs 1 -threads 1 -measure 5")
	hashes := regexp.MustCompile(`(?m)^rank (\d): weights fnv64 ([0-9a-f]{16})$`).FindAllStringSubmatch(out, -1)
	if len(hashes) != 2 || hashes[0][1] == hashes[1][1] {
		t.Fatalf("want one weight hash from each of 2 ranks:\n%s", out)
	}
	if hashes[0][2] != hashes[1][2] {
		t.Errorf("the ranks' weights differ:\n%s", out)
	}
	m := regexp.MustCompile(`test accuracy ([0-9.]+)%`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no test accuracy:\n%s", out)
	}
	if acc, _ := strconv.ParseFloat(m[1], 64); acc < 80 {
		t.Errorf("test accuracy %.2f%% after 64 steps of 128 images, want at least 80%%:\n%s", acc, out)
	}
	if !regexp.MustCompile(`ddp: mpi, 2 ranks`).MatchString(out) || !regexp.MustCompile(`(?m)^all-reduce: 2 buckets`).MatchString(out) {
		t.Errorf("unexpected output:\n%s", out)
	}
	t.Logf("\n%s", out)
}
