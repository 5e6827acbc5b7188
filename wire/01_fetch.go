package wire

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
)

// Fetch v4-v18. v4 is the first version answering with v2 record batches
// and a last stable offset; v7 adds sessions (fetch_sessions.go; Troupe
// implements incremental sessions fully); v9 CurrentLeaderEpoch fencing;
// v11 rack-aware replica selection (we always answer -1, read from the
// leader); v12 flexible encoding, leader hints and KIP-320's
// LastFetchedEpoch / DivergingEpoch; v13 topic ids; v15 moves the replica
// id into ReplicaState; v16-v18 change only broker-to-broker fields a
// consumer leaves at their defaults.
//
// A fetch carrying a replica id (ReplicaID before v15, ReplicaState's
// from v15) is a follower's: each partition goes to the leader's
// ReplicaFetch, which records the follower's fetch offset (the high
// watermark and the ISR follow from it), reads up to the log end rather
// than the high watermark, and may answer a DivergingEpoch instead of
// data; the partition's own leader epoch, not the image's, fences it.
// Its long poll waits for the log end to grow. Everything else — budgets,
// zero-copy answers — is the consumers' path. (Fetch sessions keep no
// LastFetchedEpoch, so an incremental replica fetch skips the KIP-320
// check; Troupe's replica fetcher sends sessionless fetches.)
//
// A fetch is served in two halves. The handler, on the connection's reader
// goroutine, resolves the partitions and asks their actors for data; it
// never waits. The await half, on the writer goroutine, collects the
// answers, applies the response-wide byte budget, and when there is less
// than MinBytes parks a one-shot watch on every partition and waits — on a
// single wake channel and a single timer, with no goroutine of its own —
// until data arrives or MaxWait passes, then reads again. The answer is a
// fetchReply that writes the records straight from the log files.
func init() { register(1, 4, 18, handleFetch) }

const (
	// maxFetchWait caps a client's MaxWaitMillis, so that a parked fetch
	// always ends; clients re-fetch anyway.
	maxFetchWait = 60 * time.Second
)

// fetchActorWait bounds how long the writer waits for partition actors to
// answer reads. Actors answer at once; this only keeps a stuck actor from
// wedging the connection forever. A variable for tests.
var fetchActorWait = 30 * time.Second

// fetchPart is one partition a fetch reads: what was asked, and the
// latest answer.
type fetchPart struct {
	topic       string
	topicID     [16]byte
	partition   int32
	offset      int64
	maxBytes    int32
	leaderEpoch int32
	// lastFetchedEpoch is a follower's KIP-320 epoch (-1: none).
	lastFetchedEpoch int32
	sp               *sessionPartition // its session entry, for incremental fetches

	p    Partition // nil when code was decided locally
	code int16
	hwm  int64
	lso  int64
	lsof int64 // log start offset

	records partlog.Region
	pending bool // a read is out to the actor
	include bool // records go into the answer (within budgets)

	// For replica fetches: the leader's log end at the read (what the
	// long poll waits to pass), and a DivergingEpoch to answer with.
	logEnd             int64
	diverging          bool
	divergingEpoch     int32
	divergingEndOffset int64
}

// fetchOp is one fetch request in flight.
type fetchOp struct {
	done          <-chan struct{} // the connection's end: stop waiting once nobody will read the answer
	s             *Server
	img           *metadata.Image
	version       int16
	minBytes      int32
	maxBytes      int32
	wait          time.Duration
	deadline      time.Time // when the wait ends (monotonic)
	deadlineMs    int64     // the same on the wall clock, for the actors
	readCommitted bool
	// replicaID is the fetching follower's broker id, -1 for consumers.
	replicaID int32

	mode    fetchSessionMode
	sess    *fetchSession
	parts   []fetchPart
	round   int
	results chan actors.FetchResult
	wake    chan struct{}
	timer   *time.Timer
}

