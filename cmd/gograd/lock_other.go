//go:build !unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// lockFileAt creates path exclusively. Without flock, a lock file left by a
// process that was killed stays until it is removed by hand; the error says
// which pid wrote it.
func lockFileAt(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w (if no gograd runs there, remove %s)", lockedError(dirOf(path), path), path)
	}
	if err != nil {
		return nil, fmt.Errorf("locking the run directory: %w", err)
	}
	return f, nil
}
