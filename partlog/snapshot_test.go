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
