package membership

import (
	"fmt"
	"testing"
	"time"
)

// convergeTimeout bounds how long a small loopback cluster takes to agree
// on who is alive (joins, leaves, restarts).
const convergeTimeout = 8 * time.Second

// startCluster starts n nodes (ids 1..n); node 1 is the only seed. It
// returns once every node sees all n alive, with a watcher per node.
func startCluster(t *testing.T, n int) ([]*Membership, []*watcher) {
	t.Helper()
	logger := testLogger(t)
	var nodes []*Membership
	var watchers []*watcher
	for i := range n {
		id := int32(i + 1)
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].Addr()}
		}
		m := startNode(t, testConfig(logger, id, 1000+int64(id), seeds...))
		nodes = append(nodes, m)
		watchers = append(watchers, watch(m))
	}
	for i, m := range nodes {
		eventually(t, convergeTimeout, fmt.Sprintf("node %d sees %d alive", i+1, n),
			func() bool { return aliveCount(m) == n })
	}
	return nodes, watchers
}

func TestThreeNodesFindEachOtherViaOneSeed(t *testing.T) {
	nodes, watchers := startCluster(t, 3)
	for i, m := range nodes {
		self := int32(i + 1)
		members := m.Members()
		if len(members) != 3 {
			t.Fatalf("node %d: members %v", self, members)
		}
		for j, mem := range members {
			if mem.NodeID != int32(j+1) || mem.State != StateAlive || mem.Addr != nodes[j].Addr() {
				t.Errorf("node %d sees %+v, want node %d alive at %s", self, mem, j+1, nodes[j].Addr())
			}
		}
		for peer := int32(1); peer <= 3; peer++ {
			if peer == self {
				continue
			}
			watchers[i].waitFor(t, time.Second, fmt.Sprintf("%d joined at %d", peer, self), eventIs(Joined, peer))
		}
		if ev, ok := watchers[i].last(self); ok {
			t.Errorf("node %d reported its own event %+v", self, ev)
		}
	}
}

func TestMetaTravels(t *testing.T) {
	nodes, watchers := startCluster(t, 3)
	logger := testLogger(t)
	for i, m := range nodes {
		for _, mem := range m.Members() {
			want := testConfig(logger, mem.NodeID, 1000+int64(mem.NodeID)).Meta
			if !mem.Meta.Equal(want) {
				t.Errorf("node %d sees node %d meta %+v, want %+v", i+1, mem.NodeID, mem.Meta, want)
			}
		}
	}
	ev := watchers[0].waitFor(t, time.Second, "2 joined", eventIs(Joined, 2))
	if want := testConfig(logger, 2, 1002).Meta; !ev.Member.Meta.Equal(want) {
		t.Errorf("Joined event meta %+v, want %+v", ev.Member.Meta, want)
	}
	// The caller's slices are not shared with the package.
	members := nodes[0].Members()
	members[1].Meta.Roles[0] = "mutated"
	if mem, _ := memberOf(nodes[0], 2); mem.Meta.Roles[0] != "broker" {
		t.Errorf("Members shares Roles with its caller: %v", mem.Meta.Roles)
	}
}

