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
	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/troupe-io/troupe/partlog"
)

// This file is the partition cell's share of replication: applying roles
// from the metadata image, serving the leader's side (epoch lookups for
// ReplicaFetch and OffsetForLeaderEpoch, AlterISR to the controller) and
// the follower's side (appending what the fetcher brought, truncating by
// Kafka's follower rules, answering the fetcher once appends are
// durable).

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
func (c *PartitionCell) setRole(r *ReplicaRole) {
	if c.resigned {
		return
	}
	co := c.core
	lead := r.Leader == c.localID
	switch {
	case r.LeaderEpoch < co.LeaderEpoch():
		return // an older image
	case lead && (!co.IsLeader() || r.LeaderEpoch != co.LeaderEpoch()):
		c.logger.Info("becoming the leader", "leader_epoch", r.LeaderEpoch, "isr", r.ISR)
		co.Step(partition.BecomeLeader{LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas, ISR: r.ISR, NowMs: c.env.NowMs()})
	case !lead && (co.IsLeader() || r.LeaderEpoch != co.LeaderEpoch() || r.Leader != co.Leader()):
		c.logger.Info("becoming a follower", "leader", r.Leader, "leader_epoch", r.LeaderEpoch)
		co.Step(partition.BecomeFollower{Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas})
	default:
		co.Step(partition.PartitionChanged{LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Replicas: r.Replicas, ISR: r.ISR})
	}
}

// resign steps a leader down at its own epoch, without a successor: what
// waits for the ISR fails over to the next leader, which the controller
// elects once this node is fenced or gone.
func (c *PartitionCell) resign() {
	c.resigned = true
	if co := c.core; co.IsLeader() {
		co.Step(partition.BecomeFollower{Leader: -1, LeaderEpoch: co.LeaderEpoch(), PartitionEpoch: co.PartitionEpoch()})
	}
}

// epochLookup is what the log's leader-epoch history says of epoch, for
// the core (see partition.EpochLookup).
func (c *PartitionCell) epochLookup(epoch int32) partition.EpochLookup {
	l := partition.EpochLookup{Epoch: -1, EndOffset: -1, LatestEpoch: -1}
	if epoch < 0 {
		return l
	}
	l.Epoch, l.EndOffset = c.log.EndOffsetForEpoch(epoch)
	if l.Epoch < 0 {
		// Rare (an epoch above the whole history): only then is the
		// history copied.
		if es := c.log.EpochEntries(); len(es) > 0 {
			l.LatestEpoch = es[len(es)-1].Epoch
		}
	}
	return l
}

// offsetForLeaderEpoch answers OffsetForLeaderEpoch as a Kafka partition
// does: fencing by CurrentLeaderEpoch first, then leadership, then the
// leader's epoch cache (the log's history plus its own epoch, see
// partition.Core.EndOffsetForEpoch).
func (c *PartitionCell) offsetForLeaderEpoch(m *EpochRequest) EpochResult {
	res := EpochResult{Tag: m.Tag, LeaderEpoch: -1, EndOffset: -1}
	co := c.core
	switch {
	case m.CurrentLeaderEpoch >= 0 && m.CurrentLeaderEpoch < co.LeaderEpoch():
		res.ErrorCode = kerr.FencedLeaderEpoch.Code
	case m.CurrentLeaderEpoch > co.LeaderEpoch():
		res.ErrorCode = kerr.UnknownLeaderEpoch.Code
	case !co.IsLeader() && m.ReplicaID != debuggingReplicaID:
		res.ErrorCode = kerr.NotLeaderForPartition.Code
	default:
		e := co.EndOffsetForEpoch(m.LeaderEpoch, c.epochLookup(m.LeaderEpoch))
		res.LeaderEpoch, res.EndOffset = e.Epoch, e.EndOffset
	}
	return res
}

// sendAlterISR hands an ISR change to the node, whose answer comes back
// through the env (CellEnv.DeliverAlterISR) to AlterISRAnswer.
func (c *PartitionCell) sendAlterISR(change partition.AlterISR) {
	if c.alterISR == nil {
		// Only a replicated core proposes ISR changes, and replicated
		// partitions are started with a way to the controller; without
		// one the change stays pending and the high watermark follows
		// the maximal ISR, which is safe.
		c.logger.Warn("an ISR change has no controller to go to", "isr", change.ISR)
		return
	}
	env := c.env
	c.alterISR(c.id, change, func(r partition.AlterISRResult) { env.DeliverAlterISR(r) })
}

