package partlog

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestAppendReadRoundTripAcrossRolls(t *testing.T) {
	for _, fsName := range []string{"disk", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			fs, dir := vfs.Default, t.TempDir()
			if fsName == "mem" {
				fs, dir = vfs.NewMem(), "/data"
			}
			s := openTestStore(t, fs, dir)
			defer s.Close()
			l := openTestLog(t, s, testID, infiniteConfig(4096))
			var h history
			for i := range 60 {
				h.appendN(t, l, 1, 1+i%7, 50+i*13%300, 1000, constTs(int64(i)))
			}
			if got, want := l.EndOffset(), h.end(); got != want {
				t.Fatalf("EndOffset = %d, want %d", got, want)
			}
			if n := len(l.segs); n < 3 {
				t.Fatalf("%d segments, want several rolls", n)
			}
			names, err := fs.List(fs.PathJoin(dir, testID.String()))
			if err != nil {
				t.Fatal(err)
			}
			for _, seg := range l.segs {
				if !slices.Contains(names, segmentName(seg.base)) {
					t.Errorf("segment file %s missing from %v", segmentName(seg.base), names)
				}
			}
			var total int64
			for _, b := range h.batches {
				total += int64(len(b.data))
			}
			if l.Size() != total {
				t.Errorf("Size = %d, want %d", l.Size(), total)
			}

			if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
				t.Fatalf("sequential read differs from appended bytes")
			}
			// Every offset reads from the batch holding it.
			for off := int64(0); off < l.EndOffset(); off++ {
				r, err := l.Read(off, 1, l.EndOffset())
				if err != nil {
					t.Fatalf("read %d: %v", off, err)
				}
				got, err := r.AppendTo(nil)
				r.Release()
				if err != nil {
					t.Fatal(err)
				}
				want := h.bytesFrom(off, off+1)
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d: got %d bytes, want the %d-byte batch holding it", off, len(got), len(want))
				}
			}
		})
	}
}

func TestReadLimits(t *testing.T) {
	s := openTestStore(t, vfs.NewMem(), "/d")
	defer s.Close()
	// Segment of 4 batches of 5 records each, ~700 bytes per batch.
	l := openTestLog(t, s, testID, infiniteConfig(3000))
	var h history
	h.appendN(t, l, 8, 5, 100, 0, constTs(1))
	bsize := len(h.batches[0].data)
	if l.segs[1].base != 20 {
		t.Fatalf("test assumes 4 batches per segment; second segment starts at %d", l.segs[1].base)
	}
	if err := l.DeleteRecordsBefore(3); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		limit    int64
		want     []int // indexes of the batches returned
		wantErr  error
	}{
		{"one batch fits", 5, bsize, 40, []int{1}, nil},
		{"maxBytes below one batch still returns one (KIP-74)", 5, 1, 40, []int{1}, nil},
		{"zero maxBytes returns one", 5, 0, 40, []int{1}, nil},
		{"two fit exactly", 5, 2 * bsize, 40, []int{1, 2}, nil},
		{"two and a half fit two", 5, 2*bsize + bsize/2, 40, []int{1, 2}, nil},
		{"stops at segment end", 5, 1 << 20, 40, []int{1, 2, 3}, nil},
		{"next segment", 20, 1 << 20, 40, []int{4, 5, 6, 7}, nil},
		{"offset mid batch", 27, 1 << 20, 40, []int{5, 6, 7}, nil},
		{"limit excludes batches at or above it", 20, 1 << 20, 30, []int{4, 5}, nil},
		{"limit inside a batch includes it", 20, 1 << 20, 31, []int{4, 5, 6}, nil},
		{"limit beyond end is clamped", 35, 1 << 20, 1000, []int{7}, nil},
		{"offset at limit is empty", 30, 1 << 20, 30, nil, nil},
		{"offset at end is empty", 40, 1 << 20, 40, nil, nil},
		{"start offset mid batch", 3, 1 << 20, 40, []int{0, 1, 2, 3}, nil},
		{"below start", 2, 1 << 20, 40, nil, ErrOffsetOutOfRange},
		{"beyond end", 41, 1 << 20, 50, nil, ErrOffsetOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.Read(tc.offset, tc.maxBytes, tc.limit)
			defer r.Release()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, err := r.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, i := range tc.want {
				want = append(want, h.batches[i].data...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want batches %v (%d bytes)", len(got), tc.want, len(want))
			}
			if r.Len() != int64(len(want)) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(want))
			}
		})
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	s := openTestStore(t, vfs.NewMem(), "/d")
	defer s.Close()
	l := openTestLog(t, s, testID, infiniteConfig(1<<20))
	var h history
	h.appendN(t, l, 2, 3, 10, 0, constTs(1))
	good := buildBatch(t, 6, []int64{1, 2}, 10).data
	corruptMagic := slices.Clone(good)
	corruptMagic[16] = 7

	tests := []struct {
		name    string
		records []byte
	}{
		{"empty", nil},
		{"gap in offsets", buildBatch(t, 7, []int64{1}, 10).data},
		{"offset overlap", buildBatch(t, 5, []int64{1}, 10).data},
		{"partial batch", good[:len(good)-1]},
		{"trailing garbage", append(slices.Clone(good), 1, 2, 3)},
		{"bad magic", corruptMagic},
		{"second batch not contiguous", append(slices.Clone(good), buildBatch(t, 9, []int64{1}, 10).data...)},
		{"header only", good[:30]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end, size := l.EndOffset(), l.Size()
			if err := l.Append(tc.records, 0); err == nil {
				t.Fatal("Append accepted bad input")
			}
			if l.EndOffset() != end || l.Size() != size || l.active().size.Load() != size {
				t.Fatalf("failed append changed the log: end %d→%d size %d→%d", end, l.EndOffset(), size, l.Size())
			}
		})
	}
	// Two batches at once are fine.
	two := append(slices.Clone(good), buildBatch(t, 8, []int64{3}, 10).data...)
	if err := l.Append(two, 0); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 9 {
		t.Fatalf("EndOffset = %d, want 9", l.EndOffset())
	}
}