func TestCloseYieldsLeft(t *testing.T) {
	nodes, watchers := startCluster(t, 3)
	start := time.Now()
	if err := nodes[2].Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if took, limit := time.Since(start), DefaultLeaveTimeout+tcpTimeout; took > limit {
		t.Errorf("Close took %v, limit %v", took, limit)
	}
	t.Logf("Close took %v", time.Since(start))
	for i := range 2 {
		ev := watchers[i].waitFor(t, 3*time.Second, "3 left", func(ev Event) bool {
			return ev.Member.NodeID == 3 && (ev.Kind == Left || ev.Kind == Failed)
		})
		if ev.Kind != Left || ev.Member.State != StateLeft {
			t.Errorf("node %d: got %v (%v) for a graceful close, want left", i+1, ev.Kind, ev.Member.State)
		}
		t.Logf("node %d saw the leave after %v", i+1, ev.at.Sub(start))
		if mem, _ := memberOf(nodes[i], 3); mem.State != StateLeft {
			t.Errorf("node %d: member 3 is %v, want left", i+1, mem.State)
		}
	}
	// The closed node's channel is closed.
	select {
	case _, ok := <-nodes[2].Events():
		for ok {
			_, ok = <-nodes[2].Events()
		}
	case <-time.After(time.Second):
		t.Error("Events not closed after Close")
	}
	if err := nodes[2].Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCrashYieldsFailedWithinDetectionTime(t *testing.T) {
	nodes, watchers := startCluster(t, 3)
	limit := Config{}.FailureDetectionTime(3)
	// Slack for scheduling under -race on two busy cores.
	const slack = time.Second
	start := time.Now()
	nodes[2].crash()
	for i := range 2 {
		ev := watchers[i].waitFor(t, limit+slack+2*time.Second, "3 failed", func(ev Event) bool {
			return ev.Member.NodeID == 3 && (ev.Kind == Left || ev.Kind == Failed)
		})
		took := ev.at.Sub(start)
		t.Logf("node %d reported node 3 %v after %v (documented %v)", i+1, ev.Kind, took, limit)
		if ev.Kind != Failed || ev.Member.State != StateDead {
			t.Errorf("node %d: got %v (%v) for a crash, want failed", i+1, ev.Kind, ev.Member.State)
		}
		if took > limit+slack {
			t.Errorf("node %d: failure detected after %v, documented %v (+%v slack)", i+1, took, limit, slack)
		}
		if mem, _ := memberOf(nodes[i], 3); mem.State != StateDead {
			t.Errorf("node %d: member 3 is %v, want dead", i+1, mem.State)
		}
	}
}

func TestRestartedNodeIsSeenAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stop stops node 2's first process.
		graceful bool
		// waitDetected: restart only after the peers reported the stop.
		waitDetected bool
		// samePort: the new process binds the old address.
		samePort bool
		// want: the kinds the peers may report the new process with.
		want []EventKind
		// oldFailed: the peers report the old process Failed first.
		oldFailed bool
	}{
		{name: "after close", graceful: true, waitDetected: true, want: []EventKind{Joined}},
		{name: "after detected crash", waitDetected: true, want: []EventKind{Joined}},
		{name: "crash, restart at once on a new port", want: []EventKind{Joined}, oldFailed: true},
		{name: "crash, restart at once on the same port", samePort: true, want: []EventKind{Updated, Joined}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, watchers := startCluster(t, 3)
			logger := testLogger(t)
			old := nodes[1]
			oldAddr := old.Addr()
			if tc.graceful {
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				old.crash()
			}
			if tc.waitDetected {
				for _, i := range []int{0, 2} {
					watchers[i].waitFor(t, convergeTimeout, "2 gone", func(ev Event) bool {
						return ev.Member.NodeID == 2 && (ev.Kind == Left || ev.Kind == Failed)
					})
				}
			}
			cfg := testConfig(logger, 2, 2002, nodes[0].Addr())
			if tc.samePort {
				cfg.BindAddr = oldAddr
			}
			restarted := startNode(t, cfg)
			if tc.samePort != (restarted.Addr() == oldAddr) {
				t.Fatalf("restarted at %s, old %s, same port wanted: %v", restarted.Addr(), oldAddr, tc.samePort)
			}
			start := time.Now()
			for _, i := range []int{0, 2} {
				eventually(t, convergeTimeout, fmt.Sprintf("node %d sees the new node 2", i+1), func() bool {
					mem, ok := memberOf(nodes[i], 2)
					return ok && mem.State == StateAlive && mem.Meta.Incarnation == 2002 && mem.Addr == restarted.Addr()
				})
				ev := watchers[i].waitFor(t, time.Second, "new node 2", func(ev Event) bool {
					return ev.Member.NodeID == 2 && ev.Member.Meta.Incarnation == 2002
				})
				if tc.oldFailed {
					failed := watchers[i].waitFor(t, 0, "old node 2 failed", func(ev Event) bool {
						return ev.Kind == Failed && ev.Member.NodeID == 2 && ev.Member.Meta.Incarnation == 1002
					})
					if failed.at.After(ev.at) {
						t.Errorf("node %d reported the old process failed after the new one joined", i+1)
					}
				}
				if !kindIn(ev.Kind, tc.want) {
					t.Errorf("node %d reported the restart as %v, want one of %v", i+1, ev.Kind, tc.want)
				}
				t.Logf("node %d saw the new node 2 (%v) %v after it started", i+1, ev.Kind, ev.at.Sub(start))
			}
			eventually(t, convergeTimeout, "restarted node sees 3 alive", func() bool { return aliveCount(restarted) == 3 })
			// No flapping: once the new process is reported, it is not
			// reported gone (see delegate.NotifyMerge). A flap would come
			// from the predecessor's death gossip, retransmitted for a few
			// gossip rounds; give it time to show.
			time.Sleep(500 * time.Millisecond)
			for _, i := range []int{0, 2} {
				var seq []string
				seenNew := false
				watchers[i].mu.Lock()
				for _, e := range watchers[i].events {
					if e.Member.NodeID != 2 {
						continue
					}
					seq = append(seq, fmt.Sprintf("%v/%d", e.Kind, e.Member.Meta.Incarnation))
					seenNew = seenNew || e.Member.Meta.Incarnation == 2002
					if seenNew && (e.Kind == Failed || e.Kind == Left) {
						t.Errorf("node %d: the new process flapped: %v", i+1, seq)
					}
				}
				watchers[i].mu.Unlock()
				t.Logf("node %d saw node 2 go through %v", i+1, seq)
			}
		})
	}
}

