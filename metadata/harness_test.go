package metadata

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// raftJournal stands in for the raft quorum: Append hands the batch to an
// apply loop on another goroutine, as a raft node's Ready loop would, and
// returns once the loop has applied it through the hook. Each batch is
// one log entry with its own index. A follower journal refuses to
// propose.
type raftJournal struct {
	mu       sync.Mutex
	apply    ApplyFunc
	follower bool
	index    int64
	log      [][]Record // every committed batch, for determinism checks
	entries  chan entry
	done     chan struct{}
}

type entry struct {
	index int64
	recs  []Record
	res   chan error
}

func newRaftJournal(t *testing.T) *raftJournal {
	j := &raftJournal{entries: make(chan entry), done: make(chan struct{})}
	go func() {
		defer close(j.done)
		for e := range j.entries {
			j.mu.Lock()
			apply := j.apply
			j.mu.Unlock()
			e.res <- apply(e.index, e.recs)
		}
	}()
	t.Cleanup(func() { close(j.entries); <-j.done })
	return j
}

func (j *raftJournal) SetApply(fn ApplyFunc) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.apply = fn
}

func (j *raftJournal) Append(recs []Record) (int64, error) {
	j.mu.Lock()
	if j.follower {
		j.mu.Unlock()
		return 0, fmt.Errorf("raft: not the leader: %w", ErrNotController)
	}
	j.index++
	e := entry{index: j.index, recs: recs, res: make(chan error, 1)}
	j.log = append(j.log, recs)
	j.mu.Unlock()
	j.entries <- e
	return e.index, <-e.res
}

func (j *raftJournal) Replay(func(int64, Record) error) error { return nil }
func (j *raftJournal) Close() error                           { return nil }

func (j *raftJournal) setFollower(f bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.follower = f
}

// memJournal is a Journal without CommitHook: the controller applies
// after Append, the path the wire package's fake takes.
type memJournal struct {
	mu   sync.Mutex
	recs []Record
}

func (j *memJournal) Append(recs []Record) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, recs...)
	return int64(len(j.recs) - 1), nil
}

func (j *memJournal) Replay(fn func(int64, Record) error) error {
	for i, r := range j.recs {
		if err := fn(int64(i), r); err != nil {
			return err
		}
	}
	return nil
}

func (j *memJournal) Close() error { return nil }

// testCluster is an active controller (node 1) over a raftJournal, with
// brokers registered and unfenced.
type testCluster struct {
	t   *testing.T
	c   *Controller
	j   *raftJournal
	now int64
	gen map[int32]byte // each broker's incarnation generation
}

func newTestCluster(t *testing.T, d Defaults, brokers ...int32) *testCluster {
	t.Helper()
	j := newRaftJournal(t)
	c, err := NewController(j, 1, "test-cluster", d, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	c.Resign()
	if err := c.BecomeActive(0); err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, c: c, j: j, gen: map[int32]byte{}}
	for _, id := range brokers {
		tc.start(id)
	}
	return tc
}

func incarnation(id int32, gen byte) IncarnationID { return IncarnationID{byte(id), gen, 0xaa} }

// start registers a new incarnation of broker id and heartbeats it,
// caught up, so that it is unfenced.
func (tc *testCluster) start(id int32) {
	tc.t.Helper()
	tc.gen[id]++
	if _, err := tc.c.RegisterBrokerIncarnation(tc.registration(id), tc.now); err != nil {
		tc.t.Fatalf("register broker %d: %v", id, err)
	}
	tc.heartbeat(id, false)
}

func (tc *testCluster) registration(id int32) BrokerRegistration {
	return BrokerRegistration{
		ID: id, Incarnation: incarnation(id, tc.gen[id]), ClusterID: "test-cluster",
		Host: fmt.Sprintf("10.0.0.%d", id), Port: 9092, ControllerAddr: fmt.Sprintf("10.0.0.%d:9093", id),
		Roles: RoleBroker,
	}
}

// heartbeat sends a caught-up heartbeat and returns whether the broker is
// fenced.
func (tc *testCluster) heartbeat(id int32, wantFence bool) bool {
	tc.t.Helper()
	fenced, err := tc.c.BrokerHeartbeat(id, incarnation(id, tc.gen[id]), tc.c.Image().Offset, wantFence, tc.now)
	if err != nil {
		tc.t.Fatalf("heartbeat broker %d: %v", id, err)
	}
	return fenced
}

func (tc *testCluster) createTopic(name string, configs map[string]*string, assignment ...[]int32) {
	tc.t.Helper()
	if err := tc.c.CreateTopics([]CreateTopic{{Name: name, NumPartitions: -1, ReplicationFactor: -1, Assignment: assignment, Configs: configs}}, false)[0]; err != nil {
		tc.t.Fatalf("create topic %s: %v", name, err)
	}
}

func (tc *testCluster) part(topic string, p int32) Partition {
	tc.t.Helper()
	pp, ok := tc.c.Image().Partition(topic, p)
	if !ok {
		tc.t.Fatalf("no partition %s/%d", topic, p)
	}
	return *pp
}

func (tc *testCluster) fenced(id int32) bool {
	b, ok := tc.c.Image().Broker(id)
	return !ok || b.Fenced
}

// wantErr fails unless err is nil (want nil) or wraps want.
func wantErr(t *testing.T, what string, err error, want *kerr.Error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// wantState checks a partition's leader, ISR and epochs.
func wantState(t *testing.T, what string, p Partition, leader int32, isr []int32, leaderEpoch, partitionEpoch int32) {
	t.Helper()
	if p.Leader != leader || !slices.Equal(p.ISR, isr) || p.LeaderEpoch != leaderEpoch || p.PartitionEpoch != partitionEpoch {
		t.Fatalf("%s: leader %d isr %v epochs %d/%d; want leader %d isr %v epochs %d/%d",
			what, p.Leader, p.ISR, p.LeaderEpoch, p.PartitionEpoch, leader, isr, leaderEpoch, partitionEpoch)
	}
}
