package actors

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
)

// groupActor is the protoactor shell around one group.Core: it stamps
// requests with the clock and a fresh member id, steps the core, routes
// its replies, and writes its records to the group's offsets partition
// (acks=-1), feeding the outcome back as group.Appended.
type groupActor struct {
	groups *Groups
	shard  *groupShard
	core   *group.Core
	clock  func() time.Time
	logger *slog.Logger
	root   *actor.RootContext
	self   *actor.PID

	// pending maps the core's tags to the callers waiting for a reply.
	// The core's tags are the actor's own (nextTag), because callers'
	// tags are only unique per caller.
	pending map[int64]pendingGroupReply
	nextTag int64

	// summary is what ListGroups shows, published after every step.
	summary atomic.Pointer[group.Summary]
	// retiring is set once the actor asked to be retired, so that it asks
	// once per time it goes dead.
	retiring bool

	timer   *time.Timer
	timerAt int64
}

type pendingGroupReply struct {
	tag   int64 // the caller's
	req   any   // for an error answer if the actor stops first
	reply chan<- group.Reply
}

// groupAppended is the offsets partition's answer to an Append.
type groupAppended struct{ errorCode int16 }

// retireGroup asks the actor whether it may stop (answered true when the
// core is dead).
type retireGroup struct{}

func (a *groupActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *GroupRequest:
		a.nextTag++
		tag := a.nextTag
		a.pending[tag] = pendingGroupReply{tag: m.Req.Tag, req: m.Req.Req, reply: m.Reply}
		r := m.Req
		r.Tag = tag
		r.NowMs = a.clock().UnixMilli()
		r.NewMemberID = newMemberID(r.ClientID)
		r.Topics = a.groups.cfg.Topics()
		a.core.Step(r)
	case groupAppended:
		a.core.Step(group.Appended{NowMs: a.clock().UnixMilli(), ErrorCode: m.errorCode})
	case tick:
		a.timerAt = -1
		a.core.Step(group.Tick{NowMs: a.clock().UnixMilli()})
	case retireGroup:
		dead := a.core.Dead() && len(a.pending) == 0
		ctx.Respond(dead)
		if !dead {
			a.retiring = false
		}
		return
	case *actor.Started:
		a.self = ctx.Self()
	case *actor.Stopping:
		a.stop()
		return
	default:
		return
	}
	a.execute(a.core.Ready())
	sum := a.core.Summary()
	a.summary.Store(&sum)
	a.armTimer()
	if a.core.Dead() && len(a.pending) == 0 && !a.retiring {
		a.retiring = true
		go a.groups.retire(a.shard, a.core.ID())
	}
}

func (a *groupActor) execute(rd group.Ready) {
	for _, r := range rd.Replies {
		p, ok := a.pending[r.Tag]
		if !ok {
			continue
		}
		delete(a.pending, r.Tag)
		p.reply <- group.Reply{Tag: p.tag, Resp: r.Resp}
	}
	if rd.Append != nil {
		a.append(rd.Append)
	}
}

// append writes the core's records as one uncompressed batch to the
// group's offsets partition and reports the outcome back to the actor.
func (a *groupActor) append(ap *group.Append) {
	part := a.groups.cfg.OffsetsPartition(a.shard.partition)
	if part == nil {
		a.logger.Warn("cannot persist group records", "err", errAppendNoPartition)
		a.selfSend(groupAppended{errorCode: kerr.NotLeaderForPartition.Code})
		return
	}
	recs := make([]batch.Record, len(ap.Records))
	for i, r := range ap.Records {
		recs[i] = batch.Record{Key: r.Key, Value: r.Value}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		FirstTimestamp: a.clock().UnixMilli()}, recs)
	if err != nil {
		a.logger.Error("build group records", "err", err)
		a.selfSend(groupAppended{errorCode: kerr.UnknownServerError.Code})
		return
	}
	sum, err := batch.Validate(b, part.BatchOptions())
	if err != nil {
		a.logger.Error("group records rejected by the offsets topic", "bytes", len(b), "err", err)
		a.selfSend(groupAppended{errorCode: kerr.MessageTooLarge.Code})
		return
	}
	reply := make(chan ProduceResult, 1)
	part.Produce(ProduceRequest{Records: b, Acks: -1, Reply: reply,
		// Kafka's offsets.commit.timeout.ms: an ISR that cannot complete
		// the write fails it instead of holding the group's appends.
		DeadlineMs: a.clock().UnixMilli() + offsetsCommitTimeoutMs, Summary: BatchSummary{
			NumBatches: sum.NumBatches, NumRecords: sum.NumRecords, OffsetCount: sum.OffsetCount,
			MaxTimestamp: sum.MaxTimestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, LastSequence: -1,
		}})
	self, root := a.self, a.root
	go func() {
		r := <-reply
		root.Send(self, groupAppended{errorCode: r.ErrorCode})
	}()
}

// offsetsCommitTimeoutMs bounds one append to the offsets topic (Kafka's
// offsets.commit.timeout.ms default).
const offsetsCommitTimeoutMs = 5000

// selfSend delivers msg to this actor from another goroutine: sending to
// its own bounded mailbox from Receive would wait forever if it is full.
func (a *groupActor) selfSend(msg any) {
	self, root := a.self, a.root
	go root.Send(self, msg)
}

// armTimer keeps one timer set for the core's next deadline (as the
// partition actor does).
func (a *groupActor) armTimer() {
	next := a.core.NextTickMs()
	if next < 0 || next == a.timerAt {
		return
	}
	if a.timerAt >= 0 && a.timerAt <= next {
		return
	}
	a.timerAt = next
	d := max(time.Duration(next-a.clock().UnixMilli())*time.Millisecond, 0)
	if a.timer == nil {
		self, root := a.self, a.root
		a.timer = time.AfterFunc(d, func() { root.Send(self, tick{}) })
		return
	}
	a.timer.Reset(d)
}

// stop answers every caller still waiting with NOT_COORDINATOR: the group
// moved (or the node stops), and clients find the new coordinator.
func (a *groupActor) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
	for tag, p := range a.pending {
		delete(a.pending, tag)
		p.reply <- group.Reply{Tag: p.tag, Resp: errorReply(p.req, kerr.NotCoordinator.Code)}
	}
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
