package simdisk

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultMaxUnsyncedBytes bounds, per Tracked file, the record of writes
// made since the file's last Sync, when Config.MaxUnsyncedBytes is not set.
const DefaultMaxUnsyncedBytes = 64 << 20

// ErrCrashed is wrapped by every error of a file handle or FS value that
// was handed out before the last Crash: the process that held it is dead.
var ErrCrashed = errors.New("simdisk: file system lost in a crash")

// Config configures a Disk.
type Config struct {
	// Seed seeds the Disk's generator, which decides every fault and
	// every crash outcome.
	Seed uint64
	// Tracked reports whether the file or directory at path gets faults
	// and, for a file, unsynced-tail handling at a crash (see the package
	// documentation). It is called with paths made absolute and clean
	// ("/n1/partlog/t-0/00000000000000000000.log"): MemFS has a single
	// root. A file is Tracked or not for life, by the path it was created
	// at (or had when the Disk last crashed). It must be false for
	// Pebble's directories themselves, not only for what they hold:
	// Pebble syncs its directory from background goroutines, and a draw
	// there would make runs irreproducible. The simulator passes
	// Outside(pebbleDirs...). Nil means every file and directory. It is
	// called with the Disk locked and must not call the Disk.
	Tracked func(path string) bool
	// MaxUnsyncedBytes bounds each Tracked file's record of unsynced
	// writes; not positive means DefaultMaxUnsyncedBytes.
	MaxUnsyncedBytes int
}

// Faults are the probabilities, per operation on a Tracked file, of each
// injected fault. Values at or below 0 never fire, at or above 1 always.
// The zero value injects nothing.
type Faults struct {
	WriteErrorRate float64 // a write fails with EIO after a seeded prefix
	SyncErrorRate  float64 // a Sync/SyncData fails with EIO, syncing nothing
	DiskFullRate   float64 // a write or Preallocate fails with ENOSPC
}

// Stats counts what the Disk injected and lost since New.
type Stats struct {
	WriteErrors    int // writes failed with EIO
	ShortWrites    int // of WriteErrors, those that wrote a non-empty prefix
	SyncErrors     int // syncs failed with EIO
	DiskFullErrors int // writes and Preallocates failed with ENOSPC
	// RecordOverflows counts the times a file's record of unsynced writes
	// outgrew Config.MaxUnsyncedBytes and was dropped.
	RecordOverflows int
	Crashes         int
	// Mismatches counts files whose synced size at a crash was not what
	// the Disk had recorded, so their unsynced writes were dropped rather
	// than laid over the wrong data. Always 0 unless simdisk lost track of
	// a file: a bug.
	Mismatches int
}

// CrashReport says what one Crash did with the Tracked files' unsynced
// writes.
type CrashReport struct {
	KeptWrites    int // put back whole
	TornWrites    int // a prefix put back
	DroppedWrites int // lost
	// OverflowedFiles are files whose record had overflowed: they kept
	// only their synced data, their unsynced writes uncounted above.
	OverflowedFiles int
}

// Disk is one simulated node's disk. See the package documentation.
type Disk struct {
	// mu serializes every operation on the disk, its file systems and
	// their files. Everything below is guarded by it.
	mu       sync.Mutex
	trackedf func(string) bool
	maxRec   int
	rng      *rand.Rand
	faults   Faults
	full     bool
	stats    Stats

	mem  *vfs.MemFS
	root *node // mirror of mem's tree, see node
	cur  *fsys // the live FS; handles of any other are dead
}

// New returns an empty disk.
func New(cfg Config) *Disk {
	d := &Disk{
		trackedf: cfg.Tracked,
		maxRec:   cfg.MaxUnsyncedBytes,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5ad15c0ffee0dd17)),
		mem:      vfs.NewCrashableMem(),
		root:     newDir(),
	}
	if d.maxRec <= 0 {
		d.maxRec = DefaultMaxUnsyncedBytes
	}
	d.cur = &fsys{d: d}
	return d
}

// FS returns the current file system. It stays valid until the next Crash.
func (d *Disk) FS() vfs.FS {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// SetFaults sets the fault probabilities from now on.
func (d *Disk) SetFaults(f Faults) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = f
}

// SetFull starts (true) or ends (false) a disk-full episode, during which
// every Tracked write and Preallocate fails with ENOSPC.
func (d *Disk) SetFull(full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full = full
}

// Stats returns the counts of injected faults and losses so far.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Outside returns a Config.Tracked predicate that is false for each of
// dirs and everything below them, true elsewhere.
func Outside(dirs ...string) func(path string) bool {
	clean := make([]string, len(dirs))
	for i, dir := range dirs {
		clean[i] = canonical(dir)
	}
	return func(p string) bool {
		p = canonical(p)
		for _, dir := range clean {
			if p == dir || dir == "/" || strings.HasPrefix(p, dir+"/") {
				return false
			}
		}
		return true
	}
}

