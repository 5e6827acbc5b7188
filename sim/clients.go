package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/sim/check"
	"github.com/troupe-io/troupe/sim/sched"
)

// Simulated clients speak the Kafka protocol (kmsg requests and
// responses) to the nodes over the simulated network; each request is
// served by the node's wire handlers (see backend.serve). They are not
// kgo: kgo runs goroutines and real timers. They follow what kgo does on
// each answer (retry on retriable errors, refresh metadata, idempotent
// resends with the same sequence numbers), which is what the checkers
// hold the cluster to.

// clientIDBase numbers clients on the network above every node.
const clientIDBase = 1000

var errClientTimeout = errors.New("sim: request timed out")

// client is what every simulated client shares: an address on the
// network and a metadata cache.
type client struct {
	w    *World
	id   int32
	name string
	// leaders[topic][partition] as the last Metadata answer said.
	leaders   map[string][]int32
	topicIDs  map[string][16]byte
	metaAsked bool
	requests  uint64
	// group, for a group member: responses say which load of the
	// group's offsets partition answered.
	group string
}

func (w *World) newClient(kind string) *client {
	c := &client{w: w, id: clientIDBase + int32(len(w.clients)), leaders: map[string][]int32{}, topicIDs: map[string][16]byte{}}
	c.name = fmt.Sprintf("%s-%d", kind, len(w.clients))
	w.clients = append(w.clients, c)
	return c
}

// responder says which process answered, for the checkers: for a group
// member, also the leader epoch at which that process loaded the group's
// offsets partition (a coordinator's groups live as long as that load).
type responder struct {
	node      int32
	inc       int
	loadEpoch int32
}

// generationSpace names one coordinator's lifetime of a group: group
// epochs start over when a coordinator loads the group anew (KIP-848
// membership is not persisted), so generations are only comparable
// within one.
func (r responder) generationSpace() int32 {
	return r.node<<24 | (r.loadEpoch&0xffff)<<8 | int32(r.inc&0xff)
}

// request sends kreq to node to and calls done once: with the response,
// or with errClientTimeout when no answer came in time.
func (c *client) request(to int32, kreq kmsg.Request, done func(kmsg.Response, responder, error)) {
	w := c.w
	c.requests++
	finished := false
	finish := func(resp kmsg.Response, r responder, err error) {
		if finished {
			return
		}
		finished = true
		done(resp, r, err)
	}
	timeout := w.s.After(w.cfg.RequestTimeout, func() { finish(nil, responder{}, errClientTimeout) })
	w.send(c.id, to, classStream, func(p *process) {
		who := responder{node: p.n.id, inc: p.num, loadEpoch: -1}
		if c.group != "" && p.groups.parts > 0 {
			if e, ok := p.groups.loaded[group.PartitionFor(c.group, p.groups.parts)]; ok {
				who.loadEpoch = e
			}
		}
		p.backend.serve(c.name, kreq, func(resp kmsg.Response, err error) {
			w.net.Send(p.n.id, c.id, classStream, func() {
				timeout.Cancel()
				finish(resp, who, err)
			})
		})
	})
}

// anyNode picks a node to ask for cluster-wide answers.
func (c *client) anyNode() int32 { return 1 + c.w.s.Rand().Int32N(int32(len(c.w.nodes))) }

// refreshMetadata asks some node for the topics' leaders.
func (c *client) refreshMetadata(then func()) {
	if c.metaAsked {
		return
	}
	c.metaAsked = true
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	c.request(c.anyNode(), req, func(resp kmsg.Response, _ responder, err error) {
		c.metaAsked = false
		if err == nil {
			m := resp.(*kmsg.MetadataResponse)
			for _, t := range m.Topics {
				if t.Topic == nil || t.ErrorCode != 0 {
					continue
				}
				ls := make([]int32, len(t.Partitions))
				for _, p := range t.Partitions {
					if int(p.Partition) < len(ls) {
						ls[p.Partition] = p.Leader
					}
				}
				c.leaders[*t.Topic] = ls
				c.topicIDs[*t.Topic] = t.TopicID
			}
		}
		if then != nil {
			then()
		}
	})
}

