package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/partlog"
)

// partitionActor is the protoactor shell around a partition.Core: it
// stamps inputs with the clock, steps the core, and carries out its Ready
// against the partition log. It is the only code touching the log's
// write side (the owner goroutine in partlog's contract), because
// protoactor runs one message of an actor at a time.
type partitionActor struct {
	id     partlog.LogID
	core   *partition.Core
	log    *partlog.Log
	clock  func() time.Time
	logger *slog.Logger
	self   *actor.PID
	root   *actor.RootContext
	// mailbox lets the actor see whether more work is queued behind the
	// message it is handling (see execute's Sync).
	mailbox actor.Mailbox

	// The syncer goroutine owns fsync so the actor keeps appending while a
	// sync runs (group commit). syncReq has capacity 1: a request while
	// one is pending is merged.
	syncReq  chan struct{}
	syncStop chan struct{}
	syncDone chan struct{}

	// timer delivers the core's next Tick (see armTimer); timerAt is the
	// deadline it is set for, -1 when none is pending.
	timer   *time.Timer
	timerAt int64
	// timerSelf is the actor's PID as its own context reports it, taken
	// on the actor's goroutine before any timer exists.
	timerSelf *actor.PID

	// Replication (replicated partitions only; see replica_actor.go).
	replicated bool
	localID    int32
	alterISR   AlterISRFunc
	// resigned: the node is shutting down; roles are no longer applied.
	// stopped: the actor is stopping. offline: an fsync failed, so what
	// was appended may never become durable; nothing is fetched.
	resigned, stopped, offline bool
	// followerWaits are the fetcher's requests whose answers wait for the
	// follower's appends to be durable; followerErr is what became of the
	// last fetched batches.
	followerWaits []followerWaiter
	followerErr   error
}

type synced struct {
	end int64
	err error
}

func (a *partitionActor) syncLoop() {
	defer close(a.syncDone)
	for {
		select {
		case <-a.syncStop:
			return
		case <-a.syncReq:
			end, err := a.log.Sync()
			a.root.Send(a.self, &synced{end: end, err: err})
		}
	}
}

func (a *partitionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *ProduceRequest:
		a.core.Step(partition.Produce{
			Token: m, Records: m.Records, Acks: m.Acks, NowMs: a.clock().UnixMilli(), DeadlineMs: m.DeadlineMs,
			Summary: partition.Summary{
				NumRecords: m.Summary.NumRecords, ProducerID: m.Summary.ProducerID, ProducerEpoch: m.Summary.ProducerEpoch,
				BaseSequence: m.Summary.BaseSequence, LastSequence: m.Summary.LastSequence,
			},
		})
	case *FetchRequest:
		a.core.Step(partition.Fetch{Token: m, Offset: m.Offset, MaxBytes: m.MaxBytes})
	case *WatchRequest:
		a.core.Step(partition.Watch{Token: m.Wake, Offset: m.Offset, DeadlineMs: m.DeadlineMs})
	case *ListOffsetsRequest:
		a.core.Step(partition.ListOffsets{Token: m, Timestamp: m.Timestamp})
	case *DeleteRecordsRequest:
		a.core.Step(partition.DeleteRecords{Token: m, Offset: m.Offset})
	case *synced:
		s := partition.Synced{DurableEnd: m.end}
		if m.err != nil {
			a.logger.Error("fsync failed; partition goes offline for writes", "err", m.err)
			a.offline = true
			s.Err = m.err.Error()
		}
		a.core.Step(s)
	case tick:
		a.timerAt = -1
		a.core.Step(partition.Tick{NowMs: a.clock().UnixMilli()})
	case *PartitionConfig:
		a.log.SetConfig(m.Log)
		a.core.Step(partition.Configure{Settings: m.Core})
	case *ReplicaFetchRequest:
		a.core.Step(partition.ReplicaFetch{
			Token: m, ReplicaID: m.ReplicaID, CurrentLeaderEpoch: m.CurrentLeaderEpoch, FetchOffset: m.FetchOffset,
			LastFetchedEpoch: m.LastFetchedEpoch, Lookup: a.epochLookup(m.LastFetchedEpoch), MaxBytes: m.MaxBytes,
			NowMs: a.clock().UnixMilli(),
		})
	case *replicaWatch:
		a.core.Step(partition.ReplicaWatch{Token: m.Wake, Offset: m.Offset, DeadlineMs: m.DeadlineMs})
	case *EpochRequest:
		m.Reply <- a.offsetForLeaderEpoch(m)
		return
	case *ReplicaRole:
		a.setRole(m)
	case *FollowerStateRequest:
		a.waitFollower(m.Tag, m.Reply)
	case *FollowerFetchedRequest:
		a.followerFetched(m)
	case *alterISRAnswer:
		r := m.res
		r.NowMs = a.clock().UnixMilli()
		a.core.Step(r)
	case resign:
		a.resign()
	case *LocalReadRequest:
		a.readLocal(m)
		return
	case *StatusRequest:
		c := a.core
		m.Reply <- ReplicaStatus{Leader: c.IsLeader(), LeaderID: c.Leader(), LeaderEpoch: c.LeaderEpoch(),
			PartitionEpoch: c.PartitionEpoch(), ISR: c.ISR(), LogStart: c.LogStart(), LogEnd: c.LogEnd(),
			HighWatermark: c.HighWatermark(), DurableEnd: c.DurableEnd()}
		return
	case *actor.Started:
		a.timerSelf = ctx.Self()
		a.armTimer()
		return
	case *actor.Stopping:
		a.stop()
		return
	default:
		return
	}
	a.execute(a.core.Ready())
	a.armTimer()
	a.maybeAnswerFollower()
}

