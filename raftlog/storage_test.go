package raftlog

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/troupe-io/troupe/internal/pebblelog"
)

// TestConformsToMemoryStorage drives a Storage and a raft.MemoryStorage
// with the same seeded random writes (reopening the Storage now and then)
// and compares every answer of every raft.Storage method after each one.
func TestConformsToMemoryStorage(t *testing.T) {
	tests := []struct {
		name         string
		seed         uint64
		ops          int
		cacheEntries int
		cacheBytes   int
	}{
		{"default cache", 1, 500, defaultCacheEntries, defaultCacheBytes},
		{"no cache", 2, 500, 0, 0},
		{"four-entry cache", 3, 500, 4, 1 << 20},
		{"byte-bounded cache", 4, 500, 64, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			open := func() *Storage {
				s := openTest(t, fs, "/raft")
				s.cache = newEntryCache(tt.cacheEntries, tt.cacheBytes)
				return s
			}
			s := open()
			defer func() { _ = s.Close() }()
			m := newModel()
			rng := rand.New(rand.NewPCG(tt.seed, 0))
			for step := range tt.ops {
				o := genOp(rng, m)
				if o.kind == opReopen {
					if err := s.Close(); err != nil {
						t.Fatalf("step %d: Close: %v", step, err)
					}
					s = open()
				}
				wantSnap, wantErr := o.apply(m)
				gotSnap, gotErr := o.apply(s)
				if gotErr != wantErr {
					t.Fatalf("step %d: %v: error %v, MemoryStorage says %v", step, o, gotErr, wantErr)
				}
				if wantSnap != nil && !proto.Equal(pb.EnsureSnapshot(gotSnap), pb.EnsureSnapshot(wantSnap)) {
					t.Fatalf("step %d: %v: returned %v, MemoryStorage %v", step, o, gotSnap, wantSnap)
				}
				compareStorages(t, rng, step, o, m, s)
			}
		})
	}
}

// compareStorages checks that s answers every raft.Storage call as m does.
func compareStorages(t *testing.T, rng *rand.Rand, step int, o op, m *model, s *Storage) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after step %d (%v): "+format, append([]any{step, o}, args...)...)
	}
	first, _ := m.FirstIndex()
	last, _ := m.LastIndex()
	if got, err := s.FirstIndex(); got != first || err != nil {
		fail("FirstIndex = %d, %v; want %d", got, err, first)
	}
	if got, err := s.LastIndex(); got != last || err != nil {
		fail("LastIndex = %d, %v; want %d", got, err, last)
	}

	wantHS, wantCS, _ := m.InitialState()
	gotHS, gotCS, err := s.InitialState()
	if err != nil || !proto.Equal(gotHS, wantHS) || !proto.Equal(gotCS, wantCS) {
		fail("InitialState = %v, %v, %v; want %v, %v", gotHS, gotCS, err, wantHS, wantCS)
	}

	for i := first - min(first, 3); i <= last+3; i++ {
		want, wantErr := m.Term(i)
		got, err := s.Term(i)
		if got != want || err != wantErr {
			fail("Term(%d) = %d, %v; want %d, %v", i, got, err, want, wantErr)
		}
	}

	wantSnap, _ := m.MemoryStorage.Snapshot()
	gotSnap, err := s.Snapshot()
	if wantSnap.GetMetadata().GetIndex() < first-1 {
		if err != raft.ErrSnapshotTemporarilyUnavailable {
			fail("Snapshot with compaction past it = %v, %v; want ErrSnapshotTemporarilyUnavailable", gotSnap, err)
		}
	} else if err != nil || !proto.Equal(gotSnap, wantSnap) {
		fail("Snapshot = %v, %v; want %v", gotSnap, err, wantSnap)
	}
	if stored, err := s.storedSnapshot(); err != nil || !proto.Equal(stored, wantSnap) {
		fail("stored snapshot = %v, %v; want %v", stored, err, wantSnap)
	}

	maxSizes := []uint64{0, 1, 60, 250, 700, 2000, math.MaxUint64}
	checkEntries := func(lo, hi, maxSize uint64) {
		want, wantErr := m.Entries(lo, hi, maxSize)
		got, err := s.Entries(lo, hi, maxSize)
		if err != wantErr || len(got) != len(want) {
			fail("Entries(%d, %d, %d) = %d entries, %v; want %d, %v", lo, hi, maxSize, len(got), err, len(want), wantErr)
		}
		for k := range want {
			if !proto.Equal(got[k], want[k]) {
				fail("Entries(%d, %d, %d)[%d] = %v; want %v", lo, hi, maxSize, k, got[k], want[k])
			}
		}
	}
	checkEntries(first, last+1, math.MaxUint64)
	for range 12 {
		lo := first - min(first, 2) + uint64(rng.IntN(int(last-first)+4))
		lo = min(lo, last+1)
		hi := lo + uint64(rng.IntN(int(last+1-lo)+1))
		checkEntries(lo, hi, maxSizes[rng.IntN(len(maxSizes))])
	}
}