func handleFetch(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.FetchRequest)
	if !ok {
		return reply{closeConn: true}
	}
	mode, sess, code := s.fetchSessions().begin(kreq, req.nowMs)
	if code != 0 {
		resp := kreq.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return reply{resp: resp}
	}
	if s.replicaTrafficBlocked.Load() && fetchReplicaID(kreq) >= 0 {
		// Fault injection: this node is cut off from the other nodes; a
		// follower's fetch is lost like on a partitioned network.
		return reply{closeConn: true}
	}
	op := &fetchOp{
		s:             s,
		done:          ctxDone(req.ctx),
		img:           s.b.Image(),
		version:       kreq.Version,
		minBytes:      kreq.MinBytes,
		maxBytes:      kreq.MaxBytes,
		wait:          min(time.Duration(max(kreq.MaxWaitMillis, 0))*time.Millisecond, maxFetchWait),
		readCommitted: kreq.IsolationLevel == 1,
		replicaID:     fetchReplicaID(kreq),
		mode:          mode,
		sess:          sess,
	}
	op.deadline = time.Now().Add(op.wait)
	op.deadlineMs = req.nowMs + op.wait.Milliseconds()
	if mode == sessionUpdate {
		op.partsFromSession()
	} else {
		op.partsFromRequest(kreq)
	}
	op.resolve()
	op.read()
	return reply{await: op.await}
}

// fetchReplicaID is the requesting follower's broker id, or -1 for a
// consumer (any negative id: Kafka's -1 consumer, -2 debugging client,
// -3 future local replica all read as consumers here).
func fetchReplicaID(kreq *kmsg.FetchRequest) int32 {
	id := kreq.ReplicaID
	if kreq.Version >= 15 {
		id = kreq.ReplicaState.ID
	}
	return max(id, -1)
}

// partsFromRequest lists the request's partitions in request order.
func (op *fetchOp) partsFromRequest(kreq *kmsg.FetchRequest) {
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	op.parts = make([]fetchPart, 0, n)
	for ti := range kreq.Topics {
		rt := &kreq.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			lastFetched := rp.LastFetchedEpoch
			if kreq.Version < 12 {
				lastFetched = -1 // not in the protocol yet
			}
			op.parts = append(op.parts, fetchPart{
				topic:            rt.Topic,
				topicID:          rt.TopicID,
				partition:        rp.Partition,
				offset:           rp.FetchOffset,
				maxBytes:         rp.PartitionMaxBytes,
				leaderEpoch:      rp.CurrentLeaderEpoch,
				lastFetchedEpoch: lastFetched,
			})
		}
	}
}

// partsFromSession lists the session's partitions in session order (which
// puts those that last returned data at the end, for fairness).
func (op *fetchOp) partsFromSession() {
	sess := op.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	op.parts = make([]fetchPart, len(sess.parts))
	for i, sp := range sess.parts {
		op.parts[i] = fetchPart{
			topic:            sp.key.topic,
			topicID:          sp.key.id,
			partition:        sp.key.partition,
			offset:           sp.offset,
			maxBytes:         sp.maxBytes,
			leaderEpoch:      sp.leaderEpoch,
			lastFetchedEpoch: -1,
			sp:               sp,
		}
	}
}

// resolve finds each partition's actor, or the error that answers it.
func (op *fetchOp) resolve() {
	var (
		lastName  string
		lastID    [16]byte
		lastTopic *metadata.Topic
		haveLast  bool
	)
	byID := op.version >= 13
	for i := range op.parts {
		fp := &op.parts[i]
		fp.hwm, fp.lso, fp.lsof = -1, -1, -1
		// Consecutive partitions usually share a topic; look it up once.
		if !haveLast || (byID && fp.topicID != lastID) || (!byID && fp.topic != lastName) {
			if byID {
				lastTopic = op.img.TopicByID(fp.topicID)
			} else {
				lastTopic = op.img.Topic(fp.topic)
			}
			lastName, lastID, haveLast = fp.topic, fp.topicID, true
		}
		topic := lastTopic
		if topic == nil {
			fp.code = kerr.UnknownTopicOrPartition.Code
			if byID {
				fp.code = kerr.UnknownTopicID.Code
			}
			continue
		}
		if byID {
			fp.topic = topic.Name
		}
		// A follower's epoch is checked by the partition itself: the
		// leader's core, not this node's image, says which epoch is on.
		if op.replicaID < 0 {
			if code := checkLeaderEpoch(imagePartition(topic, fp.partition), fp.leaderEpoch); code != 0 {
				fp.code = code
				continue
			}
		}
		fp.p, fp.code = lookupPartition(op.s.b, topic, fp.partition)
	}
}

