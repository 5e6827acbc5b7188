package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// groupNodeOverrides make group tests quick: no initial rebalance delay,
// and session timeouts a test can wait out.
var groupNodeOverrides = []string{
	"group.initial.rebalance.delay.ms=0",
	"group.min.session.timeout.ms=500",
	"group.consumer.session.timeout.ms=3000",
	"group.consumer.heartbeat.interval.ms=250",
	"offsets.topic.num.partitions=5",
}

// groupProtocol is one way a franz-go consumer can be a group member.
type groupProtocol struct {
	name string
	opts []kgo.Opt
}

var groupProtocols = []groupProtocol{
	{"eager-range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
	{"cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	{"kip848", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}},
}

// member is one group consumer under test: it records what it owns (from
// the assignment callbacks) and every record it reads.
type member struct {
	name string
	cl   *kgo.Client
	mu   sync.Mutex
	own  map[int32]bool
	seen []string

	stop chan struct{}
	done chan struct{}
}

func (m *member) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.own {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func (m *member) values() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

// startMember starts a consumer of topic in group and a goroutine polling
// it until close.
func startMember(t testing.TB, tn *testNode, name, grp, topic string, opts ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, own: map[int32]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	add := func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range a[topic] {
			m.own[p] = true
		}
	}
	lost := func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range a[topic] {
			delete(m.own, p)
		}
	}
	// A revoke commits what was read first (setting the callback replaces
	// kgo's own commit-on-revoke), so that the next owner resumes there.
	remove := func(ctx context.Context, cl *kgo.Client, a map[string][]int32) {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Logf("%s: commit on revoke: %v", name, err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range a[topic] {
			delete(m.own, p)
		}
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(tn.addr()), kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic), kgo.ClientID(name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.SessionTimeout(3 * time.Second), kgo.HeartbeatInterval(250 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.RetryTimeout(10 * time.Second),
		kgo.OnPartitionsAssigned(add), kgo.OnPartitionsRevoked(remove), kgo.OnPartitionsLost(lost),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			// Record what was polled before looking at stop: the client
			// commits polled records when it leaves, so a batch dropped
			// here would be read by nobody.
			m.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { m.seen = append(m.seen, string(r.Value)) })
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			default:
			}
			if fs.IsClientClosed() {
				return
			}
		}
	}()
	t.Cleanup(m.close)
	return m
}

// close leaves the group (committing what it read) and stops the client.
func (m *member) close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.done
	m.cl.Close()
}

// waitBalanced waits until the members together own all n partitions,
// each exactly once, with sizes differing by at most one.
func waitBalanced(t testing.TB, n int32, members ...*member) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		owner := map[int32]string{}
		ok := true
		lo, hi := int(n), 0
		for _, m := range members {
			ps := m.owned()
			lo, hi = min(lo, len(ps)), max(hi, len(ps))
			for _, p := range ps {
				if prev, dup := owner[p]; dup {
					ok = false
					_ = prev
				}
				owner[p] = m.name
			}
		}
		if ok && int32(len(owner)) == n && hi-lo <= 1 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, m := range members {
				desc = append(desc, fmt.Sprintf("%s=%v", m.name, m.owned()))
			}
			t.Fatalf("group never balanced over %d partitions: %v", n, desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitConsumed waits until the members together have read every value in
// want at least once.
func waitConsumed(t testing.TB, want map[string]bool, members ...*member) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		got := map[string]bool{}
		for _, m := range members {
			for _, v := range m.values() {
				got[v] = true
			}
		}
		for v := range want {
			if !got[v] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records never consumed", missing, len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func values(prefix string, n int) map[string]bool {
	m := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("%s-%d", prefix, i)] = true
	}
	return m
}

// TestGroupSplitLeaveRejoin: three consumers of one group split the
// partitions; when one leaves its partitions move to the others; a second
// group reads everything on its own (pub-sub).
func TestGroupSplitLeaveRejoin(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	for _, gp := range groupProtocols {
		t.Run(gp.name, func(t *testing.T) {
			topic := "split-" + gp.name
			tn.createTopic(topic, 6, nil)
			prod := tn.client()
			produceN(t, prod, topic, 300, "a")
			grp := "g-" + gp.name
			m1 := startMember(t, tn, "m1", grp, topic, gp.opts...)
			m2 := startMember(t, tn, "m2", grp, topic, gp.opts...)
			m3 := startMember(t, tn, "m3", grp, topic, gp.opts...)
			waitBalanced(t, 6, m1, m2, m3)
			waitConsumed(t, values("a", 300), m1, m2, m3)
			requireGroupMembers(t, tn, grp, gp.name == "kip848", 3)

			m3.close()
			waitBalanced(t, 6, m1, m2)
			produceN(t, prod, topic, 300, "b")
			waitConsumed(t, values("b", 300), m1, m2)

			// Another group reads everything independently.
			other := startMember(t, tn, "o1", grp+"-other", topic, gp.opts...)
			waitConsumed(t, values("a", 300), other)
			waitConsumed(t, values("b", 300), other)
		})
	}
}

