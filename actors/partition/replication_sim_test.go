package partition

import (
	"bytes"
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/batch"
)

// TestReplicationRandomized wires three cores together by hand — a
// leader and two followers over a simulated network and simulated
// storage — and drives them with random produces, message delays and
// drops, fsync delays, crashes (losing what was not fsynced) and leader
// changes made by a simulated controller. After every event it checks:
//
//   - each core's high watermark only rises (but for truncation and
//     restarts) and never passes what its own storage has fsynced;
//   - the current leader's high watermark is at most the durable log end
//     of every member of the controller's ISR;
//   - below its high watermark every replica holds exactly the committed
//     batches: the committed log only ever grows, byte for byte;
//   - no replica truncates below its high watermark;
//   - every acks=-1 acknowledgement is for committed records, and at the
//     end every ISR member has them; an idempotent producer that retries
//     across failovers gets each batch written exactly once.
//
// At the end the network calms down and every replica must catch up and
// rejoin the ISR. A quarter of the runs use relaxed flushing instead (no
// crashes there, as in Kafka a crash could then lose acknowledged data).
//
// -sim.seeds=N runs more seeds; -sim.trace=SEED logs every step of one.
var (
	simTrace = flag.Int("sim.trace", -1, "log every step of this TestReplicationRandomized seed")
	simSeeds = flag.Int("sim.seeds", 0, "run this many TestReplicationRandomized seeds (default 100, -short 8)")
)

func TestReplicationRandomized(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 8
	}
	if *simSeeds > 0 {
		seeds = *simSeeds
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, uint64(seed))
			s.trace = seed == *simTrace
			s.run()
		})
	}
}

// simBatch is one batch in a simulated log.
type simBatch struct {
	base, last int64
	epoch      int32
	data       []byte
}

// simLog is a replica's storage: contiguous batches from offset 0, the
// durable end, and the fsync in flight.
type simLog struct {
	batches []simBatch
	durable int64
	syncing bool
	syncEnd int64
	syncCap int64 // the in-flight fsync covers no more than this (-1: no cap)
}

func (l *simLog) end() int64 {
	if len(l.batches) == 0 {
		return 0
	}
	return l.batches[len(l.batches)-1].last + 1
}

func (l *simLog) latestEpoch() int32 {
	if len(l.batches) == 0 {
		return -1
	}
	return l.batches[len(l.batches)-1].epoch
}

// append checks what partlog.Log.Append checks: framing, offsets
// continuing the log, no epoch regression.
func (l *simLog) append(records []byte) error {
	for off := 0; off < len(records); {
		h, err := batch.ParseHeader(records[off:])
		if err != nil || h.Size() > len(records)-off {
			return fmt.Errorf("bad framing at byte %d: %v", off, err)
		}
		if h.BaseOffset != l.end() {
			return fmt.Errorf("batch at %d appended at end %d", h.BaseOffset, l.end())
		}
		if h.PartitionLeaderEpoch < l.latestEpoch() {
			return fmt.Errorf("epoch %d after %d", h.PartitionLeaderEpoch, l.latestEpoch())
		}
		l.batches = append(l.batches, simBatch{base: h.BaseOffset, last: h.LastOffset(), epoch: h.PartitionLeaderEpoch,
			data: slices.Clone(records[off : off+h.Size()])})
		off += h.Size()
	}
	return nil
}

// truncate cuts at the first batch holding an offset at or past end, as
// partlog.Log.Truncate does, and returns the new end.
func (l *simLog) truncate(end int64) int64 {
	i := 0
	for i < len(l.batches) && l.batches[i].last < end {
		i++
	}
	l.batches = l.batches[:i]
	e := l.end()
	l.durable = min(l.durable, e)
	if l.syncing && (l.syncCap < 0 || e < l.syncCap) {
		l.syncCap = e
	}
	return e
}

// read returns whole batches from offset, below limit, about maxBytes
// (at least one), sometimes followed by half of the next batch, as a
// fetch cut by its size limit may be.
func (l *simLog) read(rng *rand.Rand, offset int64, maxBytes int32, limit int64) []byte {
	var out []byte
	for _, b := range l.batches {
		if b.last < offset {
			continue
		}
		if b.base >= limit {
			break
		}
		if len(out) > 0 && len(out)+len(b.data) > int(maxBytes) {
			if rng.IntN(4) == 0 {
				out = append(out, b.data[:len(b.data)/2]...)
			}
			break
		}
		out = append(out, b.data...)
	}
	return out
}