// read asks every resolvable partition's actor for data, in order. The
// actor's byte limit is the partition's, capped by the response's: the
// response budget is applied in order once all answers are in (budget).
func (op *fetchOp) read() {
	op.round++
	if op.results == nil {
		for i := range op.parts {
			if op.parts[i].p != nil {
				op.results = make(chan actors.FetchResult, len(op.parts))
				break
			}
		}
	}
	base := op.round * len(op.parts)
	for i := range op.parts {
		fp := &op.parts[i]
		if fp.p == nil {
			continue
		}
		fp.pending = true
		maxBytes := max(min(fp.maxBytes, op.maxBytes), 0)
		if op.replicaID >= 0 {
			fp.p.ReplicaFetch(actors.ReplicaFetchRequest{
				ReplicaID:          op.replicaID,
				CurrentLeaderEpoch: fp.leaderEpoch,
				FetchOffset:        fp.offset,
				LastFetchedEpoch:   fp.lastFetchedEpoch,
				MaxBytes:           maxBytes,
				Tag:                base + i,
				Reply:              op.results,
			})
			continue
		}
		fp.p.Fetch(actors.FetchRequest{
			Offset:        fp.offset,
			MaxBytes:      maxBytes,
			ReadCommitted: op.readCommitted,
			Tag:           base + i,
			Reply:         op.results,
		})
	}
}

// collect waits for the answers of the current round. Tags carry the
// round, so a late answer of an earlier round (possible only after an
// actor timed out) is recognised and its region released.
func (op *fetchOp) collect() {
	pending := 0
	for i := range op.parts {
		if op.parts[i].pending {
			pending++
		}
	}
	base := op.round * len(op.parts)
	timerSet := false
	for pending > 0 {
		var r actors.FetchResult
		select {
		case r = <-op.results:
		default:
			// Nothing ready: wait, bounded.
			if !timerSet {
				op.resetTimer(fetchActorWait)
				timerSet = true
			}
			select {
			case r = <-op.results:
			case <-op.timer.C:
				for i := range op.parts {
					if fp := &op.parts[i]; fp.pending {
						fp.pending = false
						fp.code = kerr.NotLeaderForPartition.Code // makes the client re-resolve
					}
				}
				// The answer goes out now, with no further reads; the
				// late answers still hold regions to release.
				go drainFetchResults(op.results, pending)
				return
			}
		}
		i := r.Tag - base
		if i < 0 || i >= len(op.parts) || !op.parts[i].pending {
			r.Records.Release()
			continue
		}
		fp := &op.parts[i]
		fp.pending = false
		pending--
		fp.code, fp.hwm, fp.lso, fp.lsof = r.ErrorCode, r.HighWatermark, r.LastStableOffset, r.LogStartOffset
		fp.logEnd = r.LogEndOffset
		fp.diverging, fp.divergingEpoch, fp.divergingEndOffset = r.Diverging, r.DivergingEpoch, r.DivergingEndOffset
		fp.records = r.Records
		if fp.code != 0 {
			fp.records.Release()
			fp.records = partlog.Region{}
		}
	}
	if timerSet {
		op.timer.Stop()
	}
}

// fetchDrainWait bounds how long late actor answers are waited for.
const fetchDrainWait = 10 * time.Minute

// drainFetchResults releases the regions of n late answers. It runs only
// after an actor missed fetchActorWait, which a healthy node never does.
func drainFetchResults(results <-chan actors.FetchResult, n int) {
	timer := time.NewTimer(fetchDrainWait)
	defer timer.Stop()
	for range n {
		select {
		case r := <-results:
			r.Records.Release()
		case <-timer.C:
			return
		}
	}
}

// resetTimer arms op's one timer for d.
func (op *fetchOp) resetTimer(d time.Duration) {
	if op.timer == nil {
		op.timer = time.NewTimer(d)
		return
	}
	op.timer.Reset(d) // Go 1.23+: no stale fire survives Reset
}

// budget decides which partitions' records go into the answer: in order,
// each within its partition limit and what is left of the response
// limit, except that the first partition with data is always answered
// whole (KIP-74: its region holds at least one complete batch, however
// large, so a consumer can always make progress). Regions left out are
// released. It returns the bytes answered and whether any partition
// failed.
func (op *fetchOp) budget() (bytes int64, failed bool) {
	remaining := int64(max(op.maxBytes, 0))
	first := true
	for i := range op.parts {
		fp := &op.parts[i]
		fp.include = false
		if fp.code != 0 || fp.diverging {
			// Either is news the fetcher must act on at once.
			failed = true
			continue
		}
		n := fp.records.Len()
		if n == 0 {
			continue
		}
		if first || n <= min(int64(max(fp.maxBytes, 0)), remaining) {
			fp.include = true
			first = false
			bytes += n
			remaining = max(remaining-n, 0)
			continue
		}
		fp.records.Release()
		fp.records = partlog.Region{}
	}
	return bytes, failed
}

