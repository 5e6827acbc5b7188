package partition

// Msg is an input to Core.Step.
type Msg interface{ isMsg() }

// Token identifies the requester of a reply. The core never looks inside
// it; the host uses it to route the answer.
type Token = any

// Summary is what the core needs to know of a produce's batches (see
// batch.Summary).
type Summary struct {
	NumRecords    int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	LastSequence  int32
}

// ProducerBatch is one batch's producer metadata found in the log at
// start-up.
type ProducerBatch struct {
	BaseOffset, LastOffset int64
	ProducerID             int64
	ProducerEpoch          int16
	BaseSequence           int32
	// TimestampMs is when the producer last wrote, for expiry.
	TimestampMs int64
}

type (
	// Recovered starts the core with the state storage recovered.
	// Everything up to LogEnd is durable (partlog.OpenLog guarantees it).
	Recovered struct {
		LogStart, LogEnd int64
		// ProducerBatches are a producer snapshot's batches followed by
		// the log's batches from SnapshotEnd on, in that order; entries at
		// or past LogEnd are ignored.
		ProducerBatches []ProducerBatch
		SnapshotEnd     int64
		NowMs           int64
		// HighWatermark is the checkpointed high watermark, if the host
		// keeps one (0 otherwise), clamped to [LogStart, LogEnd]. Only a
		// replicated core (NewReplica) uses it: there the log may end
		// with records no quorum has, so without a checkpoint the high
		// watermark starts at LogStart and is relearned from the leader
		// or the ISR. A single-replica core (New) starts at LogEnd, since
		// everything durable on its only replica is committed.
		HighWatermark int64
	}
	// Configure replaces the settings (a topic config changed).
	Configure struct{ Settings Settings }
	// Produce appends validated batches. Records is rewritten in place
	// with the assigned offsets.
	Produce struct {
		Token   Token
		Records []byte
		Summary Summary
		Acks    int16
		NowMs   int64
		// DeadlineMs, when positive, bounds how long an acks=-1 produce
		// waits for the ISR (the request's timeout): past it the produce
		// is answered REQUEST_TIMED_OUT (the records may still commit).
		DeadlineMs int64
	}
	// AppendFailed reports that the append at Offset (and so every later
	// one in the same Ready) was not written; storage is back at Offset.
	AppendFailed struct {
		Offset int64
		Err    string
	}
	// Synced reports a finished fsync: everything below DurableEnd is on
	// disk, or Err is non-empty.
	Synced struct {
		DurableEnd int64
		Err        string
	}
	// Fetch asks where to read for a consumer.
	Fetch struct {
		Token    Token
		Offset   int64
		MaxBytes int32
	}
	// Watch parks a wake-up until the high watermark passes Offset.
	Watch struct {
		Token      Token
		Offset     int64
		DeadlineMs int64
	}
	// ListOffsets resolves a timestamp (-2 earliest, -1 latest,
	// -3 max timestamp) to an offset.
	ListOffsets struct {
		Token     Token
		Timestamp int64
	}
	// DeleteRecords moves the log start offset (-1: to the high watermark).
	DeleteRecords struct {
		Token  Token
		Offset int64
	}
	// LogStartMoved reports that storage moved the log start (retention).
	LogStartMoved struct{ LogStart int64 }
	// Tick carries the clock: expires watches, drives flush.ms and
	// retention checks.
	Tick struct{ NowMs int64 }
)

func (Recovered) isMsg()     {}
func (Configure) isMsg()     {}
func (Produce) isMsg()       {}
func (AppendFailed) isMsg()  {}
func (Synced) isMsg()        {}
func (Fetch) isMsg()         {}
func (Watch) isMsg()         {}
func (ListOffsets) isMsg()   {}
func (DeleteRecords) isMsg() {}
func (LogStartMoved) isMsg() {}
func (Tick) isMsg()          {}

// ProduceResult is the outcome of one produce (Kafka error code or offsets).
type ProduceResult struct {
	ErrorCode      int16
	ErrorMessage   string
	BaseOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
}

