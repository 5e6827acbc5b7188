package batch

import "encoding/binary"

// The rewrites below touch only baseOffset and partitionLeaderEpoch, which
// lie before the CRC'd range, so the checksum stays valid. They expect
// input that passed Validate; on anything else they stop at the first
// batch that is not complete instead of writing outside it.

// nextFramed returns the size of the complete batch at b[off:], or false
// if there is none.
func nextFramed(b []byte, off int) (int, bool) {
	if len(b)-off < HeaderLen {
		return 0, false
	}
	length := int32(binary.BigEndian.Uint32(b[off+offBatchLength:]))
	if length < minBatchLength || int(length) > len(b)-off-logOverhead {
		return 0, false
	}
	return logOverhead + int(length), true
}

// AssignOffsets numbers the batches in records consecutively from base: each
// batch's baseOffset becomes the running offset, which then advances by the
// batch's lastOffsetDelta+1. It returns the last offset assigned (base-1 if
// there was no batch).
func AssignOffsets(records []byte, base int64) (lastOffset int64) {
	next := base
	for off := 0; ; {
		size, ok := nextFramed(records, off)
		if !ok {
			break
		}
		b := records[off:]
		delta := int32(binary.BigEndian.Uint32(b[offLastDelta:]))
		if delta < 0 {
			break
		}
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(next))
		next += int64(delta) + 1
		off += size
	}
	return next - 1
}

// SetPartitionLeaderEpoch stamps every batch in records with the leader
// epoch under which it is appended.
func SetPartitionLeaderEpoch(records []byte, epoch int32) {
	for off := 0; ; {
		size, ok := nextFramed(records, off)
		if !ok {
			return
		}
		binary.BigEndian.PutUint32(records[off+offLeaderEpoch:], uint32(epoch))
		off += size
	}
}

// SetLogAppendTime marks every batch in records as timestamped by the
// broker at ts, as Kafka does for topics with
// message.timestamp.type=LogAppendTime: consumers then read ts as the
// timestamp of every record. Attributes and maxTimestamp are inside the
// CRC, so unlike the other rewrites this recomputes each batch's CRC.
func SetLogAppendTime(records []byte, ts int64) {
	for off := 0; ; {
		size, ok := nextFramed(records, off)
		if !ok {
			return
		}
		b := records[off : off+size]
		attrs := binary.BigEndian.Uint16(b[offAttributes:])
		binary.BigEndian.PutUint16(b[offAttributes:], attrs|attrLogAppendTime)
		binary.BigEndian.PutUint64(b[offMaxTS:], uint64(ts))
		putCRC(b)
		off += size
	}
}
