package transport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

const (
	// memLinkQueue bounds the envelopes in flight on one (from, to) link
	// of an asynchronous MemNetwork, like TCP's SendQueue.
	memLinkQueue = DefaultSendQueue
	// memManualQueue bounds the envelopes a manual MemNetwork holds.
	memManualQueue = 1 << 16
)

// EnvelopeType says what an Envelope carries.
type EnvelopeType uint8

const (
	EnvelopeMessage  EnvelopeType = 1 // a one-way message
	EnvelopeRequest  EnvelopeType = 2 // a request; delivering it runs the handler
	EnvelopeResponse EnvelopeType = 3 // a request's answer; delivering it returns from Request
)

func (t EnvelopeType) String() string {
	switch t {
	case EnvelopeMessage:
		return "message"
	case EnvelopeRequest:
		return "request"
	case EnvelopeResponse:
		return "response"
	}
	return fmt.Sprintf("EnvelopeType(%d)", uint8(t))
}

// Envelope is one message, request or response in flight on a
// MemNetwork.
type Envelope struct {
	// Seq identifies the envelope; it grows in send order.
	Seq  uint64
	Type EnvelopeType
	From int32
	To   int32
	Kind Kind
	// Payload belongs to the network; read it, never modify it.
	Payload []byte
	// Err is a failed request's error text (responses only).
	Err string

	failed bool     // a response carrying Err
	corr   uint64   // the request a request or response belongs to
	src    *memNode // the sender's incarnation
	dst    *memNode // the receiver's incarnation
}

// MemNetwork connects Transports in memory, with fault injection. It
// follows TCP's semantics where they matter to raft and the controller:
//
//   - messages between a pair of nodes arrive in the order sent, or not
//     at all; Send returns false when the link is known to be down (cut,
//     isolated, node absent, queue full), and true for a message lost to
//     SetDropRate, which models silent loss;
//   - a request needs both directions of its pair: it fails with
//     ErrUnreachable at once when either is down, and when one goes down
//     while it is in flight (as a broken TCP connection fails its
//     requests); requests are never dropped at random;
//   - a node that closes loses what was in flight to it; Join with the
//     same id again is a restart.
//
// Payloads are copied on Send and Request, so nodes never share memory,
// as they would not over TCP.
//
// In the default (asynchronous) mode, one goroutine per (from, to) pair
// delivers in order. In manual mode (NewManualNetwork) nothing moves
// until the caller says so; see NewManualNetwork.
type MemNetwork struct {
	manual bool

	mu       sync.Mutex
	closed   bool
	nodes    map[int32]*memNode
	cuts     map[memPair]struct{}
	isolated map[int32]struct{}
	dropRate float64
	rnd      *rand.Rand
	links    map[memPair]*memLink // asynchronous mode
	queue    []Envelope           // manual mode, in send order
	nextSeq  uint64
	wg       sync.WaitGroup
}

type memPair struct{ from, to int32 }

// NewMemNetwork returns an asynchronous in-memory network: envelopes are
// delivered by one goroutine per (from, to) pair, in order.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{
		nodes:    make(map[int32]*memNode),
		cuts:     make(map[memPair]struct{}),
		isolated: make(map[int32]struct{}),
		links:    make(map[memPair]*memLink),
	}
}

// NewManualNetwork returns an in-memory network that delivers nothing by
// itself: Send and Request queue envelopes, Pending lists them in send
// order, and Deliver, DeliverAll and Drop let the caller decide what
// arrives, when, and in which order (reordering included). This is the
// seam the deterministic simulator drives: with a seeded choice of which
// envelope to deliver next, every interleaving is reproducible.
//
// Delivering a message calls HandleMessage on the caller's goroutine.
// Delivering a request starts HandleRequest on its own goroutine, because
// handlers may wait for something only later deliveries bring (a
// controller answers AlterPartition once the record commits); its answer
// appears as an EnvelopeResponse in Pending when the handler returns, and
// delivering that returns it from Request.
func NewManualNetwork() *MemNetwork {
	n := NewMemNetwork()
	n.manual = true
	return n
}

// Join adds node id with handler h and returns its Transport. Joining an
// id that is already present closes the old node first (a restart).
func (n *MemNetwork) Join(id int32, h Handler) Transport {
	ctx, cancel := context.WithCancel(context.Background())
	m := &memNode{net: n, id: id, h: h, ctx: ctx, cancel: cancel, pending: make(map[uint64]*memCall)}
	n.mu.Lock()
	if n.closed {
		m.closed = true
		n.mu.Unlock()
		cancel()
		return m
	}
	var fail []failedCall
	if old := n.nodes[id]; old != nil {
		fail = n.leaveLocked(old)
	}
	n.nodes[id] = m
	n.mu.Unlock()
	finishAll(fail)
	return m
}

