package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/troupe-io/troupe/internal/pebblelog"
)

// Options configures Open.
type Options struct {
	// Dir holds the Pebble database; it is created if missing.
	Dir string
	// FS is the file system; nil means vfs.Default. Tests and the
	// simulator pass a crashable in-memory one.
	FS vfs.FS
	// Logger receives Pebble's messages and an open summary; nil means
	// slog.Default().
	Logger *slog.Logger
}

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("raftlog: storage closed")
	// ErrCorrupt is wrapped by Open (and Entries) when the stored log
	// breaks an invariant that every committed batch keeps (a hole, a
	// misplaced entry, an undecodable value): the data was damaged outside
	// this package.
	ErrCorrupt = errors.New("raftlog: corrupt storage")
)

// Storage is the durable raft.Storage of one raft node. Methods are safe for
// concurrent use; writes hold the lock through their fsync, which is
// harmless because raft calls Storage from the goroutine that calls
// SaveReady.
//
// The raft.Storage methods return raft's sentinel errors (ErrCompacted,
// ErrUnavailable, ErrSnapshotTemporarilyUnavailable) unwrapped, because
// raft compares them with ==. Calls MemoryStorage answers with a panic
// (out-of-range arguments) return a wrapped error instead.
type Storage struct {
	db     *pebble.DB
	logger *slog.Logger

	mu sync.Mutex
	// The mirror of what is committed to Pebble. It changes only after a
	// commit succeeded, and answers the raft.Storage reads from memory
	// (except Entries outside the cache, and Snapshot's data).
	//
	// Invariant: the log is entries (offset, last], stored contiguously
	// under entry keys; the dummy entry at offset has term offsetTerm.
	hardState  []byte // encoded HardState; nil until a non-empty one is saved
	snapMeta   *pb.SnapshotMetadata
	offset     uint64
	offsetTerm uint64
	last       uint64
	terms      []termRun // terms of (offset, last]; see termAt
	cache      entryCache

	// unsynced is set while a committed write may not be durable yet.
	unsynced bool
	// failed is set when a commit failed: what Pebble holds is then
	// unknown, so the mirror can no longer be trusted.
	failed error

	// Scratch space for writes, so that a SaveReady does not allocate.
	buf []byte // marshal buffer, bounded by maxScratch
	key entryKey
	// nextHardState is the buffer the next hard state is encoded into; it
	// trades places with hardState on commit.
	nextHardState []byte

	closed bool
}

// termRun says that entries from index first up to the next run's first
// have term term. Terms change only at elections, so a handful of runs
// covers a long log and Term never reads Pebble.
type termRun struct {
	first, term uint64
}

// maxScratch bounds the marshal buffer kept between writes; a larger one
// (a big snapshot) is dropped after use.
const maxScratch = 1 << 20

