package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogger discards logs unless TROUPE_WIRE_TESTLOG is set, which
// prints them (at debug) to stderr.
func testLogger() *slog.Logger {
	if os.Getenv("TROUPE_WIRE_TESTLOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testEnv is a server on 127.0.0.1 over a fake backend whose broker
// record points at the server, so real clients can use it.
type testEnv struct {
	t        *testing.T
	fb       *fakeBackend
	s        *Server
	addr     string
	serveErr chan error
}

func newTestEnv(t *testing.T, configure ...func(*Server)) *testEnv {
	t.Helper()
	fb := newFakeBackend()
	return newTestEnvWith(t, fb, Options{}, configure...)
}

func newTestEnvWith(t *testing.T, fb *fakeBackend, opts Options, configure ...func(*Server)) *testEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	fb.registerBroker(host, int32(port))
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s := NewServer(fb, opts)
	for _, f := range configure {
		f(s)
	}
	env := &testEnv{t: t, fb: fb, s: s, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { env.serveErr <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return env
}

// rawClient speaks the protocol by hand over one connection.
type rawClient struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func (e *testEnv) dial() *rawClient {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	return &rawClient{t: e.t, c: c}
}

// requestFrame encodes a request frame body (no size prefix): the header,
// with headerTags as the raw tagged-field section of a flexible header
// (nil for none), then the body.
func requestFrame(kreq kmsg.Request, corr int32, clientID *string, headerTags []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(kreq.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(kreq.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = kbin.AppendNullableString(b, clientID)
	if kreq.IsFlexible() {
		if headerTags == nil {
			headerTags = []byte{0}
		}
		b = append(b, headerTags...)
	}
	return kreq.AppendTo(b)
}

func sizePrefixed(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

var testClientID = "wire-test"

func (r *rawClient) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send writes kreq and returns its correlation id.
func (r *rawClient) send(kreq kmsg.Request) int32 {
	r.t.Helper()
	corr := r.corr
	r.corr++
	r.write(sizePrefixed(requestFrame(kreq, corr, &testClientID, nil)))
	return corr
}

// readFrame reads one response frame.
func (r *rawClient) readFrame() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64<<20 {
		return nil, errors.New("response frame too large")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r.c, b)
	return b, err
}

// recv reads the response to kreq, checking its correlation id.
func (r *rawClient) recv(kreq kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	b, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response to %s v%d: %v", kmsg.NameForKey(kreq.Key()), kreq.GetVersion(), err)
	}
	got, body := int32(binary.BigEndian.Uint32(b)), b[4:]
	if got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := kreq.ResponseKind()
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			r.t.Fatalf("flexible response header: want empty tags, got % x", body[:min(len(body), 4)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(kreq.Key()), kreq.GetVersion(), err)
	}
	return resp
}

func (r *rawClient) roundTrip(kreq kmsg.Request) kmsg.Response {
	r.t.Helper()
	return r.recv(kreq, r.send(kreq))
}

// expectClosed asserts the server closes the connection (EOF or reset)
// without sending anything more.
func (r *rawClient) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [256]byte
	n, err := r.c.Read(buf[:])
	if n > 0 {
		r.t.Fatalf("expected the connection to close, got %d bytes: % x", n, buf[:n])
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		r.t.Fatal("expected the connection to close; it stayed open")
	}
	if err == nil {
		r.t.Fatal("expected the connection to close")
	}
}

// expectClosedAfterAny expects the connection to close within a few
// seconds, whatever it sends first (a forced shutdown may let a reply
// that was already being written go out before the close).
func (r *rawClient) expectClosedAfterAny() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, r.c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			r.t.Fatal("expected the connection to close; it stayed open")
		}
	}
}

// eventually polls cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptrTo[T any](v T) *T { return &v }
