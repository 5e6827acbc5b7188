package partition

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/internal/mutation"
)

// This file is the leader's side of replication, after Kafka's ISR model:
// followers fetch from the leader, the leader tracks each one's log end
// (its fetch offset), the high watermark is what every ISR member has,
// and ISR changes are proposed to the controller (AlterPartition), never
// applied on the leader's own authority.

type role uint8

const (
	roleFollower role = iota
	roleLeader
)

// replicaState is the leader's view of one follower (Kafka's
// ReplicaState).
type replicaState struct {
	id int32
	// leo is the follower's log end as its last fetch reported it, -1
	// until it fetches under this leadership.
	leo int64
	// lastFetchLeaderLEO is the leader's log end at the follower's
	// previous fetch (-1 unknown), lastFetchMs when that fetch came.
	lastFetchLeaderLEO int64
	lastFetchMs        int64
	// lastCaughtUpMs is the last time the follower was known to have
	// everything the leader had; older than replica.lag.time.max.ms
	// means out of sync.
	lastCaughtUpMs int64
}

// alterISRRetryBackoffMs spaces resends of an AlterISR the controller
// failed with a retriable error (Kafka's retry.backoff.ms default).
const alterISRRetryBackoffMs = 100

// IsLeader reports whether this replica leads the partition.
func (c *Core) IsLeader() bool { return c.role == roleLeader }

// Leader is the leader's broker id as last told (-1 when unknown).
func (c *Core) Leader() int32 { return c.leader }

// LeaderEpoch and PartitionEpoch are the epochs the core acts in.
func (c *Core) LeaderEpoch() int32    { return c.leaderEpoch }
func (c *Core) PartitionEpoch() int32 { return c.partitionEpoch }

// ISR returns a copy of the committed ISR.
func (c *Core) ISR() []int32 { return slices.Clone(c.isr) }

// FetchOffset is where a follower's next fetch starts and what it reports
// having: its durable end under AckAfterSync, its log end otherwise.
func (c *Core) FetchOffset() int64 { return c.replicatedEnd() }

func (c *Core) fetchOffset() int64 { return c.replicatedEnd() }

// singleReplica reports whether this core leads a partition it alone
// replicates (what New makes).
func (c *Core) singleReplica() bool {
	return c.role == roleLeader && len(c.replicas) == 1 && c.replicas[0] == c.localID
}

// noteFetchOffset reports a follower's grown fetch offset in Ready.
func (c *Core) noteFetchOffset() {
	if c.role != roleFollower {
		return
	}
	if off := c.fetchOffset(); off > c.fetchOffsetSent {
		c.fetchOffsetSent = off
		c.ready.FollowerFetchOffset = off
	}
}

func (c *Core) becomeLeader(m BecomeLeader) {
	if m.LeaderEpoch < c.leaderEpoch {
		return // stale
	}
	wasLeader := c.role == roleLeader
	if wasLeader && m.LeaderEpoch == c.leaderEpoch {
		c.partitionChanged(PartitionChanged{LeaderEpoch: m.LeaderEpoch, PartitionEpoch: m.PartitionEpoch, Replicas: m.Replicas, ISR: m.ISR})
		return
	}
	c.role, c.leader, c.leaderEpoch, c.partitionEpoch = roleLeader, c.localID, m.LeaderEpoch, m.PartitionEpoch
	c.replicas, c.isr = slices.Clone(m.Replicas), slices.Clone(m.ISR)
	c.pendingISR, c.alterStalled, c.alterRetryAtMs = nil, false, 0
	// The epoch's first offset; the host's log records the epoch with the
	// first append stamped with it. The high watermark stays where it is:
	// it never moves back.
	c.epochStart = c.logEnd
	// As Kafka's makeLeader: a new leader knows nothing of the followers'
	// logs until they fetch; ISR members get the full lag time to do so,
	// others start out of sync so they do not hold anything back.
	old := c.followers
	c.followers = make([]replicaState, 0, len(m.Replicas))
	for _, id := range m.Replicas {
		if id == c.localID {
			continue
		}
		f := replicaState{id: id, leo: -1, lastFetchLeaderLEO: -1}
		if i := indexReplica(old, id); wasLeader && i >= 0 {
			// Re-elected: keep what the followers reported.
			f.leo, f.lastFetchLeaderLEO, f.lastFetchMs = old[i].leo, c.logEnd, m.NowMs
		}
		if slices.Contains(c.isr, id) {
			f.lastCaughtUpMs = m.NowMs
		}
		c.followers = append(c.followers, f)
	}
	// Followers parked on the old leadership must fetch again to learn of
	// the new epoch.
	c.wakeAll(&c.replicaWatches)
	c.settle()
}

