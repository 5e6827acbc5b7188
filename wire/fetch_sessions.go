package wire

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227), implemented fully.
//
// A consumer opens a session with a full fetch (SessionID 0, epoch 0); the
// broker answers with a session id and remembers the partitions, their
// fetch positions and what it last told the client about each (high
// watermark, last stable offset, log start offset). Later fetches send
// epoch 1, 2, ... and list only partitions whose fetch position changed
// (plus ForgottenTopics to drop some); the broker reads every partition of
// the session and answers only those with records, changed offsets or
// errors. That is what makes idle partitions free for a consumer of many.
//
// Request (SessionID, SessionEpoch) cases, as in Kafka's FetchManager:
//
//	(any, -1)  sessionless full fetch; closes SessionID if it names one
//	(any,  0)  full fetch opening a new session; closes SessionID if named
//	(id,  >0)  incremental: id unknown → FETCH_SESSION_ID_NOT_FOUND; epoch
//	           not the expected one → INVALID_FETCH_SESSION_EPOCH; topic
//	           ids used inconsistently → FETCH_SESSION_TOPIC_ID_ERROR
//
// Invariant: the cache holds at most maxSessions sessions; a new session
// evicts a stale one, or a smaller one, or is not created (the answer then
// carries SessionID 0 and the client keeps sending full fetches).

const (
	// maxFetchSessions is Kafka's max.incremental.fetch.session.cache.slots.
	maxFetchSessions = 1000
	// fetchSessionEvictAfter is Kafka's
	// min.incremental.fetch.session.eviction.ms: a session idle this long
	// may be evicted by any new session.
	fetchSessionEvictAfter = 120 * time.Second
	// maxSessionPartitions bounds one session, which incremental requests
	// could otherwise grow without limit. A larger full fetch is served
	// sessionlessly; an incremental one that would outgrow it ends the
	// session (the client starts over with a full fetch).
	maxSessionPartitions = 1 << 17
)

// fetchSessions is one server's session cache. The zero value is not
// usable; see newFetchSessions.
type fetchSessions struct {
	mu      sync.Mutex
	byID    map[int32]*fetchSession
	max     int
	evictMs int64
	randID  func() int32
}

func newFetchSessions(max int) *fetchSessions {
	return &fetchSessions{
		byID:    make(map[int32]*fetchSession),
		max:     max,
		evictMs: fetchSessionEvictAfter.Milliseconds(),
		randID:  func() int32 { return rand.Int32N(math.MaxInt32) + 1 },
	}
}

// fetchSession is one client's cached partition set.
type fetchSession struct {
	id int32

	// mu guards everything below. The handler (reader goroutine) updates
	// the partition set and epoch; the response builder (writer goroutine)
	// updates what was last sent and the order.
	mu       sync.Mutex
	epoch    int32 // the epoch the next incremental request must carry
	usesIDs  bool  // v13+: partitions are keyed by topic id
	lastUsed int64 // ms
	closed   bool  // evicted or closed: incremental requests are refused
	parts    []*sessionPartition
	spare    []*sessionPartition // reused when reordering parts
	index    map[sessionKey]*sessionPartition
}

// sessionKey names a partition in a session: by topic name before v13,
// by topic id from v13 on (the other field is zero).
type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// sessionPartition is one partition of a session: what the client asked
// for last, and what the broker last told it.
type sessionPartition struct {
	key         sessionKey
	offset      int64
	maxBytes    int32
	leaderEpoch int32
	// Last sent values; a change makes the partition part of the next
	// incremental answer. hwm is -1 after an error (and when new), so the
	// partition is re-sent once it recovers.
	hwm, lso, logStart int64
	removed            bool
	moveToEnd          bool // scratch of selectIncremental
}

func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// fetchSessionMode is how one fetch request uses sessions.
type fetchSessionMode uint8

const (
	sessionless   fetchSessionMode = iota // full fetch, answer SessionID 0
	sessionNew                            // full fetch, open a session when answering
	sessionUpdate                         // incremental fetch of an existing session
)

// begin classifies a fetch request and, for incremental ones, applies its
// partition changes to the session. It returns the session (for
// sessionUpdate) or a top-level error code.
func (c *fetchSessions) begin(req *kmsg.FetchRequest, nowMs int64) (fetchSessionMode, *fetchSession, int16) {
	if req.Version < 7 {
		return sessionless, nil, 0
	}
	if req.SessionEpoch == -1 || req.SessionEpoch == 0 {
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		if req.SessionEpoch == 0 {
			return sessionNew, nil, 0
		}
		return sessionless, nil, 0
	}

	c.mu.Lock()
	sess := c.byID[req.SessionID]
	c.mu.Unlock()
	if sess == nil || req.SessionID == 0 {
		return sessionless, nil, kerr.FetchSessionIDNotFound.Code
	}
	mode, code := sess.begin(req, nowMs)
	if sess.isClosed() {
		// Lock order is c.mu before sess.mu (evictLocked), so the map
		// entry goes only after sess.mu is released.
		c.mu.Lock()
		if c.byID[sess.id] == sess {
			delete(c.byID, sess.id)
		}
		c.mu.Unlock()
	}
	if mode != sessionUpdate {
		sess = nil
	}
	return mode, sess, code
}

