package quorum

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/troupe-io/troupe/raftlog"
)

// testTick keeps the tests fast: elections take 100–200 ms.
const testTick = 10 * time.Millisecond

var quietLogger = slog.New(slog.DiscardHandler)

// stateMachine is a member's application: the payloads it applied, in
// order. It checks that indexes only grow.
type stateMachine struct {
	t  testing.TB
	mu sync.Mutex
	// The applied state (what a snapshot holds).
	Payloads []string
	Indexes  []uint64
	Last     uint64
	// Not part of the state.
	restores   []uint64 // indexes Restore was called with
	leadership []Leadership
	// caughtUp records, at each announcement naming this node, how many
	// payloads were applied.
	caughtUp []int
	self     int32
	// failOn makes apply fail on this payload.
	failOn string
}

func (s *stateMachine) apply(index uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.Last {
		s.t.Errorf("node %d: applied index %d after %d", s.self, index, s.Last)
	}
	if s.failOn != "" && string(data) == s.failOn {
		return fmt.Errorf("refusing %q", data)
	}
	s.Payloads = append(s.Payloads, string(data))
	s.Indexes = append(s.Indexes, index)
	s.Last = index
	return nil
}

func (s *stateMachine) snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s)
}

func (s *stateMachine) restore(data []byte, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Payloads, s.Indexes = nil, nil
	if err := json.Unmarshal(data, s); err != nil {
		return err
	}
	if s.Last > index {
		return fmt.Errorf("snapshot state at %d is beyond its index %d", s.Last, index)
	}
	s.Last = index
	s.restores = append(s.restores, index)
	return nil
}

func (s *stateMachine) onLeaderChange(leader int32, term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leadership = append(s.leadership, Leadership{Leader: leader, Term: term})
	if leader == s.self {
		s.caughtUp = append(s.caughtUp, len(s.Payloads))
	}
}

func (s *stateMachine) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.Payloads)
}

func (s *stateMachine) indexOf(payload string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.Payloads, payload); i >= 0 {
		return s.Indexes[i]
	}
	return 0
}

// member is one voter of a test cluster.
type member struct {
	id      int32
	dir     string
	storage *raftlog.Storage
	node    *Node // nil while stopped
	sm      *stateMachine
	// lastIndex is the storage's last index when the member was stopped.
	lastIndex uint64
}

type testCluster struct {
	t               testing.TB
	fs              vfs.FS
	net             *memNet
	voters          []int32
	members         map[int32]*member
	snapshotEntries uint64
	tick            time.Duration

	mu sync.Mutex // guards members' node pointers for the transport handlers
}

// newTestCluster starts voters 0..size-1, each with its raftlog in an
// in-memory file system, or on disk under diskDir if it is not empty.
func newTestCluster(t testing.TB, size int, diskDir string, snapshotEntries uint64) *testCluster {
	return newTestClusterTick(t, size, diskDir, snapshotEntries, testTick)
}

func newTestClusterTick(t testing.TB, size int, diskDir string, snapshotEntries uint64, tick time.Duration) *testCluster {
	var fs vfs.FS = vfs.NewMem()
	base := "/"
	if diskDir != "" {
		fs, base = vfs.Default, diskDir
	}
	c := &testCluster{t: t, fs: fs, net: newMemNet(), members: map[int32]*member{}, snapshotEntries: snapshotEntries, tick: tick}
	for id := range int32(size) {
		c.voters = append(c.voters, id)
	}
	for _, id := range c.voters {
		c.members[id] = &member{id: id, dir: fs.PathJoin(base, fmt.Sprintf("node%d", id))}
		c.start(id)
	}
	t.Cleanup(c.close)
	return c
}

// start (re)starts a member from its storage with a fresh state machine,
// as a restarted process would.
func (c *testCluster) start(id int32) {
	m := c.members[id]
	st, err := raftlog.Open(raftlog.Options{Dir: m.dir, FS: c.fs, Logger: quietLogger})
	if err != nil {
		c.t.Fatalf("open storage of node %d: %v", id, err)
	}
	sm := &stateMachine{t: c.t, self: id}
	tr := c.net.attach(id, func(from int32, payload []byte) {
		c.mu.Lock()
		n := c.members[id].node
		c.mu.Unlock()
		if n != nil {
			n.HandleMessage(from, payload)
		}
	})
	c.net.setDown(id, false)
	n, err := Start(Config{
		NodeID:          id,
		Voters:          c.voters,
		Storage:         st,
		Transport:       tr,
		Apply:           sm.apply,
		Snapshot:        sm.snapshot,
		Restore:         sm.restore,
		OnLeaderChange:  sm.onLeaderChange,
		SnapshotEntries: c.snapshotEntries,
		TickInterval:    c.tick,
		Logger:          quietLogger,
	})
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.mu.Lock()
	m.storage, m.node, m.sm = st, n, sm
	c.mu.Unlock()
}

// stop takes a member down: its node stops, its storage closes (a clean
// shutdown, as Close is) and the network drops its traffic.
func (c *testCluster) stop(id int32) {
	m := c.members[id]
	c.net.setDown(id, true)
	c.mu.Lock()
	n := m.node
	m.node = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	if err := n.Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	m.lastIndex, _ = m.storage.LastIndex()
	if err := m.storage.Close(); err != nil {
		c.t.Errorf("close storage of node %d: %v", id, err)
	}
}

func (c *testCluster) close() {
	for _, id := range c.voters {
		c.stop(id)
	}
	c.net.close()
}

func (c *testCluster) running() []int32 {
	var ids []int32
	for _, id := range c.voters {
		if c.members[id].node != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// waitLeader waits until the running members among ids (all running ones
// if none given) agree on one leader, and returns it.
func (c *testCluster) waitLeader(within time.Duration, ids ...int32) int32 {
	if len(ids) == 0 {
		ids = c.running()
	}
	var leader int32 = -1
	c.eventually(within, "a leader all agree on", func() bool {
		leader = -1
		for _, id := range ids {
			n := c.members[id].node
			l := n.Leader()
			if l < 0 || (leader >= 0 && l != leader) {
				return false
			}
			leader = l
		}
		return slices.Contains(ids, leader) && c.members[leader].node.IsLeader()
	})
	return leader
}

// eventually polls cond every millisecond until it holds or within ends.
func (c *testCluster) eventually(within time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("after %v: still waiting for %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// propose proposes payload on node id and fails the test on error.
func (c *testCluster) propose(id int32, payload string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	index, err := c.members[id].node.Propose(ctx, []byte(payload))
	if err != nil {
		c.t.Fatalf("propose %q on node %d: %v", payload, id, err)
	}
	return index
}

// waitConverged waits until every running member applied want, exactly.
func (c *testCluster) waitConverged(within time.Duration, want []string) {
	c.t.Helper()
	c.eventually(within, fmt.Sprintf("all running nodes to apply the same %d payloads", len(want)), func() bool {
		for _, id := range c.running() {
			if len(c.members[id].sm.payloads()) < len(want) {
				return false
			}
		}
		return true
	})
	for _, id := range c.running() {
		if got := c.members[id].sm.payloads(); !slices.Equal(got, want) {
			c.t.Errorf("node %d applied %d payloads %v, want %v", id, len(got), got, want)
		}
	}
}

func payloads(prefix string, from, to int) []string {
	var p []string
	for i := from; i < to; i++ {
		p = append(p, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return p
}
