package partlog

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// epochSpan is one batch to append: its leader epoch and record count.
type epochSpan struct {
	epoch   int32
	records int
}

// appendSpans appends each span as one batch and records it in h.
func appendSpans(t *testing.T, l *Log, h *history, spans ...epochSpan) {
	t.Helper()
	for _, sp := range spans {
		b := buildEpochBatch(t, l.EndOffset(), slices.Repeat([]int64{5}, sp.records), 20, sp.epoch)
		if err := l.Append(b.data, 0); err != nil {
			t.Fatalf("append %+v at %d: %v", sp, b.base, err)
		}
		h.batches = append(h.batches, b)
	}
}

func entries(pairs ...int64) []EpochEntry {
	var out []EpochEntry
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, EpochEntry{Epoch: int32(pairs[i]), StartOffset: pairs[i+1]})
	}
	return out
}

// TestEndOffsetForKafkaExamples runs the cases of Kafka's
// LeaderEpochFileCacheTest that query endOffsetFor, with their numbers,
// against the function EndOffsetForEpoch answers with. Kafka's caches
// there are built with assign(); the histories below are what those
// calls leave.
func TestEndOffsetForKafkaExamples(t *testing.T) {
	type query struct {
		epoch     int32
		end       int64 // log end offset
		wantEpoch int32
		wantEnd   int64
	}
	tests := []struct {
		name    string
		history []EpochEntry
		queries []query
	}{
		{"shouldAddEpochAndMessageOffsetToCache", entries(2, 10), []query{{2, 11, 2, 11}}},
		{"shouldReturnLogEndOffsetIfLatestEpochRequested", entries(2, 11), []query{{2, 14, 2, 14}}},
		{"shouldReturnUndefinedOffsetIfUndefinedEpochRequested", entries(2, 11, 3, 12), []query{{-1, 0, -1, -1}}},
		{"shouldReturnUnsupportedIfNoEpochRecorded", nil, []query{{0, 0, -1, -1}}},
		{"shouldReturnUnsupportedIfNoEpochRecordedAndUndefinedEpochRequested", nil, []query{{-1, 73, -1, -1}}},
		{"shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch", entries(5, 11, 6, 12, 7, 13), []query{{4, 0, 4, 11}}},
		{"shouldTruncateIfMatchingEpochButEarlierStartingOffset", entries(5, 11, 7, 12), []query{{5, 0, 5, 12}, {6, 0, 5, 12}}},
		{"shouldGetFirstOffsetOfSubsequentEpochWhenOffsetRequestedForPreviousEpoch", entries(1, 11, 2, 13, 3, 15), []query{{2, 17, 2, 15}}},
		{"shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested", entries(0, 10, 2, 13, 4, 17),
			[]query{{1, 0, 0, 13}, {2, 0, 2, 17}, {3, 0, 2, 17}}},
		{"shouldReturnInvalidOffsetIfEpochIsRequestedWhichIsNotCurrentlyTracked", entries(2, 100), []query{{3, 100, -1, -1}}},
		{"shouldSupportEpochsThatDoNotStartFromZero", entries(2, 6), []query{{2, 7, 2, 7}}},
		{"shouldEnforceMonotonicallyIncreasingEpochs", entries(1, 7), []query{{1, 8, 1, 8}, {2, 8, -1, -1}}},
		{"shouldIncreaseAndTrackEpochsAsLeadersChangeManyTimes/one epoch", entries(1, 0),
			[]query{{1, 0, 1, 0}, {0, 0, 0, 0}, {1, 5, 1, 5}, {0, 5, 0, 0}}},
		{"shouldIncreaseAndTrackEpochsAsLeadersChangeManyTimes/two epochs", entries(1, 0, 2, 5),
			[]query{{2, 10, 2, 10}, {1, 10, 1, 5}, {0, 10, 0, 0}}},
		{"shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages", entries(0, 0, 1, 3, 2, 6),
			[]query{{2, 9, 2, 9}, {0, 9, 0, 3}, {1, 9, 1, 6}}},
		{"shouldFetchEndOffsetOfEmptyCache", nil, []query{{7, 0, -1, -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, q := range tc.queries {
				e, off := endOffsetFor(tc.history, q.epoch, q.end)
				if e != q.wantEpoch || off != q.wantEnd {
					t.Errorf("endOffsetFor(%v, epoch %d, end %d) = (%d, %d), want (%d, %d)",
						tc.history, q.epoch, q.end, e, off, q.wantEpoch, q.wantEnd)
				}
			}
		})
	}
}

// TestEndOffsetForEpochOnLog asks a real log, before and after a clean
// reopen: the history comes from the batches, the end from EndOffset.
func TestEndOffsetForEpochOnLog(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "/d")
	defer func() { _ = s.Close() }()
	l := openTestLog(t, s, testID, infiniteConfig(300))
	var h history
	// [0,4) unstamped, [4,7) epoch 2, [7,9) epoch 2, [9,12) epoch 5, [12,13) epoch 6.
	appendSpans(t, l, &h, epochSpan{-1, 4}, epochSpan{2, 3}, epochSpan{2, 2}, epochSpan{5, 3}, epochSpan{6, 1})
	wantHistory := entries(2, 4, 5, 9, 6, 12)
	tests := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1}, // undefined
		{0, 0, 4},    // below the first entry: the first entry's start
		{1, 1, 4},
		{2, 2, 9},
		{3, 2, 9}, // never led: the epoch before it, ending where the next starts
		{4, 2, 9},
		{5, 5, 12},
		{6, 6, 13}, // latest: the end offset
		{7, -1, -1},
	}
	check := func(when string) {
		t.Helper()
		if got := l.EpochEntries(); !slices.Equal(got, wantHistory) {
			t.Fatalf("%s: EpochEntries = %v, want %v", when, got, wantHistory)
		}
		for _, tc := range tests {
			if e, off := l.EndOffsetForEpoch(tc.epoch); e != tc.wantEpoch || off != tc.wantEnd {
				t.Errorf("%s: EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", when, tc.epoch, e, off, tc.wantEpoch, tc.wantEnd)
			}
		}
	}
	check("after appends")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, s, testID, infiniteConfig(300))
	check("after reopen")
	// The latest epoch's end follows the end offset.
	appendSpans(t, l, &h, epochSpan{6, 4})
	if e, off := l.EndOffsetForEpoch(6); e != 6 || off != 17 {
		t.Fatalf("EndOffsetForEpoch(6) after an append = (%d, %d), want (6, 17)", e, off)
	}
	// The returned slice is the caller's.
	got := l.EpochEntries()
	got[0].Epoch = 99
	if l.EpochEntries()[0].Epoch != 2 {
		t.Fatal("EpochEntries shares its slice with the log")
	}
}

