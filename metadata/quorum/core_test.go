package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// coreSim hosts Cores in one goroutine over raft.MemoryStorage: the
// simulator's job in miniature. Messages go through proto encoding, as on
// a real network, and are delivered in FIFO order; drop decides which are
// lost.
type coreSim struct {
	t       *testing.T
	cores   map[int32]*Core
	stores  map[int32]*raft.MemoryStorage
	queue   []*pb.Message
	drop    func(m *pb.Message) bool
	trace   []string
	applied map[int32][]string
	results map[int32][]Result
}

func newCoreSim(t *testing.T, voters []int32) *coreSim {
	s := &coreSim{
		t:       t,
		cores:   map[int32]*Core{},
		stores:  map[int32]*raft.MemoryStorage{},
		applied: map[int32][]string{},
		results: map[int32][]Result{},
	}
	for _, id := range voters {
		st := raft.NewMemoryStorage()
		c, err := NewCore(CoreConfig{ID: id, Voters: voters, Storage: st})
		if err != nil {
			t.Fatal(err)
		}
		s.cores[id], s.stores[id] = c, st
	}
	// Persist and apply the bootstrap configuration: raft refuses to
	// campaign while committed configuration changes are unapplied.
	s.settle()
	return s
}

// handle carries out id's Readies, in the order Ready documents.
func (s *coreSim) handle(id int32) {
	c, st := s.cores[id], s.stores[id]
	for range 100 {
		if !c.HasReady() {
			return
		}
		rd, err := c.Ready()
		if err != nil {
			s.t.Fatalf("node %d: %v", id, err)
		}
		if rd.Snapshot != nil {
			if err := st.ApplySnapshot(rd.Snapshot); err != nil {
				s.t.Fatal(err)
			}
		}
		if err := st.Append(rd.Entries); err != nil {
			s.t.Fatal(err)
		}
		if rd.HardState != nil {
			if err := st.SetHardState(rd.HardState); err != nil {
				s.t.Fatal(err)
			}
		}
		for _, m := range rd.Messages {
			b, err := proto.Marshal(m)
			if err != nil {
				s.t.Fatal(err)
			}
			wire := new(pb.Message)
			if err := proto.Unmarshal(b, wire); err != nil {
				s.t.Fatal(err)
			}
			s.queue = append(s.queue, wire)
		}
		for _, e := range rd.Committed {
			s.applied[id] = append(s.applied[id], string(e.Data))
		}
		s.results[id] = append(s.results[id], rd.Results...)
		s.trace = append(s.trace, describeReady(id, rd))
		if err := c.Advance(); err != nil {
			s.t.Fatal(err)
		}
	}
	s.t.Fatalf("node %d: Readies do not stop", id)
}

// settle handles every Ready and delivers every message until quiet.
func (s *coreSim) settle() {
	for range 10000 {
		for _, id := range s.ids() {
			s.handle(id)
		}
		if len(s.queue) == 0 {
			return
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		if s.drop != nil && s.drop(m) {
			continue
		}
		to := nodeID(m.GetTo())
		if err := s.cores[to].Step(m); err != nil {
			s.t.Fatalf("node %d stepping %s: %v", to, m.GetType(), err)
		}
	}
	s.t.Fatal("the simulation does not settle")
}

func (s *coreSim) ids() []int32 {
	var ids []int32
	for id := range s.cores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *coreSim) propose(id int32, payload string) ProposalID {
	p, err := s.cores[id].Propose([]byte(payload))
	if err != nil {
		s.t.Fatalf("propose %q on node %d: %v", payload, id, err)
	}
	return p
}

func describeReady(id int32, rd Ready) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %d:", id)
	if rd.HardState != nil {
		fmt.Fprintf(&b, " hs=%s", raft.DescribeHardState(rd.HardState))
	}
	for _, e := range rd.Entries {
		fmt.Fprintf(&b, " ent=%d/%d/%s/%x", e.GetIndex(), e.GetTerm(), e.GetType(), e.GetData())
	}
	if rd.Snapshot != nil {
		fmt.Fprintf(&b, " snap=%d", rd.Snapshot.GetMetadata().GetIndex())
	}
	fmt.Fprintf(&b, " sync=%v", rd.MustSync)
	for _, m := range rd.Messages {
		fmt.Fprintf(&b, " msg=%s", raft.DescribeMessage(m, nil))
	}
	for _, c := range rd.Committed {
		fmt.Fprintf(&b, " commit=%d/%d/%q", c.Index, c.Term, c.Data)
	}
	fmt.Fprintf(&b, " applied=%d", rd.AppliedIndex)
	for _, r := range rd.Results {
		fmt.Fprintf(&b, " result=%v/%d/%v", r.ID, r.Index, r.Err)
	}
	if rd.Leadership != nil {
		fmt.Fprintf(&b, " leadership=%+v", *rd.Leadership)
	}
	return b.String()
}

