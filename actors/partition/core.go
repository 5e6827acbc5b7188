package partition

import (
	"slices"

	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Settings are the topic configs that shape a partition's behaviour.
type Settings struct {
	// AckAfterSync acknowledges produces and exposes records only after
	// fsync (the default durability stance). When false, records are
	// visible and acknowledged once written, and fsyncs follow
	// FlushMessages / FlushMs.
	AckAfterSync bool
	// FlushMessages requests an fsync once this many messages are
	// unflushed (0 = no count trigger). Only used without AckAfterSync.
	FlushMessages int64
	// FlushMs requests an fsync when the oldest unflushed write is this
	// old (0 = no time trigger). Only used without AckAfterSync.
	FlushMs int64
	// LogAppendTime stamps batches with the broker's time
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// RetentionCheckMs is how often retention runs (0 = never).
	RetentionCheckMs int64
	// ProducerExpirationMs forgets an idempotent producer that has not
	// written for this long (Kafka's producer.id.expiration.ms; 0 =
	// never), which bounds the producer table.
	ProducerExpirationMs int64
	// SnapshotIntervalMs is how often, at most, the producer table is
	// snapshotted (0 = never), bounding what a restart replays.
	SnapshotIntervalMs int64
	// MinInsyncReplicas is min.insync.replicas: an acks=-1 produce is
	// refused (NOT_ENOUGH_REPLICAS) while the ISR is smaller. 0 and 1
	// both mean the leader alone suffices.
	MinInsyncReplicas int32
	// ReplicaLagTimeMaxMs is replica.lag.time.max.ms: a follower that has
	// not caught up for this long leaves the ISR. 0 means Kafka's default,
	// 30000.
	ReplicaLagTimeMaxMs int64
}

// defaultReplicaLagTimeMaxMs is Kafka's replica.lag.time.max.ms default.
const defaultReplicaLagTimeMaxMs = 30_000

func (s *Settings) lagTimeMaxMs() int64 {
	if s.ReplicaLagTimeMaxMs > 0 {
		return s.ReplicaLagTimeMaxMs
	}
	return defaultReplicaLagTimeMaxMs
}

// maxWatches bounds parked fetch wake-ups per partition. Past it the
// oldest watch is woken early; a spurious wake only makes a fetch look
// again.
const maxWatches = 4096

// maxReplicaWatches bounds parked replica fetches. A partition has a
// handful of followers, each with one fetch parked at a time; past the
// bound the oldest is woken early, which only makes it fetch again.
const maxReplicaWatches = 256

// maxProducerBatches is Kafka's window of remembered batches per producer,
// matching max.in.flight.requests.per.connection=5 for idempotence.
const maxProducerBatches = 5

// Core is one partition replica's state machine. See the package doc.
type Core struct {
	settings    Settings
	leaderEpoch int32

	// Replication (see replication.go and follower.go). A core is a
	// leader or a follower; New makes the single-replica leader
	// (replicas = isr = [localID]).
	localID        int32
	role           role
	leader         int32 // the leader's broker id, -1 when unknown
	partitionEpoch int32
	replicas       []int32
	// isr is the committed ISR (what the controller last confirmed).
	isr []int32
	// epochStart is the log end when this core became leader: the first
	// offset of its epoch.
	epochStart int64
	// followers are the leader's view of the other replicas, in replica
	// order.
	followers []replicaState
	// pendingISR is an ISR change sent to the controller and not yet
	// settled (nil when none). While it is set no other change is
	// proposed, and the maximal ISR (isr ∪ pendingISR) bounds the high
	// watermark (KIP-497).
	pendingISR []int32
	// pendingSeq identifies pendingISR (see AlterISR.Seq); alterSeq
	// counts proposals.
	pendingSeq, alterSeq uint64
	// alterStalled: the controller refused pendingISR in a way only a
	// metadata update resolves (stale epochs); wait for PartitionChanged.
	alterStalled bool
	// alterRetryAtMs, when positive, is when to resend pendingISR after
	// a retriable error.
	alterRetryAtMs int64
	// leaderHW is the highest high watermark a follower has heard from
	// its leaders.
	leaderHW int64
	// fetchOffsetSent is the follower fetch offset last reported in
	// Ready.FollowerFetchOffset (or set by a role change or truncation).
	fetchOffsetSent int64
	// syncCap, when >= 0, caps the DurableEnd of the fsync that was in
	// flight when the log was truncated: it may report an end that no
	// longer exists.
	syncCap int64

	logStart   int64
	logEnd     int64
	durableEnd int64
	hw         int64

	// failed is set after a storage error that may have lost data; the
	// partition then refuses writes until it is reopened.
	failed bool

	syncInFlight      bool
	unflushed         int64 // messages written since the last fsync started (relaxed mode)
	oldestUnflushedMs int64
	nextRetentionMs   int64

	// minWatchDeadline is at most the earliest deadline of c.watches and
	// c.replicaWatches (-1 when there are none); it may be stale-early,
	// never late.
	minWatchDeadline int64
	// minPendingDeadline is likewise at most the earliest DeadlineMs of
	// c.pending (-1 when none).
	minPendingDeadline int64

	producers map[int64]*producerState
	// snapshotEnd is the log end covered by the last producer snapshot;
	// nextSnapshotMs is the earliest time for the next one.
	snapshotEnd    int64
	nextSnapshotMs int64
	pending        []pendingAck
	// pendingHW and pendingDurable are the high watermark and durable
	// end c.pending was last checked against: nothing waiting can
	// complete until one of them rises, so a produce does not rescan.
	pendingHW, pendingDurable int64
	watches                   []watch
	replicaWatches            []watch

	ready Ready
}

type producerState struct {
	epoch   int16
	batches []seqBatch // oldest first, at most maxProducerBatches
	// lastMs is when the producer last wrote (the broker's clock; for
	// state rebuilt from the log, the batch's timestamp).
	lastMs int64
}

type seqBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// pendingAck is a produce reply held until its records are safe enough:
// acks=1 until the leader's own storage has them (durableEnd >= end),
// acks=-1 until the high watermark passes them (every ISR member has
// them).
type pendingAck struct {
	end        int64
	all        bool  // acks=-1
	deadlineMs int64 // acks=-1 only; 0 = none
	reply      ProduceReply
}

type watch struct {
	token      any
	offset     int64
	deadlineMs int64
}

// New returns the core of a freshly opened single-replica partition: the
// leader of leaderEpoch with replicas = ISR = [0], this broker. The host
// follows it with Recovered before any other input.
func New(s Settings, leaderEpoch int32) *Core {
	c := NewReplica(s, 0)
	c.role, c.leader, c.leaderEpoch = roleLeader, 0, leaderEpoch
	c.replicas, c.isr = []int32{0}, []int32{0}
	return c
}

// NewReplica returns the core of a replica, on broker localID, of a
// replicated partition. It starts as a follower with no known leader
// (produces and fetches are answered NOT_LEADER_OR_FOLLOWER); the host
// follows it with Recovered and then BecomeLeader or BecomeFollower.
func NewReplica(s Settings, localID int32) *Core {
	return &Core{
		settings: s, localID: localID, role: roleFollower, leader: -1, leaderEpoch: -1,
		producers: map[int64]*producerState{}, minWatchDeadline: -1, minPendingDeadline: -1, syncCap: -1,
	}
}

// Ready returns and clears what the core decided since the last call. The
// host must carry out Appends in order before anything else, then the
// rest in any order.
func (c *Core) Ready() Ready {
	r := c.ready
	c.ready = Ready{}
	return r
}

// HighWatermark, LogStart and LogEnd expose the offsets, for the host's
// metrics and tests.
func (c *Core) HighWatermark() int64 { return c.hw }
func (c *Core) LogStart() int64      { return c.logStart }
func (c *Core) LogEnd() int64        { return c.logEnd }

// DurableEnd is the end of what storage has fsynced.
func (c *Core) DurableEnd() int64 { return c.durableEnd }

// Step feeds one input to the core.
func (c *Core) Step(m Msg) {
	c.step(m)
	c.noteFetchOffset()
}

func (c *Core) step(m Msg) {
	switch m := m.(type) {
	case Recovered:
		c.recovered(m)
	case Configure:
		c.settings = m.Settings
		c.settle()
	case Produce:
		c.produce(m)
	case AppendFailed:
		c.appendFailed(m)
	case Synced:
		c.synced(m)
	case Fetch:
		c.fetch(m)
	case Watch:
		c.watch(m)
	case ListOffsets:
		c.listOffsets(m)
	case DeleteRecords:
		c.deleteRecords(m)
	case LogStartMoved:
		if m.LogStart > c.logStart {
			c.logStart = m.LogStart
			if c.hw < c.logStart {
				c.hw = c.logStart
			}
		}
	case Tick:
		c.tick(m)
	case BecomeLeader:
		c.becomeLeader(m)
	case BecomeFollower:
		c.becomeFollower(m)
	case PartitionChanged:
		c.partitionChanged(m)
	case AlterISRResult:
		c.alterISRResult(m)
	case ReplicaFetch:
		c.replicaFetch(m)
	case ReplicaWatch:
		c.replicaWatch(m)
	case FollowerAppend:
		c.followerAppend(m)
	case TruncateTo:
		c.truncateTo(m.Offset)
	case TruncateFully:
		c.truncateFully(m.Offset)
	}
}

func (c *Core) recovered(m Recovered) {
	c.logStart, c.logEnd = m.LogStart, m.LogEnd
	// Storage recovery leaves everything it found durable.
	c.durableEnd, c.hw = m.LogEnd, m.LogEnd
	if !c.singleReplica() {
		// Without a quorum's word the tail may be uncommitted.
		c.hw = min(max(m.HighWatermark, m.LogStart), m.LogEnd)
	}
	c.leaderHW = c.hw
	c.epochStart = m.LogEnd
	c.fetchOffsetSent = c.fetchOffset()
	c.producers = map[int64]*producerState{}
	for _, b := range m.ProducerBatches {
		// A snapshot may remember batches a crash took back.
		if b.ProducerID < 0 || b.LastOffset >= m.LogEnd {
			continue
		}
		st := c.producers[b.ProducerID]
		if st == nil || b.ProducerEpoch > st.epoch {
			st = &producerState{epoch: b.ProducerEpoch}
			c.producers[b.ProducerID] = st
		} else if b.ProducerEpoch < st.epoch {
			continue
		}
		st.remember(seqBatch{
			firstSeq: b.BaseSequence, lastSeq: addSeq(b.BaseSequence, int32(b.LastOffset-b.BaseOffset)),
			firstOffset: b.BaseOffset, lastOffset: b.LastOffset,
		})
		st.lastMs = max(st.lastMs, b.TimestampMs)
	}
	c.nextRetentionMs = m.NowMs + c.settings.RetentionCheckMs
	c.snapshotEnd = m.SnapshotEnd
	c.nextSnapshotMs = m.NowMs + c.settings.SnapshotIntervalMs
}

func (st *producerState) remember(b seqBatch) {
	if len(st.batches) == maxProducerBatches {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:maxProducerBatches-1]
	}
	st.batches = append(st.batches, b)
}

