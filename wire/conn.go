package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// readBufferSize is the per-connection read buffer: small requests
	// pipelined back to back are read with one syscall; larger frames
	// bypass it.
	readBufferSize = 16 << 10
	// flushThreshold is how much encoded response data the writer
	// gathers before writing even though more replies are queued.
	flushThreshold = 64 << 10
	// maxRetainedWriteBuffer bounds the encode buffer a connection keeps
	// between responses; one huge response does not pin its buffer.
	maxRetainedWriteBuffer = 1 << 20
	// maxAwaitChain bounds awaits returning awaits, which would be a
	// handler bug.
	maxAwaitChain = 8
	// lingerTimeout and lingerMaxBytes bound how long and how much a
	// gracefully closing connection reads and discards after its last
	// reply, so that closing with unread input (which makes the kernel
	// reset the connection) cannot destroy replies still in flight.
	lingerTimeout  = 500 * time.Millisecond
	lingerMaxBytes = 1 << 20
)

// pending is one request's slot in a connection's reply queue.
type pending struct {
	key     int16
	version int16 // the version to encode the reply at
	corr    int32
	r       reply
	// reserved is the frame size taken from the server's queued-bytes
	// budget; the writer gives it back once the reply is settled.
	reserved int32
	// recycle is the frame to return to its pool once the reply is
	// settled, unless req.keepFrame says it is still in use.
	recycle []byte
	req     *request
}

// conn is one client connection. The reader goroutine owns the read side
// and clientID; the writer goroutine owns wbuf and dead (so the writer's
// logs do not name the client id). They share only the queue, whose order
// is the request order.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	ctx    context.Context
	cancel context.CancelFunc

	// queue carries replies from reader to writer. Its capacity is
	// Limits.MaxInflightPerConn: when it is full the reader blocks, which
	// stops reading from the socket (backpressure). The reader closes it
	// when it stops; the writer exits once it has drained it.
	queue chan pending

	// Reader state.
	br       *bufio.Reader
	maxFrame int32
	clientID string // the last client id seen, reused while it repeats
	// arrivalMs, when set, is the arrival time stamped on requests instead
	// of the server's clock: an in-process call (inproc.go) brings the
	// caller's time.
	arrivalMs func() int64

	// Writer state.
	wbuf []byte
	// dead is set once the connection is being torn down: replies are
	// still settled (awaits run, fetches released) but not written.
	dead bool
}

func newConn(s *Server, nc net.Conn) *conn {
	l := s.limits()
	c := &conn{
		s:        s,
		nc:       nc,
		remote:   nc.RemoteAddr().String(),
		queue:    make(chan pending, l.MaxInflightPerConn),
		br:       bufio.NewReaderSize(nc, readBufferSize),
		maxFrame: l.SocketRequestMaxBytes,
	}
	c.ctx, c.cancel = context.WithCancel(s.baseCtx)
	return c
}

func (c *conn) start() {
	go c.readLoop()
	go c.writeLoop()
}

// stopReading makes the reader stop before its next request: the server
// is stopping (checked by the reader before every frame), and the past
// deadline interrupts a read in progress.
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}

