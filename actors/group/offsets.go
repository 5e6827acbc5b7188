package group

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/internal/mutation"
)

// Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups
// and offset expiry, as Kafka's coordinator answers them.
//
// Invariant: topics holds exactly what the offsets topic holds once every
// completed append is applied. A commit (or tombstone) changes it only
// when the append carrying it succeeded, in append order, so a commit
// that failed was never visible and a fetch never sees an offset a crash
// could take back. inflight counts what was handed out and not yet
// acknowledged, per partition.

type offsetState struct {
	topics map[string]map[int32]CommittedOffset
	count  int
	// inflight counts, per partition, commits and tombstones decided and
	// not yet acknowledged: RequireStable fetches see those partitions as
	// unstable, and expiry leaves them alone.
	inflight    map[TopicPartition]int
	nextCheckMs int64
}

func (o *offsetState) init(loaded *Loaded, nowMs int64, s Settings) {
	o.topics = make(map[string]map[int32]CommittedOffset)
	o.inflight = make(map[TopicPartition]int)
	o.count = 0
	o.nextCheckMs = nowMs + s.OffsetsRetentionCheckMs
	if loaded == nil {
		return
	}
	for tp, off := range loaded.Offsets {
		o.set(tp.Topic, tp.Partition, off)
	}
}

func (o *offsetState) get(topic string, partition int32) (CommittedOffset, bool) {
	off, ok := o.topics[topic][partition]
	return off, ok
}

func (o *offsetState) set(topic string, partition int32, off CommittedOffset) {
	ps := o.topics[topic]
	if ps == nil {
		ps = make(map[int32]CommittedOffset)
		o.topics[topic] = ps
	}
	if _, ok := ps[partition]; !ok {
		o.count++
	}
	ps[partition] = off
}

func (o *offsetState) remove(topic string, partition int32) {
	ps := o.topics[topic]
	if _, ok := ps[partition]; !ok {
		return
	}
	delete(ps, partition)
	o.count--
	if len(ps) == 0 {
		delete(o.topics, topic)
	}
}

func (o *offsetState) begin(tp TopicPartition) { o.inflight[tp]++ }

func (o *offsetState) end(tp TopicPartition) {
	if o.inflight[tp]--; o.inflight[tp] <= 0 {
		delete(o.inflight, tp)
	}
}

