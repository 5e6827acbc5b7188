package partition

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/batch"
)

// harness drives a Core the way a host does and records what it sees.
type harness struct {
	t        *testing.T
	c        *Core
	appended int64 // end offset "storage" has
	replies  map[string]ProduceResult
	syncs    int
	wakes    []Token
	reads    []Read
	lookups  []Lookup
	deletes  []DeleteBefore
}

func newHarness(t *testing.T, s Settings) *harness {
	h := &harness{t: t, c: New(s, 0), replies: map[string]ProduceResult{}}
	h.step(Recovered{})
	return h
}

func (h *harness) step(m Msg) {
	h.c.Step(m)
	rd := h.c.Ready()
	for _, a := range rd.Appends {
		if a.BaseOffset != h.appended {
			h.t.Fatalf("append at %d, storage ends at %d", a.BaseOffset, h.appended)
		}
		h.appended = a.LastOffset + 1
	}
	if rd.Sync {
		h.syncs++
	}
	for _, r := range rd.Replies {
		h.replies[r.Token.(string)] = r.Result
	}
	h.wakes = append(h.wakes, rd.Wakes...)
	h.reads = append(h.reads, rd.Reads...)
	h.lookups = append(h.lookups, rd.Lookups...)
	h.deletes = append(h.deletes, rd.Deletes...)
}

func records(t *testing.T, n int, pid int64, epoch int16, seq int32) ([]byte, Summary) {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("v")}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := batch.Validate(b, batch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b, Summary{NumRecords: s.NumRecords, ProducerID: s.ProducerID, ProducerEpoch: s.ProducerEpoch, BaseSequence: s.BaseSequence, LastSequence: s.LastSequence}
}

func (h *harness) produce(token string, n int, pid int64, epoch int16, seq int32) {
	b, s := records(h.t, n, pid, epoch, seq)
	h.step(Produce{Token: token, Records: b, Summary: s, Acks: -1})
}

var durable = Settings{AckAfterSync: true}

func TestAckWaitsForFsync(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 3, -1, 0, -1)
	if _, ok := h.replies["a"]; ok {
		t.Fatal("acknowledged before fsync")
	}
	if h.syncs != 1 {
		t.Fatalf("syncs = %d, want 1", h.syncs)
	}
	if h.c.HighWatermark() != 0 {
		t.Fatalf("hw = %d before fsync, want 0", h.c.HighWatermark())
	}
	// Group commit: a second produce while the fsync runs starts no sync.
	h.produce("b", 2, -1, 0, -1)
	if h.syncs != 1 {
		t.Fatalf("second produce started a sync while one was in flight")
	}
	h.step(Synced{DurableEnd: 3})
	if r := h.replies["a"]; r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("reply a = %+v", r)
	}
	if _, ok := h.replies["b"]; ok {
		t.Fatal("b acknowledged before its fsync")
	}
	if h.syncs != 2 {
		t.Fatalf("no follow-up sync for b (syncs=%d)", h.syncs)
	}
	h.step(Synced{DurableEnd: 5})
	if r := h.replies["b"]; r.BaseOffset != 3 {
		t.Fatalf("reply b = %+v", r)
	}
	if h.c.HighWatermark() != 5 {
		t.Fatalf("hw = %d, want 5", h.c.HighWatermark())
	}
}

func TestRelaxedFlushAcksAtOnce(t *testing.T) {
	h := newHarness(t, Settings{FlushMessages: 4})
	h.produce("a", 3, -1, 0, -1)
	if r, ok := h.replies["a"]; !ok || r.BaseOffset != 0 {
		t.Fatalf("relaxed mode did not ack at once: %+v", r)
	}
	if h.syncs != 0 || h.c.HighWatermark() != 3 {
		t.Fatalf("syncs=%d hw=%d, want 0 and 3", h.syncs, h.c.HighWatermark())
	}
	h.produce("b", 1, -1, 0, -1)
	if h.syncs != 1 {
		t.Fatalf("flush.messages=4 reached but no sync")
	}
	h2 := newHarness(t, Settings{FlushMs: 1000})
	b, s := records(t, 1, -1, 0, -1)
	h2.step(Produce{Token: "a", Records: b, Summary: s, Acks: 1, NowMs: 5000})
	h2.step(Tick{NowMs: 5500})
	if h2.syncs != 0 {
		t.Fatal("flush.ms synced early")
	}
	h2.step(Tick{NowMs: 6000})
	if h2.syncs != 1 {
		t.Fatal("flush.ms elapsed but no sync")
	}
}