// addSeq adds to a sequence number, wrapping from MaxInt32 to 0 as Kafka
// sequences do.
func addSeq(seq, n int32) int32 {
	s := int64(seq) + int64(n)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

func (c *Core) produceError(m Produce, code int16, msg string) {
	if m.Acks == 0 {
		return
	}
	c.ready.Replies = append(c.ready.Replies, ProduceReply{Token: m.Token, Result: ProduceResult{
		ErrorCode: code, ErrorMessage: msg, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart,
	}})
}

func (c *Core) produce(m Produce) {
	if c.role != roleLeader {
		c.produceError(m, kerr.NotLeaderForPartition.Code, "this replica is not the partition's leader")
		return
	}
	if c.failed {
		c.produceError(m, kerr.KafkaStorageError.Code, "partition is offline after a storage error")
		return
	}
	// Like Kafka, refuse before appending (and before dedupe) when the
	// committed ISR is too small to honour acks=-1.
	if m.Acks == -1 && int32(len(c.isr)) < c.settings.MinInsyncReplicas {
		c.produceError(m, kerr.NotEnoughReplicas.Code, "the ISR is smaller than min.insync.replicas")
		return
	}
	s := m.Summary
	var st *producerState
	if s.ProducerID >= 0 && s.BaseSequence >= 0 {
		st = c.producers[s.ProducerID]
		switch {
		case st != nil && s.ProducerEpoch < st.epoch:
			c.produceError(m, kerr.InvalidProducerEpoch.Code, "producer epoch is older than the current one")
			return
		case st != nil && s.ProducerEpoch > st.epoch:
			if s.BaseSequence != 0 {
				c.produceError(m, kerr.OutOfOrderSequenceNumber.Code, "a new producer epoch must start at sequence 0")
				return
			}
			st = &producerState{epoch: s.ProducerEpoch}
		case st != nil:
			if dup, ok := st.find(s.BaseSequence, s.LastSequence); ok {
				c.answerDuplicate(m, dup)
				return
			}
			// An empty window means truncation took every remembered
			// batch: the next sequence is unknown, so any is accepted (as
			// Kafka does for a producer whose records are gone).
			if n := len(st.batches); n > 0 && s.BaseSequence != addSeq(st.batches[n-1].lastSeq, 1) {
				c.produceError(m, kerr.OutOfOrderSequenceNumber.Code, "sequence number is not the next expected one")
				return
			}
		default:
			if s.BaseSequence != 0 {
				c.produceError(m, kerr.OutOfOrderSequenceNumber.Code, "unknown producer must start at sequence 0")
				return
			}
			st = &producerState{epoch: s.ProducerEpoch}
		}
	}

	base := c.logEnd
	last := batch.AssignOffsets(m.Records, base)
	// Like Kafka's leader, stamp the epoch under which the batch was
	// appended; consumers check their position against it (KIP-320), and
	// replicas will truncate by it. Outside the CRC, like the offsets.
	batch.SetPartitionLeaderEpoch(m.Records, c.leaderEpoch)
	appendTime := int64(-1)
	if c.settings.LogAppendTime {
		// message.timestamp.type=LogAppendTime: the broker's clock, carried
		// in by the host, becomes every record's timestamp.
		appendTime = m.NowMs
		batch.SetLogAppendTime(m.Records, appendTime)
	}
	c.ready.Appends = append(c.ready.Appends, Append{
		Records: m.Records, BaseOffset: base, LastOffset: last, NowMs: m.NowMs, LogAppendTime: appendTime,
	})
	c.logEnd = last + 1
	if st != nil {
		st.remember(seqBatch{firstSeq: s.BaseSequence, lastSeq: s.LastSequence, firstOffset: base, lastOffset: last})
		st.lastMs = m.NowMs
		c.producers[s.ProducerID] = st
	}
	c.wakeReplicaWatches()

	reply := ProduceReply{Token: m.Token, Result: ProduceResult{BaseOffset: base, LogAppendTime: appendTime, LogStartOffset: c.logStart}}
	switch {
	case m.Acks == -1:
		// Every ISR member must have it: wait for the high watermark.
		c.hold(pendingAck{end: c.logEnd, all: true, deadlineMs: m.DeadlineMs, reply: reply})
	case m.Acks != 0 && c.settings.AckAfterSync:
		c.hold(pendingAck{end: c.logEnd, reply: reply})
	case m.Acks != 0:
		// Relaxed flush: acknowledged once written.
		c.ready.Replies = append(c.ready.Replies, reply)
	}
	c.wrote(s.NumRecords, m.NowMs)
	c.settle()
}

// hold parks a produce reply until completePending releases it. A reply
// already due (its end at or below the high watermark or durable end it
// waits for) is released by the next check, not missed: see
// completePending.
func (c *Core) hold(p pendingAck) {
	if p.all && p.end <= c.hw || !p.all && p.end <= c.durableEnd {
		c.recheckPending()
	}
	if !p.all {
		p.deadlineMs = 0
	}
	if p.deadlineMs > 0 && (c.minPendingDeadline < 0 || p.deadlineMs < c.minPendingDeadline) {
		c.minPendingDeadline = p.deadlineMs
	}
	c.pending = append(c.pending, p)
}

// wrote accounts for records just appended: under AckAfterSync they need
// an fsync now; otherwise flush.messages / flush.ms decide.
func (c *Core) wrote(numRecords, nowMs int64) {
	if c.settings.AckAfterSync {
		c.requestSync()
		if mutation.On(mutation.AckBeforeFsync) {
			// Broken on purpose (sim mutation check): count what was
			// appended as durable now. The unbroken core raises durableEnd
			// only in synced, to what storage says it fsynced, so acks
			// (acks=1 here, acks=-1 through the leader's own term of the
			// high watermark) and a follower's fetch offset never run
			// ahead of the disk. As a side effect no follow-up fsync is
			// asked for writes that arrive while one runs: the next write
			// does.
			c.durableEnd = c.logEnd
		}
		return
	}
	if c.unflushed == 0 {
		c.oldestUnflushedMs = nowMs
	}
	c.unflushed += numRecords
	if c.settings.FlushMessages > 0 && c.unflushed >= c.settings.FlushMessages {
		c.requestSync()
	}
}

func (st *producerState) find(first, last int32) (seqBatch, bool) {
	for _, b := range st.batches {
		if b.firstSeq == first && b.lastSeq == last {
			return b, true
		}
	}
	return seqBatch{}, false
}

// answerDuplicate answers a retried batch with its original offsets, once
// the original is as safe as the retry's acks ask.
func (c *Core) answerDuplicate(m Produce, dup seqBatch) {
	if m.Acks == 0 {
		return
	}
	r := ProduceReply{Token: m.Token, Result: ProduceResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, LogStartOffset: c.logStart}}
	switch {
	case m.Acks == -1 && dup.lastOffset >= c.hw:
		c.hold(pendingAck{end: dup.lastOffset + 1, all: true, deadlineMs: m.DeadlineMs, reply: r})
	case m.Acks != -1 && c.settings.AckAfterSync && dup.lastOffset >= c.durableEnd:
		c.hold(pendingAck{end: dup.lastOffset + 1, reply: r})
	default:
		c.ready.Replies = append(c.ready.Replies, r)
	}
}