// endOffsetForEpoch is partlog's EndOffsetForEpoch over the history the
// batches' epochs imply.
func (l *simLog) endOffsetForEpoch(epoch int32) (int32, int64) {
	type entry struct {
		epoch int32
		start int64
	}
	var h []entry
	for _, b := range l.batches {
		if len(h) == 0 || b.epoch > h[len(h)-1].epoch {
			h = append(h, entry{b.epoch, b.base})
		}
	}
	if epoch < 0 || len(h) == 0 {
		return -1, -1
	}
	if h[len(h)-1].epoch == epoch {
		return epoch, l.end()
	}
	above := 0
	for above < len(h) && h[above].epoch <= epoch {
		above++
	}
	switch above {
	case len(h):
		return -1, -1
	case 0:
		return epoch, h[0].start
	default:
		return h[above-1].epoch, h[above].start
	}
}

// epochBefore is the epoch of the batch holding offset-1 (-1 if none):
// a fetch's LastFetchedEpoch.
func (l *simLog) epochBefore(offset int64) int32 {
	for i := len(l.batches) - 1; i >= 0; i-- {
		if l.batches[i].base < offset {
			return l.batches[i].epoch
		}
	}
	return -1
}

func (l *simLog) batchAt(base int64) (simBatch, bool) {
	i, ok := slices.BinarySearchFunc(l.batches, base, func(b simBatch, base int64) int {
		switch {
		case b.base < base:
			return -1
		case b.base > base:
			return 1
		}
		return 0
	})
	if !ok {
		return simBatch{}, false
	}
	return l.batches[i], true
}

type simNode struct {
	id    int32
	core  *Core
	log   *simLog
	alive bool
	// gen counts restarts: events of an earlier life are dropped.
	gen     int
	timerAt int64
	// The fetcher: one fetch in flight at a time.
	fetching     bool
	fetchSeq     int
	backoffUntil int64
	metaAt       int64 // metadata is applied in order
	lastHW       int64
	checkedTo    int64 // batches below this were checked against the committed log
	tickNow      int64
	ticksAtNow   int
}

type simFetch struct {
	from      *simNode
	gen, seq  int
	epoch     int32
	offset    int64
	lastEpoch int32
	parked    bool
	noWait    bool
}

type simFetchResp struct {
	req     *simFetch
	code    int16
	div     *EpochEndOffset
	records []byte
	hw      int64
}

type simAttempt struct {
	p       *simProduce
	records []byte
	done    bool
}

type simProduce struct {
	acks  int16
	idem  bool
	seq   int32
	n     int
	ident int // distinguishes payloads
}

type simEvent struct {
	at, seq int64
	fn      func()
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	t        *testing.T
	rng      *rand.Rand
	now      int64
	seq      int64
	q        simQueue
	nodes    []*simNode
	settings Settings

	// Knobs drawn per seed.
	dropProb  float64
	maxDelay  int64
	metaDelay int64   // metadata may lag far behind the data path
	alterDrop float64 // AlterPartition requests or answers lost
	maxFsync  int64
	chaosEnd  int64
	runEnd    int64
	calm      bool
	downNodes int

	// The controller's state of the partition.
	leader                      int32
	leaderEpoch, partitionEpoch int32
	isr                         []int32

	committed    map[int64][]byte
	committedEnd int64
	acked        []simBatch // acks=-1 acknowledgements (base, last, data)

	// The idempotent producer: one batch in flight, retried until
	// answered.
	idemSeq      int32
	idemInFlight *simProduce
	idemAcked    map[int32]int64 // seq -> base offset answered
	idents       int

	trace bool
	stats struct{ events, elections, crashes, truncations, diverging, alters, altersApplied, stale, acks int }
}

func newSim(t *testing.T, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// A quarter of the runs use Kafka's relaxed flushing instead of the
	// default stance: replicas count what they have written, fsync
	// follows flush.ms, and (as in Kafka) nothing crashes, since a crash
	// could then lose acknowledged records.
	s := &sim{
		t: t, rng: rng,
		settings:  Settings{AckAfterSync: rng.IntN(4) > 0, ReplicaLagTimeMaxMs: 100 + rng.Int64N(300), MinInsyncReplicas: int32(1 + rng.IntN(2))},
		dropProb:  []float64{0, 0.02, 0.1}[rng.IntN(3)],
		maxDelay:  1 + rng.Int64N(30),
		maxFsync:  1 + rng.Int64N(15),
		metaDelay: []int64{30, 30, 1000}[rng.IntN(3)],
		alterDrop: []float64{0, 0.05, 0.3}[rng.IntN(3)],
		chaosEnd:  3000, runEnd: 8000,
		committed: map[int64][]byte{}, idemAcked: map[int32]int64{},
	}
	replicas := []int32{1, 2, 3}
	s.leader, s.leaderEpoch, s.partitionEpoch, s.isr = 1, 1, 1, slices.Clone(replicas)
	if !s.settings.AckAfterSync {
		s.settings.FlushMs = 1 + rng.Int64N(50)
	}
	for _, id := range replicas {
		n := &simNode{id: id, log: &simLog{syncCap: -1}, alive: true, timerAt: -1}
		s.nodes = append(s.nodes, n)
		s.boot(n)
	}
	return s
}

