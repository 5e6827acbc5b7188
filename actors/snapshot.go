package actors

import (
	"encoding/binary"
	"errors"

	"github.com/troupe-io/troupe/actors/partition"
)

// Producer snapshots are stored through partlog as a version byte and
// fixed-size entries, big-endian:
//
//	producerID(8) baseOffset(8) lastOffset(8) timestampMs(8) epoch(2) baseSequence(4)
const (
	snapshotVersion   = 1
	snapshotEntrySize = 8 + 8 + 8 + 8 + 2 + 4
)

var errBadSnapshot = errors.New("malformed producer snapshot")

func encodeProducerSnapshot(batches []partition.ProducerBatch) []byte {
	b := make([]byte, 1, 1+len(batches)*snapshotEntrySize)
	b[0] = snapshotVersion
	for _, p := range batches {
		b = binary.BigEndian.AppendUint64(b, uint64(p.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(p.BaseOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(p.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(p.TimestampMs))
		b = binary.BigEndian.AppendUint16(b, uint16(p.ProducerEpoch))
		b = binary.BigEndian.AppendUint32(b, uint32(p.BaseSequence))
	}
	return b
}

func decodeProducerSnapshot(b []byte) ([]partition.ProducerBatch, error) {
	if len(b) < 1 || b[0] != snapshotVersion || (len(b)-1)%snapshotEntrySize != 0 {
		return nil, errBadSnapshot
	}
	b = b[1:]
	out := make([]partition.ProducerBatch, 0, len(b)/snapshotEntrySize)
	for ; len(b) > 0; b = b[snapshotEntrySize:] {
		out = append(out, partition.ProducerBatch{
			ProducerID:    int64(binary.BigEndian.Uint64(b)),
			BaseOffset:    int64(binary.BigEndian.Uint64(b[8:])),
			LastOffset:    int64(binary.BigEndian.Uint64(b[16:])),
			TimestampMs:   int64(binary.BigEndian.Uint64(b[24:])),
			ProducerEpoch: int16(binary.BigEndian.Uint16(b[32:])),
			BaseSequence:  int32(binary.BigEndian.Uint32(b[34:])),
		})
	}
	return out, nil
}
