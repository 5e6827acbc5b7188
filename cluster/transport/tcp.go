package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options.
const (
	DefaultSendQueue             = 4096
	DefaultDialTimeout           = 3 * time.Second
	DefaultWriteTimeout          = 10 * time.Second
	DefaultMaxBackoff            = time.Second
	DefaultMaxConcurrentRequests = 64
	DefaultMaxInboundConns       = 1024

	// minBackoff is the first wait after a failed dial.
	minBackoff = 20 * time.Millisecond
	// closeWait bounds how long Close waits for goroutines (a handler
	// that ignores its context can hold one forever).
	closeWait = 5 * time.Second
	// maxErrorText bounds the error text sent back for a failed request.
	maxErrorText = 4 << 10

	// Buffer sizes: the busy directions (our messages and requests out,
	// the peer's in) get room to batch; the response directions little.
	// About 100 KiB per connection pair.
	sendBufferSize     = 64 << 10
	receiveBufferSize  = 32 << 10
	responseBufferSize = 4 << 10
)

// Options configure a TCP transport.
type Options struct {
	// NodeID is this node's id, announced in the handshake.
	NodeID int32
	// ClusterID must match on both ends of every connection; at most 255
	// bytes, not empty.
	ClusterID string
	// Listener accepts peers' connections. It is already bound (the node
	// owns its address); the transport closes it on Close.
	Listener net.Listener
	// Handler receives what peers send.
	Handler Handler
	// Logger, if nil, discards.
	Logger *slog.Logger

	// MaxFrameBytes bounds one frame (default DefaultMaxFrameBytes). It
	// should be the same on every node: a peer refuses, and disconnects
	// on, a frame above its own bound.
	MaxFrameBytes int
	// SendQueue is the number of messages and requests queued per peer
	// (default DefaultSendQueue).
	SendQueue int
	// DialTimeout bounds dialing plus the handshake, in both directions
	// (default DefaultDialTimeout).
	DialTimeout time.Duration
	// WriteTimeout bounds each write to a connection (default
	// DefaultWriteTimeout); a peer that stops reading for longer is
	// disconnected.
	WriteTimeout time.Duration
	// MaxBackoff caps the wait between dials to an unreachable peer
	// (default DefaultMaxBackoff).
	MaxBackoff time.Duration
	// MaxConcurrentRequests bounds the handlers running at once for one
	// inbound connection (default DefaultMaxConcurrentRequests).
	MaxConcurrentRequests int
	// MaxInboundConns bounds the inbound connections (default
	// DefaultMaxInboundConns).
	MaxInboundConns int
	// Dialer, if set, replaces net.Dialer. Tests use it to cut traffic.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.SendQueue == 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxConcurrentRequests == 0 {
		o.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if o.MaxInboundConns == 0 {
		o.MaxInboundConns = DefaultMaxInboundConns
	}
	if o.Dialer == nil {
		var d net.Dialer
		o.Dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
}

func (o *Options) validate() error {
	switch {
	case o.Listener == nil:
		return errors.New("no listener")
	case o.Handler == nil:
		return errors.New("no handler")
	case o.ClusterID == "":
		return errors.New("empty cluster id")
	case len(o.ClusterID) > maxClusterIDLen:
		return fmt.Errorf("cluster id is %d bytes, at most %d", len(o.ClusterID), maxClusterIDLen)
	case o.MaxFrameBytes < minMaxFrameBytes || o.MaxFrameBytes > maxMaxFrameBytes:
		return fmt.Errorf("max frame bytes %d outside [%d, %d]", o.MaxFrameBytes, minMaxFrameBytes, maxMaxFrameBytes)
	case o.SendQueue < 1:
		return fmt.Errorf("send queue %d < 1", o.SendQueue)
	case o.DialTimeout < 0 || o.WriteTimeout < 0 || o.MaxBackoff < 0:
		return errors.New("negative duration")
	case o.MaxConcurrentRequests < 1:
		return fmt.Errorf("max concurrent requests %d < 1", o.MaxConcurrentRequests)
	case o.MaxInboundConns < 1:
		return fmt.Errorf("max inbound connections %d < 1", o.MaxInboundConns)
	}
	return nil
}

// TCP is the daemon's Transport: framed messages and requests over TCP
// (see the package documentation for the protocol and its bounds).
type TCP struct {
	opts Options
	log  *slog.Logger

	// ctx is cancelled by Close; dials and handlers derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	closed   atomic.Bool
	nextCorr atomic.Uint64
	// blocked simulates a network partition around this node (SetBlocked).
	blocked atomic.Bool
	// peers maps node id to peer. It is copied on write (SetPeer is rare)
	// so that Send finds its peer without a lock.
	peers atomic.Pointer[map[int32]*peer]

	mu      sync.Mutex // guards inbound and spawning after close
	inbound map[*inConn]struct{}
	wg      sync.WaitGroup
}

var _ Transport = (*TCP)(nil)

// NewTCP starts a transport accepting on opts.Listener. Peers are added
// with SetPeer; connections to them are dialed on first use.
func NewTCP(opts Options) (*TCP, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		opts:    opts,
		log:     opts.Logger.With("node", opts.NodeID),
		ctx:     ctx,
		cancel:  cancel,
		inbound: make(map[*inConn]struct{}),
	}
	t.peers.Store(&map[int32]*peer{})
	t.spawn(t.acceptLoop)
	return t, nil
}

