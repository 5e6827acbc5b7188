package simdisk

import (
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"github.com/cockroachdb/errors/oserror"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// fsys is the vfs.FS of one life of a Disk: from New or a Crash to the
// next Crash. Every call takes the Disk's mutex, checks that this life is
// the current one, calls the MemFS, and on success updates the Disk's
// mirror of the tree (see node) as MemFS updated its own.
type fsys struct{ d *Disk }

var _ vfs.FS = (*fsys)(nil)

// live returns nil while fs is the Disk's current FS. Callers hold d.mu.
func (fs *fsys) live(op, name string) error {
	if fs != fs.d.cur {
		return fmt.Errorf("simdisk: %s %s: %w", op, name, ErrCrashed)
	}
	return nil
}

// Create implements vfs.FS.
func (fs *fsys) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("create", name); err != nil {
		return nil, err
	}
	f, err := d.mem.Create(name, category)
	if err != nil {
		return nil, err
	}
	n := d.newFile(name)
	d.link(name, n)
	return fs.wrap(f, n, name), nil
}

// Link implements vfs.FS.
func (fs *fsys) Link(oldname, newname string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("link", oldname); err != nil {
		return err
	}
	if err := d.mem.Link(oldname, newname); err != nil {
		return err
	}
	if n := d.lookup(oldname); n != nil {
		d.link(newname, n)
	}
	return nil
}

// Open implements vfs.FS.
func (fs *fsys) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("open", name); err != nil {
		return nil, err
	}
	f, err := d.mem.Open(name)
	if err != nil {
		return nil, err
	}
	h := fs.wrap(f, fs.nodeOf(name, f), name)
	for _, opt := range opts {
		opt.Apply(h)
	}
	return h, nil
}

// OpenReadWrite implements vfs.FS.
func (fs *fsys) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("open", name); err != nil {
		return nil, err
	}
	existing := d.lookup(name)
	f, err := d.mem.OpenReadWrite(name, category)
	if err != nil {
		return nil, err
	}
	n := existing
	if n == nil { // MemFS created it
		n = d.newFile(name)
		d.link(name, n)
	}
	h := fs.wrap(f, n, name)
	for _, opt := range opts {
		opt.Apply(h)
	}
	return h, nil
}

// OpenDir implements vfs.FS.
func (fs *fsys) OpenDir(name string) (vfs.File, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("open", name); err != nil {
		return nil, err
	}
	f, err := d.mem.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return fs.wrap(f, fs.nodeOf(name, f), name), nil
}

// Remove implements vfs.FS.
func (fs *fsys) Remove(name string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("remove", name); err != nil {
		return err
	}
	if err := d.mem.Remove(name); err != nil {
		return err
	}
	d.unlink(name)
	return nil
}

// RemoveAll implements vfs.FS.
func (fs *fsys) RemoveAll(name string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("remove", name); err != nil {
		return err
	}
	if err := d.mem.RemoveAll(name); err != nil {
		return err
	}
	d.unlink(name)
	return nil
}

// Rename implements vfs.FS.
func (fs *fsys) Rename(oldname, newname string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("rename", oldname); err != nil {
		return err
	}
	return fs.rename(oldname, newname)
}

// rename renames in the MemFS and the mirror. Callers hold d.mu.
func (fs *fsys) rename(oldname, newname string) error {
	d := fs.d
	if err := d.mem.Rename(oldname, newname); err != nil {
		// MemFS unlinks oldname before it looks for newname's directory:
		// a failed rename may have lost the file. Mirror that.
		if _, serr := d.mem.Stat(oldname); oserror.IsNotExist(serr) {
			d.unlink(oldname)
		}
		return err
	}
	if n := d.unlink(oldname); n != nil {
		d.link(newname, n)
	}
	return nil
}

// ReuseForWrite implements vfs.FS: Pebble recycles WAL files with it.
func (fs *fsys) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("reuse", oldname); err != nil {
		return nil, err
	}
	// MemFS.ReuseForWrite is a rename then an open for writing at offset
	// 0, without truncation. Done here in two steps so the mirror follows.
	if err := fs.rename(oldname, newname); err != nil {
		return nil, err
	}
	f, err := d.mem.OpenReadWrite(newname, category)
	if err != nil {
		return nil, err
	}
	return fs.wrap(f, fs.nodeOf(newname, f), newname), nil
}

// MkdirAll implements vfs.FS.
func (fs *fsys) MkdirAll(dir string, perm os.FileMode) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("mkdir", dir); err != nil {
		return err
	}
	if err := d.mem.MkdirAll(dir, perm); err != nil {
		return err
	}
	d.mkdirAll(dir)
	return nil
}

// Lock implements vfs.FS. MemFS creates the lock file anew.
func (fs *fsys) Lock(name string) (io.Closer, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("lock", name); err != nil {
		return nil, err
	}
	c, err := d.mem.Lock(name)
	if err != nil {
		return nil, err
	}
	d.link(name, d.newFile(name))
	return &lock{fs: fs, c: c, name: name}, nil
}

// List implements vfs.FS. Unlike MemFS's, the names come sorted: MemFS
// lists in map order, which would make callers that iterate a directory
// behave differently from run to run.
func (fs *fsys) List(dir string) ([]string, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("list", dir); err != nil {
		return nil, err
	}
	names, err := d.mem.List(dir)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Stat implements vfs.FS.
func (fs *fsys) Stat(name string) (vfs.FileInfo, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("stat", name); err != nil {
		return nil, err
	}
	return d.mem.Stat(name)
}

// GetDiskUsage implements vfs.FS (MemFS reports it unsupported).
func (fs *fsys) GetDiskUsage(name string) (vfs.DiskUsage, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fs.live("statfs", name); err != nil {
		return vfs.DiskUsage{}, err
	}
	return d.mem.GetDiskUsage(name)
}

// PathBase, PathJoin and PathDir use "/" as MemFS does.
func (*fsys) PathBase(p string) string       { return path.Base(p) }
func (*fsys) PathJoin(elem ...string) string { return path.Join(elem...) }
func (*fsys) PathDir(p string) string        { return path.Dir(p) }

// Unwrap implements vfs.FS. It returns nil, not the MemFS: nothing may
// reach the MemFS around the Disk's bookkeeping.
func (*fsys) Unwrap() vfs.FS { return nil }

// nodeOf returns the mirror node of a file or directory just opened at
// name. Callers hold d.mu. A name the mirror does not know (which would
// be a simdisk bug) gets a detached node: its writes are recorded but no
// crash can reach it.
func (fs *fsys) nodeOf(name string, f vfs.File) *node {
	if n := fs.d.lookup(name); n != nil {
		return n
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return newDir()
	}
	return fs.d.newFile(name)
}

// wrap returns the handle of a MemFS file just opened. Callers hold d.mu.
// A file is tracked by its node (for life); a directory by the name it
// was opened with, since only its syncs are faulted.
func (fs *fsys) wrap(f vfs.File, n *node, name string) *file {
	tracked := n.tracked
	if n.dir {
		tracked = fs.d.tracked(name)
	}
	return &file{fs: fs, f: f, n: n, name: name, tracked: tracked}
}

// lock is a held vfs.FS.Lock.
type lock struct {
	fs     *fsys
	c      io.Closer
	name   string
	closed bool
}

func (l *lock) Close() error {
	d := l.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.fs.live("unlock", l.name); err != nil {
		return err
	}
	return l.c.Close()
}
