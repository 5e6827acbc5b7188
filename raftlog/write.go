package raftlog

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// SaveReady persists what one raft.Ready says must be stored before its
// messages are sent: rd.HardState, rd.Entries and rd.Snapshot, with
// sync = rd.MustSync. All of it goes into one Pebble batch, so a crash
// leaves either all of it or none:
//
//   - a non-empty snap replaces the log: every stored entry goes (raft only
//     sends a snapshot when the log cannot be reconciled with it, and raft
//     itself forgets its log on restoring one), and the log restarts after
//     the snapshot's index. A snapshot not newer than the stored one is
//     refused with raft.ErrSnapOutOfDate;
//   - entries are appended; the first one at index i replaces every stored
//     entry at >= i, as raft requires when a leader overwrites an
//     uncommitted tail. Entries at or below the dummy index are ignored (as
//     MemoryStorage.Append does); entries must be contiguous and must not
//     leave a hole after the last index;
//   - a non-empty hs replaces the hard state.
//
// Durability invariant: whatever raft requires to be durable before a
// message is sent is synced before SaveReady returns. raft sets MustSync
// when entries, term or vote change, and SaveReady then commits with
// pebble.Sync. A snapshot is always synced, whatever sync says: raft does
// not count it in MustSync, yet acknowledges it to the leader. With sync
// false (only the commit index moved) the batch is written to Pebble's WAL
// unsynced; the next synced write makes it durable, and a crash before
// that recovers a state without it, never a later batch without an earlier
// one, because Pebble replays a prefix of its WAL.
//
// SaveReady keeps the entries it is given (in its cache, and hands them out
// from Entries): as raft requires, nobody may mutate them afterwards.
func (s *Storage) SaveReady(hs *pb.HardState, entries []*pb.Entry, snap *pb.Snapshot, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}

	// Validate and plan before writing anything: a refused call changes
	// nothing, on disk or in memory.
	offset, offsetTerm, last := s.offset, s.offsetTerm, s.last
	var snapMeta *pb.SnapshotMetadata
	hasSnap := !raft.IsEmptySnap(snap)
	if hasSnap {
		index := snap.GetMetadata().GetIndex()
		if cur := s.snapMeta.GetIndex(); cur != 0 && index <= cur {
			return raft.ErrSnapOutOfDate
		}
		snapMeta = pb.EnsureSnapshotMetadata(proto.Clone(snap.GetMetadata()).(*pb.SnapshotMetadata))
		offset, offsetTerm, last = index, snapMeta.GetTerm(), index
	}
	ents, err := entriesToAppend(entries, offset, last)
	if err != nil {
		return err
	}
	hasHS := !raft.IsEmptyHardState(hs)
	if !hasSnap && len(ents) == 0 && !hasHS {
		if sync && s.unsynced {
			// Nothing new, but the caller asks for what it saved to be
			// durable: sync the earlier unsynced writes.
			return s.commit(nil, pebble.Sync, "sync")
		}
		return nil
	}

	b := s.db.NewBatch()
	defer b.Close()
	defer s.trimScratch()
	if hasSnap {
		if err := s.deleteEntries(b, s.offset+1, s.last+1); err != nil {
			return err
		}
		if err := s.setProto(b, snapshotKey, &pb.Snapshot{Metadata: snapMeta, Data: snap.GetData()}); err != nil {
			return err
		}
		if err := s.setProto(b, offsetKey, &pb.Entry{Index: new(offset), Term: new(offsetTerm)}); err != nil {
			return err
		}
	}
	var first, newLast uint64
	if len(ents) > 0 {
		first, newLast = ents[0].GetIndex(), ents[len(ents)-1].GetIndex()
		// Entries up to newLast are overwritten below; only a longer old
		// tail needs deleting.
		if err := s.deleteEntries(b, newLast+1, last+1); err != nil {
			return err
		}
		for _, e := range ents {
			// A key in s rather than in this frame: handing a local array's
			// slice to Pebble would move it to the heap on every entry.
			s.key = makeEntryKey(e.GetIndex())
			if err := s.setProto(b, s.key[:], e); err != nil {
				return err
			}
		}
	}
	if hasHS {
		// Encoded into its own buffer, kept after the commit as the
		// in-memory hard state: no allocation per Ready.
		v, err := proto.MarshalOptions{}.MarshalAppend(s.nextHardState[:0], hs)
		if err != nil {
			return fmt.Errorf("raftlog: encode hard state: %w", err)
		}
		s.nextHardState = v
		if err := b.Set(hardStateKey, v, nil); err != nil {
			return fmt.Errorf("raftlog: write hard state: %w", err)
		}
	}
	opts := pebble.NoSync
	if sync || hasSnap {
		opts = pebble.Sync
	}
	if err := s.commit(b, opts, "save ready"); err != nil {
		return err
	}

	// Committed: bring the in-memory mirror along.
	if hasSnap {
		s.snapMeta = snapMeta
		s.offset, s.offsetTerm, s.last = offset, offsetTerm, last
		s.terms = s.terms[:0]
		s.cache.reset()
	}
	if len(ents) > 0 {
		s.truncateTerms(first)
		s.cache.truncateFrom(first)
		for _, e := range ents {
			s.appendTerm(e.GetIndex(), e.GetTerm())
			s.cache.append(e, proto.Size(e))
		}
		s.last = newLast
	}
	if hasHS {
		s.hardState, s.nextHardState = s.nextHardState, s.hardState
	}
	return nil
}

