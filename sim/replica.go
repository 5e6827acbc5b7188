package sim

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/sim/check"
	"github.com/troupe-io/troupe/sim/sched"
)

// replica hosts one partition replica's cell (actors.PartitionCell, the
// daemon's partition actor without protoactor) on a simulated process,
// and runs its replica fetcher when it follows.
type replica struct {
	p    *process
	id   partlog.LogID
	tp   check.TP
	cfg  actors.PartitionConfig
	cell *actors.PartitionCell
	role actors.ReplicaRole

	timer       *sched.Event
	syncPending bool
	fetching    bool
	closed      bool

	// What the checkers have been shown.
	seenHW        int64
	seenEpoch     int32
	committedUpTo int64
}

// CellEnv.
func (r *replica) NowMs() int64 { return r.p.n.nowMs() }

func (r *replica) SetTimer(atMs int64) {
	r.timer = r.p.resetTimer(r.timer, atMs, func() { r.step(func() { r.cell.Tick() }) })
}

func (r *replica) RequestSync() bool {
	if !r.syncPending {
		r.syncPending = true
		r.p.after(r.p.n.w.diskLatency(), func() {
			r.syncPending = false
			r.step(func() { r.cell.Sync() })
		})
	}
	return false
}

func (r *replica) DeliverAlterISR(res partition.AlterISRResult) {
	r.p.after(0, func() { r.step(func() { r.cell.AlterISRAnswer(res) }) })
}

// handle delivers a request to the cell.
func (r *replica) handle(msg any) {
	if r.closed {
		return
	}
	r.step(func() { r.cell.Handle(msg) })
}

// step runs fn on the cell and shows the checkers what changed.
func (r *replica) step(fn func()) {
	if r.closed || r.p.dead {
		return
	}
	fn()
	r.observe()
	if r.id.Topic == offsetsTopic {
		// A group's write to this partition may just have been answered
		// (a follower's fetch, an fsync, a tick): hand it to the group.
		r.p.groups.deliver()
	}
}

// observe reports the replica's high watermark, leadership and newly
// committed records to the checkers.
func (r *replica) observe() {
	w, p := r.p.n.w, r.p
	st := r.cell.Status()
	if st.Leader && st.LeaderEpoch > r.seenEpoch {
		r.seenEpoch = st.LeaderEpoch
		w.check.Leader(r.tp, st.LeaderEpoch, p.n.id)
		w.s.Tracef("node %d leads %s epoch %d", p.n.id, r.id, st.LeaderEpoch)
	}
	if st.HighWatermark != r.seenHW {
		w.check.ReplicaHW(p.n.id, p.num, r.tp, st.HighWatermark)
		r.seenHW = st.HighWatermark
	}
	if r.id.Topic == offsetsTopic {
		return // the group coordinators' records; checked through the groups
	}
	if hw := min(st.HighWatermark, st.LogEnd); hw > r.committedUpTo {
		r.readCommitted(max(r.committedUpTo, st.LogStart), hw)
	}
}

// readCommitted shows the checkers the records in [from, to), which are
// below the high watermark.
func (r *replica) readCommitted(from, to int64) {
	w, p := r.p.n.w, r.p
	next, err := r.readRange(from, to, func(off int64, value string) {
		w.check.Committed(p.n.id, r.tp, off, value, -1)
	})
	if err != nil {
		w.report("replica-corrupt", fmt.Sprintf("node %d %s@%d: %v", p.n.id, r.id, next, err))
	}
	r.committedUpTo = max(r.committedUpTo, next)
}

// readRange reads the replica's own log from from up to to, calling fn
// for each record, and returns where it stopped: to, or earlier where the
// log ends, a read fails or a batch does not decode (then with the error).
func (r *replica) readRange(from, to int64, fn func(offset int64, value string)) (int64, error) {
	ch := make(chan actors.FetchResult, 1)
	var buf bytes.Buffer
	for from < to {
		r.cell.Handle(&actors.LocalReadRequest{Offset: from, MaxBytes: 1 << 20, Reply: ch})
		res := <-ch
		buf.Reset()
		_, err := res.Records.WriteTo(&buf)
		res.Records.Release()
		if res.ErrorCode != 0 || err != nil || buf.Len() == 0 {
			return from, nil
		}
		offsets, values, err := decodeRecords(buf.Bytes(), from)
		if err != nil {
			return from, err
		}
		for i, off := range offsets {
			if off < to {
				fn(off, values[i])
			}
		}
		// Batches without records, or records past to, move on too.
		next := min(lastOffset(buf.Bytes())+1, to)
		if next <= from {
			return from, nil
		}
		from = next
	}
	return from, nil
}

