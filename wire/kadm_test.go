package wire

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Real-client tests: franz-go's admin client against the server and the
// fake backend, through version negotiation and all.

func (e *testEnv) admin() (*kadm.Client, *kgo.Client) {
	e.t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.addr),
		kgo.RetryTimeout(5*time.Second),
		kgo.MetadataMinAge(10*time.Millisecond),
	)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return kadm.NewClient(cl), cl
}

func TestKadmTopicLifecycle(t *testing.T) {
	env := newTestEnv(t)
	adm, cl := env.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}

	// CreateTopics, with a config override.
	created, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "orders", "events")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, name := range []string{"orders", "events"} {
		r, err := created.On(name, nil)
		if err != nil || r.Err != nil || r.NumPartitions != 3 || r.ReplicationFactor != 1 || r.ID == (kadm.TopicID{}) {
			t.Fatalf("create %s: %+v %v", name, r, err)
		}
	}
	again, _ := adm.CreateTopic(ctx, 1, 1, nil, "orders")
	if !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("create twice: %v", again.Err)
	}
	if r, _ := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry-run"); r.Error() != nil || env.fb.Image().Topic("dry-run") != nil {
		t.Fatalf("validate create: %v", r.Error())
	}

	// Metadata.
	md, err := adm.Metadata(ctx, "orders")
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	od := md.Topics["orders"]
	if od.Err != nil || len(od.Partitions) != 3 || od.ID != kadm.TopicID(env.fb.Image().Topic("orders").ID) {
		t.Fatalf("metadata orders: %+v", od)
	}
	for _, p := range od.Partitions {
		if p.Leader != 1 || len(p.Replicas) != 1 {
			t.Errorf("partition %+v", p)
		}
	}
	if md.Controller != 1 || md.Cluster != "fake-cluster" || len(md.Brokers) != 1 {
		t.Errorf("metadata: controller %d cluster %q brokers %v", md.Controller, md.Cluster, md.Brokers)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil || !topics.Has("orders") || !topics.Has("events") || len(topics) != 2 {
		t.Fatalf("list topics: %v %v", topics.Names(), err)
	}

	// CreatePartitions: add 2, then set to 6.
	if r, err := adm.CreatePartitions(ctx, 2, "orders"); err != nil || r.Error() != nil {
		t.Fatalf("create partitions: %v %v", err, r.Error())
	}
	if r, err := adm.UpdatePartitions(ctx, 6, "orders"); err != nil || r.Error() != nil {
		t.Fatalf("update partitions: %v %v", err, r.Error())
	}
	if n := len(env.fb.Image().Topic("orders").Partitions); n != 6 {
		t.Fatalf("orders has %d partitions", n)
	}
	if r, _ := adm.UpdatePartitions(ctx, 2, "orders"); !errors.Is(r.Error(), kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", r.Error())
	}

	// DescribeTopicConfigs and AlterTopicConfigs.
	describe := func() map[string]kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		rc, err := rcs.On("orders", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe configs: %v %v", err, rc.Err)
		}
		m := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			m[c.Key] = c
		}
		return m
	}
	cfg := describe()
	if ret := cfg["retention.ms"]; derefOr(ret.Value, "") != "60000" || ret.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %+v", ret)
	}
	if cp := cfg["cleanup.policy"]; derefOr(cp.Value, "") != "delete" || cp.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy: %+v", cp)
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "orders")
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, alter)
	}
	cfg = describe()
	if derefOr(cfg["cleanup.policy"].Value, "") != "compact" || cfg["retention.ms"].Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("after alter: %+v %+v", cfg["cleanup.policy"], cfg["retention.ms"])
	}
	bad, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("forever")}}, "orders")
	if !errors.Is(bad[0].Err, kerr.InvalidConfig) {
		t.Fatalf("invalid alter: %+v", bad)
	}

	// Broker configs.
	brokerCfgs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatalf("describe broker configs: %v", err)
	}
	if rc, err := brokerCfgs.On("1", nil); err != nil || rc.Err != nil || len(rc.Configs) == 0 {
		t.Fatalf("broker configs: %+v %v", rc, err)
	}

	// DeleteTopics.
	deleted, err := adm.DeleteTopics(ctx, "orders", "nope")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if r, _ := deleted.On("orders", nil); r.Err != nil {
		t.Fatalf("delete orders: %v", r.Err)
	}
	if r, _ := deleted.On("nope", nil); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete nope: %v", r.Err)
	}
	if env.fb.Image().Topic("orders") != nil {
		t.Fatal("orders still exists")
	}
}

// TestKgoNegotiatesApiVersions: kgo asks ApiVersions at its own max (v5,
// above ours), retries at ours per KIP-511, and then uses the advertised
// versions.
func TestKgoNegotiatesApiVersions(t *testing.T) {
	env := newTestEnv(t)
	adm, _ := env.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var saw bool
	versions.Each(func(bv kadm.BrokerApiVersions) {
		saw = true
		if bv.Err != nil {
			t.Fatalf("broker %d: %v", bv.NodeID, bv.Err)
		}
		for key, want := range ourAPIs {
			min, max, ok := bv.KeyVersions(key)
			if !ok || min != want[0] || max != want[1] {
				t.Errorf("key %d: %d..%d (%v), want %v", key, min, max, ok, want)
			}
		}
	})
	if !saw {
		t.Fatal("no broker answered")
	}
}