// runScript drives three Cores through an election, proposals, a
// partition of the leader with a proposal it cannot commit, a forced
// election on the majority side and healing — with no clock, goroutine or
// randomness: followers are never ticked, so raft's random election
// timeout never matters.
func runScript(t *testing.T) *coreSim {
	s := newCoreSim(t, []int32{0, 1, 2})
	if err := s.cores[0].Campaign(); err != nil {
		t.Fatal(err)
	}
	s.settle()
	for _, p := range []string{"p1", "p2", "p3"} {
		s.propose(0, p)
	}
	s.settle()
	for range 3 {
		s.cores[0].Tick()
		s.settle()
	}

	// Cut node 0 off; its proposal cannot commit.
	isolated := func(m *pb.Message) bool { return m.GetTo() == raftID(0) || m.GetFrom() == raftID(0) }
	s.drop = isolated
	lost := s.propose(0, "lost")
	s.settle()
	// Node 1 takes over: a MsgTimeoutNow (as a leadership transfer would
	// send) makes it campaign past node 2's leader lease.
	term := s.cores[0].Status().Term
	s.queue = append(s.queue, &pb.Message{Type: pb.MsgTimeoutNow.Enum(), From: new(raftID(0)), To: new(raftID(1)), Term: new(term)})
	s.drop = func(m *pb.Message) bool { return isolated(m) && m.GetType() != pb.MsgTimeoutNow }
	s.settle()
	s.drop = isolated
	s.propose(1, "q1")
	s.settle()

	// Heal: node 1's heartbeat brings node 0 back as a follower, which
	// learns that its proposal lost.
	s.drop = nil
	s.cores[1].Tick()
	s.settle()

	if !slices.ContainsFunc(s.results[0], func(r Result) bool { return r.ID == lost && errors.Is(r.Err, ErrProposalDropped) }) {
		t.Errorf("node 0's isolated proposal %v not dropped: results %v", lost, s.results[0])
	}
	return s
}

// TestCoreIsDeterministic runs the same script twice: the Ready sequences
// are identical, and every node applied the same payloads.
func TestCoreIsDeterministic(t *testing.T) {
	a, b := runScript(t), runScript(t)
	if !slices.Equal(a.trace, b.trace) {
		for i := range min(len(a.trace), len(b.trace)) {
			if a.trace[i] != b.trace[i] {
				t.Fatalf("Ready %d differs:\n%s\n%s", i, a.trace[i], b.trace[i])
			}
		}
		t.Fatalf("%d Readies then %d", len(a.trace), len(b.trace))
	}
	want := []string{"p1", "p2", "p3", "q1"}
	for id, got := range a.applied {
		if !slices.Equal(got, want) {
			t.Errorf("node %d applied %q, want %q", id, got, want)
		}
	}
	if a.cores[1].Leader() != 1 || a.cores[0].Leader() != 1 || a.cores[0].IsLeader() {
		t.Errorf("leaders after healing: %d %d %d, want 1", a.cores[0].Leader(), a.cores[1].Leader(), a.cores[2].Leader())
	}
	t.Logf("%d Readies, identical in both runs", len(a.trace))
}