// armTimer keeps one timer set for the core's next deadline. It fires by
// sending a tick to the actor's own mailbox; a stale fire is a harmless
// extra Tick.
func (a *partitionActor) armTimer() {
	next := a.core.NextTickMs()
	if next < 0 || next == a.timerAt {
		return
	}
	if a.timerAt >= 0 && a.timerAt <= next {
		return // an earlier fire is pending; it re-arms afterwards
	}
	a.timerAt = next
	d := time.Duration(next-a.clock().UnixMilli()) * time.Millisecond
	if a.timer == nil {
		self, root := a.timerSelf, a.root
		a.timer = time.AfterFunc(max(d, 0), func() { root.Send(self, tick{}) })
		return
	}
	a.timer.Reset(max(d, 0))
}

// execute carries out a Ready: appends first and in order, then the rest.
func (a *partitionActor) execute(rd partition.Ready) {
	for _, ap := range rd.Appends {
		if err := a.log.Append(ap.Records, ap.NowMs); err != nil {
			a.logger.Error("append failed", "offset", ap.BaseOffset, "err", err)
			a.core.Step(partition.AppendFailed{Offset: ap.BaseOffset, Err: err.Error()})
			// The failure answers the produces of this and later appends;
			// merge its Ready into what is left to do.
			more := a.core.Ready()
			rd.Replies = append(rd.Replies, more.Replies...)
			break
		}
	}
	if rd.Sync {
		if a.mailbox != nil && a.mailbox.UserMessageCount() == 0 {
			// Nothing is queued behind this message, so no group commit
			// is lost by syncing right here; doing it inline saves the
			// two goroutine hand-offs through the syncer, which is most
			// of an idle partition's produce latency besides the fsync.
			a.syncInline()
		} else {
			// More work is queued: let the syncer fsync while this actor
			// keeps appending; the next fsync covers what arrives.
			select {
			case a.syncReq <- struct{}{}:
			default:
			}
		}
	}
	for _, r := range rd.Replies {
		req := r.Token.(*ProduceRequest)
		req.Reply <- ProduceResult{
			Tag: req.Tag, ErrorCode: r.Result.ErrorCode, ErrorMessage: r.Result.ErrorMessage,
			BaseOffset: r.Result.BaseOffset, LogAppendTime: r.Result.LogAppendTime, LogStartOffset: r.Result.LogStartOffset,
		}
	}
	for _, rd := range rd.Reads {
		a.serveRead(rd)
	}
	for _, l := range rd.Lookups {
		a.serveLookup(l)
	}
	for _, d := range rd.Deletes {
		a.serveDelete(d)
	}
	for _, w := range rd.Wakes {
		select {
		case w.(chan<- struct{}) <- struct{}{}:
		default:
		}
	}
	if rd.AlterISR != nil {
		a.sendAlterISR(*rd.AlterISR)
	}
	if rd.MoveLogStart > a.log.StartOffset() {
		// A follower following the leader's log start (DeleteRecords,
		// retention), never past its own high watermark.
		if err := a.log.DeleteRecordsBefore(rd.MoveLogStart); err != nil {
			a.logger.Error("moving the log start to the leader's failed", "offset", rd.MoveLogStart, "err", err)
		}
	}
	if rd.Snapshot {
		a.saveSnapshot()
	}
	if rd.Retention {
		before := a.log.StartOffset()
		if n, err := a.log.EnforceRetention(rd.RetentionNowMs); err != nil {
			a.logger.Error("retention failed", "err", err)
		} else if n > 0 {
			a.logger.Info("retention deleted segments", "segments", n, "log_start_before", before, "log_start", a.log.StartOffset())
			a.core.Step(partition.LogStartMoved{LogStart: a.log.StartOffset()})
			a.execute(a.core.Ready())
		}
	}
}

