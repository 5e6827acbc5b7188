package partlog

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/troupe-io/troupe/batch"
)

// testBatch is one batch as the test appended it.
type testBatch struct {
	base, last int64
	ts         []int64 // per record
	epoch      int32   // PartitionLeaderEpoch
	data       []byte
}

// buildBatch makes a v2 batch at base with one record per timestamp, in
// leader epoch 0. The record values encode their offset so that content
// mismatches show.
func buildBatch(t testing.TB, base int64, ts []int64, valueSize int) testBatch {
	t.Helper()
	return buildEpochBatch(t, base, ts, valueSize, 0)
}

// buildEpochBatch is buildBatch with the leader epoch the leader stamped.
func buildEpochBatch(t testing.TB, base int64, ts []int64, valueSize int, epoch int32) testBatch {
	t.Helper()
	first := ts[0]
	for _, v := range ts {
		first = min(first, v)
	}
	recs := make([]batch.Record, len(ts))
	for i := range ts {
		v := make([]byte, max(valueSize, 8))
		binary.BigEndian.PutUint64(v, uint64(base+int64(i)))
		recs[i] = batch.Record{Value: v, TimestampDelta: ts[i] - first}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{
		BaseOffset:     base,
		FirstTimestamp: first,
		ProducerID:     -1,
		ProducerEpoch:  -1,
		BaseSequence:   -1,

		PartitionLeaderEpoch: epoch,
	}, recs)
	if err != nil {
		t.Fatalf("build batch at %d: %v", base, err)
	}
	return testBatch{base: base, last: base + int64(len(ts)) - 1, ts: ts, epoch: epoch, data: b}
}

// history remembers everything appended to a log, to check reads against.
type history struct {
	batches []testBatch
	epoch   int32 // leader epoch of the batches appendN builds
}

func (h *history) end() int64 {
	if len(h.batches) == 0 {
		return 0
	}
	return h.batches[len(h.batches)-1].last + 1
}

// appendN appends n batches of recs records each, timestamps from tsOf.
func (h *history) appendN(t testing.TB, l *Log, n, recs, valueSize int, nowMs int64, tsOf func(offset int64) int64) {
	t.Helper()
	for range n {
		base := l.EndOffset()
		ts := make([]int64, recs)
		for i := range ts {
			ts[i] = tsOf(base + int64(i))
		}
		b := buildEpochBatch(t, base, ts, valueSize, h.epoch)
		if err := l.Append(b.data, nowMs); err != nil {
			t.Fatalf("append at %d: %v", base, err)
		}
		h.batches = append(h.batches, b)
	}
}

// bytesFrom returns the concatenation of the batches whose last offset is
// at least from and whose base is below to.
func (h *history) bytesFrom(from, to int64) []byte {
	var out []byte
	for _, b := range h.batches {
		if b.last >= from && b.base < to {
			out = append(out, b.data...)
		}
	}
	return out
}

// impliedEpochs is the definition the epoch history must meet: walking
// the batches that hold offsets in [start, end) in order, each batch
// whose epoch is non-negative and above the last entry's starts an entry
// at its base offset, or at start for the batch holding start.
func impliedEpochs(batches []testBatch, start, end int64) []EpochEntry {
	var out []EpochEntry
	for _, b := range batches {
		if b.last < start || b.base >= end || start == end {
			continue
		}
		if b.epoch >= 0 && (len(out) == 0 || b.epoch > out[len(out)-1].Epoch) {
			out = append(out, EpochEntry{Epoch: b.epoch, StartOffset: max(b.base, start)})
		}
	}
	return out
}

// checkEpochs compares the log's epoch history with what its batches
// imply, and checks the invariants every history keeps.
func checkEpochs(t testing.TB, l *Log, batches []testBatch) {
	t.Helper()
	start, end := l.StartOffset(), l.EndOffset()
	got := l.EpochEntries()
	for i, e := range got {
		if e.StartOffset < start || e.StartOffset >= end || e.Epoch < 0 ||
			i > 0 && (e.Epoch <= got[i-1].Epoch || e.StartOffset <= got[i-1].StartOffset) {
			t.Fatalf("epoch history %v breaks its invariants in log [%d, %d)", got, start, end)
		}
	}
	if want := impliedEpochs(batches, start, end); !slices.Equal(got, want) {
		t.Fatalf("epoch history of [%d, %d) is %v, batch headers imply %v", start, end, got, want)
	}
}

// truncate forgets batches as Log.Truncate(end) does.
func (h *history) truncate(end int64) {
	for i, b := range h.batches {
		if b.last >= end {
			h.batches = h.batches[:i]
			return
		}
	}
}

// readAll reads [from, limit) with Read calls of maxBytes each.
func readAll(t testing.TB, l *Log, from, limit int64, maxBytes int) []byte {
	t.Helper()
	var out []byte
	for off := from; off < limit; {
		r, err := l.Read(off, maxBytes, limit)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if r.Len() == 0 {
			break
		}
		chunk, err := r.AppendTo(nil)
		r.Release()
		if err != nil {
			t.Fatalf("region at %d: %v", off, err)
		}
		out = append(out, chunk...)
		last, ok := lastOffsetIn(chunk)
		if !ok {
			t.Fatalf("region at %d does not parse", off)
		}
		off = last + 1
	}
	return out
}

// lastOffsetIn checks that b is whole valid batches and returns the last
// offset of the last one.
func lastOffsetIn(b []byte) (int64, bool) {
	it := batch.NewIter(b)
	last := int64(-1)
	for h, _, ok := it.Next(); ok; h, _, ok = it.Next() {
		last = h.LastOffset()
	}
	return last, it.Err() == nil && it.Pos() == len(b) && last >= 0
}

func openTestStore(t testing.TB, fs vfs.FS, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, FS: fs, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func openTestLog(t testing.TB, s *Store, id LogID, cfg LogConfig) *Log {
	t.Helper()
	l, err := s.OpenLog(id, cfg)
	if err != nil {
		t.Fatalf("open log %s: %v", id, err)
	}
	return l
}

// crash drops the store without syncing or closing logs cleanly, as a
// killed process would (the page cache survives: written bytes stay).
func crash(t testing.TB, s *Store) {
	t.Helper()
	s.mu.Lock()
	for _, l := range s.logs {
		if l != nil {
			l.closeFiles()
		}
	}
	s.logs = map[LogID]*Log{}
	s.closed = true
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		t.Fatalf("close index: %v", err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// capturingLogger returns a logger whose output the test can inspect.
func capturingLogger() (*slog.Logger, *lockedBuffer) {
	var b lockedBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn})), &b
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func constTs(ts int64) func(int64) int64 { return func(int64) int64 { return ts } }

var testID = LogID{Topic: "t", Partition: 0}

func infiniteConfig(segmentBytes int64) LogConfig {
	return LogConfig{SegmentBytes: segmentBytes, RetentionMs: -1, RetentionBytes: -1}
}
