//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFileAt opens path and takes an exclusive flock on it without
// waiting. The kernel drops the lock when the process ends, however it
// ends, so a file left by a killed process is stale and is taken over. A
// file that a releasing holder unlinked between the open and the lock is
// detected (its inode is no longer the path's) and the lock retried.
func lockFileAt(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking the run directory: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, lockedError(dirOf(path), path)
			}
			return nil, fmt.Errorf("locking the run directory: flock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
	return nil, lockedError(dirOf(path), path)
}
