package actors

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
)

// CellEnv is what a PartitionCell needs from whatever hosts it: a clock,
// one timer, fsyncs that may run off the request path, and a way back in
// for the controller's answers. The daemon's partition actor implements
// it with the wall clock, time.AfterFunc, a syncer goroutine and its own
// mailbox; the simulator with its scheduler. A cell calls these only from
// inside its own methods.
type CellEnv interface {
	// NowMs is the current time in Unix milliseconds.
	NowMs() int64
	// SetTimer sets the cell's one timer: the host calls the cell's Tick
	// once at or after atMs, replacing any earlier setting. atMs < 0
	// cancels it. An early or extra Tick is harmless.
	SetTimer(atMs int64)
	// RequestSync asks for an fsync of the log (the core's Ready.Sync).
	// Return true to have the cell fsync at once, inline; or return false
	// and call the cell's Sync later (the daemon's syncer goroutine, which
	// lets appends go on meanwhile; the simulator's disk latency). At most
	// one request is outstanding at a time from the core's point of view;
	// one Sync covers every append made before it.
	RequestSync() (inline bool)
	// DeliverAlterISR hands back the controller's answer to an ISR change:
	// the AlterISRFunc's answer callback calls it, possibly on another
	// goroutine, possibly before the AlterISRFunc returned. The host must
	// call the cell's AlterISRAnswer with r later, never from inside this
	// call.
	DeliverAlterISR(r partition.AlterISRResult)
}

// PartitionCell is one partition replica without a host: a partition.Core
// stepped with the messages of api.go, its Ready carried out against the
// partition's log (appends, reads, truncations by Kafka's follower rules,
// producer snapshots), replies sent on the requests' reply channels. It
// owns the log's write side (partlog's owner goroutine).
//
// A cell is not safe for concurrent use: its host calls its methods one
// at a time. The daemon hosts each cell in a protoactor actor
// (partitionActor); the simulator calls it from its scheduler. Every
// reply is a send on a caller-sized buffered channel, done before the
// method returns or in a later call, never blocking the cell.
type PartitionCell struct {
	id     partlog.LogID
	cfg    PartitionConfig
	core   *partition.Core
	log    *partlog.Log
	env    CellEnv
	logger *slog.Logger

	// timerAt is the deadline the env's timer is set for, -1 when none is
	// pending (see armTimer).
	timerAt int64

	// Replication (replicated cells only; see replica_cell.go).
	replicated bool
	localID    int32
	alterISR   AlterISRFunc
	// resigned: the node is shutting down; roles are no longer applied.
	// stopped: the cell is closed. offline: an fsync failed, so what was
	// appended may never become durable; nothing is fetched.
	resigned, stopped, offline bool
	// followerWaits are the fetcher's requests whose answers wait for the
	// follower's appends to be durable; followerErr is what became of the
	// last fetched batches.
	followerWaits []followerWaiter
	followerErr   error
}

// ReplicaWatchRequest is a WatchRequest on the leader's log end (a
// follower's long poll, see Partition.ReplicaWatch), as PartitionCell.Handle
// takes it.
type ReplicaWatchRequest struct{ WatchRequest }

// OpenPartitionCell opens (recovering) the partition's log as the
// single-replica leader of leaderEpoch (single-node mode, as Host.Start):
// the producer state is rebuilt from the last producer snapshot and the
// log after it. logger may be nil.
func OpenPartitionCell(store *partlog.Store, id partlog.LogID, cfg PartitionConfig, leaderEpoch int32,
	env CellEnv, logger *slog.Logger) (*PartitionCell, error) {
	return openCell(store, id, cfg, func() *partition.Core { return partition.New(cfg.Core, leaderEpoch) },
		false, 0, nil, env, logger)
}

// OpenReplicaCell opens (recovering) a replicated partition's log as
// replica localID and applies role (as Host.StartReplica): the producer
// state and the checkpointed high watermark are read back, then the cell
// becomes leader or follower as role says. ISR changes go to the
// controller through alterISR, whose answers come back through
// env.DeliverAlterISR. logger may be nil.
func OpenReplicaCell(store *partlog.Store, id partlog.LogID, cfg PartitionConfig, localID int32, role ReplicaRole,
	alterISR AlterISRFunc, env CellEnv, logger *slog.Logger) (*PartitionCell, error) {
	c, err := openCell(store, id, cfg, func() *partition.Core { return partition.NewReplica(cfg.Core, localID) },
		true, localID, alterISR, env, logger)
	if err != nil {
		return nil, err
	}
	c.Handle(&role)
	return c, nil
}

