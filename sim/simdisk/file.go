package simdisk

import (
	"fmt"
	iofs "io/fs"
	"maps"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// file is an open file or directory of one life of a Disk.
//
// It implements vfs.File and nothing more. In particular it has no
// Truncate method (partlog truncates in place only through one), and Fd
// reports vfs.InvalidFd, so nothing can reach around the Disk with a
// system call (partlog then skips fallocate).
type file struct {
	fs      *fsys
	f       vfs.File // the MemFS file
	n       *node
	name    string
	tracked bool

	// Guarded by fs.d.mu.
	pos    int64 // the MemFS file's offset for Read and Write
	closed bool
}

var _ vfs.File = (*file)(nil)

// check returns nil if h may be used. Callers hold d.mu. A closed MemFS
// file would panic on use, so a closed handle must never reach it. A
// crash is reported first: it is why everything fails.
func (h *file) check(op string) error {
	if err := h.fs.live(op, h.name); err != nil {
		return err
	}
	if h.closed {
		return fmt.Errorf("simdisk: %s %s: %w", op, h.name, iofs.ErrClosed)
	}
	return nil
}

// Close implements vfs.File. After a crash it fails like everything else
// (the MemFS file belongs to the dead file system and is dropped with it).
func (h *file) Close() error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("close"); err != nil {
		h.closed = true
		return err
	}
	h.closed = true
	return h.f.Close()
}

// Read implements vfs.File.
func (h *file) Read(p []byte) (int, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("read"); err != nil {
		return 0, err
	}
	n, err := h.f.Read(p)
	h.pos += int64(n)
	return n, err
}

// ReadAt implements vfs.File.
func (h *file) ReadAt(p []byte, off int64) (int, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("read"); err != nil {
		return 0, err
	}
	return h.f.ReadAt(p, off)
}

// Write implements vfs.File.
func (h *file) Write(p []byte) (int, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("write"); err != nil {
		return 0, err
	}
	n, err := h.write(p, h.pos, false)
	h.pos += int64(n)
	return n, err
}

// WriteAt implements vfs.File.
func (h *file) WriteAt(p []byte, off int64) (int, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("write"); err != nil {
		return 0, err
	}
	return h.write(p, off, true)
}

// write draws the write's fault, records what will be written (before
// writing it: MemFS's Write scrambles its input in race builds), and
// writes it. off is where the data lands; positioned says whether to
// write there with WriteAt or at the MemFS file's offset with Write.
// Callers hold d.mu.
func (h *file) write(p []byte, off int64, positioned bool) (int, error) {
	d := h.fs.d
	k, injected := d.injectWrite(h.tracked, "write", h.name, len(p))
	if k == 0 {
		return 0, injected
	}
	p = p[:k]
	u := &h.n.unsynced
	nw, nd := u.mark()
	if h.tracked && u.record(off, p, d.maxRec) {
		d.stats.RecordOverflows++
	}
	var n int
	var err error
	if positioned {
		n, err = h.f.WriteAt(p, off)
	} else {
		n, err = h.f.Write(p)
	}
	if err != nil {
		u.undo(nw, nd)
		return n, err
	}
	return n, injected
}

// Preallocate implements vfs.File. MemFS allocates nothing; a Tracked
// file can still fail with ENOSPC.
func (h *file) Preallocate(offset, length int64) error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("preallocate"); err != nil {
		return err
	}
	if err := d.injectPreallocate(h.tracked, h.name); err != nil {
		return err
	}
	return h.f.Preallocate(offset, length)
}

// Stat implements vfs.File.
func (h *file) Stat() (vfs.FileInfo, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("stat"); err != nil {
		return nil, err
	}
	return h.f.Stat()
}

// Sync implements vfs.File.
func (h *file) Sync() error { return h.sync("sync") }

// SyncData implements vfs.File; MemFS makes no difference between the two.
func (h *file) SyncData() error { return h.sync("syncdata") }

func (h *file) sync(op string) error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check(op); err != nil {
		return err
	}
	if err := d.injectSync(h.tracked, h.name); err != nil {
		return err
	}
	if err := h.f.Sync(); err != nil {
		return err
	}
	if h.n.dir {
		h.n.synced = maps.Clone(h.n.children)
		return nil
	}
	if h.tracked {
		h.n.unsynced.clear()
		if fi, err := h.f.Stat(); err == nil {
			h.n.syncedLen = fi.Size()
		}
	}
	return nil
}

// SyncTo implements vfs.File. MemFS syncs nothing here and says so
// (fullSync false), so there is nothing to fault either.
func (h *file) SyncTo(length int64) (fullSync bool, err error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("syncto"); err != nil {
		return false, err
	}
	return h.f.SyncTo(length)
}

// Prefetch implements vfs.File.
func (h *file) Prefetch(offset, length int64) error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := h.check("prefetch"); err != nil {
		return err
	}
	return h.f.Prefetch(offset, length)
}

// Fd implements vfs.File: there is no descriptor.
func (h *file) Fd() uintptr { return vfs.InvalidFd }