func TestAppendMaintainsEpochHistory(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "/d")
	defer func() { _ = s.Close() }()
	l := openTestLog(t, s, testID, infiniteConfig(500))
	steps := []struct {
		name    string
		batches []epochSpan // appended in one call
		wantErr bool        // ErrEpochRegression, nothing appended
		want    []EpochEntry
	}{
		{"unstamped: no entry", []epochSpan{{-1, 3}}, false, nil},
		{"unstamped again", []epochSpan{{-1, 2}}, false, nil},
		{"first epoch", []epochSpan{{2, 3}}, false, entries(2, 5)},
		{"same epoch: no entry", []epochSpan{{2, 2}}, false, entries(2, 5)},
		{"one call across epochs", []epochSpan{{3, 1}, {3, 1}, {5, 2}}, false, entries(2, 5, 3, 10, 5, 12)},
		{"lower epoch", []epochSpan{{4, 1}}, true, entries(2, 5, 3, 10, 5, 12)},
		{"lower epoch in the second batch", []epochSpan{{5, 1}, {4, 1}}, true, entries(2, 5, 3, 10, 5, 12)},
		{"raise then fall within one call", []epochSpan{{8, 1}, {6, 1}}, true, entries(2, 5, 3, 10, 5, 12)},
		{"unstamped after stamped", []epochSpan{{-1, 1}}, true, entries(2, 5, 3, 10, 5, 12)},
		{"higher epoch, several records", []epochSpan{{7, 4}}, false, entries(2, 5, 3, 10, 5, 12, 7, 14)},
		{"rolls a segment", []epochSpan{{7, 30}, {9, 30}}, false, entries(2, 5, 3, 10, 5, 12, 7, 14, 9, 48)},
	}
	for _, st := range steps {
		end, size := l.EndOffset(), l.Size()
		var data []byte
		next := end
		for _, sp := range st.batches {
			b := buildEpochBatch(t, next, slices.Repeat([]int64{1}, sp.records), 10, sp.epoch)
			data = append(data, b.data...)
			next = b.last + 1
		}
		err := l.Append(data, 0)
		if st.wantErr {
			if !errors.Is(err, ErrEpochRegression) {
				t.Fatalf("%s: Append = %v, want ErrEpochRegression", st.name, err)
			}
			if l.EndOffset() != end || l.Size() != size {
				t.Fatalf("%s: refused append changed the log: end %d→%d size %d→%d", st.name, end, l.EndOffset(), size, l.Size())
			}
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := l.EpochEntries(); !slices.Equal(got, st.want) {
			t.Fatalf("%s: EpochEntries = %v, want %v", st.name, got, st.want)
		}
	}
	if len(l.segs) < 2 {
		t.Fatal("test meant to roll a segment")
	}
	want := l.EpochEntries()
	// A refused batch left nothing for recovery to find either.
	crash(t, s)
	s = openTestStore(t, fs, "/d")
	l = openTestLog(t, s, testID, infiniteConfig(500))
	if got := l.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("after a crash: %v, want %v", got, want)
	}
	if err := l.Append(buildEpochBatch(t, l.EndOffset(), []int64{1}, 10, 8).data, 0); !errors.Is(err, ErrEpochRegression) {
		t.Fatalf("after reopen, Append below the latest epoch = %v", err)
	}
}