// Cut stops traffic from a to b (one direction). In-flight requests
// between a and b, either way, fail with ErrUnreachable.
func (n *MemNetwork) Cut(a, b int32) {
	n.mu.Lock()
	n.cuts[memPair{a, b}] = struct{}{}
	fail := n.failCrossingLocked(func(from, to int32) bool {
		return (from == a && to == b) || (from == b && to == a)
	})
	n.mu.Unlock()
	finishAll(fail)
}

// Isolate cuts node id off from every node, both directions.
func (n *MemNetwork) Isolate(id int32) {
	n.mu.Lock()
	n.isolated[id] = struct{}{}
	fail := n.failCrossingLocked(func(from, to int32) bool { return from == id || to == id })
	n.mu.Unlock()
	finishAll(fail)
}

// Heal undoes Isolate(id) and every Cut from or to id.
func (n *MemNetwork) Heal(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, id)
	for p := range n.cuts {
		if p.from == id || p.to == id {
			delete(n.cuts, p)
		}
	}
}

// HealAll undoes every Cut and Isolate.
func (n *MemNetwork) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cuts)
	clear(n.isolated)
}

// SetDropRate makes Send lose each message with probability p, silently
// (Send still returns true), drawing from rnd; a nil rnd uses a fixed
// seed, so runs repeat. Requests are never dropped at random: TCP either
// delivers them or breaks the connection.
func (n *MemNetwork) SetDropRate(p float64, rnd *rand.Rand) {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(1, 2))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = min(max(p, 0), 1)
	n.rnd = rnd
}

// Pending lists the undelivered envelopes of a manual network in send
// order (nil for an asynchronous one).
func (n *MemNetwork) Pending() []Envelope {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.queue)
}

// Deliver delivers the pending envelope seq of a manual network, in any
// order the caller likes. It reports false when there is no such
// envelope, or when it cannot arrive (its link is down or its receiver
// gone), in which case it is dropped.
func (n *MemNetwork) Deliver(seq uint64) bool {
	n.mu.Lock()
	i := slices.IndexFunc(n.queue, func(e Envelope) bool { return e.Seq == seq })
	if i < 0 {
		n.mu.Unlock()
		return false
	}
	env := n.queue[i]
	n.queue = slices.Delete(n.queue, i, i+1)
	n.mu.Unlock()
	return n.deliver(env)
}

// DeliverAll delivers, in send order, the envelopes pending when it is
// called, and returns how many arrived. What their handlers send stays
// pending for the next call, so a chatty protocol cannot make it loop.
func (n *MemNetwork) DeliverAll() int {
	n.mu.Lock()
	batch := n.queue
	n.queue = nil
	n.mu.Unlock()
	delivered := 0
	for _, env := range batch {
		if n.deliver(env) {
			delivered++
		}
	}
	return delivered
}

// Drop discards the pending envelope seq of a manual network; a dropped
// request fails its caller with ErrUnreachable, as a broken connection
// would. It reports whether there was such an envelope.
func (n *MemNetwork) Drop(seq uint64) bool {
	n.mu.Lock()
	i := slices.IndexFunc(n.queue, func(e Envelope) bool { return e.Seq == seq })
	if i < 0 {
		n.mu.Unlock()
		return false
	}
	env := n.queue[i]
	n.queue = slices.Delete(n.queue, i, i+1)
	var fail []failedCall
	if env.Type != EnvelopeMessage {
		fail = n.failCallLocked(env, "dropped")
	}
	n.mu.Unlock()
	finishAll(fail)
	return true
}

// Close closes every node and stops the network's goroutines, waiting
// for them at most closeWait.
func (n *MemNetwork) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.closed = true
	var fail []failedCall
	for _, m := range n.nodes {
		fail = append(fail, n.leaveLocked(m)...)
	}
	n.queue = nil
	n.mu.Unlock()
	finishAll(fail)

	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		return fmt.Errorf("transport: mem network close: goroutines still running after %v (a handler ignoring its context?)", closeWait)
	}
}

// blockedLocked reports whether traffic from → to is cut.
func (n *MemNetwork) blockedLocked(from, to int32) bool {
	if _, ok := n.isolated[from]; ok {
		return true
	}
	if _, ok := n.isolated[to]; ok {
		return true
	}
	_, ok := n.cuts[memPair{from, to}]
	return ok
}