// requireGroupMembers checks that the broker sees group grp with n
// members, as a KIP-848 consumer group or a classic one: the protocol the
// clients asked for is the one they got.
func requireGroupMembers(t testing.TB, tn *testNode, grp string, consumerProtocol bool, n int) {
	t.Helper()
	adm := tn.admin()
	if consumerProtocol {
		d, err := adm.DescribeConsumerGroups(ctxT(t), grp)
		if err != nil {
			t.Fatal(err)
		}
		if g := d[grp]; g.Err != nil || len(g.Members) != n || g.State != "Stable" {
			t.Fatalf("consumer group %s: %v, state %s, %d members, want Stable with %d", grp, g.Err, g.State, len(g.Members), n)
		}
		return
	}
	d, err := adm.DescribeGroups(ctxT(t), grp)
	if err != nil {
		t.Fatal(err)
	}
	if g := d[grp]; g.Err != nil || len(g.Members) != n || g.State != "Stable" {
		t.Fatalf("classic group %s: %v, state %s, %d members, want Stable with %d", grp, g.Err, g.State, len(g.Members), n)
	}
}

// rawMember joins a classic group by hand (KIP-394 two-step join) and
// then never heartbeats, as a consumer that hung would.
func rawJoin(ctx context.Context, cl *kgo.Client, grp, topic string) (string, error) {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = grp, 1000, 10000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	for i := 0; i < 2; i++ {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return "", err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err == kerr.MemberIDRequired {
			req.MemberID = resp.MemberID
			continue
		} else if err != nil {
			return "", err
		}
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.Generation, sync.MemberID = grp, resp.Generation, resp.MemberID
		sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		if resp.LeaderID == resp.MemberID {
			return "", fmt.Errorf("raw member became the leader")
		}
		sresp, err := sync.RequestWith(ctx, cl)
		if err != nil {
			return "", err
		}
		return resp.MemberID, kerr.ErrorForCode(sresp.ErrorCode)
	}
	return "", fmt.Errorf("join did not complete")
}

// TestGroupSessionTimeoutMovesPartitions: a member that stops
// heartbeating is expired after its session timeout, and its partitions
// go to the members left.
func TestGroupSessionTimeoutMovesPartitions(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	topic, grp := "hung", "g-hung"
	tn.createTopic(topic, 4, nil)
	m1 := startMember(t, tn, "m1", grp, topic, kgo.Balancers(kgo.RangeBalancer()))
	waitBalanced(t, 4, m1)

	raw := tn.client()
	ctx := ctxT(t)
	if _, err := rawJoin(ctx, raw, grp, topic); err != nil {
		t.Fatalf("raw join: %v", err)
	}
	// While the raw member is in the group, m1 owns half the partitions.
	deadline := time.Now().Add(10 * time.Second)
	for len(m1.owned()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("m1 owns %v with the raw member in the group, want 2 partitions", m1.owned())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The raw member never heartbeats: after its 1 s session the
	// coordinator removes it and m1 gets everything back.
	waitBalanced(t, 4, m1)

	desc, err := kadm.NewClient(raw).DescribeGroups(ctx, grp)
	if err != nil {
		t.Fatal(err)
	}
	if g := desc[grp]; len(g.Members) != 1 || g.State != "Stable" {
		t.Fatalf("after expiry the group is %s with %d members, want Stable with 1", g.State, len(g.Members))
	}
}

// TestGroupOffsetsSurviveRestart: committed offsets (with metadata) are
// durable: after a broker restart the group resumes where it committed.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	topic, grp := "durable", "g-durable"
	tn.createTopic(topic, 3, nil)
	produceN(t, tn.client(), topic, 90, "a")
	m := startMember(t, tn, "m1", grp, topic)
	waitConsumed(t, values("a", 90), m)
	m.close() // commits what it read, leaves the group

	adm := tn.admin()
	before, err := adm.FetchOffsets(ctxT(t), grp)
	if err != nil || before.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, before.Error())
	}
	var total int64
	before.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 90 {
		t.Fatalf("committed offsets sum to %d, want 90", total)
	}

	tn.restart()
	after, err := tn.admin().FetchOffsets(ctxT(t), grp)
	if err != nil || after.Error() != nil {
		t.Fatalf("fetch offsets after restart: %v %v", err, after.Error())
	}
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At != o.At {
			t.Errorf("%s[%d]: committed %d before the restart, %d after", o.Topic, o.Partition, o.At, a.At)
		}
	})

	// The group resumes after its commits: it reads only the new records.
	produceN(t, tn.client(), topic, 30, "b")
	m2 := startMember(t, tn, "m2", grp, topic)
	waitConsumed(t, values("b", 30), m2)
	time.Sleep(300 * time.Millisecond)
	for _, v := range m2.values() {
		if v[0] == 'a' {
			t.Fatalf("resumed group re-read %s, committed before the restart", v)
		}
	}
}

