//go:build !linux

package main

import "errors"

// The agent runs on Linux only; these stubs let the package build elsewhere.

func statfs(path string) (total, used uint64, err error) {
	return 0, 0, errors.New("statfs: not supported on this OS")
}

func unameRelease() string { return "" }
