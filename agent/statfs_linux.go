//go:build linux

package main

import (
	"strings"
	"syscall"
)

// statfs returns total and used bytes (used = blocks - free, as df shows it).
func statfs(path string) (total, used uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	total = st.Blocks * bs
	free := st.Bfree * bs
	if free > total {
		free = total
	}
	return total, total - free, nil
}

func unameRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
