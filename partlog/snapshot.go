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
// A snapshot may describe batches that a crash later takes back (end can
// be past what was fsynced); its user must ignore whatever lies at or past
// the recovered EndOffset.
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