// readLoop reads frames and runs their handlers in order until the client
// goes away, sends something the server will not accept, or the server
// stops.
func (c *conn) readLoop() {
	defer close(c.queue)
	defer func() {
		if v := recover(); v != nil {
			c.s.stats.panics.Add(1)
			c.s.log.Error("panic while serving request; closing connection",
				"remote", c.remote, "client_id", c.clientID, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	var hdr [4]byte
	var held int32 // budget reserved for the frame being read
	reserve := func(n int32) error {
		if err := c.s.budget.Acquire(c.ctx, int64(n)); err != nil {
			return err
		}
		held = n
		return nil
	}
	for !c.s.stopping.Load() {
		held = 0
		size, frame, err := readFrame(c.br, &hdr, c.maxFrame, reserve)
		if err != nil {
			c.s.budget.Release(int64(held))
			c.readFailed(size, err)
			return
		}
		c.s.stats.bytesIn.Add(uint64(4 + len(frame)))
		p, ok := c.handleFrame(frame)
		if !ok {
			c.s.budget.Release(int64(size))
			return
		}
		p.reserved = size
		if p.key == produceKey && p.req != nil {
			p.recycle = frame
		}
		c.queue <- p
		if p.r.closeConn {
			return
		}
	}
}

func (c *conn) readFailed(size int32, err error) {
	switch {
	case errors.Is(err, errFrameSize):
		c.s.stats.protocolErrors.Add(1)
		c.s.log.Debug("closing connection: request size out of bounds",
			"remote", c.remote, "client_id", c.clientID, "size", size, "max", c.maxFrame)
	case c.s.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded):
		c.s.log.Debug("stopped reading: server shutting down", "remote", c.remote)
	case errors.Is(err, io.EOF):
		c.s.log.Debug("client closed connection", "remote", c.remote, "client_id", c.clientID)
		// Nobody will read answers any more: let waiting fetches give up
		// now rather than at their MaxWait.
		c.cancel()
	default:
		c.s.log.Debug("read failed; closing connection", "remote", c.remote, "client_id", c.clientID, "err", err)
	}
}

// handleFrame decodes one request frame and runs its handler. ok is false
// when the connection must be closed without answering: Kafka closes the
// connection on anything it cannot parse or does not support (except
// ApiVersions at too high a version, see KIP-511). It must not panic on any
// input; FuzzServeRequest checks that.
//
// Server.Call (inproc.go) runs it on a conn without a socket: it may use
// only c.s, c.remote, c.ctx, c.clientID and c.arrivalMs.
func (c *conn) handleFrame(frame []byte) (p pending, ok bool) {
	s := c.s
	if len(frame) < minRequestFrame {
		c.protocolError("request shorter than its header", p, nil)
		return p, false
	}
	p.key = int16(binary.BigEndian.Uint16(frame))
	p.version = int16(binary.BigEndian.Uint16(frame[2:]))
	p.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[minRequestFrame:]

	// Header v0 (no client id) is used only by ControlledShutdown v0,
	// which is never advertised; every other request has a client id.
	if p.key != 7 || p.version != 0 {
		id, r, ok := readNullableString(rest)
		if !ok {
			c.protocolError("truncated client id in request header", p, nil)
			return p, false
		}
		if string(id) != c.clientID { // compared without allocating
			c.clientID = string(id)
		}
		rest = r
	}

	a, handled := s.lookup(p.key)
	if !handled {
		c.unsupported("unsupported API key", p)
		return p, false
	}
	if p.version < a.minVersion || p.version > a.maxVersion {
		if p.key == apiVersionsKey && p.version > a.maxVersion {
			// KIP-511: answer in the v0 format, which every client can
			// read, with the versions to retry with.
			s.stats.requests[p.key].Add(1)
			p.version = 0
			p.r = respond(s.apiVersionsUnsupported())
			return p, true
		}
		c.unsupported("unsupported API version", p)
		return p, false
	}

	kreq := kmsg.RequestForKey(p.key)
	if kreq == nil { // a handler registered for a key kmsg does not know
		c.unsupported("API key unknown to the decoder", p)
		return p, false
	}
	kreq.SetVersion(p.version)
	if kreq.IsFlexible() {
		r, ok := skipTaggedFields(rest)
		if !ok {
			c.protocolError("malformed tagged fields in request header", p, nil)
			return p, false
		}
		rest = r
		// See tagguard.go: kmsg must not see a tag count it would spin on.
		st, err, first := requestGuard(p.key, p.version)
		switch {
		case err != nil:
			if first {
				s.log.Error("decoding without the tag-count guard", "key", p.key, "version", p.version, "err", err)
			}
		case !guardBody(st, rest):
			c.protocolError("tagged-field count larger than the request", p, nil)
			return p, false
		}
	}
	if err := kreq.ReadFrom(rest); err != nil {
		c.protocolError("undecodable request body", p, err)
		return p, false
	}
	s.stats.requests[p.key].Add(1)
	req := &request{
		key:      p.key,
		version:  p.version,
		corr:     p.corr,
		clientID: c.clientID,
		kreq:     kreq,
		nowMs:    c.stampMs(),
		remote:   c.remote,
		ctx:      c.ctx,
	}
	p.r = a.handle(s, req)
	p.req = req
	return p, true
}

// stampMs is the arrival time of a request being decoded now.
func (c *conn) stampMs() int64 {
	if c.arrivalMs != nil {
		return c.arrivalMs()
	}
	return c.s.now().UnixMilli()
}

// finished releases what a settled reply held: its share of the
// queued-bytes budget, and its frame when nothing still reads it.
func (c *conn) finished(p pending) {
	c.s.budget.Release(int64(p.reserved))
	if p.recycle != nil && !p.req.keepFrame {
		putFrame(p.recycle)
	}
}

func (c *conn) protocolError(why string, p pending, err error) {
	c.s.stats.protocolErrors.Add(1)
	c.s.log.Debug("closing connection: "+why, "remote", c.remote, "client_id", c.clientID,
		"key", p.key, "version", p.version, "correlation_id", p.corr, "err", err)
}

// unsupported logs at info: a client asking for an API or version we do
// not advertise is a compatibility problem an operator should see.
func (c *conn) unsupported(why string, p pending) {
	c.s.stats.protocolErrors.Add(1)
	c.s.log.Info("closing connection: "+why, "remote", c.remote, "client_id", c.clientID,
		"key", p.key, "api", kmsg.NameForKey(p.key), "version", p.version)
}

// writeLoop finishes and writes replies in request order until the reader
// has stopped and the queue is drained, then closes the connection.
func (c *conn) writeLoop() {
	defer c.s.removeConn(c)
	defer func() {
		if v := recover(); v != nil {
			c.s.stats.panics.Add(1)
			c.s.log.Error("panic while writing reply; closing connection",
				"remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			c.kill()
			for p := range c.queue {
				c.discard(p.r)
				c.finished(p)
			}
		}
		c.close()
	}()
	for p := range c.queue {
		c.deliver(p)
		c.finished(p)
	}
	c.flush()
}

// deliver settles one reply and encodes or writes it.
func (c *conn) deliver(p pending) {
	if c.dead {
		c.discard(p.r)
		return
	}
	r := p.r
	if r.await != nil {
		// Whatever is encoded goes out before we wait, so a slow reply
		// does not hold back the ones before it.
		if !c.flush() {
			c.discard(r)
			return
		}
		r = c.settle(r)
	}
	switch {
	case r.fetch != nil:
		if !c.flush() {
			r.fetch.release()
			return
		}
		n, err := r.fetch.writeTo(c.nc, p.corr, p.version)
		r.fetch.release()
		c.s.stats.bytesOut.Add(uint64(max(n, 0)))
		if err != nil {
			c.writeFailed(err)
			return
		}
	case r.resp != nil:
		r.resp.SetVersion(p.version)
		c.wbuf = appendResponse(c.wbuf, p.corr, r.resp)
	}
	if r.closeConn && !c.dead {
		c.flush()
		c.s.log.Debug("closing connection at handler's request", "remote", c.remote, "key", p.key)
		c.kill()
		return
	}
	// Flush when the reader has nothing more for us right now (we would
	// block with replies unsent) or when enough has gathered. This holds
	// after an empty reply too: it may follow encoded ones.
	if len(c.wbuf) >= flushThreshold || len(c.queue) == 0 {
		c.flush()
	}
}

// settle runs a reply's awaits until it is final.
func (c *conn) settle(r reply) reply {
	for i := 0; r.await != nil; i++ {
		if i == maxAwaitChain {
			c.s.log.Error("await chain too long; closing connection", "remote", c.remote)
			return reply{closeConn: true}
		}
		r = r.await()
	}
	return r
}

// discard settles a reply that will not be written, so that whatever it
// holds is released. A panic here is logged and swallowed: the
// connection is already going away.
func (c *conn) discard(r reply) {
	defer func() {
		if v := recover(); v != nil {
			c.s.stats.panics.Add(1)
			c.s.log.Error("panic while discarding reply", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	r = c.settle(r)
	if r.fetch != nil {
		r.fetch.release()
	}
}

// flush writes the encoded replies. It reports whether the connection is
// still writable.
func (c *conn) flush() bool {
	if c.dead {
		return false
	}
	if len(c.wbuf) == 0 {
		return true
	}
	n, err := c.nc.Write(c.wbuf)
	c.s.stats.bytesOut.Add(uint64(n))
	if cap(c.wbuf) > maxRetainedWriteBuffer {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
	if err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

func (c *conn) writeFailed(err error) {
	c.s.stats.writeErrors.Add(1)
	c.s.log.Debug("write failed; closing connection", "remote", c.remote, "err", err)
	c.kill()
}

// kill tears the connection down at once: requests still being served
// see their context done, the reader's next read fails, and later replies
// are only settled.
func (c *conn) kill() {
	c.dead = true
	c.cancel()
	c.nc.Close()
}

// close ends a connection whose queue is drained. After a graceful end
// it half-closes and briefly drains input first; see lingerTimeout.
func (c *conn) close() {
	defer c.cancel()
	if c.dead {
		c.nc.Close()
		return
	}
	c.dead = true
	if hc, ok := c.nc.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, io.LimitReader(c.nc, lingerMaxBytes))
	}
	c.nc.Close()
}