// Ready is what the core decided. Appends come first and in order.
type Ready struct {
	// Appends to write to the log, in order, without fsync.
	Appends []Append
	// Sync starts an fsync; its completion comes back as Synced. At most
	// one is in flight: appends made meanwhile ride on the next one
	// (group commit).
	Sync bool
	// Replies to produces.
	Replies []ProduceReply
	// Reads to serve from the log and answer.
	Reads []Read
	// Lookups answer ListOffsets; unresolved ones need the index.
	Lookups []Lookup
	// Deletes move the log start in storage (DeleteRecords) and answer.
	Deletes []DeleteBefore
	// Wakes are watch tokens to signal (Watch and ReplicaWatch).
	Wakes []Token
	// Retention asks storage to enforce retention at RetentionNowMs and
	// report the new start with LogStartMoved.
	Retention      bool
	RetentionNowMs int64
	// Snapshot asks the host to store ProducerSnapshot and confirm with
	// SnapshotSaved.
	Snapshot bool

	// AlterISR, when not nil, is an ISR change for the host to send to
	// the controller (AlterPartition); its answer comes back as
	// AlterISRResult. At most one is outstanding; a retry re-emits it.
	AlterISR *AlterISR
	// FollowerResults answer FollowerAppends, in order.
	FollowerResults []FollowerAppendResult
	// FollowerFetchOffset, when not 0, is a follower's new fetch offset:
	// its replicated end (durable end under AckAfterSync) grew to it, so
	// the fetcher may report it to the leader with its next fetch. It is
	// never 0 when set, since it only reports growth.
	FollowerFetchOffset int64
	// MoveLogStart, when not 0, asks storage to move its log start up to
	// this offset (partlog.Log.DeleteRecordsBefore) without answering
	// anyone: a follower following the leader's log start.
	MoveLogStart int64
}

// Append is one write to the log.
type Append struct {
	Records    []byte // offsets already assigned
	BaseOffset int64
	LastOffset int64
	NowMs      int64
	// LogAppendTime, when not -1, is the timestamp to stamp on the batches.
	LogAppendTime int64
}

// ProduceReply routes a ProduceResult.
type ProduceReply struct {
	Token  Token
	Result ProduceResult
}

// Read is a fetch to serve: whole batches from Offset, at most MaxBytes
// (but at least one batch), none at or past Limit. A non-zero ErrorCode
// means answer with it and read nothing.
type Read struct {
	Token            Token
	ErrorCode        int16
	Offset           int64
	MaxBytes         int32
	Limit            int64
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	// Diverging, for a replica fetch, means: read nothing and answer
	// with this DivergingEpoch (KIP-320); the follower truncates.
	Diverging *EpochEndOffset
}

// Lookup answers ListOffsets: Resolved ones carry Offset; others ask the
// index for Timestamp (or the max timestamp for -3), ignoring results at
// or past Limit.
type Lookup struct {
	Token       Token
	Timestamp   int64
	Resolved    bool
	Offset      int64
	Limit       int64
	LeaderEpoch int32
	// ErrorCode, when not 0, is the answer instead of an offset (a
	// follower answers NOT_LEADER_OR_FOLLOWER); Resolved is then true.
	ErrorCode int16
}

// DeleteBefore moves the storage log start to Offset, then answers with
// Offset as the low watermark (or ErrorCode).
type DeleteBefore struct {
	Token     Token
	ErrorCode int16
	Offset    int64
	// NoOp: nothing to delete, just answer.
	NoOp bool
}

