package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
)

// Validate checks the records of one partition in a Produce request (one or
// more concatenated v2 batches) before the leader appends them, and
// summarises them. It reads the bytes in place and, for uncompressed
// batches, never allocates unless it fails. Safe for concurrent use.
//
// Kafka itself accepts exactly one batch per partition from produce v3 on;
// callers wanting that strictness check Summary.NumBatches.
//
// Per batch it checks, in order: the batch is complete, magic is 2, its
// size is within opts.MaxBatchBytes, the CRC-32C matches, the codec is
// known, it is not a control batch (unless opts.AllowControl), the record
// count is positive and equals lastOffsetDelta+1, an idempotent batch has a
// sequence, a transactional one has a producer id. It then walks the
// records of uncompressed batches, and of compressed ones when opts.Deep or
// opts.RequireKeys: each record's framing, offsetDelta equal to its index,
// a key when opts.RequireKeys, and exactly the declared number of records.
// Across batches: one producer id and epoch, one transactional and control
// flag, and consecutive sequences.
//
// Failures wrap, with the batch index and byte offset:
//   - ErrCorrupt: bytes that cannot be a batch (truncated, trailing
//     garbage, bad length or magic, CRC mismatch, unknown codec, payload
//     that does not decompress or decompresses beyond the limit).
//   - ErrTooLarge: a batch bigger than opts.MaxBatchBytes.
//   - ErrInvalidRecord: an intact batch the producer should not have sent
//     (old magic, malformed records, wrong counts or offset deltas, null
//     keys on a compacted topic, control batches, producer mismatches, no
//     batches at all). Kafka answers INVALID_RECORD for all of these.
func Validate(records []byte, opts Options) (Summary, error) {
	var s Summary
	if len(records) == 0 {
		return s, fmt.Errorf("no record batches: %w", ErrInvalidRecord)
	}
	var scratch decompressScratch
	defer scratch.release()

	for off := 0; off < len(records); {
		h, err := ParseHeader(records[off:])
		if err != nil {
			return s, fmt.Errorf("batch %d at byte %d: %w", s.NumBatches, off, err)
		}
		if h.Size() > len(records)-off {
			return s, fmt.Errorf("batch %d at byte %d: %d bytes long but only %d present: %w",
				s.NumBatches, off, h.Size(), len(records)-off, ErrCorrupt)
		}
		b := records[off : off+h.Size()]
		if err := validateBatch(b, h, &opts, &scratch); err != nil {
			return s, fmt.Errorf("batch %d at byte %d: %w", s.NumBatches, off, err)
		}
		if err := s.add(h); err != nil {
			return s, fmt.Errorf("batch %d at byte %d: %w", s.NumBatches, off, err)
		}
		off += len(b)
	}
	return s, nil
}

// validateBatch checks one complete batch on its own.
func validateBatch(b []byte, h Header, opts *Options, scratch *decompressScratch) error {
	if opts.MaxBatchBytes > 0 && len(b) > int(opts.MaxBatchBytes) {
		return fmt.Errorf("%d bytes, max.message.bytes is %d: %w", len(b), opts.MaxBatchBytes, ErrTooLarge)
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return fmt.Errorf("crc %08x, computed %08x: %w", h.CRC, got, ErrCorrupt)
	}
	codec := h.Codec()
	if codec > CodecZstd {
		return fmt.Errorf("unknown compression codec %d: %w", codec, ErrCorrupt)
	}
	if h.IsControl() && !opts.AllowControl {
		return fmt.Errorf("control batch from a client: %w", ErrInvalidRecord)
	}
	if h.LastOffsetDelta < 0 {
		return fmt.Errorf("last offset delta %d: %w", h.LastOffsetDelta, ErrInvalidRecord)
	}
	// Producers always number records densely; only compaction leaves
	// gaps, and compacted batches never come from a producer.
	if h.NumRecords <= 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return fmt.Errorf("record count %d with last offset delta %d: %w", h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	}
	if h.hasProducerID() && h.BaseSequence < 0 {
		return fmt.Errorf("producer id %d with base sequence %d: %w", h.ProducerID, h.BaseSequence, ErrInvalidRecord)
	}
	if h.IsTransactional() && !h.hasProducerID() {
		return fmt.Errorf("transactional batch without a producer id: %w", ErrInvalidRecord)
	}

	section := b[HeaderLen:]
	if codec != CodecNone {
		if !opts.Deep && !opts.RequireKeys {
			return nil
		}
		out, err := DecompressLimit(codec, section, scratch.get(), decompressLimit(opts.MaxBatchBytes))
		scratch.keep(out)
		if err != nil {
			return err
		}
		section = out
	}
	return walkRecords(section, h.NumRecords, opts.RequireKeys)
}