// openCell opens the log and recovers the core newCore makes. Nothing is
// asked of env but the time: the host may finish setting itself up (the
// actor's PID) before the first message.
func openCell(store *partlog.Store, id partlog.LogID, cfg PartitionConfig, newCore func() *partition.Core,
	replicated bool, localID int32, alterISR AlterISRFunc, env CellEnv, logger *slog.Logger) (*PartitionCell, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l, err := store.OpenLog(id, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("start partition %s-%d: %w", id.Topic, id.Partition, err)
	}
	// OpenLog leaves everything below EndOffset durable (what it trusted
	// was synced before, what it scanned it fsyncs), which is what
	// Recovered promises the core: no second fsync here.
	rec, err := recoverProducers(l, logger)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("start partition %s-%d: rebuild producer state: %w", id.Topic, id.Partition, err)
	}
	core := newCore()
	core.Step(partition.Recovered{LogStart: l.StartOffset(), LogEnd: l.EndOffset(), ProducerBatches: rec.batches,
		SnapshotEnd: rec.end, HighWatermark: rec.highWatermark, NowMs: env.NowMs()})
	_ = core.Ready()
	return &PartitionCell{
		id: id, cfg: cfg, core: core, log: l, env: env,
		logger:  logger.With("topic", id.Topic, "partition", id.Partition),
		timerAt: -1, replicated: replicated, localID: localID, alterISR: alterISR,
	}, nil
}

// recovered is what start-up reads back besides the log itself.
type recovered struct {
	batches []partition.ProducerBatch
	// end is the log end the producer snapshot covers (0: none).
	end int64
	// highWatermark is the one checkpointed with the snapshot (0: none).
	highWatermark int64
}

// recoverProducers rebuilds the idempotent producers' batches: the last
// snapshot, then every batch the log indexed from the snapshot's end on.
// Without a (readable) snapshot it replays the whole log.
func recoverProducers(l *partlog.Log, logger *slog.Logger) (recovered, error) {
	var rec recovered
	from := l.StartOffset()
	snapEnd, data, ok, err := l.LoadSnapshot()
	if err != nil {
		return rec, err
	}
	if ok {
		if snap, hw, err := decodeProducerSnapshot(data); err != nil {
			logger.Warn("ignoring unreadable producer snapshot; replaying the whole log", "log", l.ID().String(), "err", err)
		} else {
			rec.batches, rec.end, rec.highWatermark = snap, snapEnd, hw
			from = max(from, min(snapEnd, l.EndOffset()))
		}
	}
	err = l.Batches(from, func(b partlog.BatchInfo) bool {
		if b.ProducerID >= 0 {
			rec.batches = append(rec.batches, partition.ProducerBatch{
				BaseOffset: b.BaseOffset, LastOffset: b.LastOffset, ProducerID: b.ProducerID,
				ProducerEpoch: b.ProducerEpoch, BaseSequence: b.BaseSequence, TimestampMs: b.MaxTimestamp,
			})
		}
		return true
	})
	return rec, err
}

// ID is the partition's log id.
func (c *PartitionCell) ID() partlog.LogID { return c.id }

// Config is the configuration the cell runs with (the last
// *PartitionConfig it handled, or the one it was opened with).
func (c *PartitionCell) Config() PartitionConfig { return c.cfg }

// BatchOptions are the produce validation settings of the topic: what a
// caller runs batch.Validate with before it sends a ProduceRequest.
func (c *PartitionCell) BatchOptions() batch.Options { return c.cfg.Validate }

// Replicated reports whether the cell was opened by OpenReplicaCell.
func (c *PartitionCell) Replicated() bool { return c.replicated }

// Status is the replica's state as its core sees it (what a
// StatusRequest answers).
func (c *PartitionCell) Status() ReplicaStatus {
	co := c.core
	return ReplicaStatus{Leader: co.IsLeader(), LeaderID: co.Leader(), LeaderEpoch: co.LeaderEpoch(),
		PartitionEpoch: co.PartitionEpoch(), ISR: co.ISR(), LogStart: co.LogStart(), LogEnd: co.LogEnd(),
		HighWatermark: co.HighWatermark(), DurableEnd: co.DurableEnd()}
}