// Open opens (or creates) the storage in opts.Dir and loads its hot state.
func Open(opts Options) (*Storage, error) {
	if opts.Dir == "" {
		return nil, errors.New("raftlog: Options.Dir is empty")
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := createDirDurably(fs, opts.Dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(opts.Dir, &pebble.Options{FS: fs, Logger: pebblelog.Logger{L: logger, Owner: "raftlog"}})
	if err != nil {
		return nil, fmt.Errorf("raftlog: open pebble in %s: %w", opts.Dir, err)
	}
	s := &Storage{
		db:     db,
		logger: logger,
		cache:  newEntryCache(defaultCacheEntries, defaultCacheBytes),
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftlog: open %s: %w", opts.Dir, err)
	}
	logger.Debug("raftlog: opened", "dir", opts.Dir, "first", s.offset+1, "last", s.last,
		"snapshot", s.snapMeta.GetIndex())
	return s, nil
}

// createDirDurably creates dir and any missing parents, syncing each new
// directory's parent: Pebble syncs inside dir, but a crash could otherwise
// lose dir's own name and with it every synced write.
func createDirDurably(fs vfs.FS, dir string) error {
	var missing []string
	for d := dir; ; {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		parent := fs.PathDir(d)
		if parent == d || len(missing) > 64 {
			break
		}
		d = parent
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("raftlog: create %s: %w", dir, err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		parent := fs.PathDir(missing[i])
		f, err := fs.OpenDir(parent)
		if err != nil {
			return fmt.Errorf("raftlog: open %s to sync: %w", parent, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("raftlog: sync %s: %w", parent, err)
		}
	}
	return nil
}

// load reads the hot state and checks the log: entry keys must be exactly
// (offset, last] with no hole, each holding the entry of its own index.
// Every write is one atomic batch that keeps this true, so a violation is
// damage, reported as ErrCorrupt rather than silently repaired.
func (s *Storage) load() error {
	s.snapMeta = pb.EnsureSnapshotMetadata(nil)
	var snap pb.Snapshot
	found, err := s.getProto(snapshotKey, &snap)
	if err != nil {
		return err
	}
	if found {
		s.snapMeta = pb.EnsureSnapshotMetadata(snap.GetMetadata())
	}
	var hs pb.HardState
	if found, err = s.getProto(hardStateKey, &hs); err != nil {
		return err
	} else if found {
		if s.hardState, err = proto.Marshal(&hs); err != nil {
			return fmt.Errorf("encode hard state: %w", err)
		}
	}
	var dummy pb.Entry
	if _, err = s.getProto(offsetKey, &dummy); err != nil {
		return err
	}
	s.offset, s.offsetTerm = dummy.GetIndex(), dummy.GetTerm()
	s.last = s.offset

	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindEntry}, UpperBound: entryKeysEnd})
	if err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		key, ok := parseEntryKey(it.Key())
		if !ok {
			_ = it.Close()
			return fmt.Errorf("%w: unexpected key %x in the entry range", ErrCorrupt, it.Key())
		}
		if key != s.last+1 {
			_ = it.Close()
			return fmt.Errorf("%w: entry %d follows %d (log starts after %d)", ErrCorrupt, key, s.last, s.offset)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("read entry %d: %w", key, err)
		}
		index, term, err := entryIndexTerm(v)
		if err != nil || index != key {
			_ = it.Close()
			return fmt.Errorf("%w: entry key %d holds index %d (%v)", ErrCorrupt, key, index, err)
		}
		s.appendTerm(index, term)
		s.last = index
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	return nil
}

// getProto reads key into m, reporting whether it exists.
func (s *Storage) getProto(key []byte, m proto.Message) (bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %q: %w", key, err)
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("%w: decode %q: %w", ErrCorrupt, key, err)
	}
	return true, nil
}

// Close closes the Pebble database. Pebble syncs its WAL on close, so
// after a clean Close even the unsynced SaveReady writes survive (the
// crash test checks it). Closing twice is a no-op.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cache.reset()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftlog: close: %w", err)
	}
	return nil
}

// usable returns why the storage cannot be used, if it cannot. Called with
// mu held.
func (s *Storage) usable() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// InitialState implements raft.Storage: the saved HardState (nil if none
// was saved yet) and the ConfState of the latest snapshot.
func (s *Storage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	var hs *pb.HardState
	if s.hardState != nil {
		hs = new(pb.HardState)
		if err := proto.Unmarshal(s.hardState, hs); err != nil {
			return nil, nil, fmt.Errorf("raftlog: decode hard state: %w", err)
		}
	}
	cs := proto.Clone(s.snapMeta.GetConfState()).(*pb.ConfState)
	return hs, pb.EnsureConfState(cs), nil
}

// Entries implements raft.Storage: entries [lo, hi), at least one if the
// range is not empty, and no more than maxSize encoded bytes beyond the
// first. The returned slice is freshly allocated; the entries in it must
// not be mutated.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	if lo <= s.offset {
		return nil, raft.ErrCompacted
	}
	if hi > s.last+1 || lo > hi {
		return nil, fmt.Errorf("raftlog: entries [%d, %d) out of bounds (first %d, last %d): %w",
			lo, hi, s.offset+1, s.last, raft.ErrUnavailable)
	}
	if s.last == s.offset {
		return nil, raft.ErrUnavailable
	}
	if lo == hi {
		return []*pb.Entry{}, nil
	}
	if s.cache.covers(lo) {
		return s.cachedEntries(lo, hi, maxSize), nil
	}
	ents, err := s.readEntries(lo, hi, maxSize)
	if err != nil {
		return nil, fmt.Errorf("raftlog: entries [%d, %d): %w", lo, hi, err)
	}
	return ents, nil
}