// kill drops the replica with its process.
func (r *replica) kill() {
	r.closed = true
	r.timer.Cancel()
}

// close stops the cell cleanly (the replica moved away).
func (r *replica) close() {
	if r.closed {
		return
	}
	r.kill()
	_ = r.cell.Close()
}

// --- reconciling replicas with the metadata image ---

// reconcileSoon schedules a reconcile (image changes come in bursts).
func (p *process) reconcileSoon() {
	if p.reconcilePending {
		return
	}
	p.reconcilePending = true
	p.after(0, func() {
		p.reconcilePending = false
		p.reconcile()
	})
}

// reconcile makes the running replicas match the image, as the daemon's
// reconcileReplicas does: only once the image shows this very process
// registered and unfenced (until then it may be a stale view).
func (p *process) reconcile() {
	img := p.ctrl.Image()
	if !p.caughtUp {
		b, ok := img.Broker(p.n.id)
		if !ok || b.Incarnation != p.incarnation || b.Fenced {
			return
		}
		p.caughtUp = true
		p.n.w.s.Tracef("node %d caught up at metadata %d", p.n.id, img.Offset)
	}
	here := map[partlog.LogID]bool{}
	for _, name := range img.TopicNames() {
		t := img.Topic(name)
		pc := p.n.w.partitionConfig(t)
		for i := range t.Partitions {
			mp := &t.Partitions[i]
			if !slices.Contains(mp.Replicas, p.n.id) {
				continue
			}
			id := partlog.LogID{Topic: name, Partition: mp.Index}
			here[id] = true
			p.applyReplica(id, mp, pc)
		}
	}
	for _, id := range sortedIDs(p.replicas) {
		if !here[id] {
			r := p.replicas[id]
			delete(p.replicas, id)
			r.close()
			_ = p.store.DeleteLog(id)
			p.n.w.s.Tracef("node %d drops %s", p.n.id, id)
		}
	}
	p.groups.reconcile(img)
}

func sortedIDs[V any](m map[partlog.LogID]V) []partlog.LogID {
	ids := make([]partlog.LogID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b partlog.LogID) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return ids
}

func (p *process) applyReplica(id partlog.LogID, mp *metadata.Partition, pc actors.PartitionConfig) {
	role := actors.ReplicaRole{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch,
		Replicas: slices.Clone(mp.Replicas), ISR: slices.Clone(mp.ISR)}
	r := p.replicas[id]
	if r == nil {
		r = &replica{p: p, id: id, tp: check.TP{Topic: id.Topic, Partition: id.Partition}, cfg: pc, role: role, seenEpoch: -1, seenHW: -1}
		cell, err := actors.OpenReplicaCell(p.store, id, pc, p.n.id, role, p.alterISR, r, p.logger)
		if err != nil {
			// A disk fault: the replica stays down until the next
			// reconcile tries again.
			p.logger.Warn("open replica", "id", id, "err", err)
			p.after(sched.Second, p.reconcileSoon)
			return
		}
		r.cell = cell
		p.replicas[id] = r
		st := cell.Status()
		p.n.w.s.Tracef("node %d opens %s start %d end %d hw %d durable %d; role leader %d epoch %d isr %v", p.n.id, id, st.LogStart, st.LogEnd, st.HighWatermark, st.DurableEnd, role.Leader, role.LeaderEpoch, role.ISR)
		r.observe()
	} else if !sameRole(r.role, role) {
		p.n.w.s.Tracef("node %d %s role leader %d epoch %d isr %v replicas %v", p.n.id, id, role.Leader, role.LeaderEpoch, role.ISR, role.Replicas)
		r.role = role
		r.handle(&role)
	}
	if role.Leader != p.n.id && role.Leader >= 0 && !r.fetching {
		r.fetching = true
		p.after(0, r.fetchRound)
	}
}

func sameRole(a, b actors.ReplicaRole) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.PartitionEpoch == b.PartitionEpoch &&
		slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR)
}

// alterISR is the cells' way to the controller (actors.AlterISRFunc).
func (p *process) alterISR(id partlog.LogID, change partition.AlterISR, answer func(partition.AlterISRResult)) {
	self := p.n.id
	p.callController(func(c *metadata.Controller, _ int64) (any, error) {
		return c.AlterPartition(id.Topic, id.Partition, self, change.LeaderEpoch, change.PartitionEpoch, change.ISR)
	}, func(res any, err error) {
		out := partition.AlterISRResult{Seq: change.Seq}
		if err != nil {
			out.ErrorCode = kafkaCode(err)
		} else {
			mp := res.(metadata.Partition)
			out.LeaderEpoch, out.PartitionEpoch, out.ISR = mp.LeaderEpoch, mp.PartitionEpoch, mp.ISR
		}
		answer(out)
	})
}

