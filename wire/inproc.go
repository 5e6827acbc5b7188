package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// In-process calls: the deterministic simulator's way into the server.
//
// The simulator (package sim) runs a whole cluster on one thread with
// simulated time, and its clients must reach the very handlers a TCP
// client reaches. Call therefore encodes the request into a frame and
// hands it to conn.handleFrame on a connection without a socket: the
// header is parsed, the API and version are checked, the body is decoded
// and the handler runs exactly as for a frame read from the network. The
// handler only enqueues work to the Backend's partition and group actors
// (admin handlers call the Backend synchronously) and returns; Finish
// later runs the reply's await — which, unlike on a connection, must not
// wait — and renders the response to bytes and decodes it the way a
// client would, so that the caller sees only what the wire carries.
//
// Finish must not wait, so the caller must know that every answer the
// await reads has arrived: the simulator's Backend counts the messages a
// handler sent to its partitions and groups and the replies it delivered,
// and calls Finish once they match. The awaits take answers that are
// already there before they look at a timer or at the context (see
// collectTagged, collectProduce, awaitGroup, fetchOp.collect), so with
// every answer in they return at once, without depending on the clock or
// on select's random choice.

var (
	// ErrConnectionClosed is wrapped by Call's and Finish's errors when a
	// connection would have been closed instead of (or right after)
	// answering: an unsupported API or version, an undecodable or
	// oversized request, a handler asking for it (an acks=0 produce that
	// failed, a fetch from a blocked replica), or a panic.
	ErrConnectionClosed = errors.New("connection closed by the server")
	// ErrUnsupported is wrapped, with ErrConnectionClosed, when the API
	// key or version is not served. (ApiVersions above the highest
	// version is answered instead, in v0, as KIP-511 asks.)
	ErrUnsupported = errors.New("unsupported API key or version")
	// ErrHandlerPanicked is wrapped, with ErrConnectionClosed, when the
	// handler or its await panicked; a connection would log it and close.
	ErrHandlerPanicked = errors.New("request handler panicked")
)

// inprocCorrelationID is the correlation id of every in-process request;
// the rendered response must carry it back.
const inprocCorrelationID = 1

// CallInfo is what a connection knows about a request besides its body.
// The API version is the request's own (kreq.GetVersion()).
type CallInfo struct {
	// ClientID is the request header's client id.
	ClientID string
	// Remote is the client's address ("host:port"), as a connection
	// reports its peer; group APIs show its host.
	Remote string
	// NowMs is the request's arrival time, stamped on it instead of the
	// server's clock (produce and fetch deadlines, group timestamps,
	// fetch session use). The server's Options.Clock should tell the
	// same time: it stamps the fetch sessions it opens.
	NowMs int64
}

// Call is one in-process request: its handler has run, its reply is
// pending until Finish. A Call is used by one goroutine at a time.
type Call struct {
	c        *conn // the socketless connection the request was served on
	name     string
	p        pending
	err      error // the request was refused: Finish returns it
	finished bool
}

// Call handles one request as if it had arrived on a connection of its
// own: kreq is encoded at its version with a request header carrying
// info.ClientID, and the frame goes through the same header parsing,
// version checks and decoding as one read from a socket; then the
// request's handler runs, synchronously, before Call returns. The
// handled request aliases a private copy of kreq's bytes, so the caller
// may reuse kreq (its Records, say) at once.
//
// Call never waits for answers from partitions or groups; it only sends
// them work. An administrative handler (CreateTopics, the auto-creation
// of Metadata, FindCoordinator, InitProducerId, ElectLeaders,
// AlterPartitionReassignments, …) calls the Backend synchronously within
// Call, with a context derived from ctx and bounded by the request's
// timeout on the real clock.
//
// ctx plays the connection's context. For a deterministic run it must
// not be done before Finish: a done context makes awaits that still lack
// answers give up, which depends on timing.
//
// Every Call whose answers arrive must be finished, even if its result
// is not wanted: Finish releases what the reply holds (a fetch's log
// regions). A Call whose answers will never come (their node is gone)
// may be dropped.
//
// Calls are independent, like requests on separate connections: their
// handlers run in the order Call is called, and their Finish may come in
// any order.
func (s *Server) Call(ctx context.Context, info CallInfo, kreq kmsg.Request) *Call {
	if ctx == nil {
		ctx = context.Background()
	}
	key, version := kreq.Key(), kreq.GetVersion()
	now := info.NowMs
	call := &Call{
		c:    &conn{s: s, remote: info.Remote, ctx: ctx, arrivalMs: func() int64 { return now }},
		name: fmt.Sprintf("%s v%d", kmsg.NameForKey(key), version),
		p:    pending{key: key, version: version},
	}
	if s.stopping.Load() {
		// A stopping server reads no further requests.
		call.err = fmt.Errorf("wire: %s: %w", call.name, ErrServerClosed)
		return call
	}
	frame := appendRequestFrame(nil, kreq, info.ClientID)
	if limit := s.limits().SocketRequestMaxBytes; int64(len(frame)) > int64(limit) {
		s.stats.protocolErrors.Add(1)
		call.err = fmt.Errorf("wire: %s: request of %d bytes exceeds socket.request.max.bytes (%d): %w",
			call.name, len(frame), limit, ErrConnectionClosed)
		return call
	}
	s.stats.bytesIn.Add(uint64(4 + len(frame)))
	call.serve(frame)
	return call
}

// serve runs handleFrame on frame, turning a refusal or a panic into
// call.err as a connection turns them into a close.
func (call *Call) serve(frame []byte) {
	defer func() {
		if v := recover(); v != nil {
			call.err = call.panicked(v)
		}
	}()
	p, ok := call.c.handleFrame(frame)
	if !ok {
		call.err = call.refused()
		return
	}
	call.p = p
}

