// Package raftlog is the durable raft.Storage of an etcd raft RawNode
// (go.etcd.io/raft/v3): the log entries, hard state and snapshot of one
// member of Troupe's KRaft-style metadata quorum, persisted in a Pebble
// database of its own.
//
// The raft.Storage methods answer exactly as raft.MemoryStorage does over
// the same sequence of writes (tests hold them to it), with two
// differences: calls on which MemoryStorage panics (out-of-range indexes)
// return an error, and Snapshot returns ErrSnapshotTemporarilyUnavailable
// while Compact has gone past the stored snapshot (see Storage.Snapshot).
// Writes come in three kinds: SaveReady (what a raft.Ready says to store),
// CreateSnapshot and Compact.
//
// # Key layout
//
// Every key starts with a one-byte kind; entry keys add the index as 8
// big-endian bytes, so the log is one contiguous, index-ordered key range.
// Values are the raftpb protobuf encodings.
//
//	'e' index(8)  → raftpb.Entry         the entries (offset, last]
//	'h'           → raftpb.HardState     absent until one is saved
//	'o'           → raftpb.Entry{Index, Term}
//	                                     the dummy entry at offset: the log
//	                                     starts after it and its term is
//	                                     kept for raft's matching; absent
//	                                     means index 0, term 0
//	's'           → raftpb.Snapshot      the latest snapshot, payload
//	                                     included; absent means none
//
// Applying a snapshot makes its index the dummy; Compact(i) makes i the
// dummy. Open checks that entry keys are exactly (offset, last] and that
// each entry holds its own index, and loads the hard state, snapshot
// metadata, offsets and the terms of the log (as runs, one per term) into
// memory, so Term, FirstIndex, LastIndex and InitialState never read
// Pebble. Entries reads Pebble with one bounded iterator, unless the range
// is in a small cache of the most recent entries (1024 entries, 4 MiB).
//
// # Durability and recovery
//
// Every write is one Pebble batch, so every state on disk is one a write
// left behind: a crash never tears a write or leaves a hole in the log.
//
// Invariant: whatever raft requires durable before a message is sent is
// synced before SaveReady returns. SaveReady commits with pebble.Sync when
// the caller passes Ready.MustSync (entries, term or vote changed) and
// whenever it stores a snapshot; CreateSnapshot and Compact always sync.
// A SaveReady with sync false (only the commit index moved) is written
// unsynced and becomes durable with the next synced write, a SaveReady
// with sync true (even one with nothing to store) or Close. Because Pebble
// recovers a prefix of its write-ahead log, Open after a crash at any
// instant finds the state of the last synced write or of a later one.
//
// A commit that fails leaves Pebble's contents unknown; the Storage then
// refuses every call until it is reopened, and raft stops on the error.
package raftlog