func (s *sim) node(id int32) *simNode { return s.nodes[id-1] }

// boot starts a node's core on what its storage holds, and tells it its
// role as the controller sees it.
func (s *sim) boot(n *simNode) {
	n.core = NewReplica(s.settings, n.id)
	var pbs []ProducerBatch
	for _, b := range n.log.batches {
		h, _ := batch.ParseHeader(b.data)
		if h.ProducerID >= 0 {
			pbs = append(pbs, ProducerBatch{BaseOffset: b.base, LastOffset: b.last, ProducerID: h.ProducerID,
				ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence, TimestampMs: h.MaxTimestamp})
		}
	}
	n.lastHW, n.timerAt, n.metaAt = 0, -1, s.now
	s.step(n, Recovered{LogEnd: n.log.end(), ProducerBatches: pbs, NowMs: s.now})
	s.sendRole(n)
}

// sendRole tells n its role as the controller sees it now: like a
// metadata record, the message is what was true when it was written.
func (s *sim) sendRole(n *simNode) {
	leader, le, pe, isr := s.leader, s.leaderEpoch, s.partitionEpoch, slices.Clone(s.isr)
	if n.id == leader {
		s.meta(n, func() Msg {
			return BecomeLeader{LeaderEpoch: le, PartitionEpoch: pe, Replicas: []int32{1, 2, 3}, ISR: isr, NowMs: s.now}
		})
		return
	}
	s.meta(n, func() Msg {
		return BecomeFollower{Leader: leader, LeaderEpoch: le, PartitionEpoch: pe, Replicas: []int32{1, 2, 3}}
	})
}

func (s *sim) at(t int64, fn func()) {
	s.seq++
	heap.Push(&s.q, &simEvent{at: max(t, s.now), seq: s.seq, fn: fn})
}

func (s *sim) after(d int64, fn func()) { s.at(s.now+d, fn) }
func (s *sim) delay() int64             { return 1 + s.rng.Int64N(s.maxDelay) }
func (s *sim) dropped() bool            { return !s.calm && s.rng.Float64() < s.dropProb }

// net delivers fn after a network delay, unless the message is lost.
func (s *sim) net(fn func()) {
	if s.dropped() {
		return
	}
	s.after(s.delay(), fn)
}

// meta applies a metadata update to n after a delay, in order and
// reliably, as a broker replays the metadata log.
func (s *sim) meta(n *simNode, msg func() Msg) {
	at := max(n.metaAt, s.now+1+s.rng.Int64N(s.metaDelay))
	n.metaAt = at
	gen := n.gen
	s.at(at, func() {
		if n.alive && n.gen == gen {
			s.step(n, msg())
		}
	})
}

func (s *sim) run() {
	s.after(0, s.chaos)
	s.after(0, s.idemProduce)
	s.after(s.chaosEnd, func() {
		s.calm = true
		for _, n := range s.nodes {
			if !n.alive {
				s.restart(n)
			}
		}
	})
	for events := 0; s.q.Len() > 0; events++ {
		if events > 2_000_000 {
			s.t.Fatalf("runaway simulation at %d ms", s.now)
		}
		e := heap.Pop(&s.q).(*simEvent)
		if e.at > s.runEnd {
			break
		}
		s.stats.events++
		s.now = e.at
		e.fn()
		for _, n := range s.nodes {
			s.maybeFetch(n)
		}
		s.check()
	}
	s.final()
}

// chaos is the random workload: produces, crashes and leader changes.
func (s *sim) chaos() {
	if s.now >= s.chaosEnd {
		return
	}
	s.after(5, s.chaos)
	r := s.rng.Float64()
	switch {
	case r < 0.3:
		acks := []int16{-1, -1, 1, 0}[s.rng.IntN(4)]
		s.idents++
		s.produce(&simProduce{acks: acks, n: 1 + s.rng.IntN(3), ident: s.idents})
	case r < 0.303 && s.downNodes == 0 && s.settings.AckAfterSync:
		s.crash(s.nodes[s.rng.IntN(len(s.nodes))])
	case r < 0.306:
		if old := s.node(s.leader); old.alive {
			s.elect(s.leader)
		}
	}
}