// leader is the cached leader of a partition, -1 if unknown.
func (c *client) leader(topic string, part int32) int32 {
	ls := c.leaders[topic]
	if int(part) >= len(ls) || ls[part] < 1 {
		return -1
	}
	return ls[part]
}

// retriable reports whether a produce/fetch error code calls for a
// metadata refresh and a retry, as kgo does.
func retriable(code int16) bool {
	switch kerr.ErrorForCode(code) {
	case kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.RequestTimedOut, kerr.NotEnoughReplicas,
		kerr.NotEnoughReplicasAfterAppend, kerr.KafkaStorageError, kerr.UnknownTopicOrPartition,
		kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.NetworkException, kerr.CorruptMessage,
		kerr.UnknownServerError, kerr.OffsetNotAvailable:
		return true
	}
	return false
}

// --- producers ---

// producer is an idempotent acks=-1 producer writing unique values, one
// batch in flight per partition (so sequence order is send order).
type producer struct {
	c        *client
	topic    string
	parts    int32
	pid      int64
	epoch    int16
	initing  bool
	seq      []int32
	inflight []*produceBatch
	written  int // values made so far
	// stopped: the run's workload phase ended; finish what is in flight.
	stopped bool
	stats   produceStats
}

type produceStats struct {
	acked, retries, abandoned int
}

// produceBatch is one batch and its fate.
type produceBatch struct {
	part     int32
	values   []string
	bytes    []byte
	attempts int
	firstAt  sched.Time
}

func (w *World) newProducer(topic string, parts int32) *producer {
	pr := &producer{c: w.newClient("producer"), topic: topic, parts: parts, pid: -1,
		seq: make([]int32, parts), inflight: make([]*produceBatch, parts)}
	return pr
}

// busy reports whether a batch is still in flight.
func (pr *producer) busy() bool {
	return slices.ContainsFunc(pr.inflight, func(b *produceBatch) bool { return b != nil })
}

// tick makes a new batch when a partition has none in flight.
func (pr *producer) tick() {
	w := pr.c.w
	if !pr.stopped {
		w.s.After(w.cfg.ProduceInterval/2+w.s.Jitter(w.cfg.ProduceInterval), pr.tick)
	}
	if pr.stopped {
		return
	}
	if pr.pid < 0 {
		pr.initProducer()
		return
	}
	part := w.s.Rand().Int32N(pr.parts)
	if pr.inflight[part] != nil {
		return
	}
	n := 1 + w.s.Rand().IntN(4)
	b := &produceBatch{part: part, firstAt: w.s.Now()}
	recs := make([]batch.Record, n)
	for i := range recs {
		v := fmt.Sprintf("%s/%d/%d", pr.c.name, pr.pid, pr.written)
		pr.written++
		b.values = append(b.values, v)
		recs[i] = batch.Record{Value: []byte(v)}
	}
	raw, err := batch.BuildBatch(batch.BuildOptions{FirstTimestamp: w.s.Now().Ms(), ProducerID: pr.pid,
		ProducerEpoch: pr.epoch, BaseSequence: pr.seq[part]}, recs)
	if err != nil {
		w.fatalErr = fmt.Errorf("build batch: %w", err)
		return
	}
	pr.seq[part] += int32(n)
	b.bytes = raw
	pr.inflight[part] = b
	pr.send(b)
}

func (pr *producer) initProducer() {
	if pr.initing {
		return
	}
	pr.initing = true
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionTimeoutMillis = 60000
	pr.c.request(pr.c.anyNode(), req, func(resp kmsg.Response, _ responder, err error) {
		pr.initing = false
		if err != nil {
			return
		}
		r := resp.(*kmsg.InitProducerIDResponse)
		if r.ErrorCode == 0 {
			pr.pid, pr.epoch = r.ProducerID, r.ProducerEpoch
			clear(pr.seq)
			pr.c.w.s.Tracef("%s pid %d", pr.c.name, pr.pid)
		}
	})
}

