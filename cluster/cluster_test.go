package cluster

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/cluster/config"
)

// testCluster is n nodes started in-process, each with its own data
// directory, Kafka listener and controller listener on 127.0.0.1, all
// voters of the metadata quorum (process.roles=broker,controller).
type testCluster struct {
	t     testing.TB
	nodes []*testNode // index i is node.id i+1; nil while stopped
	dirs  []string
	args  [][]string
}

// freePorts reserves n distinct free loopback ports (listen, note, close).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster starts an n-node cluster with the given extra overrides
// and waits until every node is registered and unfenced.
func startCluster(t testing.TB, n int, overrides ...string) *testCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var voters []string
	for i := 0; i < n; i++ {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, ports[n+i]))
	}
	tc := &testCluster{t: t, nodes: make([]*testNode, n)}
	for i := 0; i < n; i++ {
		args := append([]string{
			"node.id=" + strconv.Itoa(i+1),
			"process.roles=broker,controller",
			fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", ports[i], ports[n+i]),
			"controller.listener.names=CONTROLLER",
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"broker.heartbeat.interval.ms=200",
			"broker.session.timeout.ms=3000",
			"controller.quorum.election.timeout.ms=500",
		}, overrides...)
		tc.args = append(tc.args, args)
		tc.dirs = append(tc.dirs, t.TempDir())
	}
	for i := 0; i < n; i++ {
		tc.start(i + 1)
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i + 1)
		}
	})
	tc.waitBrokers(n)
	return tc
}

func (tc *testCluster) start(id int) {
	tc.t.Helper()
	tn := &testNode{t: tc.t, dir: tc.dirs[id-1], args: tc.args[id-1]}
	cfg, err := config.Load("", append([]string{"log.dirs=" + tn.dir}, tn.args...))
	if err != nil {
		tc.t.Fatalf("config of node %d: %v", id, err)
	}
	nd, err := Start(cfg, testLogger().With("node", id))
	if err != nil {
		tc.t.Fatalf("start node %d: %v", id, err)
	}
	tn.node = nd
	tc.nodes[id-1] = tn
}

func (tc *testCluster) stop(id int) {
	if tn := tc.nodes[id-1]; tn != nil {
		tn.stop()
		tc.nodes[id-1] = nil
	}
}

// node returns a running node.
func (tc *testCluster) node(id int) *testNode { return tc.nodes[id-1] }

// bootstrap lists the running nodes' Kafka addresses.
func (tc *testCluster) bootstrap() []string {
	var out []string
	for _, tn := range tc.nodes {
		if tn != nil {
			out = append(out, tn.addr())
		}
	}
	return out
}

func (tc *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	tc.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tc.bootstrap()...), kgo.RetryTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(cl.Close)
	return cl
}