// Handle takes one message, the same ones the daemon's partition actor
// takes from the wire layer and the replica fetcher: *ProduceRequest,
// *FetchRequest, *WatchRequest, *ReplicaWatchRequest, *ListOffsetsRequest,
// *DeleteRecordsRequest, *ReplicaFetchRequest, *EpochRequest,
// *ReplicaRole (ignored unless the cell is replicated),
// *FollowerStateRequest, *FollowerFetchedRequest, *LocalReadRequest,
// *StatusRequest and *PartitionConfig. Answers go to the request's reply
// channel, now or in a later call. It reports false, doing nothing, for
// any other message and on a closed cell.
func (c *PartitionCell) Handle(msg any) bool {
	if c.stopped {
		return false
	}
	switch m := msg.(type) {
	case *ProduceRequest:
		c.core.Step(partition.Produce{
			Token: m, Records: m.Records, Acks: m.Acks, NowMs: c.env.NowMs(), DeadlineMs: m.DeadlineMs,
			Summary: partition.Summary{
				NumRecords: m.Summary.NumRecords, ProducerID: m.Summary.ProducerID, ProducerEpoch: m.Summary.ProducerEpoch,
				BaseSequence: m.Summary.BaseSequence, LastSequence: m.Summary.LastSequence,
			},
		})
	case *FetchRequest:
		c.core.Step(partition.Fetch{Token: m, Offset: m.Offset, MaxBytes: m.MaxBytes})
	case *WatchRequest:
		c.core.Step(partition.Watch{Token: m.Wake, Offset: m.Offset, DeadlineMs: m.DeadlineMs})
	case *ListOffsetsRequest:
		c.core.Step(partition.ListOffsets{Token: m, Timestamp: m.Timestamp})
	case *DeleteRecordsRequest:
		c.core.Step(partition.DeleteRecords{Token: m, Offset: m.Offset})
	case *PartitionConfig:
		c.cfg = *m
		c.log.SetConfig(m.Log)
		c.core.Step(partition.Configure{Settings: m.Core})
	case *ReplicaFetchRequest:
		c.core.Step(partition.ReplicaFetch{
			Token: m, ReplicaID: m.ReplicaID, CurrentLeaderEpoch: m.CurrentLeaderEpoch, FetchOffset: m.FetchOffset,
			LastFetchedEpoch: m.LastFetchedEpoch, Lookup: c.epochLookup(m.LastFetchedEpoch), MaxBytes: m.MaxBytes,
			NowMs: c.env.NowMs(),
		})
	case *ReplicaWatchRequest:
		c.core.Step(partition.ReplicaWatch{Token: m.Wake, Offset: m.Offset, DeadlineMs: m.DeadlineMs})
	case *EpochRequest:
		m.Reply <- c.offsetForLeaderEpoch(m)
		return true
	case *ReplicaRole:
		if !c.replicated {
			return true
		}
		c.setRole(m)
	case *FollowerStateRequest:
		c.waitFollower(m.Tag, m.Reply)
	case *FollowerFetchedRequest:
		c.followerFetched(m)
	case *LocalReadRequest:
		c.readLocal(m)
		return true
	case *StatusRequest:
		m.Reply <- c.Status()
		return true
	default:
		c.logger.Warn("ignoring an unknown message", "type", fmt.Sprintf("%T", msg))
		return false
	}
	c.settle()
	return true
}

// Tick runs the core's timers (watch and produce deadlines, flush.ms,
// retention checks, ISR shrinking) at the env's current time.
func (c *PartitionCell) Tick() {
	if c.stopped {
		return
	}
	c.timerAt = -1
	c.core.Step(partition.Tick{NowMs: c.env.NowMs()})
	c.settle()
}

// Sync fsyncs the log now and feeds the outcome to the core: what the
// host does some time after RequestSync returned false.
func (c *PartitionCell) Sync() {
	if c.stopped {
		return
	}
	end, err := c.log.Sync()
	c.synced(end, err)
}

// synced feeds the outcome of an fsync (done by Sync, or by the daemon's
// syncer goroutine) to the core.
func (c *PartitionCell) synced(end int64, err error) {
	c.stepSynced(end, err)
	c.settle()
}

// stepSynced steps the core with an fsync's outcome; a failed fsync takes
// the partition offline for writes.
func (c *PartitionCell) stepSynced(end int64, err error) {
	s := partition.Synced{DurableEnd: end}
	if err != nil {
		c.logger.Error("fsync failed; partition goes offline for writes", "err", err)
		c.offline = true
		s.Err = err.Error()
	}
	c.core.Step(s)
}