// send sends b to the partition's leader as it is known.
func (pr *producer) send(b *produceBatch) {
	w, c := pr.c.w, pr.c
	b.attempts++
	to := c.leader(pr.topic, b.part)
	if to < 0 {
		c.refreshMetadata(nil)
		w.s.After(w.cfg.RetryBackoff, func() { pr.send(b) })
		return
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = int32(w.cfg.RequestTimeout.Ms() / 2)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = pr.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = b.part
	rp.Records = slices.Clone(b.bytes) // the leader rewrites the header in place
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.request(to, req, func(resp kmsg.Response, _ responder, err error) {
		code := kerr.RequestTimedOut.Code
		base := int64(-1)
		if err == nil {
			r := resp.(*kmsg.ProduceResponse)
			if len(r.Topics) == 1 && len(r.Topics[0].Partitions) == 1 {
				code, base = r.Topics[0].Partitions[0].ErrorCode, r.Topics[0].Partitions[0].BaseOffset
			} else {
				code = kerr.UnknownServerError.Code
			}
		}
		pr.answered(b, code, base)
	})
}

func (pr *producer) answered(b *produceBatch, code int16, base int64) {
	w, c := pr.c.w, pr.c
	tp := check.TP{Topic: pr.topic, Partition: b.part}
	switch {
	case code == 0:
		w.s.Tracef("%s acked %s-%d@%d n=%d", c.name, pr.topic, b.part, base, len(b.values))
		w.check.Acked(tp, base, b.values)
		pr.stats.acked += len(b.values)
		pr.inflight[b.part] = nil
	case code == kerr.DuplicateSequenceNumber.Code:
		// Written before, offset unknown: done, nothing to check.
		pr.inflight[b.part] = nil
	case retriable(code):
		pr.stats.retries++
		c.refreshMetadata(nil)
		w.s.After(w.cfg.RetryBackoff, func() { pr.send(b) })
	default:
		// OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID and the
		// like: the batch's fate is unknown. kgo would bump the epoch;
		// this producer starts over with a new producer id and never
		// resends these values, so that they cannot be counted twice.
		w.s.Tracef("%s abandons %s-%d: %v", c.name, pr.topic, b.part, kerr.ErrorForCode(code))
		pr.stats.abandoned++
		pr.inflight[b.part] = nil
		pr.pid = -1
	}
}

// --- consumers ---

// consumer is a member of a consumer group (KIP-848 protocol) that reads
// the partitions it is assigned from their leaders and commits what it
// read.
type consumer struct {
	c           *client
	group       string
	topic       string
	coordinator int32
	finding     bool
	memberID    string
	epoch       int32
	beating     bool
	// owned partitions and where reading them stands.
	owned        map[int32]*ownedPart
	lastAssigned assignedAt
	stopped      bool
	stats        consumeStats
}

type consumeStats struct{ records, commits, fetches int }

// assignedAt is where the consumer's last reported assignment came from.
type assignedAt struct {
	who    responder
	epoch  int32
	member string
	ok     bool
}

// release tells the checkers the member gave up its assignment (it was
// fenced: the coordinator had already dropped it).
func (cs *consumer) release() {
	if a := cs.lastAssigned; a.ok {
		cs.c.w.check.Assignment(cs.group, a.who.node, a.who.generationSpace(), a.epoch, a.member, nil)
		cs.lastAssigned.ok = false
	}
}

type ownedPart struct {
	position        int64 // -1 until the committed offset is known
	fetching        bool
	committed       int64 // last commit sent
	fetchingOffsets bool
	// revoking: the coordinator took the partition away; it is given up
	// once its last commit is answered.
	revoking        bool
	commitsInFlight int
}

func (w *World) newConsumer(group, topic string) *consumer {
	cs := &consumer{c: w.newClient("consumer"), group: group, topic: topic, coordinator: -1, owned: map[int32]*ownedPart{}}
	cs.c.group = group
	return cs
}

func (cs *consumer) tick() {
	w := cs.c.w
	if cs.stopped {
		return
	}
	w.s.After(w.cfg.ConsumeInterval, cs.tick)
	if cs.coordinator < 0 {
		cs.findCoordinator()
		return
	}
	if !cs.beating && (cs.epoch == 0 || w.s.Rand().IntN(5) == 0) {
		cs.heartbeat()
	}
	for _, part := range sortedParts(cs.owned) {
		op := cs.owned[part]
		if op.revoking {
			continue
		}
		switch {
		case op.position < 0:
			cs.fetchOffset(part, op)
		case !op.fetching:
			cs.fetch(part, op)
		}
		if op.position > op.committed && w.s.Rand().IntN(4) == 0 {
			cs.commit(part, op)
		}
	}
}

func sortedParts[V any](m map[int32]V) []int32 { return slices.Sorted(maps.Keys(m)) }

func (cs *consumer) findCoordinator() {
	if cs.finding {
		return
	}
	cs.finding = true
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	req.CoordinatorKey = cs.group
	cs.c.request(cs.c.anyNode(), req, func(resp kmsg.Response, _ responder, err error) {
		cs.finding = false
		if err != nil {
			return
		}
		r := resp.(*kmsg.FindCoordinatorResponse)
		code, node := r.ErrorCode, r.NodeID
		if len(r.Coordinators) == 1 { // v4+
			code, node = r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeID
		}
		cs.c.w.s.Tracef("%s coordinator %d err %d", cs.c.name, node, code)
		if code == 0 {
			cs.coordinator = node
		}
	})
}

// lostCoordinator forgets the coordinator after an error that says it
// moved.
func (cs *consumer) lostCoordinator(code int16) bool {
	switch kerr.ErrorForCode(code) {
	case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress:
		cs.coordinator = -1
		return true
	}
	return false
}

func (cs *consumer) heartbeat() {
	w, c := cs.c.w, cs.c
	id, ok := c.topicIDs[cs.topic]
	if !ok {
		c.refreshMetadata(nil)
		return
	}
	cs.beating = true
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 0
	req.Group = cs.group
	req.MemberID = cs.memberID
	req.MemberEpoch = cs.epoch
	req.RebalanceTimeoutMillis = 5000
	req.SubscribedTopicNames = []string{cs.topic}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if parts := sortedParts(cs.owned); len(parts) > 0 && cs.epoch > 0 {
		owned := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		owned.TopicID = id
		owned.Partitions = parts
		req.Topics = append(req.Topics, owned)
	}
	c.request(cs.coordinator, req, func(resp kmsg.Response, who responder, err error) {
		cs.beating = false
		if err != nil {
			w.s.Tracef("%s heartbeat: %v", c.name, err)
			return
		}
		r := resp.(*kmsg.ConsumerGroupHeartbeatResponse)
		if r.ErrorCode != 0 && r.ErrorMessage != nil {
			w.s.Tracef("%s heartbeat answer %d: %s", c.name, r.ErrorCode, *r.ErrorMessage)
		}
		switch {
		case r.ErrorCode == 0:
		case cs.lostCoordinator(r.ErrorCode):
			return
		case r.ErrorCode == kerr.UnknownMemberID.Code || r.ErrorCode == kerr.FencedMemberEpoch.Code:
			// Fenced: give everything up without committing, rejoin.
			w.s.Tracef("%s fenced: %v", c.name, kerr.ErrorForCode(r.ErrorCode))
			cs.release()
			clear(cs.owned)
			cs.epoch = 0
			if r.ErrorCode == kerr.UnknownMemberID.Code {
				cs.memberID = ""
			}
			return
		default:
			return
		}
		if r.MemberID != nil {
			cs.memberID = *r.MemberID
		}
		cs.epoch = r.MemberEpoch
		if r.Assignment == nil {
			return
		}
		var now []int32
		for _, t := range r.Assignment.Topics {
			if t.TopicID == id {
				now = append(now, t.Partitions...)
			}
		}
		slices.Sort(now)
		for _, part := range sortedParts(cs.owned) {
			if op := cs.owned[part]; !slices.Contains(now, part) && !op.revoking {
				// Revoked: commit what was read and give the partition up
				// only once the commit is answered, as the Java client's
				// revocation does — or the next owner may start from an
				// offset this commit is about to overwrite.
				if op.position > op.committed {
					cs.commit(part, op)
				}
				if op.commitsInFlight > 0 {
					op.revoking = true
				} else {
					delete(cs.owned, part)
				}
			}
		}
		tps := make([]check.TP, 0, len(now))
		for _, part := range now {
			if cs.owned[part] == nil {
				cs.owned[part] = &ownedPart{position: -1, committed: -1}
			}
			tps = append(tps, check.TP{Topic: cs.topic, Partition: part})
		}
		w.s.Tracef("%s assigned %v epoch %d by %d/%d member %s", c.name, now, cs.epoch, who.node, who.inc, cs.memberID)
		if a := cs.lastAssigned; a.ok && (a.epoch != cs.epoch || a.who != who || a.member != cs.memberID) {
			cs.release() // it owns nothing in its earlier generation any more
		}
		w.check.Assignment(cs.group, who.node, who.generationSpace(), cs.epoch, cs.memberID, tps)
		cs.lastAssigned = assignedAt{who: who, epoch: cs.epoch, member: cs.memberID, ok: true}
	})
}

// fetchOffset learns where to start reading part: its committed offset.
func (cs *consumer) fetchOffset(part int32, op *ownedPart) {
	w, c := cs.c.w, cs.c
	if op.fetchingOffsets || cs.coordinator < 0 {
		return
	}
	op.fetchingOffsets = true
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = cs.group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = cs.topic
	rt.Partitions = []int32{part}
	req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
	sentAfter := w.check.Seq()
	c.request(cs.coordinator, req, func(resp kmsg.Response, who responder, err error) {
		op.fetchingOffsets = false
		if err != nil || cs.owned[part] != op {
			return
		}
		r := resp.(*kmsg.OffsetFetchResponse)
		if cs.lostCoordinator(r.ErrorCode) || r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return
		}
		rp := r.Topics[0].Partitions[0]
		if cs.lostCoordinator(rp.ErrorCode) || rp.ErrorCode != 0 {
			return
		}
		tp := check.TP{Topic: cs.topic, Partition: part}
		start := rp.Offset
		if start >= 0 {
			w.check.CommitFetched(cs.group, tp, start, sentAfter)
		} else {
			start = 0
		}
		op.position, op.committed = start, rp.Offset
		w.check.Seek(c.name, tp, start)
		w.s.Tracef("%s starts %s-%d at %d (committed offset from %d/%d load %d)", c.name, cs.topic, part, start, who.node, who.inc, who.loadEpoch)
	})
}