// epochLog is the log the truncation and start tests share:
//
//	offsets  [0,5) [5,8) [8,10) [10,15) [15,16)
//	epoch      1     1     3      4       6
var epochLogSpans = []epochSpan{{1, 5}, {1, 3}, {3, 2}, {4, 5}, {6, 1}}

func TestTruncateDropsEpochs(t *testing.T) {
	tests := []struct {
		to      int64
		wantEnd int64
		want    []EpochEntry
	}{
		{16, 16, entries(1, 0, 3, 8, 4, 10, 6, 15)}, // at the end: nothing
		{15, 15, entries(1, 0, 3, 8, 4, 10)},        // the last epoch's only batch
		{12, 10, entries(1, 0, 3, 8)},               // inside the batch that started epoch 4
		{9, 8, entries(1, 0)},                       // inside the batch that started epoch 3
		{6, 5, entries(1, 0)},                       // inside epoch 1
		{0, 0, nil},
	}
	for _, tc := range tests {
		t.Run("", func(t *testing.T) {
			fs := vfs.NewMem()
			s := openTestStore(t, fs, "/d")
			defer func() { _ = s.Close() }()
			l := openTestLog(t, s, testID, infiniteConfig(250))
			var h history
			appendSpans(t, l, &h, epochLogSpans...)
			if err := l.Truncate(tc.to); err != nil {
				t.Fatal(err)
			}
			h.truncate(tc.to)
			if l.EndOffset() != tc.wantEnd {
				t.Fatalf("Truncate(%d): end %d, want %d", tc.to, l.EndOffset(), tc.wantEnd)
			}
			if got := l.EpochEntries(); !slices.Equal(got, tc.want) {
				t.Fatalf("Truncate(%d): EpochEntries = %v, want %v", tc.to, got, tc.want)
			}
			checkEpochs(t, l, h.batches)
			// A replica that took over appends in an epoch that may be
			// below the cut ones, but not below the remaining ones.
			appendSpans(t, l, &h, epochSpan{latestEpoch(tc.want) + 1, 2})
			checkEpochs(t, l, h.batches)
			crash(t, s)
			s = openTestStore(t, fs, "/d")
			l = openTestLog(t, s, testID, infiniteConfig(250))
			checkEpochs(t, l, h.batches)
		})
	}
}