// following reports whether the replica fetches from a leader.
func (c *PartitionCell) following() bool {
	co := c.core
	return c.replicated && !c.resigned && !c.stopped && !c.offline && !co.IsLeader() && co.Leader() >= 0 && co.Leader() != c.localID
}

// followerState is where the next fetch starts.
func (c *PartitionCell) followerState(tag int) FollowerState {
	co := c.core
	st := FollowerState{
		Tag: tag, Following: c.following(), Leader: co.Leader(), LeaderEpoch: co.LeaderEpoch(),
		FetchOffset: co.FetchOffset(), LastFetchedEpoch: -1, LogStartOffset: co.LogStart(),
	}
	if st.Following {
		st.LastFetchedEpoch = epochBefore(c.log.EpochEntries(), st.FetchOffset)
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
func (c *PartitionCell) waitFollower(tag int, reply chan<- FollowerState) {
	if len(c.followerWaits) >= maxFollowerWaiters {
		c.sendFollowerState(c.followerWaits[0])
		c.followerWaits = append(c.followerWaits[:0], c.followerWaits[1:]...)
	}
	c.followerWaits = append(c.followerWaits, followerWaiter{tag: tag, reply: reply})
}

// maybeAnswerFollower answers the waiting fetcher requests once a fetch
// may be sent: the follower's fetch offset is its log end (what it
// appended is durable), or it does not follow anyone.
func (c *PartitionCell) maybeAnswerFollower() {
	if len(c.followerWaits) == 0 {
		return
	}
	if co := c.core; c.following() && co.FetchOffset() != co.LogEnd() {
		return // an fsync is on its way; its Synced comes back here
	}
	c.answerFollower()
}

// answerFollower answers every waiting fetcher request now.
func (c *PartitionCell) answerFollower() {
	for _, w := range c.followerWaits {
		c.sendFollowerState(w)
	}
	clear(c.followerWaits)
	c.followerWaits = c.followerWaits[:0]
	c.followerErr = nil
}

func (c *PartitionCell) sendFollowerState(w followerWaiter) {
	st := c.followerState(w.tag)
	st.Err = c.followerErr
	select {
	case w.reply <- st:
	default:
		// The fetcher sizes its channels for every request; a full one
		// was abandoned after a timeout.
		c.logger.Debug("dropped a follower state nobody waits for")
	}
}

// followerFetched takes the follower's share of a fetch response: the
// batches to append, or the news that the log diverged or fell out of the
// leader's range, which a truncation answers.
func (c *PartitionCell) followerFetched(m *FollowerFetchedRequest) {
	c.waitFollower(m.Tag, m.Reply)
	co := c.core
	// The fetcher sent this fetch from FetchOffset in LeaderEpoch; if
	// either moved since, the answer is about a log or a leadership that
	// is gone (the core refuses such appends too, with the reason).
	stale := !c.following() || m.LeaderEpoch != co.LeaderEpoch() || m.FetchOffset != co.LogEnd()
	switch {
	case m.Diverging:
		if stale {
			return
		}
		c.truncateDiverging(m.DivergingEpoch, m.DivergingEndOffset)
	case m.ErrorCode == kerr.OffsetOutOfRange.Code:
		if stale {
			return
		}
		if m.FetchOffset < m.LogStartOffset {
			// Everything we have is below the leader's log start: start
			// over there (Kafka's truncateFullyAndStartAt).
			c.truncateFully(m.LogStartOffset)
			return
		}
		// Our log runs past the leader's and the epochs did not say
		// where they part: keep only what is committed, which the
		// leader has (clean elections).
		if mutation.On(mutation.SkipTruncation) {
			// The simulator's deliberate bug: keep the tail the leader
			// does not have (see truncateDiverging).
			return
		}
		to := co.HighWatermark()
		if m.HighWatermark >= 0 {
			to = min(to, m.HighWatermark)
		}
		c.truncateLog(to)
	case m.ErrorCode != 0:
		c.followerErr = fmt.Errorf("fetch from the leader: %w", kerr.ErrorForCode(m.ErrorCode))
	default:
		co.Step(partition.FollowerAppend{
			Token: m, LeaderEpoch: m.LeaderEpoch, FetchOffset: m.FetchOffset, Records: m.Records,
			HighWatermark: m.HighWatermark, LogStartOffset: m.LogStartOffset, NowMs: c.env.NowMs(),
		})
		rd := co.Ready()
		for _, r := range rd.FollowerResults {
			if r.Token == m {
				c.followerErr = r.Err
			}
		}
		c.execute(rd)
		if errors.Is(c.followerErr, partition.ErrNotContiguous) {
			// The leader's batches skip past our log end: it cannot
			// continue our log, so keep only what is committed and
			// fetch again from there.
			c.logger.Warn("fetched batches do not continue the log; truncating to the high watermark", "err", c.followerErr)
			c.truncateLog(co.HighWatermark())
		}
	}
}

// truncateDiverging cuts the log where it left the leader's, by Kafka's
// follower rule on a DivergingEpoch (AbstractFetcherThread's
// truncation state): the leader's (epoch, end offset) is compared with
// the end of the same epoch in our history.
func (c *PartitionCell) truncateDiverging(epoch int32, endOffset int64) {
	if mutation.On(mutation.SkipTruncation) {
		// The simulator's deliberate bug (never on outside it and its
		// tests): a returning replica keeps the tail the leader does not
		// have, and its checkers must notice.
		return
	}
	end := c.log.EndOffset()
	to := end
	switch fe, fend := c.log.EndOffsetForEpoch(epoch); {
	case endOffset < 0:
		to = c.core.HighWatermark()
	case epoch < 0, fe < 0:
		to = min(endOffset, end)
	case fe != epoch:
		to = min(fend, end)
	default:
		to = min(endOffset, fend, end)
	}
	c.truncateLog(to)
}

// truncateLog cuts the log at to (partlog rounds down to a batch
// boundary), durably, and tells the core where it now ends.
func (c *PartitionCell) truncateLog(to int64) {
	to = max(to, c.log.StartOffset())
	if to >= c.log.EndOffset() {
		return
	}
	before := c.log.EndOffset()
	if err := c.log.Truncate(to); err != nil {
		c.logger.Error("truncating a diverged tail failed", "to", to, "err", err)
		c.followerErr = fmt.Errorf("truncate to %d: %w", to, err)
		return
	}
	c.logger.Info("truncated the log to the leader's", "from", before, "to", c.log.EndOffset())
	c.core.Step(partition.TruncateTo{Offset: c.log.EndOffset()})
	c.execute(c.core.Ready())
}

// truncateFully drops the whole log and starts it over, empty, at offset.
func (c *PartitionCell) truncateFully(offset int64) {
	before := c.log.EndOffset()
	if err := resetLog(c.log, offset, c.env.NowMs()); err != nil {
		c.logger.Error("starting the log over at the leader's log start failed", "offset", offset, "err", err)
		c.followerErr = fmt.Errorf("start over at %d: %w", offset, err)
		// Whatever partlog managed to cut, the core must not count on.
		c.core.Step(partition.TruncateTo{Offset: c.log.EndOffset()})
		c.execute(c.core.Ready())
		return
	}
	c.logger.Info("log below the leader's log start; started over", "from", before, "at", c.log.StartOffset())
	c.core.Step(partition.TruncateFully{Offset: c.log.EndOffset()})
	c.execute(c.core.Ready())
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
func (c *PartitionCell) readLocal(m *LocalReadRequest) {
	end := c.log.EndOffset()
	res := FetchResult{Tag: m.Tag, HighWatermark: c.core.HighWatermark(), LastStableOffset: c.core.HighWatermark(),
		LogStartOffset: c.log.StartOffset(), LogEndOffset: end}
	switch {
	case m.Offset < res.LogStartOffset || m.Offset > end:
		res.ErrorCode = kerr.OffsetOutOfRange.Code
	case m.Offset < end:
		region, err := c.log.Read(m.Offset, int(m.MaxBytes), end)
		if err != nil {
			res.ErrorCode = kerr.KafkaStorageError.Code
		}
		res.Records = region
	}
	m.Reply <- res
}
