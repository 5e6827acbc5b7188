package partlog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// oracleOffsetForTimestamp is the definition OffsetForTimestamp must meet:
// the first record, in offset order among batches not wholly below start,
// whose timestamp is at least ts, clamped to start.
func oracleOffsetForTimestamp(h *history, start, ts int64) (offset, timestamp int64, found bool) {
	for _, b := range h.batches {
		if b.last < start {
			continue
		}
		for i, rts := range b.ts {
			if rts >= ts {
				return max(b.base+int64(i), start), rts, true
			}
		}
	}
	return 0, 0, false
}

func oracleMaxTimestamp(h *history, start int64) (int64, int64) {
	best, off := int64(-1), int64(-1)
	found := false
	for _, b := range h.batches {
		if b.last < start {
			continue
		}
		for i, rts := range b.ts {
			if !found || rts > best {
				best, off, found = rts, max(b.base+int64(i), start), true
			}
		}
	}
	return best, off
}

// checkTimeQueries compares OffsetForTimestamp, MaxTimestamp and Batches
// with the oracle for every interesting timestamp.
func checkTimeQueries(t *testing.T, l *Log, h *history) {
	t.Helper()
	checkTimeQueriesSampled(t, l, h, nil, 0)
}

// checkTimeQueriesSampled probes n random record timestamps (all of them
// if rng is nil).
func checkTimeQueriesSampled(t *testing.T, l *Log, h *history, rng *rand.Rand, n int) {
	t.Helper()
	start := l.StartOffset()
	probes := []int64{-1 << 62, -2, -1, 0, 1 << 62}
	var all []int64
	for _, b := range h.batches {
		all = append(all, b.ts...)
	}
	if rng != nil && len(all) > n {
		for i := range n {
			j := i + rng.IntN(len(all)-i)
			all[i], all[j] = all[j], all[i]
		}
		all = all[:n]
	}
	for _, ts := range all {
		probes = append(probes, ts-1, ts, ts+1)
	}
	for _, ts := range probes {
		off, gotTs, ok, err := l.OffsetForTimestamp(ts)
		if err != nil {
			t.Fatalf("OffsetForTimestamp(%d): %v", ts, err)
		}
		wantOff, wantTs, wantOK := oracleOffsetForTimestamp(h, start, ts)
		if ok != wantOK || off != wantOff {
			t.Fatalf("OffsetForTimestamp(%d) = (%d, %d, %v), want (%d, %d, %v) [start %d end %d]",
				ts, off, gotTs, ok, wantOff, wantTs, wantOK, start, l.EndOffset())
		}
		if ok && off > start && gotTs != wantTs {
			t.Fatalf("OffsetForTimestamp(%d) timestamp %d, want %d", ts, gotTs, wantTs)
		}
	}
	gotTs, gotOff := l.MaxTimestamp()
	wantTs, wantOff := oracleMaxTimestamp(h, start)
	if gotTs != wantTs || gotOff != wantOff {
		t.Fatalf("MaxTimestamp = (%d, %d), want (%d, %d)", gotTs, gotOff, wantTs, wantOff)
	}
	var got []BatchInfo
	if err := l.Batches(start, func(b BatchInfo) bool { got = append(got, b); return true }); err != nil {
		t.Fatal(err)
	}
	var want []BatchInfo
	for _, b := range h.batches {
		if b.last >= start {
			want = append(want, BatchInfo{BaseOffset: b.base, LastOffset: b.last, MaxTimestamp: slices.Max(b.ts), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Batches = %v\nwant %v", got, want)
	}
	checkEpochs(t, l, h.batches)
}

func TestTimeIndexNonMonotonic(t *testing.T) {
	tests := []struct {
		name string
		ts   [][]int64 // per batch, per record
	}{
		{"monotonic", [][]int64{{10, 11}, {12}, {13, 14, 15}}},
		{"regressing batches", [][]int64{{100}, {50, 60}, {70}, {200}, {150}}},
		{"records out of order inside a batch", [][]int64{{30, 10, 20}, {5, 40, 35}}},
		{"equal maxima", [][]int64{{7, 7}, {7}, {3, 7}}},
		{"no timestamps", [][]int64{{-1, -1}, {-1}}},
		{"future outlier first", [][]int64{{1 << 50}, {10}, {20}, {15}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t, vfs.NewMem(), "/d")
			defer s.Close()
			l := openTestLog(t, s, testID, infiniteConfig(1<<20))
			var h history
			for _, ts := range tc.ts {
				b := buildBatch(t, l.EndOffset(), ts, 10)
				if err := l.Append(b.data, 0); err != nil {
					t.Fatal(err)
				}
				h.batches = append(h.batches, b)
			}
			checkTimeQueries(t, l, &h)
			// Deleting the prefix batch by batch keeps the index exact.
			for _, b := range h.batches {
				if err := l.DeleteRecordsBefore(b.base); err != nil {
					t.Fatal(err)
				}
				checkTimeQueries(t, l, &h)
			}
		})
	}
}

// TestTimeIndexRandomized drives a log through appends, prefix deletions
// (also mid-batch), truncations, retention and reopen, comparing every
// time query with the oracle.
func TestTimeIndexRandomized(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		fs := vfs.NewMem()
		s := openTestStore(t, fs, "/d")
		cfg := infiniteConfig(1500)
		l := openTestLog(t, s, testID, cfg)
		var h history
		ts := int64(1000)
		for step := range 150 {
			switch r := rng.IntN(20); {
			case r < 14:
				n := 1 + rng.IntN(4)
				rec := make([]int64, n)
				for i := range rec {
					switch rng.IntN(10) {
					case 0:
						ts -= rng.Int64N(500) // clock went back
					case 1:
						rec[i] = ts + 1e9 // producer from the future
						continue
					default:
						ts += rng.Int64N(20)
					}
					rec[i] = ts
				}
				b := buildBatch(t, l.EndOffset(), rec, rng.IntN(100))
				if err := l.Append(b.data, 0); err != nil {
					t.Fatal(err)
				}
				h.batches = append(h.batches, b)
			case r < 16:
				if l.EndOffset() > l.StartOffset() {
					to := l.StartOffset() + rng.Int64N(l.EndOffset()-l.StartOffset()+1)
					if err := l.DeleteRecordsBefore(to); err != nil {
						t.Fatal(err)
					}
				}
			case r < 17:
				if l.EndOffset() > l.StartOffset() {
					to := l.StartOffset() + rng.Int64N(l.EndOffset()-l.StartOffset())
					if err := l.Truncate(to); err != nil {
						t.Fatal(err)
					}
					h.truncate(to)
					if l.EndOffset() < l.StartOffset() || l.EndOffset() != max(h.end(), l.StartOffset()) {
						t.Fatalf("after Truncate(%d): end %d, want %d", to, l.EndOffset(), h.end())
					}
					if l.EndOffset() > h.end() { // the whole log went; it restarts at start
						h.batches = nil
					}
				}
			case r < 18:
				if _, err := l.EnforceRetention(0); err != nil {
					t.Fatal(err)
				}
			case r < 19:
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openTestLog(t, s, testID, cfg)
			default:
				crash(t, s)
				s = openTestStore(t, fs, "/d")
				l = openTestLog(t, s, testID, cfg)
			}
			if h.end() != l.EndOffset() && len(h.batches) > 0 {
				t.Fatalf("seed %d step %d: end %d, history end %d", seed, step, l.EndOffset(), h.end())
			}
			checkTimeQueriesSampled(t, l, &h, rng, 8)
			if got, want := readAll(t, l, l.StartOffset(), l.EndOffset(), 4096), h.bytesFrom(l.StartOffset(), l.EndOffset()); !bytes.Equal(got, want) {
				t.Fatalf("seed %d step %d: content differs", seed, step)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetention(t *testing.T) {
	// 10 segments of 4 batches each; segment i holds timestamps 1000*(i+1)
	// and is sizeOf bytes.
	setup := func(t *testing.T, fs vfs.FS) (*Store, *Log, *history, int64) {
		s := openTestStore(t, fs, "/d")
		l := openTestLog(t, s, testID, infiniteConfig(3000))
		var h history
		h.appendN(t, l, 40, 5, 100, 0, func(o int64) int64 { return 1000 * (o/20 + 1) })
		if len(l.segs) != 10 {
			t.Fatalf("test assumes 10 segments, got %d", len(l.segs))
		}
		return s, l, &h, l.segs[0].size.Load()
	}
	tests := []struct {
		name        string
		cfg         func(segSize int64) LogConfig
		now         int64
		reopen      bool
		wantRemoved int
	}{
		{"time: nothing old enough", func(int64) LogConfig { return LogConfig{RetentionMs: 10_000, RetentionBytes: -1} }, 11_000, false, 0},
		{"time: three expired", func(int64) LogConfig { return LogConfig{RetentionMs: 1000, RetentionBytes: -1} }, 4001, false, 3},
		{"time: after reopen (max timestamps from index)", func(int64) LogConfig { return LogConfig{RetentionMs: 1000, RetentionBytes: -1} }, 4001, true, 3},
		{"time: never the active segment", func(int64) LogConfig { return LogConfig{RetentionMs: 0, RetentionBytes: -1} }, 1 << 40, false, 9},
		{"infinite", func(int64) LogConfig { return LogConfig{RetentionMs: -1, RetentionBytes: -1} }, 1 << 40, false, 0},
		{"size: keep at least four segments", func(sz int64) LogConfig { return LogConfig{RetentionMs: -1, RetentionBytes: 4 * sz} }, 0, false, 6},
		{"size: just under four segments keeps four", func(sz int64) LogConfig { return LogConfig{RetentionMs: -1, RetentionBytes: 4*sz - 1} }, 0, false, 6},
		{"size: just over four segments keeps five", func(sz int64) LogConfig { return LogConfig{RetentionMs: -1, RetentionBytes: 4*sz + 1} }, 0, false, 5},
		{"size: zero keeps only the active", func(int64) LogConfig { return LogConfig{RetentionMs: -1, RetentionBytes: 0} }, 0, false, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s, l, h, segSize := setup(t, fs)
			defer func() { _ = s.Close() }()
			cfg := tc.cfg(segSize)
			cfg.SegmentBytes = 3000
			if tc.reopen {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openTestLog(t, s, testID, cfg)
			}
			l.SetConfig(cfg)
			sizeBefore := l.Size()
			removed, err := l.EnforceRetention(tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if removed != tc.wantRemoved {
				t.Fatalf("removed %d segments, want %d", removed, tc.wantRemoved)
			}
			wantStart := int64(20 * removed)
			if l.StartOffset() != wantStart || l.segs[0].base != wantStart {
				t.Fatalf("start %d, first segment %d, want %d", l.StartOffset(), l.segs[0].base, wantStart)
			}
			if l.Size() != sizeBefore-int64(removed)*segSize {
				t.Fatalf("Size %d, want %d", l.Size(), sizeBefore-int64(removed)*segSize)
			}
			names, _ := fs.List(fs.PathJoin("/d", testID.String()))
			if len(names) != 10-removed {
				t.Fatalf("%d files left, want %d: %v", len(names), 10-removed, names)
			}
			if removed > 0 {
				if _, err := l.Read(wantStart-1, 1<<20, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("read below new start: %v", err)
				}
			}
			if got := readAll(t, l, wantStart, l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(wantStart, h.end())) {
				t.Fatal("remaining content differs")
			}
			checkTimeQueries(t, l, h)
		})
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "/d")
	l := openTestLog(t, s, testID, infiniteConfig(3000))
	var h history
	h.appendN(t, l, 12, 5, 100, 0, constTs(7)) // 3 segments of 20 offsets

	if err := l.DeleteRecordsBefore(61); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond end: %v", err)
	}
	steps := []struct {
		offset    int64
		wantStart int64
		wantSegs  int
	}{
		{3, 3, 3},   // mid batch, first segment stays
		{2, 3, 3},   // never moves back
		{20, 20, 2}, // exactly the second segment: first goes
		{45, 45, 1}, // inside the last segment
		{60, 60, 1}, // everything: the active segment stays
	}
	for _, st := range steps {
		if err := l.DeleteRecordsBefore(st.offset); err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != st.wantStart || len(l.segs) != st.wantSegs {
			t.Fatalf("DeleteRecordsBefore(%d): start %d, %d segments; want %d, %d",
				st.offset, l.StartOffset(), len(l.segs), st.wantStart, st.wantSegs)
		}
		checkTimeQueries(t, l, &h)
		if st.wantStart < l.EndOffset() {
			r, err := l.Read(st.wantStart, 1, l.EndOffset())
			if err != nil || r.Len() == 0 {
				t.Fatalf("read at start %d: %v, %d bytes", st.wantStart, err, r.Len())
			}
			r.Release()
		}
	}
	// The start offset survives a crash (it is synced).
	crash(t, s)
	s = openTestStore(t, fs, "/d")
	defer s.Close()
	l = openTestLog(t, s, testID, infiniteConfig(3000))
	if l.StartOffset() != 60 || l.EndOffset() != 60 {
		t.Fatalf("after crash: [%d, %d), want [60, 60)", l.StartOffset(), l.EndOffset())
	}
	h.appendN(t, l, 1, 1, 1, 0, constTs(1))
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name    string
		start   int64
		to      int64
		wantEnd int64
		wantErr bool
	}{
		{"at end: no-op", 5, 60, 60, false},
		{"past end: no-op", 5, 99, 60, false},
		{"mid batch cuts whole batch", 5, 47, 45, false},
		{"batch boundary", 5, 50, 50, false},
		{"segment boundary drops segment", 5, 40, 40, false},
		{"middle of older segment", 5, 12, 10, false},
		{"to start offset", 5, 5, 5, false},
		{"inside the batch holding start: empty at start", 7, 8, 7, false},
		{"first segment entirely", 0, 0, 0, false},
		{"below start", 5, 4, 0, true},
	}
	for _, tc := range tests {
		for _, fsName := range []string{"disk", "mem"} {
			t.Run(tc.name+"/"+fsName, func(t *testing.T) {
				fs, dir := vfs.FS(vfs.NewMem()), "/d"
				if fsName == "disk" {
					fs, dir = vfs.Default, t.TempDir()
				}
				s := openTestStore(t, fs, dir)
				l := openTestLog(t, s, testID, infiniteConfig(3000))
				var h history
				h.appendN(t, l, 12, 5, 100, 0, func(o int64) int64 { return 100 - o }) // 3 segments of 20
				if err := l.DeleteRecordsBefore(tc.start); err != nil {
					t.Fatal(err)
				}
				err := l.Truncate(tc.to)
				if tc.wantErr {
					if err == nil {
						t.Fatal("Truncate succeeded")
					}
					_ = s.Close()
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				h.truncate(tc.to)
				if l.EndOffset() != tc.wantEnd {
					t.Fatalf("end %d, want %d", l.EndOffset(), tc.wantEnd)
				}
				check := func() {
					t.Helper()
					if got := readAll(t, l, l.StartOffset(), l.EndOffset(), 1<<20); !bytes.Equal(got, h.bytesFrom(l.StartOffset(), h.end())) {
						t.Fatal("content differs")
					}
					checkTimeQueries(t, l, &h)
				}
				if h.end() < tc.wantEnd {
					h.batches = nil // the batch holding start went: empty at start
				}
				check()
				// Appends continue at the new end, in a new segment.
				h.appendN(t, l, 3, 2, 10, 0, constTs(500))
				check()
				// And it all survives a crash.
				crash(t, s)
				s = openTestStore(t, fs, dir)
				defer s.Close()
				l = openTestLog(t, s, testID, infiniteConfig(3000))
				if l.EndOffset() != h.end() {
					t.Fatalf("end after crash %d, want %d", l.EndOffset(), h.end())
				}
				check()
			})
		}
	}
}