// refused explains why handleFrame closed the connection. It logged the
// details already.
func (call *Call) refused() error {
	s := call.c.s
	key, version := call.p.key, call.p.version
	if a, ok := s.lookup(key); !ok || version < a.minVersion || version > a.maxVersion || kmsg.RequestForKey(key) == nil {
		return fmt.Errorf("wire: %s: %w: %w", call.name, ErrUnsupported, ErrConnectionClosed)
	}
	return fmt.Errorf("wire: %s: request does not decode: %w", call.name, ErrConnectionClosed)
}

// panicked records a recovered panic as a connection does, and returns
// the error reporting it.
func (call *Call) panicked(v any) error {
	s := call.c.s
	s.stats.panics.Add(1)
	s.log.Error("panic while serving in-process request", "remote", call.c.remote, "client_id", call.c.clientID,
		"api", call.name, "panic", v, "stack", string(debug.Stack()))
	return fmt.Errorf("wire: %s: %w (%v): %w", call.name, ErrHandlerPanicked, v, ErrConnectionClosed)
}

// Finish settles the reply and returns the response as a client would
// decode it: the response is encoded at the request's version (for a
// fetch by the zero-copy writer, whose log regions it then releases) and
// decoded again, so fields the version lacks read as their defaults. An
// ApiVersions request above the highest version gets the v0 answer of
// KIP-511, like on a connection.
//
// The caller must have let every answer the reply waits for arrive (see
// the file comment); Finish then does not wait. A Fetch with
// MaxWaitMillis > 0 that finds fewer than MinBytes would park on the
// real clock: send MaxWaitMillis 0 (or MinBytes 0) and poll instead.
//
// The response is nil when the client expects none (a produce with
// acks=0). The error wraps ErrConnectionClosed when a connection would
// be closed; the response, if any, was written before the close. Finish
// may be called once; later calls fail.
func (call *Call) Finish() (kmsg.Response, error) {
	if call.finished {
		return nil, fmt.Errorf("wire: %s: Finish called twice", call.name)
	}
	call.finished = true
	if call.err != nil {
		return nil, call.err
	}
	return call.settle()
}

func (call *Call) settle() (resp kmsg.Response, err error) {
	r := call.p.r
	call.p.r = reply{} // nothing holds the reply's resources after Finish
	defer func() {
		if v := recover(); v != nil {
			if r.fetch != nil {
				r.fetch.release()
			}
			resp, err = nil, call.panicked(v)
		}
	}()
	r = call.c.settle(r)
	switch {
	case r.fetch != nil:
		resp, err = call.renderFetch(r.fetch)
	case r.resp != nil:
		resp, err = call.render(r.resp)
	}
	if err != nil {
		return nil, err
	}
	if r.closeConn {
		return resp, fmt.Errorf("wire: %s: %w at the handler's request", call.name, ErrConnectionClosed)
	}
	return resp, nil
}

// render encodes resp as a connection's writer does and decodes it.
func (call *Call) render(resp kmsg.Response) (kmsg.Response, error) {
	resp.SetVersion(call.p.version)
	frame := appendResponse(nil, inprocCorrelationID, resp)
	call.c.s.stats.bytesOut.Add(uint64(len(frame)))
	return call.decode(frame)
}

// renderFetch writes f with the zero-copy writer into memory, releases
// it, and decodes the frame.
func (call *Call) renderFetch(f *fetchReply) (kmsg.Response, error) {
	defer f.release()
	var buf bytes.Buffer
	n, err := f.writeTo(&buf, inprocCorrelationID, call.p.version)
	call.c.s.stats.bytesOut.Add(uint64(max(n, 0)))
	if err != nil {
		return nil, fmt.Errorf("wire: %s: write response: %w: %w", call.name, err, ErrConnectionClosed)
	}
	return call.decode(buf.Bytes())
}

// decode reads a response frame (size prefix included) as a client
// does: the size must match, the correlation id come back, a flexible
// header (never ApiVersions') carry empty tags.
func (call *Call) decode(frame []byte) (kmsg.Response, error) {
	if len(frame) < 8 || int64(binary.BigEndian.Uint32(frame)) != int64(len(frame)-4) {
		return nil, fmt.Errorf("wire: %s: response frame of %d bytes has a bad size prefix", call.name, len(frame))
	}
	if corr := int32(binary.BigEndian.Uint32(frame[4:])); corr != inprocCorrelationID {
		return nil, fmt.Errorf("wire: %s: response carries correlation id %d, want %d", call.name, corr, inprocCorrelationID)
	}
	body := frame[8:]
	resp := kmsg.ResponseForKey(call.p.key)
	if resp == nil {
		return nil, fmt.Errorf("wire: %s: no response type for key %d", call.name, call.p.key)
	}
	resp.SetVersion(call.p.version)
	if resp.IsFlexible() && call.p.key != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			return nil, fmt.Errorf("wire: %s: flexible response header without empty tags", call.name)
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("wire: %s: decode response: %w", call.name, err)
	}
	return resp, nil
}

// appendRequestFrame appends kreq as a request frame without its size
// prefix, as readFrame returns it: the v1 header (key, version,
// correlation id, client id), empty header tags in flexible versions,
// then the body.
func appendRequestFrame(dst []byte, kreq kmsg.Request, clientID string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(kreq.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(kreq.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, inprocCorrelationID)
	dst = kbin.AppendNullableString(dst, &clientID)
	if kreq.IsFlexible() {
		dst = append(dst, 0) // no header tags
	}
	return kreq.AppendTo(dst)
}
