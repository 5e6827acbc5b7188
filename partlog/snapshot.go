package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// maxSnapshotBytes bounds one snapshot, so a corrupt or runaway caller
// cannot bloat the index.
const maxSnapshotBytes = 64 << 20

// SaveSnapshot stores data, an opaque summary of the log's batches below
// end (the partition keeps its idempotent producers' state this way), so
// that start-up replays only the batches from end on instead of the whole
// log. It replaces the previous snapshot and is durable when it returns.
// Owner only.
//
// Invariant: a snapshot LoadSnapshot returns describes batches that are
// still in the log, never ones cut since. Batches below end can go: end
// may be past what was fsynced, so a crash can take some back, and
// Truncate cuts them on purpose. The batches that later take those
// offsets are others, which the opaque data cannot be corrected for, so
// the snapshot is deleted, durably, before anything can be appended
// there: by Truncate when it cuts below end, and by OpenLog when the log
// it recovers ends below end. The user then replays the whole log, which
// is slower but right.
func (l *Log) SaveSnapshot(end int64, data []byte) error {
	if len(data) > maxSnapshotBytes {
		return fmt.Errorf("partlog %s: snapshot of %d bytes exceeds %d", l.id, len(data), maxSnapshotBytes)
	}
	v := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint64(v, uint64(end))
	v = append(v, data...)
	var k keyBuf
	if err := l.db.Set(k.scalar(l.num, kindSnapshot), v, pebble.Sync); err != nil {
		return fmt.Errorf("partlog %s: save snapshot: %w", l.id, err)
	}
	return nil
}

// LoadSnapshot returns the last snapshot saved, if any.
func (l *Log) LoadSnapshot() (end int64, data []byte, ok bool, err error) {
	var k keyBuf
	v, closer, err := l.db.Get(k.scalar(l.num, kindSnapshot))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("partlog %s: load snapshot: %w", l.id, err)
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, nil, false, fmt.Errorf("partlog %s: snapshot value is %d bytes: %w", l.id, len(v), errBadEntry)
	}
	return int64(binary.BigEndian.Uint64(v)), append([]byte(nil), v[8:]...), true, nil
}

// dropSnapshotPast adds to b the deletion of the snapshot if it covers
// offsets at or past end, which are about to be cut or were lost in a
// crash (see SaveSnapshot's invariant). The caller commits b with a sync
// before anything is appended at end.
func (l *Log) dropSnapshotPast(b *pebble.Batch, end int64) (dropped bool, err error) {
	var k keyBuf
	v, closer, err := l.db.Get(k.scalar(l.num, kindSnapshot))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read snapshot: %w", err)
	}
	// A value too short to hold an end (LoadSnapshot fails on it) cannot
	// be shown to stop below end; it goes too.
	stale := len(v) < 8 || int64(binary.BigEndian.Uint64(v)) > end
	if err := closer.Close(); err != nil {
		return false, fmt.Errorf("read snapshot: %w", err)
	}
	if !stale {
		return false, nil
	}
	if err := b.Delete(k.scalar(l.num, kindSnapshot), nil); err != nil {
		return false, fmt.Errorf("delete snapshot: %w", err)
	}
	return true, nil
}