// idemProduce keeps one idempotent batch in flight, retrying it until
// some leader answers it.
func (s *sim) idemProduce() {
	if s.idemInFlight != nil || s.now >= s.chaosEnd {
		return
	}
	s.idents++
	p := &simProduce{acks: -1, idem: true, seq: s.idemSeq, n: 1 + s.rng.IntN(3), ident: s.idents}
	s.idemInFlight = p
	s.produce(p)
}

func (s *sim) produce(p *simProduce) {
	pid, seq := int64(-1), int32(-1)
	if p.idem {
		pid, seq = 7, p.seq
	}
	recs := make([]batch.Record, p.n)
	for i := range recs {
		recs[i] = batch.Record{Value: fmt.Appendf(nil, "p%d-%d", p.ident, i)}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: pid, BaseSequence: seq}, recs)
	if err != nil {
		s.t.Fatal(err)
	}
	vs, err := batch.Validate(b, batch.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	sum := Summary{NumRecords: vs.NumRecords, ProducerID: vs.ProducerID, ProducerEpoch: vs.ProducerEpoch, BaseSequence: vs.BaseSequence, LastSequence: vs.LastSequence}
	a := &simAttempt{p: p, records: b}
	to := s.node(s.leader)
	s.net(func() {
		if !to.alive {
			return
		}
		gen := to.gen
		_ = gen
		s.step(to, Produce{Token: a, Records: a.records, Summary: sum, Acks: p.acks, NowMs: s.now, DeadlineMs: s.now + 1000})
	})
	if p.idem {
		// The client's request timeout: try again if nothing came back.
		s.after(1500, func() {
			if !a.done && s.idemInFlight == p {
				a.done = true
				s.produce(p)
			}
		})
	}
}

func (s *sim) onProduceReply(a *simAttempt, r ProduceResult) {
	p := a.p
	if r.ErrorCode == 0 && p.acks == -1 {
		// acks=-1: the records must be committed.
		data, ok := s.committed[r.BaseOffset]
		if !ok {
			s.t.Fatalf("t=%d: acks=-1 answered for offset %d, which is not committed (committed end %d)", s.now, r.BaseOffset, s.committedEnd)
		}
		h, _ := batch.ParseHeader(data)
		if p.idem {
			if h.ProducerID != 7 || h.BaseSequence != p.seq {
				s.t.Fatalf("t=%d: idempotent seq %d answered with offset %d, which holds producer %d seq %d", s.now, p.seq, r.BaseOffset, h.ProducerID, h.BaseSequence)
			}
			if prev, ok := s.idemAcked[p.seq]; ok && prev != r.BaseOffset {
				s.t.Fatalf("t=%d: idempotent seq %d written twice: at %d and %d", s.now, p.seq, prev, r.BaseOffset)
			}
			s.idemAcked[p.seq] = r.BaseOffset
		} else if !bytes.Equal(data[batch.HeaderLen:], a.records[batch.HeaderLen:]) {
			s.t.Fatalf("t=%d: acks=-1 answered for offset %d, which holds other records", s.now, r.BaseOffset)
		}
		s.stats.acks++
		s.acked = append(s.acked, simBatch{base: h.BaseOffset, last: h.LastOffset(), data: data})
	}
	if !p.idem || a.done {
		return
	}
	a.done = true
	switch r.ErrorCode {
	case 0:
		s.idemSeq += int32(p.n)
		s.idemInFlight = nil
		s.after(1+s.rng.Int64N(10), s.idemProduce)
	case kerr.NotLeaderForPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code,
		kerr.RequestTimedOut.Code:
		s.after(20, func() {
			if s.idemInFlight == p {
				s.produce(p)
			}
		})
	default:
		s.t.Fatalf("t=%d: idempotent produce seq %d: error %d (%s)", s.now, p.seq, r.ErrorCode, r.ErrorMessage)
	}
}

// step feeds a node's core and carries out its Ready, as the host does.
func (s *sim) step(n *simNode, m Msg) {
	if s.trace {
		switch m := m.(type) {
		case FollowerAppend:
			s.t.Logf("t=%d n%d <- FollowerAppend epoch=%d hw=%d bytes=%d (log-end %d)", s.now, n.id, m.LeaderEpoch, m.HighWatermark, len(m.Records), n.core.LogEnd())
		case Produce:
			s.t.Logf("t=%d n%d <- Produce acks=%d", s.now, n.id, m.Acks)
		case Tick, ReplicaWatch:
		default:
			s.t.Logf("t=%d n%d <- %T %+v", s.now, n.id, m, m)
		}
	}
	n.core.Step(m)
	s.handle(n, n.core.Ready())
}