func (c *Core) becomeFollower(m BecomeFollower) {
	if m.LeaderEpoch < c.leaderEpoch {
		return // stale
	}
	wasLeader := c.role == roleLeader
	c.role, c.leader, c.leaderEpoch, c.partitionEpoch = roleFollower, m.Leader, m.LeaderEpoch, m.PartitionEpoch
	c.replicas, c.isr = slices.Clone(m.Replicas), nil
	c.followers, c.pendingISR, c.alterStalled, c.alterRetryAtMs = nil, nil, false, 0
	if wasLeader {
		// Whatever waits may be truncated away by the new leader; the
		// producers retry there (idempotence dedupes what survived).
		c.failPendingFrom(-1, kerr.NotLeaderForPartition.Code, "the leader changed while the produce waited")
		c.minPendingDeadline = -1
	}
	// Parked fetches learn the news by fetching again.
	c.wakeAll(&c.watches)
	c.wakeAll(&c.replicaWatches)
	c.fetchOffsetSent = c.fetchOffset()
}

// wakeAll wakes and drops every watch in *ws.
func (c *Core) wakeAll(ws *[]watch) {
	for _, w := range *ws {
		c.ready.Wakes = append(c.ready.Wakes, w.token)
	}
	clear(*ws)
	*ws = (*ws)[:0]
}

func (c *Core) partitionChanged(m PartitionChanged) {
	if m.LeaderEpoch != c.leaderEpoch || m.PartitionEpoch < c.partitionEpoch {
		return // another leadership's news, or stale
	}
	if m.PartitionEpoch == c.partitionEpoch && c.pendingISR != nil {
		// Nothing new, and applying it would forget the change in flight.
		return
	}
	c.partitionEpoch = m.PartitionEpoch
	c.replicas = slices.Clone(m.Replicas)
	if c.role != roleLeader {
		return
	}
	c.isr = slices.Clone(m.ISR)
	c.pendingISR, c.alterStalled, c.alterRetryAtMs = nil, false, 0
	// Follow reassignments: keep the state of replicas that stay; new ones
	// are unknown and out of sync until they fetch.
	kept := make([]replicaState, 0, len(m.Replicas))
	for _, id := range m.Replicas {
		if id == c.localID {
			continue
		}
		if i := indexReplica(c.followers, id); i >= 0 {
			kept = append(kept, c.followers[i])
		} else {
			kept = append(kept, replicaState{id: id, leo: -1, lastFetchLeaderLEO: -1})
		}
	}
	c.followers = kept
	c.settle()
}

func indexReplica(rs []replicaState, id int32) int {
	for i := range rs {
		if rs[i].id == id {
			return i
		}
	}
	return -1
}

// maximalISRSize counts the maximal ISR (KIP-497): the committed ISR plus
// any member a pending change adds. A pending removal still counts until
// the controller commits it.
func (c *Core) maximalISRSize() int {
	n := len(c.isr)
	for _, id := range c.pendingISR {
		if !slices.Contains(c.isr, id) {
			n++
		}
	}
	return n
}

func (c *Core) inMaximalISR(id int32) bool {
	return slices.Contains(c.isr, id) || slices.Contains(c.pendingISR, id)
}