// Addr is the address the transport accepts on.
func (t *TCP) Addr() net.Addr { return t.opts.Listener.Addr() }

// spawn runs f on a goroutine Close waits for, unless Close has begun.
// Adding to the WaitGroup under mu, only while open, keeps Add from
// racing with Close's Wait.
func (t *TCP) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

func (t *TCP) peer(id int32) *peer { return (*t.peers.Load())[id] }

// SetPeer tells the transport where node id listens. A changed address
// closes the connection to the old one and forgets any backoff, so
// traffic moves to the new address at once.
func (t *TCP) SetPeer(id int32, addr string) {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return
	}
	if p := t.peer(id); p != nil {
		t.mu.Unlock()
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	old := *t.peers.Load()
	m := make(map[int32]*peer, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = p
	t.peers.Store(&m)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
	t.mu.Unlock()
}

// SetBlocked cuts this node off from its peers (true) or reconnects it
// (false), without stopping the process: while blocked, Send drops,
// Request fails with ErrUnreachable and inbound frames are dropped with
// their connection. Fault-injection tests use it to partition a node.
func (t *TCP) SetBlocked(blocked bool) { t.blocked.Store(blocked) }

// Send queues a one-way message; see Transport.
func (t *TCP) Send(to int32, kind Kind, payload []byte) bool {
	if t.closed.Load() || t.blocked.Load() {
		return false
	}
	p := t.peer(to)
	if p == nil || len(payload) > maxPayload(frameMessage, t.opts.MaxFrameBytes) || p.backingOff() {
		return false
	}
	select {
	case p.queue <- outItem{typ: frameMessage, kind: kind, payload: payload}:
		return true
	default:
		return false
	}
}

// Request sends a request to node to and waits for the answer; see
// Transport.
func (t *TCP) Request(ctx context.Context, to int32, kind Kind, payload []byte) ([]byte, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	if t.blocked.Load() {
		return nil, fmt.Errorf("transport: request to node %d: blocked: %w", to, ErrUnreachable)
	}
	p := t.peer(to)
	if p == nil {
		return nil, fmt.Errorf("transport: request to node %d: %w", to, ErrUnknownPeer)
	}
	if limit := maxPayload(frameRequest, t.opts.MaxFrameBytes); len(payload) > limit {
		return nil, fmt.Errorf("transport: request to node %d: %w: %d bytes, limit %d", to, ErrTooLarge, len(payload), limit)
	}
	if p.backingOff() {
		return nil, p.unreachable(p.reconnecting())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transport: request to node %d: %w", to, err)
	}
	corr := t.nextCorr.Add(1)
	cl := &call{done: make(chan struct{})}
	if !p.register(corr, cl) {
		return nil, ErrClosed
	}
	select {
	case p.queue <- outItem{typ: frameRequest, kind: kind, corr: corr, payload: payload}:
	case <-ctx.Done():
		return p.abandon(corr, cl, fmt.Errorf("transport: request to node %d: %w", to, ctx.Err()))
	case <-t.ctx.Done():
		return p.abandon(corr, cl, ErrClosed)
	}
	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-ctx.Done():
		return p.abandon(corr, cl, fmt.Errorf("transport: request to node %d: %w", to, ctx.Err()))
	}
}