func (s *sim) handle(n *simNode, rd Ready) {
	if s.trace {
		c := n.core
		s.t.Logf("   n%d leader=%v epoch=%d isr=%v pending-isr=%v hw=%d durable=%d/%d log-end=%d alter=%v", n.id, c.IsLeader(), c.leaderEpoch, c.isr, c.pendingISR, c.hw, c.durableEnd, n.log.durable, c.logEnd, rd.AlterISR)
	}
	for _, a := range rd.Appends {
		if err := n.log.append(a.Records); err != nil {
			s.t.Fatalf("t=%d: node %d: append %d..%d: %v", s.now, n.id, a.BaseOffset, a.LastOffset, err)
		}
	}
	if rd.Sync {
		s.startSync(n)
	}
	for _, r := range rd.Replies {
		a, r := r.Token.(*simAttempt), r.Result
		s.net(func() { s.onProduceReply(a, r) })
	}
	for _, r := range rd.Reads {
		s.serveFetch(n, r)
	}
	for _, w := range rd.Wakes {
		req := w.(*simFetch)
		if req.parked {
			req.parked, req.noWait = false, true
			s.after(0, func() { s.leaderFetch(n, req) })
		}
	}
	if rd.AlterISR != nil {
		s.stats.alters++
		s.sendAlterISR(n, *rd.AlterISR)
	}
	for _, r := range rd.FollowerResults {
		if r.Err != nil {
			s.stats.stale++
		}
		if r.Err != nil && !errors.Is(r.Err, ErrStaleLeaderEpoch) && !errors.Is(r.Err, ErrNotFollower) {
			s.t.Fatalf("t=%d: node %d: follower append: %v", s.now, n.id, r.Err)
		}
	}
	if rd.MoveLogStart != 0 {
		s.t.Fatalf("t=%d: node %d: log start moved to %d without deletes", s.now, n.id, rd.MoveLogStart)
	}
	s.armTimer(n)
}

func (s *sim) startSync(n *simNode) {
	if n.log.syncing {
		s.t.Fatalf("t=%d: node %d: second fsync requested while one runs", s.now, n.id)
	}
	n.log.syncing, n.log.syncEnd, n.log.syncCap = true, n.log.end(), -1
	gen := n.gen
	s.after(1+s.rng.Int64N(s.maxFsync), func() {
		if !n.alive || n.gen != gen {
			return
		}
		end := n.log.syncEnd
		if n.log.syncCap >= 0 {
			end = min(end, n.log.syncCap)
		}
		n.log.durable = max(n.log.durable, end)
		n.log.syncing = false
		// Like partlog.Log.Sync, report the end the fsync started at.
		s.step(n, Synced{DurableEnd: n.log.syncEnd})
	})
}

// armTimer keeps one timer for the core's next deadline, as the host does.
func (s *sim) armTimer(n *simNode) {
	next := n.core.NextTickMs()
	if next < 0 || (n.timerAt >= 0 && n.timerAt <= next) {
		return
	}
	n.timerAt = next
	gen := n.gen
	s.at(next, func() {
		if !n.alive || n.gen != gen || n.timerAt != next {
			return
		}
		n.timerAt = -1
		if n.tickNow == s.now {
			n.ticksAtNow++
			if n.ticksAtNow > 100 {
				c := n.core
				s.t.Fatalf("t=%d: node %d: NextTickMs keeps asking for a tick Tick does not clear (next %d; watches %d/%d min %d, pending deadline %d, isr check %d, unflushed %d since %d, sync %v, durable %d, log end %d, snapshot %d, leader %v)",
					s.now, n.id, next, len(c.watches), len(c.replicaWatches), c.minWatchDeadline, c.minPendingDeadline, c.nextISRCheckMs(),
					c.unflushed, c.oldestUnflushedMs, c.syncInFlight, c.durableEnd, c.logEnd, c.nextSnapshotMs, c.IsLeader())
			}
		} else {
			n.tickNow, n.ticksAtNow = s.now, 0
		}
		s.step(n, Tick{NowMs: s.now})
	})
}

// maybeFetch sends a follower's next fetch: to the leader it knows, from
// its log end once that is durable, one at a time.
func (s *sim) maybeFetch(f *simNode) {
	c := f.core
	if !f.alive || f.fetching || c.IsLeader() || c.Leader() < 0 || s.now < f.backoffUntil || c.FetchOffset() != c.LogEnd() {
		return
	}
	f.fetching = true
	f.fetchSeq++
	req := &simFetch{from: f, gen: f.gen, seq: f.fetchSeq, epoch: c.LeaderEpoch(), offset: c.LogEnd(), lastEpoch: f.log.epochBefore(c.LogEnd())}
	to := s.node(c.Leader())
	s.net(func() { s.leaderFetch(to, req) })
	s.after(300, func() { // the fetcher's request timeout
		if f.gen == req.gen && f.fetching && f.fetchSeq == req.seq {
			f.fetching = false
		}
	})
}