func TestIdempotentProducer(t *testing.T) {
	type step struct {
		token string
		n     int
		epoch int16
		seq   int32
		sync  bool
		// want
		code int16
		base int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{token: "a", n: 2, seq: 0, sync: true, base: 0},
			{token: "b", n: 3, seq: 2, sync: true, base: 2},
		}},
		{"retry of last batch gets original offset", []step{
			{token: "a", n: 2, seq: 0, sync: true, base: 0},
			{token: "b", n: 2, seq: 0, sync: true, base: 0},
		}},
		{"retry of an older batch in the window", []step{
			{token: "a", n: 1, seq: 0, sync: true, base: 0},
			{token: "b", n: 1, seq: 1, sync: true, base: 1},
			{token: "c", n: 1, seq: 2, sync: true, base: 2},
			{token: "d", n: 1, seq: 0, sync: true, base: 0},
		}},
		{"gap", []step{
			{token: "a", n: 2, seq: 0, sync: true, base: 0},
			{token: "b", n: 1, seq: 5, code: kerr.OutOfOrderSequenceNumber.Code},
		}},
		{"unknown producer not at 0", []step{
			{token: "a", n: 1, seq: 7, code: kerr.OutOfOrderSequenceNumber.Code},
		}},
		{"fenced epoch", []step{
			{token: "a", n: 1, epoch: 1, seq: 0, sync: true, base: 0},
			{token: "b", n: 1, epoch: 0, seq: 1, code: kerr.InvalidProducerEpoch.Code},
		}},
		{"new epoch restarts at 0", []step{
			{token: "a", n: 1, epoch: 0, seq: 0, sync: true, base: 0},
			{token: "b", n: 1, epoch: 1, seq: 3, code: kerr.OutOfOrderSequenceNumber.Code},
			{token: "c", n: 1, epoch: 1, seq: 0, sync: true, base: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, durable)
			for _, s := range tc.steps {
				h.produce(s.token, s.n, 42, s.epoch, s.seq)
				if s.sync {
					h.step(Synced{DurableEnd: h.appended})
				}
				r, ok := h.replies[s.token]
				if !ok {
					t.Fatalf("%s: no reply", s.token)
				}
				if r.ErrorCode != s.code || (s.code == 0 && r.BaseOffset != s.base) {
					t.Fatalf("%s: got code %d base %d, want code %d base %d", s.token, r.ErrorCode, r.BaseOffset, s.code, s.base)
				}
			}
		})
	}
}

func TestDuplicateOfPendingBatchWaitsForFsync(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 2, 7, 0, 0)
	h.produce("retry", 2, 7, 0, 0)
	if len(h.replies) != 0 {
		t.Fatalf("answered before fsync: %v", h.replies)
	}
	if h.appended != 2 {
		t.Fatalf("duplicate was appended: storage at %d", h.appended)
	}
	h.step(Synced{DurableEnd: 2})
	if h.replies["a"].BaseOffset != 0 || h.replies["retry"].BaseOffset != 0 {
		t.Fatalf("replies %+v", h.replies)
	}
}

func TestProducerStateRecovered(t *testing.T) {
	c := New(durable, 0)
	c.Step(Recovered{LogStart: 0, LogEnd: 10, ProducerBatches: []ProducerBatch{
		{BaseOffset: 0, LastOffset: 4, ProducerID: 9, ProducerEpoch: 0, BaseSequence: 0},
		{BaseOffset: 5, LastOffset: 9, ProducerID: 9, ProducerEpoch: 0, BaseSequence: 5},
	}})
	c.Ready()
	h := &harness{t: t, c: c, appended: 10, replies: map[string]ProduceResult{}}
	h.produce("dup", 5, 9, 0, 5)
	if r := h.replies["dup"]; r.BaseOffset != 5 {
		t.Fatalf("duplicate after restart answered %+v, want offset 5", r)
	}
	h.produce("next", 1, 9, 0, 10)
	h.step(Synced{DurableEnd: 11})
	if r := h.replies["next"]; r.ErrorCode != 0 || r.BaseOffset != 10 {
		t.Fatalf("next after restart %+v", r)
	}
}