func (s *Storage) cachedEntries(lo, hi, maxSize uint64) []*pb.Entry {
	n := 0
	var size uint64
	for i := lo; i < hi; i++ {
		_, sz := s.cache.get(i)
		size += uint64(sz)
		if n > 0 && size > maxSize {
			break
		}
		n++
	}
	ents := make([]*pb.Entry, n)
	for k := range ents {
		ents[k], _ = s.cache.get(lo + uint64(k))
	}
	return ents
}

// readEntries reads [lo, hi) from Pebble, stopping once the encoded size
// exceeds maxSize (after the first entry).
func (s *Storage) readEntries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	lk, hk := makeEntryKey(lo), makeEntryKey(hi)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lk[:], UpperBound: hk[:]})
	if err != nil {
		return nil, err
	}
	ents := make([]*pb.Entry, 0, min(hi-lo, 256))
	var size uint64
	want := lo
	full := false
	for ok := it.First(); ok; ok = it.Next() {
		if key, _ := parseEntryKey(it.Key()); key != want {
			_ = it.Close()
			return nil, fmt.Errorf("%w: found entry %d where %d belongs", ErrCorrupt, key, want)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		size += uint64(len(v))
		if len(ents) > 0 && size > maxSize {
			full = true
			break
		}
		e := new(pb.Entry)
		if err := proto.Unmarshal(v, e); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("%w: decode entry %d: %w", ErrCorrupt, want, err)
		}
		ents = append(ents, e)
		want++
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	if !full && want < hi {
		return nil, fmt.Errorf("%w: entry %d is missing", ErrCorrupt, want)
	}
	return ents, nil
}

// Term implements raft.Storage: the term of entry i, for i in
// [FirstIndex()-1, LastIndex()].
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.termAt(i)
}

// termAt answers Term with mu held.
func (s *Storage) termAt(i uint64) (uint64, error) {
	switch {
	case i < s.offset:
		return 0, raft.ErrCompacted
	case i > s.last:
		return 0, raft.ErrUnavailable
	case i == s.offset:
		return s.offsetTerm, nil
	}
	// The last run starting at or before i; there is one because runs cover
	// (offset, last] and the first starts at offset+1.
	k := sort.Search(len(s.terms), func(k int) bool { return s.terms[k].first > i })
	return s.terms[k-1].term, nil
}

// appendTerm records that entry index (the new last) has term term.
func (s *Storage) appendTerm(index, term uint64) {
	if n := len(s.terms); n > 0 && s.terms[n-1].term == term {
		return
	}
	s.terms = append(s.terms, termRun{first: index, term: term})
}

// truncateTerms forgets the terms of entries >= i.
func (s *Storage) truncateTerms(i uint64) {
	k := sort.Search(len(s.terms), func(k int) bool { return s.terms[k].first >= i })
	s.terms = s.terms[:k]
}

// dropTermsBefore forgets the terms of entries < i.
func (s *Storage) dropTermsBefore(i uint64) {
	// Runs wholly below i go; the run containing i now starts at i.
	k := sort.Search(len(s.terms), func(k int) bool { return s.terms[k].first > i })
	if k == 0 {
		return
	}
	n := copy(s.terms, s.terms[k-1:])
	s.terms = s.terms[:n]
	s.terms[0].first = max(s.terms[0].first, i)
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.last, nil
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	return s.offset + 1, nil
}

// Snapshot implements raft.Storage: the latest snapshot, read from Pebble.
//
// It returns raft.ErrSnapshotTemporarilyUnavailable when Compact has
// removed entries the snapshot does not cover (its index is below
// FirstIndex()-1). Raft asks for a snapshot exactly when a follower needs
// entries below FirstIndex, and such a snapshot could not bring it up to
// them (MemoryStorage would hand raft the empty snapshot, on which it
// panics, or a stale one, which it would resend forever). The application
// fixes it with CreateSnapshot at or above the compaction point.
func (s *Storage) Snapshot() (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	if s.snapMeta.GetIndex() < s.offset {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s.readSnapshot()
}

// readSnapshot reads the stored snapshot with mu held.
func (s *Storage) readSnapshot() (*pb.Snapshot, error) {
	snap := new(pb.Snapshot)
	if _, err := s.getProto(snapshotKey, snap); err != nil {
		return nil, fmt.Errorf("raftlog: snapshot: %w", err)
	}
	return pb.EnsureSnapshot(snap), nil
}
