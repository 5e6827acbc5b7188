//go:build linux

package partlog

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// debugCapturingLogger is capturingLogger at Debug level, so tests can
// see that a quiet case was noticed without being warned about.
func debugCapturingLogger() (*slog.Logger, *lockedBuffer) {
	var b lockedBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func physicalSize(t *testing.T, fs vfs.FS, path string) int64 {
	t.Helper()
	fi, err := fs.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkExactFiles asserts that every segment file is exactly as long as
// the batches it holds, and that Size adds those up.
func checkExactFiles(t *testing.T, fs vfs.FS, l *Log, h *history) {
	t.Helper()
	var total int64
	for _, seg := range l.segs {
		if got, want := physicalSize(t, fs, seg.path), seg.size.Load(); got != want {
			t.Errorf("segment %d: file is %d bytes, holds %d", seg.base, got, want)
		}
		total += seg.size.Load()
	}
	if want := int64(len(h.bytesFrom(l.StartOffset(), l.EndOffset()))); total != want || l.Size() != want {
		t.Errorf("segments hold %d bytes, Size() = %d, appended %d", total, l.Size(), want)
	}
}

func TestPreallocatedSegmentLifecycle(t *testing.T) {
	const segBytes = 64 << 10
	for _, tc := range []struct {
		name         string
		disk         bool
		wantPrealloc bool // a descriptor-less FS (MemFS) never preallocates
	}{
		{"disk", true, true},
		{"mem", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := vfs.FS(vfs.NewMem()), "/d"
			if tc.disk {
				fs, dir = vfs.Default, t.TempDir()
			}
			logger, logs := debugCapturingLogger()
			s, err := Open(Options{Dir: dir, FS: fs, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			cfg := infiniteConfig(segBytes)
			l := openTestLog(t, s, testID, cfg)
			var h history
			h.appendN(t, l, 5, 3, 100, 0, constTs(1))

			active := l.active()
			phys, logical := physicalSize(t, fs, active.path), active.size.Load()
			if tc.wantPrealloc && phys != segBytes {
				t.Fatalf("active segment is %d bytes on disk, want preallocated %d (logical %d)", phys, segBytes, logical)
			}
			if !tc.wantPrealloc && phys != logical {
				t.Fatalf("active segment is %d bytes on disk, logical %d", phys, logical)
			}
			if l.Size() != logical {
				t.Fatalf("Size() = %d, want logical %d", l.Size(), logical)
			}
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("read differs from appended")
			}

			// Fill past a few rolls: every rolled segment is trimmed.
			for len(l.segs) < 4 {
				h.appendN(t, l, 1, 10, 300, 0, constTs(2))
			}
			for _, seg := range l.segs[:len(l.segs)-1] {
				if got, want := physicalSize(t, fs, seg.path), seg.size.Load(); got != want {
					t.Errorf("rolled segment %d: file is %d bytes, holds %d", seg.base, got, want)
				}
			}
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, l, 0, l.EndOffset(), 4096); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("read across segments differs from appended")
			}

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(Options{Dir: dir, FS: fs, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l = openTestLog(t, s, testID, cfg)
			checkExactFiles(t, fs, l, &h)
			if l.EndOffset() != h.end() {
				t.Fatalf("end %d after clean reopen, want %d", l.EndOffset(), h.end())
			}
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("read after reopen differs from appended")
			}
			if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "preallocated tail") {
				t.Fatalf("clean close and reopen logged:\n%s", out)
			}
			h.appendN(t, l, 2, 2, 10, 0, constTs(3))
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("read after appending to the reopened log differs")
			}
		})
	}
}

// TestCrashWithPreallocatedTail kills the store after appends and a Sync,
// leaving the active segment's preallocated zeros on disk (the page cache
// survives a process crash, so written bytes stay too).
func TestCrashWithPreallocatedTail(t *testing.T) {
	const segBytes = 16 << 10
	for _, tc := range []struct {
		name string
		// more appends after the Sync, leaving the recovery point in an
		// earlier segment whose file then also gets a zero tail, as if
		// its trim had not reached the disk.
		rollAfterSync bool
	}{
		{"zeros after the synced end", false},
		{"zeros in a rolled segment too", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := vfs.Default, t.TempDir()
			s := openTestStore(t, fs, dir)
			cfg := infiniteConfig(segBytes)
			l := openTestLog(t, s, testID, cfg)
			var h history
			h.appendN(t, l, 6, 3, 200, 0, constTs(1))
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			synced := l.active()
			if tc.rollAfterSync {
				for len(l.segs) < 3 {
					h.appendN(t, l, 1, 3, 200, 0, constTs(2))
				}
				if err := os.Truncate(synced.path, synced.size.Load()+5000); err != nil {
					t.Fatal(err)
				}
			}
			active := l.active()
			if phys := physicalSize(t, fs, active.path); phys <= active.size.Load() {
				t.Fatalf("active segment is %d bytes on disk, not beyond its %d logical bytes", phys, active.size.Load())
			}
			crash(t, s)

			logger, logs := debugCapturingLogger()
			s, err := Open(Options{Dir: dir, FS: fs, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l = openTestLog(t, s, testID, cfg)
			if l.EndOffset() != h.end() {
				t.Fatalf("recovered end %d, want %d", l.EndOffset(), h.end())
			}
			checkExactFiles(t, fs, l, &h)
			out := logs.String()
			if !strings.Contains(out, "dropping preallocated tail") {
				t.Errorf("recovery did not note the preallocated tail; log:\n%s", out)
			}
			if strings.Contains(out, "level=WARN") {
				t.Errorf("recovery warned about preallocated zeros; log:\n%s", out)
			}
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("recovered content differs from appended")
			}

			// Appends continue at the recovered end and survive a clean
			// reopen with exact files.
			h.appendN(t, l, 3, 2, 10, 0, constTs(3))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTestLog(t, s, testID, cfg)
			checkExactFiles(t, fs, l, &h)
			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatal("content after appending to the recovered log differs")
			}
		})
	}
}

// TestRetentionBySizeCountsBatchesNotPreallocation: a preallocated active
// segment must not make the log look bigger than its batches.
func TestRetentionBySizeCountsBatchesNotPreallocation(t *testing.T) {
	s := openTestStore(t, vfs.Default, t.TempDir())
	defer s.Close()
	cfg := LogConfig{SegmentBytes: 8 << 10, RetentionMs: -1, RetentionBytes: 20 << 10}
	l := openTestLog(t, s, testID, cfg)
	var h history
	for len(l.segs) < 6 {
		h.appendN(t, l, 1, 5, 200, 0, constTs(1))
	}
	removed, err := l.EnforceRetention(0)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka's rule on logical sizes: delete the oldest segment while the
	// rest still holds RetentionBytes.
	var kept int64
	for _, seg := range l.segs {
		kept += seg.size.Load()
	}
	if first := l.segs[0].size.Load(); kept < cfg.RetentionBytes || kept-first >= cfg.RetentionBytes {
		t.Fatalf("retention removed %d segments, kept %d bytes (oldest %d) for a %d-byte limit", removed, kept, first, cfg.RetentionBytes)
	}
	if l.Size() != kept {
		t.Fatalf("Size() = %d, segments hold %d", l.Size(), kept)
	}
	if got := readAll(t, l, l.StartOffset(), l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(l.StartOffset(), h.end())) {
		t.Fatal("content after retention differs")
	}
}
