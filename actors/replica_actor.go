package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
)

// This file is the partition actor's share of replication: applying roles
// from the metadata image, serving the leader's side (epoch lookups for
// ReplicaFetch and OffsetForLeaderEpoch, AlterISR to the controller) and
// the follower's side (appending what the fetcher brought, truncating by
// Kafka's follower rules, answering the fetcher once appends are
// durable).

// Messages only this package sends to a partition actor.
type (
	// replicaWatch is a WatchRequest on the leader's log end.
	replicaWatch struct{ WatchRequest }
	// resign steps a leader down before the node stops (Host.Resign).
	resign struct{}
	// alterISRAnswer carries the controller's answer to an AlterISR.
	alterISRAnswer struct{ res partition.AlterISRResult }
)

// debuggingReplicaID is Kafka's replica id of a debugging client, which
// may read epochs from a follower.
const debuggingReplicaID = -2

// maxFollowerWaiters bounds the fetcher requests held for durability. The
// fetcher keeps one per partition in flight; more only come after it gave
// up waiting on one, so the oldest is answered early.
const maxFollowerWaiters = 4

// followerWaiter is a fetcher request whose answer waits until the
// follower's log end is durable.
type followerWaiter struct {
	tag   int
	reply chan<- FollowerState
}

// setRole applies the metadata image's state of the partition: a new
// leader epoch (or a different role) is a role change, anything else an
// ISR / replica set update within the epoch. The core ignores stale
// states.
func (a *partitionActor) setRole(r *ReplicaRole) {
	if a.resigned {
		return
	}
	c := a.core
	lead := r.Leader == a.localID
	switch {
	case r.LeaderEpoch < c.LeaderEpoch():
		return // an older image
	case lead && (!c.IsLeader() || r.LeaderEpoch != c.LeaderEpoch()):
		a.logger.Info("becoming the leader", "leader_epoch", r.LeaderEpoch, "isr", r.ISR)
		c.Step(partition.BecomeLeader{LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas, ISR: r.ISR, NowMs: a.clock().UnixMilli()})
	case !lead && (c.IsLeader() || r.LeaderEpoch != c.LeaderEpoch() || r.Leader != c.Leader()):
		a.logger.Info("becoming a follower", "leader", r.Leader, "leader_epoch", r.LeaderEpoch)
		c.Step(partition.BecomeFollower{Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas})
	default:
		c.Step(partition.PartitionChanged{LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas, ISR: r.ISR})
	}
}

// resign steps a leader down at its own epoch, without a successor: what
// waits for the ISR fails over to the next leader, which the controller
// elects once this node is fenced or gone.
func (a *partitionActor) resign() {
	a.resigned = true
	if c := a.core; c.IsLeader() {
		c.Step(partition.BecomeFollower{Leader: -1, LeaderEpoch: c.LeaderEpoch(), PartitionEpoch: c.PartitionEpoch()})
	}
}

// epochLookup is what the log's leader-epoch history says of epoch, for
// the core (see partition.EpochLookup).
func (a *partitionActor) epochLookup(epoch int32) partition.EpochLookup {
	l := partition.EpochLookup{Epoch: -1, EndOffset: -1, LatestEpoch: -1}
	if epoch < 0 {
		return l
	}
	l.Epoch, l.EndOffset = a.log.EndOffsetForEpoch(epoch)
	if l.Epoch < 0 {
		// Rare (an epoch above the whole history): only then is the
		// history copied.
		if es := a.log.EpochEntries(); len(es) > 0 {
			l.LatestEpoch = es[len(es)-1].Epoch
		}
	}
	return l
}

