package fetcher

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/partlog"
)

// fetchVersion is the Fetch version the fetcher speaks: flexible, with
// LastFetchedEpoch / DivergingEpoch (KIP-320), topics by name.
const fetchVersion = 12

// refreshIdle is how often a partition that did not follow this source
// when last asked (it was between roles) is asked again, in case no
// Follow call brings the news.
const refreshIdle = time.Second

// errorLogEvery spaces repeated fetch-error logs of one source.
const errorLogEvery = 10 * time.Second

// source is the fetch loop of one source broker.
type source struct {
	f      *Fetcher
	leader int32
	log    *slog.Logger

	mu    sync.Mutex
	parts map[partlog.LogID]*followed
	// changed wakes the loop when the partition set changes.
	changed chan struct{}
	stop    chan struct{}
	stopped bool
	done    chan struct{}
	// round is held by the loop through each fetch and its delivery, so
	// that Pause can wait for the one in progress.
	round sync.Mutex

	// Owned by the loop.
	conn        *conn
	lastErrLog  time.Time
	failing     bool
	byPartition map[topicPartition]*followed
}

type topicPartition struct {
	topic     string
	partition int32
}

// followed is one partition fetched from the source.
type followed struct {
	id partlog.LogID
	// p and gen are guarded by source.mu: Follow replaces p and bumps
	// gen, which makes the loop ask the partition's state afresh.
	p   Partition
	gen uint64

	// Owned by the loop: copies of p and gen as of the last snapshot,
	// the state the partition last reported, and when it may be
	// fetched again.
	lp           Partition
	lgen         uint64
	st           actors.FollowerState
	known        bool
	knownGen     uint64
	backoffUntil time.Time
	// fetching: handed its part of a response, answer pending.
	fetching bool
}

func newSource(f *Fetcher, leader int32) *source {
	return &source{
		f: f, leader: leader, log: f.cfg.Logger.With("source", leader),
		parts: map[partlog.LogID]*followed{}, changed: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		byPartition: map[topicPartition]*followed{},
	}
}

func (s *source) follow(id partlog.LogID, p Partition) {
	s.mu.Lock()
	fp := s.parts[id]
	if fp == nil {
		fp = &followed{id: id}
		s.parts[id] = fp
	}
	fp.p = p
	fp.gen++
	s.mu.Unlock()
	s.notify()
}

// unfollow drops id and returns how many partitions are left.
func (s *source) unfollow(id partlog.LogID) int {
	s.mu.Lock()
	delete(s.parts, id)
	n := len(s.parts)
	s.mu.Unlock()
	s.notify()
	return n
}

func (s *source) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *source) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
		s.interruptLocked()
	}
}

// interrupt ends a fetch in flight (parked on the leader) at once; its
// answer, if any, is dropped.
func (s *source) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interruptLocked()
}

func (s *source) interruptLocked() {
	if c := s.conn; c != nil {
		_ = c.nc.SetDeadline(time.Now())
	}
}

// quiet reports whether the loop is stopping or paused: errors are then
// expected, and answers are dropped.
func (s *source) quiet() bool {
	select {
	case <-s.stop:
		return true
	default:
		return s.f.paused.Load()
	}
}

// snapshot lists the followed partitions, refreshing the loop's copies.
func (s *source) snapshot(out []*followed) []*followed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out = out[:0]
	for _, fp := range s.parts {
		fp.lp, fp.lgen = fp.p, fp.gen
		out = append(out, fp)
	}
	return out
}

// sleep waits d, or less if the partitions change or the loop stops.
// It reports whether the loop goes on.
func (s *source) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	case <-s.changed:
	case <-t.C:
	}
	return true
}

func (s *source) run() {
	defer close(s.done)
	defer s.closeConn()
	var parts, ready []*followed
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		parts = s.snapshot(parts)
		if len(parts) == 0 || s.f.paused.Load() {
			if !s.sleep(time.Second) {
				return
			}
			continue
		}
		if !s.refresh(parts) {
			return
		}
		now := time.Now()
		ready = ready[:0]
		next := now.Add(refreshIdle)
		for _, fp := range parts {
			switch {
			case now.Before(fp.backoffUntil):
				next = minTime(next, fp.backoffUntil)
			case !fp.known:
			case !fp.st.Following || fp.st.Leader != s.leader:
				// Between roles: ask again soon, or when Follow says.
				fp.known, fp.backoffUntil = false, now.Add(refreshIdle)
			default:
				ready = append(ready, fp)
			}
		}
		if len(ready) == 0 {
			if !s.sleep(max(time.Until(next), time.Millisecond)) {
				return
			}
			continue
		}
		s.round.Lock()
		goOn := s.fetchRound(ready)
		s.round.Unlock()
		if !goOn {
			return
		}
	}
}

