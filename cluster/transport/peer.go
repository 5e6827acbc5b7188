package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// outItem is one queued message or request. Requests are identified by
// their correlation id in peer.pending.
type outItem struct {
	typ     frameType
	kind    Kind
	corr    uint64
	payload []byte
}

// call is a request waiting for its answer. Whoever removes it from
// peer.pending finishes it, exactly once.
type call struct {
	done chan struct{}
	// conn is the connection the request was written to; nil while it is
	// queued. Guarded by peer.mu.
	conn *outConn
	resp []byte
	err  error
}

func (c *call) finish(resp []byte, err error) {
	c.resp, c.err = resp, err
	close(c.done)
}

// outConn is the connection we dialed to a peer: our messages and
// requests go out on it, the peer's responses come back on it.
type outConn struct {
	nc net.Conn
	bw *bufio.Writer // the peer's writer goroutine only
	br *bufio.Reader // the connection's reader goroutine only
	// dead is set, under peer.mu, by whoever closes the connection; the
	// requests written to it are failed at the same time.
	dead bool
}

// peer is one remote node: its address, its outbound queue and
// connection, and the requests waiting for its answers.
//
// One writer goroutine (run) owns the queue's consumer side and the
// connection's writes; it dials lazily when there is something to send.
// Each connection also has a reader goroutine for responses.
type peer struct {
	t     *TCP
	id    int32
	queue chan outItem
	// downUntil (unix nanoseconds) is set after a failed dial: until then
	// Send and Request fail at once instead of queueing for a peer we
	// know we cannot reach.
	downUntil atomic.Int64

	mu      sync.Mutex
	addr    string
	conn    *outConn // the current connection, nil before the first dial
	backoff time.Duration
	lastErr error // why the last dial failed
	pending map[uint64]*call
}

func newPeer(t *TCP, id int32, addr string) *peer {
	return &peer{
		t:       t,
		id:      id,
		addr:    addr,
		queue:   make(chan outItem, t.opts.SendQueue),
		pending: make(map[uint64]*call),
	}
}

func (p *peer) backingOff() bool {
	until := p.downUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// reconnecting is the error for traffic refused while backing off.
func (p *peer) reconnecting() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil {
		return errors.New("reconnecting")
	}
	return fmt.Errorf("reconnecting after: %w", p.lastErr)
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	if p.addr == addr {
		p.mu.Unlock()
		return
	}
	p.addr = addr
	p.backoff = 0
	p.downUntil.Store(0)
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		p.breakConn(c, fmt.Errorf("node %d moved to %s", p.id, addr))
	}
}

// register adds a request about to be queued. It fails once the
// transport is closing: Close sets closed before it drains pending under
// the same lock, so a call is either refused here or failed by Close.
func (p *peer) register(corr uint64, cl *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t.closed.Load() {
		return false
	}
	p.pending[corr] = cl
	return true
}

// take removes a pending request, reporting whether the caller now owns
// finishing it.
func (p *peer) take(corr uint64) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	cl := p.pending[corr]
	delete(p.pending, corr)
	return cl
}

// abandon gives up on a request for err, unless someone finished it
// meanwhile, in which case that answer stands.
func (p *peer) abandon(corr uint64, cl *call, err error) ([]byte, error) {
	if p.take(corr) != nil {
		return nil, err
	}
	<-cl.done
	return cl.resp, cl.err
}

func (p *peer) complete(corr uint64, resp []byte, err error) {
	if cl := p.take(corr); cl != nil {
		cl.finish(resp, err)
	}
}

func (p *peer) unreachable(cause error) error {
	return fmt.Errorf("transport: node %d: %w: %w", p.id, ErrUnreachable, cause)
}

// breakConn closes c and fails the requests written to it. It is safe to
// call from anywhere, any number of times.
func (p *peer) breakConn(c *outConn, cause error) {
	p.mu.Lock()
	if c.dead {
		p.mu.Unlock()
		return
	}
	c.dead = true
	var failed []*call
	for corr, cl := range p.pending {
		if cl.conn == c {
			failed = append(failed, cl)
			delete(p.pending, corr)
		}
	}
	p.mu.Unlock()
	c.nc.Close()
	if len(failed) > 0 {
		err := p.unreachable(cause)
		for _, cl := range failed {
			cl.finish(nil, err)
		}
	}
}