// decompressLimit bounds what one batch may inflate to during validation:
// generous enough for any honest producer, small enough that a zip bomb
// fails instead of exhausting memory.
func decompressLimit(maxBatchBytes int32) int {
	return max(MaxDecompressed, 2*int(maxBatchBytes))
}

// walkRecords checks every record of an uncompressed records section.
func walkRecords(section []byte, numRecords int32, requireKeys bool) error {
	it := NewRecordIter(section, numRecords)
	for it.advance() {
		r := &it.cur
		index := it.index - 1
		if r.OffsetDelta != index {
			return fmt.Errorf("record %d has offset delta %d: %w", index, r.OffsetDelta, ErrInvalidRecord)
		}
		if requireKeys && r.Key == nil {
			return fmt.Errorf("record %d has a null key, which a compacted topic cannot accept: %w", index, ErrInvalidRecord)
		}
	}
	return it.Err()
}

// add folds one batch's header into the summary, checking that it belongs
// to the same producer write as the batches before it.
func (s *Summary) add(h Header) error {
	if s.NumBatches == 0 {
		s.FirstTimestamp = h.FirstTimestamp
		s.MaxTimestamp = h.MaxTimestamp
		s.Codec = h.Codec()
		s.ProducerID = h.ProducerID
		s.ProducerEpoch = h.ProducerEpoch
		s.Transactional = h.IsTransactional()
		s.Control = h.IsControl()
		s.BaseSequence, s.LastSequence = -1, -1
		if h.hasProducerID() {
			s.BaseSequence = h.BaseSequence
		}
	} else {
		if h.ProducerID != s.ProducerID || h.ProducerEpoch != s.ProducerEpoch {
			return fmt.Errorf("producer %d epoch %d after producer %d epoch %d in one request: %w",
				h.ProducerID, h.ProducerEpoch, s.ProducerID, s.ProducerEpoch, ErrInvalidRecord)
		}
		if h.IsTransactional() != s.Transactional || h.IsControl() != s.Control {
			return fmt.Errorf("transactional/control flags differ from the first batch: %w", ErrInvalidRecord)
		}
		if h.hasProducerID() {
			if want := nextSequence(s.LastSequence, 1); h.BaseSequence != want {
				return fmt.Errorf("base sequence %d, want %d after the previous batch: %w", h.BaseSequence, want, ErrInvalidRecord)
			}
		}
		s.MaxTimestamp = max(s.MaxTimestamp, h.MaxTimestamp)
	}
	if h.hasProducerID() {
		s.LastSequence = nextSequence(h.BaseSequence, h.LastOffsetDelta)
	}
	s.NumBatches++
	s.NumRecords += int64(h.NumRecords)
	s.OffsetCount += int64(h.LastOffsetDelta) + 1
	return nil
}

// nextSequence adds inc (≥ 0) to a producer sequence number. Sequences wrap
// from MaxInt32 to 0, as in Kafka's DefaultRecordBatch.incrementSequence.
func nextSequence(seq, inc int32) int32 {
	if seq > math.MaxInt32-inc {
		return inc - (math.MaxInt32 - seq) - 1
	}
	return seq + inc
}

// maxPooledScratch keeps one validation of a huge compressed batch from
// pinning its buffer in the pool for good.
const maxPooledScratch = 4 << 20

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// decompressScratch lends Validate a pooled buffer for decompressed records,
// fetched only when a compressed batch is actually walked.
type decompressScratch struct{ p *[]byte }

func (d *decompressScratch) get() []byte {
	if d.p == nil {
		d.p = scratchPool.Get().(*[]byte)
	}
	return *d.p
}

// keep remembers b, which may have outgrown the buffer get returned.
func (d *decompressScratch) keep(b []byte) { *d.p = b[:0] }

func (d *decompressScratch) release() {
	if d.p != nil && cap(*d.p) <= maxPooledScratch {
		scratchPool.Put(d.p)
	}
	d.p = nil
}

// putCRC recomputes and stores the CRC of the complete batch b.
func putCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