func (s *sim) leaderFetch(n *simNode, req *simFetch) {
	if !n.alive {
		return
	}
	l := EpochLookup{Epoch: -1, EndOffset: -1, LatestEpoch: -1}
	if req.lastEpoch >= 0 {
		l.Epoch, l.EndOffset = n.log.endOffsetForEpoch(req.lastEpoch)
		l.LatestEpoch = n.log.latestEpoch()
	}
	s.step(n, ReplicaFetch{Token: req, ReplicaID: req.from.id, CurrentLeaderEpoch: req.epoch, FetchOffset: req.offset,
		LastFetchedEpoch: req.lastEpoch, Lookup: l, MaxBytes: int32(100 + s.rng.IntN(400)), NowMs: s.now})
}

func (s *sim) serveFetch(n *simNode, r Read) {
	req := r.Token.(*simFetch)
	if r.ErrorCode == 0 && r.Diverging == nil && r.Offset == r.Limit && !req.noWait {
		// Nothing new: long-poll (replica.fetch.wait.max.ms).
		req.parked = true
		gen := n.gen
		s.step(n, ReplicaWatch{Token: req, Offset: r.Offset, DeadlineMs: s.now + 500})
		s.after(500, func() {
			if n.gen == gen && req.parked {
				req.parked, req.noWait = false, true
				s.leaderFetch(n, req)
			}
		})
		return
	}
	resp := simFetchResp{req: req, code: r.ErrorCode, div: r.Diverging, hw: r.HighWatermark}
	if r.ErrorCode == 0 && r.Diverging == nil {
		resp.records = n.log.read(s.rng, r.Offset, r.MaxBytes, r.Limit)
	}
	s.net(func() { s.onFetchResponse(resp) })
}

func (s *sim) onFetchResponse(resp simFetchResp) {
	req, f := resp.req, resp.req.from
	if !f.alive || f.gen != req.gen || !f.fetching || f.fetchSeq != req.seq {
		return // an answer to a fetch given up on
	}
	f.fetching = false
	if f.core.IsLeader() || f.core.LeaderEpoch() != req.epoch {
		return // the fetcher of that leadership is gone
	}
	switch {
	case resp.code == kerr.NotLeaderForPartition.Code, resp.code == kerr.FencedLeaderEpoch.Code,
		resp.code == kerr.UnknownLeaderEpoch.Code, resp.code == kerr.KafkaStorageError.Code:
		f.backoffUntil = s.now + 20
	case resp.code == kerr.OffsetOutOfRange.Code:
		// The leader cannot place our log: fall back to what is known to
		// be committed.
		s.truncate(f, f.core.HighWatermark())
	case resp.code != 0:
		s.t.Fatalf("t=%d: node %d: fetch error %d", s.now, f.id, resp.code)
	case resp.div != nil:
		s.stats.diverging++
		s.truncateDiverging(f, *resp.div)
	default:
		s.step(f, FollowerAppend{Token: req, LeaderEpoch: req.epoch, FetchOffset: req.offset, Records: resp.records, HighWatermark: resp.hw, NowMs: s.now})
	}
}

// truncateDiverging is Kafka's follower truncation on a DivergingEpoch
// (AbstractFetcherThread.getOffsetTruncationState).
func (s *sim) truncateDiverging(f *simNode, d EpochEndOffset) {
	end := f.log.end()
	to := end
	switch fe, fend := f.log.endOffsetForEpoch(d.Epoch); {
	case d.EndOffset < 0:
		to = f.core.HighWatermark()
	case d.Epoch < 0, fe < 0:
		to = min(d.EndOffset, end)
	case fe != d.Epoch:
		to = min(fend, end)
	default:
		to = min(d.EndOffset, fend, end)
	}
	s.truncate(f, to)
}

func (s *sim) truncate(f *simNode, to int64) {
	if hw := f.core.HighWatermark(); to < hw {
		s.t.Fatalf("t=%d: node %d truncates to %d, below its high watermark %d", s.now, f.id, to, hw)
	}
	if to < f.log.end() {
		s.stats.truncations++
	}
	end := f.log.truncate(to)
	s.step(f, TruncateTo{Offset: end})
	f.lastHW = f.core.HighWatermark()
}