// fetch reads part from its leader, without waiting for data.
func (cs *consumer) fetch(part int32, op *ownedPart) {
	w, c := cs.c.w, cs.c
	to := c.leader(cs.topic, part)
	if to < 0 {
		c.refreshMetadata(nil)
		return
	}
	op.fetching = true
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = cs.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = part
	rp.CurrentLeaderEpoch = -1
	rp.FetchOffset = op.position
	rp.LogStartOffset = -1
	rp.PartitionMaxBytes = 64 << 10
	rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	from := op.position
	c.request(to, req, func(resp kmsg.Response, _ responder, err error) {
		op.fetching = false
		cs.stats.fetches++
		if err != nil || cs.owned[part] != op || op.position != from {
			return
		}
		r := resp.(*kmsg.FetchResponse)
		if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return
		}
		fp := &r.Topics[0].Partitions[0]
		if fp.ErrorCode != 0 {
			if retriable(fp.ErrorCode) {
				c.refreshMetadata(nil)
			}
			if fp.ErrorCode == kerr.OffsetOutOfRange.Code && from < fp.LogStartOffset {
				op.position = fp.LogStartOffset
				w.check.Seek(c.name, check.TP{Topic: cs.topic, Partition: part}, op.position)
			}
			return
		}
		offsets, values, err := decodeRecords(fp.RecordBatches, from)
		if err != nil {
			w.report("fetch-corrupt", fmt.Sprintf("%s %s-%d@%d: %v", c.name, cs.topic, part, from, err))
			return
		}
		if len(offsets) == 0 {
			return
		}
		w.check.Consumed(c.name, check.TP{Topic: cs.topic, Partition: part}, offsets, values, fp.HighWatermark)
		cs.stats.records += len(offsets)
		op.position = offsets[len(offsets)-1] + 1
	})
}

