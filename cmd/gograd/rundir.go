package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gograd/gograd/safetensors"
)

// Hidden entries of a run directory.
const (
	// lockFile holds the pid of the train that uses the directory.
	lockFile = ".gograd.lock"
	// stagingDir holds a run started with -overwrite until its first epoch
	// is complete; the run before it stays in place meanwhile.
	stagingDir = ".overwrite"
	// commitDir is stagingDir renamed once complete: the rename is the
	// moment the new run replaces the old. Its files are then moved into
	// the run directory, and a run that finds it finishes the move first.
	commitDir = ".overwrite.commit"
)

// errLocked is wrapped when another process holds a run directory.
var errLocked = errors.New("run directory in use")

// lockRun takes the lock of run directory dir (which must exist) for this
// process. The lock is an flock on dir/.gograd.lock where the system has
// one, so that a process that died leaves no lock behind, only a stale file
// that the next run takes over; the file holds the holder's pid, which the
// error names. Release it with the returned function.
func lockRun(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := lockFileAt(path)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() {
		os.Remove(path)
		f.Close()
	}, nil
}

// lockedError is the message for a run directory that another process
// holds; it reads the holder's pid from the lock file.
func lockedError(dir, path string) error {
	pid := "unknown pid"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		pid = "pid " + strings.TrimSpace(string(b))
	}
	return fmt.Errorf("%w: %s is being written by another gograd train (%s); wait for it to finish, or choose another -out",
		errLocked, dir, pid)
}

// tidyRun prepares run directory dir, which this process has locked, after
// a run that was killed: it finishes a committed -overwrite, drops an
// uncommitted one (the run before it is intact), and removes the temporary
// files that an interrupted atomic write leaves (.NAME.tmp-*). It reports
// what it did to note.
func tidyRun(dir string, note func(string)) error {
	commit := filepath.Join(dir, commitDir)
	if _, err := os.Stat(commit); err == nil {
		if err := moveRunFiles(commit, dir); err != nil {
			return fmt.Errorf("finishing the -overwrite of %s: %w", dir, err)
		}
		note(fmt.Sprintf("finished replacing the run in %s (the replacement was interrupted)", dir))
	}
	staging := filepath.Join(dir, stagingDir)
	if _, err := os.Stat(staging); err == nil {
		if err := os.RemoveAll(staging); err != nil {
			return fmt.Errorf("removing the unfinished -overwrite run %s: %w", staging, err)
		}
		note(fmt.Sprintf("removed %s, a run started with -overwrite that never completed an epoch", staging))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isTempRunFile(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing a temporary file left by an interrupted write: %w", err)
			}
		}
	}
	return nil
}

// isTempRunFile reports whether name is a temporary file of an atomic write
// of a run file: .model.safetensors.tmp-123 and the like.
func isTempRunFile(name string) bool {
	for _, f := range runFiles {
		if strings.HasPrefix(name, "."+f+".tmp-") {
			return true
		}
	}
	return false
}

// moveRunFiles moves the run files of src into dst, one rename each, then
// removes src. Train writes every run file, so dst then holds exactly
// src's run. Repeating it after an interruption completes it.
func moveRunFiles(src, dst string) error {
	for _, name := range runFiles {
		// A file missing from src was moved before an interruption.
		err := os.Rename(filepath.Join(src, name), filepath.Join(dst, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	return syncDir(dst)
}

// syncDir flushes a directory's entries, making renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// dirOf is the directory of path.
func dirOf(path string) string { return filepath.Dir(path) }

// refuseExisting fails if dir holds a run and overwrite is false. Its
// advice to -resume is only given where a checkpoint makes it possible.
func refuseExisting(dir string, overwrite bool) error {
	found, err := existingRunFiles(dir)
	if err != nil || len(found) == 0 || overwrite {
		return err
	}
	if slices.Contains(found, checkpointFile) {
		return fmt.Errorf("%s already holds a run (%s): continue it with -resume %s, replace it with -overwrite, or choose another -out",
			dir, strings.Join(found, ", "), dir)
	}
	return fmt.Errorf("%s already holds run files (%s) but no %s to resume from: replace them with -overwrite, or choose another -out",
		dir, strings.Join(found, ", "), checkpointFile)
}

// prepareNewRun creates and locks the directory of a new run, tidies what
// a killed run left there, and checks (now that no other train can write
// there) that it holds no run unless overwrite. With overwrite and a run
// present, the new run goes to a staging directory inside it until its
// first epoch is complete (see trainer.commit). The returned function
// removes an uncommitted staging directory, unlocks, and removes the
// directory again if this call created it and it stayed empty.
func prepareNewRun(t *trainer, overwrite bool) (release func(), err error) {
	dir := t.dir
	created := false
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		created = true
	} else if err != nil {
		return nil, err
	}
	unlock, err := lockRun(dir)
	if err != nil {
		if created {
			os.Remove(dir)
		}
		return nil, err
	}
	release = func() {
		if t.commitTo != "" {
			os.RemoveAll(t.dir)
			t.dir, t.commitTo = t.commitTo, ""
		}
		unlock()
		if created {
			os.Remove(dir) // fails, as it should, unless the directory is empty
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if err := tidyRun(dir, t.env.note); err != nil {
		return nil, err
	}
	if err := refuseExisting(dir, overwrite); err != nil {
		return nil, err
	}
	found, err := existingRunFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(found) > 0 {
		staging := filepath.Join(dir, stagingDir)
		if err := os.Mkdir(staging, 0o755); err != nil {
			return nil, err
		}
		t.dir, t.commitTo = staging, dir
	}
	return release, nil
}

// commit makes the staged run of an -overwrite, which has just saved its
// first epoch, the run of its directory: the rename of the staging
// directory is the switch, and moving its files in place follows (a run
// that finds the switch made but the move unfinished completes it).
func (t *trainer) commit() error {
	dir := t.commitTo
	commit := filepath.Join(dir, commitDir)
	if err := os.Rename(t.dir, commit); err != nil {
		return fmt.Errorf("replacing the run in %s: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("replacing the run in %s: %w", dir, err)
	}
	t.dir, t.commitTo = dir, ""
	if err := moveRunFiles(commit, dir); err != nil {
		return fmt.Errorf("replacing the run in %s: %w", dir, err)
	}
	fmt.Fprintf(t.env.stdout, "replaced the run in %s\n", dir)
	return nil
}

// runUpToDate reports whether the run files of dir agree with its
// checkpoint ck, taken at an epoch's end: a kill between the checkpoint
// and the model leaves the model an epoch behind, and resuming rewrites it.
func runUpToDate(dir string, ck *checkpoint) bool {
	if ck.Batch != 0 || ck.Epoch == 0 {
		return true
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, modelFile))
	if err != nil || f.Metadata["epochs"] != strconv.Itoa(ck.Epoch) {
		return false
	}
	found, err := existingRunFiles(dir)
	if err != nil || len(found) != len(runFiles) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, metricsFile))
	return err == nil && strings.Count(string(b), "\n") == ck.Epoch+1
}