// sendAlterISR carries an ISR change to the controller and its answer
// back; a lost request or answer comes back as REQUEST_TIMED_OUT.
func (s *sim) sendAlterISR(n *simNode, a AlterISR) {
	gen := n.gen
	respond := func(res AlterISRResult, d int64) {
		s.after(d, func() {
			if n.alive && n.gen == gen {
				res.NowMs = s.now
				s.step(n, res)
			}
		})
	}
	timedOut := AlterISRResult{Seq: a.Seq, ErrorCode: kerr.RequestTimedOut.Code}
	lost := func() bool { return !s.calm && s.rng.Float64() < s.alterDrop }
	if lost() {
		respond(timedOut, 300)
		return
	}
	s.after(s.delay(), func() {
		if s.rng.IntN(20) == 0 {
			respond(AlterISRResult{Seq: a.Seq, ErrorCode: kerr.NotController.Code}, s.delay())
			return
		}
		res := s.alterPartition(n.id, a)
		res.Seq = a.Seq
		if lost() {
			respond(timedOut, 300)
			return
		}
		respond(res, s.delay())
	})
}

// alterPartition is the controller's AlterPartition: only the current
// leader, at the current epochs, may change the ISR.
func (s *sim) alterPartition(from int32, a AlterISR) AlterISRResult {
	switch {
	case from != s.leader || a.LeaderEpoch != s.leaderEpoch:
		return AlterISRResult{ErrorCode: kerr.FencedLeaderEpoch.Code}
	case a.PartitionEpoch != s.partitionEpoch:
		return AlterISRResult{ErrorCode: kerr.InvalidUpdateVersion.Code}
	case !slices.Contains(a.ISR, s.leader):
		return AlterISRResult{ErrorCode: kerr.InvalidRequest.Code}
	}
	for _, id := range a.ISR {
		if !slices.Contains(s.isr, id) && !s.node(id).alive {
			return AlterISRResult{ErrorCode: kerr.IneligibleReplica.Code}
		}
	}
	s.stats.altersApplied++
	s.isr = slices.Clone(a.ISR)
	s.partitionEpoch++
	s.broadcastPartition()
	return AlterISRResult{LeaderEpoch: s.leaderEpoch, PartitionEpoch: s.partitionEpoch, ISR: slices.Clone(s.isr)}
}

func (s *sim) broadcastPartition() {
	le, pe, isr := s.leaderEpoch, s.partitionEpoch, slices.Clone(s.isr)
	for _, n := range s.nodes {
		if n.alive {
			s.meta(n, func() Msg {
				return PartitionChanged{LeaderEpoch: le, PartitionEpoch: pe, Replicas: []int32{1, 2, 3}, ISR: isr}
			})
		}
	}
}