// offsetForLeaderEpoch answers OffsetForLeaderEpoch as a Kafka partition
// does: fencing by CurrentLeaderEpoch first, then leadership, then the
// leader's epoch cache (the log's history plus its own epoch, see
// partition.Core.EndOffsetForEpoch).
func (a *partitionActor) offsetForLeaderEpoch(m *EpochRequest) EpochResult {
	res := EpochResult{Tag: m.Tag, LeaderEpoch: -1, EndOffset: -1}
	c := a.core
	switch {
	case m.CurrentLeaderEpoch >= 0 && m.CurrentLeaderEpoch < c.LeaderEpoch():
		res.ErrorCode = kerr.FencedLeaderEpoch.Code
	case m.CurrentLeaderEpoch > c.LeaderEpoch():
		res.ErrorCode = kerr.UnknownLeaderEpoch.Code
	case !c.IsLeader() && m.ReplicaID != debuggingReplicaID:
		res.ErrorCode = kerr.NotLeaderForPartition.Code
	default:
		e := c.EndOffsetForEpoch(m.LeaderEpoch, a.epochLookup(m.LeaderEpoch))
		res.LeaderEpoch, res.EndOffset = e.Epoch, e.EndOffset
	}
	return res
}

// sendAlterISR hands an ISR change to the node, whose answer comes back
// to this actor as an alterISRAnswer.
func (a *partitionActor) sendAlterISR(change partition.AlterISR) {
	if a.alterISR == nil {
		// Only a replicated core proposes ISR changes, and replicated
		// partitions are started with a way to the controller; without
		// one the change stays pending and the high watermark follows
		// the maximal ISR, which is safe.
		a.logger.Warn("an ISR change has no controller to go to", "isr", change.ISR)
		return
	}
	self, root := a.timerSelf, a.root
	a.alterISR(a.id, change, func(r partition.AlterISRResult) { root.Send(self, &alterISRAnswer{res: r}) })
}

// following reports whether the replica fetches from a leader.
func (a *partitionActor) following() bool {
	c := a.core
	return a.replicated && !a.resigned && !a.stopped && !a.offline && !c.IsLeader() && c.Leader() >= 0 && c.Leader() != a.localID
}

// followerState is where the next fetch starts.
func (a *partitionActor) followerState(tag int) FollowerState {
	c := a.core
	st := FollowerState{
		Tag: tag, Following: a.following(), Leader: c.Leader(), LeaderEpoch: c.LeaderEpoch(),
		FetchOffset: c.FetchOffset(), LastFetchedEpoch: -1, LogStartOffset: c.LogStart(),
	}
	if st.Following {
		st.LastFetchedEpoch = epochBefore(a.log.EpochEntries(), st.FetchOffset)
	}
	return st
}

