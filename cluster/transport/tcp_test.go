package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewTCPValidatesOptions(t *testing.T) {
	h := newRecorder(1)
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no listener", func(o *Options) { o.Listener = nil }, "no listener"},
		{"no handler", func(o *Options) { o.Handler = nil }, "no handler"},
		{"empty cluster id", func(o *Options) { o.ClusterID = "" }, "empty cluster id"},
		{"long cluster id", func(o *Options) { o.ClusterID = strings.Repeat("x", 256) }, "cluster id is 256 bytes"},
		{"tiny frames", func(o *Options) { o.MaxFrameBytes = 10 }, "max frame bytes"},
		{"huge frames", func(o *Options) { o.MaxFrameBytes = 2 << 30 }, "max frame bytes"},
		{"negative queue", func(o *Options) { o.SendQueue = -1 }, "send queue"},
		{"negative timeout", func(o *Options) { o.DialTimeout = -time.Second }, "negative duration"},
		{"negative concurrency", func(o *Options) { o.MaxConcurrentRequests = -1 }, "max concurrent requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			defer ln.Close()
			opts := Options{NodeID: 1, ClusterID: testCluster, Listener: ln, Handler: h}
			tc.mod(&opts)
			tr, err := NewTCP(opts)
			if err == nil {
				tr.Close()
				t.Fatal("NewTCP succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// threeNodes starts nodes 1, 2 and 3, each knowing the others.
func threeNodes(t *testing.T, mod func(*Options)) (map[int32]*TCP, map[int32]*recorder) {
	nodes := make(map[int32]*TCP)
	handlers := make(map[int32]*recorder)
	for id := int32(1); id <= 3; id++ {
		handlers[id] = newRecorder(id)
		nodes[id] = newTCPNode(t, id, handlers[id], mod)
	}
	connectAll(nodes)
	return nodes, handlers
}

func TestTCPRequestRoundTrip(t *testing.T) {
	nodes, _ := threeNodes(t, nil)
	tests := []struct {
		name     string
		payload  string
		want     string
		wantErr  error
		wantText string
	}{
		{name: "echo", payload: "hello", want: "hello"},
		{name: "empty", payload: "", want: ""},
		{name: "large", payload: strings.Repeat("x", 200<<10), want: strings.Repeat("x", 200<<10)},
		{name: "handler error", payload: "fail:no such broker", wantErr: ErrRemote, wantText: "no such broker"},
	}
	ctx := withTimeout(t, 10*time.Second)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for from, a := range nodes {
				for to := range nodes {
					resp, err := a.Request(ctx, to, KindController, []byte(tc.payload))
					if tc.wantErr != nil {
						if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantText) {
							t.Fatalf("%d→%d: err %v, want %v with %q", from, to, err, tc.wantErr, tc.wantText)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%d→%d: %v", from, to, err)
					}
					if want := fmt.Sprintf("%d:%s", to, tc.want); string(resp) != want {
						t.Fatalf("%d→%d: got %.40q, want %.40q", from, to, resp, want)
					}
				}
			}
		})
	}
}

func TestTCPRequestErrors(t *testing.T) {
	h := newRecorder(2)
	b := newTCPNode(t, 2, h, func(o *Options) { o.MaxFrameBytes = 1024 })
	a := newTCPNode(t, 1, newRecorder(1), func(o *Options) { o.MaxFrameBytes = 1024 })
	a.SetPeer(2, b.Addr().String())
	ctx := withTimeout(t, 5*time.Second)

	if _, err := a.Request(ctx, 9, KindController, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown peer: %v", err)
	}
	if a.Send(9, KindRaft, nil) {
		t.Error("Send to an unknown peer succeeded")
	}
	if _, err := a.Request(ctx, 2, KindController, make([]byte, 1024)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize request: %v", err)
	}
	if a.Send(2, KindRaft, make([]byte, 1023)) {
		t.Error("oversize Send succeeded")
	}
	h.setOnRequest(func(context.Context, int32, Kind, []byte) ([]byte, error) { return make([]byte, 2000), nil })
	if _, err := a.Request(ctx, 2, KindController, nil); !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "exceeds the frame limit") {
		t.Errorf("oversize response: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Request(cancelled, 2, KindController, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	// The connection survives all of the above.
	h.setOnRequest(nil)
	if resp, err := a.Request(ctx, 2, KindController, []byte("ok")); err != nil || string(resp) != "2:ok" {
		t.Errorf("after errors: %q, %v", resp, err)
	}
}

func TestTCPConcurrentRequests(t *testing.T) {
	h := newRecorder(2)
	// Answer out of order: later requests overtake earlier ones.
	h.setOnRequest(func(_ context.Context, _ int32, _ Kind, p []byte) ([]byte, error) {
		if p[len(p)-1]%3 == 0 {
			time.Sleep(time.Millisecond)
		}
		return p, nil
	})
	b := newTCPNode(t, 2, h, func(o *Options) { o.MaxConcurrentRequests = 8 })
	a := newTCPNode(t, 1, newRecorder(1), nil)
	a.SetPeer(2, b.Addr().String())

	const workers, perWorker = 8, 200
	ctx := withTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				want := fmt.Sprintf("w%d-%d", w, i)
				resp, err := a.Request(ctx, 2, KindController, []byte(want))
				if err != nil {
					errs <- err
					return
				}
				if string(resp) != want {
					errs <- fmt.Errorf("got %q, want %q", resp, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTCPMessageOrderPerPeer(t *testing.T) {
	nodes, handlers := threeNodes(t, nil)
	const n = 5000
	var wg sync.WaitGroup
	for _, from := range []int32{1, 3} {
		wg.Go(func() {
			for i := range n {
				payload := fmt.Appendf(nil, "%d", i)
				// A full queue drops; wait for room so all arrive.
				for tries := 0; !nodes[from].Send(2, KindRaft, payload); tries++ {
					if tries > 10000 {
						t.Errorf("node %d: Send keeps failing", from)
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	msgs := handlers[2].waitMessages(t, 2*n, 10*time.Second)
	next := map[int32]int{1: 0, 3: 0}
	for _, m := range msgs {
		if m.kind != KindRaft {
			t.Fatalf("kind %d", m.kind)
		}
		if want := fmt.Sprint(next[m.from]); m.payload != want {
			t.Fatalf("from %d: got %s, want %s", m.from, m.payload, want)
		}
		next[m.from]++
	}
}

// rawHandshake dials addr and does the dialer's half of the handshake by
// hand, returning the connection and the acceptor's answer.
func rawHandshake(t *testing.T, addr, clusterID string, nodeID int32) (net.Conn, ackStatus) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(appendHello(nil, nodeID, clusterID)); err != nil {
		t.Fatal(err)
	}
	status, _, err := readAck(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, status
}

// waitClosedByPeer reads nc until the peer closes it.
func waitClosedByPeer(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("peer did not close the connection")
	}
}

func TestTCPRejectsBadInput(t *testing.T) {
	h := newRecorder(2)
	var logs logBuffer
	b := newTCPNode(t, 2, h, func(o *Options) {
		o.MaxFrameBytes = 1024
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	frame := func(length uint32, rest ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, length), rest...)
	}
	tests := []struct {
		name string
		send []byte
		log  string
	}{
		{"oversize frame", frame(1 << 30), "frame too large"},
		{"just over the limit", frame(1025), "frame too large"},
		{"short frame", frame(1, 1), "malformed frame"},
		{"unknown frame type", frame(2, 9, 1), "malformed frame"},
		{"request without correlation id", frame(4, byte(frameRequest), 1, 0, 0), "malformed frame"},
		{"response on inbound connection", frame(10, byte(frameResponse), 1, 0, 0, 0, 0, 0, 0, 0, 1), "unexpected frame"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := strings.Count(logs.String(), tc.log)
			nc, status := rawHandshake(t, b.Addr().String(), testCluster, 7)
			if status != ackOK {
				t.Fatalf("handshake: %v", status)
			}
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			waitClosedByPeer(t, nc)
			eventually(t, 2*time.Second, "log line", func() bool { return strings.Count(logs.String(), tc.log) > seen })
		})
	}
	if msgs := h.messages(); len(msgs) != 0 {
		t.Errorf("handler got %v", msgs)
	}

	t.Run("bad magic", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		waitClosedByPeer(t, nc)
	})
}

func TestFrameReader(t *testing.T) {
	enc := func(typ frameType, kind Kind, corr uint64, payload string) []byte {
		var hdr [maxHeaderSize]byte
		n := putHeader(&hdr, typ, kind, corr, len(payload))
		return append(hdr[:n:n], payload...)
	}
	tests := []struct {
		name    string
		in      []byte
		want    frame
		wantErr error
	}{
		{name: "message", in: enc(frameMessage, KindRaft, 0, "abc"), want: frame{typ: frameMessage, kind: KindRaft, payload: []byte("abc")}},
		{name: "empty message", in: enc(frameMessage, 7, 0, ""), want: frame{typ: frameMessage, kind: 7, payload: []byte{}}},
		{name: "request", in: enc(frameRequest, KindController, 1<<40+5, "q"), want: frame{typ: frameRequest, kind: KindController, corr: 1<<40 + 5, payload: []byte("q")}},
		{name: "error", in: enc(frameError, KindMetadataFetch, 3, "boom"), want: frame{typ: frameError, kind: KindMetadataFetch, corr: 3, payload: []byte("boom")}},
		{name: "at the limit", in: enc(frameMessage, 1, 0, strings.Repeat("x", 62)), want: frame{typ: frameMessage, kind: 1, payload: []byte(strings.Repeat("x", 62))}},
		{name: "over the limit", in: enc(frameMessage, 1, 0, strings.Repeat("x", 63)), wantErr: errFrameTooLarge},
		{name: "truncated payload", in: enc(frameMessage, 1, 0, "abc")[:8], wantErr: io.ErrUnexpectedEOF},
		{name: "truncated length", in: []byte{0, 0}, wantErr: io.ErrUnexpectedEOF},
		{name: "clean end", in: nil, wantErr: io.EOF},
		{name: "zero length", in: []byte{0, 0, 0, 0}, wantErr: errMalformedFrame},
		{name: "bad type", in: []byte{0, 0, 0, 2, 0, 1}, wantErr: errMalformedFrame},
		{name: "response too short", in: []byte{0, 0, 0, 3, 3, 1, 0}, wantErr: errMalformedFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := newFrameReader(bufio.NewReader(strings.NewReader(string(tc.in))), 64)
			got, err := fr.next()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.typ != tc.want.typ || got.kind != tc.want.kind || got.corr != tc.want.corr || string(got.payload) != string(tc.want.payload) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// endless repeats one chunk forever.
type endless []byte

func (e endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e)
	}
	return n, nil
}

func TestFrameReaderRefusesBeforeAllocating(t *testing.T) {
	fr := newFrameReader(bufio.NewReader(endless{0xff, 0xff, 0xff, 0xff}), DefaultMaxFrameBytes)
	var before, after runtimeMem
	before.read()
	for range 100 {
		if _, err := fr.next(); !errors.Is(err, errFrameTooLarge) {
			t.Fatalf("err %v", err)
		}
	}
	after.read()
	if cap(fr.buf) != 0 {
		t.Fatalf("read buffer grew to %d bytes", cap(fr.buf))
	}
	// 100 refusals of a 4 GiB prefix cost only their error values.
	if grew := after.total - before.total; grew > 1<<20 {
		t.Fatalf("allocated %d bytes refusing oversize frames", grew)
	}
}

func TestFrameReaderReleasesLargeBuffers(t *testing.T) {
	big := make([]byte, retainReadBuffer+1)
	var in []byte
	var hdr [maxHeaderSize]byte
	n := putHeader(&hdr, frameMessage, 1, 0, len(big))
	in = append(append(in, hdr[:n]...), big...)
	n = putHeader(&hdr, frameMessage, 1, 0, 3)
	in = append(append(in, hdr[:n]...), "abc"...)
	fr := newFrameReader(bufio.NewReader(strings.NewReader(string(in))), DefaultMaxFrameBytes)
	for range 2 {
		if _, err := fr.next(); err != nil {
			t.Fatal(err)
		}
		fr.release()
	}
	if cap(fr.buf) > retainReadBuffer {
		t.Fatalf("kept %d bytes", cap(fr.buf))
	}
	if cap(fr.buf) == 0 {
		t.Fatal("small buffer not kept")
	}
}

func TestTCPWrongClusterRejected(t *testing.T) {
	var logs logBuffer
	hb := newRecorder(2)
	b := newTCPNode(t, 2, hb, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	a := newTCPNode(t, 1, newRecorder(1), func(o *Options) { o.ClusterID = "another-cluster" })
	a.SetPeer(2, b.Addr().String())

	start := time.Now()
	_, err := a.Request(withTimeout(t, 5*time.Second), 2, KindController, []byte("vote for me"))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "wrong cluster id") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v", d)
	}
	if a.Send(2, KindRaft, []byte("m")) {
		t.Fatal("Send succeeded right after a refusal")
	}
	if !strings.Contains(logs.String(), "another-cluster") {
		t.Fatalf("refusal not logged with the wrong id:\n%s", logs.String())
	}
	if msgs := hb.messages(); len(msgs) != 0 {
		t.Fatalf("handler got %v", msgs)
	}

	t.Run("raw", func(t *testing.T) {
		nc, status := rawHandshake(t, b.Addr().String(), "another-cluster", 1)
		if status != ackWrongCluster {
			t.Fatalf("status %v", status)
		}
		waitClosedByPeer(t, nc)
	})
}

func TestTCPWrongNodeAtAddress(t *testing.T) {
	b := newTCPNode(t, 2, newRecorder(2), nil)
	a := newTCPNode(t, 1, newRecorder(1), nil)
	a.SetPeer(3, b.Addr().String()) // node 2 listens there, not 3
	_, err := a.Request(withTimeout(t, 5*time.Second), 3, KindController, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is node 2, not node 3") {
		t.Fatalf("err %v", err)
	}
}

func TestTCPPeerRestart(t *testing.T) {
	ha, hb := newRecorder(1), newRecorder(2)
	a := newTCPNode(t, 1, ha, nil)
	b := newTCPNode(t, 2, hb, nil)
	a.SetPeer(2, b.Addr().String())
	b.SetPeer(1, a.Addr().String())
	ctx := withTimeout(t, 10*time.Second)
	if _, err := a.Request(ctx, 2, KindController, []byte("before")); err != nil {
		t.Fatal(err)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "requests to the closed node to fail", func() bool {
		_, err := a.Request(ctx, 2, KindController, nil)
		return errors.Is(err, ErrUnreachable)
	})

	hb2 := newRecorder(2)
	b2 := newTCPNode(t, 2, hb2, nil)
	b2.SetPeer(1, a.Addr().String())
	a.SetPeer(2, b2.Addr().String())
	resp, err := a.Request(ctx, 2, KindController, []byte("after"))
	if err != nil || string(resp) != "2:after" {
		t.Fatalf("after restart: %q, %v", resp, err)
	}
	if !a.Send(2, KindRaft, []byte("a→b2")) || !b2.Send(1, KindRaft, []byte("b2→a")) {
		t.Fatal("Send failed after restart")
	}
	hb2.waitMessages(t, 1, 5*time.Second)
	ha.waitMessages(t, 1, 5*time.Second)
}

func TestTCPQueueFullDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	const queue = 16
	a := newTCPNode(t, 1, newRecorder(1), func(o *Options) {
		o.SendQueue = queue
		// The writer gets stuck dialing, so nothing leaves the queue.
		o.Dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, errors.New("test dialer: no")
		}
	})
	defer close(release)
	a.SetPeer(2, "127.0.0.1:1")

	start := time.Now()
	accepted := 0
	for range 10 * queue {
		if a.Send(2, KindRaft, []byte("x")) {
			accepted++
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Sends took %v", d)
	}
	// The queue holds queue messages; the writer may hold one more.
	if accepted < queue || accepted > queue+1 {
		t.Fatalf("accepted %d messages with a queue of %d", accepted, queue)
	}
}

func TestTCPRequestToDeadPeerFailsFast(t *testing.T) {
	a := newTCPNode(t, 1, newRecorder(1), func(o *Options) { o.MaxBackoff = time.Second })
	a.SetPeer(2, deadAddr(t))
	ctx := withTimeout(t, 30*time.Second)
	for i := range 3 { // the first dials, the later ones meet the backoff
		start := time.Now()
		_, err := a.Request(ctx, 2, KindController, nil)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("request %d: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("request %d took %v", i, d)
		}
	}
	if a.Send(2, KindRaft, nil) {
		t.Fatal("Send to a peer in backoff succeeded")
	}
}

func TestTCPBrokenConnectionFailsPendingRequests(t *testing.T) {
	tests := []struct {
		name    string
		closeA  bool // close the caller instead of the callee
		wantErr error
	}{
		{"caller closes", true, ErrClosed},
		{"callee closes", false, ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hb := newRecorder(2)
			entered := make(chan struct{}, 4)
			hb.setOnRequest(func(ctx context.Context, _ int32, _ Kind, _ []byte) ([]byte, error) {
				entered <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			})
			a := newTCPNode(t, 1, newRecorder(1), nil)
			b := newTCPNode(t, 2, hb, nil)
			a.SetPeer(2, b.Addr().String())

			const n = 3
			errs := make(chan error, n)
			for range n {
				go func() {
					_, err := a.Request(context.Background(), 2, KindController, nil)
					errs <- err
				}()
			}
			for range n {
				<-entered
			}
			start := time.Now()
			if tc.closeA {
				a.Close()
			} else {
				b.Close()
			}
			for range n {
				select {
				case err := <-errs:
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("err %v, want %v", err, tc.wantErr)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("pending request not failed")
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("pending requests failed after %v", d)
			}
			if _, err := a.Request(context.Background(), 2, KindController, nil); tc.closeA && !errors.Is(err, ErrClosed) {
				t.Fatalf("Request after Close: %v", err)
			}
		})
	}
}

func TestTCPRequestContextDeadline(t *testing.T) {
	hb := newRecorder(2)
	hb.setOnRequest(func(ctx context.Context, _ int32, _ Kind, p []byte) ([]byte, error) {
		if string(p) == "slow" {
			<-ctx.Done()
		}
		return p, nil
	})
	a := newTCPNode(t, 1, newRecorder(1), nil)
	b := newTCPNode(t, 2, hb, nil)
	a.SetPeer(2, b.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Request(ctx, 2, KindController, []byte("slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// A late answer to the abandoned request is ignored; the connection
	// keeps working.
	resp, err := a.Request(withTimeout(t, 5*time.Second), 2, KindController, []byte("fast"))
	if err != nil || string(resp) != "fast" {
		t.Fatalf("%q, %v", resp, err)
	}
}

// cutter is a Dialer that can cut traffic: while cut it refuses dials
// and it closes the connections it made.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
	dials atomic.Int32
}

func (c *cutter) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.dials.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cut by test")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.conns = append(c.conns, nc)
	}
	return nc, err
}

func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, nc := range c.conns {
			nc.Close()
		}
		c.conns = nil
	}
}

func TestTCPDialerCutsTraffic(t *testing.T) {
	var cut cutter
	hb := newRecorder(2)
	a := newTCPNode(t, 1, newRecorder(1), func(o *Options) { o.Dialer = cut.dial })
	b := newTCPNode(t, 2, hb, nil)
	a.SetPeer(2, b.Addr().String())
	ctx := withTimeout(t, 10*time.Second)
	if _, err := a.Request(ctx, 2, KindController, nil); err != nil {
		t.Fatal(err)
	}

	cut.setCut(true)
	eventually(t, 2*time.Second, "requests to fail while cut", func() bool {
		_, err := a.Request(ctx, 2, KindController, nil)
		return errors.Is(err, ErrUnreachable)
	})
	eventually(t, 2*time.Second, "Send to fail while cut", func() bool { return !a.Send(2, KindRaft, []byte("lost")) })
	// Retries back off instead of spinning.
	dials := cut.dials.Load()
	time.Sleep(100 * time.Millisecond)
	for range 100 {
		a.Send(2, KindRaft, []byte("lost"))
	}
	if more := cut.dials.Load() - dials; more > 3 {
		t.Fatalf("%d dials in 100 ms with a 50 ms backoff cap", more)
	}

	cut.setCut(false)
	eventually(t, 2*time.Second, "traffic to resume", func() bool {
		resp, err := a.Request(ctx, 2, KindController, []byte("back"))
		return err == nil && string(resp) == "2:back"
	})
	before := len(hb.messages())
	eventually(t, 2*time.Second, "messages to flow", func() bool {
		a.Send(2, KindRaft, []byte("healed"))
		return len(hb.messages()) > before
	})
}

func TestTCPRequestConcurrencyBound(t *testing.T) {
	const limit = 4
	var running, peak atomic.Int32
	release := make(chan struct{})
	hb := newRecorder(2)
	hb.setOnRequest(func(context.Context, int32, Kind, []byte) ([]byte, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil, nil
	})
	a := newTCPNode(t, 1, newRecorder(1), nil)
	b := newTCPNode(t, 2, hb, func(o *Options) { o.MaxConcurrentRequests = limit })
	a.SetPeer(2, b.Addr().String())

	const n = 3 * limit
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := a.Request(withTimeout(t, 10*time.Second), 2, KindController, nil); err != nil {
				t.Error(err)
			}
		})
	}
	eventually(t, 5*time.Second, "handlers to fill the bound", func() bool { return running.Load() == limit })
	time.Sleep(50 * time.Millisecond) // would the reader start more?
	if p := peak.Load(); p != limit {
		t.Fatalf("peak %d handlers, limit %d", p, limit)
	}
	close(release)
	wg.Wait()
}

func TestTCPCloseTwice(t *testing.T) {
	a := newTCPNode(t, 1, newRecorder(1), nil)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if a.Send(1, KindRaft, nil) {
		t.Fatal("Send after Close succeeded")
	}
}
