package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Key layout (see doc.go). Every key starts with a one-byte kind; entry
// keys add the index big-endian, so byte order is index order and the
// whole log is one contiguous key range.
const (
	kindEntry     = 'e' // 'e' index(8) → raftpb.Entry
	kindHardState = 'h' // 'h'          → raftpb.HardState
	kindOffset    = 'o' // 'o'          → raftpb.Entry{Index, Term}: the dummy entry
	kindSnapshot  = 's' // 's'          → raftpb.Snapshot

	entryKeyLen = 1 + 8
)

var (
	hardStateKey = []byte{kindHardState}
	offsetKey    = []byte{kindOffset}
	snapshotKey  = []byte{kindSnapshot}
	// entryKeysEnd is above every entry key: the upper bound of a scan of
	// the whole log.
	entryKeysEnd = []byte{kindEntry + 1}
)

// entryKey is the key of one log entry; it is a value type so that building
// a key in a caller's frame does not allocate.
type entryKey [entryKeyLen]byte

func makeEntryKey(index uint64) entryKey {
	var k entryKey
	k[0] = kindEntry
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// parseEntryKey returns the index of an entry key, or false if k is not
// one.
func parseEntryKey(k []byte) (uint64, bool) {
	if len(k) != entryKeyLen || k[0] != kindEntry {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// Field numbers of raftpb.Entry (raft.proto), read by entryIndexTerm.
const (
	entryFieldTerm  = 2
	entryFieldIndex = 3
)

var errBadEntry = errors.New("malformed entry encoding")

// entryIndexTerm reads only the index and term of an encoded raftpb.Entry.
// Open uses it to check and index the whole log without decoding (and
// copying) every payload.
func entryIndexTerm(b []byte) (index, term uint64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: tag: %w", errBadEntry, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType && (num == entryFieldTerm || num == entryFieldIndex) {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, fmt.Errorf("%w: field %d: %w", errBadEntry, num, protowire.ParseError(m))
			}
			if num == entryFieldTerm {
				term = v
			} else {
				index = v
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, 0, fmt.Errorf("%w: field %d: %w", errBadEntry, num, protowire.ParseError(m))
		}
		b = b[m:]
	}
	return index, term, nil
}