// refresh asks every partition whose state is unknown, or whose Follow
// came after its last answer, where its fetch starts. It reports whether
// the loop goes on.
func (s *source) refresh(parts []*followed) bool {
	var ask []*followed
	now := time.Now()
	for _, fp := range parts {
		// Follow since the last answer: ask now. Unknown (never asked,
		// refused, between roles): ask once its pause is over.
		if fp.knownGen != fp.lgen || !fp.known && !now.Before(fp.backoffUntil) {
			ask = append(ask, fp)
		}
	}
	if len(ask) == 0 {
		return true
	}
	replies := make(chan actors.FollowerState, len(ask))
	for i, fp := range ask {
		fp.known = false
		fp.lp.FollowerState(actors.FollowerStateRequest{Tag: i, Reply: replies})
	}
	return s.collect(ask, replies, func(fp *followed, st actors.FollowerState) {
		fp.st, fp.known, fp.knownGen = st, true, fp.lgen
		fp.backoffUntil = time.Time{}
	})
}

// collect waits for one answer per partition of ask (tagged with its
// index), within the request timeout, and hands each to apply. A
// partition unfollowed meanwhile (its actor may be gone, and never
// answer) is not waited for. Partitions that do not answer stay unknown.
// It reports whether the loop goes on.
func (s *source) collect(ask []*followed, replies <-chan actors.FollowerState, apply func(*followed, actors.FollowerState)) bool {
	t := time.NewTimer(s.f.cfg.RequestTimeout)
	defer t.Stop()
	answered := make([]bool, len(ask))
	// A change seen here is passed on to the loop once this round ends;
	// putting the token back at once would make this select spin on it.
	renotify := false
	defer func() {
		if renotify {
			s.notify()
		}
	}()
	for n := 0; n < len(ask); {
		select {
		case st := <-replies:
			if st.Tag >= 0 && st.Tag < len(ask) && !answered[st.Tag] {
				answered[st.Tag] = true
				n++
				apply(ask[st.Tag], st)
			}
		case <-s.changed:
			n += s.dropUnfollowed(ask, answered)
			renotify = true
		case <-t.C:
			s.log.Warn("follower partitions did not answer the fetcher in time", "waiting", len(ask)-n)
			return true
		case <-s.stop:
			return false
		}
	}
	return true
}

// dropUnfollowed marks as answered the partitions of ask that are no
// longer followed through the actor they were asked through, and
// returns how many it marked.
func (s *source) dropUnfollowed(ask []*followed, answered []bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i, fp := range ask {
		if !answered[i] && (s.parts[fp.id] != fp || fp.p != fp.lp) {
			answered[i] = true
			n++
		}
	}
	return n
}

// fetchRound sends one fetch for ready and hands the answers to the
// partitions. It reports whether the loop goes on.
func (s *source) fetchRound(ready []*followed) bool {
	cfg := &s.f.cfg
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = cfg.NodeID
	req.MaxWaitMillis = int32(cfg.MaxWait.Milliseconds())
	req.MinBytes = cfg.MinBytes
	req.MaxBytes = cfg.ResponseMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // sessionless: every fetch is complete
	clear(s.byPartition)
	// One entry per topic: ready comes from a map, so order it first.
	slices.SortFunc(ready, func(a, b *followed) int {
		if c := strings.Compare(a.id.Topic, b.id.Topic); c != 0 {
			return c
		}
		return int(a.id.Partition - b.id.Partition)
	})
	for _, fp := range ready {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != fp.id.Topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = fp.id.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.id.Partition
		rp.CurrentLeaderEpoch = fp.st.LeaderEpoch
		rp.FetchOffset = fp.st.FetchOffset
		rp.LastFetchedEpoch = fp.st.LastFetchedEpoch
		rp.LogStartOffset = fp.st.LogStartOffset
		rp.PartitionMaxBytes = cfg.PartitionMaxBytes
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
		s.byPartition[topicPartition{fp.id.Topic, fp.id.Partition}] = fp
	}

	resp, err := s.fetch(req)
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if s.quiet() {
		// Paused or stopping while the fetch was out: whatever it
		// brought is dropped, and so is the connection it was cut on.
		s.closeConn()
		return true
	}
	if err != nil {
		s.closeConn()
		s.noteError(err)
		return s.sleep(cfg.Backoff)
	}
	if s.failing {
		s.failing = false
		s.log.Info("fetching from the leader again")
	}
	return s.deliver(resp)
}