// TestStartMoveCollapsesEpochs checks DeleteRecordsBefore against the
// truncateFromStart cases of Kafka's LeaderEpochFileCacheTest (history
// (2,6) (3,8) (4,11)), plus its two-boundary case, and retention.
func TestStartMoveCollapsesEpochs(t *testing.T) {
	kafkaLog := []epochSpan{{-1, 6}, {2, 2}, {3, 3}, {4, 5}} // end 16
	tests := []struct {
		name  string
		spans []epochSpan
		start int64
		want  []EpochEntry
	}{
		{"shouldPreserveResetOffsetOnClearEarliestIfOneExists", kafkaLog, 8, entries(3, 8, 4, 11)},
		{"shouldNotClearAnythingIfOffsetTooEarly", kafkaLog, 1, entries(2, 6, 3, 8, 4, 11)},
		{"shouldNotClearAnythingIfOffsetIsFirstOffset", kafkaLog, 6, entries(2, 6, 3, 8, 4, 11)},
		{"shouldRetainLatestEpochOnClearAllEarliest", kafkaLog, 11, entries(4, 11)},
		{"shouldUpdateOffsetBetweenEpochBoundariesOnClearEarliest", kafkaLog, 9, entries(3, 9, 4, 11)},
		{"shouldRetainLatestEpochOnClearAllEarliestAndUpdateItsOffset", kafkaLog, 15, entries(4, 15)},
		{"every record deleted: empty history", kafkaLog, 16, nil},
		{"shouldUpdateOffsetBetweenFirstTwoEpochBoundariesOnClearEarliest",
			[]epochSpan{{0, 7}, {1, 3}, {2, 2}}, 5, entries(0, 5, 1, 7, 2, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := openTestStore(t, fs, "/d")
			defer func() { _ = s.Close() }()
			l := openTestLog(t, s, testID, infiniteConfig(250))
			var h history
			appendSpans(t, l, &h, tc.spans...)
			if err := l.DeleteRecordsBefore(tc.start); err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				t.Helper()
				if got := l.EpochEntries(); !slices.Equal(got, tc.want) {
					t.Fatalf("%s: EpochEntries = %v, want %v", when, got, tc.want)
				}
				checkEpochs(t, l, h.batches)
			}
			check("after DeleteRecordsBefore")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTestLog(t, s, testID, infiniteConfig(250))
			check("after reopen")
			crash(t, s)
			s = openTestStore(t, fs, "/d")
			l = openTestLog(t, s, testID, infiniteConfig(250))
			check("after a crash")
		})
	}

	t.Run("retention", func(t *testing.T) {
		s := openTestStore(t, vfs.NewMem(), "/d")
		defer func() { _ = s.Close() }()
		cfg := infiniteConfig(400)
		l := openTestLog(t, s, testID, cfg)
		var h history
		for i := range 30 {
			appendSpans(t, l, &h, epochSpan{int32(i / 7), 3})
		}
		if len(l.segs) < 4 {
			t.Fatalf("test wants several segments, got %d", len(l.segs))
		}
		cfg.RetentionBytes = 0 // all but the active segment
		l.SetConfig(cfg)
		if n, err := l.EnforceRetention(0); err != nil || n == 0 {
			t.Fatalf("EnforceRetention = %d, %v", n, err)
		}
		start := l.StartOffset()
		got := l.EpochEntries()
		if len(got) == 0 || got[0].StartOffset != start || got[0].Epoch != int32(start/3/7) {
			t.Fatalf("after retention to %d: %v, want the epoch of the batch at the start first", start, got)
		}
		checkEpochs(t, l, h.batches)
	})
}

