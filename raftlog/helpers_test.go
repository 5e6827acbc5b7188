package raftlog

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t testing.TB, fs vfs.FS, dir string) *Storage {
	t.Helper()
	s, err := Open(Options{Dir: dir, FS: fs, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// store is what the tests drive: a raft.Storage plus the writes.
// *Storage and *model both implement it.
type store interface {
	raft.Storage
	SaveReady(hs *pb.HardState, entries []*pb.Entry, snap *pb.Snapshot, sync bool) error
	CreateSnapshot(index uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error)
	Compact(index uint64) error
	// storedSnapshot is the stored snapshot even where Snapshot refuses
	// to hand it to raft.
	storedSnapshot() (*pb.Snapshot, error)
}

func (s *Storage) storedSnapshot() (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readSnapshot()
}

// model is the reference: raft.MemoryStorage, with SaveReady done the way
// raft's documentation (and etcd's raftexample) stores a Ready.
type model struct{ *raft.MemoryStorage }

func newModel() *model { return &model{raft.NewMemoryStorage()} }

func (m *model) SaveReady(hs *pb.HardState, entries []*pb.Entry, snap *pb.Snapshot, _ bool) error {
	if !raft.IsEmptySnap(snap) {
		if err := m.ApplySnapshot(proto.Clone(snap).(*pb.Snapshot)); err != nil {
			return err
		}
	}
	if err := m.Append(entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		return m.SetHardState(proto.Clone(hs).(*pb.HardState))
	}
	return nil
}

func (m *model) storedSnapshot() (*pb.Snapshot, error) { return m.MemoryStorage.Snapshot() }

// describe renders everything a store tells raft, in a form where two
// states are equal exactly when their descriptions are.
func describe(st store) string {
	var b strings.Builder
	first, err1 := st.FirstIndex()
	last, err2 := st.LastIndex()
	hs, cs, err3 := st.InitialState()
	fmt.Fprintf(&b, "first=%d last=%d (%v %v %v)\nhs=%s\ncs=%s\n", first, last, err1, err2, err3, encoded(hs), encoded(cs))
	term, err := st.Term(first - 1)
	fmt.Fprintf(&b, "dummy term=%d %v\n", term, err)
	if last >= first {
		ents, err := st.Entries(first, last+1, math.MaxUint64)
		fmt.Fprintf(&b, "entries err=%v\n", err)
		for _, e := range ents {
			fmt.Fprintf(&b, "  %s\n", encoded(e))
		}
	}
	snap, err := st.storedSnapshot()
	fmt.Fprintf(&b, "snapshot=%s %v\n", encoded(snap), err)
	return b.String()
}

// encoded is a message's deterministic encoding (which keeps field
// presence), shortened to a hash when long.
func encoded(m proto.Message) string {
	if m == nil {
		return "nil"
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	if len(v) > 64 {
		return fmt.Sprintf("%d bytes sha256 %x", len(v), sha256.Sum256(v))
	}
	return fmt.Sprintf("%x", v)
}

// opKind is one step of a generated workload.
type opKind int

const (
	opSave opKind = iota
	opCreateSnapshot
	opCompact
	opReopen // close and reopen the Storage; nothing for the model
)

type op struct {
	kind opKind
	// opSave
	hs   *pb.HardState
	ents []*pb.Entry
	snap *pb.Snapshot
	sync bool
	// opCreateSnapshot, opCompact
	index uint64
	cs    *pb.ConfState
	data  []byte
}

func (o op) String() string {
	switch o.kind {
	case opSave:
		var ents string
		if n := len(o.ents); n > 0 {
			ents = fmt.Sprintf("[%d..%d]", o.ents[0].GetIndex(), o.ents[n-1].GetIndex())
		}
		return fmt.Sprintf("SaveReady(hs=%v ents=%s snap=%d/%d sync=%v)", o.hs, ents,
			o.snap.GetMetadata().GetIndex(), o.snap.GetMetadata().GetTerm(), o.sync)
	case opCreateSnapshot:
		return fmt.Sprintf("CreateSnapshot(%d, cs=%v, %d bytes)", o.index, o.cs, len(o.data))
	case opCompact:
		return fmt.Sprintf("Compact(%d)", o.index)
	default:
		return "reopen"
	}
}

// apply runs o against st. The returned snapshot is CreateSnapshot's.
func (o op) apply(st store) (*pb.Snapshot, error) {
	switch o.kind {
	case opSave:
		return nil, st.SaveReady(o.hs, o.ents, o.snap, o.sync)
	case opCreateSnapshot:
		return st.CreateSnapshot(o.index, o.cs, o.data)
	case opCompact:
		return nil, st.Compact(o.index)
	}
	return nil, nil
}

// durable reports whether o, once it returned successfully, must survive a
// crash.
func (o op) durable() bool {
	switch o.kind {
	case opSave:
		return o.sync || !raft.IsEmptySnap(o.snap)
	case opCreateSnapshot, opCompact:
		return true
	}
	return false
}

// genOp draws a step that is valid input for MemoryStorage (which panics on
// much invalid input) but still reaches every error it returns: stale
// snapshots, compacted indexes, overwrites of the tail, entries below the
// log's start.
func genOp(rng *rand.Rand, m *model) op {
	first, _ := m.FirstIndex()
	last, _ := m.LastIndex()
	offset := first - 1
	lastTerm, _ := m.Term(last)
	snap, _ := m.MemoryStorage.Snapshot()
	snapIndex := snap.GetMetadata().GetIndex()

	switch r := rng.IntN(100); {
	case r < 4:
		return op{kind: opReopen}
	case r < 14:
		o := op{kind: opCreateSnapshot, data: randBytes(rng, 400)}
		if rng.IntN(3) > 0 {
			o.cs = randConfState(rng)
		}
		lo := max(snapIndex+1, offset)
		if lo > last || rng.IntN(5) == 0 {
			o.index = uint64(rng.IntN(int(snapIndex) + 1)) // stale
		} else {
			o.index = lo + uint64(rng.IntN(int(last-lo)+1))
		}
		return o
	case r < 24:
		lo := offset - min(offset, 1)
		return op{kind: opCompact, index: lo + uint64(rng.IntN(int(last-lo)+1))}
	}

	o := op{kind: opSave, sync: rng.IntN(2) == 0}
	if rng.IntN(12) == 0 {
		var index uint64
		if snapIndex > 0 && rng.IntN(4) == 0 {
			index = max(1, snapIndex-uint64(rng.IntN(2))) // stale
		} else {
			span := max(int(last)-int(snapIndex), 0) + 5
			index = snapIndex + 1 + uint64(rng.IntN(span))
		}
		term := lastTerm + uint64(rng.IntN(3))
		o.snap = &pb.Snapshot{
			Metadata: &pb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: randConfState(rng)},
			Data:     randBytes(rng, 400),
		}
		offset, last, lastTerm = index, index, term
	}
	if rng.IntN(5) > 0 {
		var e0 uint64
		switch r := rng.IntN(10); {
		case r < 6:
			e0 = last + 1
		case r < 9:
			e0 = last + 1 - min(uint64(rng.IntN(4)), last-offset)
		default:
			e0 = max(1, offset+1-min(uint64(rng.IntN(4)), offset))
		}
		term := lastTerm
		if o.snap == nil && e0-1 >= offset {
			term, _ = m.Term(e0 - 1)
		}
		for k := range 1 + rng.IntN(5) {
			if rng.IntN(5) == 0 {
				term++
			}
			e := &pb.Entry{Index: new(e0 + uint64(k)), Term: new(term), Data: randBytes(rng, 300)}
			switch rng.IntN(10) {
			case 0:
				e.Type = pb.EntryConfChange.Enum()
			case 1, 2:
				// Type left unset: presence must survive storage.
			default:
				e.Type = pb.EntryNormal.Enum()
			}
			o.ents = append(o.ents, e)
		}
	}
	switch rng.IntN(6) {
	case 0:
		o.hs = &pb.HardState{} // empty: not stored
	case 1, 2:
		o.hs = &pb.HardState{
			Term:   new(lastTerm + uint64(rng.IntN(2))),
			Vote:   new(uint64(rng.IntN(4))),
			Commit: new(uint64(rng.IntN(int(last) + 1))),
		}
	}
	return o
}

func randBytes(rng *rand.Rand, maxLen int) []byte {
	n := rng.IntN(maxLen + 1)
	if n%5 == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randConfState(rng *rand.Rand) *pb.ConfState {
	cs := &pb.ConfState{}
	for id := uint64(1); id <= 5; id++ {
		switch rng.IntN(3) {
		case 0:
			cs.Voters = append(cs.Voters, id)
		case 1:
			if rng.IntN(3) == 0 {
				cs.Learners = append(cs.Learners, id)
			}
		}
	}
	if rng.IntN(2) == 0 {
		cs.AutoLeave = new(rng.IntN(2) == 0)
	}
	return cs
}
