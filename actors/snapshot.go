package actors

import (
	"encoding/binary"
	"errors"

	"github.com/troupe-io/troupe/actors/partition"
)

// Producer snapshots are stored through partlog as a version byte, then
// (version 2) the high watermark as of the snapshot, then fixed-size
// entries, all big-endian:
//
//	v1: 1 entry*
//	v2: 2 highWatermark(8) entry*
//	entry: producerID(8) baseOffset(8) lastOffset(8) timestampMs(8) epoch(2) baseSequence(4)
//
// The high watermark rides along as the replicated partition's checkpoint
// (Kafka's replication-offset-checkpoint): without one, a restarted
// replica's high watermark starts at its log start until the ISR reports
// again. It is a lower bound of what is committed, which is all a
// restart needs: the high watermark never moves back.
const (
	snapshotV1        = 1
	snapshotV2        = 2
	snapshotEntrySize = 8 + 8 + 8 + 8 + 2 + 4
)

var errBadSnapshot = errors.New("malformed producer snapshot")

func encodeProducerSnapshot(batches []partition.ProducerBatch, highWatermark int64) []byte {
	b := make([]byte, 0, 1+8+len(batches)*snapshotEntrySize)
	b = append(b, snapshotV2)
	b = binary.BigEndian.AppendUint64(b, uint64(highWatermark))
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

// decodeProducerSnapshot reads either version; a v1 snapshot has no high
// watermark (0).
func decodeProducerSnapshot(b []byte) ([]partition.ProducerBatch, int64, error) {
	if len(b) < 1 {
		return nil, 0, errBadSnapshot
	}
	var hw int64
	switch b[0] {
	case snapshotV1:
		b = b[1:]
	case snapshotV2:
		if len(b) < 9 {
			return nil, 0, errBadSnapshot
		}
		hw = int64(binary.BigEndian.Uint64(b[1:]))
		b = b[9:]
	default:
		return nil, 0, errBadSnapshot
	}
	if len(b)%snapshotEntrySize != 0 || hw < 0 {
		return nil, 0, errBadSnapshot
	}
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
	return out, hw, nil
}
