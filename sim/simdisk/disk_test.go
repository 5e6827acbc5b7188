package simdisk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors/oserror"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// fixture helpers: each fails the test on an unexpected error.

func create(t *testing.T, fs vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return f
}

func write(t *testing.T, f vfs.File, p string) {
	t.Helper()
	if n, err := f.Write([]byte(p)); err != nil || n != len(p) {
		t.Fatalf("write %q: %d, %v", p, n, err)
	}
}

func syncFile(t *testing.T, f vfs.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	if err != nil {
		t.Fatalf("open dir %s: %v", dir, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("sync dir %s: %v", dir, err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close dir %s: %v", dir, err)
	}
}

// mkdir creates dir durably: it and every parent up to the root.
func mkdir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
	for p := fs.PathDir(dir); ; p = fs.PathDir(p) {
		syncDir(t, fs, p)
		if p == "/" {
			return
		}
	}
}

// content returns the file's bytes, or nil and false if it does not exist.
func content(t *testing.T, fs vfs.FS, name string) ([]byte, bool) {
	t.Helper()
	f, err := fs.Open(name)
	if oserror.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b, true
}

// TestCrashKeepsWhatWasDurable checks the namespace and synced-data rules,
// on Tracked files whose unsynced writes (none here) cannot blur them, and
// on untracked files, which keep their synced data only.
func TestCrashKeepsWhatWasDurable(t *testing.T) {
	type want struct {
		name   string
		exists bool
		data   string
	}
	tests := []struct {
		name string
		run  func(t *testing.T, fs vfs.FS)
		want []want
	}{{
		name: "synced file in synced dir survives",
		run: func(t *testing.T, fs vfs.FS) {
			f := create(t, fs, "/d/a")
			write(t, f, "hello")
			syncFile(t, f)
			syncDir(t, fs, "/d")
		},
		want: []want{{"/d/a", true, "hello"}},
	}, {
		name: "synced file whose dir was not synced vanishes",
		run: func(t *testing.T, fs vfs.FS) {
			f := create(t, fs, "/d/a")
			write(t, f, "hello")
			syncFile(t, f)
		},
		want: []want{{"/d/a", false, ""}},
	}, {
		name: "dir synced before the data: empty file",
		run: func(t *testing.T, fs vfs.FS) {
			create(t, fs, "/d/a")
			syncDir(t, fs, "/d")
		},
		want: []want{{"/d/a", true, ""}},
	}, {
		name: "unsynced rename is undone",
		run: func(t *testing.T, fs vfs.FS) {
			f := create(t, fs, "/d/a")
			write(t, f, "x")
			syncFile(t, f)
			syncDir(t, fs, "/d")
			if err := fs.Rename("/d/a", "/d/b"); err != nil {
				t.Fatal(err)
			}
		},
		want: []want{{"/d/a", true, "x"}, {"/d/b", false, ""}},
	}, {
		name: "unsynced remove is undone",
		run: func(t *testing.T, fs vfs.FS) {
			f := create(t, fs, "/d/a")
			write(t, f, "x")
			syncFile(t, f)
			syncDir(t, fs, "/d")
			if err := fs.Remove("/d/a"); err != nil {
				t.Fatal(err)
			}
		},
		want: []want{{"/d/a", true, "x"}},
	}, {
		name: "new subdirectory without its parent synced vanishes",
		run: func(t *testing.T, fs vfs.FS) {
			if err := fs.MkdirAll("/d/sub", 0o755); err != nil {
				t.Fatal(err)
			}
			f := create(t, fs, "/d/sub/a")
			syncFile(t, f)
			syncDir(t, fs, "/d/sub")
		},
		want: []want{{"/d/sub/a", false, ""}, {"/d/sub", false, ""}},
	}, {
		name: "untracked file keeps synced data only",
		run: func(t *testing.T, fs vfs.FS) {
			f := create(t, fs, "/db/wal")
			write(t, f, "synced")
			syncFile(t, f)
			syncDir(t, fs, "/db")
			write(t, f, "+unsynced")
		},
		want: []want{{"/db/wal", true, "synced"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Config{Seed: 1, Tracked: Outside("/db")})
			fs := d.FS()
			mkdir(t, fs, "/d")
			mkdir(t, fs, "/db")
			tt.run(t, fs)
			rep := d.Crash()
			if rep != (CrashReport{}) {
				t.Errorf("crash report %+v, want nothing to decide", rep)
			}
			for _, w := range tt.want {
				got, ok := content(t, d.FS(), w.name)
				if ok != w.exists || ok && string(got) != w.data {
					t.Errorf("%s: exists %v with %q, want exists %v with %q", w.name, ok, got, w.exists, w.data)
				}
			}
		})
	}
}

// TestCrashUnsyncedTail appends unsynced writes after a synced prefix and
// checks, seed by seed, that the file after the crash is the synced
// prefix, then the first KeptWrites writes whole, then a proper non-empty
// prefix of the next one if the report says one tore: nothing else.
func TestCrashUnsyncedTail(t *testing.T) {
	const synced = "SYNCED|"
	writes := []string{"alpha-", "bravo-", "charlie-", "delta-", "echo-"}
	full := synced + strings.Join(writes, "")
	var kept, torn, dropped int
	for seed := range uint64(64) {
		d := New(Config{Seed: seed})
		fs := d.FS()
		mkdir(t, fs, "/d")
		f := create(t, fs, "/d/seg")
		syncDir(t, fs, "/d")
		write(t, f, synced)
		syncFile(t, f)
		for _, w := range writes {
			write(t, f, w)
		}
		rep := d.Crash()
		got, ok := content(t, d.FS(), "/d/seg")
		if !ok {
			t.Fatalf("seed %d: file lost", seed)
		}
		if n := rep.KeptWrites + rep.TornWrites + rep.DroppedWrites; n != len(writes) || rep.TornWrites > 1 {
			t.Fatalf("seed %d: report %+v does not account for %d writes", seed, rep, len(writes))
		}
		whole := len(synced)
		for _, w := range writes[:rep.KeptWrites] {
			whole += len(w)
		}
		switch {
		case !bytes.HasPrefix([]byte(full), got):
			t.Fatalf("seed %d: file %q is not a prefix of what was written", seed, got)
		case rep.TornWrites == 0 && len(got) != whole:
			t.Fatalf("seed %d: file %q, want %q (report %+v)", seed, got, full[:whole], rep)
		case rep.TornWrites == 1 && (len(got) <= whole || len(got) >= whole+len(writes[rep.KeptWrites])):
			t.Fatalf("seed %d: file %q does not end in a torn write %q (report %+v)", seed, got, writes[rep.KeptWrites], rep)
		}
		kept += rep.KeptWrites
		torn += rep.TornWrites
		dropped += rep.DroppedWrites

		// What was put back is durable: a second crash changes nothing.
		if rep := d.Crash(); rep != (CrashReport{}) {
			t.Fatalf("seed %d: second crash decided %+v", seed, rep)
		}
		if again, _ := content(t, d.FS(), "/d/seg"); !bytes.Equal(again, got) {
			t.Fatalf("seed %d: second crash changed %q to %q", seed, got, again)
		}
	}
	if kept == 0 || torn == 0 || dropped == 0 {
		t.Fatalf("over 64 seeds: kept %d, torn %d, dropped %d writes; want each outcome to occur", kept, torn, dropped)
	}
}

// workload runs a fixed mix of tracked and untracked operations under
// faults, crashing twice, and returns a fingerprint of everything
// observable: each operation's error, the reports, stats and final files.
func workload(t *testing.T, seed uint64) string {
	t.Helper()
	d := New(Config{Seed: seed, Tracked: Outside("/db")})
	var log bytes.Buffer
	for round := range 2 {
		fs := d.FS()
		mkdir(t, fs, "/d")
		mkdir(t, fs, "/db")
		d.SetFaults(Faults{WriteErrorRate: 0.2, SyncErrorRate: 0.2, DiskFullRate: 0.1})
		for i := range 6 {
			for _, name := range []string{fmt.Sprintf("/d/f%d", i%3), "/db/x"} {
				f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				n, err := f.Write(bytes.Repeat([]byte{byte('a' + i)}, 10+i))
				fmt.Fprintf(&log, "r%d %s write %d %v\n", round, name, n, err)
				fmt.Fprintf(&log, "r%d %s sync %v\n", round, name, f.Sync())
				_ = f.Close()
			}
			d2, err := fs.OpenDir("/d")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&log, "r%d dirsync %v\n", round, d2.Sync())
			_ = d2.Close()
		}
		d.SetFaults(Faults{})
		fmt.Fprintf(&log, "crash %+v\n", d.Crash())
	}
	fs := d.FS()
	for _, dir := range []string{"/d", "/db"} {
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			b, _ := content(t, fs, dir+"/"+name)
			fmt.Fprintf(&log, "%s/%s %x\n", dir, name, sha256.Sum256(b))
		}
	}
	fmt.Fprintf(&log, "stats %+v\n", d.Stats())
	return log.String()
}