// begin is fetchSessions.begin for an incremental request of this
// session. A session it closes is left for the caller to drop from the
// cache.
func (sess *fetchSession) begin(req *kmsg.FetchRequest, nowMs int64) (fetchSessionMode, int16) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	switch {
	case sess.closed:
		return sessionless, kerr.FetchSessionIDNotFound.Code
	case sess.epoch != req.SessionEpoch:
		return sessionless, kerr.InvalidFetchSessionEpoch.Code
	case sess.usesIDs != (req.Version >= 13):
		return sessionless, kerr.FetchSessionTopicIDError.Code
	}
	sess.update(req)
	switch n := sess.live(); {
	case n > maxSessionPartitions:
		sess.closed = true
		return sessionless, kerr.FetchSessionIDNotFound.Code
	case n == 0:
		// Kafka drops an emptied session and answers sessionlessly.
		sess.closed = true
		return sessionless, 0
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	sess.lastUsed = nowMs
	return sessionUpdate, 0
}

func (sess *fetchSession) isClosed() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.closed
}

// update applies an incremental request: listed partitions are added or
// have their fetch position replaced, forgotten ones are removed. sess.mu
// is held.
func (sess *fetchSession) update(req *kmsg.FetchRequest) {
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			key := requestKey(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			sp := sess.index[key]
			if sp == nil || sp.removed {
				sp = &sessionPartition{key: key, hwm: -1, lso: -1, logStart: -1}
				sess.index[key] = sp
				sess.parts = append(sess.parts, sp)
			}
			sp.offset, sp.maxBytes, sp.leaderEpoch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
		}
	}
	removed := false
	for fi := range req.ForgottenTopics {
		ft := &req.ForgottenTopics[fi]
		for _, p := range ft.Partitions {
			key := requestKey(req.Version, ft.Topic, ft.TopicID, p)
			if sp := sess.index[key]; sp != nil {
				sp.removed = true
				delete(sess.index, key)
				removed = true
			}
		}
	}
	if removed {
		kept := sess.parts[:0]
		for _, sp := range sess.parts {
			if !sp.removed {
				kept = append(kept, sp)
			}
		}
		clear(sess.parts[len(kept):])
		sess.parts = kept
	}
}

func (sess *fetchSession) live() int { return len(sess.parts) }

func requestKey(version int16, topic string, id [16]byte, p int32) sessionKey {
	if version >= 13 {
		return sessionKey{id: id, partition: p}
	}
	return sessionKey{topic: topic, partition: p}
}

// mustRespond reports whether an incremental answer includes a partition
// with this result, and records the result as sent. sess.mu is held.
func (sp *sessionPartition) mustRespond(code int16, hwm, lso, logStart int64, hasRecords bool) bool {
	must := hasRecords || code != 0 || sp.hwm != hwm || sp.lso != lso || sp.logStart != logStart
	sp.hwm, sp.lso, sp.logStart = hwm, lso, logStart
	if code != 0 {
		sp.hwm = -1 // resend once the error clears
	}
	return must
}

// create opens a session for a full fetch's partitions, evicting another
// if the cache is full, and returns its id; 0 means no session (the client
// stays on full fetches). parts are in request order.
func (c *fetchSessions) create(parts []*sessionPartition, usesIDs bool, nowMs int64) int32 {
	if len(parts) == 0 || len(parts) > maxSessionPartitions || c.max <= 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.max && !c.evictLocked(len(parts), nowMs) {
		return 0
	}
	var id int32
	for range 16 { // collisions are rare; bound the retries anyway
		if cand := c.randID(); c.byID[cand] == nil {
			id = cand
			break
		}
	}
	if id == 0 {
		return 0
	}
	sess := &fetchSession{
		id:       id,
		epoch:    1,
		usesIDs:  usesIDs,
		lastUsed: nowMs,
		parts:    parts,
		index:    make(map[sessionKey]*sessionPartition, len(parts)),
	}
	for _, sp := range parts {
		if old := sess.index[sp.key]; old != nil {
			old.removed = true // a partition listed twice: the last wins
		}
		sess.index[sp.key] = sp
	}
	if len(sess.index) != len(parts) {
		kept := parts[:0]
		for _, sp := range parts {
			if !sp.removed {
				kept = append(kept, sp)
			}
		}
		sess.parts = kept
	}
	c.byID[id] = sess
	return id
}

// evictLocked makes room for a session of size partitions: it removes the
// least recently used session if that one is stale, else the smallest
// session if it is smaller than the new one (larger sessions save more).
// c.mu is held.
func (c *fetchSessions) evictLocked(size int, nowMs int64) bool {
	var (
		lru, smallest *fetchSession
		lruUsed       int64
		smallestSize  int
	)
	for _, s := range c.byID {
		s.mu.Lock()
		used, n := s.lastUsed, len(s.parts)
		s.mu.Unlock()
		// Ties go to the lower id, not to the map's random order, so that
		// a seeded run evicts the same session every time.
		if lru == nil || used < lruUsed || used == lruUsed && s.id < lru.id {
			lru, lruUsed = s, used
		}
		if smallest == nil || n < smallestSize || n == smallestSize && s.id < smallest.id {
			smallest, smallestSize = s, n
		}
	}
	var victim *fetchSession
	switch {
	case lru != nil && nowMs-lruUsed >= c.evictMs:
		victim = lru
	case smallest != nil && smallestSize < size:
		victim = smallest
	default:
		return false
	}
	delete(c.byID, victim.id)
	victim.mu.Lock()
	victim.closed = true
	victim.mu.Unlock()
	return true
}

// remove closes session id, if it exists.
func (c *fetchSessions) remove(id int32) {
	c.mu.Lock()
	sess := c.byID[id]
	delete(c.byID, id)
	c.mu.Unlock()
	if sess != nil {
		sess.mu.Lock()
		sess.closed = true
		sess.mu.Unlock()
	}
}

// len is the number of open sessions.
func (c *fetchSessions) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// fetchSessions returns s's session cache.
func (s *Server) fetchSessions() *fetchSessions { return s.sessions }
