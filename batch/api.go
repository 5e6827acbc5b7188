package batch

import "errors"

// HeaderLen is the size of a v2 record batch header.
const HeaderLen = 61

// Codec is the compression codec in a batch's attributes (bits 0-2).
type Codec int8

const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// Validation failures. Each maps to one Kafka error code; wrap them with
// detail using fmt.Errorf("...: %w", ErrX) and test with errors.Is.
var (
	ErrCorrupt       = errors.New("corrupt record batch")   // CORRUPT_MESSAGE (2)
	ErrTooLarge      = errors.New("record batch too large") // MESSAGE_TOO_LARGE (10)
	ErrInvalidRecord = errors.New("invalid record")         // INVALID_RECORD (87)
)

// Header is a decoded v2 record batch header.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Summary describes a validated run of one or more batches.
type Summary struct {
	NumBatches     int
	NumRecords     int64
	OffsetCount    int64 // offsets the batches occupy: sum of lastOffsetDelta+1
	FirstTimestamp int64 // of the first batch
	MaxTimestamp   int64 // over all batches
	Codec          Codec // of the first batch
	// Producer identity of the first batch; idempotent produce requires all
	// batches in one partition's records to share it.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32 // of the first batch, -1 if none
	LastSequence  int32 // baseSequence+lastOffsetDelta of the last batch (wrapping), -1 if none
	Transactional bool
	Control       bool
}

// Options tune Validate.
type Options struct {
	// MaxBatchBytes is max.message.bytes: the largest batch accepted,
	// counting its full size (12-byte log overhead + batchLength).
	MaxBatchBytes int32
	// Deep decompresses compressed batches and walks every record. Without
	// it only uncompressed batches have their records walked; compressed
	// ones are checked by header and CRC and stored as sent.
	Deep bool
	// RequireKeys rejects records with a null key (compacted topics),
	// which implies Deep.
	RequireKeys bool
	// AllowControl accepts control batches (transaction markers). Clients
	// may never write them; only the broker's own appends set this.
	AllowControl bool
}