func TestSameSeedSameRun(t *testing.T) {
	for seed := range uint64(3) {
		a, b := workload(t, seed), workload(t, seed)
		if a != b {
			t.Fatalf("seed %d: two runs differ:\n%s\n---\n%s", seed, a, b)
		}
	}
	if workload(t, 1) == workload(t, 2) {
		t.Fatalf("seeds 1 and 2 ran identically: faults are not drawn from the seed")
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		full   bool
		// op runs against a fresh tracked file holding "base", synced.
		op    func(f vfs.File) error
		errno syscall.Errno
		check func(t *testing.T, d *Disk, f vfs.File)
		stats Stats
	}{{
		name:   "disk full writes nothing",
		faults: Faults{DiskFullRate: 1},
		op: func(f vfs.File) error {
			n, err := f.Write([]byte("more"))
			if n != 0 {
				return fmt.Errorf("wrote %d bytes", n)
			}
			return err
		},
		errno: syscall.ENOSPC,
		check: func(t *testing.T, d *Disk, f vfs.File) {
			if got, _ := content(t, d.FS(), "/d/f"); string(got) != "base" {
				t.Errorf("file %q after a full-disk write, want %q", got, "base")
			}
		},
		stats: Stats{DiskFullErrors: 1},
	}, {
		name:   "disk full fails preallocate",
		faults: Faults{DiskFullRate: 1},
		op:     func(f vfs.File) error { return f.Preallocate(0, 1<<20) },
		errno:  syscall.ENOSPC,
		stats:  Stats{DiskFullErrors: 1},
	}, {
		name: "full episode fails writeat",
		full: true,
		op: func(f vfs.File) error {
			_, err := f.WriteAt([]byte("more"), 4)
			return err
		},
		errno: syscall.ENOSPC,
		stats: Stats{DiskFullErrors: 1},
	}, {
		name:   "write error writes a prefix",
		faults: Faults{WriteErrorRate: 1},
		op: func(f vfs.File) error {
			n, err := f.WriteAt([]byte("0123456789"), 4)
			if n >= 10 {
				return fmt.Errorf("wrote all %d bytes", n)
			}
			return err
		},
		errno: syscall.EIO,
		check: func(t *testing.T, d *Disk, f vfs.File) {
			got, _ := content(t, d.FS(), "/d/f")
			if !bytes.HasPrefix([]byte("base0123456789"), got) || len(got) < 4 {
				t.Errorf("file %q is not base plus a prefix of the write", got)
			}
		},
		stats: Stats{WriteErrors: 1, ShortWrites: 1}, // seed 1 tears
	}, {
		name:   "sync error syncs nothing",
		faults: Faults{SyncErrorRate: 1},
		op: func(f vfs.File) error {
			if _, err := f.Write([]byte("-unsynced")); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return f.SyncData()
		},
		errno: syscall.EIO,
		check: func(t *testing.T, d *Disk, f vfs.File) {
			// The write is still unsynced: the crash decides it.
			d.SetFaults(Faults{})
			if rep := d.Crash(); rep.KeptWrites+rep.TornWrites+rep.DroppedWrites != 1 {
				t.Errorf("crash report %+v, want the one unsynced write decided", rep)
			}
		},
		stats: Stats{SyncErrors: 1, Crashes: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Config{Seed: 1, Tracked: Outside("/db")})
			fs := d.FS()
			mkdir(t, fs, "/d")
			mkdir(t, fs, "/db")
			f, err := fs.OpenReadWrite("/d/f", vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			write(t, f, "base")
			syncFile(t, f)
			syncDir(t, fs, "/d")

			// The same faults leave untracked files alone.
			d.SetFaults(Faults{WriteErrorRate: 1, SyncErrorRate: 1, DiskFullRate: 1})
			d.SetFull(true)
			u := create(t, fs, "/db/u")
			write(t, u, "fine")
			syncFile(t, u)
			if err := u.Preallocate(0, 100); err != nil {
				t.Fatalf("untracked preallocate: %v", err)
			}
			syncDir(t, fs, "/db")
			if s := d.Stats(); s != (Stats{}) {
				t.Fatalf("untracked operations counted faults: %+v", s)
			}

			d.SetFaults(tt.faults)
			d.SetFull(tt.full)
			err = tt.op(f)
			if !errors.Is(err, tt.errno) {
				t.Fatalf("got error %v, want %v", err, tt.errno)
			}
			if tt.check != nil {
				tt.check(t, d, f)
			}
			if s := d.Stats(); s != tt.stats {
				t.Fatalf("stats %+v, want %+v", s, tt.stats)
			}
		})
	}
}

