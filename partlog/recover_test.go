package partlog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// rewriteFile replaces a file's content with edit(content), through the
// FS (so it works on MemFS too), as damage done behind the log's back.
func rewriteFile(t *testing.T, fs vfs.FS, path string, edit func([]byte) []byte) {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	old := make([]byte, fi.Size())
	if err := readFullAt(f, old, 0); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	nf, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nf.Write(edit(old)); err != nil {
		t.Fatal(err)
	}
	if err := nf.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = nf.Close()
}

// logical cuts a copy of the active segment's file to the bytes holding
// batches, dropping any preallocated tail.
func logical(l *Log, b []byte) []byte { return b[:l.active().size.Load()] }

func TestRecoverTornTail(t *testing.T) {
	type setup struct {
		h      *history
		synced int64 // end offset covered by Sync
	}
	tests := []struct {
		name string
		// damage edits segment files after the crash; it returns the end
		// offset recovery must arrive at.
		damage func(t *testing.T, fs vfs.FS, l *Log, st setup) int64
		// quiet: nothing was lost, so recovery must not warn.
		quiet bool
	}{
		{"half a batch appended", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			half := buildBatch(t, st.h.end(), []int64{1, 2, 3}, 200).data
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte { return append(logical(l, b), half[:len(half)/2]...) })
			return st.h.end()
		}, false},
		{"header only", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			next := buildBatch(t, st.h.end(), []int64{1}, 10).data
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte { return append(logical(l, b), next[:30]...) })
			return st.h.end()
		}, false},
		{"flipped byte in the last batch body", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte { b = logical(l, b); b[len(b)-5] ^= 0x40; return b })
			return st.h.batches[len(st.h.batches)-1].base
		}, false},
		{"zeros after the data (unwritten blocks)", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte { return append(logical(l, b), make([]byte, 4096)...) })
			return st.h.end()
		}, true},
		{"garbage in the preallocated tail", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte {
				b = append(logical(l, b), make([]byte, 4096)...)
				b[len(b)-100] = 0x5a
				return b
			})
			return st.h.end()
		}, false},
		{"data lost but index kept", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			n := len(st.h.batches)
			cut := len(st.h.batches[n-1].data) + len(st.h.batches[n-2].data)
			rewriteFile(t, fs, l.active().path, func(b []byte) []byte { return logical(l, b)[:l.active().size.Load()-int64(cut)] })
			return st.h.batches[n-2].base
		}, false},
		{"corrupt batch in an earlier unsynced segment drops later segments", func(t *testing.T, fs vfs.FS, l *Log, st setup) int64 {
			// The first unsynced batch is the one at st.synced.
			var seg *segment
			for _, s := range l.segs {
				if s.base <= st.synced {
					seg = s
				}
			}
			var pos int64
			for _, b := range st.h.batches {
				if b.base >= seg.base && b.base < st.synced {
					pos += int64(len(b.data))
				}
			}
			rewriteFile(t, fs, seg.path, func(b []byte) []byte { b[pos+40] ^= 1; return b })
			return st.synced
		}, false},
	}
	for _, tc := range tests {
		for _, fsName := range []string{"disk", "mem"} {
			t.Run(tc.name+"/"+fsName, func(t *testing.T) {
				fs, dir := vfs.FS(vfs.NewMem()), "/d"
				if fsName == "disk" {
					fs, dir = vfs.Default, t.TempDir()
				}
				s := openTestStore(t, fs, dir)
				cfg := infiniteConfig(3000)
				l := openTestLog(t, s, testID, cfg)
				var h history
				h.appendN(t, l, 10, 5, 100, 0, func(o int64) int64 { return o })
				synced, err := l.Sync()
				if err != nil {
					t.Fatal(err)
				}
				h.epoch = 2 // the unsynced part starts a leader epoch
				h.appendN(t, l, 10, 5, 100, 0, func(o int64) int64 { return o })
				want := tc.damage(t, fs, l, setup{h: &h, synced: synced})
				crash(t, s)

				logger, logs := capturingLogger()
				s, err = Open(Options{Dir: dir, FS: fs, Logger: logger})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				l = openTestLog(t, s, testID, cfg)
				if l.EndOffset() != want {
					t.Fatalf("recovered end %d, want %d", l.EndOffset(), want)
				}
				h.truncate(want)
				if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, want)) {
					t.Fatal("recovered content differs from the intact prefix")
				}
				checkTimeQueries(t, l, &h)
				if tc.quiet && logs.String() != "" {
					t.Errorf("recovery warned about an intact log; log:\n%s", logs.String())
				}
				if !tc.quiet && !strings.Contains(logs.String(), "dropping") && !strings.Contains(logs.String(), "lost") {
					t.Errorf("recovery did not report the damage; log:\n%s", logs.String())
				}
				// Appends continue at the recovered end and survive a
				// clean reopen.
				h.appendN(t, l, 3, 2, 10, 0, constTs(1000))
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openTestLog(t, s, testID, cfg)
				if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
					t.Fatal("content differs after appending past the recovered end")
				}
			})
		}
	}
}

