package fetcher

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/partlog"
)

// Partition is what the fetcher needs of a follower partition's actor
// (actors.Partition implements it). Both methods only enqueue; the answer
// arrives on the request's reply channel.
type Partition interface {
	FollowerState(actors.FollowerStateRequest)
	FollowerFetched(actors.FollowerFetchedRequest)
}

// Config configures a Fetcher. Zero durations and sizes take Kafka's
// defaults.
type Config struct {
	// NodeID is this broker's id: the replica id of its fetches.
	NodeID int32
	// Addr resolves a broker id to its Kafka listener, host:port.
	Addr func(id int32) (string, bool)
	// MaxWait is replica.fetch.wait.max.ms (500 ms).
	MaxWait time.Duration
	// MinBytes is replica.fetch.min.bytes (1).
	MinBytes int32
	// PartitionMaxBytes is replica.fetch.max.bytes (1 MiB).
	PartitionMaxBytes int32
	// ResponseMaxBytes is replica.fetch.response.max.bytes (10 MiB).
	ResponseMaxBytes int32
	// Backoff is the pause after a failed fetch, and before a partition
	// the leader refused is fetched again (Kafka's
	// replica.fetch.backoff.ms is 1 s; 250 ms by default here, since
	// failovers are what it delays).
	Backoff time.Duration
	// RequestTimeout bounds a fetch beyond MaxWait, and a partition's
	// answer to the fetcher (30 s).
	RequestTimeout time.Duration
	// Dial opens connections (net.Dialer's by default).
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 1
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = 1 << 20
	}
	if c.ResponseMaxBytes <= 0 {
		c.ResponseMaxBytes = 10 << 20
	}
	if c.Backoff <= 0 {
		c.Backoff = 250 * time.Millisecond
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// maxFrame bounds a fetch response. A leader may exceed the response
// limit by one whole batch (KIP-74: the first partition with data always
// gets a complete batch), so the frame may be larger than
// ResponseMaxBytes by up to a batch; batches past maxBatchAllowance stall
// that partition's replication, loudly.
func (c *Config) maxFrame() int {
	return int(c.ResponseMaxBytes) + maxBatchAllowance
}

const maxBatchAllowance = 64 << 20

// Fetcher runs the fetch loops of one broker: one per source broker with
// partitions to follow.
type Fetcher struct {
	cfg    Config
	paused atomic.Bool

	mu      sync.Mutex
	closed  bool
	sources map[int32]*source
	// where maps each followed partition to its source broker.
	where map[partlog.LogID]int32
}

// New returns a Fetcher following nothing.
func New(cfg Config) *Fetcher {
	cfg.defaults()
	return &Fetcher{cfg: cfg, sources: map[int32]*source{}, where: map[partlog.LogID]int32{}}
}

// Follow makes partition id, whose actor is p, fetch from broker leader.
// Call it whenever the partition's leader or leader epoch changes in the
// metadata (after telling the actor its role): the fetcher asks the actor
// afresh where its fetch starts. A partition follows one leader at a
// time; following another moves it.
func (f *Fetcher) Follow(id partlog.LogID, leader int32, p Partition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if old, ok := f.where[id]; ok && old != leader {
		f.removeLocked(id, old)
	}
	s := f.sources[leader]
	if s == nil {
		s = newSource(f, leader)
		f.sources[leader] = s
		go s.run()
	}
	f.where[id] = leader
	s.follow(id, p)
}

// Unfollow stops fetching for partition id (it leads now, has no leader,
// or stopped).
func (f *Fetcher) Unfollow(id partlog.LogID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.where[id]; ok {
		f.removeLocked(id, old)
	}
}

func (f *Fetcher) removeLocked(id partlog.LogID, leader int32) {
	delete(f.where, id)
	s := f.sources[leader]
	if s == nil {
		return
	}
	if s.unfollow(id) == 0 {
		// The loop ends on its own; an answer in flight is dropped.
		delete(f.sources, leader)
		s.close()
	}
}

// Leader reports which broker partition id is fetched from.
func (f *Fetcher) Leader(id partlog.LogID) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.where[id]
	return l, ok
}

// Pause stops (true) or resumes (false) all fetching, keeping what is
// followed. A paused follower falls out of the ISR after
// replica.lag.time.max.ms, as a stuck one would: for operators and
// tests. Pause(true) returns once no fetch is in flight and nothing
// fetched is still being handed to a partition: from then on the
// follower's logs do not grow.
func (f *Fetcher) Pause(paused bool) {
	f.paused.Store(paused)
	f.mu.Lock()
	sources := make([]*source, 0, len(f.sources))
	for _, s := range f.sources {
		sources = append(sources, s)
	}
	f.mu.Unlock()
	for _, s := range sources {
		if paused {
			s.interrupt()
		}
		s.notify()
	}
	if paused {
		for _, s := range sources {
			// The loop holds round for a whole fetch and delivery: taking
			// it waits for the round in flight to end.
			s.round.Lock()
			//lint:ignore SA2001 the empty critical section is the wait
			s.round.Unlock()
		}
	}
}

// Close stops every fetch loop and waits for them.
func (f *Fetcher) Close() {
	f.mu.Lock()
	f.closed = true
	sources := f.sources
	f.sources, f.where = map[int32]*source{}, map[partlog.LogID]int32{}
	f.mu.Unlock()
	for _, s := range sources {
		s.close()
	}
	for _, s := range sources {
		<-s.done
	}
}

// String describes the fetcher for logs.
func (f *Fetcher) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("replica fetcher of %d: %d partitions from %d leaders", f.cfg.NodeID, len(f.where), len(f.sources))
}