// isrHW is the high watermark the ISR allows: the least replicated end
// over the maximal ISR, the leader's own included. A member that has not
// fetched yet (leo -1) holds it where it is.
func (c *Core) isrHW() int64 {
	hw := c.replicatedEnd()
	if mutation.On(mutation.HWBeforeISR) {
		// Broken on purpose (sim mutation check): the leader's own end,
		// whatever the followers have. The unbroken loop below keeps the
		// invariant of raiseHW — the high watermark is at most every
		// maximal-ISR member's reported end — so that an acks=-1 produce
		// is answered, and a record shown to consumers, only once every
		// ISR member has it.
		return hw
	}
	for i := range c.followers {
		f := &c.followers[i]
		if f.leo < hw && c.inMaximalISR(f.id) {
			hw = f.leo
		}
	}
	return hw
}

// caughtUp is Kafka's ReplicaState.isCaughtUp.
func (c *Core) caughtUp(f *replicaState, nowMs int64) bool {
	return f.leo == c.logEnd || nowMs-f.lastCaughtUpMs <= c.settings.lagTimeMaxMs()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for epoch as a Kafka
// leader does, given what the log's history says of it (lookup, see
// EpochLookup). Kafka's leader has its current epoch in its epoch cache,
// starting at its first offset, from the moment it leads; the log gains
// that entry only with the epoch's first append, so until then the core
// adds it. Followers answer from the log alone.
func (c *Core) EndOffsetForEpoch(epoch int32, lookup EpochLookup) EpochEndOffset {
	asIs := EpochEndOffset{Epoch: lookup.Epoch, EndOffset: lookup.EndOffset}
	// Once the leader has appended in its epoch the log's history holds
	// it (the first append of an epoch starts its entry, and a leader's
	// log only grows), so the log's answer is Kafka's. Until then the log
	// ends at epochStart, where the missing entry would start.
	if c.role != roleLeader || epoch < 0 || c.logEnd > c.epochStart {
		return asIs
	}
	switch {
	case epoch == c.leaderEpoch:
		return EpochEndOffset{Epoch: epoch, EndOffset: c.logEnd}
	case epoch > c.leaderEpoch:
		return EpochEndOffset{Epoch: -1, EndOffset: -1}
	case lookup.Epoch >= 0:
		// Bounded by an entry inside the log, or by the log's end, which
		// is where the current epoch starts: the log's answer stands.
		return asIs
	case lookup.LatestEpoch < 0:
		// No history: epoch lies below the only entry, the current one.
		return EpochEndOffset{Epoch: epoch, EndOffset: c.epochStart}
	default:
		// Above the log's latest epoch, below the current one.
		return EpochEndOffset{Epoch: lookup.LatestEpoch, EndOffset: c.epochStart}
	}
}

func (c *Core) replicaFetch(m ReplicaFetch) {
	r := Read{Token: m.Token, Offset: m.FetchOffset, MaxBytes: m.MaxBytes, Limit: c.logEnd,
		HighWatermark: c.hw, LastStableOffset: c.hw, LogStartOffset: c.logStart}
	fail := func(code int16) {
		r.ErrorCode = code
		c.ready.Reads = append(c.ready.Reads, r)
	}
	// Kafka's order: the fetcher's epoch, then leadership, then who asks.
	switch {
	case m.CurrentLeaderEpoch >= 0 && m.CurrentLeaderEpoch < c.leaderEpoch:
		fail(kerr.FencedLeaderEpoch.Code)
		return
	case m.CurrentLeaderEpoch > c.leaderEpoch:
		fail(kerr.UnknownLeaderEpoch.Code)
		return
	case c.role != roleLeader:
		fail(kerr.NotLeaderForPartition.Code)
		return
	case c.failed:
		fail(kerr.KafkaStorageError.Code)
		return
	}
	f := (*replicaState)(nil)
	if i := indexReplica(c.followers, m.ReplicaID); i >= 0 {
		f = &c.followers[i]
	}
	if f == nil {
		// Kafka: a fetch from a replica not assigned here.
		fail(kerr.NotLeaderForPartition.Code)
		return
	}
	if m.LastFetchedEpoch >= 0 {
		// KIP-320: has the follower's log left ours at its last epoch?
		// Then it gets the point to truncate to instead of data, and its
		// offset does not count.
		e := c.EndOffsetForEpoch(m.LastFetchedEpoch, m.Lookup)
		if e.Epoch < 0 || e.EndOffset < 0 {
			fail(kerr.OffsetOutOfRange.Code)
			return
		}
		if e.Epoch < m.LastFetchedEpoch || e.EndOffset < m.FetchOffset {
			r.Diverging = &e
			r.Limit = m.FetchOffset
			c.ready.Reads = append(c.ready.Reads, r)
			return
		}
	}
	if m.FetchOffset < c.logStart || m.FetchOffset > c.logEnd {
		fail(kerr.OffsetOutOfRange.Code)
		return
	}
	c.updateFetchState(f, m.FetchOffset, m.NowMs)
	c.maybeExpandISR(f)
	c.settle()
	r.HighWatermark, r.LastStableOffset, r.LogStartOffset = c.hw, c.hw, c.logStart
	c.ready.Reads = append(c.ready.Reads, r)
}

// updateFetchState is Kafka's Replica.updateFetchState: a fetch at or
// past the leader's log end means caught up now; a fetch at or past what
// the leader had at the follower's previous fetch means it was caught up
// as of that previous fetch.
func (c *Core) updateFetchState(f *replicaState, fetchOffset, nowMs int64) {
	switch {
	case fetchOffset >= c.logEnd:
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, nowMs)
	case fetchOffset >= f.lastFetchLeaderLEO:
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
	}
	f.leo = fetchOffset
	f.lastFetchLeaderLEO = max(c.logEnd, f.lastFetchLeaderLEO)
	f.lastFetchMs = nowMs
}

