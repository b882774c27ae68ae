package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeAll writes the buffers one after the other at off, with as few
// system calls as the kernel allows.
func writeAll(f *os.File, bufs [][]byte, off int64) error {
	for len(bufs) > 0 {
		n, err := unix.Pwritev(int(f.Fd()), bufs[:min(len(bufs), 1024)], off)
		if err != nil {
			return err
		}
		off += int64(n)
		for n > 0 { // drop what was written
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return nil
}
