package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRunFiles writes every run file into dir with content tag+name.
func writeRunFiles(t *testing.T, dir, tag string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(tag+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTidyRun rebuilds what kills during an -overwrite leave, and checks
// that tidyRun completes a committed replacement (also one whose move was
// half done), drops an uncommitted one, and removes temporary files only.
func TestTidyRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(dir string)
		want    string // the tag every run file must have afterwards
		noteHas string
	}{
		{"committed, nothing moved yet", func(dir string) {
			writeRunFiles(t, filepath.Join(dir, commitDir), "new:", runFiles...)
		}, "new:", "finished replacing"},
		{"committed, half moved", func(dir string) {
			writeRunFiles(t, filepath.Join(dir, commitDir), "new:", runFiles[2:]...)
			writeRunFiles(t, dir, "new:", runFiles[:2]...)
		}, "new:", "finished replacing"},
		{"not committed", func(dir string) {
			writeRunFiles(t, filepath.Join(dir, stagingDir), "new:", runFiles[:3]...)
		}, "old:", "never completed an epoch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRunFiles(t, dir, "old:", runFiles...)
			tc.setup(dir)
			for _, n := range []string{"." + checkpointFile + ".tmp-123", "." + metricsFile + ".tmp-9", "notes.txt", ".model.tmp-1"} {
				os.WriteFile(filepath.Join(dir, n), nil, 0o644)
			}
			var notes []string
			if err := tidyRun(dir, func(s string) { notes = append(notes, s) }); err != nil {
				t.Fatal(err)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], tc.noteHas) {
				t.Errorf("notes %q, want one with %q", notes, tc.noteHas)
			}
			for _, n := range runFiles {
				if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != tc.want+n {
					t.Errorf("%s holds %q (%v), want %q", n, b, err, tc.want+n)
				}
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			// Only the run files and the files that are not train's remain.
			if len(names) != len(runFiles)+2 || !strings.Contains(strings.Join(names, " "), "notes.txt") {
				t.Errorf("directory holds %v", names)
			}
		})
	}
}
