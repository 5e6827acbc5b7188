package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Record is one record to build into a batch. A nil Key or Value is null.
type Record struct {
	Key, Value     []byte
	Headers        []RecordHeader
	TimestampDelta int64 // from BuildOptions.FirstTimestamp
}

// RecordHeader is one record header; a nil Value is null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// BuildOptions describe the batch BuildBatch writes. The zero value is not
// a plain producer's batch: set ProducerID to -1 (and ProducerEpoch and
// BaseSequence to -1) for one without idempotence.
type BuildOptions struct {
	Codec                Codec
	FirstTimestamp       int64
	ProducerID           int64 // -1 for none
	ProducerEpoch        int16
	BaseSequence         int32
	Transactional        bool
	Control              bool // records are control records (transaction markers)
	LogAppendTime        bool // timestamp type LogAppendTime
	BaseOffset           int64
	PartitionLeaderEpoch int32
}

// Builder writes v2 batches, reusing its buffers from one Build to the
// next. The zero value is ready to use.
type Builder struct {
	records []byte // uncompressed records section
	out     []byte
}

// BuildBatch returns a new batch holding records, as a Kafka producer would
// write it: offset deltas 0..n-1, maxTimestamp the largest record
// timestamp, CRC computed.
func BuildBatch(opts BuildOptions, records []Record) ([]byte, error) {
	var b Builder
	return b.Build(opts, records)
}

// Build is BuildBatch, except the result is only valid until the next call.
func (bl *Builder) Build(opts BuildOptions, records []Record) ([]byte, error) {
	if len(records) == 0 {
		return nil, errors.New("batch: build: a batch needs at least one record")
	}
	if int64(len(records)) > math.MaxInt32 {
		return nil, fmt.Errorf("batch: build: %d records do not fit one batch", len(records))
	}
	if opts.Codec < CodecNone || opts.Codec > CodecZstd {
		return nil, fmt.Errorf("batch: build: unknown codec %d", int8(opts.Codec))
	}

	section := bl.records[:0]
	maxDelta := records[0].TimestampDelta
	for i := range records {
		section = appendRecord(section, int32(i), &records[i])
		maxDelta = max(maxDelta, records[i].TimestampDelta)
	}
	bl.records = section

	out := reserve(bl.out[:0], HeaderLen+len(section))[:HeaderLen]
	clear(out)
	var err error
	if out, err = appendCompressed(opts.Codec, out, section); err != nil {
		return nil, fmt.Errorf("batch: build: compress %s: %w", opts.Codec, err)
	}
	if len(out)-logOverhead > math.MaxInt32 {
		return nil, fmt.Errorf("batch: build: %d bytes do not fit one batch", len(out))
	}
	bl.out = out

	attrs := uint16(opts.Codec)
	if opts.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	be := binary.BigEndian
	be.PutUint64(out[offBaseOffset:], uint64(opts.BaseOffset))
	be.PutUint32(out[offBatchLength:], uint32(len(out)-logOverhead))
	be.PutUint32(out[offLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	out[offMagic] = 2
	be.PutUint16(out[offAttributes:], attrs)
	be.PutUint32(out[offLastDelta:], uint32(len(records)-1))
	be.PutUint64(out[offFirstTS:], uint64(opts.FirstTimestamp))
	be.PutUint64(out[offMaxTS:], uint64(opts.FirstTimestamp+maxDelta))
	be.PutUint64(out[offProducerID:], uint64(opts.ProducerID))
	be.PutUint16(out[offProducerEpoch:], uint16(opts.ProducerEpoch))
	be.PutUint32(out[offBaseSequence:], uint32(opts.BaseSequence))
	be.PutUint32(out[offNumRecords:], uint32(len(records)))
	putCRC(out)
	return out, nil
}

// appendRecord encodes r as the record at offsetDelta. The length prefix
// comes first, so the body's size is worked out before writing it.
func appendRecord(dst []byte, offsetDelta int32, r *Record) []byte {
	body := 1 + varintLen(r.TimestampDelta) + varintLen(int64(offsetDelta)) +
		nullableLen(r.Key) + nullableLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		body += varintLen(int64(len(h.Key))) + len(h.Key) + nullableLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(body))
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

func nullableLen(b []byte) int {
	if b == nil {
		return 1 // varint -1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