// shutdown is the peer's part of Close: the connection goes and every
// pending request, written or queued, fails with ErrClosed.
func (p *peer) shutdown() {
	p.mu.Lock()
	c := p.conn
	var failed []*call
	for corr, cl := range p.pending {
		failed = append(failed, cl)
		delete(p.pending, corr)
	}
	p.mu.Unlock()
	if c != nil {
		p.breakConn(c, ErrClosed)
	}
	for _, cl := range failed {
		cl.finish(nil, ErrClosed)
	}
}

// run is the peer's writer goroutine.
func (p *peer) run() {
	var hdr [maxHeaderSize]byte
	for {
		var it outItem
		select {
		case <-p.t.ctx.Done():
			return
		case it = <-p.queue:
		}
		c, err := p.connection()
		if err != nil {
			if p.t.closed.Load() {
				return
			}
			// What was queued behind it meets the backoff in connection
			// and is dropped the same way, one by one: raft retransmits,
			// and requests are better failed now than sent late. Only
			// while backing off, so that items queued after SetPeer
			// (which ends the backoff) get a fresh dial.
			p.drop(it, err)
			continue
		}
		// Write everything queued, then flush once: under load many
		// frames share one syscall, and an idle queue never waits.
		for {
			if err := p.write(c, &hdr, it); err != nil {
				p.breakConn(c, err)
				break
			}
			select {
			case it = <-p.queue:
				continue
			default:
			}
			if err := c.bw.Flush(); err != nil {
				p.breakConn(c, err)
			}
			break
		}
	}
}

// write buffers one item on c. A request still pending is bound to c
// first, so that if c breaks the request fails with it.
func (p *peer) write(c *outConn, hdr *[maxHeaderSize]byte, it outItem) error {
	if it.typ == frameRequest {
		p.mu.Lock()
		cl := p.pending[it.corr]
		switch {
		case cl == nil:
			// Abandoned by its caller while queued: nobody waits for it.
			p.mu.Unlock()
			return nil
		case c.dead:
			delete(p.pending, it.corr)
			p.mu.Unlock()
			cl.finish(nil, p.unreachable(errors.New("connection closed")))
			return nil
		}
		cl.conn = c
		p.mu.Unlock()
	}
	n := putHeader(hdr, it.typ, it.kind, it.corr, len(it.payload))
	c.bw.Write(hdr[:n])
	_, err := c.bw.Write(it.payload)
	return err // sticky: any earlier error shows here
}

// drop discards an item that cannot be sent, failing it if a request.
func (p *peer) drop(it outItem, cause error) {
	if it.typ == frameRequest {
		if cl := p.take(it.corr); cl != nil {
			cl.finish(nil, p.unreachable(cause))
		}
	}
}

// connection returns the live connection, dialing one if there is none.
// It fails at once while the peer is backing off.
func (p *peer) connection() (*outConn, error) {
	// A bounded number of tries: the address may change while we dial,
	// and then the connection we got goes to the wrong place.
	for range 3 {
		p.mu.Lock()
		c, addr := p.conn, p.addr
		live := c != nil && !c.dead
		p.mu.Unlock()
		if live {
			return c, nil
		}
		if p.backingOff() {
			return nil, p.reconnecting()
		}
		c, err := p.dial(addr)
		if err != nil {
			if !p.markDown(addr, err) {
				continue // the address changed meanwhile: try the new one
			}
			return nil, err
		}
		p.mu.Lock()
		switch {
		case p.t.closed.Load():
			p.mu.Unlock()
			c.nc.Close()
			return nil, ErrClosed
		case p.addr != addr:
			p.mu.Unlock()
			c.nc.Close()
			continue
		}
		p.conn = c
		p.backoff = 0
		p.mu.Unlock()
		if !p.t.spawn(func() { p.readResponses(c) }) {
			p.breakConn(c, ErrClosed)
			return nil, ErrClosed
		}
		p.t.log.Debug("transport connected", "peer", p.id, "addr", addr)
		return c, nil
	}
	return nil, errors.New("address keeps changing")
}

