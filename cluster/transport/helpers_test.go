package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// recorder is a Handler that records messages and answers requests with
// "<node id>:<payload>", or with the error its payload asks for.
type recorder struct {
	id int32

	mu   sync.Mutex
	msgs []recorded
	// onRequest, if set, replaces the default answer.
	onRequest func(ctx context.Context, from int32, kind Kind, payload []byte) ([]byte, error)
	notify    chan struct{} // receives (without blocking) on every message
}

type recorded struct {
	from    int32
	kind    Kind
	payload string
}

func newRecorder(id int32) *recorder {
	return &recorder{id: id, notify: make(chan struct{}, 1)}
}

func (r *recorder) HandleMessage(from int32, kind Kind, payload []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, recorded{from, kind, string(payload)})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) HandleRequest(ctx context.Context, from int32, kind Kind, payload []byte) ([]byte, error) {
	r.mu.Lock()
	f := r.onRequest
	r.mu.Unlock()
	if f != nil {
		return f(ctx, from, kind, payload)
	}
	if p, ok := bytes.CutPrefix(payload, []byte("fail:")); ok {
		return nil, errors.New(string(p))
	}
	return fmt.Appendf(nil, "%d:%s", r.id, payload), nil
}

func (r *recorder) messages() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.msgs...)
}

func (r *recorder) setOnRequest(f func(ctx context.Context, from int32, kind Kind, payload []byte) ([]byte, error)) {
	r.mu.Lock()
	r.onRequest = f
	r.mu.Unlock()
}

// waitMessages waits until r has at least n messages, at most d.
func (r *recorder) waitMessages(t *testing.T, n int, d time.Duration) []recorded {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msgs := r.messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: got %d messages, want %d", r.id, len(msgs), n)
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// eventually polls cond every few milliseconds for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t testing.TB) string {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const testCluster = "test-cluster"

// newTCPNode starts a TCP transport on loopback, closed at cleanup.
// Tests tweak opts through mod.
func newTCPNode(t testing.TB, id int32, h Handler, mod func(*Options)) *TCP {
	t.Helper()
	opts := Options{
		NodeID:     id,
		ClusterID:  testCluster,
		Listener:   listen(t),
		Handler:    h,
		MaxBackoff: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	tr, err := NewTCP(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// connectAll tells every node where every other node listens.
func connectAll(nodes map[int32]*TCP) {
	for _, a := range nodes {
		for id, b := range nodes {
			a.SetPeer(id, b.Addr().String())
		}
	}
}

func withTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var discardLogger = slog.New(slog.DiscardHandler)

// runtimeMem samples the bytes allocated so far.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}
