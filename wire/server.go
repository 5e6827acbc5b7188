package wire

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

const (
	// maxAPIKey bounds the API table; Kafka's keys are far below it.
	maxAPIKey = 127
	// defaultMaxConnections bounds open connections when Options leaves
	// it zero.
	defaultMaxConnections = 10000
	// defaultMaxInflight bounds replies queued per connection when
	// Limits.MaxInflightPerConn is zero.
	defaultMaxInflight = 64
	// defaultSocketRequestMaxBytes is Kafka's socket.request.max.bytes,
	// used when Limits leaves it zero.
	defaultSocketRequestMaxBytes = 100 << 20
	// defaultQueuedMaxRequestBytes is the default budget of request bytes
	// read and not yet answered, across all connections.
	defaultQueuedMaxRequestBytes = 256 << 20
)

// Options configure a Server.
type Options struct {
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Listener, when set, is what ListenAndServe serves (and what Addr
	// reports before Serve runs).
	Listener net.Listener
	// Addr is the TCP address ListenAndServe listens on when Listener is
	// nil.
	Addr string
	// Clock is the wall clock stamped on requests; nil means time.Now.
	Clock func() time.Time
	// MaxConnections bounds open client connections; connections beyond
	// it are closed at once. Zero means 10000.
	MaxConnections int
	// Rand, when set, draws the fetch session ids (the server's only
	// random choice) instead of the global source, so that a seeded run
	// (the simulator's) is reproducible. The server draws from it under
	// its session cache's lock; nobody else may draw concurrently.
	Rand *rand.Rand
}

// Server speaks the Kafka protocol on behalf of a Backend. Each connection
// has one reader goroutine, which decodes requests and runs their handlers
// in order, and one writer goroutine, which finishes and writes the
// replies in the same order; a bounded queue between them lets a client
// pipeline requests.
type Server struct {
	// replicaTrafficBlocked drops followers' fetches (BlockReplicaTraffic).
	replicaTrafficBlocked atomic.Bool

	b        Backend
	log      *slog.Logger
	now      func() time.Time
	opts     Options
	maxConns int

	// table holds the handled APIs by key, copied from the registered
	// ones at NewServer; apiKeys is the same table as ApiVersions
	// advertises it, sorted by key and shared (read-only) by every
	// ApiVersions response.
	table   [maxAPIKey + 1]api
	apiKeys []kmsg.ApiVersionsResponseApiKey

	// baseCtx parents every connection's context; forceClose cancels it.
	baseCtx    context.Context
	forceClose context.CancelFunc

	// stopping is set once Shutdown begins; readers check it before each
	// frame. stopCh is closed at the same moment, so that parked fetches
	// answer with what they have instead of holding the shutdown up for
	// their whole MaxWait; produce acks still complete.
	stopping atomic.Bool
	stopCh   chan struct{}

	// sessions is the broker-wide fetch session cache (KIP-227).
	sessions *fetchSessions

	// budget bounds the bytes of request frames read but not yet answered,
	// across all connections (Kafka's queued.max.request.bytes): a reader
	// reserves a frame's size before allocating it, so memory for queued
	// requests is bounded however many connections pipeline.
	budget *semaphore.Weighted

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup // one per conn in conns, done when its writer exits

	stats counters
}

// BlockReplicaTraffic makes the server drop (close the connection of)
// every fetch from another broker's replica while blocked is true, as if
// the network between this node and the others were cut (a fetch already
// parked here when the block starts still gets its answer). Clients'
// requests are served as usual. Fault-injection tests use it.
func (s *Server) BlockReplicaTraffic(blocked bool) { s.replicaTrafficBlocked.Store(blocked) }

// NewServer returns a server for b. It does not listen: call Serve or
// ListenAndServe.
func NewServer(b Backend, opts Options) *Server {
	s := &Server{
		b:         b,
		log:       opts.Logger,
		now:       opts.Clock,
		opts:      opts,
		maxConns:  opts.MaxConnections,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		stopCh:    make(chan struct{}),
		sessions:  newFetchSessions(maxFetchSessions),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxConns <= 0 {
		s.maxConns = defaultMaxConnections
	}
	if opts.Rand != nil {
		s.sessions.randID = func() int32 { return opts.Rand.Int32N(math.MaxInt32) + 1 }
	}
	s.baseCtx, s.forceClose = context.WithCancel(context.Background())
	l := s.limits()
	budget := l.QueuedMaxRequestBytes
	if budget <= 0 {
		budget = defaultQueuedMaxRequestBytes
	}
	// A frame the size limit allows must always fit, or its reader would
	// wait forever.
	s.budget = semaphore.NewWeighted(max(budget, int64(l.SocketRequestMaxBytes)))
	for key, a := range apis {
		if key >= 0 && key <= maxAPIKey && a.handle != nil {
			s.table[key] = a
		}
	}
	s.rebuildAPIKeys()
	return s
}

// setHandler replaces (or adds) the handler of one API on this server
// only. It must be called before Serve; tests use it to inject handlers
// whose replies wait.
func (s *Server) setHandler(key, minVersion, maxVersion int16, h handler) {
	s.table[key] = api{key: key, minVersion: minVersion, maxVersion: maxVersion, handle: h}
	s.rebuildAPIKeys()
}

// rebuildAPIKeys derives the advertised table from s.table, so that
// nothing is advertised that has no handler.
func (s *Server) rebuildAPIKeys() {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range s.table {
		if a.handle == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	s.apiKeys = keys
}

// lookup returns the handled API for key, if any.
func (s *Server) lookup(key int16) (api, bool) {
	if key < 0 || key > maxAPIKey || s.table[key].handle == nil {
		return api{}, false
	}
	return s.table[key], true
}

// ListenAndServe serves Options.Listener, or listens on Options.Addr.
func (s *Server) ListenAndServe() error {
	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.Addr); err != nil {
			return fmt.Errorf("wire: listen on %q: %w", s.opts.Addr, err)
		}
	}
	return s.Serve(ln)
}

// Addr is the address of the first listener being served, or of
// Options.Listener; nil before either exists.
func (s *Server) Addr() net.Addr {
	if s.opts.Listener != nil {
		return s.opts.Listener.Addr()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		return ln.Addr()
	}
	return nil
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() {
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				// Out of file descriptors and the like: wait and retry,
				// as net/http does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("wire: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept registers nc and starts its goroutines, or closes it when the
// server is stopping or full.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if len(s.conns) >= s.maxConns {
		s.mu.Unlock()
		s.stats.connsRejected.Add(1)
		s.log.Debug("too many connections; closing new one", "remote", nc.RemoteAddr().String(), "max", s.maxConns)
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.stats.connsAccepted.Add(1)
	c.start()
}

// removeConn forgets c once its goroutines are done.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Shutdown stops the server gracefully: it closes the listeners, stops
// every connection from reading further requests, lets the replies to
// requests already read (including ones still waiting, such as produce
// acks) be written, and then closes the connections. If ctx ends first,
// the remaining connections are closed at once, their request contexts
// are cancelled, and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping.Swap(true) {
		close(s.stopCh)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.forceClose()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// limits are the Backend's limits with zero values defaulted.
func (s *Server) limits() Limits {
	l := s.b.Limits()
	if l.SocketRequestMaxBytes <= 0 {
		l.SocketRequestMaxBytes = defaultSocketRequestMaxBytes
	}
	if l.MaxInflightPerConn <= 0 {
		l.MaxInflightPerConn = defaultMaxInflight
	}
	return l
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	// Requests counts decoded requests by API key.
	Requests map[int16]uint64
	// BytesIn and BytesOut count frame bytes, size prefixes included.
	BytesIn, BytesOut uint64
	// ProtocolErrors counts connections closed for requests the server
	// could not accept: bad frame sizes, unknown or unsupported API
	// keys and versions, undecodable headers or bodies.
	ProtocolErrors uint64
	// WriteErrors counts connections whose replies could not be written.
	WriteErrors uint64
	// Panics counts connections closed because a handler panicked.
	Panics uint64
	// ConnsAccepted and ConnsRejected count connections taken and
	// refused (over MaxConnections); ConnsOpen is the current number.
	ConnsAccepted, ConnsRejected uint64
	ConnsOpen                    int
}

// counters are the live values behind Stats.
type counters struct {
	requests                     [maxAPIKey + 1]atomic.Uint64
	bytesIn, bytesOut            atomic.Uint64
	protocolErrors, writeErrors  atomic.Uint64
	panics                       atomic.Uint64
	connsAccepted, connsRejected atomic.Uint64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:       map[int16]uint64{},
		BytesIn:        s.stats.bytesIn.Load(),
		BytesOut:       s.stats.bytesOut.Load(),
		ProtocolErrors: s.stats.protocolErrors.Load(),
		WriteErrors:    s.stats.writeErrors.Load(),
		Panics:         s.stats.panics.Load(),
		ConnsAccepted:  s.stats.connsAccepted.Load(),
		ConnsRejected:  s.stats.connsRejected.Load(),
	}
	for k := range s.stats.requests {
		if n := s.stats.requests[k].Load(); n > 0 {
			st.Requests[int16(k)] = n
		}
	}
	s.mu.Lock()
	st.ConnsOpen = len(s.conns)
	s.mu.Unlock()
	return st
}
