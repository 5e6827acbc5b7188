package actors

import (
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/partlog"
)

// The types below are the batch-granular messages the rest of a node (the
// Kafka handlers in package wire) exchanges with partition actors. Every
// request carries a buffered reply channel owned by the caller; an actor
// never blocks sending a reply, so the caller must size the channel for
// every request it sends before it reads any reply.

// ProduceRequest appends one partition's records (one or more v2 batches,
// already validated by batch.Validate in the caller's goroutine).
type ProduceRequest struct {
	Records []byte // aliases the request frame; the actor rewrites base offsets in place
	Summary BatchSummary
	Acks    int16
	Tag     int // echoed in the result so the caller can match it
	Reply   chan<- ProduceResult
}

// BatchSummary is the part of batch.Summary the partition core needs.
type BatchSummary struct {
	NumBatches    int
	NumRecords    int64
	OffsetCount   int64
	MaxTimestamp  int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	LastSequence  int32
	Transactional bool
}

// ProduceResult answers a ProduceRequest. ErrorCode is a Kafka error code.
type ProduceResult struct {
	Tag            int
	ErrorCode      int16
	ErrorMessage   string
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
}

// FetchRequest reads from one partition without waiting.
type FetchRequest struct {
	Offset        int64
	MaxBytes      int32
	ReadCommitted bool
	Tag           int
	Reply         chan<- FetchResult
}

// FetchResult answers a FetchRequest. Records must be Released by the
// receiver once written (or dropped).
type FetchResult struct {
	Tag              int
	ErrorCode        int16
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Records          partlog.Region
}

// WatchRequest parks a one-shot wake-up in the partition actor: when data
// at or above Offset becomes visible to consumers (the high watermark
// passes it), or the partition changes state, the actor does a
// non-blocking send on Wake. The actor drops watches past DeadlineMs.
type WatchRequest struct {
	Offset     int64
	DeadlineMs int64
	Wake       chan<- struct{}
}

// ListOffsetsRequest resolves a timestamp to an offset: -2 earliest,
// -1 latest, -3 the record with the largest timestamp, else the first
// offset whose timestamp is at least Timestamp.
type ListOffsetsRequest struct {
	Timestamp     int64
	ReadCommitted bool
	Tag           int
	Reply         chan<- ListOffsetsResult
}

type ListOffsetsResult struct {
	Tag         int
	ErrorCode   int16
	Offset      int64
	Timestamp   int64
	LeaderEpoch int32
}

// DeleteRecordsRequest moves the log start offset up to Offset
// (-1 means the high watermark).
type DeleteRecordsRequest struct {
	Offset int64
	Tag    int
	Reply  chan<- DeleteRecordsResult
}

type DeleteRecordsResult struct {
	Tag          int
	ErrorCode    int16
	LowWatermark int64
}

// GroupRequest is one request (or one group's share of a multi-group
// request) for a group coordinator actor. The caller fills Req's Tag,
// NowMs, ClientID, ClientHost and Req; the actor fills NewMemberID and
// Topics. The reply carries Req.Tag.
type GroupRequest struct {
	Req   group.Request
	Reply chan<- group.Reply
}