// maybeExpandISR proposes adding f to the ISR once it has everything
// committed and has reached this leader's epoch (Kafka's
// isFollowerInSync), unless a change is already in flight.
func (c *Core) maybeExpandISR(f *replicaState) {
	if c.pendingISR != nil || slices.Contains(c.isr, f.id) {
		return
	}
	if f.leo < c.hw || f.leo < c.epochStart {
		return
	}
	c.proposeISR(append(slices.Clone(c.isr), f.id))
}

// maybeShrinkISR proposes dropping the ISR members that have not caught
// up within replica.lag.time.max.ms (Kafka's maybeShrinkIsr), unless a
// change is already in flight. It looks at the committed ISR.
func (c *Core) maybeShrinkISR(nowMs int64) {
	if c.pendingISR != nil {
		return
	}
	var keep []int32
	for i, id := range c.isr {
		j := indexReplica(c.followers, id)
		if id == c.localID || j < 0 || c.caughtUp(&c.followers[j], nowMs) {
			if keep != nil {
				keep = append(keep, id)
			}
			continue
		}
		if keep == nil {
			keep = append(make([]int32, 0, len(c.isr)), c.isr[:i]...)
		}
	}
	if keep != nil {
		c.proposeISR(keep)
	}
}

func (c *Core) proposeISR(isr []int32) {
	c.alterSeq++
	c.pendingISR, c.pendingSeq, c.alterStalled, c.alterRetryAtMs = isr, c.alterSeq, false, 0
	c.emitAlterISR()
}

func (c *Core) emitAlterISR() {
	c.ready.AlterISR = &AlterISR{Seq: c.pendingSeq, LeaderEpoch: c.leaderEpoch, PartitionEpoch: c.partitionEpoch, ISR: slices.Clone(c.pendingISR)}
}

