package partlog

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const segmentSuffix = ".log"

// tmpSuffix marks a segment copy being written by truncateFile's fallback;
// recovery removes leftovers.
const tmpSuffix = ".tmp"

// segmentName is the file name of the segment whose first offset is base:
// zero-padded so that names sort like offsets.
func segmentName(base int64) string {
	return fmt.Sprintf("%020d%s", base, segmentSuffix)
}

// parseSegmentName is segmentName's inverse.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// segFile is one open handle on a segment file. It is reference counted
// because a Region (or a Sync in progress) may outlive the segment's place
// in the log: retention can unlink the file while a fetch is still sending
// from it. The handle is closed when the last reference goes.
type segFile struct {
	f    vfs.File
	fd   uintptr // f.Fd(), or vfs.InvalidFd when f has no descriptor
	refs atomic.Int32
}

func newSegFile(f vfs.File) *segFile {
	sf := &segFile{f: f, fd: f.Fd()}
	sf.refs.Store(1) // the segment's own reference
	return sf
}

// ref must only be called by someone who already holds a reference or who
// holds Log.mu while the owning segment is in the log's list (the list's
// reference keeps refs above zero).
func (sf *segFile) ref() { sf.refs.Add(1) }

func (sf *segFile) unref() {
	if sf.refs.Add(-1) == 0 {
		// Nothing useful can be done with a close error on a file that is
		// no longer part of the log: all its data was read or synced by now.
		_ = sf.f.Close()
	}
}

// segment is one file of a log: the batches with offsets in
// [base, next segment's base).
type segment struct {
	base int64
	path string

	// file is swapped only by truncateFile's copy fallback, under Log.mu.
	file atomic.Pointer[segFile]
	// size is the number of bytes holding indexed batches: the segment's
	// logical length. Only the owner writes it, after the bytes are
	// written and indexed. The file may be physically longer (see
	// allocEnd); nothing past size is ever read as data.
	size atomic.Int64
	// dirSynced records that the partition directory was synced after
	// this file was created, so its name survives a crash.
	dirSynced atomic.Bool

	// Owner-only state.
	maxTs         int64 // largest batch max timestamp, valid if maxTsKnown
	maxTsKnown    bool
	firstAppendMs int64 // clock when the first batch went in, for SegmentMs; -1 unknown
	sealed        bool  // no more appends: bytes were truncated away under readers
	// allocEnd is where the file physically ends once appends preallocated
	// it: [size, allocEnd) holds zeros. Invariant: allocEnd >= size, and
	// allocEnd == size for every segment but the active one (roll trims
	// the tail, durably, before the next segment exists).
	allocEnd int64
}

func newSegment(base int64, path string, f vfs.File, size int64) *segment {
	s := &segment{base: base, path: path, firstAppendMs: -1}
	s.file.Store(newSegFile(f))
	s.size.Store(size)
	s.allocEnd = size
	return s
}

// acquire returns the current handle with a reference taken. Callers hold
// Log.mu (read or write) while the segment is in the log's list.
func (s *segment) acquire() *segFile {
	sf := s.file.Load()
	sf.ref()
	return sf
}

// release drops the segment's own reference on its handle; the file closes
// once outstanding Regions release theirs.
func (s *segment) release() { s.file.Load().unref() }

// truncater is implemented by vfs files backed by *os.File (vfs.Default).
type truncater interface{ Truncate(size int64) error }

// truncateFile shortens the segment file to size and makes that durable.
//
// vfs.File has no Truncate, so for files that do not offer one (vfs.MemFS,
// a simulator's FS) the prefix is copied to a temporary file that is
// synced and renamed over the segment, which is crash-safe on any FS; the
// segment then switches to the new handle. Readers holding the old handle
// keep reading the old (identical up to size) bytes until they release it.
// Callers are the owner, holding no Log.mu; swap takes it.
func truncateFile(fs vfs.FS, dir string, s *segment, size int64, swap func(func())) error {
	sf := s.file.Load()
	if t, ok := sf.f.(truncater); ok {
		if err := t.Truncate(size); err != nil {
			return fmt.Errorf("truncate %s to %d: %w", s.path, size, err)
		}
		// A full fsync, not fdatasync: the shorter size is metadata that
		// must be durable (a trimmed preallocated tail must not come back).
		if err := sf.f.Sync(); err != nil {
			return fmt.Errorf("sync %s after truncate: %w", s.path, err)
		}
		s.allocEnd = size
		return nil
	}
	tmp := s.path + tmpSuffix
	nf, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := copyPrefix(nf, sf.f, size); err != nil {
		_ = nf.Close()
		return fmt.Errorf("copy %s to %s: %w", s.path, tmp, err)
	}
	if err := nf.Sync(); err != nil {
		_ = nf.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := nf.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := syncDir(fs, dir); err != nil {
		return err
	}
	f, err := fs.OpenReadWrite(s.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", s.path, err)
	}
	swap(func() {
		old := s.file.Swap(newSegFile(f))
		old.unref()
	})
	s.allocEnd = size
	return nil
}

// copyPrefix copies src[0:n] to dst through a bounded buffer.
func copyPrefix(dst, src vfs.File, n int64) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for off := int64(0); off < n; {
		chunk := buf[:min(int64(len(buf)), n-off)]
		if err := readFullAt(src, chunk, off); err != nil {
			return err
		}
		if _, err := dst.Write(chunk); err != nil {
			return err
		}
		off += int64(len(chunk))
	}
	return nil
}

// readFullAt fills b from f at off; a short read is io.ErrUnexpectedEOF.
func readFullAt(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil // io.ReaderAt may report io.EOF along with a full read
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}
