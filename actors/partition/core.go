package partition

import (
	"slices"

	"github.com/troupe-io/troupe/batch"
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
}

// maxWatches bounds parked fetch wake-ups per partition. Past it the
// oldest watch is woken early; a spurious wake only makes a fetch look
// again.
const maxWatches = 4096

// maxProducerBatches is Kafka's window of remembered batches per producer,
// matching max.in.flight.requests.per.connection=5 for idempotence.
const maxProducerBatches = 5

// Core is one partition leader's state machine. See the package doc.
type Core struct {
	settings    Settings
	leaderEpoch int32

	logStart   int64
	logEnd     int64
	durableEnd int64
	hw         int64

	// failed is set after a storage error that may have lost data; the
	// partition then refuses writes until it is reopened.
	failed bool

	syncInFlight      bool
	unflushed         int64 // messages written but not yet fsynced (relaxed mode)
	oldestUnflushedMs int64
	nextRetentionMs   int64

	// minWatchDeadline is at most the earliest deadline of c.watches
	// (-1 when there are none); it may be stale-early, never late.
	minWatchDeadline int64

	producers map[int64]*producerState
	// snapshotEnd is the log end covered by the last producer snapshot;
	// nextSnapshotMs is the earliest time for the next one.
	snapshotEnd    int64
	nextSnapshotMs int64
	pending        []pendingAck
	watches        []watch

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

// pendingAck is a produce reply held until storage has fsynced its end.
type pendingAck struct {
	end   int64 // reply once durableEnd >= end
	reply ProduceReply
}

type watch struct {
	token      any
	offset     int64
	deadlineMs int64
}

// New returns the core of a freshly opened partition. The host follows it
// with Recovered before any other input.
func New(s Settings, leaderEpoch int32) *Core {
	return &Core{settings: s, leaderEpoch: leaderEpoch, producers: map[int64]*producerState{}, minWatchDeadline: -1}
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

// Step feeds one input to the core.
func (c *Core) Step(m Msg) {
	switch m := m.(type) {
	case Recovered:
		c.recovered(m)
	case Configure:
		c.settings = m.Settings
		c.advanceHW()
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
	}
}

func (c *Core) recovered(m Recovered) {
	c.logStart, c.logEnd = m.LogStart, m.LogEnd
	// Storage recovery leaves everything it found durable.
	c.durableEnd, c.hw = m.LogEnd, m.LogEnd
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
	if c.failed {
		c.produceError(m, kerr.KafkaStorageError.Code, "partition is offline after a storage error")
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
			last := st.batches[len(st.batches)-1].lastSeq
			if s.BaseSequence != addSeq(last, 1) {
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

	result := ProduceResult{BaseOffset: base, LogAppendTime: appendTime, LogStartOffset: c.logStart}
	if c.settings.AckAfterSync {
		if m.Acks != 0 {
			c.pending = append(c.pending, pendingAck{end: c.logEnd, reply: ProduceReply{Token: m.Token, Result: result}})
		}
		c.requestSync()
		return
	}
	// Relaxed flush: visible and acknowledged once written.
	if m.Acks != 0 {
		c.ready.Replies = append(c.ready.Replies, ProduceReply{Token: m.Token, Result: result})
	}
	if c.unflushed == 0 {
		c.oldestUnflushedMs = m.NowMs
	}
	c.unflushed += s.NumRecords
	if c.settings.FlushMessages > 0 && c.unflushed >= c.settings.FlushMessages {
		c.requestSync()
	}
	c.advanceHW()
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
// the original is durable.
func (c *Core) answerDuplicate(m Produce, dup seqBatch) {
	if m.Acks == 0 {
		return
	}
	r := ProduceReply{Token: m.Token, Result: ProduceResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, LogStartOffset: c.logStart}}
	if c.settings.AckAfterSync && dup.lastOffset >= c.durableEnd {
		c.pending = append(c.pending, pendingAck{end: dup.lastOffset + 1, reply: r})
		return
	}
	c.ready.Replies = append(c.ready.Replies, r)
}

func (c *Core) requestSync() {
	if c.syncInFlight || c.durableEnd >= c.logEnd {
		return
	}
	c.syncInFlight = true
	c.ready.Sync = true
}

func (c *Core) appendFailed(m AppendFailed) {
	// Storage cut the failed write back, so the log ends at m.Offset. Every
	// produce at or after it failed; forget their producer state too.
	c.logEnd = m.Offset
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.end > m.Offset {
			p.reply.Result = ProduceResult{ErrorCode: kerr.KafkaStorageError.Code, ErrorMessage: m.Err, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
			continue
		}
		kept = append(kept, p)
	}
	c.pending = kept
	for id, st := range c.producers {
		n := 0
		for _, b := range st.batches {
			if b.lastOffset < m.Offset {
				st.batches[n] = b
				n++
			}
		}
		st.batches = st.batches[:n]
		if n == 0 {
			delete(c.producers, id)
		}
	}
	if c.hw > c.logEnd {
		c.hw = c.logEnd
	}
}

func (c *Core) synced(m Synced) {
	c.syncInFlight = false
	if m.Err != "" {
		// An fsync error may have dropped written pages; nothing after the
		// last durable offset can be trusted or acknowledged.
		c.failed = true
		for _, p := range c.pending {
			p.reply.Result = ProduceResult{ErrorCode: kerr.KafkaStorageError.Code, ErrorMessage: "fsync failed: " + m.Err, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: c.logStart}
			c.ready.Replies = append(c.ready.Replies, p.reply)
		}
		c.pending = c.pending[:0]
		return
	}
	if m.DurableEnd > c.durableEnd {
		c.durableEnd = m.DurableEnd
	}
	if !c.settings.AckAfterSync {
		c.unflushed = 0
	}
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.end <= c.durableEnd {
			c.ready.Replies = append(c.ready.Replies, p.reply)
			continue
		}
		kept = append(kept, p)
	}
	c.pending = kept
	c.advanceHW()
	if c.settings.AckAfterSync && c.durableEnd < c.logEnd {
		// Writes arrived while this fsync ran: one more covers them all.
		c.requestSync()
	}
}

// advanceHW moves the high watermark to what the durability stance allows
// and wakes the watches it satisfies.
func (c *Core) advanceHW() {
	hw := c.logEnd
	if c.settings.AckAfterSync {
		hw = c.durableEnd
	}
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
	if m.Offset < c.logStart || m.Offset > c.logEnd {
		r.ErrorCode = kerr.OffsetOutOfRange.Code
	}
	c.ready.Reads = append(c.ready.Reads, r)
}

func (c *Core) watch(m Watch) {
	if c.hw > m.Offset || m.Offset < c.logStart || c.failed {
		c.ready.Wakes = append(c.ready.Wakes, m.Token)
		return
	}
	if len(c.watches) >= maxWatches {
		c.ready.Wakes = append(c.ready.Wakes, c.watches[0].token)
		copy(c.watches, c.watches[1:])
		c.watches = c.watches[:len(c.watches)-1]
	}
	c.watches = append(c.watches, watch{token: m.Token, offset: m.Offset, deadlineMs: m.DeadlineMs})
	if c.minWatchDeadline < 0 || m.DeadlineMs < c.minWatchDeadline {
		c.minWatchDeadline = m.DeadlineMs
	}
}

func (c *Core) listOffsets(m ListOffsets) {
	l := Lookup{Token: m.Token, Timestamp: m.Timestamp, Limit: c.hw, LeaderEpoch: c.leaderEpoch}
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
	kept := c.watches[:0]
	c.minWatchDeadline = -1
	for _, w := range c.watches {
		if w.deadlineMs > m.NowMs {
			kept = append(kept, w)
			if c.minWatchDeadline < 0 || w.deadlineMs < c.minWatchDeadline {
				c.minWatchDeadline = w.deadlineMs
			}
		}
	}
	clear(c.watches[len(kept):])
	c.watches = kept
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

// pendingFor reports whether any of st's batches still awaits its fsync;
// such a producer is not expired, or its retry could slip in twice.
func (c *Core) pendingFor(st *producerState) bool {
	if len(st.batches) == 0 {
		return false
	}
	return st.batches[len(st.batches)-1].lastOffset >= c.durableEnd
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
// do — a parked fetch to expire, a flush.ms deadline, a retention check
// or a producer snapshot due — or -1 when no Tick is needed. The host
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
	if !c.settings.AckAfterSync && c.unflushed > 0 && c.settings.FlushMs > 0 {
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