func TestRollBySegmentMs(t *testing.T) {
	s := openTestStore(t, vfs.NewMem(), "/d")
	defer s.Close()
	l := openTestLog(t, s, testID, LogConfig{SegmentBytes: 1 << 20, SegmentMs: 100, RetentionMs: -1, RetentionBytes: -1})
	var h history
	h.appendN(t, l, 1, 1, 10, 1000, constTs(1000))
	h.appendN(t, l, 1, 1, 10, 1100, constTs(1100)) // exactly SegmentMs old: no roll
	if len(l.segs) != 1 {
		t.Fatalf("%d segments after appends within SegmentMs", len(l.segs))
	}
	h.appendN(t, l, 1, 1, 10, 1101, constTs(1101))
	if len(l.segs) != 2 || l.active().base != 2 {
		t.Fatalf("no roll after SegmentMs: %d segments", len(l.segs))
	}
	// After reopening, the first batch's timestamp stands in for the
	// first append time.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, s, testID, LogConfig{SegmentBytes: 1 << 20, SegmentMs: 100, RetentionMs: -1, RetentionBytes: -1})
	h.appendN(t, l, 1, 1, 10, 1150, constTs(1150))
	if len(l.segs) != 2 {
		t.Fatalf("rolled too early after reopen")
	}
	h.appendN(t, l, 1, 1, 10, 1202, constTs(1202))
	if len(l.segs) != 3 {
		t.Fatalf("no roll after reopen: %d segments", len(l.segs))
	}
	if got := readAll(t, l, 0, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(0, h.end())) {
		t.Fatal("content differs")
	}
}