func TestFullEpisodeEnds(t *testing.T) {
	d := New(Config{Seed: 1})
	fs := d.FS()
	mkdir(t, fs, "/d")
	f := create(t, fs, "/d/f")
	d.SetFull(true)
	for range 3 {
		if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("write while full: %v", err)
		}
	}
	d.SetFull(false)
	write(t, f, "ok")
	if got, _ := content(t, fs, "/d/f"); string(got) != "ok" {
		t.Fatalf("file %q, want %q", got, "ok")
	}
	if s := d.Stats(); s.DiskFullErrors != 3 {
		t.Fatalf("stats %+v, want 3 disk-full errors", s)
	}
}

// TestDeadAfterCrash checks that the old process's FS and handles fail
// every operation, and that nothing they try reaches the new FS.
func TestDeadAfterCrash(t *testing.T) {
	d := New(Config{Seed: 1})
	old := d.FS()
	mkdir(t, old, "/d")
	f := create(t, old, "/d/f")
	write(t, f, "durable")
	syncFile(t, f)
	syncDir(t, old, "/d")
	dir, err := old.OpenDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	lk, err := old.Lock("/d/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	d.Crash()

	buf := make([]byte, 4)
	ops := map[string]func() error{
		"write":        func() error { _, err := f.Write([]byte("x")); return err },
		"writeat":      func() error { _, err := f.WriteAt([]byte("x"), 0); return err },
		"read":         func() error { _, err := f.Read(buf); return err },
		"readat":       func() error { _, err := f.ReadAt(buf, 0); return err },
		"sync":         f.Sync,
		"syncdata":     f.SyncData,
		"syncto":       func() error { _, err := f.SyncTo(1); return err },
		"stat":         func() error { _, err := f.Stat(); return err },
		"preallocate":  func() error { return f.Preallocate(0, 1) },
		"prefetch":     func() error { return f.Prefetch(0, 1) },
		"dir sync":     dir.Sync,
		"close":        f.Close,
		"unlock":       lk.Close,
		"fs create":    func() error { _, err := old.Create("/d/g", vfs.WriteCategoryUnspecified); return err },
		"fs open":      func() error { _, err := old.Open("/d/f"); return err },
		"fs openrw":    func() error { _, err := old.OpenReadWrite("/d/f", vfs.WriteCategoryUnspecified); return err },
		"fs opendir":   func() error { _, err := old.OpenDir("/d"); return err },
		"fs remove":    func() error { return old.Remove("/d/f") },
		"fs removeall": func() error { return old.RemoveAll("/d") },
		"fs rename":    func() error { return old.Rename("/d/f", "/d/g") },
		"fs link":      func() error { return old.Link("/d/f", "/d/g") },
		"fs reuse":     func() error { _, err := old.ReuseForWrite("/d/f", "/d/g", vfs.WriteCategoryUnspecified); return err },
		"fs mkdir":     func() error { return old.MkdirAll("/e", 0o755) },
		"fs lock":      func() error { _, err := old.Lock("/d/L2"); return err },
		"fs list":      func() error { _, err := old.List("/d"); return err },
		"fs stat":      func() error { _, err := old.Stat("/d/f"); return err },
		"fs usage":     func() error { _, err := old.GetDiskUsage("/"); return err },
	}
	for _, name := range slices.Sorted(maps.Keys(ops)) {
		if err := ops[name](); !errors.Is(err, ErrCrashed) {
			t.Errorf("%s on the dead FS: %v, want ErrCrashed", name, err)
		}
	}
	got, ok := content(t, d.FS(), "/d/f")
	if !ok || string(got) != "durable" {
		t.Fatalf("new FS has /d/f = %q (exists %v), want %q", got, ok, "durable")
	}
	if names, _ := d.FS().List("/d"); !slices.Equal(names, []string{"f"}) {
		t.Fatalf("new FS lists %v in /d, want [f]", names)
	}
	// The new FS works, and a closed handle fails rather than panicking.
	g := create(t, d.FS(), "/d/g")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("x")); err == nil {
		t.Fatal("write on a closed handle succeeded")
	}
	if err := g.Close(); err == nil {
		t.Fatal("second close succeeded")
	}
}