// decodeRecords walks the batches of a fetch response and returns the
// records at or after from. A trailing partial batch is ignored, as
// clients do; a batch failing its CRC is an error.
func decodeRecords(b []byte, from int64) (offsets []int64, values []string, err error) {
	it := batch.NewIter(b)
	for {
		h, raw, ok := it.Next()
		if !ok {
			break
		}
		if _, err := batch.Validate(raw, batch.Options{}); err != nil {
			return nil, nil, fmt.Errorf("batch at %d: %w", h.BaseOffset, err)
		}
		if h.IsControl() {
			continue
		}
		ri := batch.NewRecordIter(raw[batch.HeaderLen:], h.NumRecords)
		for {
			r, ok := ri.Next()
			if !ok {
				break
			}
			off := h.BaseOffset + int64(r.OffsetDelta)
			if off >= from {
				offsets = append(offsets, off)
				values = append(values, string(r.Value))
			}
		}
		if err := ri.Err(); err != nil {
			return nil, nil, err
		}
	}
	return offsets, values, nil
}

// commit commits part's position.
func (cs *consumer) commit(part int32, op *ownedPart) {
	w, c := cs.c.w, cs.c
	if cs.coordinator < 0 || cs.memberID == "" {
		return
	}
	offset := op.position
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = cs.group
	req.Generation = cs.epoch
	req.MemberID = cs.memberID
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = cs.topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition = part
	rp.Offset = offset
	rp.LeaderEpoch = -1
	rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{rp}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	op.committed = offset
	op.commitsInFlight++
	w.s.Tracef("%s commit %s-%d=%d to %d epoch %d", c.name, cs.topic, part, offset, cs.coordinator, cs.epoch)
	c.request(cs.coordinator, req, func(resp kmsg.Response, who responder, err error) {
		op.commitsInFlight--
		if op.revoking && op.commitsInFlight == 0 && cs.owned[part] == op {
			delete(cs.owned, part) // answered or lost: the revocation completes
		}
		if err != nil {
			return
		}
		r := resp.(*kmsg.OffsetCommitResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return
		}
		code := r.Topics[0].Partitions[0].ErrorCode
		if code != 0 {
			w.s.Tracef("%s commit %s-%d=%d: %v", c.name, cs.topic, part, offset, kerr.ErrorForCode(code))
			cs.lostCoordinator(code)
			return
		}
		w.check.CommitAcked(cs.group, check.TP{Topic: cs.topic, Partition: part}, offset, w.check.Seq())
		cs.stats.commits++
		w.s.Tracef("%s committed %s-%d=%d at %d/%d load %d", c.name, cs.topic, part, offset, who.node, who.inc, who.loadEpoch)
	})
}

var _ = strconv.Itoa
