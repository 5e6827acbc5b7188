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
	// DeadlineMs, when positive, is when an acks=-1 produce stops waiting
	// for the ISR and is answered REQUEST_TIMED_OUT (the request's
	// timeout; the records may still commit, as in Kafka).
	DeadlineMs int64
	Tag        int // echoed in the result so the caller can match it
	Reply      chan<- ProduceResult
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

// FetchResult answers a FetchRequest or a ReplicaFetchRequest. Records
// must be Released by the receiver once written (or dropped).
type FetchResult struct {
	Tag              int
	ErrorCode        int16
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Records          partlog.Region
	// LogEndOffset is the leader's log end when it answered a replica
	// fetch (the limit of its read; -1 for consumer fetches): a replica
	// fetch that long-polls waits for the log to grow past it.
	LogEndOffset int64
	// Diverging, for a replica fetch, means the follower's log left the
	// leader's at its last fetched epoch (KIP-320): Records is empty and
	// DivergingEpoch / DivergingEndOffset tell where to truncate.
	Diverging          bool
	DivergingEpoch     int32
	DivergingEndOffset int64
}

// ReplicaFetchRequest is a follower's fetch of one partition arriving at
// the leader (a Kafka Fetch carrying a replica id). Its FetchOffset is
// what the follower has; the leader records it (the high watermark and
// the ISR follow from it) and answers with batches up to its log end, or
// with a DivergingEpoch.
type ReplicaFetchRequest struct {
	ReplicaID int32
	// CurrentLeaderEpoch is the epoch the follower follows (-1: unchecked).
	CurrentLeaderEpoch int32
	FetchOffset        int64
	// LastFetchedEpoch is the epoch of the follower's batch before
	// FetchOffset (-1: none, or the follower does not say).
	LastFetchedEpoch int32
	MaxBytes         int32
	Tag              int
	Reply            chan<- FetchResult
}

// EpochRequest is OffsetForLeaderEpoch for one partition: where does
// LeaderEpoch end in this partition's log?
type EpochRequest struct {
	LeaderEpoch int32
	// CurrentLeaderEpoch fences a requester with stale metadata (-1:
	// unchecked).
	CurrentLeaderEpoch int32
	// ReplicaID is the requester's broker id, -1 for a consumer, -2 for a
	// debugging client, which alone may ask a follower (as in Kafka).
	ReplicaID int32
	Tag       int
	Reply     chan<- EpochResult
}

// EpochResult answers an EpochRequest: the largest epoch at or below the
// one asked about and the offset where it ended (Kafka's
// OffsetForLeaderEpoch answer), or an error code with -1, -1.
type EpochResult struct {
	Tag         int
	ErrorCode   int16
	LeaderEpoch int32
	EndOffset   int64
}

// ReplicaRole is a replicated partition's state in the metadata image;
// Partition.SetRole applies it (leader or follower, ISR, epochs).
type ReplicaRole struct {
	// Leader is the leader's broker id, -1 when the partition has none.
	Leader                      int32
	LeaderEpoch, PartitionEpoch int32
	Replicas, ISR               []int32
}

// FollowerState is where a follower's next fetch starts: the replica
// fetcher's view of one partition, sent in answer to FollowerStateRequest
// and FollowerFetchedRequest.
type FollowerState struct {
	Tag int
	// Following is true when the replica follows a known leader (Leader
	// in LeaderEpoch). Otherwise it leads, has no leader, is offline or
	// stopped, and nothing is fetched for it.
	Following   bool
	Leader      int32
	LeaderEpoch int32
	// FetchOffset is the follower's log end, all of it durable (under the
	// default durability stance a follower reports only what it fsynced).
	FetchOffset int64
	// LastFetchedEpoch is the leader epoch of the batch before
	// FetchOffset, -1 if none (KIP-320).
	LastFetchedEpoch int32
	// LogStartOffset is the follower's log start.
	LogStartOffset int64
	// Err is why the last FollowerFetchedRequest's batches were not
	// taken (nil when they were, or when nothing was asked); for logs.
	Err error
}

// FollowerStateRequest asks a partition for its FollowerState.
type FollowerStateRequest struct {
	Tag   int
	Reply chan<- FollowerState
}

// FollowerFetchedRequest hands a follower one partition of its fetch
// response from the leader. The actor appends the batches (or truncates,
// on a DivergingEpoch or OFFSET_OUT_OF_RANGE) and answers with its new
// FollowerState once everything it appended is durable, so the next
// fetch reports only what is on disk.
type FollowerFetchedRequest struct {
	// LeaderEpoch and FetchOffset are what the fetch was sent with: an
	// answer for another leadership, or to another fetch offset, is
	// dropped.
	LeaderEpoch int32
	FetchOffset int64
	// ErrorCode is 0 or OFFSET_OUT_OF_RANGE; the fetcher handles the
	// others itself.
	ErrorCode      int16
	HighWatermark  int64
	LogStartOffset int64
	// Diverging, DivergingEpoch, DivergingEndOffset: the response's
	// DivergingEpoch (KIP-320), if it had one.
	Diverging          bool
	DivergingEpoch     int32
	DivergingEndOffset int64
	// Records are the fetched batches. They alias the fetcher's buffer
	// and are read only while the actor handles the message, which is
	// over by the time it answers.
	Records []byte
	Tag     int
	Reply   chan<- FollowerState
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

// LocalReadRequest reads this replica's own log, leader or follower, up to
// its log end: for diagnostics and tests that compare replicas. Clients
// never reach it.
type LocalReadRequest struct {
	Offset   int64
	MaxBytes int32
	Tag      int
	Reply    chan<- FetchResult
}

// ReplicaStatus is a replica's state as its core sees it.
type ReplicaStatus struct {
	Leader                      bool
	LeaderID                    int32
	LeaderEpoch, PartitionEpoch int32
	// ISR is the committed ISR as the leader knows it (nil on followers).
	ISR                             []int32
	LogStart, LogEnd, HighWatermark int64
	DurableEnd                      int64
}

// StatusRequest asks for a ReplicaStatus.
type StatusRequest struct {
	Reply chan<- ReplicaStatus
}