func kindIn(k EventKind, ks []EventKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// TestUnreadEventsDoNotStallDetection: nobody reads node 1's events while
// more nodes than the event buffer holds join and leave; node 1 keeps
// tracking them, its backlog stays one event per node, and Close does not
// hang.
func TestUnreadEventsDoNotStallDetection(t *testing.T) {
	logger := testLogger(t)
	first := startNode(t, testConfig(logger, 1, 1001))
	// Each node is two events, a join and a leave. Leaves go one at a
	// time: nodes leaving together lose each other's leave messages, and
	// the last survivor then detects the rest slowly, alone.
	const extra = eventBuffer/2 + 2
	others := make([]*Membership, extra)
	for i := range others {
		others[i] = startNode(t, testConfig(logger, int32(10+i), int64(i+1), first.Addr()))
	}
	eventually(t, convergeTimeout, "all joined", func() bool { return aliveCount(first) == 1+extra })
	for _, m := range others {
		// Under -race an 11-node leave can outlast its budget; that only
		// risks a Failed instead of a Left, which this test accepts.
		if err := m.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	}
	eventually(t, convergeTimeout, "all gone", func() bool { return aliveCount(first) == 1 })
	if got := len(first.Events()); got != eventBuffer {
		t.Errorf("event channel holds %d, want it full (%d)", got, eventBuffer)
	}
	if got := first.events.pendingLen(); got > extra {
		t.Errorf("%d nodes pending, more than the %d nodes seen", got, extra)
	}
	start := time.Now()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > DefaultLeaveTimeout+tcpTimeout {
		t.Errorf("Close with unread events took %v", took)
	}
}

// TestNodesStartedInAnyOrder: a node whose seed is not up yet keeps trying
// and finds it when it comes.
func TestNodesStartedInAnyOrder(t *testing.T) {
	logger := testLogger(t)
	seedAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	early := startNode(t, testConfig(logger, 2, 2, seedAddr))
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	if n := aliveCount(early); n != 1 {
		t.Fatalf("alone node sees %d alive", n)
	}
	cfg := testConfig(logger, 1, 1)
	cfg.BindAddr = seedAddr
	late := startNode(t, cfg)
	for _, m := range []*Membership{early, late} {
		eventually(t, rejoinMaxBackoff+convergeTimeout, "both alive", func() bool { return aliveCount(m) == 2 })
	}
}

// TestClusterIDKeepsClustersApart: a seed from another cluster is refused.
func TestClusterIDKeepsClustersApart(t *testing.T) {
	logger := testLogger(t)
	a := testConfig(logger, 1, 1)
	a.ClusterID = "alpha"
	ma := startNode(t, a)
	b := testConfig(logger, 2, 2, ma.Addr())
	b.ClusterID = "beta"
	mb := startNode(t, b)
	c := testConfig(logger, 3, 3, ma.Addr())
	c.ClusterID = "alpha"
	mc := startNode(t, c)
	eventually(t, convergeTimeout, "same cluster joins", func() bool { return aliveCount(mc) == 2 })
	time.Sleep(500 * time.Millisecond)
	if n := aliveCount(mb); n != 1 {
		t.Errorf("node of cluster beta sees %d alive, want only itself", n)
	}
	if _, ok := memberOf(ma, 2); ok {
		t.Error("cluster alpha admitted a node of cluster beta")
	}
}
