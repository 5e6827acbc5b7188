package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestElectsLeader(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d voters", size), func(t *testing.T) {
			start := time.Now()
			c := newTestCluster(t, size, "", 0)
			leader := c.waitLeader(5 * time.Second)
			t.Logf("%d voters: node %d elected after %v (tick %v)", size, leader, time.Since(start), testTick)

			// Every node announces the same leader once it is caught up.
			c.eventually(2*time.Second, "every node to announce the leader", func() bool {
				for _, id := range c.voters {
					sm := c.members[id].sm
					sm.mu.Lock()
					ok := len(sm.leadership) > 0 && sm.leadership[len(sm.leadership)-1].Leader == leader
					sm.mu.Unlock()
					if !ok {
						return false
					}
				}
				return true
			})
			st := c.members[leader].node.Status()
			if st.Role != "leader" || st.Leader != leader || st.Term == 0 || len(st.Voters) != size {
				t.Errorf("leader status %+v: want role leader, itself as leader and %d voters", st, size)
			}
		})
	}
}

// TestProposalsApplyInOrderOnAllNodes proposes from several goroutines at
// once: every node applies the same sequence, and each Propose returns the
// index its payload was applied at.
func TestProposalsApplyInOrderOnAllNodes(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	leader := c.waitLeader(5 * time.Second)

	const writers, each = 4, 25
	var mu sync.Mutex
	indexOf := map[string]uint64{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for _, p := range payloads(fmt.Sprintf("w%d", w), 0, each) {
				index := c.propose(leader, p)
				mu.Lock()
				indexOf[p] = index
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	want := c.members[leader].sm.payloads()
	if len(want) != writers*each {
		t.Fatalf("leader applied %d payloads, want %d", len(want), writers*each)
	}
	c.waitConverged(5*time.Second, want)
	for p, index := range indexOf {
		if got := c.members[leader].sm.indexOf(p); got != index {
			t.Errorf("Propose(%q) returned index %d, applied at %d", p, index, got)
		}
	}
	// Each writer's proposals apply in the order it made them.
	for w := range writers {
		var mine []string
		for _, p := range want {
			if p[:2] == fmt.Sprintf("w%d", w) {
				mine = append(mine, p)
			}
		}
		if wantOrder := payloads(fmt.Sprintf("w%d", w), 0, each); !slices.Equal(mine, wantOrder) {
			t.Errorf("writer %d's payloads applied as %v", w, mine)
		}
	}
}

func TestFollowerProposalFailsFast(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	leader := c.waitLeader(5 * time.Second)
	follower := (leader + 1) % 3

	start := time.Now()
	_, err := c.members[follower].node.Propose(context.Background(), []byte("x"))
	elapsed := time.Since(start)
	var nl *NotLeaderError
	if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) || nl.Leader != leader {
		t.Fatalf("Propose on follower %d: %v, want a NotLeaderError naming leader %d", follower, err, leader)
	}
	if elapsed > 50*time.Millisecond {
		t.Errorf("follower took %v to refuse", elapsed)
	}
}

// TestLeaderFailover kills the leader: the others elect a new one within
// a few election timeouts, proposals continue, and the new leader is
// announced only once it has applied everything committed before.
func TestLeaderFailover(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	old := c.waitLeader(5 * time.Second)
	want := payloads("before", 0, 10)
	for _, p := range want {
		c.propose(old, p)
	}
	c.waitConverged(5*time.Second, want)

	killed := time.Now()
	c.stop(old)
	leader := c.waitLeader(5 * time.Second)
	t.Logf("new leader %d after %v (tick %v, election timeout %d–%d ticks)",
		leader, time.Since(killed), testTick, DefaultElectionTick, 2*DefaultElectionTick)
	if leader == old {
		t.Fatalf("node %d is down but still the leader", old)
	}
	c.eventually(2*time.Second, "the new leader's announcement", func() bool {
		sm := c.members[leader].sm
		sm.mu.Lock()
		defer sm.mu.Unlock()
		return len(sm.caughtUp) > 0
	})
	sm := c.members[leader].sm
	sm.mu.Lock()
	if got := sm.caughtUp[len(sm.caughtUp)-1]; got != len(want) {
		t.Errorf("new leader announced with %d payloads applied, want all %d committed before", got, len(want))
	}
	sm.mu.Unlock()

	after := payloads("after", 0, 10)
	for _, p := range after {
		c.propose(leader, p)
	}
	want = append(want, after...)
	c.start(old)
	c.waitConverged(5*time.Second, want)
}

// TestRestartCatchesUp restarts nodes from their raftlog directories: a
// follower that was down while the others compacted past its log is
// caught up by a snapshot; a node restarted from its own snapshot
// rebuilds its state from it and the entries after it.
func TestRestartCatchesUp(t *testing.T) {
	const snapEvery = 20
	c := newTestCluster(t, 3, "", snapEvery)
	leader := c.waitLeader(5 * time.Second)
	down := (leader + 1) % 3
	want := payloads("a", 0, 30)
	for _, p := range want {
		c.propose(leader, p)
	}
	c.waitConverged(5*time.Second, want)

	c.stop(down)
	more := payloads("b", 0, 100)
	for _, p := range more {
		c.propose(leader, p)
	}
	want = append(want, more...)
	// The leader compacted beyond everything the stopped node holds.
	st := c.members[down].lastIndex
	c.eventually(5*time.Second, "the leader to compact past the stopped node", func() bool {
		first, err := c.members[leader].storage.FirstIndex()
		return err == nil && first > st+1
	})

	c.start(down)
	c.waitConverged(10*time.Second, want)
	sm := c.members[down].sm
	sm.mu.Lock()
	restores := slices.Clone(sm.restores)
	sm.mu.Unlock()
	if !slices.ContainsFunc(restores, func(i uint64) bool { return i > st }) {
		t.Errorf("node %d (log up to %d) restored only %v: it was not caught up by a snapshot", down, st, restores)
	}

	// Restart another node: it restores its own snapshot and re-applies
	// the entries after it, once each.
	other := (leader + 2) % 3
	c.stop(other)
	c.start(other)
	sm = c.members[other].sm
	sm.mu.Lock()
	if len(sm.restores) != 1 || sm.restores[0] == 0 {
		t.Errorf("node %d restarted with restores %v, want one from its own snapshot", other, sm.restores)
	}
	sm.mu.Unlock()
	c.waitConverged(5*time.Second, want)
	st2 := c.members[other].node.Status()
	if st2.SnapshotIndex == 0 || st2.Applied < st2.SnapshotIndex {
		t.Errorf("restarted node status %+v: want a snapshot and applied at or past it", st2)
	}
}

// TestPartitionedLeaderCannotCommit cuts the leader off: its pending
// proposal never commits (it fails once the healed leader learns that a
// later term's entries took its place), the majority elects a new leader
// and goes on, and after healing all converge.
func TestPartitionedLeaderCannotCommit(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	old := c.waitLeader(5 * time.Second)
	want := payloads("a", 0, 5)
	for _, p := range want {
		c.propose(old, p)
	}
	c.waitConverged(5*time.Second, want)

	c.net.isolate(old, c.voters, true)
	type outcome struct {
		index uint64
		err   error
	}
	lost := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		i, err := c.members[old].node.Propose(ctx, []byte("lost"))
		lost <- outcome{i, err}
	}()
	// A short one on the isolated leader cannot commit either.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := c.members[old].node.Propose(ctx, []byte("short"))
	cancel()
	if err == nil {
		t.Fatal("an isolated leader committed a proposal")
	}
	t.Logf("isolated leader's short proposal: %v", err)

	var majority []int32
	for _, id := range c.voters {
		if id != old {
			majority = append(majority, id)
		}
	}
	leader := c.waitLeader(5*time.Second, majority...)
	more := payloads("b", 0, 5)
	for _, p := range more {
		c.propose(leader, p)
	}
	want = append(want, more...)
	select {
	case o := <-lost:
		t.Fatalf("isolated leader's proposal returned %+v before healing", o)
	default:
	}

	c.net.isolate(old, c.voters, false)
	select {
	case o := <-lost:
		if !errors.Is(o.err, ErrProposalDropped) && !errors.Is(o.err, ErrNotLeader) {
			t.Errorf("isolated leader's proposal: %d, %v; want ErrProposalDropped", o.index, o.err)
		}
		t.Logf("isolated leader's pending proposal after healing: %v", o.err)
	case <-time.After(5 * time.Second):
		t.Fatal("isolated leader's proposal unresolved 5 s after healing")
	}
	c.waitConverged(5*time.Second, want)
	if l := c.waitLeader(5 * time.Second); l != leader {
		t.Errorf("leader %d changed to %d after healing: the returning node disrupted it", leader, l)
	}
}