// liveLocked returns the current incarnation of node id, or nil.
func (n *MemNetwork) liveLocked(id int32) *memNode {
	m := n.nodes[id]
	if m == nil || m.closed {
		return nil
	}
	return m
}

// enqueueLocked puts env in flight. It reports false when the queue is
// full.
func (n *MemNetwork) enqueueLocked(env Envelope) bool {
	n.nextSeq++
	env.Seq = n.nextSeq
	if n.manual {
		if len(n.queue) >= memManualQueue {
			return false
		}
		n.queue = append(n.queue, env)
		return true
	}
	key := memPair{env.From, env.To}
	l := n.links[key]
	if l == nil || l.dst != env.dst || l.src != env.src {
		if l != nil {
			close(l.stop)
		}
		l = &memLink{ch: make(chan Envelope, memLinkQueue), stop: make(chan struct{}), src: env.src, dst: env.dst}
		n.links[key] = l
		n.wg.Add(1)
		go n.runLink(l)
	}
	select {
	case l.ch <- env:
		return true
	default:
		return false
	}
}

// memLink carries one (from, to) pair's envelopes in order, between two
// incarnations; a restart on either end gets a new link.
type memLink struct {
	ch       chan Envelope
	stop     chan struct{}
	src, dst *memNode
}

func (n *MemNetwork) runLink(l *memLink) {
	defer n.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case env := <-l.ch:
			n.deliver(env)
		}
	}
}

// deliver hands env to its receiver, if it can still arrive.
func (n *MemNetwork) deliver(env Envelope) bool {
	n.mu.Lock()
	dst := env.dst
	down := n.closed || n.liveLocked(dst.id) != dst || n.blockedLocked(env.From, env.To)
	if env.Type != EnvelopeMessage {
		down = down || n.blockedLocked(env.To, env.From)
	}
	if down {
		var fail []failedCall
		if env.Type != EnvelopeMessage {
			fail = n.failCallLocked(env, "link down")
		}
		n.mu.Unlock()
		finishAll(fail)
		return false
	}
	switch env.Type {
	case EnvelopeMessage:
		n.mu.Unlock()
		dst.h.HandleMessage(env.From, env.Kind, env.Payload)
	case EnvelopeRequest:
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serve(env)
	case EnvelopeResponse:
		cl := dst.pending[env.corr]
		delete(dst.pending, env.corr)
		n.mu.Unlock()
		if cl == nil {
			return false // its caller gave up
		}
		if env.failed {
			cl.finish(nil, fmt.Errorf("transport: node %d: %w: %s", env.From, ErrRemote, env.Err))
		} else {
			cl.finish(env.Payload, nil)
		}
	}
	return true
}

// serve runs a request's handler and sends back its answer.
func (n *MemNetwork) serve(req Envelope) {
	defer n.wg.Done()
	m := req.dst
	resp, err := m.h.HandleRequest(m.ctx, req.From, req.Kind, req.Payload)
	env := Envelope{
		Type: EnvelopeResponse,
		From: req.To,
		To:   req.From,
		Kind: req.Kind,
		corr: req.corr,
		src:  req.dst,
		dst:  req.src,
	}
	if err != nil {
		env.failed = true
		env.Err = err.Error()
	} else {
		env.Payload = slices.Clone(resp)
	}
	if !n.manual {
		// Responses travel on the connection the request came on, not
		// behind the responder's own messages: deliver at once.
		n.deliver(env)
		return
	}
	n.mu.Lock()
	ok := !n.closed && n.enqueueLocked(env)
	var fail []failedCall
	if !ok {
		fail = n.failCallLocked(env, "queue full")
	}
	n.mu.Unlock()
	finishAll(fail)
}

// failedCall is a request to finish with err once the lock is released.
type failedCall struct {
	cl  *memCall
	err error
}

func finishAll(fail []failedCall) {
	for _, f := range fail {
		f.cl.finish(nil, f.err)
	}
}

// failCallLocked fails the request a request or response envelope
// belongs to.
func (n *MemNetwork) failCallLocked(env Envelope, why string) []failedCall {
	caller, peer := env.src, env.To
	if env.Type == EnvelopeResponse {
		caller, peer = env.dst, env.From
	}
	cl := caller.pending[env.corr]
	if cl == nil {
		return nil
	}
	delete(caller.pending, env.corr)
	return []failedCall{{cl, fmt.Errorf("transport: node %d: %w: %s", peer, ErrUnreachable, why)}}
}

