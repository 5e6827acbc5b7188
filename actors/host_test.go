package actors

import (
	"io"
	"log/slog"
	"testing"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
)

func appendBatch(t *testing.T, l *partlog.Log, pid int64, seq int32, n int) {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("v")}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: pid, BaseSequence: seq, BaseOffset: l.EndOffset(), FirstTimestamp: 1000}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(b, 0); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverProducersFromSnapshotAndLog: start-up combines the last
// snapshot with the batches indexed after it, and falls back to the whole
// log when the snapshot is unreadable.
func TestRecoverProducersFromSnapshotAndLog(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := partlog.Open(partlog.Options{Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l, err := store.OpenLog(partlog.LogID{Topic: "t", Partition: 0}, partlog.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	appendBatch(t, l, 7, 0, 2) // offsets 0-1
	appendBatch(t, l, 8, 0, 1) // offset 2
	// The snapshot says more than the log (producer 99 at offset 1 is a
	// fake, to show the snapshot is what is read for offsets below 3).
	snap := []partition.ProducerBatch{
		{ProducerID: 7, BaseOffset: 0, LastOffset: 1, BaseSequence: 0},
		{ProducerID: 99, BaseOffset: 1, LastOffset: 1, BaseSequence: 0},
	}
	if err := l.SaveSnapshot(3, encodeProducerSnapshot(snap, 2)); err != nil {
		t.Fatal(err)
	}
	appendBatch(t, l, 7, 2, 1) // offset 3, after the snapshot

	rec, err := recoverProducers(l, logger)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.batches
	if rec.end != 3 || rec.highWatermark != 2 || len(got) != 3 || got[1].ProducerID != 99 || got[2].ProducerID != 7 || got[2].BaseOffset != 3 {
		t.Fatalf("recovered %+v: want the snapshot's two batches and high watermark 2, then offset 3 from the log", rec)
	}

	// An unreadable snapshot: the whole log is replayed.
	if err := l.SaveSnapshot(3, []byte{42}); err != nil {
		t.Fatal(err)
	}
	rec, err = recoverProducers(l, logger)
	if err != nil {
		t.Fatal(err)
	}
	got = rec.batches
	if rec.highWatermark != 0 || len(got) != 3 || got[0].ProducerID != 7 || got[1].ProducerID != 8 || got[2].BaseOffset != 3 {
		t.Fatalf("without a readable snapshot: %+v", got)
	}
}

func TestProducerSnapshotEncoding(t *testing.T) {
	in := []partition.ProducerBatch{
		{ProducerID: 1, BaseOffset: 2, LastOffset: 3, TimestampMs: -4, ProducerEpoch: 5, BaseSequence: 1<<31 - 1},
		{ProducerID: 1 << 40, BaseOffset: 0, LastOffset: 0, ProducerEpoch: -1, BaseSequence: 0},
	}
	out, hw, err := decodeProducerSnapshot(encodeProducerSnapshot(in, 77))
	if err != nil || hw != 77 || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("round trip: %+v hw %d %v", out, hw, err)
	}
	// Version 1 (no high watermark) still reads.
	v1 := append([]byte{1}, encodeProducerSnapshot(in, 0)[9:]...)
	if out, hw, err := decodeProducerSnapshot(v1); err != nil || hw != 0 || len(out) != 2 || out[1] != in[1] {
		t.Fatalf("v1: %+v hw %d %v", out, hw, err)
	}
	for _, bad := range [][]byte{nil, {2}, {1, 0, 0}, {3}, {2, 0x80, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := decodeProducerSnapshot(bad); err == nil {
			t.Errorf("decoded malformed snapshot %v", bad)
		}
	}
}
