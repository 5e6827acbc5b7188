package raftlog

import (
	"fmt"
	"io"
	"log"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestRaftClusterOverStorage runs three raft.RawNodes over Storage in one
// goroutine (messages delivered in memory, ticks driven by the loop),
// proposes 200 entries and restarts a follower from its Storage midway,
// while the others compact past it so that it must be caught up by a
// snapshot.
// Every node must apply the same 200 entries in order.
func TestRaftClusterOverStorage(t *testing.T) {
	c := newCluster(t, vfs.NewMem(), 3)
	defer c.close()

	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.runUntil("a leader applies the bootstrap configuration", func() bool {
		l := c.leader()
		return l != nil && l.appliedIndex >= 3
	})

	c.propose(0, 100)
	c.runUntil("all apply entries 0-99", func() bool { return c.allApplied(100, 1, 2, 3) })

	// A follower snapshots and compacts its own log, then goes down.
	var down uint64
	var up []uint64
	for id := uint64(3); id >= 1; id-- {
		if down == 0 && c.nodes[id] != c.leader() {
			down = id
		} else {
			up = append(up, id)
		}
	}
	c.nodes[down].snapshotAndCompact(t)
	c.stop(down)

	c.propose(100, 150)
	c.runUntil("the others apply entries 100-149", func() bool { return c.allApplied(150, up...) })
	// The others compact past everything the stopped node has: it can
	// only be caught up with a snapshot.
	for _, id := range up {
		c.nodes[id].snapshotAndCompact(t)
	}

	c.restart(down)
	c.propose(150, 200)
	c.runUntil("all apply entries 0-199", func() bool { return c.allApplied(200, 1, 2, 3) })

	want := make([]string, 200)
	for i := range want {
		want[i] = payload(i)
	}
	for id, n := range c.nodes {
		if !slices.Equal(n.applied, want) {
			t.Errorf("node %d applied %d entries, differing from the 200 proposed: %v", id, len(n.applied), n.applied)
		}
	}
	if c.nodes[down].snapshotsReceived == 0 {
		t.Errorf("node %d was never sent a snapshot; the test did not exercise SaveReady with one", down)
	}

	for id, n := range c.nodes {
		first, _ := n.storage.FirstIndex()
		last, _ := n.storage.LastIndex()
		t.Logf("node %d: log (%d, %d], %d snapshots received", id, first-1, last, n.snapshotsReceived)
	}
	t.Logf("%d rounds, leader node %d", c.rounds, c.leader().id)

	// The logs agree wherever they overlap, and each node's storage alone
	// rebuilds the 200 entries after another restart.
	c.checkLogsAgree()
	for id := range c.nodes {
		c.stop(id)
		st := openTest(t, c.fs, c.nodes[id].dir)
		if got := replay(t, st); !slices.Equal(got, want) {
			t.Errorf("node %d rebuilt from its storage: %d entries, want the 200 proposed", id, len(got))
		}
		_ = st.Close()
	}
}

func payload(i int) string { return fmt.Sprintf("entry-%03d", i) }

type cluster struct {
	t      *testing.T
	fs     vfs.FS
	nodes  map[uint64]*testNode
	peers  []raft.Peer
	queue  []*pb.Message
	rounds int
}

// testNode is one member: its Storage, its RawNode and its state machine,
// the list of applied payloads.
type testNode struct {
	id                uint64
	dir               string
	storage           *Storage // nil while down
	rn                *raft.RawNode
	applied           []string
	appliedIndex      uint64
	confState         *pb.ConfState
	snapshotsReceived int
}

var quietRaftLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

func raftConfig(id uint64, st *Storage, applied uint64) *raft.Config {
	return &raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         st,
		Applied:         applied,
		MaxSizePerMsg:   64 << 10,
		MaxInflightMsgs: 32,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          quietRaftLogger,
	}
}

