package partlog

import "io"

// Region is a run of whole record batches inside one segment file, handed
// to a fetch so that the bytes go from the page cache to the socket
// without passing through user space. A Region holds a reference on its
// segment; Release it exactly once. The zero Region is empty.
//
// STUB: the partlog implementation replaces this file.
type Region struct {
	seg *segmentRef
	pos int64
	n   int64
}

type segmentRef struct{}

// Len is the number of bytes in the region.
func (r Region) Len() int64 { return r.n }

// WriteTo writes the region's bytes to w, using sendfile(2) when w is a
// *net.TCPConn (or exposes syscall.Conn) and the segment is a real file.
func (r Region) WriteTo(w io.Writer) (int64, error) { panic("unimplemented") }

// AppendTo appends the region's bytes to dst (pread); for tests and
// for writers that cannot take a file.
func (r Region) AppendTo(dst []byte) ([]byte, error) { panic("unimplemented") }

// Release drops the region's reference on its segment.
func (r Region) Release() {}