// fetch sends req over the connection, dialing one if needed.
func (s *source) fetch(req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	cfg := &s.f.cfg
	if s.conn == nil {
		addr, ok := cfg.Addr(s.leader)
		if !ok {
			return nil, errors.New("the leader has no known address")
		}
		ctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
		nc, err := cfg.Dial(ctx, "tcp", addr)
		cancel()
		if err != nil {
			return nil, err
		}
		c := newConn(nc, "troupe-replica-fetcher", cfg.maxFrame(), 2*int(cfg.ResponseMaxBytes))
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			nc.Close()
			return nil, errors.New("fetcher stopped")
		}
		s.conn = c
		s.mu.Unlock()
	}
	resp := kmsg.NewPtrFetchResponse()
	if err := s.conn.roundTrip(req, resp, time.Now().Add(cfg.MaxWait+cfg.RequestTimeout)); err != nil {
		return nil, err
	}
	return resp, nil
}

// deliver hands each partition its part of resp and waits until all have
// taken it: a partition answers once what it appended is durable, so the
// next round's fetch offsets are on disk. It reports whether the loop
// goes on.
func (s *source) deliver(resp *kmsg.FetchResponse) bool {
	var ask []*followed
	var reqs []actors.FollowerFetchedRequest
	now := time.Now()
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			sp := &rt.Partitions[pi]
			fp := s.byPartition[topicPartition{rt.Topic, sp.Partition}]
			if fp == nil || fp.fetching {
				continue // not asked for, or answered twice
			}
			switch sp.ErrorCode {
			case 0, kerr.OffsetOutOfRange.Code:
			default:
				// Not (or no longer) the leader, epochs apart, storage
				// trouble there: ask the partition again after a pause;
				// the metadata will have moved it, or the leader caught
				// up with it.
				s.log.Debug("leader refused a partition", "topic", fp.id.Topic, "partition", fp.id.Partition,
					"err", kerr.ErrorForCode(sp.ErrorCode))
				fp.known, fp.backoffUntil = false, now.Add(s.f.cfg.Backoff)
				continue
			}
			fp.fetching = true
			ask = append(ask, fp)
			reqs = append(reqs, actors.FollowerFetchedRequest{
				LeaderEpoch: fp.st.LeaderEpoch, FetchOffset: fp.st.FetchOffset, ErrorCode: sp.ErrorCode,
				HighWatermark: sp.HighWatermark, LogStartOffset: sp.LogStartOffset,
				Diverging: sp.DivergingEpoch.Epoch >= 0, DivergingEpoch: sp.DivergingEpoch.Epoch,
				DivergingEndOffset: sp.DivergingEpoch.EndOffset, Records: sp.RecordBatches,
			})
		}
	}
	if len(ask) == 0 {
		return true
	}
	replies := make(chan actors.FollowerState, len(ask))
	for i := range reqs {
		reqs[i].Tag, reqs[i].Reply = i, replies
		ask[i].lp.FollowerFetched(reqs[i])
	}
	answered := 0
	ok := s.collect(ask, replies, func(fp *followed, st actors.FollowerState) {
		answered++
		fp.fetching = false
		fp.st, fp.known = st, true
		if st.Err != nil {
			s.log.Debug("follower did not take fetched batches", "topic", fp.id.Topic, "partition", fp.id.Partition, "err", st.Err)
		}
	})
	if answered < len(ask) {
		// Some partition still holds records that alias the buffer.
		if s.conn != nil {
			s.conn.dropBuffer()
		}
		for _, fp := range ask {
			if fp.fetching {
				fp.fetching, fp.known = false, false
			}
		}
	} else if s.conn != nil {
		s.conn.trimBuffer()
	}
	return ok
}

func (s *source) noteError(err error) {
	now := time.Now()
	if !s.failing || now.Sub(s.lastErrLog) >= errorLogEvery {
		s.log.Warn("fetch from the leader failed; retrying", "err", err)
		s.lastErrLog = now
	}
	s.failing = true
}

func (s *source) closeConn() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		_ = c.close()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