// elect moves the leadership to another live ISR member (a clean
// election), if there is one.
func (s *sim) elect(exclude int32) bool {
	var cands []int32
	for _, id := range s.isr {
		if id != exclude && s.node(id).alive {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return false
	}
	s.stats.elections++
	s.leader = cands[s.rng.IntN(len(cands))]
	s.leaderEpoch++
	s.partitionEpoch++
	for _, n := range s.nodes {
		if n.alive {
			s.sendRole(n)
		}
	}
	return true
}

// has is how far a replica counts as having the log: what it fsynced
// under the default stance, what it wrote under relaxed flushing.
func (s *sim) has(n *simNode) int64 {
	if s.settings.AckAfterSync {
		return n.log.durable
	}
	return n.log.end()
}

// crash loses what a node had not fsynced; it restarts a little later.
func (s *sim) crash(n *simNode) {
	if !n.alive {
		return
	}
	s.stats.crashes++
	n.alive = false
	n.gen++
	n.fetching = false
	n.log.truncate(n.log.durable)
	n.log.syncing, n.log.syncCap = false, -1
	s.downNodes++
	if s.leader == n.id {
		s.elect(n.id)
	}
	s.after(50+s.rng.Int64N(300), func() { s.restart(n) })
}

func (s *sim) restart(n *simNode) {
	if n.alive {
		return
	}
	n.alive = true
	n.gen++
	s.downNodes--
	if s.leader == n.id {
		// Nobody else could take over: it leads again, in a new epoch.
		s.leaderEpoch++
		s.partitionEpoch++
		for _, o := range s.nodes {
			if o.alive && o != n {
				s.sendRole(o)
			}
		}
	}
	s.boot(n)
}

// check asserts the invariants after every event.
func (s *sim) check() {
	// Leaders first: they define what is committed.
	for _, leaders := range []bool{true, false} {
		for _, n := range s.nodes {
			if !n.alive || n.core.IsLeader() != leaders {
				continue
			}
			s.checkNode(n)
		}
	}
	if l := s.node(s.leader); l.alive && l.core.IsLeader() && l.core.LeaderEpoch() == s.leaderEpoch {
		hw := l.core.HighWatermark()
		for _, id := range s.isr {
			if d := s.has(s.node(id)); hw > d {
				s.t.Fatalf("t=%d: leader %d high watermark %d passes ISR member %d's end %d", s.now, l.id, hw, id, d)
			}
		}
	}
}

func (s *sim) checkNode(n *simNode) {
	c := n.core
	hw := c.HighWatermark()
	switch {
	case c.LogEnd() != n.log.end():
		s.t.Fatalf("t=%d: node %d: core log end %d, storage %d", s.now, n.id, c.LogEnd(), n.log.end())
	case c.DurableEnd() > n.log.durable:
		s.t.Fatalf("t=%d: node %d: core durable end %d, storage fsynced %d", s.now, n.id, c.DurableEnd(), n.log.durable)
	case s.settings.AckAfterSync && hw > c.DurableEnd():
		s.t.Fatalf("t=%d: node %d: high watermark %d past its durable end %d", s.now, n.id, hw, c.DurableEnd())
	case hw < n.lastHW:
		s.t.Fatalf("t=%d: node %d: high watermark went back from %d to %d", s.now, n.id, n.lastHW, hw)
	}
	n.lastHW = hw
	// Below its high watermark a replica holds the committed log; a
	// leader's high watermark extends it.
	for _, b := range n.log.batches {
		if b.base < n.checkedTo {
			continue
		}
		if b.last >= hw {
			break
		}
		if data, ok := s.committed[b.base]; ok {
			if !bytes.Equal(data, b.data) {
				s.t.Fatalf("t=%d: node %d holds another batch at %d, below its high watermark %d", s.now, n.id, b.base, hw)
			}
		} else if c.IsLeader() && b.base == s.committedEnd {
			s.committed[b.base] = b.data
			s.committedEnd = b.last + 1
		} else {
			s.t.Fatalf("t=%d: node %d: batch at %d below its high watermark %d is not committed (committed end %d)", s.now, n.id, b.base, hw, s.committedEnd)
		}
		n.checkedTo = b.last + 1
	}
}

// final checks, after a calm spell, that everyone caught up and that the
// acknowledged records are on every ISR member.
func (s *sim) final() {
	l := s.node(s.leader)
	if !l.alive || !l.core.IsLeader() {
		s.t.Fatalf("no live leader at the end (leader %d)", s.leader)
	}
	if len(s.isr) != 3 {
		s.t.Fatalf("ISR %v at the end: a replica did not rejoin (leader %d, log end %d, hw %d)", s.isr, l.id, l.core.LogEnd(), l.core.HighWatermark())
	}
	if hw, end := l.core.HighWatermark(), l.core.LogEnd(); hw != end {
		s.t.Fatalf("leader's high watermark %d short of its log end %d after calm", hw, end)
	}
	for _, n := range s.nodes {
		if n.log.end() != l.log.end() || s.has(n) != n.log.end() {
			s.t.Fatalf("node %d ends at %d (durable %d), leader at %d", n.id, n.log.end(), n.log.durable, l.log.end())
		}
		for _, a := range s.acked {
			b, ok := n.log.batchAt(a.base)
			if !ok || !bytes.Equal(b.data, a.data) {
				s.t.Fatalf("node %d lost the acknowledged batch at %d", n.id, a.base)
			}
		}
	}
	// Exactly once: the idempotent producer's batches appear once each,
	// in sequence, and every acknowledged one is there.
	next := int32(0)
	for _, b := range l.log.batches {
		h, _ := batch.ParseHeader(b.data)
		if h.ProducerID != 7 {
			continue
		}
		if h.BaseSequence != next {
			s.t.Fatalf("idempotent batch at %d has seq %d, want %d (duplicate or gap)", b.base, h.BaseSequence, next)
		}
		if off, ok := s.idemAcked[h.BaseSequence]; ok && off != b.base {
			s.t.Fatalf("seq %d acknowledged at %d but written at %d", h.BaseSequence, off, b.base)
		}
		next += h.LastOffsetDelta + 1
	}
	for seq := range s.idemAcked {
		if seq >= next {
			s.t.Fatalf("acknowledged seq %d missing from the log (sequences end at %d)", seq, next)
		}
	}
	if len(s.acked) == 0 {
		s.t.Fatalf("no acks=-1 produce was ever acknowledged")
	}
	s.t.Logf("%+v log-end=%d idempotent-seq=%d drop=%.2f delay<=%d lag=%d min-isr=%d ack-after-sync=%v",
		s.stats, l.log.end(), next, s.dropProb, s.maxDelay, s.settings.ReplicaLagTimeMaxMs, s.settings.MinInsyncReplicas, s.settings.AckAfterSync)
}