// --- the replica fetcher ---

// fetchRound is one round of a follower's fetcher: ask the cell where to
// fetch from, fetch from the leader, hand the answer to the cell; the
// cell answers once what it appended is durable, and the next round
// starts.
func (r *replica) fetchRound() {
	if r.closed || r.p.dead {
		r.fetching = false
		return
	}
	ch := make(chan actors.FollowerState, 1)
	r.handle(&actors.FollowerStateRequest{Reply: ch})
	r.p.whenReady(func() bool { return len(ch) > 0 }, func() { r.fetchFrom(<-ch) })
}

func (r *replica) fetchFrom(st actors.FollowerState) {
	w, p := r.p.n.w, r.p
	if r.closed || !st.Following {
		r.fetching = false
		return
	}
	self := p.n.id
	req := actors.ReplicaFetchRequest{ReplicaID: self, CurrentLeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		LastFetchedEpoch: st.LastFetchedEpoch, MaxBytes: 1 << 20}
	answered := false
	retry := p.after(w.cfg.RequestTimeout, func() {
		if !answered {
			answered = true
			r.fetchRound()
		}
	})
	id := r.id
	w.send(self, st.Leader, classStream, func(q *process) {
		lr := q.replicas[id]
		reply := func(res actors.FetchResult, records []byte) {
			w.send(q.n.id, self, classStream, func(p2 *process) {
				if p2 != p || answered || r.closed {
					return
				}
				answered = true
				retry.Cancel()
				r.fetched(st, res, records)
			})
		}
		if lr == nil || lr.closed {
			reply(actors.FetchResult{ErrorCode: kerr.NotLeaderForPartition.Code}, nil)
			return
		}
		ch := make(chan actors.FetchResult, 1)
		req.Reply = ch
		lr.handle(&req)
		q.whenReady(func() bool { return len(ch) > 0 }, func() {
			res := <-ch
			var buf bytes.Buffer
			if res.Records.Len() > 0 {
				if _, err := res.Records.WriteTo(&buf); err != nil {
					res.ErrorCode = kerr.KafkaStorageError.Code
				}
			}
			res.Records.Release()
			res.Records = partlog.Region{}
			reply(res, buf.Bytes())
		})
	})
}

// fetched hands a fetch answer to the follower cell.
func (r *replica) fetched(st actors.FollowerState, res actors.FetchResult, records []byte) {
	w, p := r.p.n.w, r.p
	if res.Diverging || res.ErrorCode != 0 || w.cfg.Trace != nil && len(records) > 0 {
		w.s.Tracef("node %d fetched %s@%d lastEpoch %d epoch %d: err %d diverging %v(%d,%d) bytes %d hw %d", p.n.id, r.id, st.FetchOffset, st.LastFetchedEpoch,
			st.LeaderEpoch, res.ErrorCode, res.Diverging, res.DivergingEpoch, res.DivergingEndOffset, len(records), res.HighWatermark)
	}
	switch {
	case res.ErrorCode != 0 && res.ErrorCode != kerr.OffsetOutOfRange.Code:
		p.after(w.cfg.RetryBackoff, r.fetchRound)
		return
	}
	ch := make(chan actors.FollowerState, 1)
	r.handle(&actors.FollowerFetchedRequest{LeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		ErrorCode: res.ErrorCode, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset,
		Diverging: res.Diverging, DivergingEpoch: res.DivergingEpoch, DivergingEndOffset: res.DivergingEndOffset,
		Records: records, Reply: ch})
	idle := len(records) == 0
	p.whenReady(func() bool { return len(ch) > 0 }, func() {
		next := <-ch
		if idle {
			p.after(w.cfg.ReplicaPoll, func() { r.fetchFrom(next) })
			return
		}
		r.fetchFrom(next)
	})
}

// lastOffset is the last offset of the last whole batch in b, -1 if none.
func lastOffset(b []byte) int64 {
	last := int64(-1)
	for off := 0; off < len(b); {
		h, err := batchHeader(b[off:])
		if err != nil || h.Size() > len(b)-off {
			break
		}
		last = h.LastOffset()
		off += h.Size()
	}
	return last
}
