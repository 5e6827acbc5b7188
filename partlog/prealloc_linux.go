package partlog

import (
	"errors"

	"golang.org/x/sys/unix"
)

// fallocate reserves [off, off+n) of the file behind fd and, unlike
// FALLOC_FL_KEEP_SIZE, moves the file size to cover it. That is the point:
// appends landing inside the reserved range then leave the inode size
// alone, so their fdatasync has no size change to commit through the
// file system's journal (on ext4 that cuts fdatasync tail latency by an
// order of magnitude).
func fallocate(fd uintptr, off, n int64) error {
	return unix.Fallocate(int(fd), 0, off, n)
}

// preallocUnsupported reports that the file system cannot preallocate at
// all, so trying again on another segment is pointless.
func preallocUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}
