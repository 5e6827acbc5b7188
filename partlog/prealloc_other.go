//go:build !linux

package partlog

import "errors"

var errPreallocUnsupported = errors.New("preallocation not supported on this platform")

// fallocate is Linux-only; elsewhere segments grow with each write.
func fallocate(fd uintptr, off, n int64) error { return errPreallocUnsupported }

func preallocUnsupported(err error) bool { return errors.Is(err, errPreallocUnsupported) }
