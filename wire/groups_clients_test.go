package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// Real-client tests of the group handlers: franz-go negotiates the
// versions the server advertises and must understand every answer. The
// group actors are fakes (groups_fake_test.go), so these check routing
// and encoding, not group semantics.

func TestKadmGroupAdmin(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("t", 2, nil)
	env.fb.setSummaries([]group.Summary{{GroupID: "g", ProtocolType: "consumer", State: "Empty", GroupType: "classic"}})
	adm, _ := env.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, r := range adm.FindGroupCoordinators(ctx, "g", "h") {
		if r.Err != nil || r.NodeID != 1 {
			t.Errorf("find coordinator %s: %+v", r.Name, r)
		}
	}

	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "t", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m"})
	offsets.Add(kadm.Offset{Topic: "t", Partition: 1, At: 9, LeaderEpoch: 2})
	if err := adm.CommitAllOffsets(ctx, "g", offsets); err != nil {
		t.Fatalf("commit: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, "g")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch: %v %v", err, fetched.Error())
	}
	if o, _ := fetched.Lookup("t", 0); o.At != 5 || o.Metadata != "m" {
		t.Errorf("fetched t/0: %+v", o)
	}
	if o, _ := fetched.Lookup("t", 1); o.At != 9 || o.LeaderEpoch != 2 {
		t.Errorf("fetched t/1: %+v", o)
	}
	some, err := adm.FetchOffsetsForTopics(ctx, "g", "t")
	if err != nil {
		t.Fatalf("fetch for topics: %v", err)
	}
	if o, _ := some.Lookup("t", 1); o.At != 9 {
		t.Errorf("fetched for topics t/1: %+v", o)
	}

	described, err := adm.DescribeGroups(ctx, "g")
	if err != nil || described["g"].Err != nil || described["g"].State != "Stable" {
		t.Fatalf("describe: %v %+v", err, described)
	}
	if m := described["g"].Members; len(m) != 1 || m[0].ClientHost != "/127.0.0.1" {
		t.Errorf("describe members: %+v", m)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || len(listed) != 1 || listed["g"].State != "Empty" {
		t.Errorf("list: %v %+v", err, listed)
	}
	deletedOffsets, err := adm.DeleteOffsets(ctx, "g", kadm.TopicsSet{"t": {0: {}}})
	if err != nil || deletedOffsets.Error() != nil {
		t.Errorf("delete offsets: %v %+v", err, deletedOffsets)
	}
	deleted, err := adm.DeleteGroups(ctx, "g")
	if err != nil || deleted.Error() != nil {
		t.Errorf("delete: %v %+v", err, deleted)
	}
	// The client spoke the newest versions: topics by id (v10).
	for _, r := range env.fb.group("g").requests() {
		v := int16(-1)
		switch req := r.Req.(type) {
		case *kmsg.OffsetCommitRequest:
			v = req.Version
		case *group.FetchOffsets:
			v = req.Version
		default:
			continue
		}
		if v != 10 {
			t.Errorf("%T at v%d, want v10", r.Req, v)
		}
	}
	consumerDescribed, err := adm.DescribeConsumerGroups(ctx, "g")
	if err != nil || consumerDescribed["g"].Err != nil || consumerDescribed["g"].Epoch != 5 {
		t.Errorf("describe consumer groups: %v %+v", err, consumerDescribed)
	}
}

// TestKgoGroupConsumer: a classic group consumer joins, syncs, fetches its
// offsets and heartbeats through the handlers, and leaves on close.
func TestKgoGroupConsumer(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("t", 2, nil)
	assigned := make(chan map[string][]int32, 1)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(env.addr),
		kgo.ConsumerGroup("cg"),
		kgo.ConsumeTopics("t"),
		kgo.HeartbeatInterval(50*time.Millisecond),
		kgo.RetryTimeout(5*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			select {
			case assigned <- m:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			if cl.PollFetches(ctx).IsClientClosed() {
				return
			}
		}
	}()
	select {
	case m := <-assigned:
		if len(m["t"]) != 2 {
			t.Errorf("assigned %v", m)
		}
	case <-ctx.Done():
		t.Fatal("never assigned")
	}
	g := env.fb.group("cg")
	eventually(t, "heartbeats", func() bool {
		seen := map[string]bool{}
		for _, r := range g.requests() {
			seen[typeName(r.Req)] = true
		}
		return seen["*kmsg.JoinGroupRequest"] && seen["*kmsg.SyncGroupRequest"] &&
			seen["*group.FetchOffsets"] && seen["*kmsg.HeartbeatRequest"]
	})
	cl.Close()
	cancel()
	<-polled
	left := false
	for _, r := range g.requests() {
		if lg, ok := r.Req.(*kmsg.LeaveGroupRequest); ok && len(lg.Members) == 1 {
			left = true
		}
	}
	if !left {
		t.Error("the consumer did not leave the group on close")
	}
}
