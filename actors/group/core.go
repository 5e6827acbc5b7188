package group

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Settings are the broker configs a group core obeys (Kafka's names).
type Settings struct {
	MinSessionTimeoutMs     int32 // group.min.session.timeout.ms (6000)
	MaxSessionTimeoutMs     int32 // group.max.session.timeout.ms (1800000)
	InitialRebalanceDelayMs int32 // group.initial.rebalance.delay.ms (3000)
	MaxSize                 int   // group.max.size (MaxInt32)
	OffsetsRetentionMs      int64 // offsets.retention.minutes × 60000 (7 days)
	OffsetsRetentionCheckMs int64 // offsets.retention.check.interval.ms (600000)
	OffsetMetadataMaxBytes  int   // offset.metadata.max.bytes (4096)

	// KIP-848 consumer groups.
	ConsumerSessionTimeoutMs    int32    // group.consumer.session.timeout.ms (45000)
	ConsumerHeartbeatIntervalMs int32    // group.consumer.heartbeat.interval.ms (5000)
	ConsumerAssignors           []string // group.consumer.assignors, first is the default ("uniform", "range")
	ConsumerMaxSize             int      // group.consumer.max.size (MaxInt32)
}

// DefaultSettings are Kafka's defaults.
func DefaultSettings() Settings {
	return Settings{
		MinSessionTimeoutMs:         6000,
		MaxSessionTimeoutMs:         1800000,
		InitialRebalanceDelayMs:     3000,
		MaxSize:                     1<<31 - 1,
		OffsetsRetentionMs:          7 * 24 * 3600 * 1000,
		OffsetsRetentionCheckMs:     600000,
		OffsetMetadataMaxBytes:      4096,
		ConsumerSessionTimeoutMs:    45000,
		ConsumerHeartbeatIntervalMs: 5000,
		ConsumerAssignors:           []string{"uniform", "range"},
		ConsumerMaxSize:             1<<31 - 1,
	}
}

// Core is one group's coordinator state machine. See the package doc.
type Core struct {
	id string
	s  Settings

	replies []Reply

	// Records decided but not yet handed out in an Append, with the
	// callbacks to run once the append carrying them completes.
	queued     []Record
	queuedDone []func(nowMs int64, errCode int16)
	// inflight is set while an Append is outstanding; its callbacks run
	// on Appended. Invariant: at most one Append is outstanding, so the
	// offsets partition receives a group's records in decision order.
	inflight     bool
	inflightDone []func(nowMs int64, errCode int16)

	offsets  offsetState   // offsets.go
	classic  classicState  // classic.go
	consumer consumerState // consumer.go
}

// New returns the core of group id, starting from what Replay rebuilt
// from the offsets topic (nil for a new group) at time nowMs.
func New(id string, s Settings, loaded *Loaded, nowMs int64) *Core {
	c := &Core{id: id, s: s}
	c.init(loaded, nowMs)
	return c
}

// ID is the group id.
func (c *Core) ID() string { return c.id }

// Step processes one input.
func (c *Core) Step(m Msg) {
	switch m := m.(type) {
	case Request:
		c.stepRequest(m)
	case Appended:
		c.inflight = false
		done := c.inflightDone
		c.inflightDone = nil
		for _, f := range done {
			f(m.NowMs, m.ErrorCode)
		}
	case Tick:
		c.tick(m.NowMs)
	}
}

// Ready returns and clears what the core decided since the last call.
func (c *Core) Ready() Ready {
	rd := Ready{Replies: c.replies}
	c.replies = nil
	if !c.inflight && len(c.queued) > 0 {
		rd.Append = &Append{Records: c.queued}
		c.inflight = true
		c.inflightDone = c.queuedDone
		c.queued, c.queuedDone = nil, nil
	}
	return rd
}

// reply queues the answer to the request tagged tag.
func (c *Core) reply(tag int64, resp any) {
	c.replies = append(c.replies, Reply{Tag: tag, Resp: resp})
}

// persist queues records for the next Append; done (if not nil) runs with
// that append's outcome once it completes. Records persisted in one call
// go out in one append.
func (c *Core) persist(recs []Record, done func(nowMs int64, errCode int16)) {
	c.queued = append(c.queued, recs...)
	if done != nil {
		c.queuedDone = append(c.queuedDone, done)
	}
}

func (c *Core) stepRequest(r Request) {
	switch req := r.Req.(type) {
	case *kmsg.ConsumerGroupHeartbeatRequest:
		c.consumerHeartbeat(r, req)
	case *DescribeConsumerGroup:
		c.consumerDescribe(r, req)
	default:
		c.classicRequest(r) // classic.go and offsets.go: everything else
	}
}

// NextTickMs is the earliest time the core wants a Tick, or -1.
func (c *Core) NextTickMs() int64 {
	next := int64(-1)
	for _, t := range []int64{c.classicNextTickMs(), c.offsetsNextTickMs(), c.consumerNextTickMs()} {
		if t >= 0 && (next < 0 || t < next) {
			next = t
		}
	}
	return next
}

func (c *Core) tick(nowMs int64) {
	c.classicTick(nowMs)
	c.consumerTick(nowMs)
	c.offsetsTick(nowMs)
}
