package membership

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// lockedWriter forwards to the test's output until the test's cleanup
// begins, so memberlist goroutines that log on their way out cannot write
// to a finished test.
type lockedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

// testLogger logs at info, or debug (memberlist included) with
// MEMBERSHIP_DEBUG=1.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	w := &lockedWriter{w: t.Output()}
	// Registered first, so it runs after every node's Close.
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("MEMBERSHIP_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testConfig is a node on loopback with a free port and distinctive meta.
func testConfig(logger *slog.Logger, id int32, incarnation int64, seeds ...string) Config {
	return Config{
		NodeID:   id,
		BindAddr: "127.0.0.1:0",
		Seeds:    seeds,
		Meta: NodeMeta{
			NodeID:         id,
			Incarnation:    incarnation,
			KafkaAddr:      fmt.Sprintf("127.0.0.1:%d", 9000+id),
			ControllerAddr: fmt.Sprintf("127.0.0.1:%d", 9100+id),
			Roles:          []string{"broker", "controller"},
		},
		Logger: logger,
	}
}

// startNode starts cfg and closes it when the test ends.
func startNode(t *testing.T, cfg Config) *Membership {
	t.Helper()
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("start node %d: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// seenEvent is an event and when the watcher received it.
type seenEvent struct {
	Event
	at time.Time
}

// watcher records a node's events as they arrive, so that tests can wait
// on several nodes at once and timestamps are not skewed by the test's
// own pace.
type watcher struct {
	mu     sync.Mutex
	events []seenEvent
	added  chan struct{} // capacity 1
}

func watch(m *Membership) *watcher {
	w := &watcher{added: make(chan struct{}, 1)}
	go func() {
		for ev := range m.Events() { // ends when m is closed
			w.mu.Lock()
			w.events = append(w.events, seenEvent{ev, time.Now()})
			w.mu.Unlock()
			select {
			case w.added <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// waitFor returns the first recorded event matching pred, waiting at most
// timeout for it.
func (w *watcher) waitFor(t *testing.T, timeout time.Duration, what string, pred func(Event) bool) seenEvent {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for _, ev := range w.events {
			if pred(ev.Event) {
				w.mu.Unlock()
				return ev
			}
		}
		w.mu.Unlock()
		select {
		case <-w.added:
		case <-deadline.C:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no event %s within %v; got %v", what, timeout, w.events)
			return seenEvent{}
		}
	}
}

// last returns the last recorded event about node id.
func (w *watcher) last(id int32) (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.events) - 1; i >= 0; i-- {
		if w.events[i].Member.NodeID == id {
			return w.events[i].Event, true
		}
	}
	return Event{}, false
}

func eventIs(kind EventKind, id int32) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == kind && ev.Member.NodeID == id }
}

// eventually polls cond every 20 ms for at most timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memberOf returns node id as m sees it.
func memberOf(m *Membership, id int32) (Member, bool) {
	for _, mem := range m.Members() {
		if mem.NodeID == id {
			return mem, true
		}
	}
	return Member{}, false
}

// aliveCount is how many members m sees alive, itself included.
func aliveCount(m *Membership) int {
	n := 0
	for _, mem := range m.Members() {
		if mem.State == StateAlive {
			n++
		}
	}
	return n
}

// freePort returns a loopback port that was free for TCP and UDP a moment
// ago (another process could take it; tests using it accept that risk).
func freePort(t *testing.T) int {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