func (c *Core) requestSync() {
	if c.syncInFlight || c.durableEnd >= c.logEnd {
		return
	}
	c.syncInFlight = true
	c.ready.Sync = true
	// The fsync covers everything written so far; flush.messages and
	// flush.ms count afresh from here.
	c.unflushed = 0
}

func (c *Core) appendFailed(m AppendFailed) {
	// Storage cut the failed write back, so the log ends at m.Offset. Every
	// produce at or after it failed; forget their producer state too.
	c.logEnd = m.Offset
	c.fetchOffsetSent = min(c.fetchOffsetSent, c.fetchOffset())
	c.failPendingFrom(m.Offset, kerr.KafkaStorageError.Code, m.Err)
	c.forgetProducerBatchesFrom(m.Offset, false)
	if c.hw > c.logEnd {
		c.hw = c.logEnd
	}
	c.recheckPending()
}

// failPendingFrom answers every waiting produce whose records end past
// offset with code: storage no longer has them.
func (c *Core) failPendingFrom(offset int64, code int16, msg string) {
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.end > offset {
			p.reply.Result = ProduceResult{ErrorCode: code, ErrorMessage: msg, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
			continue
		}
		kept = append(kept, p)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
}

// forgetProducerBatchesFrom drops the remembered batches at or past
// offset. A producer left with none is deleted, or, with keepEmpty, kept
// with its epoch and an unknown next sequence (see produce): after a
// follower's truncation that is better than forgetting it, since its
// older batches, which a rebuild from the log would find, are no longer
// in the window.
func (c *Core) forgetProducerBatchesFrom(offset int64, keepEmpty bool) {
	for id, st := range c.producers {
		n := 0
		for _, b := range st.batches {
			if b.lastOffset < offset {
				st.batches[n] = b
				n++
			}
		}
		st.batches = st.batches[:n]
		if n == 0 && !keepEmpty {
			delete(c.producers, id)
		}
	}
}

func (c *Core) synced(m Synced) {
	c.syncInFlight = false
	end := m.DurableEnd
	if c.syncCap >= 0 {
		// This fsync was in flight across a truncation: what it covered
		// past the cut is gone.
		end, c.syncCap = min(end, c.syncCap), -1
	}
	if m.Err != "" {
		// An fsync error may have dropped written pages; nothing after the
		// last durable offset can be trusted or acknowledged.
		c.failed = true
		for _, p := range c.pending {
			p.reply.Result = ProduceResult{ErrorCode: kerr.KafkaStorageError.Code, ErrorMessage: "fsync failed: " + m.Err, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
		}
		clear(c.pending)
		c.pending = c.pending[:0]
		return
	}
	if end > c.durableEnd {
		c.durableEnd = min(end, c.logEnd)
	}
	if c.durableEnd >= c.logEnd {
		c.unflushed = 0
	}
	c.settle()
	if c.settings.AckAfterSync && c.durableEnd < c.logEnd {
		// Writes arrived while this fsync ran: one more covers them all.
		c.requestSync()
	}
}

// replicatedEnd is how far this replica counts as having the log: its
// durable end under AckAfterSync (a replica reports only what it has
// fsynced), its log end otherwise. It is the leader's own term in the
// high watermark and a follower's fetch offset.
func (c *Core) replicatedEnd() int64 {
	if c.settings.AckAfterSync {
		return c.durableEnd
	}
	return c.logEnd
}

// settle brings the high watermark up to what is safe and answers the
// produces that now are. A leader's is what its ISR has; a follower's is
// its leader's, as far as its own replicated end reaches (so a follower
// that becomes leader never shows consumers what a crash could take from
// it).
func (c *Core) settle() {
	if c.role == roleLeader {
		c.raiseHW(c.isrHW())
	} else {
		c.raiseHW(min(c.leaderHW, c.replicatedEnd()))
	}
	c.completePending()
}

// completePending answers the waiting produces whose condition holds:
// acks=1 once durable here, acks=-1 once below the high watermark — then
// with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR shrank below
// min.insync.replicas meanwhile, as Kafka answers.
// recheckPending makes the next completePending look at every waiting
// produce: after the high watermark or durable end came down, or for a
// produce already due.
func (c *Core) recheckPending() { c.pendingHW, c.pendingDurable = -1, -1 }

func (c *Core) completePending() {
	if len(c.pending) == 0 || c.hw <= c.pendingHW && c.durableEnd <= c.pendingDurable {
		return
	}
	c.pendingHW, c.pendingDurable = c.hw, c.durableEnd
	underMinISR := c.maximalISRSize() < int(c.settings.MinInsyncReplicas)
	kept := c.pending[:0]
	for _, p := range c.pending {
		switch {
		case p.all && p.end <= c.hw && underMinISR:
			p.reply.Result = ProduceResult{ErrorCode: kerr.NotEnoughReplicasAfterAppend.Code,
				ErrorMessage: "written, but the ISR shrank below min.insync.replicas", BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
		case p.all && p.end <= c.hw, !p.all && p.end <= c.durableEnd:
			c.ready.Replies = append(c.ready.Replies, p.reply)
		default:
			kept = append(kept, p)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
}

// raiseHW moves the high watermark up to hw (never down: consumers may
// have seen it) and wakes the watches it satisfies.
//
// Invariant: logStart <= c.hw <= c.logEnd, and for a leader c.hw is at
// most every maximal-ISR member's replicated end as last reported.
func (c *Core) raiseHW(hw int64) {
	hw = min(hw, c.logEnd)
	if hw <= c.hw {
		return
	}
	c.hw = hw
	kept := c.watches[:0]
	for _, w := range c.watches {
		if c.hw > w.offset {
			c.ready.Wakes = append(c.ready.Wakes, w.token)
			continue
		}
		kept = append(kept, w)
	}
	clear(c.watches[len(kept):])
	c.watches = kept
}

func (c *Core) fetch(m Fetch) {
	r := Read{Token: m.Token, Offset: m.Offset, MaxBytes: m.MaxBytes, Limit: c.hw,
		HighWatermark: c.hw, LastStableOffset: c.hw, LogStartOffset: c.logStart}
	switch {
	case c.role != roleLeader:
		// Consumers read from the leader only (no KIP-392).
		r.ErrorCode = kerr.NotLeaderForPartition.Code
	case m.Offset < c.logStart || m.Offset > c.logEnd:
		r.ErrorCode = kerr.OffsetOutOfRange.Code
	}
	c.ready.Reads = append(c.ready.Reads, r)
}

func (c *Core) watch(m Watch) {
	if c.hw > m.Offset || m.Offset < c.logStart || c.failed || c.role != roleLeader {
		c.ready.Wakes = append(c.ready.Wakes, m.Token)
		return
	}
	c.watches = c.park(c.watches, maxWatches, watch{token: m.Token, offset: m.Offset, deadlineMs: m.DeadlineMs})
}

// park adds w to ws, waking the oldest first when ws is full.
func (c *Core) park(ws []watch, bound int, w watch) []watch {
	if len(ws) >= bound {
		c.ready.Wakes = append(c.ready.Wakes, ws[0].token)
		copy(ws, ws[1:])
		ws[len(ws)-1] = watch{}
		ws = ws[:len(ws)-1]
	}
	if c.minWatchDeadline < 0 || w.deadlineMs < c.minWatchDeadline {
		c.minWatchDeadline = w.deadlineMs
	}
	return append(ws, w)
}

func (c *Core) listOffsets(m ListOffsets) {
	l := Lookup{Token: m.Token, Timestamp: m.Timestamp, Limit: c.hw, LeaderEpoch: c.leaderEpoch}
	if c.role != roleLeader {
		l.Resolved, l.Offset, l.ErrorCode = true, -1, kerr.NotLeaderForPartition.Code
		c.ready.Lookups = append(c.ready.Lookups, l)
		return
	}
	switch m.Timestamp {
	case -2: // earliest
		l.Resolved, l.Offset = true, c.logStart
	case -1: // latest: the high watermark (no transactions, so also the LSO)
		l.Resolved, l.Offset = true, c.hw
	}
	c.ready.Lookups = append(c.ready.Lookups, l)
}

func (c *Core) deleteRecords(m DeleteRecords) {
	off := m.Offset
	if off == -1 {
		off = c.hw
	}
	d := DeleteBefore{Token: m.Token, Offset: off}
	switch {
	case c.role != roleLeader:
		d.ErrorCode = kerr.NotLeaderForPartition.Code
		d.Offset = c.logStart
	case off < 0 || off > c.hw:
		d.ErrorCode = kerr.OffsetOutOfRange.Code
		d.Offset = c.logStart
	case off <= c.logStart:
		d.Offset = c.logStart
		d.NoOp = true
	default:
		c.logStart = off
	}
	c.ready.Deletes = append(c.ready.Deletes, d)
}

func (c *Core) tick(m Tick) {
	c.minWatchDeadline = -1
	c.watches = c.expireWatches(c.watches, m.NowMs)
	c.replicaWatches = c.expireWatches(c.replicaWatches, m.NowMs)
	c.expirePending(m.NowMs)
	if c.role == roleLeader {
		c.maybeShrinkISR(m.NowMs)
		c.maybeRetryAlterISR(m.NowMs)
	}
	if !c.settings.AckAfterSync && c.unflushed > 0 && c.settings.FlushMs > 0 && m.NowMs-c.oldestUnflushedMs >= c.settings.FlushMs {
		c.requestSync()
	}
	if exp := c.settings.ProducerExpirationMs; exp > 0 {
		for id, st := range c.producers {
			if m.NowMs-st.lastMs >= exp && !c.pendingFor(st) {
				delete(c.producers, id)
			}
		}
	}
	if c.settings.SnapshotIntervalMs > 0 && m.NowMs >= c.nextSnapshotMs && c.logEnd > c.snapshotEnd {
		c.nextSnapshotMs = m.NowMs + c.settings.SnapshotIntervalMs
		c.ready.Snapshot = true
	}
	if c.settings.RetentionCheckMs > 0 && m.NowMs >= c.nextRetentionMs {
		c.nextRetentionMs = m.NowMs + c.settings.RetentionCheckMs
		c.ready.Retention = true
		c.ready.RetentionNowMs = m.NowMs
	}
}

// expireWatches drops the watches whose deadline passed (they are not
// woken: the host's own timer answers them) and folds the rest into
// minWatchDeadline.
func (c *Core) expireWatches(ws []watch, nowMs int64) []watch {
	kept := ws[:0]
	for _, w := range ws {
		if w.deadlineMs > nowMs {
			kept = append(kept, w)
			if c.minWatchDeadline < 0 || w.deadlineMs < c.minWatchDeadline {
				c.minWatchDeadline = w.deadlineMs
			}
		}
	}
	clear(ws[len(kept):])
	return kept
}

// expirePending answers REQUEST_TIMED_OUT to acks=-1 produces whose
// deadline passed while the ISR had not caught up.
func (c *Core) expirePending(nowMs int64) {
	if c.minPendingDeadline < 0 || c.minPendingDeadline > nowMs {
		return
	}
	c.minPendingDeadline = -1
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.deadlineMs > 0 && p.deadlineMs <= nowMs {
			p.reply.Result = ProduceResult{ErrorCode: kerr.RequestTimedOut.Code, ErrorMessage: "the ISR did not acknowledge the records in time",
				BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
			continue
		}
		if p.deadlineMs > 0 && (c.minPendingDeadline < 0 || p.deadlineMs < c.minPendingDeadline) {
			c.minPendingDeadline = p.deadlineMs
		}
		kept = append(kept, p)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
}

// pendingFor reports whether any of st's batches is not yet safe (not
// fsynced, or not below the high watermark); such a producer is not
// expired, or its retry could slip in twice.
func (c *Core) pendingFor(st *producerState) bool {
	if len(st.batches) == 0 {
		return false
	}
	return st.batches[len(st.batches)-1].lastOffset >= min(c.durableEnd, c.hw)
}

// ProducerSnapshot returns the remembered batches of every idempotent
// producer, ordered by producer id and offset, and the log end they
// cover. The host stores it (partlog.Log.SaveSnapshot) so that a restart
// replays only later batches; Recovered takes it back.
func (c *Core) ProducerSnapshot() (end int64, batches []ProducerBatch) {
	ids := make([]int64, 0, len(c.producers))
	for id := range c.producers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := c.producers[id]
		for _, b := range st.batches {
			batches = append(batches, ProducerBatch{
				BaseOffset: b.firstOffset, LastOffset: b.lastOffset, ProducerID: id,
				ProducerEpoch: st.epoch, BaseSequence: b.firstSeq, TimestampMs: st.lastMs,
			})
		}
	}
	return c.logEnd, batches
}

// SnapshotSaved tells the core the snapshot of ProducerSnapshot up to end
// is stored.
func (c *Core) SnapshotSaved(end int64) {
	c.snapshotEnd = max(c.snapshotEnd, end)
}

// NextTickMs is the earliest clock reading at which a Tick has work to
// do — a parked fetch or an acks=-1 produce to expire, a follower about to
// fall out of the ISR, an AlterISR to retry, a flush.ms deadline, a
// retention check or a producer snapshot due — or -1 when no Tick is
// needed. The host
// arms one timer for it, so an idle partition costs no periodic work
// beyond its retention checks.
func (c *Core) NextTickMs() int64 {
	next := int64(-1)
	consider := func(t int64) {
		if next < 0 || t < next {
			next = t
		}
	}
	if c.minWatchDeadline >= 0 {
		consider(c.minWatchDeadline)
	}
	if c.minPendingDeadline >= 0 {
		consider(c.minPendingDeadline)
	}
	if t := c.nextISRCheckMs(); t >= 0 {
		consider(t)
	}
	if !c.settings.AckAfterSync && c.unflushed > 0 && c.settings.FlushMs > 0 && !c.syncInFlight && c.durableEnd < c.logEnd {
		// While an fsync runs a Tick could not start another; Synced
		// comes first, and the host re-arms after it.
		consider(c.oldestUnflushedMs + c.settings.FlushMs)
	}
	if c.settings.RetentionCheckMs > 0 {
		consider(c.nextRetentionMs)
	}
	if c.settings.SnapshotIntervalMs > 0 && c.logEnd > c.snapshotEnd {
		consider(c.nextSnapshotMs)
	}
	return next
}