// epochBefore is the epoch of the batch holding offset-1 in a log with
// history es: the last entry starting below offset (-1 if none).
func epochBefore(es []partlog.EpochEntry, offset int64) int32 {
	epoch := int32(-1)
	for _, e := range es {
		if e.StartOffset >= offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}

// waitFollower queues a fetcher request until the log end is durable.
func (a *partitionActor) waitFollower(tag int, reply chan<- FollowerState) {
	if len(a.followerWaits) >= maxFollowerWaiters {
		a.sendFollowerState(a.followerWaits[0])
		a.followerWaits = append(a.followerWaits[:0], a.followerWaits[1:]...)
	}
	a.followerWaits = append(a.followerWaits, followerWaiter{tag: tag, reply: reply})
}

// maybeAnswerFollower answers the waiting fetcher requests once a fetch
// may be sent: the follower's fetch offset is its log end (what it
// appended is durable), or it does not follow anyone.
func (a *partitionActor) maybeAnswerFollower() {
	if len(a.followerWaits) == 0 {
		return
	}
	if c := a.core; a.following() && c.FetchOffset() != c.LogEnd() {
		return // an fsync is on its way; its Synced comes back here
	}
	a.answerFollower()
}

// answerFollower answers every waiting fetcher request now.
func (a *partitionActor) answerFollower() {
	for _, w := range a.followerWaits {
		a.sendFollowerState(w)
	}
	clear(a.followerWaits)
	a.followerWaits = a.followerWaits[:0]
	a.followerErr = nil
}

func (a *partitionActor) sendFollowerState(w followerWaiter) {
	st := a.followerState(w.tag)
	st.Err = a.followerErr
	select {
	case w.reply <- st:
	default:
		// The fetcher sizes its channels for every request; a full one
		// was abandoned after a timeout.
		a.logger.Debug("dropped a follower state nobody waits for")
	}
}

// followerFetched takes the follower's share of a fetch response: the
// batches to append, or the news that the log diverged or fell out of the
// leader's range, which a truncation answers.
func (a *partitionActor) followerFetched(m *FollowerFetchedRequest) {
	a.waitFollower(m.Tag, m.Reply)
	c := a.core
	// The fetcher sent this fetch from FetchOffset in LeaderEpoch; if
	// either moved since, the answer is about a log or a leadership that
	// is gone (the core refuses such appends too, with the reason).
	stale := !a.following() || m.LeaderEpoch != c.LeaderEpoch() || m.FetchOffset != c.LogEnd()
	switch {
	case m.Diverging:
		if stale {
			return
		}
		a.truncateDiverging(m.DivergingEpoch, m.DivergingEndOffset)
	case m.ErrorCode == kerr.OffsetOutOfRange.Code:
		if stale {
			return
		}
		if m.FetchOffset < m.LogStartOffset {
			// Everything we have is below the leader's log start: start
			// over there (Kafka's truncateFullyAndStartAt).
			a.truncateFully(m.LogStartOffset)
			return
		}
		// Our log runs past the leader's and the epochs did not say
		// where they part: keep only what is committed, which the
		// leader has (clean elections).
		to := c.HighWatermark()
		if m.HighWatermark >= 0 {
			to = min(to, m.HighWatermark)
		}
		a.truncateLog(to)
	case m.ErrorCode != 0:
		a.followerErr = fmt.Errorf("fetch from the leader: %w", kerr.ErrorForCode(m.ErrorCode))
	default:
		c.Step(partition.FollowerAppend{
			Token: m, LeaderEpoch: m.LeaderEpoch, FetchOffset: m.FetchOffset, Records: m.Records,
			HighWatermark: m.HighWatermark, LogStartOffset: m.LogStartOffset, NowMs: a.clock().UnixMilli(),
		})
		rd := c.Ready()
		for _, r := range rd.FollowerResults {
			if r.Token == m {
				a.followerErr = r.Err
			}
		}
		a.execute(rd)
		if errors.Is(a.followerErr, partition.ErrNotContiguous) {
			// The leader's batches skip past our log end: it cannot
			// continue our log, so keep only what is committed and
			// fetch again from there.
			a.logger.Warn("fetched batches do not continue the log; truncating to the high watermark", "err", a.followerErr)
			a.truncateLog(c.HighWatermark())
		}
	}
}

// truncateDiverging cuts the log where it left the leader's, by Kafka's
// follower rule on a DivergingEpoch (AbstractFetcherThread's
// truncation state): the leader's (epoch, end offset) is compared with
// the end of the same epoch in our history.
func (a *partitionActor) truncateDiverging(epoch int32, endOffset int64) {
	end := a.log.EndOffset()
	to := end
	switch fe, fend := a.log.EndOffsetForEpoch(epoch); {
	case endOffset < 0:
		to = a.core.HighWatermark()
	case epoch < 0, fe < 0:
		to = min(endOffset, end)
	case fe != epoch:
		to = min(fend, end)
	default:
		to = min(endOffset, fend, end)
	}
	a.truncateLog(to)
}

// truncateLog cuts the log at to (partlog rounds down to a batch
// boundary), durably, and tells the core where it now ends.
func (a *partitionActor) truncateLog(to int64) {
	to = max(to, a.log.StartOffset())
	if to >= a.log.EndOffset() {
		return
	}
	before := a.log.EndOffset()
	if err := a.log.Truncate(to); err != nil {
		a.logger.Error("truncating a diverged tail failed", "to", to, "err", err)
		a.followerErr = fmt.Errorf("truncate to %d: %w", to, err)
		return
	}
	a.logger.Info("truncated the log to the leader's", "from", before, "to", a.log.EndOffset())
	a.core.Step(partition.TruncateTo{Offset: a.log.EndOffset()})
	a.execute(a.core.Ready())
}

// truncateFully drops the whole log and starts it over, empty, at offset.
func (a *partitionActor) truncateFully(offset int64) {
	before := a.log.EndOffset()
	if err := resetLog(a.log, offset, a.clock().UnixMilli()); err != nil {
		a.logger.Error("starting the log over at the leader's log start failed", "offset", offset, "err", err)
		a.followerErr = fmt.Errorf("start over at %d: %w", offset, err)
		// Whatever partlog managed to cut, the core must not count on.
		a.core.Step(partition.TruncateTo{Offset: a.log.EndOffset()})
		a.execute(a.core.Ready())
		return
	}
	a.logger.Info("log below the leader's log start; started over", "from", before, "at", a.log.StartOffset())
	a.core.Step(partition.TruncateFully{Offset: a.log.EndOffset()})
	a.execute(a.core.Ready())
}

// resetLog empties l and makes it start and end at offset (at or above
// its start). partlog has no call for that, so it is built from three: cut
// everything, append batches without records that only carry the offsets
// up to offset, fsync them, and move the log start over them. Each step is
// durable before the next; a crash in between leaves a shorter log, which
// the next fetch sorts out the same way.
func resetLog(l *partlog.Log, offset, nowMs int64) error {
	start := l.StartOffset()
	if offset < start {
		return fmt.Errorf("start over at %d, below the log start %d: %w", offset, start, partlog.ErrOffsetOutOfRange)
	}
	if err := l.Truncate(start); err != nil {
		return err
	}
	for end := l.EndOffset(); end < offset; end = l.EndOffset() {
		if err := l.Append(offsetFiller(end, min(offset-end, math.MaxInt32), nowMs), nowMs); err != nil {
			return err
		}
	}
	if _, err := l.Sync(); err != nil {
		return err
	}
	return l.DeleteRecordsBefore(offset)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// offsetFiller is a v2 batch with no records covering n offsets from base
// (as compaction can leave), unstamped by any leader epoch: only ever
// written below a log start moved right after it, so never read.
func offsetFiller(base, n, nowMs int64) []byte {
	b := make([]byte, batch.HeaderLen)
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], batch.HeaderLen-12) // batch length: after offset and length
	be.PutUint32(b[12:], math.MaxUint32)    // partition leader epoch -1
	b[16] = 2                               // magic
	be.PutUint32(b[23:], uint32(n-1))       // last offset delta; attributes (21) stay 0
	be.PutUint64(b[27:], uint64(nowMs))     // first timestamp
	be.PutUint64(b[35:], uint64(nowMs))     // max timestamp
	be.PutUint64(b[43:], math.MaxUint64)    // producer id -1
	be.PutUint16(b[51:], math.MaxUint16)    // producer epoch -1
	be.PutUint32(b[53:], math.MaxUint32)    // base sequence -1
	// record count (57) stays 0
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// readLocal serves a LocalReadRequest: the log itself, up to its end.
func (a *partitionActor) readLocal(m *LocalReadRequest) {
	end := a.log.EndOffset()
	res := FetchResult{Tag: m.Tag, HighWatermark: a.core.HighWatermark(), LastStableOffset: a.core.HighWatermark(),
		LogStartOffset: a.log.StartOffset(), LogEndOffset: end}
	switch {
	case m.Offset < res.LogStartOffset || m.Offset > end:
		res.ErrorCode = kerr.OffsetOutOfRange.Code
	case m.Offset < end:
		region, err := a.log.Read(m.Offset, int(m.MaxBytes), end)
		if err != nil {
			res.ErrorCode = kerr.KafkaStorageError.Code
		}
		res.Records = region
	}
	m.Reply <- res
}