// releaseAll drops every region held.
func (op *fetchOp) releaseAll() {
	for i := range op.parts {
		op.parts[i].records.Release()
		op.parts[i].records = partlog.Region{}
		op.parts[i].include = false
	}
}

// await is the writer-side half: collect, long-poll, answer.
func (op *fetchOp) await() reply {
	expired := false
	for {
		op.collect()
		bytes, failed := op.budget()
		// As Kafka's DelayedFetch: answer at once with enough bytes, on
		// any error, with nothing to wait on, or once the wait is over.
		if bytes >= int64(op.minBytes) || failed || op.wait <= 0 || op.results == nil || expired {
			break
		}
		left := time.Until(op.deadline)
		if left <= 0 {
			break
		}
		if op.wake == nil {
			op.wake = make(chan struct{}, 1)
		}
		// A watch wakes at once if the high watermark already passed
		// its offset, so data arriving between the read and here is not
		// missed.
		for i := range op.parts {
			fp := &op.parts[i]
			switch {
			case fp.p == nil:
			case op.replicaID >= 0:
				// A follower waits for the leader's log to grow past
				// what it was at the read.
				off := fp.logEnd
				if off < 0 {
					off = fp.offset
				}
				fp.p.ReplicaWatch(actors.WatchRequest{Offset: off, DeadlineMs: op.deadlineMs, Wake: op.wake})
			default:
				fp.p.Watch(actors.WatchRequest{Offset: fp.hwm, DeadlineMs: op.deadlineMs, Wake: op.wake})
			}
		}
		op.resetTimer(left)
		select {
		case <-op.wake:
			op.timer.Stop()
		case <-op.timer.C:
			expired = true // read once more, then answer whatever there is
		case <-op.s.stopCh:
			// Graceful shutdown: answer now rather than at MaxWait.
			op.timer.Stop()
			expired = true
		case <-op.done:
			// The connection is gone: nobody will read an answer.
			op.timer.Stop()
			op.releaseAll()
			return reply{closeConn: true}
		}
		op.releaseAll()
		op.read()
	}
	if op.timer != nil {
		op.timer.Stop()
	}
	return reply{fetch: op.answer()}
}

// answer builds the response from the last read, and updates or opens the
// fetch session.
func (op *fetchOp) answer() *fetchReply {
	f := &fetchReply{}
	resp := &f.resp
	resp.Default()
	resp.Version = op.version

	switch op.mode {
	case sessionUpdate:
		resp.SessionID = op.sess.id
		op.sess.mu.Lock()
		op.selectIncremental()
		op.sess.mu.Unlock()
	case sessionNew:
		resp.SessionID = op.openSession()
	}

	// Count what goes in, then fill one backing array for the partitions.
	// Consecutive partitions of one topic share a topic entry, as in
	// Kafka; a topic split by others appears more than once.
	nParts, nTopics, nRecords := 0, 0, 0
	var prev *fetchPart
	for i := range op.parts {
		fp := &op.parts[i]
		if !op.selected(fp) {
			continue
		}
		if prev == nil || !op.sameTopic(prev, fp) {
			nTopics++
		}
		prev = fp
		nParts++
		if fp.include {
			nRecords++
		}
	}
	parts := make([]kmsg.FetchResponseTopicPartition, nParts)
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, nTopics)
	if nRecords > 0 {
		f.records = make([]fetchRecords, 0, nRecords)
	}
	k, topicStart := 0, 0
	prev = nil
	for i := range op.parts {
		fp := &op.parts[i]
		if !op.selected(fp) {
			fp.records.Release() // not answered: drop its data
			fp.records = partlog.Region{}
			continue
		}
		if prev == nil || !op.sameTopic(prev, fp) {
			st := kmsg.FetchResponseTopic{TopicID: fp.topicID}
			if op.version < 13 {
				st.Topic = fp.topic
			}
			resp.Topics = append(resp.Topics, st)
			topicStart = k
		}
		prev = fp
		sp := &parts[k]
		k++
		sp.Default()
		sp.Partition = fp.partition
		sp.ErrorCode = fp.code
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = fp.hwm, fp.lso, fp.lsof
		if fp.diverging && op.version >= 12 {
			sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = fp.divergingEpoch, fp.divergingEndOffset
		}
		sp.RecordBatches = emptyRecords
		if op.readCommitted {
			// The log keeps no aborted-transaction index yet; an empty
			// (not null) list is what read_committed consumers expect.
			sp.AbortedTransactions = noAbortedTransactions
		}
		resp.Topics[len(resp.Topics)-1].Partitions = parts[topicStart:k:k]
		if fp.include {
			f.records = append(f.records, fetchRecords{part: sp, region: fp.records})
		} else {
			fp.records.Release()
		}
		fp.records = partlog.Region{} // owned by f now, or released
	}
	op.addLeaderHints(resp)
	return f
}

var noAbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}

// sameTopic reports whether two partitions belong to the same topic.
func (op *fetchOp) sameTopic(a, b *fetchPart) bool {
	if op.version >= 13 {
		return a.topicID == b.topicID
	}
	return a.topic == b.topic
}

// selected reports whether fp is in the answer: every partition of a full
// fetch, and in an incremental one those selectIncremental kept.
func (op *fetchOp) selected(fp *fetchPart) bool {
	return op.mode != sessionUpdate || fp.sp != nil
}

// selectIncremental decides which session partitions the incremental
// answer carries (those with records, errors, or changed offsets; KIP-227),
// records what they are told, and moves partitions that return data to
// the end of the session so the others go first next time. Unselected
// parts get sp = nil. sess.mu is held.
func (op *fetchOp) selectIncremental() {
	sess := op.sess
	moved := 0
	for i := range op.parts {
		fp := &op.parts[i]
		sp := fp.sp
		if sp == nil || sp.removed {
			fp.sp = nil
			continue
		}
		if !sp.mustRespond(fp.code, fp.hwm, fp.lso, fp.lsof, fp.include) {
			fp.sp = nil
			continue
		}
		if fp.include {
			sp.moveToEnd = true
			moved++
		}
	}
	if moved == 0 {
		return
	}
	reordered := sess.spare[:0]
	for _, sp := range sess.parts {
		if !sp.moveToEnd {
			reordered = append(reordered, sp)
		}
	}
	for _, sp := range sess.parts {
		if sp.moveToEnd {
			sp.moveToEnd = false
			reordered = append(reordered, sp)
		}
	}
	clear(sess.parts)
	sess.spare = sess.parts[:0]
	sess.parts = reordered
}

// openSession creates the session a full fetch with epoch 0 asked for,
// from the partitions as just answered. It returns 0 if the cache has no
// room (the client then keeps sending full fetches).
func (op *fetchOp) openSession() int32 {
	if len(op.parts) == 0 {
		return 0
	}
	sps := make([]sessionPartition, len(op.parts))
	for i := range op.parts {
		fp := &op.parts[i]
		sps[i] = sessionPartition{
			key:         requestKey(op.version, fp.topic, fp.topicID, fp.partition),
			offset:      fp.offset,
			maxBytes:    fp.maxBytes,
			leaderEpoch: fp.leaderEpoch,
			hwm:         -1, lso: -1, logStart: -1,
		}
		sps[i].mustRespond(fp.code, fp.hwm, fp.lso, fp.lsof, fp.include)
	}
	// As after every answer, partitions that returned data go last.
	ptrs := make([]*sessionPartition, 0, len(sps))
	for i := range sps {
		if !op.parts[i].include {
			ptrs = append(ptrs, &sps[i])
		}
	}
	for i := range sps {
		if op.parts[i].include {
			ptrs = append(ptrs, &sps[i])
		}
	}
	return op.s.fetchSessions().create(ptrs, op.version >= 13, op.s.now().UnixMilli())
}

// addLeaderHints fills, for v12+, the current leader of partitions
// answered NOT_LEADER_OR_FOLLOWER, and from v16 that leader's endpoint
// (KIP-951), so the consumer can move without a metadata round trip.
func (op *fetchOp) addLeaderHints(resp *kmsg.FetchResponse) {
	if op.version < 12 {
		return
	}
	for ti := range resp.Topics {
		st := &resp.Topics[ti]
		var topic *metadata.Topic
		for pi := range st.Partitions {
			sp := &st.Partitions[pi]
			if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			if topic == nil {
				if op.version >= 13 {
					topic = op.img.TopicByID(st.TopicID)
				} else {
					topic = op.img.Topic(st.Topic)
				}
				if topic == nil {
					break
				}
			}
			leader, epoch, b, ok := leaderOf(op.img, topic, sp.Partition)
			if !ok {
				continue
			}
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
			if op.version >= 16 && !slices.ContainsFunc(resp.Brokers, func(x kmsg.FetchResponseBroker) bool { return x.NodeID == leader }) {
				resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{
					NodeID: b.ID, Host: b.Host, Port: b.Port, Rack: rackPtr(b.Rack),
				})
			}
		}
	}
}