func TestStoreListDeleteRecreate(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "/d")
	ids := []LogID{{"b", 1}, {"a", 10}, {"a", 2}, {"a.b_c-d", 0}}
	for _, id := range ids {
		l := openTestLog(t, s, id, infiniteConfig(1<<20))
		var h history
		h.appendN(t, l, 3, 2, 10, 0, constTs(5))
	}
	if _, err := s.OpenLog(ids[0], infiniteConfig(1<<20)); !errors.Is(err, ErrLogOpen) {
		t.Fatalf("second open: %v, want ErrLogOpen", err)
	}
	for _, bad := range []LogID{{"", 0}, {"..", 0}, {"a/b", 0}, {"a", -1}, {"x\x00", 0}} {
		if _, err := s.OpenLog(bad, LogConfig{}); err == nil {
			t.Errorf("OpenLog(%q) accepted", bad)
		}
	}
	got, err := s.ListLogs()
	if err != nil {
		t.Fatal(err)
	}
	want := []LogID{{"a", 2}, {"a", 10}, {"a.b_c-d", 0}, {"b", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("ListLogs = %v, want %v", got, want)
	}

	if err := s.DeleteLog(LogID{"a", 2}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ListLogs()
	if slices.Contains(got, LogID{"a", 2}) {
		t.Fatalf("deleted log still listed: %v", got)
	}
	l := openTestLog(t, s, LogID{"a", 2}, infiniteConfig(1<<20))
	if l.StartOffset() != 0 || l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("recreated log not empty: [%d, %d) %d bytes", l.StartOffset(), l.EndOffset(), l.Size())
	}
	n := 0
	_ = l.Batches(0, func(BatchInfo) bool { n++; return true })
	if n != 0 {
		t.Fatalf("recreated log has %d index entries", n)
	}

	// A deletion interrupted after the rename finishes at the next Open,
	// index included.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dir := fs.PathJoin("/d", LogID{"b", 1}.String())
	if err := fs.Rename(dir, dir+deletedSuffix); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, fs, "/d")
	defer s.Close()
	names, _ := fs.List("/d")
	for _, n := range names {
		if strings.HasSuffix(n, deletedSuffix) {
			t.Fatalf("leftover %s after reopen", n)
		}
	}
	l = openTestLog(t, s, LogID{"b", 1}, infiniteConfig(1<<20))
	if l.EndOffset() != 0 {
		t.Fatalf("half-deleted log came back with end %d", l.EndOffset())
	}
}

func TestCloseAndReopenRestoresState(t *testing.T) {
	fs := vfs.NewMem()
	logger, warnings := capturingLogger()
	s, err := Open(Options{Dir: "/d", FS: fs, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l := openTestLog(t, s, testID, infiniteConfig(2000))
	var h history
	h.appendN(t, l, 20, 4, 50, 0, func(o int64) int64 { return 1000 + o*10 })
	if err := l.DeleteRecordsBefore(22); err != nil {
		t.Fatal(err)
	}
	wantStart, wantEnd, wantSize := l.StartOffset(), l.EndOffset(), l.Size()
	wantMaxTs, wantMaxOff := l.MaxTimestamp()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Dir: "/d", FS: fs, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l = openTestLog(t, s, testID, infiniteConfig(2000))
	if l.StartOffset() != wantStart || l.EndOffset() != wantEnd || l.Size() != wantSize {
		t.Fatalf("reopened [%d, %d) %d bytes, want [%d, %d) %d bytes",
			l.StartOffset(), l.EndOffset(), l.Size(), wantStart, wantEnd, wantSize)
	}
	if ts, off := l.MaxTimestamp(); ts != wantMaxTs || off != wantMaxOff {
		t.Fatalf("MaxTimestamp = (%d, %d), want (%d, %d)", ts, off, wantMaxTs, wantMaxOff)
	}
	if got := readAll(t, l, 22, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(22, h.end())) {
		t.Fatal("content differs after reopen")
	}
	if off, _, ok, err := l.OffsetForTimestamp(1000 + 50*10); err != nil || !ok || off != 50 {
		t.Fatalf("OffsetForTimestamp after reopen = %d %v %v, want 50", off, ok, err)
	}
	if w := warnings.String(); w != "" {
		t.Fatalf("clean reopen logged warnings:\n%s", w)
	}
	h.appendN(t, l, 1, 1, 10, 0, constTs(1))
	if l.EndOffset() != wantEnd+1 {
		t.Fatal("append after reopen")
	}
}