// TestGroupAdmin covers listing, describing, deleting offsets and groups
// through kadm as kafka-consumer-groups.sh would.
func TestGroupAdmin(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	topic, grp := "admin", "g-admin"
	tn.createTopic(topic, 2, nil)
	produceN(t, tn.client(), topic, 20, "a")
	m := startMember(t, tn, "m1", grp, topic)
	waitConsumed(t, values("a", 20), m)
	adm := tn.admin()
	ctx := ctxT(t)

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed[grp]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %+v", listed)
	}
	desc, err := adm.DescribeGroups(ctx, grp)
	if err != nil {
		t.Fatal(err)
	}
	d := desc[grp]
	if d.Err != nil || len(d.Members) != 1 || d.Members[0].ClientID != "m1" || d.Protocol != "cooperative-sticky" && d.Protocol != "range" && d.Protocol == "" {
		t.Fatalf("DescribeGroups: %+v", d)
	}
	if _, err := adm.DeleteGroups(ctx, grp); err != nil {
		t.Fatal(err)
	}
	dr, _ := adm.DeleteGroups(ctx, grp)
	if err := dr[grp].Err; err != kerr.NonEmptyGroup {
		t.Fatalf("deleting a group with a member: %v, want NON_EMPTY_GROUP", err)
	}
	m.close()

	// Offsets of an empty group can be deleted, then the group itself.
	od, err := adm.DeleteOffsets(ctx, grp, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := od.Error(); err != nil {
		t.Fatalf("delete offsets: %v", err)
	}
	fo, err := adm.FetchOffsets(ctx, grp)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fo.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("partition 0 still has offset %d after OffsetDelete", o.At)
	}
	if o, ok := fo.Lookup(topic, 1); !ok || o.At < 0 {
		t.Fatalf("partition 1 lost its offset: %+v", o)
	}
	dr, err = adm.DeleteGroups(ctx, grp)
	if err != nil || dr[grp].Err != nil {
		t.Fatalf("delete empty group: %v %v", err, dr[grp].Err)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[grp]; ok {
		t.Fatalf("deleted group still listed: %+v", listed)
	}
}