// Close stops accepting, closes every connection, fails pending requests
// with ErrClosed and waits (at most closeWait) for the goroutines.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed.Store(true)
	inbound := make([]*inConn, 0, len(t.inbound))
	for ic := range t.inbound {
		inbound = append(inbound, ic)
	}
	t.mu.Unlock()

	// Connections first, then the context: see inConn.close.
	for _, ic := range inbound {
		ic.close()
	}
	t.cancel()
	var firstErr error
	if err := t.opts.Listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		firstErr = fmt.Errorf("transport: closing listener: %w", err)
	}
	for _, p := range *t.peers.Load() {
		p.shutdown()
	}

	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		err := fmt.Errorf("transport: close: goroutines still running after %v (a handler ignoring its context?)", closeWait)
		t.log.Error("transport close timed out", "err", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Inbound side.

func (t *TCP) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := t.opts.Listener.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Probably out of file descriptors: wait rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("transport accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if !t.spawn(func() { t.serveInbound(nc) }) {
			nc.Close()
			return
		}
	}
}

// inConn is a connection a peer dialed to us: it carries the peer's
// messages and requests in, and our responses out.
type inConn struct {
	nc   net.Conn
	from int32
	// ctx is cancelled when the connection closes; handlers get it.
	ctx    context.Context
	cancel context.CancelFunc
	// sem holds a token per running handler.
	sem chan struct{}

	// writers counts responders waiting for or holding wmu; the last one
	// out flushes, so concurrent responses share a write.
	writers atomic.Int32
	wmu     sync.Mutex
	bw      *bufio.Writer
	hdr     [maxHeaderSize]byte
	werr    error
}

// close closes the connection before cancelling the handlers' context,
// so a handler that returns because of the cancellation cannot answer
// on it: its caller sees the connection break (ErrUnreachable), not a
// "context canceled" from the handler.
func (ic *inConn) close() {
	ic.nc.Close()
	ic.cancel()
}

func (t *TCP) serveInbound(nc net.Conn) {
	remote := nc.RemoteAddr().String()
	ctx, cancel := context.WithCancel(t.ctx)
	ic := &inConn{
		nc:     nc,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, t.opts.MaxConcurrentRequests),
	}
	// Registered before the handshake, so the limit also holds for
	// connections that never finish one, and Close reaches them.
	t.mu.Lock()
	switch {
	case t.closed.Load():
		t.mu.Unlock()
		ic.close()
		return
	case len(t.inbound) >= t.opts.MaxInboundConns:
		t.mu.Unlock()
		t.log.Warn("transport refusing connection: too many inbound connections",
			"remote", remote, "limit", t.opts.MaxInboundConns)
		ic.close()
		return
	}
	t.inbound[ic] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, ic)
		t.mu.Unlock()
		ic.close()
	}()

	br := bufio.NewReaderSize(nc, receiveBufferSize)
	from, err := t.acceptHandshake(nc, br)
	if err != nil {
		return
	}
	ic.from = from
	ic.bw = bufio.NewWriterSize(deadlineWriter{nc, t.opts.WriteTimeout}, responseBufferSize)
	t.log.Debug("transport accepted peer", "from_node", from, "remote", remote)

	fr := newFrameReader(br, t.opts.MaxFrameBytes)
	for {
		f, err := fr.next()
		if err != nil {
			t.logReadError(err, "from_node", from, "remote", remote)
			return
		}
		if t.blocked.Load() {
			return // cut off: what arrives is lost, as on a partitioned network
		}
		switch f.typ {
		case frameMessage:
			// Inline, so that one connection's messages reach the
			// handler in the order they were sent.
			t.opts.Handler.HandleMessage(from, f.kind, f.payload)
		case frameRequest:
			select {
			case ic.sem <- struct{}{}:
			case <-ic.ctx.Done():
				return
			}
			// The handler outlives this frame; give it its own copy.
			payload := append([]byte(nil), f.payload...)
			kind, corr := f.kind, f.corr
			if !t.spawn(func() { t.handleRequest(ic, kind, corr, payload) }) {
				return
			}
		default:
			t.log.Warn("transport: unexpected frame on inbound connection; closing it",
				"type", f.typ, "from_node", from, "remote", remote)
			return
		}
		fr.release()
	}
}