// TestFiveVotersTolerateTwoFailures stops the leader and another voter:
// the remaining three elect a leader and commit. With a third down,
// nothing commits.
func TestFiveVotersTolerateTwoFailures(t *testing.T) {
	c := newTestCluster(t, 5, "", 0)
	leader := c.waitLeader(5 * time.Second)
	want := payloads("a", 0, 5)
	for _, p := range want {
		c.propose(leader, p)
	}
	c.waitConverged(5*time.Second, want)

	c.stop(leader)
	c.stop((leader + 1) % 5)
	leader = c.waitLeader(5 * time.Second)
	more := payloads("b", 0, 5)
	for _, p := range more {
		c.propose(leader, p)
	}
	want = append(want, more...)
	c.waitConverged(5*time.Second, want)

	for _, id := range c.running() {
		if id != leader {
			c.stop(id)
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if i, err := c.members[leader].node.Propose(ctx, []byte("minority")); err == nil {
		t.Fatalf("two of five voters committed a proposal at %d", i)
	}
}

// TestReadCommitted follows the log as a non-voter would: from a
// compacted index it gets the snapshot, then the entries after it.
func TestReadCommitted(t *testing.T) {
	c := newTestCluster(t, 1, "", 10)
	leader := c.waitLeader(5 * time.Second)
	want := payloads("p", 0, 35)
	for _, p := range want {
		c.propose(leader, p)
	}
	n := c.members[leader].node

	ents, first, snap, err := n.ReadCommitted(1, 0)
	if err != nil || snap == nil || ents != nil || first <= 1 {
		t.Fatalf("ReadCommitted(1) = %d entries, first %d, snapshot %d bytes, %v; want the snapshot", len(ents), first, len(snap), err)
	}
	follower := &stateMachine{t: t}
	if err := follower.restore(snap, first-1); err != nil {
		t.Fatal(err)
	}
	for next := first; ; {
		ents, first, snap, err := n.ReadCommitted(next, 64)
		if err != nil || snap != nil || first != next {
			t.Fatalf("ReadCommitted(%d) = first %d, snapshot %d bytes, %v", next, first, len(snap), err)
		}
		if len(ents) == 0 {
			break
		}
		if len(ents) > 4 {
			t.Errorf("ReadCommitted(%d, 64 bytes) returned %d entries", next, len(ents))
		}
		for i, e := range ents {
			if e != nil {
				_ = follower.apply(first+uint64(i), e)
			}
		}
		next += uint64(len(ents))
	}
	if got := follower.payloads(); !slices.Equal(got, want) {
		t.Errorf("follower rebuilt %v, want %v", got, want)
	}
}

// TestStatusReportsVoters checks the leader's view of the quorum.
func TestStatusReportsVoters(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	leader := c.waitLeader(5 * time.Second)
	index := c.propose(leader, "x")
	c.eventually(2*time.Second, "every voter to match the proposal", func() bool {
		st := c.members[leader].node.Status()
		if len(st.Voters) != 3 {
			return false
		}
		for _, v := range st.Voters {
			if v.Match < index || !v.Active || time.Since(v.LastContact) > time.Second {
				return false
			}
		}
		return st.Commit >= index && st.Applied >= index
	})
	follower := c.members[(leader+1)%3].node.Status()
	if follower.Role != "follower" || follower.Leader != leader || follower.Voters != nil {
		t.Errorf("follower status %+v", follower)
	}
}

func TestCloseFailsWaitingProposals(t *testing.T) {
	c := newTestCluster(t, 3, "", 0)
	leader := c.waitLeader(5 * time.Second)
	for _, id := range c.voters {
		if id != leader {
			c.stop(id)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.members[leader].node.Propose(context.Background(), []byte("never"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.stop(leader)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) && !errors.Is(err, ErrNotLeader) {
			t.Errorf("proposal waiting at Close: %v, want ErrStopped", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("proposal still waiting after Close")
	}
}

// TestApplyErrorStopsNode: a state machine that cannot apply an entry
// stops the Node, which reports why.
func TestApplyErrorStopsNode(t *testing.T) {
	c := newTestCluster(t, 1, "", 0)
	m := c.members[c.waitLeader(5*time.Second)]
	m.sm.mu.Lock()
	m.sm.failOn = "poison"
	m.sm.mu.Unlock()
	if _, err := m.node.Propose(context.Background(), []byte("poison")); !errors.Is(err, ErrStopped) {
		t.Errorf("Propose of an entry Apply refuses: %v, want ErrStopped", err)
	}
	select {
	case <-m.node.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("node still running")
	}
	if err := m.node.Err(); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Err() = %v, want the Apply error", err)
	}
	if _, err := m.node.Propose(context.Background(), []byte("x")); err == nil {
		t.Error("a stopped node accepted a proposal")
	}
	if err := m.node.Close(); err == nil {
		t.Error("Close did not report the error that stopped the node")
	}
	c.mu.Lock()
	m.node = nil // stopped already; the harness must not report it again
	c.mu.Unlock()
	_ = m.storage.Close()
}