// TestGroupChurn: consumers join and leave repeatedly while records are
// produced. In no generation is a partition owned by two members, and
// committed offsets never go backwards; in the end everything produced is
// consumed.
func TestGroupChurn(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	topic, grp := "churn", "g-churn"
	const parts = 6
	tn.createTopic(topic, parts, nil)
	rng := rand.New(rand.NewSource(1))

	var (
		mu     sync.Mutex
		owners = map[[2]int32]string{} // (generation, partition) -> member
		bad    []string
	)
	assigned := func(name string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, cl *kgo.Client, a map[string][]int32) {
			_, gen := cl.GroupMetadata()
			mu.Lock()
			defer mu.Unlock()
			for _, p := range a[topic] {
				k := [2]int32{gen, p}
				if prev, ok := owners[k]; ok && prev != name {
					bad = append(bad, fmt.Sprintf("generation %d partition %d owned by %s and %s", gen, p, prev, name))
				}
				owners[k] = name
			}
		}
	}

	// Committed offsets are sampled all along and must never regress.
	adm := tn.admin()
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	var regress []string
	go func() {
		defer close(watchDone)
		last := map[int32]int64{}
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			fo, err := adm.FetchOffsets(ctx, grp)
			cancel()
			if err != nil {
				continue
			}
			fo.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At < last[o.Partition] {
					regress = append(regress, fmt.Sprintf("partition %d committed %d after %d", o.Partition, o.At, last[o.Partition]))
				}
				last[o.Partition] = max(last[o.Partition], o.At)
			})
		}
	}()

	prod := tn.client()
	total := 0
	var members, everyone []*member
	for round := 0; round < 8; round++ {
		produceN(t, prod, topic, 100, fmt.Sprintf("r%d", round))
		total += 100
		// Join one or two, leave one, at random.
		for j := 0; j < 1+rng.Intn(2); j++ {
			name := fmt.Sprintf("m%d-%d", round, j)
			m := startMember(t, tn, name, grp, topic, kgo.Balancers(kgo.RangeBalancer()), kgo.OnPartitionsAssigned(assigned(name)))
			members = append(members, m)
			everyone = append(everyone, m)
		}
		time.Sleep(time.Duration(200+rng.Intn(400)) * time.Millisecond)
		if len(members) > 1 {
			i := rng.Intn(len(members))
			members[i].close()
			members = append(members[:i], members[i+1:]...)
		}
	}
	want := map[string]bool{}
	for round := 0; round < 8; round++ {
		for v := range values(fmt.Sprintf("r%d", round), 100) {
			want[v] = true
		}
	}
	// Everything produced was read by some member (at least once).
	waitConsumed(t, want, everyone...)
	for _, m := range members {
		m.close()
	}
	close(stopWatch)
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("partitions owned twice in a generation: %v", bad)
	}
	if len(regress) > 0 {
		t.Fatalf("committed offsets went backwards: %v", regress)
	}
	if len(owners) == 0 {
		t.Fatal("no assignment was ever observed")
	}
	// The group's committed offsets cover everything produced.
	fo, err := adm.FetchOffsets(ctxT(t), grp)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	fo.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != int64(total) {
		t.Fatalf("committed offsets sum to %d, want %d", sum, total)
	}
}

// TestGroupCoordinatorMoves: the coordination of a group moves away and
// back (its offsets partition is unloaded and loaded again at a new leader
// epoch, as a leadership change does) while members consume and commit.
// The new coordinator rebuilds the group from __consumer_offsets, the
// members find it again, and every record is read with no committed
// offset lost.
func TestGroupCoordinatorMoves(t *testing.T) {
	tn := startNode(t, groupNodeOverrides...)
	topic, grp := "moves", "g-moves"
	tn.createTopic(topic, 4, nil)
	prod := tn.client()
	produceN(t, prod, topic, 200, "a")
	m1 := startMember(t, tn, "m1", grp, topic)
	m2 := startMember(t, tn, "m2", grp, topic)
	waitBalanced(t, 4, m1, m2)
	waitConsumed(t, values("a", 200), m1, m2)

	adm := tn.admin()
	committed := func() int64 {
		fo, err := adm.FetchOffsets(ctxT(t), grp)
		if err != nil || fo.Error() != nil {
			t.Fatalf("fetch offsets: %v %v", err, fo.Error())
		}
		var sum int64
		fo.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum
	}
	// Autocommit runs every 5 s by default; wait for the first records'
	// commits so that the move has something to rebuild.
	deadline := time.Now().Add(15 * time.Second)
	for committed() != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets sum to %d, want 200", committed())
		}
		time.Sleep(100 * time.Millisecond)
	}

	p := group.PartitionFor(grp, 5)
	for epoch := int32(1); epoch <= 2; epoch++ {
		tn.node.groups.Unload(p)
		if _, err := tn.node.groups.Group(grp); !errors.Is(err, kerr.NotCoordinator) {
			t.Fatalf("after unloading, Group(%q) = %v, want NOT_COORDINATOR", grp, err)
		}
		time.Sleep(200 * time.Millisecond) // clients see NOT_COORDINATOR meanwhile
		tn.node.groups.Load(p, epoch)
		produceN(t, prod, topic, 100, fmt.Sprintf("b%d", epoch))
		waitConsumed(t, values(fmt.Sprintf("b%d", epoch), 100), m1, m2)
	}
	if got := committed(); got < 200 {
		t.Fatalf("committed offsets went back to %d after the moves", got)
	}
	waitBalanced(t, 4, m1, m2)
	requireGroupMembers(t, tn, grp, false, 2)
}
