package simdisk_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/sim/simdisk"
)

// buildBatch makes a plain producer's v2 batch of recs records at base,
// each value naming its offset.
func buildBatch(t *testing.T, base int64, recs int) []byte {
	t.Helper()
	rs := make([]batch.Record, recs)
	for i := range rs {
		v := make([]byte, 64)
		binary.BigEndian.PutUint64(v, uint64(base+int64(i)))
		rs[i] = batch.Record{Value: v, TimestampDelta: int64(i)}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{
		BaseOffset:     base,
		FirstTimestamp: 1_000 + base,
		ProducerID:     -1,
		ProducerEpoch:  -1,
		BaseSequence:   -1,
	}, rs)
	if err != nil {
		t.Fatalf("build batch at %d: %v", base, err)
	}
	return b
}

// readLog reads the whole log through Read, as a fetch would.
func readLog(t *testing.T, l *partlog.Log) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		r, err := l.Read(off, 1<<20, l.EndOffset())
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
		it := batch.NewIter(chunk)
		for h, _, ok := it.Next(); ok; h, _, ok = it.Next() {
			off = h.LastOffset() + 1
		}
		if it.Err() != nil {
			t.Fatalf("region at %d does not parse: %v", off, it.Err())
		}
	}
	return out
}

// TestPartlogFindsSyncedBatches runs a partlog Store on the disk, with
// Pebble's index untracked as the simulator runs it: append, sync now and
// then, crash with unsynced appends in flight, reopen. Every synced batch
// must be back, and whatever else came back must be the batches appended
// after them, whole and in order.
func TestPartlogFindsSyncedBatches(t *testing.T) {
	const dir = "/n1/partlog"
	id := partlog.LogID{Topic: "t", Partition: 0}
	cfg := partlog.LogConfig{SegmentBytes: 4 << 10, RetentionMs: -1, RetentionBytes: -1}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	var sawUnsyncedBack, sawUnsyncedLost bool
	for seed := range uint64(4) {
		d := simdisk.New(simdisk.Config{Seed: seed, Tracked: simdisk.Outside(dir + "/__index")})
		// The node's base directory must itself be durable.
		if err := d.FS().MkdirAll("/n1", 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := d.FS().OpenDir("/")
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Sync(); err != nil {
			t.Fatal(err)
		}
		_ = root.Close()

		var batches [][]byte // appended so far, in order
		var durable int      // batches[:durable] were covered by a Sync
		for round := range 4 {
			s, err := partlog.Open(partlog.Options{Dir: dir, FS: d.FS(), Logger: logger})
			if err != nil {
				t.Fatalf("seed %d round %d: open store: %v", seed, round, err)
			}
			l, err := s.OpenLog(id, cfg)
			if err != nil {
				t.Fatalf("seed %d round %d: open log: %v", seed, round, err)
			}

			got := readLog(t, l)
			if want := bytes.Join(batches[:durable], nil); !bytes.HasPrefix(got, want) {
				t.Fatalf("seed %d round %d: log lost synced batches: read %d bytes, %d synced", seed, round, len(got), len(want))
			}
			if all := bytes.Join(batches, nil); !bytes.HasPrefix(all, got) {
				t.Fatalf("seed %d round %d: log holds %d bytes that are not the appended batches", seed, round, len(got))
			}
			// The recovered log is the history from here on.
			n := 0
			for total := 0; total < len(got); n++ {
				total += len(batches[n])
			}
			if n > durable {
				sawUnsyncedBack = true
			}
			if n < len(batches) {
				sawUnsyncedLost = true
			}
			batches, durable = batches[:n], n

			// 14 batches fill a segment. Syncing every fifth append leaves
			// the last two of each round unsynced, in a segment whose
			// directory entry an earlier Sync made durable, so the crash
			// has a tail to keep, tear or drop; rolls in mid-round also
			// leave new segments that only a Sync makes durable.
			for i := range 32 {
				b := buildBatch(t, l.EndOffset(), 3)
				if err := l.Append(b, 1_000); err != nil {
					t.Fatalf("seed %d round %d: append: %v", seed, round, err)
				}
				batches = append(batches, b)
				if i%5 == 4 {
					if _, err := l.Sync(); err != nil {
						t.Fatalf("seed %d round %d: sync: %v", seed, round, err)
					}
					durable = len(batches)
				}
			}
			// Abandon the store as a dead process would: no Close.
			d.Crash()
		}
		if s := d.Stats(); s.Mismatches != 0 {
			t.Fatalf("seed %d: stats %+v", seed, s)
		}
	}
	// The run must have exercised both sides of a crash.
	if !sawUnsyncedBack || !sawUnsyncedLost {
		t.Fatalf("unsynced batches came back: %v, were lost: %v; want both to happen", sawUnsyncedBack, sawUnsyncedLost)
	}
}

var _ vfs.FS = simdisk.New(simdisk.Config{}).FS()