// TestEpochHistoryRebuilt covers an index whose history is missing or
// damaged while the segments are fine: recovery rebuilds it from the
// batch headers.
func TestEpochHistoryRebuilt(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store, num uint32)
		warn   bool
	}{
		{"index from before epoch histories (no marker, no entries)", func(t *testing.T, s *Store, num uint32) {
			var k, k2 keyBuf
			b := s.db.NewBatch()
			_ = b.DeleteRange(k.epoch(num, 0), k2.kindEnd(num, kindEpoch), nil)
			_ = b.Delete(k.scalar(num, kindEpochsOK), nil)
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"entries out of order", func(t *testing.T, s *Store, num uint32) {
			var k keyBuf
			if err := s.db.Set(k.epoch(num, 1000), encodeInt64(1), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"marker kept, entries and recovery point lost", func(t *testing.T, s *Store, num uint32) {
			var k, k2 keyBuf
			b := s.db.NewBatch()
			_ = b.DeleteRange(k.epoch(num, 0), k2.kindEnd(num, kindEpoch), nil)
			_ = b.Delete(k.scalar(num, kindRecovery), nil)
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			logger, logs := capturingLogger()
			s, err := Open(Options{Dir: "/d", FS: fs, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			cfg := infiniteConfig(400)
			l := openTestLog(t, s, testID, cfg)
			var h history
			for i := range 20 {
				appendSpans(t, l, &h, epochSpan{int32(i / 3 * 2), 2})
			}
			if err := l.DeleteRecordsBefore(5); err != nil {
				t.Fatal(err)
			}
			want := l.EpochEntries()
			num := l.num
			if err := l.Close(); err != nil { // clean: recovery point at the end
				t.Fatal(err)
			}
			tc.damage(t, s, num)

			l = openTestLog(t, s, testID, cfg)
			if got := l.EpochEntries(); !slices.Equal(got, want) {
				t.Fatalf("rebuilt history %v, want %v", got, want)
			}
			checkEpochs(t, l, h.batches)
			if warned := logs.String() != ""; warned != tc.warn {
				t.Fatalf("warned %v, want %v; log:\n%s", warned, tc.warn, logs.String())
			}
			// The rebuilt history is persisted: a clean reopen scans
			// nothing and finds it.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := (&Log{db: s.db, num: num}).readScalar(kindEpochsOK); !ok {
				t.Fatal("epoch history marker not written")
			}
			l = openTestLog(t, s, testID, cfg)
			if got := l.EpochEntries(); !slices.Equal(got, want) {
				t.Fatalf("after reopen %v, want %v", got, want)
			}
		})
	}
}

// TestEpochQueriesDuringAppends runs readers of the epoch history against
// the owner. Batch i holds offsets [i*recs, (i+1)*recs) in epoch 2i and
// appends come two batches at a time, so every Append starts two epochs.
// Whatever a reader sees must be a state the log was in: EndOffsetForEpoch
// never reports an end past where its epoch ended, the pairing of end
// offset and history epochView relies on.
func TestEpochQueriesDuringAppends(t *testing.T) {
	const recs, appends = 3, 300
	s := openTestStore(t, vfs.NewMem(), "/d")
	defer func() { _ = s.Close() }()
	l := openTestLog(t, s, testID, infiniteConfig(4000))

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 1_000_000; i++ {
				epoch := int32((i*7 + r) % (4 * appends))
				e, end := l.EndOffsetForEpoch(epoch)
				// Epoch 2j ends where batch j+1 starts; odd epochs never led.
				j := int64(epoch / 2)
				switch {
				case e == -1 && end == -1: // not written yet
				case e == epoch&^1 && end == (j+1)*recs:
				default:
					errs <- fmt.Sprintf("EndOffsetForEpoch(%d) = (%d, %d)", epoch, e, end)
					stop.Store(true)
					return
				}
				if i%64 == 0 {
					for j, en := range l.EpochEntries() {
						if en.Epoch != int32(2*j) || en.StartOffset != int64(j)*recs {
							errs <- fmt.Sprintf("EpochEntries: entry %d is %v", j, en)
							stop.Store(true)
							return
						}
					}
				}
			}
		}()
	}
	for i := 0; i < appends && !stop.Load(); i++ {
		a := buildEpochBatch(t, int64(2*i)*recs, slices.Repeat([]int64{1}, recs), 10, int32(4*i))
		b := buildEpochBatch(t, int64(2*i+1)*recs, slices.Repeat([]int64{1}, recs), 10, int32(4*i+2))
		if err := l.Append(append(a.data, b.data...), 0); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := len(l.EpochEntries()); got != 2*appends {
		t.Fatalf("%d entries, want %d", got, 2*appends)
	}
}