// AlterISRAnswer feeds the controller's answer to an ISR change (see
// CellEnv.DeliverAlterISR) to the core.
func (c *PartitionCell) AlterISRAnswer(r partition.AlterISRResult) {
	if c.stopped {
		return
	}
	r.NowMs = c.env.NowMs()
	c.core.Step(r)
	c.settle()
}

// Resign steps a replicated leader down before the node stops (as
// Host.Resign): produces waiting for the ISR are answered
// NOT_LEADER_OR_FOLLOWER and parked fetches are answered. Roles are no
// longer applied afterwards.
func (c *PartitionCell) Resign() {
	if c.stopped {
		return
	}
	c.resign()
	c.settle()
}

// settle finishes every step: carry out the Ready, keep the timer set for
// the next deadline, answer the fetcher if it may fetch.
func (c *PartitionCell) settle() {
	c.execute(c.core.Ready())
	c.armTimer()
	c.maybeAnswerFollower()
}

// armTimer keeps the env's one timer set for the core's next deadline. A
// later deadline than the one pending waits for that one to fire and
// re-arm.
func (c *PartitionCell) armTimer() {
	next := c.core.NextTickMs()
	if next < 0 || next == c.timerAt {
		return
	}
	if c.timerAt >= 0 && c.timerAt <= next {
		return // an earlier fire is pending; it re-arms afterwards
	}
	c.timerAt = next
	c.env.SetTimer(next)
}

// execute carries out a Ready: appends first and in order, then the rest.
func (c *PartitionCell) execute(rd partition.Ready) {
	for _, ap := range rd.Appends {
		if err := c.log.Append(ap.Records, ap.NowMs); err != nil {
			c.logger.Error("append failed", "offset", ap.BaseOffset, "err", err)
			c.core.Step(partition.AppendFailed{Offset: ap.BaseOffset, Err: err.Error()})
			// The failure answers the produces of this and later appends;
			// merge its Ready into what is left to do.
			more := c.core.Ready()
			rd.Replies = append(rd.Replies, more.Replies...)
			break
		}
	}
	if rd.Sync && c.env.RequestSync() {
		c.syncInline()
	}
	for _, r := range rd.Replies {
		req := r.Token.(*ProduceRequest)
		req.Reply <- ProduceResult{
			Tag: req.Tag, ErrorCode: r.Result.ErrorCode, ErrorMessage: r.Result.ErrorMessage,
			BaseOffset: r.Result.BaseOffset, LogAppendTime: r.Result.LogAppendTime, LogStartOffset: r.Result.LogStartOffset,
		}
	}
	for _, rd := range rd.Reads {
		c.serveRead(rd)
	}
	for _, l := range rd.Lookups {
		c.serveLookup(l)
	}
	for _, d := range rd.Deletes {
		c.serveDelete(d)
	}
	for _, w := range rd.Wakes {
		select {
		case w.(chan<- struct{}) <- struct{}{}:
		default:
		}
	}
	if rd.AlterISR != nil {
		c.sendAlterISR(*rd.AlterISR)
	}
	if rd.MoveLogStart > c.log.StartOffset() {
		// A follower following the leader's log start (DeleteRecords,
		// retention), never past its own high watermark.
		if err := c.log.DeleteRecordsBefore(rd.MoveLogStart); err != nil {
			c.logger.Error("moving the log start to the leader's failed", "offset", rd.MoveLogStart, "err", err)
		}
	}
	if rd.Snapshot {
		c.saveSnapshot()
	}
	if rd.Retention {
		before := c.log.StartOffset()
		if n, err := c.log.EnforceRetention(rd.RetentionNowMs); err != nil {
			c.logger.Error("retention failed", "err", err)
		} else if n > 0 {
			c.logger.Info("retention deleted segments", "segments", n, "log_start_before", before, "log_start", c.log.StartOffset())
			c.core.Step(partition.LogStartMoved{LogStart: c.log.StartOffset()})
			c.execute(c.core.Ready())
		}
	}
}

// saveSnapshot stores the core's producer table so a restart replays only
// the batches after it.
func (c *PartitionCell) saveSnapshot() {
	end, batches := c.core.ProducerSnapshot()
	if err := c.log.SaveSnapshot(end, encodeProducerSnapshot(batches, c.core.HighWatermark())); err != nil {
		c.logger.Warn("saving producer snapshot failed; a restart replays more of the log", "err", err)
		return
	}
	c.core.SnapshotSaved(end)
}

// syncInline fsyncs on the caller's goroutine, in the middle of execute,
// and feeds the result straight back to the core.
func (c *PartitionCell) syncInline() {
	c.stepSynced(c.log.Sync())
	c.execute(c.core.Ready())
}