// failCrossingLocked fails the pending requests whose pair crosses(from
// caller, to peer) reports as broken.
func (n *MemNetwork) failCrossingLocked(crosses func(from, to int32) bool) []failedCall {
	var fail []failedCall
	for _, m := range n.nodes {
		for corr, cl := range m.pending {
			if crosses(m.id, cl.to) {
				delete(m.pending, corr)
				fail = append(fail, failedCall{cl, fmt.Errorf("transport: node %d: %w: link cut", cl.to, ErrUnreachable)})
			}
		}
	}
	return fail
}

// leaveLocked removes node m: its requests fail with ErrClosed, requests
// to it with ErrUnreachable, its links stop and what was queued for it
// is dropped.
func (n *MemNetwork) leaveLocked(m *memNode) []failedCall {
	m.closed = true
	m.cancel()
	if n.nodes[m.id] == m {
		delete(n.nodes, m.id)
	}
	var fail []failedCall
	for corr, cl := range m.pending {
		delete(m.pending, corr)
		fail = append(fail, failedCall{cl, ErrClosed})
	}
	for _, other := range n.nodes {
		for corr, cl := range other.pending {
			if cl.to == m.id {
				delete(other.pending, corr)
				fail = append(fail, failedCall{cl, fmt.Errorf("transport: node %d: %w: node left", m.id, ErrUnreachable)})
			}
		}
	}
	for key, l := range n.links {
		if l.src == m || l.dst == m {
			close(l.stop)
			delete(n.links, key)
		}
	}
	n.queue = slices.DeleteFunc(n.queue, func(e Envelope) bool { return e.dst == m })
	return fail
}

// memNode is one node's Transport on a MemNetwork.
type memNode struct {
	net *MemNetwork
	id  int32
	h   Handler
	// ctx is given to handlers; cancelled when the node closes.
	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by net.mu.
	closed  bool
	pending map[uint64]*memCall
}

type memCall struct {
	to   int32
	done chan struct{}
	resp []byte
	err  error
}

func (c *memCall) finish(resp []byte, err error) {
	c.resp, c.err = resp, err
	close(c.done)
}

var _ Transport = (*memNode)(nil)

// Send queues a one-way message; see Transport and MemNetwork.
func (m *memNode) Send(to int32, kind Kind, payload []byte) bool {
	n := m.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if m.closed || n.closed {
		return false
	}
	dst := n.liveLocked(to)
	if dst == nil || n.blockedLocked(m.id, to) {
		return false
	}
	if n.dropRate > 0 && n.rnd.Float64() < n.dropRate {
		return true // lost on the way; the sender cannot know
	}
	return n.enqueueLocked(Envelope{
		Type: EnvelopeMessage, From: m.id, To: to, Kind: kind,
		Payload: slices.Clone(payload), src: m, dst: dst,
	})
}

// Request sends a request and waits for its answer; see Transport and
// MemNetwork.
func (m *memNode) Request(ctx context.Context, to int32, kind Kind, payload []byte) ([]byte, error) {
	n := m.net
	n.mu.Lock()
	if m.closed || n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("transport: request to node %d: %w", to, err)
	}
	dst := n.liveLocked(to)
	if dst == nil || n.blockedLocked(m.id, to) || n.blockedLocked(to, m.id) {
		n.mu.Unlock()
		return nil, fmt.Errorf("transport: request to node %d: %w", to, ErrUnreachable)
	}
	n.nextSeq++ // correlation ids share the sequence; any unique number works
	corr := n.nextSeq
	cl := &memCall{to: to, done: make(chan struct{})}
	m.pending[corr] = cl
	ok := n.enqueueLocked(Envelope{
		Type: EnvelopeRequest, From: m.id, To: to, Kind: kind,
		Payload: slices.Clone(payload), corr: corr, src: m, dst: dst,
	})
	if !ok {
		delete(m.pending, corr)
		n.mu.Unlock()
		return nil, fmt.Errorf("transport: request to node %d: %w: queue full", to, ErrUnreachable)
	}
	n.mu.Unlock()

	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-ctx.Done():
		n.mu.Lock()
		mine := m.pending[corr] == cl
		delete(m.pending, corr)
		n.mu.Unlock()
		if mine {
			return nil, fmt.Errorf("transport: request to node %d: %w", to, ctx.Err())
		}
		<-cl.done
		return cl.resp, cl.err
	}
}

// SetPeer does nothing: on a MemNetwork node ids are the addresses.
func (m *memNode) SetPeer(int32, string) {}

// Close removes the node from the network; see MemNetwork.
func (m *memNode) Close() error {
	n := m.net
	n.mu.Lock()
	if m.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	fail := n.leaveLocked(m)
	n.mu.Unlock()
	finishAll(fail)
	return nil
}
