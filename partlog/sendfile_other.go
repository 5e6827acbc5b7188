//go:build !linux

package partlog

import "syscall"

// sendfile is Linux-only for now; elsewhere Region.WriteTo copies.
func sendfile(dst syscall.Conn, fd uintptr, off, n int64) (int64, bool, error) {
	return 0, false, nil
}
