//go:build !linux

package sqlite

import "os"

func writeAll(f *os.File, bufs [][]byte, off int64) error { return writeEach(f, bufs, off) }