// TestUnsyncedWritesFollowTheFile checks that unsynced writes belong to
// a file, not a name: they follow a durable rename, and a Create over a
// name does not hand the old file's writes to the new one.
func TestUnsyncedWritesFollowTheFile(t *testing.T) {
	t.Run("rename", func(t *testing.T) {
		for seed := range uint64(16) {
			d := New(Config{Seed: seed})
			fs := d.FS()
			mkdir(t, fs, "/d")
			f := create(t, fs, "/d/tmp")
			write(t, f, "abc")
			if err := fs.Rename("/d/tmp", "/d/seg"); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/d")
			rep := d.Crash()
			got, ok := content(t, d.FS(), "/d/seg")
			if !ok || rep.KeptWrites+rep.TornWrites+rep.DroppedWrites != 1 {
				t.Fatalf("seed %d: exists %v, report %+v", seed, ok, rep)
			}
			if want := "abc"[:len(got)]; string(got) != want || rep.KeptWrites == 1 && len(got) != 3 {
				t.Fatalf("seed %d: %q with report %+v", seed, got, rep)
			}
		}
	})
	t.Run("create over", func(t *testing.T) {
		for seed := range uint64(16) {
			d := New(Config{Seed: seed})
			fs := d.FS()
			mkdir(t, fs, "/d")
			old := create(t, fs, "/d/a")
			syncDir(t, fs, "/d") // the synced entry names the old file
			fresh := create(t, fs, "/d/a")
			write(t, fresh, "fresh")
			syncFile(t, fresh)
			write(t, old, "old")
			rep := d.Crash()
			got, _ := content(t, d.FS(), "/d/a")
			if !bytes.HasPrefix([]byte("old"), got) {
				t.Fatalf("seed %d: /d/a holds %q, want a prefix of the old file's write (report %+v)", seed, got, rep)
			}
		}
	})
}

