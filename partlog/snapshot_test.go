package partlog

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestSnapshotSurvivesReopenAndGoesWithTheLog(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStore(t, fs, "data")
	id := LogID{Topic: "snap", Partition: 0}
	l := openTestLog(t, s, id, DefaultLogConfig())
	if _, _, ok, err := l.LoadSnapshot(); ok || err != nil {
		t.Fatalf("fresh log has a snapshot: %v %v", ok, err)
	}
	appendBatches(t, l, 5, 0) // offsets 0-9: the snapshots describe batches the log keeps
	if err := l.SaveSnapshot(7, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot(9, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot(10, make([]byte, maxSnapshotBytes+1)); err == nil {
		t.Fatal("oversized snapshot accepted")
	}
	crash(t, s) // the snapshot was synced: it must survive

	s = openTestStore(t, fs, "data")
	l = openTestLog(t, s, id, DefaultLogConfig())
	end, data, ok, err := l.LoadSnapshot()
	if err != nil || !ok || end != 9 || !bytes.Equal(data, []byte("second")) {
		t.Fatalf("after reopen: end %d data %q ok %v err %v", end, data, ok, err)
	}
	if err := s.DeleteLog(id); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, s, id, DefaultLogConfig())
	if _, _, ok, _ := l.LoadSnapshot(); ok {
		t.Fatal("a re-created log inherited the deleted log's snapshot")
	}
	s.Close()
}

// appendBatches appends n two-record batches in leader epoch epoch.
func appendBatches(t *testing.T, l *Log, n int, epoch int32) {
	t.Helper()
	for range n {
		b := buildEpochBatch(t, l.EndOffset(), []int64{1, 2}, 16, epoch)
		if err := l.Append(b.data, 0); err != nil {
			t.Fatalf("append at %d: %v", l.EndOffset(), err)
		}
	}
}

// reopenAfterPowerLoss keeps only what was synced, as a power loss does,
// and opens the log again on what is left.
func reopenAfterPowerLoss(t *testing.T, fs *vfs.MemFS, s *Store) (*vfs.MemFS, *Store, *Log) {
	t.Helper()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	crash(t, s)
	s = openTestStore(t, crashed, "/d")
	return crashed, s, openTestLog(t, s, testID, infiniteConfig(1<<20))
}

// TestTruncateDropsSnapshotOfCutBatches: a snapshot covering batches that
// Truncate cuts describes offsets that new batches take next, so it must
// go, durably: after a power loss that keeps the regrown log, loading it
// would otherwise hand back the cut batches' producer state. A snapshot
// below the cut stays.
func TestTruncateDropsSnapshotOfCutBatches(t *testing.T) {
	for _, tc := range []struct {
		name            string
		snapEnd, cutAt  int64
		wantEnd         int64 // end after Truncate (batches hold 2 offsets)
		wantSnapshotNow bool
	}{
		{name: "snapshot past the cut", snapEnd: 10, cutAt: 6, wantEnd: 6},
		{name: "cut inside a batch below the snapshot end", snapEnd: 7, cutAt: 7, wantEnd: 6},
		{name: "snapshot at the cut", snapEnd: 6, cutAt: 6, wantEnd: 6, wantSnapshotNow: true},
		{name: "snapshot below the cut", snapEnd: 4, cutAt: 7, wantEnd: 6, wantSnapshotNow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := openTestStore(t, fs, "/d")
			l := openTestLog(t, s, testID, infiniteConfig(1<<20))
			appendBatches(t, l, 5, 0) // offsets 0-9
			if err := l.SaveSnapshot(tc.snapEnd, []byte("producers")); err != nil {
				t.Fatal(err)
			}
			if err := l.Truncate(tc.cutAt); err != nil {
				t.Fatal(err)
			}
			if l.EndOffset() != tc.wantEnd {
				t.Fatalf("end after truncate to %d: %d, want %d", tc.cutAt, l.EndOffset(), tc.wantEnd)
			}
			check := func(when string) {
				t.Helper()
				end, _, ok, err := l.LoadSnapshot()
				if err != nil || ok != tc.wantSnapshotNow || (ok && end != tc.snapEnd) {
					t.Fatalf("%s: snapshot end %d present %v err %v, want present %v", when, end, ok, err, tc.wantSnapshotNow)
				}
			}
			check("after truncate")

			// The new leader's batches take the cut offsets and more;
			// then the power goes.
			appendBatches(t, l, 4, 1) // offsets 6-13
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			_, s, l = reopenAfterPowerLoss(t, fs, s)
			if l.EndOffset() != tc.wantEnd+8 {
				t.Fatalf("recovered end %d, want %d", l.EndOffset(), tc.wantEnd+8)
			}
			check("after power loss")
			s.Close()
		})
	}
}

// TestOpenDropsSnapshotPastRecoveredEnd: a snapshot saved at an end the
// crash did not keep describes lost batches; once the log grows back over
// those offsets with other batches, loading it would be wrong, so open
// deletes it, durably. A snapshot within the recovered log stays.
func TestOpenDropsSnapshotPastRecoveredEnd(t *testing.T) {
	for _, tc := range []struct {
		name         string
		snapEnd      int64
		wantSnapshot bool
	}{
		{name: "snapshot past the synced end", snapEnd: 14, wantSnapshot: false},
		{name: "snapshot at the synced end", snapEnd: 10, wantSnapshot: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := openTestStore(t, fs, "/d")
			l := openTestLog(t, s, testID, infiniteConfig(1<<20))
			appendBatches(t, l, 5, 0) // offsets 0-9, synced
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			appendBatches(t, l, 2, 0) // offsets 10-13, never synced
			if err := l.SaveSnapshot(tc.snapEnd, []byte("producers")); err != nil {
				t.Fatal(err)
			}
			fs, s, l = reopenAfterPowerLoss(t, fs, s)
			if l.EndOffset() != 10 {
				t.Fatalf("recovered end %d, want 10", l.EndOffset())
			}
			check := func(when string) {
				t.Helper()
				end, _, ok, err := l.LoadSnapshot()
				if err != nil || ok != tc.wantSnapshot || (ok && end != tc.snapEnd) {
					t.Fatalf("%s: snapshot end %d present %v err %v, want present %v", when, end, ok, err, tc.wantSnapshot)
				}
			}
			check("after power loss")

			// Other batches take offsets 10-15; another power loss.
			appendBatches(t, l, 3, 1)
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			_, s, l = reopenAfterPowerLoss(t, fs, s)
			if l.EndOffset() != 16 {
				t.Fatalf("recovered end %d, want 16", l.EndOffset())
			}
			check("after the log grew back")
			s.Close()
		})
	}
}