// saveSnapshot stores the core's producer table so a restart replays only
// the batches after it.
func (a *partitionActor) saveSnapshot() {
	end, batches := a.core.ProducerSnapshot()
	if err := a.log.SaveSnapshot(end, encodeProducerSnapshot(batches, a.core.HighWatermark())); err != nil {
		a.logger.Warn("saving producer snapshot failed; a restart replays more of the log", "err", err)
		return
	}
	a.core.SnapshotSaved(end)
}

// syncInline fsyncs on the actor's own goroutine and feeds the result
// straight back to the core.
func (a *partitionActor) syncInline() {
	end, err := a.log.Sync()
	s := partition.Synced{DurableEnd: end}
	if err != nil {
		a.logger.Error("fsync failed; partition goes offline for writes", "err", err)
		a.offline = true
		s.Err = err.Error()
	}
	a.core.Step(s)
	a.execute(a.core.Ready())
}

// serveRead answers a consumer's Fetch or a follower's ReplicaFetch.
func (a *partitionActor) serveRead(r partition.Read) {
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
		a.logger.Error("read for an unknown requester", "token", fmt.Sprintf("%T", r.Token))
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
		region, err := a.log.Read(r.Offset, int(r.MaxBytes), r.Limit)
		switch {
		case errors.Is(err, partlog.ErrOffsetOutOfRange):
			res.ErrorCode = kerr.OffsetOutOfRange.Code
		case err != nil:
			a.logger.Error("read failed", "offset", r.Offset, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		default:
			res.Records = region
		}
	}
	reply <- res
}

func (a *partitionActor) serveLookup(l partition.Lookup) {
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
			ts, off = a.log.MaxTimestamp()
			found = off >= 0
		} else {
			off, ts, found, err = a.log.OffsetForTimestamp(l.Timestamp)
		}
		switch {
		case err != nil:
			a.logger.Error("offset lookup failed", "timestamp", l.Timestamp, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		case !found || off >= l.Limit:
			res.Offset, res.Timestamp = -1, -1
		default:
			res.Offset, res.Timestamp = off, ts
		}
	}
	req.Reply <- res
}

func (a *partitionActor) serveDelete(d partition.DeleteBefore) {
	req := d.Token.(*DeleteRecordsRequest)
	res := DeleteRecordsResult{Tag: req.Tag, ErrorCode: d.ErrorCode, LowWatermark: d.Offset}
	if d.ErrorCode == 0 && !d.NoOp {
		if err := a.log.DeleteRecordsBefore(d.Offset); err != nil {
			a.logger.Error("delete records failed", "offset", d.Offset, "err", err)
			res.ErrorCode = kerr.KafkaStorageError.Code
		}
		res.LowWatermark = a.log.StartOffset()
	}
	req.Reply <- res
}

// stop runs when the actor is stopping: no more messages will be handled.
// Waiting produces still hold replies; fsync once more so they can be
// answered, then close the log.
func (a *partitionActor) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
	close(a.syncStop)
	<-a.syncDone
	end, err := a.log.Sync()
	if err != nil {
		a.logger.Error("final fsync failed", "err", err)
		a.core.Step(partition.Synced{Err: err.Error()})
	} else {
		a.core.Step(partition.Synced{DurableEnd: end})
	}
	rd := a.core.Ready()
	rd.Sync = false
	rd.Appends = nil
	rd.AlterISR = nil // nobody is left to take the answer
	a.execute(rd)
	a.stopped = true
	a.answerFollower()
	if err == nil {
		a.saveSnapshot()
	}
	if err := a.log.Close(); err != nil {
		a.logger.Error("close log failed", "err", err)
	}
}
