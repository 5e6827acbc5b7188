package raftlog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/raft/v3/raftpb"
)

// crashFS wraps a crashable MemFS and, just before every operation that
// changes the file system (create, write, sync, rename, remove, link,
// mkdir), takes a crash clone holding exactly the synced data and, while
// torn is set, one holding a random part of the unsynced data too (a torn
// write). Each clone records which states of the workload's history it
// may recover to.
//
// Torn clones are taken only while the Storage is open, not during Open
// or Close: there Pebble creates a MANIFEST and then the marker naming it
// and syncs the directory once, relying on directory entries becoming
// durable in the order they were made (as journaling file systems
// provide). A torn clone may keep the marker without the MANIFEST, a
// crash no real file system produces and Pebble does not survive. While
// open, what is unsynced is WAL data, which is what torn clones test.
type crashFS struct {
	vfs.FS
	mem *vfs.MemFS

	mu     sync.Mutex
	rng    *rand.Rand
	window func() (lo, hi int) // nil: take no clones
	torn   bool
	clones []crashClone
}

func (c *crashFS) setTorn(torn bool) {
	c.mu.Lock()
	c.torn = torn
	c.mu.Unlock()
}

type crashClone struct {
	fs     *vfs.MemFS
	lo, hi int // the clone must recover to one of history[lo..hi]
	torn   bool
}

func (c *crashFS) point() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.window == nil {
		return
	}
	lo, hi := c.window()
	c.clones = append(c.clones, crashClone{fs: c.mem.CrashClone(vfs.CrashCloneCfg{}), lo: lo, hi: hi})
	if c.torn {
		torn := c.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: c.rng})
		c.clones = append(c.clones, crashClone{fs: torn, lo: lo, hi: hi, torn: true})
	}
}

// takeClones hands over the clones taken so far.
func (c *crashFS) takeClones() []crashClone {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.clones
	c.clones = nil
	return cl
}

func (c *crashFS) file(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return crashFile{File: f, c: c}, nil
}

func (c *crashFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.point()
	return c.file(c.FS.Create(name, cat))
}

func (c *crashFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return c.file(c.FS.OpenReadWrite(name, cat, opts...))
}

func (c *crashFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.point()
	return c.file(c.FS.ReuseForWrite(oldname, newname, cat))
}

func (c *crashFS) OpenDir(name string) (vfs.File, error) { return c.file(c.FS.OpenDir(name)) }

func (c *crashFS) Link(oldname, newname string) error {
	c.point()
	return c.FS.Link(oldname, newname)
}

func (c *crashFS) Remove(name string) error    { c.point(); return c.FS.Remove(name) }
func (c *crashFS) RemoveAll(name string) error { c.point(); return c.FS.RemoveAll(name) }
func (c *crashFS) Rename(from, to string) error {
	c.point()
	return c.FS.Rename(from, to)
}

func (c *crashFS) MkdirAll(dir string, perm os.FileMode) error {
	c.point()
	return c.FS.MkdirAll(dir, perm)
}

type crashFile struct {
	vfs.File
	c *crashFS
}

func (f crashFile) Write(p []byte) (int, error) { f.c.point(); return f.File.Write(p) }
func (f crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.point()
	return f.File.WriteAt(p, off)
}
func (f crashFile) Sync() error     { f.c.point(); return f.File.Sync() }
func (f crashFile) SyncData() error { f.c.point(); return f.File.SyncData() }

// TestCrashAtAnyWrite runs seeded random workloads (SaveReady synced and
// not, with and without snapshots, CreateSnapshot, Compact, Close and
// reopen) and recovers a crash clone taken before every file system
// change. Each recovery must open, and must equal a state the workload
// passed through: never torn, never older than the last write that synced
// (a returned synced SaveReady, CreateSnapshot, Compact, or a Close), at
// most the write in flight.
func TestCrashAtAnyWrite(t *testing.T) {
	tests := []struct {
		name string
		seed uint64
		ops  int
	}{
		{"seed 1", 1, 120},
		{"seed 2", 2, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 1))
			mem := vfs.NewCrashableMem()
			cfs := &crashFS{FS: mem, mem: mem, rng: rand.New(rand.NewPCG(tt.seed, 2))}

			// history[i] is the state after the i-th write (history[0]: empty);
			// ops[i] says which write that was, for failure messages.
			m := newModel()
			var (
				histMu  sync.Mutex
				history = []string{describe(m)}
				ops     = []string{"open"}
				durable = 0 // history index every recovery must reach
			)
			cfs.mu.Lock()
			cfs.window = func() (int, int) {
				histMu.Lock()
				defer histMu.Unlock()
				return durable, len(history) - 1
			}
			cfs.mu.Unlock()
			record := func(o op, err error) {
				histMu.Lock()
				defer histMu.Unlock()
				history = append(history, describe(m))
				ops = append(ops, fmt.Sprintf("%v → %v", o, err))
			}
			markDurable := func() {
				histMu.Lock()
				defer histMu.Unlock()
				durable = len(history) - 1
			}

			clones, later, torn := 0, 0, 0
			verify := func() {
				histMu.Lock()
				hist, opsSoFar := slices.Clone(history), slices.Clone(ops)
				histMu.Unlock()
				for _, cl := range cfs.takeClones() {
					clones++
					if cl.torn {
						torn++
					}
					s, err := Open(Options{Dir: "/raft", FS: cl.fs, Logger: quietLogger()})
					if err != nil {
						t.Fatalf("crash clone (torn=%v) during %s does not open: %v", cl.torn, opsSoFar[cl.hi], err)
					}
					got := describe(s)
					k := slices.Index(hist[cl.lo:cl.hi+1], got)
					if k < 0 {
						t.Fatalf("crash clone (torn=%v) recovered a state (history index %d) outside [%d, %d], writes %q:\n%s\nlast durable:\n%s",
							cl.torn, slices.Index(hist, got), cl.lo, cl.hi, opsSoFar[cl.lo:cl.hi+1], got, hist[cl.lo])
					}
					if k > 0 {
						later++
					}
					// The recovered storage takes writes.
					last, _ := s.LastIndex()
					e := &pb.Entry{Index: new(last + 1), Term: new(uint64(1000))}
					if err := s.SaveReady(&pb.HardState{Term: new(uint64(1000))}, []*pb.Entry{e}, nil, true); err != nil {
						t.Fatalf("append after recovery: %v", err)
					}
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}

			s := openTest(t, cfs, "/raft")
			cfs.setTorn(true)
			verify()
			for step := range tt.ops {
				o := genOp(rng, m)
				if o.kind == opReopen {
					cfs.setTorn(false)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					// Close leaves everything durable: Pebble syncs its WAL.
					markDurable()
					s = openTest(t, cfs, "/raft")
					cfs.setTorn(true)
					if got, want := describe(s), describe(m); got != want {
						t.Fatalf("step %d: reopened state:\n%s\nwant:\n%s", step, got, want)
					}
					verify()
					continue
				}
				_, wantErr := o.apply(m)
				record(o, wantErr)
				if _, err := o.apply(s); err != wantErr {
					t.Fatalf("step %d: %v: %v, want %v", step, o, err, wantErr)
				}
				if wantErr == nil && o.durable() {
					markDurable()
				}
				verify()
			}
			cfs.mu.Lock()
			cfs.window = nil
			cfs.mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d crash clones (%d torn) recovered, %d of them to a state after the last durable one", clones, torn, later)
		})
	}
}