// waitBrokers waits until every running node's image has n unfenced
// brokers.
func (tc *testCluster) waitBrokers(n int) {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, tn := range tc.nodes {
			if tn == nil {
				continue
			}
			live := 0
			for _, b := range tn.node.Image().Brokers {
				if !b.Fenced {
					live++
				}
			}
			if live != n {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for i, tn := range tc.nodes {
				if tn != nil {
					desc = append(desc, fmt.Sprintf("node %d: %+v", i+1, tn.node.Image().Brokers))
				}
			}
			tc.t.Fatalf("cluster never had %d live brokers: %v", n, desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// controller returns the id of the active controller, waiting for one.
func (tc *testCluster) controller() int {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for i, tn := range tc.nodes {
			if tn != nil && tn.node.controller.Active() {
				return i + 1
			}
		}
		if time.Now().After(deadline) {
			tc.t.Fatal("no active controller")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterFormsAndFailsOver: three nodes elect a controller, register,
// and create a topic through any node; when the controller dies another
// takes over, fences the dead node and moves its partitions' leadership.
func TestClusterFormsAndFailsOver(t *testing.T) {
	tc := startCluster(t, 3)
	ctrl := tc.controller()

	// Create through a node that is not the controller: forwarded.
	other := ctrl%3 + 1
	adm := kadm.NewClient(tc.node(other).client())
	resp, err := adm.CreateTopic(ctxT(t), 6, 3, nil, "replicated")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	// Every node learns it; leaders are spread over the three nodes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := 0
		for _, tn := range tc.nodes {
			if tp := tn.node.Image().Topic("replicated"); tp != nil && len(tp.Partitions) == 6 {
				seen++
			}
		}
		if seen == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic reached %d of 3 nodes", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	leaders := map[int32]int{}
	for _, p := range tc.node(1).node.Image().Topic("replicated").Partitions {
		leaders[p.Leader]++
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Fatalf("partition %d: replicas %v isr %v", p.Index, p.Replicas, p.ISR)
		}
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders not spread: %v", leaders)
	}

	// Kill the controller: another node takes over and fences it.
	tc.stop(ctrl)
	newCtrl := tc.controller()
	if newCtrl == ctrl {
		t.Fatalf("controller %d still active after stopping", ctrl)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		img := tc.node(newCtrl).node.Image()
		b, _ := img.Broker(int32(ctrl))
		moved := true
		for _, p := range img.Topic("replicated").Partitions {
			if p.Leader == int32(ctrl) || p.Leader < 0 {
				moved = false
			}
		}
		if b.Fenced && moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped node %d: fenced=%v; partitions %+v", ctrl, b.Fenced, img.Topic("replicated").Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The node comes back, re-registers and is unfenced.
	tc.start(ctrl)
	tc.waitBrokers(3)
}

// TestClusterRoles: a node with process.roles=broker follows the metadata
// log without voting, registers and hosts partitions; a node with
// process.roles=controller votes but is never a broker.
func TestClusterRoles(t *testing.T) {
	ports := freePorts(t, 8)
	voters := fmt.Sprintf("1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", ports[4], ports[5], ports[6])
	tc := &testCluster{t: t, nodes: make([]*testNode, 4)}
	for i := 0; i < 4; i++ {
		roles := "broker,controller"
		listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", ports[i], ports[4+i])
		switch i {
		case 2:
			roles = "controller"
		case 3:
			roles = "broker"
			listeners = fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", ports[i])
		}
		tc.args = append(tc.args, []string{
			"node.id=" + strconv.Itoa(i+1), "process.roles=" + roles, "listeners=" + listeners,
			"controller.listener.names=CONTROLLER", "controller.quorum.voters=" + voters,
			"broker.heartbeat.interval.ms=200", "controller.quorum.election.timeout.ms=500",
		})
		tc.dirs = append(tc.dirs, t.TempDir())
	}
	for i := 1; i <= 4; i++ {
		tc.start(i)
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i + 1)
		}
	})
	// Brokers: 1, 2 and 4; node 3 only votes.
	tc.waitBrokers(3)
	img := tc.node(4).node.Image()
	for _, id := range []int32{1, 2, 4} {
		if b, ok := img.Broker(id); !ok || b.Fenced {
			t.Fatalf("broker %d missing or fenced on the non-voting node: %+v", id, img.Brokers)
		}
	}
	if _, ok := img.Broker(3); ok {
		t.Fatalf("controller-only node 3 registered as a broker: %+v", img.Brokers)
	}
	// The non-voting broker forwards a topic creation and hosts replicas.
	resp, err := kadm.NewClient(tc.node(4).client()).CreateTopic(ctxT(t), 3, 3, nil, "roles")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic through the non-voting broker: %v %v", err, resp.Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tc.node(4).node.Image().Topic("roles") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the non-voting broker never learned the topic")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range tc.node(4).node.Image().Topic("roles").Partitions {
		if !slices.Contains(p.Replicas, 4) || slices.Contains(p.Replicas, 3) {
			t.Fatalf("partition %d replicas %v: want brokers 1, 2, 4", p.Index, p.Replicas)
		}
	}
}

// TestClusterOneVoter: controller.quorum.voters with a single voter is a
// cluster of one: it elects itself at once and serves like a single node.
func TestClusterOneVoter(t *testing.T) {
	tc := startCluster(t, 1)
	cl := tc.client()
	resp, err := kadm.NewClient(cl).CreateTopic(ctxT(t), 2, 1, nil, "solo")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	produceN(t, cl, "solo", 100, "s")
	cons := tc.client(kgo.ConsumeTopics("solo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	requireExactlyOnce(t, consumeAll(t, cons, 100), 100)
}

// TestClusterFiveVoters: five voters tolerate two failures, the active
// controller among them: the three left elect a controller, fence the two
// and keep serving metadata commands.
func TestClusterFiveVoters(t *testing.T) {
	tc := startCluster(t, 5)
	ctrl := tc.controller()
	other := ctrl%5 + 1
	tc.stop(ctrl)
	tc.stop(other)
	survivor := other%5 + 1
	if survivor == ctrl {
		survivor = survivor%5 + 1
	}
	newCtrl := tc.controller()
	if newCtrl == ctrl || newCtrl == other {
		t.Fatalf("controller %d is a stopped node", newCtrl)
	}
	resp, err := kadm.NewClient(tc.node(survivor).client()).CreateTopic(ctxT(t), 3, 3, nil, "five")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic with two of five voters down: %v %v", err, resp.Err)
	}
	tc.waitBrokers(3)
}