func TestRecordOverflow(t *testing.T) {
	d := New(Config{Seed: 1, MaxUnsyncedBytes: 16})
	fs := d.FS()
	mkdir(t, fs, "/d")
	f := create(t, fs, "/d/a")
	syncDir(t, fs, "/d")
	write(t, f, "synced")
	syncFile(t, f)
	for range 5 {
		write(t, f, "0123456789") // the second one overflows
	}
	if s := d.Stats(); s.RecordOverflows != 1 {
		t.Fatalf("stats %+v, want one overflow", s)
	}
	rep := d.Crash()
	if rep != (CrashReport{OverflowedFiles: 1}) {
		t.Fatalf("report %+v, want one overflowed file", rep)
	}
	if got, _ := content(t, d.FS(), "/d/a"); string(got) != "synced" {
		t.Fatalf("file %q, want only its synced data", got)
	}

	// A sync starts a fresh record.
	f, err := d.FS().OpenReadWrite("/d/a", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		write(t, f, "0123456789")
	}
	syncFile(t, f)
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if rep := d.Crash(); rep.KeptWrites+rep.TornWrites+rep.DroppedWrites != 1 || rep.OverflowedFiles != 0 {
		t.Fatalf("report %+v, want the one write after the sync decided", rep)
	}
}

func TestOutside(t *testing.T) {
	tracked := Outside("/n1/partlog/__index", "n1/raft/")
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/n1/partlog/t-0/00.log", true},
		{"/n1/partlog", true},
		{"/n1/partlog/__index", false},
		{"/n1/partlog/__index/000001.log", false},
		{"n1/partlog/__index2", true},
		{"/n1/raft", false},
		{"//n1/raft/MANIFEST", false},
	} {
		if got := tracked(tt.path); got != tt.want {
			t.Errorf("Outside(...)(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestConcurrentUse runs untracked writers on goroutines (as Pebble's
// would) while the test thread writes tracked files and crashes; -race
// checks the locking, and the tracked outcome must not depend on them.
func TestConcurrentUse(t *testing.T) {
	run := func(withNoise bool) string {
		d := New(Config{Seed: 7, Tracked: Outside("/db")})
		mkdir(t, d.FS(), "/d")
		mkdir(t, d.FS(), "/db")
		var reports []CrashReport
		for round := range 3 {
			fs := d.FS()
			var wg sync.WaitGroup
			stop := make(chan struct{})
			if withNoise {
				for g := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 1000; i++ {
							select {
							case <-stop:
								return
							default:
							}
							f, err := fs.Create(fmt.Sprintf("/db/g%d-%d", g, i%4), vfs.WriteCategoryUnspecified)
							if err != nil {
								return // crashed under us: expected
							}
							_, _ = f.Write([]byte("noise"))
							_ = f.Sync()
							_ = f.Close()
						}
					}()
				}
			}
			d.SetFaults(Faults{WriteErrorRate: 0.3})
			for i := range 20 {
				f, err := fs.OpenReadWrite(fmt.Sprintf("/d/f%d", i%2), vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = f.Write([]byte(fmt.Sprintf("r%di%d;", round, i)))
				if i%5 == 0 {
					_ = f.Sync()
				}
				_ = f.Close()
			}
			syncDir(t, fs, "/d")
			reports = append(reports, d.Crash())
			close(stop)
			wg.Wait()
		}
		a, _ := content(t, d.FS(), "/d/f0")
		b, _ := content(t, d.FS(), "/d/f1")
		return fmt.Sprintf("%v %q %q", reports, a, b)
	}
	if quiet, noisy := run(false), run(true); quiet != noisy {
		t.Fatalf("untracked goroutines changed the tracked outcome:\n%s\n%s", quiet, noisy)
	}
}