// Replication inputs. A replicated partition's core is a leader or a
// follower; see replication.go and follower.go.
type (
	// BecomeLeader makes this replica the leader of LeaderEpoch with the
	// controller's replica set and ISR. A stale (lower) epoch is ignored;
	// the same epoch again only refreshes Replicas and ISR.
	BecomeLeader struct {
		LeaderEpoch, PartitionEpoch int32
		Replicas, ISR               []int32
		NowMs                       int64
	}
	// BecomeFollower makes this replica a follower of Leader in
	// LeaderEpoch. Waiting produces fail with NOT_LEADER_OR_FOLLOWER and
	// parked fetches wake. A stale epoch is ignored.
	BecomeFollower struct {
		Leader                      int32
		LeaderEpoch, PartitionEpoch int32
		Replicas                    []int32
	}
	// PartitionChanged applies the partition's replica set and ISR from
	// the metadata image. It is ignored unless LeaderEpoch is the core's
	// own (a new leader epoch comes as BecomeLeader/BecomeFollower) and
	// PartitionEpoch is not older than the core's.
	PartitionChanged struct {
		LeaderEpoch, PartitionEpoch int32
		Replicas, ISR               []int32
	}
	// AlterISRResult is the controller's answer to Ready.AlterISR: the
	// committed state on success (ErrorCode 0), else a Kafka error code
	// (a lost request or answer: REQUEST_TIMED_OUT).
	AlterISRResult struct {
		// Seq is the answered AlterISR's Seq. An answer to anything but
		// the pending change is ignored: a late answer to an older
		// change must not settle a newer one.
		Seq                         uint64
		ErrorCode                   int16
		LeaderEpoch, PartitionEpoch int32
		ISR                         []int32
		NowMs                       int64
	}
	// ReplicaFetch is a follower's fetch (a Kafka Fetch with a replica
	// id) arriving at the leader. Its fetch offset is what the follower
	// has (durably, under AckAfterSync); it is answered with a Read up to
	// the leader's log end.
	ReplicaFetch struct {
		Token     Token
		ReplicaID int32
		// CurrentLeaderEpoch is the epoch the follower believes current,
		// -1 if not given (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
		CurrentLeaderEpoch int32
		FetchOffset        int64
		// LastFetchedEpoch is the epoch of the follower's record before
		// FetchOffset (KIP-320), -1 if none.
		LastFetchedEpoch int32
		// Lookup is the leader's log's answer for LastFetchedEpoch; the
		// host fills it when LastFetchedEpoch >= 0 (see EpochLookup).
		Lookup   EpochLookup
		MaxBytes int32
		NowMs    int64
	}
	// ReplicaWatch parks a follower's fetch until the leader's log end
	// passes Offset (replica.fetch.wait.max.ms long polling), the
	// leadership changes, or DeadlineMs passes.
	ReplicaWatch struct {
		Token      Token
		Offset     int64
		DeadlineMs int64
	}
	// FollowerAppend hands a follower the batches a fetch to its leader
	// returned, with offsets and epochs as the leader assigned them; a
	// partial batch at the end is ignored. LeaderEpoch is the epoch the
	// fetch was sent in: an answer from another leadership is refused.
	//
	// The fetcher sends a fetch only when FetchOffset equals LogEnd (what
	// was appended is fsynced, under AckAfterSync), from that offset, with
	// LastFetchedEpoch the epoch of the batch before it: then the leader's
	// KIP-320 check covers the whole log and the batches must continue it
	// exactly.
	FollowerAppend struct {
		Token       Token
		LeaderEpoch int32
		// FetchOffset is the offset the fetch was sent from. It must be
		// the log end: the leader vouched for the log below it, and
		// nothing else (ErrStaleFetch otherwise).
		FetchOffset    int64
		Records        []byte
		HighWatermark  int64
		LogStartOffset int64
		NowMs          int64
	}
	// TruncateTo reports that storage cut the log at Offset (the end
	// partlog.Log.Truncate left, durably): a follower dropping a diverged
	// tail. At or past the log end it does nothing. Only followers
	// truncate: the host drops fetch answers of a leadership it no
	// longer follows.
	TruncateTo struct{ Offset int64 }
	// TruncateFully reports that storage dropped the whole log and now
	// starts and ends at Offset (a follower whose fetch offset fell below
	// the leader's log start).
	TruncateFully struct{ Offset int64 }
)

func (BecomeLeader) isMsg()     {}
func (BecomeFollower) isMsg()   {}
func (PartitionChanged) isMsg() {}
func (AlterISRResult) isMsg()   {}
func (ReplicaFetch) isMsg()     {}
func (ReplicaWatch) isMsg()     {}
func (FollowerAppend) isMsg()   {}
func (TruncateTo) isMsg()       {}
func (TruncateFully) isMsg()    {}

// EpochEndOffset is a (leader epoch, end offset) pair, as in
// OffsetForLeaderEpoch answers and Fetch's DivergingEpoch.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// EpochLookup is what the leader's log knows about a follower's last
// fetched epoch: Epoch and EndOffset are partlog.Log.EndOffsetForEpoch of
// it, LatestEpoch is the epoch of the log's last history entry (-1 if
// none). LatestEpoch is only read when EndOffsetForEpoch answered -1 (the
// epoch is above everything in the log), which is rare, so the host may
// compute it only then (from partlog.Log.EpochEntries).
//
// The core needs both because a Kafka leader's epoch cache holds its
// current epoch from the moment it leads, while the log's history gains
// it only with the first append of the epoch; the core adds that missing
// entry (see Core.EndOffsetForEpoch).
type EpochLookup struct {
	Epoch       int32
	EndOffset   int64
	LatestEpoch int32
}

// AlterISR is an ISR change for the controller (Kafka's AlterPartition
// with the leader and partition epochs it is based on). Seq identifies the
// change (a resend keeps it); the host copies it into the answer.
type AlterISR struct {
	Seq                         uint64
	LeaderEpoch, PartitionEpoch int32
	ISR                         []int32
}

// FollowerAppendResult answers a FollowerAppend. Err is nil when the
// batches were taken (Appends carry them); otherwise it wraps one of
// ErrNotFollower, ErrStaleLeaderEpoch, ErrStaleFetch, ErrNotContiguous,
// ErrCorruptFetch or ErrOffline. LogEnd is the follower's log end
// afterwards and FetchOffset what its next fetch may report (below LogEnd
// while an fsync runs: wait for Ready.FollowerFetchOffset to reach LogEnd
// before fetching again).
type FollowerAppendResult struct {
	Token       Token
	Err         error
	LogEnd      int64
	FetchOffset int64
}