func TestRecoverRebuildsIndex(t *testing.T) {
	tests := []struct {
		name   string
		delete func(t *testing.T, s *Store, num uint32)
	}{
		{"suffix of entries and the recovery point lost", func(t *testing.T, s *Store, num uint32) {
			var k, k2 keyBuf
			b := s.db.NewBatch()
			_ = b.DeleteRange(k.offset(num, 57), k2.kindEnd(num, kindOffset), nil)
			_ = b.Delete(k.scalar(num, kindRecovery), nil)
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}},
		{"every key of the log lost", func(t *testing.T, s *Store, num uint32) {
			lo, hi := logRange(num)
			if err := s.db.DeleteRange(lo, hi, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}},
		{"recovery point kept, entries after it lost", func(t *testing.T, s *Store, num uint32) {
			var k, k2 keyBuf
			rp, _, _ := (&Log{db: s.db, num: num}).readScalar(kindRecovery)
			if err := s.db.DeleteRange(k.offset(num, rp), k2.kindEnd(num, kindOffset), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := openTestStore(t, fs, "/d")
			cfg := infiniteConfig(3000)
			l := openTestLog(t, s, testID, cfg)
			var h history
			h.appendN(t, l, 8, 5, 100, 0, func(o int64) int64 { return 1000 - o })
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			h.epoch = 4
			h.appendN(t, l, 4, 5, 100, 0, func(o int64) int64 { return 1000 + o })
			h.epoch = 7
			h.appendN(t, l, 4, 5, 100, 0, func(o int64) int64 { return 1000 + o })
			num := l.num
			tc.delete(t, s, num)
			crash(t, s)

			s = openTestStore(t, fs, "/d")
			defer s.Close()
			l = openTestLog(t, s, testID, cfg)
			if l.EndOffset() != h.end() {
				t.Fatalf("end %d, want %d", l.EndOffset(), h.end())
			}
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("content differs")
			}
			checkTimeQueries(t, l, &h)
		})
	}
}

func TestUnrecognizedFilesLeftAlone(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "/d")
	l := openTestLog(t, s, testID, infiniteConfig(1<<20))
	var h history
	h.appendN(t, l, 3, 2, 10, 0, constTs(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stray := fs.PathJoin("/d", testID.String(), "notes.log")
	f, err := fs.Create(stray, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("keep me"))
	_ = f.Close()

	logger, logs := capturingLogger()
	s, err = Open(Options{Dir: "/d", FS: fs, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l = openTestLog(t, s, testID, infiniteConfig(1<<20))
	if l.EndOffset() != h.end() {
		t.Fatalf("end %d, want %d", l.EndOffset(), h.end())
	}
	if _, err := fs.Stat(stray); err != nil {
		t.Fatalf("stray file removed: %v", err)
	}
	if !strings.Contains(logs.String(), "notes.log") {
		t.Fatalf("stray file not reported; log:\n%s", logs.String())
	}
}

// TestCrashKeepsSyncedData runs appends (in rising leader epochs), rolls,
// syncs, retention, DeleteRecordsBefore and truncation on a crashable
// in-memory FS and, at random moments, takes a crash clone (only synced
// data, plus random unsynced blocks in some rounds) and recovers it:
// everything a Sync covered must be there, the log must be a prefix of
// what was appended, and its epoch history what its batches imply.
func TestCrashKeepsSyncedData(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		fs := vfs.NewCrashableMem()
		s := openTestStore(t, fs, "/d")
		cfg := LogConfig{SegmentBytes: 2500, RetentionMs: -1, RetentionBytes: 12000}
		l := openTestLog(t, s, testID, cfg)
		var h history
		durable := int64(0)
		for step := range 50 {
			switch r := rng.IntN(10); {
			case r < 6:
				if rng.IntN(3) == 0 {
					h.epoch += 1 + rng.Int32N(3)
				}
				h.appendN(t, l, 1+rng.IntN(3), 1+rng.IntN(6), rng.IntN(150), 0, func(o int64) int64 { return o })
			case r < 8:
				end, err := l.Sync()
				if err != nil {
					t.Fatal(err)
				}
				durable = end
			case r < 9:
				if _, err := l.EnforceRetention(0); err != nil {
					t.Fatal(err)
				}
			case rng.IntN(3) == 0:
				// Anywhere, often inside a batch.
				if err := l.DeleteRecordsBefore(l.StartOffset() + rng.Int64N(l.EndOffset()-l.StartOffset()+1)); err != nil {
					t.Fatal(err)
				}
			default:
				if l.EndOffset()-l.StartOffset() > 10 {
					to := l.EndOffset() - 1 - rng.Int64N(10)
					if err := l.Truncate(to); err != nil {
						t.Fatal(err)
					}
					h.truncate(to)
					durable = min(durable, l.EndOffset())
				}
			}

			cc := vfs.CrashCloneCfg{}
			if step%2 == 1 {
				cc = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}
			}
			crashed := fs.CrashClone(cc)
			s2 := openTestStore(t, crashed, "/d")
			l2 := openTestLog(t, s2, testID, cfg)
			if l2.EndOffset() < durable {
				t.Fatalf("seed %d step %d: recovered end %d below synced end %d", seed, step, l2.EndOffset(), durable)
			}
			if l2.EndOffset() > h.end() {
				t.Fatalf("seed %d step %d: recovered end %d beyond appended end %d", seed, step, l2.EndOffset(), h.end())
			}
			// Start moves and truncations are durable when they return.
			start := l2.StartOffset()
			if start != l.StartOffset() {
				t.Fatalf("seed %d step %d: recovered start %d, want %d", seed, step, start, l.StartOffset())
			}
			// With end >= durable, this also shows every synced batch is there.
			got := readAll(t, l2, start, l2.EndOffset(), 1<<20)
			want := h.bytesFrom(start, l2.EndOffset())
			if start == l2.EndOffset() {
				want = nil // DeleteRecordsBefore inside a batch whose rest was lost
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d step %d: recovered [%d, %d) is not a prefix of the appended data", seed, step, start, l2.EndOffset())
			}
			checkEpochs(t, l, h.batches)
			checkEpochs(t, l2, h.batches)
			// The recovered log keeps working.
			h2 := history{epoch: h.epoch}
			h2.appendN(t, l2, 1, 1, 10, 0, constTs(1))
			if _, err := l2.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// faultFS fails WriteAt on segment files after writing half the bytes,
// while fail is set.
type faultFS struct {
	vfs.FS
	fail          atomic.Bool
	withTruncate  bool
	failTruncates atomic.Bool
}

type faultFile struct {
	vfs.File
	fs *faultFS
}

type faultFileTruncater struct{ faultFile }

func (f faultFileTruncater) Truncate(size int64) error {
	if f.fs.failTruncates.Load() {
		return errors.New("injected truncate failure")
	}
	return f.File.(truncater).Truncate(size)
}

var errInjected = errors.New("injected write failure")

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.fail.Load() {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errInjected
	}
	return f.File.WriteAt(p, off)
}

func (fs *faultFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	if _, ok := f.(truncater); ok && fs.withTruncate {
		return faultFileTruncater{faultFile{f, fs}}, nil
	}
	return faultFile{f, fs}, nil
}

func (fs *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if !strings.HasSuffix(name, segmentSuffix) {
		return fs.FS.Create(name, c)
	}
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *faultFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if !strings.HasSuffix(name, segmentSuffix) {
		return fs.FS.OpenReadWrite(name, c, opts...)
	}
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func TestAppendWriteErrorLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		disk         bool
		withTruncate bool
	}{
		{"disk, truncate in place", true, true},
		{"disk, copy fallback", true, false},
		{"mem, copy fallback", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, dir := vfs.FS(vfs.NewMem()), "/d"
			if tc.disk {
				base, dir = vfs.Default, t.TempDir()
			}
			fs := &faultFS{FS: base, withTruncate: tc.withTruncate}
			s := openTestStore(t, fs, dir)
			cfg := infiniteConfig(1 << 20)
			l := openTestLog(t, s, testID, cfg)
			var h history
			h.appendN(t, l, 3, 4, 100, 0, constTs(1))
			r, err := l.Read(0, 1<<20, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()

			fs.fail.Store(true)
			b := buildBatch(t, l.EndOffset(), []int64{1, 2}, 300)
			if err := l.Append(b.data, 0); !errors.Is(err, errInjected) {
				t.Fatalf("Append = %v, want the injected error", err)
			}
			fs.fail.Store(false)
			if l.EndOffset() != h.end() {
				t.Fatalf("end moved to %d", l.EndOffset())
			}
			fi, err := base.Stat(l.active().path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != l.Size() {
				t.Fatalf("file is %d bytes after the failed append, log %d", fi.Size(), l.Size())
			}
			// A region taken before still reads the same bytes.
			if got, err := r.AppendTo(nil); err != nil || !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatalf("earlier region: %v", err)
			}
			h.appendN(t, l, 2, 2, 10, 0, constTs(2))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, fs, dir)
			defer s.Close()
			l = openTestLog(t, s, testID, cfg)
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("content differs after reopen")
			}
		})
	}

	t.Run("undo fails: appends refused until reopen", func(t *testing.T) {
		dir := t.TempDir()
		fs := &faultFS{FS: vfs.Default, withTruncate: true}
		s := openTestStore(t, fs, dir)
		cfg := infiniteConfig(1 << 20)
		l := openTestLog(t, s, testID, cfg)
		var h history
		h.appendN(t, l, 2, 2, 10, 0, constTs(1))
		fs.fail.Store(true)
		fs.failTruncates.Store(true)
		// Many small records: the half of the batch that is not written
		// is not all zeros, so preallocated zeros cannot complete it.
		if err := l.Append(buildBatch(t, l.EndOffset(), []int64{1, 2, 3, 4, 5, 6, 7, 8}, 8).data, 0); err == nil {
			t.Fatal("append succeeded")
		}
		fs.fail.Store(false)
		fs.failTruncates.Store(false)
		if err := l.Append(buildBatch(t, l.EndOffset(), []int64{1}, 100).data, 0); err == nil {
			t.Fatal("append accepted after an undo failure")
		}
		crash(t, s)
		s = openTestStore(t, fs, dir)
		defer s.Close()
		l = openTestLog(t, s, testID, cfg)
		if l.EndOffset() != h.end() {
			t.Fatalf("end %d, want %d", l.EndOffset(), h.end())
		}
		h.appendN(t, l, 1, 1, 10, 0, constTs(1))
	})
}

// dirSyncFaultFS fails the Sync of partition directories (not the index's)
// while failDirSync is set: a rename lands, its directory sync does not.
// Segment writes fail as faultFS's do.
type dirSyncFaultFS struct {
	*faultFS
	failDirSync atomic.Bool
}

type dirSyncFaultDir struct {
	vfs.File
	fs *dirSyncFaultFS
}

var errInjectedDirSync = errors.New("injected directory sync failure")

func (d dirSyncFaultDir) Sync() error {
	if d.fs.failDirSync.Load() {
		return errInjectedDirSync
	}
	return d.File.Sync()
}

func (fs *dirSyncFaultFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.faultFS.OpenDir(name)
	if err != nil || strings.Contains(name, indexDirName) {
		return f, err
	}
	return dirSyncFaultDir{f, fs}, nil
}

// TestOpenMakesDirectoryEntriesDurable: a truncation copy renamed over a
// segment whose directory sync then failed leaves a name that only the
// page cache knows. The process dies and restarts, appends and syncs on
// that name; a power loss must not bring back the file the name pointed
// at before (with the torn append, or the batches a truncation cut) in
// place of the batches Sync reported durable. OpenLog syncs the directory
// for that.
func TestOpenMakesDirectoryEntriesDurable(t *testing.T) {
	for _, tc := range []struct {
		name string
		// cut makes the copy-and-rename whose directory sync fails, and
		// returns the end it leaves.
		cut func(t *testing.T, l *Log, fs *dirSyncFaultFS, h *history) int64
	}{
		{"undo of a failed append", func(t *testing.T, l *Log, fs *dirSyncFaultFS, h *history) int64 {
			fs.fail.Store(true)
			err := l.Append(buildBatch(t, l.EndOffset(), []int64{1, 2, 3, 4, 5, 6, 7, 8}, 8).data, 0)
			fs.fail.Store(false)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Append = %v, want the injected write failure", err)
			}
			return h.end()
		}},
		{"follower truncation", func(t *testing.T, l *Log, fs *dirSyncFaultFS, h *history) int64 {
			if err := l.Truncate(4); !errors.Is(err, errInjectedDirSync) {
				t.Fatalf("Truncate = %v, want the injected directory sync failure", err)
			}
			h.truncate(4)
			return 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			fs := &dirSyncFaultFS{faultFS: &faultFS{FS: mem}}
			cfg := infiniteConfig(1 << 20)
			s := openTestStore(t, fs, "/d")
			l := openTestLog(t, s, testID, cfg)
			var h history
			h.appendN(t, l, 4, 2, 50, 0, constTs(1)) // offsets 0-7, leader epoch 0
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}

			fs.failDirSync.Store(true)
			end := tc.cut(t, l, fs, &h)
			fs.failDirSync.Store(false)

			// The process dies (the page cache survives) and starts again.
			crash(t, s)
			s = openTestStore(t, fs, "/d")
			l = openTestLog(t, s, testID, cfg)
			if l.EndOffset() != end {
				t.Fatalf("end after restart %d, want %d", l.EndOffset(), end)
			}
			// The next leader's batches, durably.
			h.epoch = 1
			h.appendN(t, l, 3, 2, 50, 0, constTs(2))
			durable, err := l.Sync()
			if err != nil {
				t.Fatal(err)
			}

			// Power loss: only what was synced stays.
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			crash(t, s)
			s = openTestStore(t, crashed, "/d")
			defer s.Close()
			l = openTestLog(t, s, testID, cfg)
			if l.EndOffset() < durable {
				t.Fatalf("recovered end %d below the synced end %d", l.EndOffset(), durable)
			}
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, l.EndOffset())) {
				t.Fatal("recovered log is not what was appended: the file from before the rename came back")
			}
			checkEpochs(t, l, h.batches)
		})
	}
}