func newCluster(t *testing.T, fs vfs.FS, size int) *cluster {
	c := &cluster{t: t, fs: fs, nodes: map[uint64]*testNode{}}
	for id := uint64(1); id <= uint64(size); id++ {
		c.peers = append(c.peers, raft.Peer{ID: id})
	}
	for id := uint64(1); id <= uint64(size); id++ {
		n := &testNode{id: id, dir: fmt.Sprintf("/node%d", id)}
		n.storage = openTest(t, fs, n.dir)
		rn, err := raft.NewRawNode(raftConfig(id, n.storage, 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := rn.Bootstrap(c.peers); err != nil {
			t.Fatal(err)
		}
		n.rn = rn
		c.nodes[id] = n
	}
	return c
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		if n.storage != nil {
			_ = n.storage.Close()
		}
	}
}

// stop crashes nothing: it closes the node's storage and drops its RawNode
// and its volatile state machine.
func (c *cluster) stop(id uint64) {
	n := c.nodes[id]
	if n.storage == nil {
		return
	}
	if err := n.storage.Close(); err != nil {
		c.t.Fatal(err)
	}
	n.storage, n.rn = nil, nil
	n.applied, n.appliedIndex, n.confState = nil, 0, nil
}

// restart reopens the node's storage, restores its state machine from the
// stored snapshot and starts a RawNode on it; raft then replays the
// committed entries after the snapshot.
func (c *cluster) restart(id uint64) {
	n := c.nodes[id]
	n.storage = openTest(c.t, c.fs, n.dir)
	snap, err := n.storage.Snapshot()
	if err != nil {
		c.t.Fatal(err)
	}
	n.restore(snap)
	rn, err := raft.NewRawNode(raftConfig(id, n.storage, n.appliedIndex))
	if err != nil {
		c.t.Fatal(err)
	}
	n.rn = rn
}

func (n *testNode) restore(snap *pb.Snapshot) {
	n.applied = nil
	if len(snap.GetData()) > 0 {
		n.applied = strings.Split(string(snap.GetData()), "\n")
	}
	n.appliedIndex = snap.GetMetadata().GetIndex()
	n.confState = snap.GetMetadata().GetConfState()
}

func (n *testNode) snapshotAndCompact(t *testing.T) {
	data := []byte(strings.Join(n.applied, "\n"))
	if _, err := n.storage.CreateSnapshot(n.appliedIndex, n.confState, data); err != nil {
		t.Fatal(err)
	}
	if err := n.storage.Compact(n.appliedIndex); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) leader() *testNode {
	for _, n := range c.nodes {
		if n.rn != nil && n.rn.BasicStatus().RaftState == raft.StateLeader {
			return n
		}
	}
	return nil
}

func (c *cluster) propose(from, to int) {
	l := c.leader()
	if l == nil {
		c.t.Fatal("no leader to propose to")
	}
	for i := from; i < to; i++ {
		if err := l.rn.Propose([]byte(payload(i))); err != nil {
			c.t.Fatalf("propose %d on node %d: %v", i, l.id, err)
		}
	}
}

func (c *cluster) allApplied(count int, ids ...uint64) bool {
	for _, id := range ids {
		if len(c.nodes[id].applied) < count {
			return false
		}
	}
	return true
}

// runUntil runs rounds until cond holds, failing after a bound that is far
// above what a healthy cluster needs.
func (c *cluster) runUntil(what string, cond func() bool) {
	for range 2000 {
		if cond() {
			return
		}
		c.round()
	}
	c.t.Fatalf("after %d rounds: still waiting until %s", c.rounds, what)
}

// round ticks every running node, handles its Ready and then delivers the
// messages sent so far.
func (c *cluster) round() {
	c.rounds++
	for id := uint64(1); id <= uint64(len(c.nodes)); id++ {
		n := c.nodes[id]
		if n.rn == nil {
			continue
		}
		n.rn.Tick()
		c.handleReady(n)
	}
	msgs := c.queue
	c.queue = nil
	for _, m := range msgs {
		to, from := c.nodes[m.GetTo()], c.nodes[m.GetFrom()]
		if to == nil || to.rn == nil {
			if from.rn != nil {
				from.rn.ReportUnreachable(m.GetTo())
			}
			continue
		}
		if err := to.rn.Step(m); err != nil {
			c.t.Fatalf("node %d stepping %v: %v", to.id, m.GetType(), err)
		}
		if m.GetType() == pb.MsgSnap && from.rn != nil {
			from.rn.ReportSnapshot(to.id, raft.SnapshotFinish)
		}
	}
}

// handleReady stores the Ready, then sends and applies, as raft requires.
func (c *cluster) handleReady(n *testNode) {
	for range 10 {
		if !n.rn.HasReady() {
			return
		}
		rd := n.rn.Ready()
		if err := n.storage.SaveReady(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
			c.t.Fatalf("node %d: SaveReady: %v", n.id, err)
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			n.restore(rd.Snapshot)
			n.snapshotsReceived++
		}
		c.queue = append(c.queue, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			n.apply(c.t, e)
		}
		n.rn.Advance(rd)
	}
}

func (n *testNode) apply(t *testing.T, e *pb.Entry) {
	if e.GetIndex() <= n.appliedIndex {
		return
	}
	switch e.GetType() {
	case pb.EntryNormal:
		if len(e.GetData()) > 0 {
			n.applied = append(n.applied, string(e.GetData()))
		}
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			t.Fatalf("node %d: conf change at %d: %v", n.id, e.GetIndex(), err)
		}
		if n.rn != nil {
			n.confState = n.rn.ApplyConfChange(&cc)
		}
	}
	n.appliedIndex = e.GetIndex()
}

// checkLogsAgree compares the stored entries of every pair of nodes where
// both still hold them.
func (c *cluster) checkLogsAgree() {
	type log struct {
		first, last uint64
		ents        []*pb.Entry
	}
	logs := map[uint64]log{}
	for id, n := range c.nodes {
		first, _ := n.storage.FirstIndex()
		last, _ := n.storage.LastIndex()
		ents, err := n.storage.Entries(first, last+1, math.MaxUint64)
		if err != nil {
			c.t.Fatalf("node %d: Entries(%d, %d): %v", id, first, last+1, err)
		}
		logs[id] = log{first, last, ents}
	}
	for a := range logs {
		for b := range logs {
			la, lb := logs[a], logs[b]
			for i := max(la.first, lb.first); i <= min(la.last, lb.last); i++ {
				if ea, eb := la.ents[i-la.first], lb.ents[i-lb.first]; !proto.Equal(ea, eb) {
					c.t.Fatalf("entry %d differs: node %d has %v, node %d has %v", i, a, ea, b, eb)
				}
			}
		}
	}
}

// replay rebuilds a node's applied payloads from its storage alone: the
// snapshot, then the committed entries after it.
func replay(t *testing.T, st *Storage) []string {
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var n testNode
	n.restore(snap)
	hs, _, err := st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetCommit() > n.appliedIndex {
		ents, err := st.Entries(n.appliedIndex+1, hs.GetCommit()+1, math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			n.apply(t, e)
		}
	}
	return n.applied
}