// TestMisuseReturnsErrors covers the calls MemoryStorage answers with a
// panic: each must return an error and change nothing.
func TestMisuseReturnsErrors(t *testing.T) {
	ent := func(index, term uint64) *pb.Entry {
		return &pb.Entry{Index: new(index), Term: new(term), Data: []byte("x")}
	}
	// The log: dummy 3 (term 1, snapshot at 3), entries 4..8, compacted to 5.
	setup := func(t *testing.T) *Storage {
		s := openTest(t, vfs.NewMem(), "/raft")
		t.Cleanup(func() { _ = s.Close() })
		var ents []*pb.Entry
		for i := uint64(1); i <= 8; i++ {
			ents = append(ents, ent(i, 1))
		}
		if err := s.SaveReady(nil, ents, nil, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSnapshot(3, nil, []byte("snap")); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(5); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		call func(s *Storage) error
		want error // matched with errors.Is; nil means any error
	}{
		{"Entries past last", func(s *Storage) error { _, err := s.Entries(6, 10, math.MaxUint64); return err }, raft.ErrUnavailable},
		{"Entries lo > hi", func(s *Storage) error { _, err := s.Entries(8, 7, math.MaxUint64); return err }, raft.ErrUnavailable},
		{"CreateSnapshot past last", func(s *Storage) error { _, err := s.CreateSnapshot(9, nil, nil); return err }, raft.ErrUnavailable},
		{"CreateSnapshot below first", func(s *Storage) error { _, err := s.CreateSnapshot(4, nil, nil); return err }, raft.ErrCompacted},
		{"Compact past last", func(s *Storage) error { return s.Compact(9) }, raft.ErrUnavailable},
		{"append leaving a hole", func(s *Storage) error { return s.SaveReady(nil, []*pb.Entry{ent(10, 1)}, nil, true) }, nil},
		{"entries not contiguous", func(s *Storage) error {
			return s.SaveReady(nil, []*pb.Entry{ent(9, 1), ent(11, 1)}, nil, true)
		}, nil},
		{"nil entry", func(s *Storage) error { return s.SaveReady(nil, []*pb.Entry{ent(9, 1), nil}, nil, true) }, nil},
		{"indexes overflow", func(s *Storage) error {
			return s.SaveReady(nil, []*pb.Entry{ent(math.MaxUint64, 1), ent(0, 1)}, nil, true)
		}, nil},
		{"stale snapshot in SaveReady", func(s *Storage) error {
			snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(1))}}
			return s.SaveReady(&pb.HardState{Term: new(uint64(9))}, []*pb.Entry{ent(9, 1)}, snap, true)
		}, raft.ErrSnapOutOfDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setup(t)
			before := describe(s)
			err := tt.call(s)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if after := describe(s); after != before {
				t.Fatalf("state changed by a refused call:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// Refusing bad input does not make the storage unusable.
			if err := s.SaveReady(nil, []*pb.Entry{ent(9, 2)}, nil, true); err != nil {
				t.Fatalf("append after the refused call: %v", err)
			}
		})
	}
}

// TestSnapshotAfterCompactingPastIt: raft must not be handed a snapshot
// that cannot reach FirstIndex.
func TestSnapshotAfterCompactingPastIt(t *testing.T) {
	s := openTest(t, vfs.NewMem(), "/raft")
	defer s.Close()
	var ents []*pb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, &pb.Entry{Index: new(i), Term: new(uint64(2))})
	}
	if err := s.SaveReady(nil, ents, nil, true); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"fresh log, compaction none", func() error { return nil }, nil},
		{"compacted without a snapshot", func() error { return s.Compact(2) }, raft.ErrSnapshotTemporarilyUnavailable},
		{"snapshot at the compaction point", func() error { _, err := s.CreateSnapshot(2, nil, []byte("a")); return err }, nil},
		{"compacted past the snapshot", func() error { return s.Compact(6) }, raft.ErrSnapshotTemporarilyUnavailable},
		{"newer snapshot", func() error { _, err := s.CreateSnapshot(7, nil, []byte("b")); return err }, nil},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		snap, err := s.Snapshot()
		if err != st.want {
			t.Fatalf("%s: Snapshot() = %v, %v; want error %v", st.name, snap, err, st.want)
		}
	}
	snap, _ := s.Snapshot()
	if snap.GetMetadata().GetIndex() != 7 || snap.GetMetadata().GetTerm() != 2 || string(snap.GetData()) != "b" {
		t.Fatalf("Snapshot() = %v, want index 7 term 2 data b", snap)
	}
}

