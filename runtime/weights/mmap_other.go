//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris || illumos || android || ios)

package weights

import (
	"errors"
	"os"
)

// mapFile does not map here: files are read through os.File, chunk by chunk.
func mapFile(f *os.File, size int64) (data []byte, unmap func() error, err error) {
	return nil, nil, errors.New("no mmap on this platform")
}