func (c *Core) maybeRetryAlterISR(nowMs int64) {
	if c.pendingISR != nil && !c.alterStalled && c.alterRetryAtMs > 0 && nowMs >= c.alterRetryAtMs {
		c.alterRetryAtMs = 0
		c.emitAlterISR()
	}
}

// alterISRResult settles the pending ISR change as Kafka's leader does
// (Partition.handleAlterPartitionUpdate / handleAlterPartitionError).
func (c *Core) alterISRResult(m AlterISRResult) {
	if c.role != roleLeader || c.pendingISR == nil || m.Seq != c.pendingSeq {
		// Nothing asked, or an answer to an older change (overtaken by a
		// metadata update): applying it could drop a newer change the
		// controller may yet commit from the maximal ISR.
		return
	}
	switch m.ErrorCode {
	case 0:
		if m.LeaderEpoch != c.leaderEpoch || m.PartitionEpoch < c.partitionEpoch {
			// An answer about another state of the partition: keep the
			// change pending (its members keep counting in the maximal
			// ISR) until the metadata update tells what happened.
			c.alterStalled = true
			return
		}
		c.isr, c.partitionEpoch = slices.Clone(m.ISR), m.PartitionEpoch
		c.pendingISR, c.alterStalled, c.alterRetryAtMs = nil, false, 0
		c.settle()
	case kerr.OperationNotAttempted.Code, kerr.IneligibleReplica.Code:
		// The controller says the change was not applied and our epochs
		// are current: back to the committed ISR, free to propose again.
		c.pendingISR, c.alterStalled, c.alterRetryAtMs = nil, false, 0
		c.settle()
	case kerr.FencedLeaderEpoch.Code, kerr.InvalidUpdateVersion.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.InvalidRequest.Code, kerr.NewLeaderElected.Code:
		// Our epochs are stale and an earlier try may have been applied:
		// give the change up but keep counting it (conservatively) until
		// the metadata update brings the truth. Nothing else is proposed
		// meanwhile, so a stale leader cannot change the ISR.
		c.alterStalled = true
	default:
		// Retriable (the controller moved, a timeout): resend later.
		c.alterRetryAtMs = m.NowMs + alterISRRetryBackoffMs
	}
}

// nextISRCheckMs is when a Tick next has ISR work: a retry due, or the
// first moment an ISR member is out of sync (-1: none).
func (c *Core) nextISRCheckMs() int64 {
	if c.role != roleLeader || c.pendingISR != nil && (c.alterStalled || c.alterRetryAtMs == 0) {
		return -1
	}
	if c.pendingISR != nil {
		return c.alterRetryAtMs
	}
	next := int64(-1)
	lag := c.settings.lagTimeMaxMs()
	for _, id := range c.isr {
		j := indexReplica(c.followers, id)
		if id == c.localID || j < 0 || c.followers[j].leo == c.logEnd {
			continue
		}
		if t := c.followers[j].lastCaughtUpMs + lag + 1; next < 0 || t < next {
			next = t
		}
	}
	return next
}

func (c *Core) replicaWatch(m ReplicaWatch) {
	if c.role != roleLeader || c.logEnd > m.Offset || m.Offset < c.logStart || c.failed {
		c.ready.Wakes = append(c.ready.Wakes, m.Token)
		return
	}
	c.replicaWatches = c.park(c.replicaWatches, maxReplicaWatches, watch{token: m.Token, offset: m.Offset, deadlineMs: m.DeadlineMs})
}

// wakeReplicaWatches wakes the parked follower fetches that now have data
// to read.
func (c *Core) wakeReplicaWatches() {
	if len(c.replicaWatches) == 0 {
		return
	}
	kept := c.replicaWatches[:0]
	for _, w := range c.replicaWatches {
		if c.logEnd > w.offset {
			c.ready.Wakes = append(c.ready.Wakes, w.token)
			continue
		}
		kept = append(kept, w)
	}
	clear(c.replicaWatches[len(kept):])
	c.replicaWatches = kept
}