// markDown starts (or lengthens) the backoff after a failed dial to
// addr. It reports false, and changes nothing, if the peer has moved to
// another address since: that one deserves its own try.
func (p *peer) markDown(addr string, err error) bool {
	p.mu.Lock()
	if p.addr != addr {
		p.mu.Unlock()
		return false
	}
	first := p.backoff == 0
	p.backoff = min(max(2*p.backoff, minBackoff), max(p.t.opts.MaxBackoff, minBackoff))
	p.lastErr = err
	wait := p.backoff
	p.downUntil.Store(time.Now().Add(wait).UnixNano())
	p.mu.Unlock()
	if !p.t.closed.Load() {
		// Loud once, then quiet while it stays down.
		level := p.t.log.Debug
		if first {
			level = p.t.log.Info
		}
		level("transport: cannot reach peer", "peer", p.id, "addr", addr, "err", err, "retry_in", wait)
	}
	return true
}

// dial connects to addr and does the handshake, within DialTimeout and
// abandoned at once if the transport closes.
func (p *peer) dial(addr string) (*outConn, error) {
	t := p.t
	ctx, cancel := context.WithTimeout(t.ctx, t.opts.DialTimeout)
	defer cancel()
	nc, err := t.opts.Dialer(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	fail := func(err error) (*outConn, error) {
		nc.Close()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var buf [helloFixedSize + maxClusterIDLen]byte
	if _, err := nc.Write(appendHello(buf[:0], t.opts.NodeID, t.opts.ClusterID)); err != nil {
		return fail(fmt.Errorf("%w with %s: %w", errHandshake, addr, err))
	}
	br := bufio.NewReaderSize(nc, responseBufferSize)
	status, nodeID, err := readAck(br)
	if err != nil {
		return fail(fmt.Errorf("%w with %s: %w", errHandshake, addr, err))
	}
	if status != ackOK {
		t.log.Warn("transport: peer refused our connection", "peer", p.id, "addr", addr, "reason", status)
		return fail(fmt.Errorf("%w: %s refused us: %v", errHandshake, addr, status))
	}
	if nodeID != p.id {
		t.log.Warn("transport: address belongs to another node; check the peer addresses",
			"peer", p.id, "addr", addr, "answered_node", nodeID)
		return fail(fmt.Errorf("%w: %s is node %d, not node %d", errHandshake, addr, nodeID, p.id))
	}
	if !stop() {
		return fail(fmt.Errorf("%w with %s: %w", errHandshake, addr, context.Cause(ctx)))
	}
	nc.SetDeadline(time.Time{})
	return &outConn{
		nc: nc,
		bw: bufio.NewWriterSize(deadlineWriter{nc, t.opts.WriteTimeout}, sendBufferSize),
		br: br,
	}, nil
}

// readResponses reads c until it breaks, completing requests.
func (p *peer) readResponses(c *outConn) {
	fr := newFrameReader(c.br, p.t.opts.MaxFrameBytes)
	for {
		f, err := fr.next()
		if err != nil {
			p.t.logReadError(err, "peer", p.id)
			p.breakConn(c, err)
			return
		}
		switch f.typ {
		case frameResponse:
			// The caller keeps the answer, so it gets its own copy.
			p.complete(f.corr, append([]byte(nil), f.payload...), nil)
		case frameError:
			p.complete(f.corr, nil, fmt.Errorf("transport: node %d: %w: %s", p.id, ErrRemote, f.payload))
		default:
			err := fmt.Errorf("%w: type %d on an outbound connection", errMalformedFrame, f.typ)
			p.t.logReadError(err, "peer", p.id)
			p.breakConn(c, err)
			return
		}
		fr.release()
	}
}
