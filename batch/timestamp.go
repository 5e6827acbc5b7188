package batch

import "fmt"

// Payload returns the records section of the whole batch b: the bytes after
// the header, or for a compressed batch those bytes decompressed into
// scratch[:0] (at most MaxDecompressed of them). Walk it with
// NewRecordIter(payload, h.NumRecords).
func Payload(b, scratch []byte) ([]byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Size() > len(b) {
		return nil, fmt.Errorf("%d bytes long but only %d present: %w", h.Size(), len(b), ErrCorrupt)
	}
	section := b[HeaderLen:h.Size()]
	if h.Codec() == CodecNone {
		return section, nil
	}
	return Decompress(h.Codec(), section, scratch)
}

// FirstOffsetAtOrAfter finds, in the whole batch b, the first record whose
// timestamp is at least ts: what ListOffsets answers for a timestamp query.
// A record's timestamp is firstTimestamp+timestampDelta, except in a
// LogAppendTime batch, where every record carries the batch's maxTimestamp.
// As in Kafka, a batch whose maxTimestamp is below ts is skipped without
// reading its records. Compressed batches are decompressed into scratch.
func FirstOffsetAtOrAfter(b []byte, ts int64, scratch []byte) (offset int64, timestamp int64, found bool, err error) {
	h, err := ParseHeader(b)
	if err != nil {
		return 0, 0, false, err
	}
	if h.MaxTimestamp < ts {
		return 0, 0, false, nil
	}
	section, err := Payload(b, scratch)
	if err != nil {
		return 0, 0, false, err
	}
	logAppend := h.TimestampType() == TimestampLogAppendTime
	it := NewRecordIter(section, h.NumRecords)
	for {
		r, ok := it.Next()
		if !ok {
			return 0, 0, false, it.Err()
		}
		t := h.MaxTimestamp
		if !logAppend {
			t = h.FirstTimestamp + r.TimestampDelta
		}
		if t >= ts {
			return h.BaseOffset + int64(r.OffsetDelta), t, true, nil
		}
	}
}