// Crash simulates power loss; see the package documentation. The FS and
// every file handed out before it are dead afterwards.
func (d *Disk) Crash() CrashReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	clone := d.mem.CrashClone(vfs.CrashCloneCfg{})
	c := crash{d: d, fs: clone, seen: make(map[*node]bool)}
	d.root = c.rebuild(d.root, "")
	d.mem = clone
	d.cur = &fsys{d: d}
	d.stats.Crashes++
	return c.report
}

// crash is one Crash in progress.
type crash struct {
	d      *Disk
	fs     *vfs.MemFS
	seen   map[*node]bool // hard-linked files are decided once
	report CrashReport
}

// rebuild returns the mirror of what CrashClone made of old at path p,
// putting back a share of the unsynced writes of each Tracked file on the
// way. It walks as CrashClone does: a directory keeps the entries it had
// at its last sync. Names are visited sorted so that draws come in a
// reproducible order.
func (c *crash) rebuild(old *node, p string) *node {
	if old.dir {
		n := newDir()
		for _, name := range slices.Sorted(maps.Keys(old.synced)) {
			n.children[name] = c.rebuild(old.synced[name], p+"/"+name)
		}
		n.synced = maps.Clone(n.children)
		return n
	}
	n := &node{tracked: c.d.tracked(p)}
	if old.tracked {
		c.replay(old, p)
	}
	if n.tracked {
		if fi, err := c.fs.Stat(p); err == nil {
			n.syncedLen = fi.Size()
		}
	}
	return n
}

// replay puts back the kept share of old's unsynced writes into the
// clone's file at p, and makes it durable there.
func (c *crash) replay(old *node, p string) {
	u := &old.unsynced
	first := !c.seen[old]
	c.seen[old] = true
	if u.lost {
		if first {
			c.report.OverflowedFiles++
		}
		return
	}
	if len(u.writes) == 0 {
		return
	}
	if first {
		// A hard-linked file is decided once; CrashClone made each of
		// its names a separate file, and each gets the same outcome.
		u.decide(c.d.rng)
		c.report.KeptWrites += u.keep
		dropped := len(u.writes) - u.keep
		if u.tear > 0 {
			c.report.TornWrites++
			dropped--
		}
		c.report.DroppedWrites += dropped
	}
	if u.keep == 0 && u.tear == 0 {
		return
	}
	f, err := c.fs.OpenReadWrite(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		c.d.stats.Mismatches++
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != old.syncedLen {
		c.d.stats.Mismatches++
		return
	}
	// MemFS cannot fail a write or sync of a file opened read-write.
	start := 0
	for _, w := range u.writes[:u.keep] {
		_, _ = f.WriteAt(u.data[start:start+w.n], w.off)
		start += w.n
	}
	if u.tear > 0 {
		w := u.writes[u.keep]
		_, _ = f.WriteAt(u.data[start:start+u.tear], w.off)
	}
	_ = f.Sync()
}

// injectWrite draws the fault, if any, for a write of n bytes to a file that
// is tracked or not: the length of the prefix to write and the error to
// return after writing it.
func (d *Disk) injectWrite(tracked bool, op, name string, n int) (int, error) {
	if !tracked || n == 0 {
		return n, nil
	}
	if d.full || d.chance(d.faults.DiskFullRate) {
		d.stats.DiskFullErrors++
		return 0, fmt.Errorf("simdisk: %s %s: injected fault: %w", op, name, syscall.ENOSPC)
	}
	if d.chance(d.faults.WriteErrorRate) {
		k := d.rng.IntN(n)
		d.stats.WriteErrors++
		if k > 0 {
			d.stats.ShortWrites++
		}
		return k, fmt.Errorf("simdisk: %s %s: injected fault after %d of %d bytes: %w", op, name, k, n, syscall.EIO)
	}
	return n, nil
}

// injectPreallocate draws the fault, if any, for a Preallocate.
func (d *Disk) injectPreallocate(tracked bool, name string) error {
	if tracked && (d.full || d.chance(d.faults.DiskFullRate)) {
		d.stats.DiskFullErrors++
		return fmt.Errorf("simdisk: preallocate %s: injected fault: %w", name, syscall.ENOSPC)
	}
	return nil
}

// injectSync draws the fault, if any, for a sync.
func (d *Disk) injectSync(tracked bool, name string) error {
	if tracked && d.chance(d.faults.SyncErrorRate) {
		d.stats.SyncErrors++
		return fmt.Errorf("simdisk: sync %s: injected fault: %w", name, syscall.EIO)
	}
	return nil
}

// chance draws true with probability p; it draws nothing when p <= 0, so
// a disk without faults consumes no randomness.
func (d *Disk) chance(p float64) bool {
	return p > 0 && d.rng.Float64() < p
}

func (d *Disk) tracked(p string) bool {
	return d.trackedf == nil || d.trackedf(canonical(p))
}