// TestCoreResultsAndLeadership checks proposal results and the delayed
// announcement of a new leader.
func TestCoreResultsAndLeadership(t *testing.T) {
	s := newCoreSim(t, []int32{0, 1, 2})
	if err := s.cores[0].Campaign(); err != nil {
		t.Fatal(err)
	}
	// Node 0 has won the vote once it has stepped the responses; its
	// empty entry of the new term is not applied yet.
	for s.cores[0].Status().Role != "leader" {
		for _, id := range s.ids() {
			s.handle(id)
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		if err := s.cores[nodeID(m.GetTo())].Step(m); err != nil {
			t.Fatal(err)
		}
	}
	mark := len(s.trace)
	s.handle(0)
	if len(s.trace) == mark || strings.Contains(s.trace[mark], "leadership={Leader:0 ") {
		t.Errorf("node 0's first Ready as leader announced itself before applying an entry of its term: %v", s.trace[mark:])
	}
	s.settle()
	if got := s.cores[0].Leader(); got != 0 {
		t.Fatalf("leader %d, want 0", got)
	}
	var announced bool
	for _, line := range s.trace {
		if strings.HasPrefix(line, "node 0:") && strings.Contains(line, "leadership={Leader:0 ") {
			announced = true
		}
	}
	if !announced {
		t.Errorf("node 0 never announced itself:\n%s", strings.Join(s.trace, "\n"))
	}

	id := s.propose(0, "x")
	s.settle()
	if r := s.results[0]; len(r) != 1 || r[0].ID != id || r[0].Err != nil || r[0].Index == 0 {
		t.Errorf("results %+v, want %v committed", r, id)
	}

	// A follower refuses with the leader's id.
	_, err := s.cores[1].Propose([]byte("y"))
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != 0 {
		t.Errorf("follower Propose: %v, want NotLeaderError{0}", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, nil},
		{"too large", make([]byte, MaxProposalBytes+1), ErrTooLarge},
	} {
		if _, err := s.cores[0].Propose(tc.data); err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Propose(%s): %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestBootstrapIsIdentical: voters given the same set in any order write
// byte-identical bootstrap entries and hard state.
func TestBootstrapIsIdentical(t *testing.T) {
	first := func(voters []int32, id int32) ([]byte, *pb.ConfState) {
		st := raft.NewMemoryStorage()
		c, err := NewCore(CoreConfig{ID: id, Voters: voters, Storage: st})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := c.Ready()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, e := range rd.Entries {
			enc, _ := proto.Marshal(e)
			b.Write(enc)
		}
		enc, _ := proto.Marshal(rd.HardState)
		b.Write(enc)
		if err := c.Advance(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), c.ConfState()
	}
	a, csA := first([]int32{0, 1, 2}, 0)
	b, csB := first([]int32{2, 0, 1}, 2)
	if !bytes.Equal(a, b) {
		t.Error("bootstrap entries differ between voters")
	}
	if err := csA.Equivalent(csB); err != nil || len(csA.GetVoters()) != 3 {
		t.Errorf("bootstrap configurations %v and %v: %v", csA, csB, err)
	}
}

func TestNewCoreRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     int32
		voters []int32
	}{
		{"no voters", 0, nil},
		{"not a voter", 3, []int32{0, 1, 2}},
		{"duplicate", 0, []int32{0, 1, 1}},
		{"negative", -1, []int32{-1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCore(CoreConfig{ID: tc.id, Voters: tc.voters, Storage: raft.NewMemoryStorage()}); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := NewCore(CoreConfig{ID: 0, Voters: []int32{0}, Storage: raft.NewMemoryStorage(), Applied: 5}); err == nil {
		t.Error("accepted an applied index for an empty storage")
	}
}

func TestCoreRefusesBadMessages(t *testing.T) {
	c, err := NewCore(CoreConfig{ID: 0, Voters: []int32{0, 1, 2}, Storage: raft.NewMemoryStorage()})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(typ pb.MessageType, from, to uint64) *pb.Message {
		return &pb.Message{Type: typ.Enum(), From: new(from), To: new(to), Term: new(uint64(1))}
	}
	for _, tc := range []struct {
		name string
		m    *pb.Message
		ok   bool
	}{
		{"nil", nil, false},
		{"to another node", msg(pb.MsgHeartbeat, raftID(1), raftID(2)), false},
		{"from a non-voter", msg(pb.MsgHeartbeat, raftID(7), raftID(0)), false},
		{"from itself", msg(pb.MsgHeartbeat, raftID(0), raftID(0)), false},
		{"from raft's none", msg(pb.MsgHeartbeat, 0, raftID(0)), false},
		{"a forged proposal", &pb.Message{Type: pb.MsgProp.Enum(), From: new(raftID(1)), To: new(raftID(0)),
			Entries: []*pb.Entry{{Type: pb.EntryConfChange.Enum(), Data: []byte("garbage")}}}, false},
		{"a local message", msg(pb.MsgHup, raftID(1), raftID(0)), false},
		{"a heartbeat", msg(pb.MsgHeartbeat, raftID(1), raftID(0)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Step(tc.m)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrBadMessage)) {
				t.Errorf("Step: %v", err)
			}
		})
	}
	if c.Err() != nil {
		t.Errorf("refused messages broke the core: %v", c.Err())
	}
}

// TestCoreFailsOnCorruptEntry: a committed entry this package did not
// write stops the Core with an error instead of a panic.
func TestCoreFailsOnCorruptEntry(t *testing.T) {
	st := raft.NewMemoryStorage()
	c, err := NewCore(CoreConfig{ID: 0, Voters: []int32{0}, Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	s := &coreSim{t: t, cores: map[int32]*Core{0: c}, stores: map[int32]*raft.MemoryStorage{0: st},
		applied: map[int32][]string{}, results: map[int32][]Result{}}
	s.settle()
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	s.settle()
	// Bypass the Core's header, as a foreign writer would.
	if err := c.rn.Propose([]byte("no header")); err != nil {
		t.Fatal(err)
	}
	var rerr error
	for range 10 {
		if !c.HasReady() {
			break
		}
		var rd Ready
		if rd, rerr = c.Ready(); rerr != nil {
			break
		}
		_ = st.Append(rd.Entries)
		if rd.HardState != nil {
			_ = st.SetHardState(rd.HardState)
		}
		_ = c.Advance()
	}
	if !errors.Is(rerr, ErrCorruptEntry) || !errors.Is(c.Err(), ErrCoreFailed) {
		t.Fatalf("Ready: %v, core error %v; want ErrCorruptEntry, sticky", rerr, c.Err())
	}
	if _, err := c.Propose([]byte("x")); !errors.Is(err, ErrCoreFailed) {
		t.Errorf("Propose after failure: %v", err)
	}
}
