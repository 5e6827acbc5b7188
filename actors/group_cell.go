package actors

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
)

// groupCell is one group's coordinator without a host: a group.Core, the
// callers waiting for its replies, and the routing of those replies. The
// daemon's groupActor and the simulator's GroupCells both run groups
// through it; writing the core's records and delivering the outcome back
// is the host's part.
type groupCell struct {
	core *group.Core
	// pending maps the core's tags to the callers waiting for a reply.
	// The core's tags are the cell's own (nextTag), because callers' tags
	// are only unique per caller.
	pending map[int64]pendingGroupReply
	nextTag int64
}

type pendingGroupReply struct {
	tag   int64 // the caller's
	req   any   // for an error answer if the cell stops first
	reply chan<- group.Reply
}

func newGroupCell(id string, s group.Settings, loaded *group.Loaded, nowMs int64) *groupCell {
	return &groupCell{core: group.New(id, s, loaded, nowMs), pending: map[int64]pendingGroupReply{}}
}

// request steps the core with one caller's request, stamped with the time,
// a fresh member id and the current metadata.
func (c *groupCell) request(m *GroupRequest, nowMs int64, memberID string, topics group.TopicView) {
	c.nextTag++
	tag := c.nextTag
	c.pending[tag] = pendingGroupReply{tag: m.Req.Tag, req: m.Req.Req, reply: m.Reply}
	r := m.Req
	r.Tag, r.NowMs, r.NewMemberID, r.Topics = tag, nowMs, memberID, topics
	c.core.Step(r)
}

// appended feeds the offsets partition's answer to the last Append.
func (c *groupCell) appended(nowMs int64, errorCode int16) {
	c.core.Step(group.Appended{NowMs: nowMs, ErrorCode: errorCode})
}

func (c *groupCell) tick(nowMs int64) { c.core.Step(group.Tick{NowMs: nowMs}) }

// settle sends the replies of the core's Ready and returns the records it
// wants written, nil if none.
func (c *groupCell) settle() *group.Append {
	rd := c.core.Ready()
	for _, r := range rd.Replies {
		p, ok := c.pending[r.Tag]
		if !ok {
			continue
		}
		delete(c.pending, r.Tag)
		p.reply <- group.Reply{Tag: p.tag, Resp: r.Resp}
	}
	return rd.Append
}

// retirable reports whether the group holds nothing and nobody waits on
// it: its host may drop it, and a later request starts a fresh one.
func (c *groupCell) retirable() bool { return c.core.Dead() && len(c.pending) == 0 }

// stop answers every caller still waiting, oldest first, with
// NOT_COORDINATOR: the group moved (or the node stops), and clients find
// the new coordinator.
func (c *groupCell) stop() {
	tags := make([]int64, 0, len(c.pending))
	for tag := range c.pending {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	for _, tag := range tags {
		p := c.pending[tag]
		delete(c.pending, tag)
		p.reply <- group.Reply{Tag: p.tag, Resp: errorReply(p.req, kerr.NotCoordinator.Code)}
	}
}

// offsetsCommitTimeoutMs bounds one append to the offsets topic (Kafka's
// offsets.commit.timeout.ms default).
const offsetsCommitTimeoutMs = 5000

// groupAppendRequest builds the acks=-1 produce (without its Reply) that
// writes ap as one uncompressed batch to an offsets partition whose topic
// validates batches with opts. When that cannot be done it returns the
// error code to feed back as the Append's outcome instead.
func groupAppendRequest(ap *group.Append, opts batch.Options, nowMs int64, logger *slog.Logger) (ProduceRequest, int16) {
	recs := make([]batch.Record, len(ap.Records))
	for i, r := range ap.Records {
		recs[i] = batch.Record{Key: r.Key, Value: r.Value}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		FirstTimestamp: nowMs}, recs)
	if err != nil {
		logger.Error("build group records", "err", err)
		return ProduceRequest{}, kerr.UnknownServerError.Code
	}
	sum, err := batch.Validate(b, opts)
	if err != nil {
		logger.Error("group records rejected by the offsets topic", "bytes", len(b), "err", err)
		return ProduceRequest{}, kerr.MessageTooLarge.Code
	}
	return ProduceRequest{Records: b, Acks: -1,
		// Kafka's offsets.commit.timeout.ms: an ISR that cannot complete
		// the write fails it instead of holding the group's appends.
		DeadlineMs: nowMs + offsetsCommitTimeoutMs, Summary: BatchSummary{
			NumBatches: sum.NumBatches, NumRecords: sum.NumRecords, OffsetCount: sum.OffsetCount,
			MaxTimestamp: sum.MaxTimestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, LastSequence: -1,
		}}, 0
}

// errorReply builds the response to a group request that failed as a
// whole with code.
func errorReply(req any, code int16) any {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, r.MemberID
		return resp
	case *kmsg.SyncGroupRequest:
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.OffsetDeleteRequest:
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *group.FetchOffsets:
		g := kmsg.NewOffsetFetchResponseGroup()
		g.ErrorCode = code
		return &g
	case *group.DescribeGroup:
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.ErrorCode = code
		return &g
	case *group.DeleteGroup:
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.ErrorCode = code
		return &g
	case *group.DescribeConsumerGroup:
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.ErrorCode = code
		return &g
	}
	return nil
}