func (o *offsetState) sortedTopics() []string {
	names := make([]string, 0, len(o.topics))
	for t := range o.topics {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

func sortedPartitions(ps map[int32]CommittedOffset) []int32 {
	out := make([]int32, 0, len(ps))
	for p := range ps {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// commitAppendError maps a failed append of commits to what OffsetCommit
// answers, as Kafka's coordinator does; groupAppendError does the same
// for group metadata. Coordinator errors the host reports directly pass
// through.
func commitAppendError(code int16) int16 { return appendError(code, kerr.InvalidCommitOffsetSize.Code) }
func groupAppendError(code int16) int16  { return appendError(code, kerr.UnknownServerError.Code) }

func appendError(code, tooLarge int16) int16 {
	switch code {
	case 0:
		return 0
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code,
		kerr.NotEnoughReplicasAfterAppend.Code, kerr.RequestTimedOut.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		return tooLarge
	case kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code:
		return code
	default:
		return kerr.UnknownServerError.Code
	}
}

// resolveTopic finds a request's topic in the cluster metadata: by id
// from OffsetCommit/OffsetFetch v10 on, else by name. Without a view
// every name is taken as it is.
func resolveTopic(tv TopicView, byID bool, name string, id [16]byte) (string, int32, bool) {
	if tv == nil {
		return name, 1<<31 - 1, !byID
	}
	if byID {
		n, parts, ok := tv.TopicByID(id)
		return n, parts, ok
	}
	_, parts, ok := tv.TopicByName(name)
	return name, parts, ok
}

// ---- OffsetCommit ----

func (c *Core) offsetCommit(r Request, req *kmsg.OffsetCommitRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	byID := req.Version >= 10
	type todo struct {
		topic string
		p     *kmsg.OffsetCommitRequestTopicPartition
		code  *int16
	}
	var commits []todo
	// Partitions the cluster does not know fail first, as Kafka's
	// request handler drops them before the coordinator sees the rest.
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		t := &req.Topics[ti]
		rt := &resp.Topics[ti]
		*rt = kmsg.NewOffsetCommitResponseTopic()
		name, parts, known := resolveTopic(r.Topics, byID, t.Topic, t.TopicID)
		rt.Topic, rt.TopicID = name, t.TopicID
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			rp := &rt.Partitions[pi]
			*rp = kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !known && byID:
				rp.ErrorCode = kerr.UnknownTopicID.Code
			case !known || p.Partition < 0 || p.Partition >= parts:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				commits = append(commits, todo{topic: name, p: p, code: &rp.ErrorCode})
			}
		}
	}
	if len(commits) == 0 {
		c.reply(r.Tag, resp)
		return
	}
	if code := c.validateCommit(r, req); code != 0 {
		for _, t := range commits {
			*t.code = code
		}
		c.reply(r.Tag, resp)
		return
	}

	expireMs := int64(noExpireTimestamp)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
		expireMs = r.NowMs + req.RetentionTimeMillis
	}
	var recs []Record
	type applied struct {
		tp   TopicPartition
		off  CommittedOffset
		code *int16
	}
	var apply []applied
	for _, t := range commits {
		if t.p.Metadata != nil && len(*t.p.Metadata) > c.s.OffsetMetadataMaxBytes {
			*t.code = kerr.OffsetMetadataTooLarge.Code
			continue
		}
		off := CommittedOffset{
			Offset:            t.p.Offset,
			LeaderEpoch:       t.p.LeaderEpoch,
			CommitTimestampMs: r.NowMs,
			ExpireTimestampMs: expireMs,
		}
		if off.LeaderEpoch < 0 {
			off.LeaderEpoch = -1
		}
		if t.p.Metadata != nil {
			off.Metadata = *t.p.Metadata
		}
		if req.Version == 1 && t.p.Timestamp != -1 {
			off.CommitTimestampMs = t.p.Timestamp
		}
		tp := TopicPartition{t.topic, t.p.Partition}
		recs = append(recs, offsetRecord(c.id, tp.Topic, tp.Partition, off))
		apply = append(apply, applied{tp, off, t.code})
		c.offsets.begin(tp)
	}
	if len(recs) == 0 {
		c.reply(r.Tag, resp)
		return
	}
	if mutation.On(mutation.ForgetOffsetCommit) {
		// Broken on purpose (sim mutation check): answer the commit and
		// apply it in memory, as a successful append would, but never
		// write it. The unbroken core answers only once the append
		// carrying the commit succeeded (the invariant at the top of
		// this file), so an acknowledged commit survives a coordinator
		// move or restart; this one is gone at the next reload.
		for _, a := range apply {
			c.offsets.end(a.tp)
			c.offsets.set(a.tp.Topic, a.tp.Partition, a.off)
		}
		c.reply(r.Tag, resp)
		return
	}
	c.persist(recs, func(_ int64, errCode int16) {
		code := commitAppendError(errCode)
		for _, a := range apply {
			c.offsets.end(a.tp)
			if code == 0 {
				c.offsets.set(a.tp.Topic, a.tp.Partition, a.off)
			}
			*a.code = code
		}
		c.reply(r.Tag, resp)
	})
}