func TestWatchWakesWhenVisible(t *testing.T) {
	h := newHarness(t, durable)
	h.step(Watch{Token: "w", Offset: 0, DeadlineMs: 1000})
	if len(h.wakes) != 0 {
		t.Fatal("woken with nothing to read")
	}
	h.produce("a", 1, -1, 0, -1)
	if len(h.wakes) != 0 {
		t.Fatal("woken before the record was durable")
	}
	h.step(Synced{DurableEnd: 1})
	if len(h.wakes) != 1 || h.wakes[0] != "w" {
		t.Fatalf("wakes = %v", h.wakes)
	}
	// Expired watches are dropped on Tick and never woken.
	h.step(Watch{Token: "late", Offset: 1, DeadlineMs: 500})
	h.step(Tick{NowMs: 600})
	h.produce("b", 1, -1, 0, -1)
	h.step(Synced{DurableEnd: 2})
	if len(h.wakes) != 1 {
		t.Fatalf("expired watch woken: %v", h.wakes)
	}
}

func TestWatchesAreBounded(t *testing.T) {
	h := newHarness(t, durable)
	for i := 0; i < maxWatches+10; i++ {
		h.step(Watch{Token: i, Offset: 0, DeadlineMs: 1 << 40})
	}
	if len(h.c.watches) != maxWatches {
		t.Fatalf("%d watches parked, bound is %d", len(h.c.watches), maxWatches)
	}
	if len(h.wakes) != 10 || h.wakes[0] != 0 {
		t.Fatalf("overflow should wake the oldest first: %v", h.wakes)
	}
}

func TestFetchBounds(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 5, -1, 0, -1)
	h.step(Fetch{Token: "f1", Offset: 0, MaxBytes: 100})
	if r := h.reads[0]; r.ErrorCode != 0 || r.Limit != 0 || r.HighWatermark != 0 {
		t.Fatalf("fetch before fsync must not see records: %+v", r)
	}
	h.step(Synced{DurableEnd: 5})
	h.step(Fetch{Token: "f2", Offset: 2, MaxBytes: 100})
	if r := h.reads[1]; r.ErrorCode != 0 || r.Limit != 5 {
		t.Fatalf("fetch after fsync: %+v", r)
	}
	h.step(Fetch{Token: "f3", Offset: 6})
	if r := h.reads[2]; r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past end: %+v", r)
	}
}

func TestDeleteRecordsAndListOffsets(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 10, -1, 0, -1)
	h.step(Synced{DurableEnd: 10})
	h.step(DeleteRecords{Token: "d1", Offset: 11})
	if d := h.deletes[0]; d.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("delete past hw: %+v", d)
	}
	h.step(DeleteRecords{Token: "d2", Offset: 4})
	if d := h.deletes[1]; d.ErrorCode != 0 || d.Offset != 4 || d.NoOp {
		t.Fatalf("delete to 4: %+v", d)
	}
	h.step(DeleteRecords{Token: "d3", Offset: 2})
	if d := h.deletes[2]; !d.NoOp || d.Offset != 4 {
		t.Fatalf("delete below start: %+v", d)
	}
	h.step(ListOffsets{Token: "e", Timestamp: -2})
	h.step(ListOffsets{Token: "l", Timestamp: -1})
	h.step(ListOffsets{Token: "t", Timestamp: 12345})
	if l := h.lookups[0]; !l.Resolved || l.Offset != 4 {
		t.Fatalf("earliest %+v", l)
	}
	if l := h.lookups[1]; !l.Resolved || l.Offset != 10 {
		t.Fatalf("latest %+v", l)
	}
	if l := h.lookups[2]; l.Resolved || l.Limit != 10 {
		t.Fatalf("by time %+v", l)
	}
	h.step(Fetch{Token: "f", Offset: 3})
	if r := h.reads[0]; r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below log start: %+v", r)
	}
}

func TestFsyncFailureFailsPendingAndLaterWrites(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 1, -1, 0, -1)
	h.step(Synced{Err: "EIO"})
	if r := h.replies["a"]; r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("pending after fsync error: %+v", r)
	}
	h.produce("b", 1, -1, 0, -1)
	if r := h.replies["b"]; r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("write after fsync error: %+v", r)
	}
}

func TestAppendFailureRollsBack(t *testing.T) {
	h := newHarness(t, durable)
	h.produce("a", 2, 3, 0, 0)
	h.step(AppendFailed{Offset: 0, Err: "ENOSPC"})
	h.appended = 0
	if r := h.replies["a"]; r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("failed append reply %+v", r)
	}
	if h.c.LogEnd() != 0 {
		t.Fatalf("log end %d after failed append", h.c.LogEnd())
	}
	// The producer's failed batch was forgotten: its retry is appended anew.
	h.produce("retry", 2, 3, 0, 0)
	h.step(Synced{DurableEnd: 2})
	if r := h.replies["retry"]; r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retry after failed append %+v", r)
	}
}

