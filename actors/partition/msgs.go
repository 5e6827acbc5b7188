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
	// Wakes are watch tokens to signal.
	Wakes []Token
	// Retention asks storage to enforce retention at RetentionNowMs and
	// report the new start with LogStartMoved.
	Retention      bool
	RetentionNowMs int64
	// Snapshot asks the host to store ProducerSnapshot and confirm with
	// SnapshotSaved.
	Snapshot bool
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
