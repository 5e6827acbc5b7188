package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the header fields; doc.go draws the layout.
const (
	offBaseOffset    = 0
	offBatchLength   = 8
	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offFirstTS       = 27
	offMaxTS         = 35
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
	offNumRecords    = 57

	// logOverhead is the part of a batch that batchLength does not count:
	// baseOffset and batchLength themselves.
	logOverhead = 12
	// minBatchLength is the batchLength of a batch with no records.
	minBatchLength = HeaderLen - logOverhead
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 1 << 3
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

// Timestamp types as reported by Header.TimestampType.
const (
	TimestampCreateTime    int8 = 0
	TimestampLogAppendTime int8 = 1
)

// castagnoli is built once: MakeTable hands back the shared table that
// crc32.Checksum recognises and routes to the SSE4.2/ARMv8 instruction.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseHeader decodes the v2 header at the start of b. It needs only the
// first HeaderLen bytes; it does not check that the rest of the batch is
// present (compare Size with len(b)) or that its CRC matches (VerifyCRC).
//
// Old message formats (magic 0 and 1) fail with ErrInvalidRecord, which is
// what Kafka answers for them on produce v3+; they are recognised even when
// shorter than a v2 header because their magic byte sits at the same offset.
// Anything else that is not a plausible v2 header fails with ErrCorrupt.
func ParseHeader(b []byte) (Header, error) {
	if len(b) > offMagic {
		if m := int8(b[offMagic]); m == 0 || m == 1 {
			return Header{}, fmt.Errorf("message format v%d (magic %d); only v2 record batches are accepted: %w", m, m, ErrInvalidRecord)
		}
	}
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%d bytes, need %d for a batch header: %w", len(b), HeaderLen, ErrCorrupt)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(binary.BigEndian.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offFirstTS:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTS:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Magic != 2 {
		return Header{}, fmt.Errorf("magic %d, want 2: %w", h.Magic, ErrCorrupt)
	}
	// A negative length also lands here, so Size never goes below HeaderLen.
	if h.BatchLength < minBatchLength {
		return Header{}, fmt.Errorf("batch length %d below the minimum %d: %w", h.BatchLength, minBatchLength, ErrCorrupt)
	}
	return h, nil
}

// Size is the number of bytes the whole batch occupies, header included.
func (h Header) Size() int { return logOverhead + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record (as numbered by the
// header; after compaction that record may be gone).
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec of the batch's records section. Values
// above CodecZstd are not valid codecs; Validate rejects them.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// TimestampType is TimestampCreateTime or TimestampLogAppendTime.
func (h Header) TimestampType() int8 {
	if h.Attributes&attrLogAppendTime != 0 {
		return TimestampLogAppendTime
	}
	return TimestampCreateTime
}

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// markers) rather than data.
func (h Header) IsControl() bool { return h.Attributes&attrControl != 0 }

// hasProducerID mirrors Kafka: any negative producer id means "none".
func (h Header) hasProducerID() bool { return h.ProducerID >= 0 }

// VerifyCRC reports whether the batch at the start of b is complete and its
// CRC-32C matches. It returns false rather than failing on a short or
// malformed b.
func VerifyCRC(b []byte) bool {
	if len(b) < HeaderLen {
		return false
	}
	length := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if length < minBatchLength {
		return false
	}
	size := logOverhead + int(length)
	if size > len(b) {
		return false
	}
	return crc32.Checksum(b[offAttributes:size], castagnoli) == binary.BigEndian.Uint32(b[offCRC:])
}

// String is for logs and test failures.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}
