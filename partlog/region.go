package partlog

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Region is a run of whole record batches inside one segment file, handed
// to a fetch so that the bytes can go from the page cache to the socket
// without passing through user space. A Region holds a reference on its
// segment file, which keeps the bytes readable even if retention deletes
// the segment meanwhile; Release drops it. Copies of a Region share one
// reference, and Release is idempotent across them. The zero Region is
// empty and needs no Release.
type Region struct {
	r *region
}

type region struct {
	sf       *segFile
	pos, n   int64
	released atomic.Bool
}

var errReleased = errors.New("partlog: region already released")

// Len is the number of bytes in the region.
func (r Region) Len() int64 {
	if r.r == nil {
		return 0
	}
	return r.r.n
}

// Release drops the region's reference on its segment file. Later calls,
// on this Region or a copy, do nothing.
func (r Region) Release() {
	if r.r != nil && r.r.released.CompareAndSwap(false, true) {
		r.r.sf.unref()
	}
}

// WriteTo writes the region's bytes to w. When w exposes its descriptor
// (syscall.Conn, as *net.TCPConn does) and the segment is a real file, the
// kernel copies them with sendfile(2) at an explicit file offset, so
// concurrent readers of one segment never share a file position; a full
// socket buffer parks the goroutine on the network poller, honouring w's
// write deadline. Otherwise the bytes go through a pooled buffer.
func (r Region) WriteTo(w io.Writer) (int64, error) {
	if r.r == nil || r.r.n == 0 {
		return 0, nil
	}
	if r.r.released.Load() {
		return 0, errReleased
	}
	var written int64
	if r.r.sf.fd != vfs.InvalidFd {
		if sc, ok := w.(syscall.Conn); ok {
			n, handled, err := sendfile(sc, r.r.sf.fd, r.r.pos, r.r.n)
			if handled {
				return n, err
			}
			written = n // zero: sendfile refused before sending anything
		}
	}
	n, err := r.copyTo(w, written)
	return written + n, err
}

// copyTo writes the region from byte from onwards through a pooled buffer.
func (r Region) copyTo(w io.Writer, from int64) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var written int64
	for off := from; off < r.r.n; {
		chunk := buf[:min(int64(len(buf)), r.r.n-off)]
		if err := readFullAt(r.r.sf.f, chunk, r.r.pos+off); err != nil {
			return written, fmt.Errorf("partlog: read region: %w", err)
		}
		n, err := w.Write(chunk)
		written += int64(n)
		if err != nil {
			return written, err
		}
		if n != len(chunk) {
			return written, io.ErrShortWrite
		}
		off += int64(n)
	}
	return written, nil
}

// AppendTo appends the region's bytes to dst, for writers that cannot take
// a file and for tests.
func (r Region) AppendTo(dst []byte) ([]byte, error) {
	if r.r == nil || r.r.n == 0 {
		return dst, nil
	}
	if r.r.released.Load() {
		return dst, errReleased
	}
	n := len(dst)
	dst = slices.Grow(dst, int(r.r.n))[:n+int(r.r.n)]
	if err := readFullAt(r.r.sf.f, dst[n:], r.r.pos); err != nil {
		return dst[:n], fmt.Errorf("partlog: read region: %w", err)
	}
	return dst, nil
}

// copyBufPool holds the buffers of the non-zero-copy paths. 128 KiB keeps
// syscalls per fetch low without pinning much memory per goroutine.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}