// validateCommit is Kafka's group-level check of an OffsetCommit: 0 or
// the error every partition gets. A valid member of a classic group
// heartbeats with its commit.
func (c *Core) validateCommit(r Request, req *kmsg.OffsetCommitRequest) int16 {
	g := &c.classic
	if c.consumerIsActive() {
		code := c.consumerValidateCommit(req.MemberID, req.Generation, r.NowMs)
		if code == 0 && req.Version < 9 {
			// Members of a KIP-848 group commit with v9+ (member
			// epochs); an older commit cannot be checked.
			code = kerr.UnsupportedVersion.Code
		}
		return code
	}
	if g.deleting {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.state == stateDead {
		if req.Generation >= 0 {
			// No group to be a member of: a member of a deleted group.
			if req.Version >= 9 {
				return kerr.GroupIDNotFound.Code
			}
			return kerr.IllegalGeneration.Code
		}
		// A commit outside group management creates a simple group.
		g.transition(stateEmpty, r.NowMs)
		return 0
	}
	if req.Generation < 0 && g.state == stateEmpty {
		return 0 // admin clients, assign-mode consumers
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := g.validateCurrentMember(req.MemberID, req.InstanceID); code != 0 {
			return code
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != stateEmpty {
		return kerr.UnknownMemberID.Code // only members commit to a group with members
	}
	switch g.state {
	case stateCompletingRebalance:
		// A member that has its generation but not its assignment yet.
		return kerr.RebalanceInProgress.Code
	case stateStable, statePreparingRebalance:
		if m := g.byID[req.MemberID]; m != nil {
			c.scheduleHeartbeat(m, r.NowMs, int64(m.sessionTimeoutMs))
		}
	}
	return 0
}

// ---- OffsetFetch ----

func (c *Core) fetchOffsets(r Request, f *FetchOffsets) {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = c.id
	if c.consumerIsActive() && (f.MemberID != nil || f.MemberEpoch >= 0) {
		memberID := ""
		if f.MemberID != nil {
			memberID = *f.MemberID
		}
		if code := c.consumerValidateCommit(memberID, f.MemberEpoch, r.NowMs); code != 0 {
			out.ErrorCode = code
			c.reply(r.Tag, &out)
			return
		}
	}
	byID := f.Version >= 10
	partition := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset = -1
		rp.Metadata = kmsg.StringPtr("")
		if f.RequireStable && c.offsets.inflight[TopicPartition{topic, p}] > 0 {
			rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			return rp
		}
		if off, ok := c.offsets.get(topic, p); ok {
			rp.Offset = off.Offset
			rp.LeaderEpoch = off.LeaderEpoch
			rp.Metadata = kmsg.StringPtr(off.Metadata)
		}
		return rp
	}
	if f.Topics == nil {
		for _, topic := range c.offsets.sortedTopics() {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = topic
			if byID {
				id, _, ok := topicID(r.Topics, topic)
				if !ok {
					continue // v10 names topics by id only; a deleted topic has none
				}
				rt.TopicID = id
			}
			for _, p := range sortedPartitions(c.offsets.topics[topic]) {
				rt.Partitions = append(rt.Partitions, partition(topic, p))
			}
			out.Topics = append(out.Topics, rt)
		}
		c.reply(r.Tag, &out)
		return
	}
	out.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, 0, len(f.Topics))
	for _, t := range f.Topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name, known := t.Topic, true
		if byID {
			name, _, known = resolveTopic(r.Topics, true, "", t.TopicID)
			rt.Topic = name
		}
		rt.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			if !known {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.Metadata = p, -1, kmsg.StringPtr("")
				rp.ErrorCode = kerr.UnknownTopicID.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			rt.Partitions = append(rt.Partitions, partition(name, p))
		}
		out.Topics = append(out.Topics, rt)
	}
	c.reply(r.Tag, &out)
}

func topicID(tv TopicView, name string) ([16]byte, int32, bool) {
	if tv == nil {
		return [16]byte{}, 0, false
	}
	return tv.TopicByName(name)
}

// ---- OffsetDelete ----

