package partlog

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSendfileChunk keeps each sendfile(2) call below Linux's per-call
// limit of 0x7ffff000 bytes.
const maxSendfileChunk = 1 << 30

// sendfile copies n bytes of file fd from off to dst inside the kernel.
// The file offset is passed explicitly, so the descriptor's own position
// is never used or moved. handled is false when sendfile cannot serve this
// pair of descriptors and nothing was sent; the caller then copies.
func sendfile(dst syscall.Conn, fd uintptr, off, n int64) (written int64, handled bool, err error) {
	rc, err := dst.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var sendErr error
	err = rc.Write(func(sock uintptr) bool {
		for written < n {
			m, e := unix.Sendfile(int(sock), int(fd), &off, int(min(n-written, maxSendfileChunk)))
			if m > 0 {
				written += int64(m)
			}
			switch {
			case e == unix.EINTR:
			case e == unix.EAGAIN:
				return false // wait on the poller until the socket drains
			case e != nil:
				sendErr = e
				return true
			case m == 0:
				sendErr = io.ErrUnexpectedEOF // the file is shorter than the region
				return true
			}
		}
		return true
	})
	if sendErr != nil && written == 0 && unsupported(sendErr) {
		return 0, false, nil
	}
	if err == nil {
		err = sendErr
	}
	return written, true, err
}

// unsupported reports errors meaning "sendfile cannot do this", as
// opposed to a failure of the connection.
func unsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF)
}