// serveRead answers a consumer's Fetch or a follower's ReplicaFetch.
func (c *PartitionCell) serveRead(r partition.Read) {
	var (
		tag   int
		reply chan<- FetchResult
	)
	logEnd := int64(-1)
	switch req := r.Token.(type) {
	case *FetchRequest:
		tag, reply = req.Tag, req.Reply
	case *ReplicaFetchRequest:
		// A replica read's limit is the leader's log end.
		tag, reply, logEnd = req.Tag, req.Reply, r.Limit
	default:
		c.logger.Error("read for an unknown requester", "token", fmt.Sprintf("%T", r.Token))
		return
	}
	res := FetchResult{
		Tag: tag, ErrorCode: r.ErrorCode, HighWatermark: r.HighWatermark,
		LastStableOffset: r.LastStableOffset, LogStartOffset: r.LogStartOffset, LogEndOffset: logEnd,
	}
	switch {
	case r.Diverging != nil:
		res.Diverging, res.DivergingEpoch, res.DivergingEndOffset = true, r.Diverging.Epoch, r.Diverging.EndOffset
	case r.ErrorCode == 0 && r.Offset < r.Limit:
		region, err := c.log.Read(r.Offset, int(r.MaxBytes), r.Limit)
		switch {
		case errors.Is(err, partlog.ErrOffsetOutOfRange):
			res.ErrorCode = kerr.OffsetOutOfRange.Code
		case err != nil:
			c.logger.Error("read failed", "offset", r.Offset, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		default:
			res.Records = region
		}
	}
	reply <- res
}

func (c *PartitionCell) serveLookup(l partition.Lookup) {
	req := l.Token.(*ListOffsetsRequest)
	res := ListOffsetsResult{Tag: req.Tag, ErrorCode: l.ErrorCode, Offset: l.Offset, Timestamp: -1, LeaderEpoch: l.LeaderEpoch}
	if l.ErrorCode != 0 {
		// A follower's answer: no offset, and no epoch to trust.
		res.Offset, res.LeaderEpoch = -1, -1
	} else if !l.Resolved {
		var (
			off, ts int64
			found   bool
			err     error
		)
		if l.Timestamp == -3 {
			ts, off = c.log.MaxTimestamp()
			found = off >= 0
		} else {
			off, ts, found, err = c.log.OffsetForTimestamp(l.Timestamp)
		}
		switch {
		case err != nil:
			c.logger.Error("offset lookup failed", "timestamp", l.Timestamp, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		case !found || off >= l.Limit:
			res.Offset, res.Timestamp = -1, -1
		default:
			res.Offset, res.Timestamp = off, ts
		}
	}
	req.Reply <- res
}

func (c *PartitionCell) serveDelete(d partition.DeleteBefore) {
	req := d.Token.(*DeleteRecordsRequest)
	res := DeleteRecordsResult{Tag: req.Tag, ErrorCode: d.ErrorCode, LowWatermark: d.Offset}
	if d.ErrorCode == 0 && !d.NoOp {
		if err := c.log.DeleteRecordsBefore(d.Offset); err != nil {
			c.logger.Error("delete records failed", "offset", d.Offset, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		}
		res.LowWatermark = c.log.StartOffset()
	}
	req.Reply <- res
}

// Close stops the cell (the daemon: when its actor stops, after the
// messages already queued): it fsyncs once more so that produces waiting
// for durability can be answered, answers the fetcher, saves a producer
// snapshot and closes the log. The cell takes nothing afterwards. The
// host must not call Sync concurrently (the daemon stops its syncer
// first).
func (c *PartitionCell) Close() error {
	if c.stopped {
		return nil
	}
	c.env.SetTimer(-1)
	end, err := c.log.Sync()
	if err != nil {
		c.logger.Error("final fsync failed", "err", err)
		c.core.Step(partition.Synced{Err: err.Error()})
	} else {
		c.core.Step(partition.Synced{DurableEnd: end})
	}
	rd := c.core.Ready()
	rd.Sync = false
	rd.Appends = nil
	rd.AlterISR = nil // nobody is left to take the answer
	c.execute(rd)
	c.stopped = true
	c.answerFollower()
	if err == nil {
		c.saveSnapshot()
	}
	if err := c.log.Close(); err != nil {
		c.logger.Error("close log failed", "err", err)
		return fmt.Errorf("close partition %s-%d: %w", c.id.Topic, c.id.Partition, err)
	}
	return nil
}
