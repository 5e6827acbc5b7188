package partlog

import (
	"bytes"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// crashPointFS takes a crash clone of a crashable MemFS just before every
// mutating operation (write, sync, create, remove, rename) made by the log
// or by Pebble, so recovery can be checked from a crash between any two
// syscalls. expect captures, under the test's lock, what each clone must
// recover to.
type crashPointFS struct {
	vfs.FS
	mem *vfs.MemFS

	mu     sync.Mutex
	expect func() crashExpectation
	clones []crashClone
}

type crashExpectation struct {
	durable int64       // end offset covered by completed Syncs (and Truncates)
	batches []testBatch // every batch appended or being appended, in order
}

type crashClone struct {
	fs     *vfs.MemFS
	expect crashExpectation
}

func (c *crashPointFS) point() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expect == nil {
		return
	}
	c.clones = append(c.clones, crashClone{fs: c.mem.CrashClone(vfs.CrashCloneCfg{}), expect: c.expect()})
}

type crashPointFile struct {
	vfs.File
	c *crashPointFS
}

func (f crashPointFile) Write(p []byte) (int, error) { f.c.point(); return f.File.Write(p) }
func (f crashPointFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.point()
	return f.File.WriteAt(p, off)
}
func (f crashPointFile) Sync() error     { f.c.point(); return f.File.Sync() }
func (f crashPointFile) SyncData() error { f.c.point(); return f.File.SyncData() }

func (c *crashPointFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return crashPointFile{f, c}, nil
}

func (c *crashPointFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.point()
	return c.wrap(c.FS.Create(name, cat))
}

func (c *crashPointFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name, cat, opts...))
}

func (c *crashPointFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.point()
	return c.wrap(c.FS.ReuseForWrite(oldname, newname, cat))
}

func (c *crashPointFS) OpenDir(name string) (vfs.File, error) { return c.wrap(c.FS.OpenDir(name)) }

func (c *crashPointFS) Remove(name string) error { c.point(); return c.FS.Remove(name) }
func (c *crashPointFS) RemoveAll(name string) error {
	c.point()
	return c.FS.RemoveAll(name)
}
func (c *crashPointFS) Rename(a, b string) error { c.point(); return c.FS.Rename(a, b) }
func (c *crashPointFS) MkdirAll(dir string, perm os.FileMode) error {
	c.point()
	return c.FS.MkdirAll(dir, perm)
}

// TestCrashBetweenAnyTwoSyscalls runs a fixed workload (appends across
// rolls and leader epochs, syncs, retention, a truncation) and recovers a
// crash clone taken before every mutating file operation: each must
// recover a prefix of what was appended that holds everything a completed
// Sync covered, with the epoch history its batch headers imply.
func TestCrashBetweenAnyTwoSyscalls(t *testing.T) {
	mem := vfs.NewCrashableMem()
	cfs := &crashPointFS{FS: mem, mem: mem}
	s := openTestStore(t, cfs, "/d")
	cfg := LogConfig{SegmentBytes: 1500, RetentionMs: -1, RetentionBytes: 3000}
	l := openTestLog(t, s, testID, cfg)

	// What the clones are checked against. point() runs on the owner and
	// on Pebble's goroutines alike, so it reads this under stateMu.
	var stateMu sync.Mutex
	var h history
	var pending []testBatch
	durable := int64(0)
	cfs.mu.Lock()
	cfs.expect = func() crashExpectation {
		stateMu.Lock()
		defer stateMu.Unlock()
		e := crashExpectation{durable: durable, batches: slices.Clone(h.batches)}
		e.batches = append(e.batches, pending...)
		return e
	}
	cfs.mu.Unlock()

	// Append i: the leader epoch rises every five appends, with gaps, the
	// first five unstamped (-1); the last append of each five carries a
	// second batch of the next epoch, as a follower copying a leader's
	// batches across an epoch change does.
	appendOne := func(i, recs int) {
		epoch := int32(i/5)*2 - 1
		b := buildEpochBatch(t, l.EndOffset(), slices.Repeat([]int64{7}, recs), 120, epoch)
		bs, data := []testBatch{b}, b.data
		if i%5 == 4 {
			b2 := buildEpochBatch(t, b.last+1, []int64{7}, 120, epoch+1)
			bs, data = append(bs, b2), append(slices.Clone(b.data), b2.data...)
		}
		stateMu.Lock()
		pending = bs
		stateMu.Unlock()
		if err := l.Append(data, 0); err != nil {
			t.Fatal(err)
		}
		stateMu.Lock()
		h.batches = append(h.batches, bs...)
		pending = nil
		stateMu.Unlock()
	}
	syncNow := func() {
		end, err := l.Sync()
		if err != nil {
			t.Fatal(err)
		}
		stateMu.Lock()
		durable = end
		stateMu.Unlock()
	}
	for i := range 24 {
		appendOne(i, 1+i%4)
		if i%3 == 2 {
			syncNow()
		}
		if i%8 == 7 {
			if _, err := l.EnforceRetention(0); err != nil {
				t.Fatal(err)
			}
		}
		if i == 17 {
			to := l.EndOffset() - 2
			var after history
			after.batches = slices.Clone(h.batches)
			after.truncate(to)
			stateMu.Lock()
			durable = min(durable, after.end())
			stateMu.Unlock()
			if err := l.Truncate(to); err != nil {
				t.Fatal(err)
			}
			stateMu.Lock()
			h.truncate(to)
			stateMu.Unlock()
		}
	}
	syncNow()
	checkEpochs(t, l, h.batches)
	if len(l.EpochEntries()) < 4 {
		t.Fatalf("workload left only epoch history %v", l.EpochEntries())
	}
	cfs.mu.Lock()
	cfs.expect = nil
	clones := cfs.clones
	cfs.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(clones) < 50 {
		t.Fatalf("only %d crash points", len(clones))
	}
	t.Logf("%d crash points", len(clones))

	recovered := 0
	for i, c := range clones {
		s2, err := Open(Options{Dir: "/d", FS: c.fs, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("crash point %d: open store: %v", i, err)
		}
		l2, err := s2.OpenLog(testID, cfg)
		if err != nil {
			// A crash before the log's directory was durable.
			if c.expect.durable > 0 {
				t.Fatalf("crash point %d: open log: %v", i, err)
			}
			_ = s2.Close()
			continue
		}
		start, end := l2.StartOffset(), l2.EndOffset()
		if end < c.expect.durable {
			t.Fatalf("crash point %d: recovered end %d below synced end %d", i, end, c.expect.durable)
		}
		// The recovered batches must be exactly the appended ones, ending
		// on a batch boundary.
		want := (&history{batches: c.expect.batches}).bytesFrom(start, end)
		boundary := end == start
		for _, b := range c.expect.batches {
			boundary = boundary || b.last+1 == end
		}
		got := readAll(t, l2, start, end, 1<<20)
		if !boundary || !bytes.Equal(got, want) {
			t.Fatalf("crash point %d: recovered [%d, %d) is not what was appended", i, start, end)
		}
		checkEpochs(t, l2, c.expect.batches)
		if end > start {
			recovered++
		}
		// And it takes appends again, in a new leader epoch.
		more := history{epoch: 1000}
		more.appendN(t, l2, 1, 1, 10, 0, constTs(1))
		if got := l2.EpochEntries(); got[len(got)-1] != (EpochEntry{1000, end}) {
			t.Fatalf("crash point %d: epoch history after an append %v", i, got)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if recovered < len(clones)/2 {
		t.Fatalf("only %d of %d crash points recovered any data", recovered, len(clones))
	}
}