func TestProducerExpiry(t *testing.T) {
	h := newHarness(t, Settings{AckAfterSync: true, ProducerExpirationMs: 1000})
	b, s := records(t, 1, 5, 0, 0)
	h.step(Produce{Token: "a", Records: b, Summary: s, Acks: -1, NowMs: 100})
	h.step(Tick{NowMs: 5000})
	if len(h.c.producers) != 1 {
		t.Fatal("a producer whose batch awaits fsync was expired")
	}
	h.step(Synced{DurableEnd: 1})
	h.step(Tick{NowMs: 900})
	if len(h.c.producers) != 1 {
		t.Fatal("producer expired before producer.id.expiration.ms")
	}
	h.step(Tick{NowMs: 1200})
	if len(h.c.producers) != 0 {
		t.Fatal("idle producer not expired")
	}
	// Forgotten: its next batch must start over at sequence 0.
	h.produce("b", 1, 5, 0, 1)
	if r := h.replies["b"]; r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("expired producer continuing at seq 1: %+v", r)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t, Settings{AckAfterSync: true, SnapshotIntervalMs: 1000})
	h.produce("a", 2, 9, 0, 0)
	h.produce("b", 3, 4, 1, 0)
	h.step(Synced{DurableEnd: h.appended})
	h.c.Step(Tick{NowMs: 1000})
	if !h.c.Ready().Snapshot {
		t.Fatal("no snapshot requested after the interval with new writes")
	}
	end, snap := h.c.ProducerSnapshot()
	if end != 5 || len(snap) != 2 || snap[0].ProducerID != 4 || snap[1].ProducerID != 9 {
		t.Fatalf("snapshot end %d entries %+v, want end 5 sorted by producer id", end, snap)
	}
	h.c.SnapshotSaved(end)
	h.c.Step(Tick{NowMs: 2000})
	if h.c.Ready().Snapshot {
		t.Fatal("snapshot requested with nothing new")
	}

	// Restored after a crash that lost offset 2..4 (producer 4's batch):
	// that entry must be ignored, and producer 9 still deduplicates.
	c := New(durable, 0)
	c.Step(Recovered{LogEnd: 2, ProducerBatches: snap, SnapshotEnd: end})
	c.Ready()
	h2 := &harness{t: t, c: c, appended: 2, replies: map[string]ProduceResult{}}
	h2.produce("dup", 2, 9, 0, 0)
	if r := h2.replies["dup"]; r.BaseOffset != 0 {
		t.Fatalf("producer 9 retry after restore: %+v", r)
	}
	h2.produce("lost", 3, 4, 1, 0)
	h2.step(Synced{DurableEnd: h2.appended})
	if r := h2.replies["lost"]; r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("producer 4's lost batch must be appended anew at 2: %+v", r)
	}
}

func TestNextTickMs(t *testing.T) {
	c := New(Settings{AckAfterSync: true}, 0)
	c.Step(Recovered{NowMs: 1000})
	if got := c.NextTickMs(); got != -1 {
		t.Fatalf("idle core with nothing timed wants a tick at %d", got)
	}
	c = New(Settings{AckAfterSync: true, RetentionCheckMs: 300_000}, 0)
	c.Step(Recovered{NowMs: 1000})
	if got := c.NextTickMs(); got != 301_000 {
		t.Fatalf("retention check due at %d, want 301000", got)
	}
	c.Step(Watch{Token: "w", Offset: 0, DeadlineMs: 1500})
	c.Step(Watch{Token: "v", Offset: 0, DeadlineMs: 1200})
	if got := c.NextTickMs(); got != 1200 {
		t.Fatalf("earliest watch deadline %d, want 1200", got)
	}
	c.Step(Tick{NowMs: 1300}) // expires v
	if got := c.NextTickMs(); got != 1500 {
		t.Fatalf("after expiry, next %d, want 1500", got)
	}

	r := New(Settings{FlushMs: 50, SnapshotIntervalMs: 60_000}, 0)
	r.Step(Recovered{NowMs: 0})
	b, s := records(t, 1, 3, 0, 0)
	r.Step(Produce{Token: "p", Records: b, Summary: s, Acks: 1, NowMs: 10})
	r.Ready()
	if got := r.NextTickMs(); got != 60 {
		t.Fatalf("flush.ms deadline %d, want 60 (oldest unflushed write at 10 + 50)", got)
	}
	r.Step(Synced{DurableEnd: 1})
	if got := r.NextTickMs(); got != 60_000 {
		t.Fatalf("snapshot due at %d, want 60000", got)
	}
}