func (c *Core) offsetDelete(r Request, req *kmsg.OffsetDeleteRequest) {
	g := &c.classic
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	_, consumerExists := c.consumerSummary()
	active := c.consumerIsActive()
	inUse := g.inUse()
	switch {
	case active:
	case g.deleting || (g.state == stateDead && !consumerExists && c.offsets.count == 0):
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case inUse && g.protocolType != consumerProtocolType:
		// Only consumer-protocol subscriptions say which topics a
		// group uses.
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		c.reply(r.Tag, resp)
		return
	}
	var recs []Record
	var deleted []TopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for ti, t := range req.Topics {
		rt := &resp.Topics[ti]
		*rt = kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, parts, known := resolveTopic(r.Topics, false, t.Topic, [16]byte{})
		// A KIP-848 group's subscriptions are not visible from here:
		// while it has members no offset is deleted, which never takes
		// one from a member that uses it. Likewise, as Kafka's
		// isSubscribedToTopic, a classic group whose subscriptions are
		// unknown (metadata that does not parse) counts as subscribed
		// to every topic.
		subscribed := active || (inUse && (!g.subscribedKnown || g.isSubscribedTo(t.Topic)))
		rt.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(t.Partitions))
		for pi, p := range t.Partitions {
			rp := &rt.Partitions[pi]
			*rp = kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !known || p.Partition < 0 || p.Partition >= parts:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				// A commit still in flight is deleted too, as Kafka
				// drops pending commits with the offset: its record
				// precedes the tombstone in the log, and its completion
				// precedes the tombstone's.
				tp := TopicPartition{t.Topic, p.Partition}
				_, committed := c.offsets.get(tp.Topic, tp.Partition)
				if (committed || c.offsets.inflight[tp] > 0) && !slices.Contains(deleted, tp) {
					deleted = append(deleted, tp)
					recs = append(recs, offsetTombstone(c.id, tp.Topic, tp.Partition))
					c.offsets.begin(tp)
				}
			}
		}
	}
	if len(recs) == 0 {
		c.reply(r.Tag, resp)
		return
	}
	c.persist(recs, func(_ int64, errCode int16) {
		for _, tp := range deleted {
			c.offsets.end(tp)
			if errCode == 0 {
				c.offsets.remove(tp.Topic, tp.Partition)
			}
		}
		if errCode != 0 {
			resp.ErrorCode = groupAppendError(errCode)
			resp.Topics = nil
		}
		c.reply(r.Tag, resp)
	})
}

// ---- DeleteGroups ----

// inUse is Kafka's test of a group that is not empty: it decides by
// state, so a group rebalancing is in use even when its last member
// just left (during the initial rebalance delay, or with KIP-394 members
// still expected back).
func (g *classicState) inUse() bool {
	return len(g.members) > 0 || g.state == statePreparingRebalance ||
		g.state == stateCompletingRebalance || g.state == stateStable
}

func (c *Core) deleteGroup(r Request, d *DeleteGroup) {
	g := &c.classic
	out := kmsg.NewDeleteGroupsResponseGroup()
	out.Group = c.id
	_, consumerExists := c.consumerSummary()
	switch {
	case c.consumerIsActive() || g.inUse():
		out.ErrorCode = kerr.NonEmptyGroup.Code
	case g.deleting || (g.state == stateDead && !consumerExists && c.offsets.count == 0 && len(c.offsets.inflight) == 0):
		out.ErrorCode = kerr.GroupIDNotFound.Code
	}
	if out.ErrorCode != 0 {
		c.reply(r.Tag, &out)
		return
	}
	c.deleteEverything(r.NowMs, func(errCode int16) {
		out.ErrorCode = groupAppendError(errCode)
		c.reply(r.Tag, &out)
	})
}

// deleteEverything tombstones every offset (committed or in flight) and
// the group metadata. The group answers as Dead while they are in
// flight; once they are durable the core forgets the group, and if the
// append failed the group is back as it was. done gets the produce error.
func (c *Core) deleteEverything(nowMs int64, done func(errCode int16)) {
	g := &c.classic
	tps := make(map[TopicPartition]struct{}, c.offsets.count+len(c.offsets.inflight))
	for topic, ps := range c.offsets.topics {
		for p := range ps {
			tps[TopicPartition{topic, p}] = struct{}{}
		}
	}
	for tp := range c.offsets.inflight {
		tps[tp] = struct{}{}
	}
	sorted := make([]TopicPartition, 0, len(tps))
	for tp := range tps {
		sorted = append(sorted, tp)
	}
	slices.SortFunc(sorted, func(a, b TopicPartition) int {
		if n := strings.Compare(a.Topic, b.Topic); n != 0 {
			return n
		}
		return int(a.Partition) - int(b.Partition)
	})
	recs := make([]Record, 0, len(sorted)+1)
	for _, tp := range sorted {
		recs = append(recs, offsetTombstone(c.id, tp.Topic, tp.Partition))
	}
	recs = append(recs, groupTombstone(c.id))
	g.deleteFrom, g.deleteFromSinceMs, g.deleting = g.state, g.stateSinceMs, true
	g.transition(stateDead, nowMs)
	c.persist(recs, func(_ int64, errCode int16) {
		g := &c.classic
		g.deleting = false
		if errCode != 0 {
			// Back as it was, including since when: offsets of an
			// Empty group expire relative to it.
			g.state, g.stateSinceMs = g.deleteFrom, g.deleteFromSinceMs
			done(errCode)
			return
		}
		c.offsets.topics = make(map[string]map[int32]CommittedOffset)
		c.offsets.count = 0
		c.resetClassic()
		c.consumerReset()
		done(0)
	})
}