// entriesToAppend checks entries against a log (offset, last] and returns
// the part to write, which starts in (offset, last+1].
func entriesToAppend(entries []*pb.Entry, offset, last uint64) ([]*pb.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	first := entries[0].GetIndex()
	for k, e := range entries {
		if e.GetIndex() != first+uint64(k) {
			return nil, fmt.Errorf("raftlog: entries not contiguous: index %d at position %d after %d", e.GetIndex(), k, first)
		}
	}
	end := first + uint64(len(entries)) - 1
	if end < first {
		return nil, fmt.Errorf("raftlog: entry indexes from %d overflow", first)
	}
	if end <= offset {
		return nil, nil // all below the log's start: already covered
	}
	if first <= offset {
		entries = entries[offset+1-first:]
		first = offset + 1
	}
	if first > last+1 {
		return nil, fmt.Errorf("raftlog: append at %d would leave a hole after last index %d", first, last)
	}
	return entries, nil
}

// CreateSnapshot records a snapshot of the application's state at index,
// which must be in [FirstIndex()-1, LastIndex()] and above the stored
// snapshot's index (else raft.ErrSnapOutOfDate), with data as its payload.
// cs is the configuration at index; nil keeps the previous snapshot's.
// Entries are left alone: Compact discards them. It is durable before
// CreateSnapshot returns.
func (s *Storage) CreateSnapshot(index uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	if index <= s.snapMeta.GetIndex() {
		return nil, raft.ErrSnapOutOfDate
	}
	if index > s.last {
		return nil, fmt.Errorf("raftlog: snapshot at %d is beyond last index %d: %w", index, s.last, raft.ErrUnavailable)
	}
	term, err := s.termAt(index)
	if err != nil {
		return nil, fmt.Errorf("raftlog: snapshot at %d is below first index %d: %w", index, s.offset+1, err)
	}
	meta := proto.Clone(s.snapMeta).(*pb.SnapshotMetadata)
	meta.Index, meta.Term = new(index), new(term)
	if cs != nil {
		meta.ConfState = pb.EnsureConfState(proto.Clone(cs).(*pb.ConfState))
	}
	snap := &pb.Snapshot{Metadata: meta, Data: data}

	b := s.db.NewBatch()
	defer b.Close()
	defer s.trimScratch()
	if err := s.setProto(b, snapshotKey, snap); err != nil {
		return nil, err
	}
	if err := s.commit(b, pebble.Sync, "create snapshot"); err != nil {
		return nil, err
	}
	s.snapMeta = meta
	return proto.Clone(snap).(*pb.Snapshot), nil
}

// Compact discards the entries below index, which becomes the dummy entry
// (FirstIndex()-1) whose term is still answered. index must be in
// (FirstIndex()-1, LastIndex()]; at or below the current dummy it returns
// raft.ErrCompacted. The application should compact only up to a
// snapshot's index (see Snapshot). It is durable before Compact returns.
func (s *Storage) Compact(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if index <= s.offset {
		return raft.ErrCompacted
	}
	if index > s.last {
		return fmt.Errorf("raftlog: compact %d is beyond last index %d: %w", index, s.last, raft.ErrUnavailable)
	}
	term, err := s.termAt(index)
	if err != nil {
		return fmt.Errorf("raftlog: compact %d: %w", index, err)
	}

	b := s.db.NewBatch()
	defer b.Close()
	if err := s.deleteEntries(b, s.offset+1, index+1); err != nil {
		return err
	}
	if err := s.setProto(b, offsetKey, &pb.Entry{Index: new(index), Term: new(term)}); err != nil {
		return err
	}
	if err := s.commit(b, pebble.Sync, "compact"); err != nil {
		return err
	}
	s.offset, s.offsetTerm = index, term
	s.dropTermsBefore(index + 1)
	s.cache.dropBefore(index + 1)
	return nil
}

// deleteEntries adds the deletion of entries [lo, hi) to b, if any.
func (s *Storage) deleteEntries(b *pebble.Batch, lo, hi uint64) error {
	if lo >= hi {
		return nil
	}
	lk, hk := makeEntryKey(lo), makeEntryKey(hi)
	if err := b.DeleteRange(lk[:], hk[:], nil); err != nil {
		return fmt.Errorf("raftlog: delete entries [%d, %d): %w", lo, hi, err)
	}
	return nil
}

// setProto adds key → m's encoding to b, marshaling into the scratch buffer
// (the batch copies it).
func (s *Storage) setProto(b *pebble.Batch, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{}.MarshalAppend(s.buf[:0], m)
	if err != nil {
		return fmt.Errorf("raftlog: encode %q: %w", key, err)
	}
	s.buf = v
	if err := b.Set(key, v, nil); err != nil {
		return fmt.Errorf("raftlog: write %q: %w", key, err)
	}
	return nil
}

// trimScratch drops a marshal buffer that a large value grew past the bound.
func (s *Storage) trimScratch() {
	if cap(s.buf) > maxScratch {
		s.buf = nil
	}
}

// commit commits b. A failed commit leaves Pebble's contents unknown (the
// batch may or may not be in the WAL), so the storage refuses all further
// calls: raft stops on a Storage error anyway, and reopening recovers a
// consistent state.
//
// A nil b commits nothing but still syncs when opts says so, which makes
// every earlier unsynced write durable (Pebble's WAL is sequential).
func (s *Storage) commit(b *pebble.Batch, opts *pebble.WriteOptions, what string) error {
	var err error
	if b != nil {
		err = b.Commit(opts)
	} else {
		err = s.db.LogData(nil, opts)
	}
	if err != nil {
		s.failed = fmt.Errorf("raftlog: %s: %w (storage unusable until reopened)", what, err)
		return s.failed
	}
	s.unsynced = !opts.Sync
	return nil
}