// logReadError logs why a connection's reader stopped, quietly for the
// ordinary endings (the peer or we closed it).
func (t *TCP) logReadError(err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	switch {
	case errors.Is(err, errFrameTooLarge), errors.Is(err, errMalformedFrame):
		t.log.Warn("transport: bad frame; closing connection", attrs...)
	case t.closed.Load(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		t.log.Debug("transport connection closed", attrs...)
	default:
		t.log.Info("transport connection failed", attrs...)
	}
}

// acceptHandshake reads a dialer's hello and answers it, within
// DialTimeout. It returns the dialer's node id.
func (t *TCP) acceptHandshake(nc net.Conn, br *bufio.Reader) (int32, error) {
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(time.Now().Add(t.opts.DialTimeout))
	h, err := readHello(br)
	if err != nil {
		t.log.Info("transport: refused connection", "remote", remote, "err", err)
		return 0, err
	}
	status := ackOK
	switch {
	case h.version != handshakeVersion:
		status = ackBadVersion
		t.log.Warn("transport: refused connection with unsupported protocol version",
			"remote", remote, "from_node", h.nodeID, "version", h.version, "supported", handshakeVersion)
	case h.clusterID != t.opts.ClusterID:
		status = ackWrongCluster
		t.log.Warn("transport: refused connection from another cluster (wrong cluster id; check the peer's configuration)",
			"remote", remote, "from_node", h.nodeID, "their_cluster_id", h.clusterID, "cluster_id", t.opts.ClusterID)
	}
	var buf [ackSize]byte
	if _, err := nc.Write(appendAck(buf[:0], status, t.opts.NodeID)); err != nil {
		return 0, fmt.Errorf("%w: answering: %w", errHandshake, err)
	}
	if status != ackOK {
		return 0, fmt.Errorf("%w: %v", errHandshake, status)
	}
	nc.SetDeadline(time.Time{})
	return h.nodeID, nil
}

func (t *TCP) handleRequest(ic *inConn, kind Kind, corr uint64, payload []byte) {
	defer func() { <-ic.sem }()
	resp, err := t.opts.Handler.HandleRequest(ic.ctx, ic.from, kind, payload)
	if err == nil {
		if limit := maxPayload(frameResponse, t.opts.MaxFrameBytes); len(resp) > limit {
			err = fmt.Errorf("transport: response of %d bytes exceeds the frame limit %d", len(resp), limit)
			t.log.Warn("transport: response too large", "from_node", ic.from, "kind", kind, "err", err)
		}
	}
	if err != nil {
		text := err.Error()
		if len(text) > maxErrorText {
			text = text[:maxErrorText]
		}
		ic.respond(frameError, kind, corr, []byte(text))
		return
	}
	ic.respond(frameResponse, kind, corr, resp)
}

// respond writes one response frame. A write error closes the connection;
// the peer then fails its pending requests itself.
func (ic *inConn) respond(typ frameType, kind Kind, corr uint64, payload []byte) {
	ic.writers.Add(1)
	ic.wmu.Lock()
	defer ic.wmu.Unlock()
	last := ic.writers.Add(-1) == 0
	if ic.werr != nil {
		return
	}
	n := putHeader(&ic.hdr, typ, kind, corr, len(payload))
	ic.bw.Write(ic.hdr[:n])
	ic.bw.Write(payload)
	// bufio.Writer errors are sticky, so Flush reports any write error.
	// Without a flush a later responder, already counted, will flush.
	if last {
		if err := ic.bw.Flush(); err != nil {
			ic.werr = err
			ic.close()
		}
	}
}

// deadlineWriter gives every write to the connection a deadline, so a
// peer that stops reading cannot hold a writer forever. bufio calls Write
// only when its buffer fills or on Flush, so this costs little.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.nc.Write(b)
}