// loadFetchBytes is how much of the offsets partition one read of a load
// asks for.
const loadFetchBytes = 4 << 20

// localReader is an offsets partition as a load reads it: a *Partition
// (its actor answers later) or a PartitionCell (through cellReader, which
// answers at once).
type localReader interface {
	ReadLocal(LocalReadRequest)
}

// cellReader reads a PartitionCell's log for a load.
type cellReader struct{ c *PartitionCell }

func (r cellReader) ReadLocal(req LocalReadRequest) {
	if !r.c.Handle(&req) {
		req.Reply <- FetchResult{Tag: req.Tag, ErrorCode: kerr.KafkaStorageError.Code}
	}
}

// replayOffsets replays offsets partition p, read through part, from its
// start to its own log end, into the groups it holds.
//
// It reads the partition's log up to its end, not only to the high
// watermark: right after a failover the new leader's high watermark lags
// what the ISR acknowledged until its followers fetch again, and
// everything in the leader's log stays (followers truncate to it).
func replayOffsets(ctx context.Context, part localReader, p int32, logger *slog.Logger) (map[string]*group.Loaded, error) {
	var (
		rp      group.Replayer
		buf     []byte
		scratch []byte
		fr      = make(chan FetchResult, 1)
	)
	off, end := int64(0), int64(-1)
	for end < 0 || off < end {
		part.ReadLocal(LocalReadRequest{Offset: off, MaxBytes: loadFetchBytes, Reply: fr})
		var r FetchResult
		select {
		case r = <-fr:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if end < 0 {
			end = r.LogEndOffset
		}
		if r.ErrorCode == kerr.OffsetOutOfRange.Code && off < r.LogStartOffset {
			r.Records.Release()
			off = r.LogStartOffset
			continue
		}
		if r.ErrorCode != 0 {
			r.Records.Release()
			return nil, fmt.Errorf("read offsets partition %d at %d: %w", p, off, kerr.ErrorForCode(r.ErrorCode))
		}
		var err error
		buf, err = r.Records.AppendTo(buf[:0])
		r.Records.Release()
		if err != nil {
			return nil, fmt.Errorf("read offsets partition %d at %d: %w", p, off, err)
		}
		next := off
		it := batch.NewIter(buf)
		for {
			h, b, ok := it.Next()
			if !ok {
				break
			}
			if h.LastOffset() < off || h.IsControl() {
				next = max(next, h.LastOffset()+1)
				continue
			}
			payload, err := batch.Payload(b, scratch[:0])
			if err != nil {
				return nil, fmt.Errorf("offsets partition %d batch at %d: %w", p, h.BaseOffset, err)
			}
			if h.Codec() != batch.CodecNone {
				scratch = payload
			}
			ri := batch.NewRecordIter(payload, h.NumRecords)
			for {
				rec, ok := ri.Next()
				if !ok {
					break
				}
				if h.BaseOffset+int64(rec.OffsetDelta) < off {
					continue
				}
				if err := rp.Add(rec.Key, rec.Value); err != nil {
					logger.Warn("skipping unreadable record in the offsets topic", "partition", p,
						"offset", h.BaseOffset+int64(rec.OffsetDelta), "err", err)
				}
			}
			if err := ri.Err(); err != nil {
				return nil, fmt.Errorf("offsets partition %d batch at %d: %w", p, h.BaseOffset, err)
			}
			next = max(next, h.LastOffset()+1)
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("offsets partition %d at %d: %w", p, off, err)
		}
		if next == off {
			// Nothing readable at off: the end, or (off < end) a log that
			// does not progress; do not spin.
			if off >= end {
				break
			}
			return nil, fmt.Errorf("offsets partition %d: no progress reading at %d (log end %d)", p, off, end)
		}
		off = next
	}
	return rp.Groups(), nil
}

// newMemberID returns clientID-UUID, Kafka's member id form, from
// crypto/rand: the daemon's member ids.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatMemberID(clientID, b)
}

// MemberIDs returns a member id source drawing its randomness from draw
// (two calls per id): the simulator passes its seeded generator's Uint64
// so that member ids, and all that depends on them, repeat with the seed.
// Ids have Kafka's form, clientID-UUID (version 4).
func MemberIDs(draw func() uint64) func(clientID string) string {
	return func(clientID string) string {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], draw())
		binary.BigEndian.PutUint64(b[8:], draw())
		return formatMemberID(clientID, b)
	}
}

// formatMemberID makes b a version 4 UUID and appends it to clientID.
func formatMemberID(clientID string, b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var u [36]byte
	hex.Encode(u[0:8], b[0:4])
	u[8] = '-'
	hex.Encode(u[9:13], b[4:6])
	u[13] = '-'
	hex.Encode(u[14:18], b[6:8])
	u[18] = '-'
	hex.Encode(u[19:23], b[8:10])
	u[23] = '-'
	hex.Encode(u[24:], b[10:])
	return clientID + "-" + string(u[:])
}