// TestRestart checks that Close and Open on a real directory bring back
// the same state, and that a closed Storage refuses calls.
func TestRestart(t *testing.T) {
	dir := t.TempDir() + "/nested/raft" // Open creates missing parents
	s, err := Open(Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel()
	rng := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		o := genOp(rng, m)
		if o.kind == opReopen {
			continue
		}
		_, wantErr := o.apply(m)
		if _, err := o.apply(s); err != wantErr {
			t.Fatalf("%v: %v, want %v", o, err, wantErr)
		}
	}
	want := describe(m)
	if got := describe(s); got != want {
		t.Fatalf("before restart:\n%s\nwant:\n%s", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Fatalf("LastIndex after Close: %v, want ErrClosed", err)
	}
	if err := s.SaveReady(&pb.HardState{Term: new(uint64(1))}, nil, nil, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("SaveReady after Close: %v, want ErrClosed", err)
	}

	s, err = Open(Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := describe(s); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
}

// TestOpenDetectsDamage damages a closed store behind the package's back
// and expects Open to refuse it with ErrCorrupt.
func TestOpenDetectsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b *pebble.Batch)
	}{
		{"hole in the log", func(b *pebble.Batch) { k := makeEntryKey(5); _ = b.Delete(k[:], nil) }},
		{"entry below the dummy", func(b *pebble.Batch) {
			k := makeEntryKey(2)
			v, _ := proto.Marshal(&pb.Entry{Index: new(uint64(2)), Term: new(uint64(1))})
			_ = b.Set(k[:], v, nil)
		}},
		{"entry under another index", func(b *pebble.Batch) {
			k := makeEntryKey(6)
			v, _ := proto.Marshal(&pb.Entry{Index: new(uint64(7)), Term: new(uint64(1))})
			_ = b.Set(k[:], v, nil)
		}},
		{"undecodable entry", func(b *pebble.Batch) { k := makeEntryKey(4); _ = b.Set(k[:], []byte{0xff, 0xff}, nil) }},
		{"stray key in the entry range", func(b *pebble.Batch) { _ = b.Set([]byte{kindEntry, 1}, nil, nil) }},
		{"undecodable hard state", func(b *pebble.Batch) { _ = b.Set(hardStateKey, []byte{0x08}, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := openTest(t, fs, "/raft")
			var ents []*pb.Entry
			for i := uint64(1); i <= 8; i++ {
				ents = append(ents, &pb.Entry{Index: new(i), Term: new(uint64(1)), Data: []byte("data")})
			}
			if err := s.SaveReady(&pb.HardState{Term: new(uint64(1)), Commit: new(uint64(8))}, ents, nil, true); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(3); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			db, err := pebble.Open("/raft", &pebble.Options{FS: fs, Logger: pebblelog.Logger{L: quietLogger(), Owner: "raftlog"}})
			if err != nil {
				t.Fatal(err)
			}
			b := db.NewBatch()
			tt.damage(b)
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			s, err = Open(Options{Dir: "/raft", FS: fs, Logger: quietLogger()})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open accepted a damaged log")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestEntriesReturnsFreshSlice: raft may append to what Entries returns;
// that must not reach the storage.
func TestEntriesReturnsFreshSlice(t *testing.T) {
	for _, cached := range []bool{true, false} {
		s := openTest(t, vfs.NewMem(), "/raft")
		if !cached {
			s.cache = newEntryCache(0, 0)
		}
		ents := []*pb.Entry{
			{Index: new(uint64(1)), Term: new(uint64(1))},
			{Index: new(uint64(2)), Term: new(uint64(1))},
			{Index: new(uint64(3)), Term: new(uint64(1))},
		}
		if err := s.SaveReady(nil, ents, nil, false); err != nil {
			t.Fatal(err)
		}
		got, err := s.Entries(1, 3, math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		_ = append(got, &pb.Entry{Index: new(uint64(99))})
		again, err := s.Entries(1, 4, math.MaxUint64)
		if err != nil || len(again) != 3 || again[2].GetIndex() != 3 {
			t.Fatalf("cached=%v: Entries after the caller appended = %v, %v", cached, again, err)
		}
		_ = s.Close()
	}
}