// ---- expiry ----

func (c *Core) offsetsNextTickMs() int64 {
	if c.s.OffsetsRetentionCheckMs <= 0 {
		return -1
	}
	if c.offsets.count == 0 && !c.classic.metaOnDisk && c.classic.state != stateEmpty {
		return -1
	}
	return c.offsets.nextCheckMs
}

func (c *Core) offsetsTick(nowMs int64) {
	if c.s.OffsetsRetentionCheckMs <= 0 || nowMs < c.offsets.nextCheckMs {
		return
	}
	c.offsets.nextCheckMs = nowMs + c.s.OffsetsRetentionCheckMs
	c.expireOffsets(nowMs)
}

// expireOffsets is Kafka's (2.1+) offsets.retention.minutes: offsets of an
// Empty group expire the retention after the group became empty; those
// of a group without a protocol type (offsets only) or of an empty
// KIP-848 group, the retention after their commit; in a Stable consumer
// group only offsets of topics no member subscribes to expire, by commit
// time; otherwise none. An explicit expire timestamp (OffsetCommit v2-v4)
// wins. When an Empty group has no offset left it is deleted.
func (c *Core) expireOffsets(nowMs int64) {
	g := &c.classic
	if g.deleting || c.consumerIsActive() {
		return // KIP-848 subscriptions are not visible from here: keep all
	}
	_, consumerExists := c.consumerSummary()
	const (
		none = iota
		byCommit
		byEmptySince
	)
	kind := none
	switch {
	case consumerExists, g.protocolType == "":
		kind = byCommit
	case g.state == stateEmpty:
		kind = byEmptySince
	case g.protocolType == consumerProtocolType && g.subscribedKnown && g.state == stateStable:
		kind = byCommit
	}
	if kind == none {
		return
	}
	var recs []Record
	var expired []TopicPartition
	all := true
	for _, topic := range c.offsets.sortedTopics() {
		ps := c.offsets.topics[topic]
		if g.isSubscribedTo(topic) {
			all = false
			continue
		}
		for _, p := range sortedPartitions(ps) {
			off := ps[p]
			tp := TopicPartition{topic, p}
			base := off.CommitTimestampMs
			if kind == byEmptySince && g.stateSinceMs >= 0 {
				base = g.stateSinceMs
			}
			due := nowMs-base >= c.s.OffsetsRetentionMs
			if off.ExpireTimestampMs != noExpireTimestamp {
				due = nowMs >= off.ExpireTimestampMs
			}
			if !due || c.offsets.inflight[tp] > 0 {
				all = false
				continue
			}
			expired = append(expired, tp)
			recs = append(recs, offsetTombstone(c.id, topic, p))
		}
	}
	if all && len(c.offsets.inflight) == 0 && (g.state == stateEmpty || (g.state == stateDead && consumerExists)) {
		if len(recs) == 0 && !g.metaOnDisk {
			// Nothing on disk to delete: just forget the group.
			c.resetClassic()
			c.consumerReset()
			return
		}
		c.deleteEverything(nowMs, func(int16) {})
		return
	}
	if len(recs) == 0 {
		return
	}
	for _, tp := range expired {
		c.offsets.begin(tp)
	}
	c.persist(recs, func(_ int64, errCode int16) {
		for _, tp := range expired {
			c.offsets.end(tp)
			if errCode == 0 {
				c.offsets.remove(tp.Topic, tp.Partition)
			}
		}
	})
}

// String is for tests and logs.
func (o CommittedOffset) String() string {
	return fmt.Sprintf("offset=%d epoch=%d meta=%q ts=%d", o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestampMs)
}
