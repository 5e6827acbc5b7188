package wire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// Protocol-level tests of the administrative handlers, at every version
// they advertise, with hand-built requests.

func (e *testEnv) createTopic(name string, partitions int32, configs map[string]*string) *metadata.Topic {
	e.t.Helper()
	errs := e.fb.CreateTopics(context.Background(), []metadata.CreateTopic{{Name: name, NumPartitions: partitions, ReplicationFactor: 1, Configs: configs}}, false)
	if errs[0] != nil {
		e.t.Fatalf("create %s: %v", name, errs[0])
	}
	return e.fb.Image().Topic(name)
}

func metadataReq(v int16, names ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = v
	for _, n := range names {
		req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: ptrTo(n)})
	}
	return req
}

func topicNames(resp *kmsg.MetadataResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		out = append(out, derefOr(t.Topic, "<nil>"))
	}
	return out
}

func TestMetadataEveryVersion(t *testing.T) {
	env := newTestEnv(t)
	alpha := env.createTopic("alpha", 3, nil)
	env.createTopic("beta", 1, nil)
	c := env.dial()
	for v := int16(0); v <= 13; v++ {
		req := metadataReq(v, "alpha", "missing")
		resp := c.roundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "127.0.0.1" {
			t.Fatalf("v%d brokers: %+v", v, resp.Brokers)
		}
		if v >= 1 && resp.ControllerID != 1 {
			t.Errorf("v%d controller %d", v, resp.ControllerID)
		}
		if v >= 2 && derefOr(resp.ClusterID, "") != "fake-cluster" {
			t.Errorf("v%d cluster id %v", v, resp.ClusterID)
		}
		if got := topicNames(resp); !slices.Equal(got, []string{"alpha", "missing"}) {
			t.Fatalf("v%d topics %v", v, got)
		}
		a, m := resp.Topics[0], resp.Topics[1]
		if a.ErrorCode != 0 || len(a.Partitions) != 3 {
			t.Fatalf("v%d alpha: %+v", v, a)
		}
		if v >= 10 && a.TopicID != alpha.ID {
			t.Errorf("v%d topic id %x, want %x", v, a.TopicID, alpha.ID)
		}
		for i, p := range a.Partitions {
			if p.Partition != int32(i) || p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) || p.ErrorCode != 0 || len(p.OfflineReplicas) != 0 {
				t.Errorf("v%d partition %d: %+v", v, i, p)
			}
			if v >= 7 && p.LeaderEpoch != 0 {
				t.Errorf("v%d leader epoch %d", v, p.LeaderEpoch)
			}
		}
		if m.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d missing topic: error %d", v, m.ErrorCode)
		}
	}
}

func TestMetadataTopicSelection(t *testing.T) {
	env := newTestEnv(t)
	alpha := env.createTopic("alpha", 1, nil)
	env.createTopic("beta", 1, nil)
	c := env.dial()
	unknownID := metadata.TopicID{9, 9, 9}
	byID := func(v int16, ids ...metadata.TopicID) *kmsg.MetadataRequest {
		req := metadataReq(v)
		for _, id := range ids {
			req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{TopicID: id})
		}
		return req
	}
	nullTopics := func(v int16) *kmsg.MetadataRequest { r := metadataReq(v); r.Topics = nil; return r }
	emptyTopics := func(v int16) *kmsg.MetadataRequest {
		r := metadataReq(v)
		r.Topics = []kmsg.MetadataRequestTopic{}
		return r
	}
	for _, tc := range []struct {
		name  string
		req   *kmsg.MetadataRequest
		names []string
		codes []int16
	}{
		{"v0 empty means all", emptyTopics(0), []string{"alpha", "beta"}, []int16{0, 0}},
		{"v1 null means all", nullTopics(1), []string{"alpha", "beta"}, []int16{0, 0}},
		{"v1 empty means none", emptyTopics(1), nil, nil},
		{"v12 null means all", nullTopics(12), []string{"alpha", "beta"}, []int16{0, 0}},
		{"duplicates answered once", metadataReq(4, "beta", "beta"), []string{"beta"}, []int16{0}},
		{"invalid name", metadataReq(4, "bad name"), []string{"bad name"}, []int16{kerr.InvalidTopicException.Code}},
		{"by id v12", byID(12, alpha.ID), []string{"alpha"}, []int16{0}},
		{"unknown id v12", byID(12, unknownID), []string{"<nil>"}, []int16{kerr.UnknownTopicID.Code}},
		{"id before v12", byID(10, alpha.ID), []string{""}, []int16{kerr.InvalidRequest.Code}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.roundTrip(tc.req).(*kmsg.MetadataResponse)
			var codes []int16
			for _, tp := range resp.Topics {
				codes = append(codes, tp.ErrorCode)
			}
			if got := topicNames(resp); !slices.Equal(got, tc.names) || !slices.Equal(codes, tc.codes) {
				t.Fatalf("topics %v codes %v, want %v %v", got, codes, tc.names, tc.codes)
			}
		})
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	allow := func(v int16, allow bool, names ...string) *kmsg.MetadataRequest {
		r := metadataReq(v, names...)
		r.AllowAutoTopicCreation = allow
		return r
	}
	for _, tc := range []struct {
		name    string
		enabled bool
		req     *kmsg.MetadataRequest
		code    int16
		created bool
	}{
		{"broker disabled", false, allow(4, true, "auto-a"), kerr.UnknownTopicOrPartition.Code, false},
		{"v3 always allows", true, metadataReq(3, "auto-b"), 0, true},
		{"v4 not allowed", true, allow(4, false, "auto-c"), kerr.UnknownTopicOrPartition.Code, false},
		{"v4 allowed", true, allow(4, true, "auto-d"), 0, true},
		{"v12 allowed", true, allow(12, true, "auto-e"), 0, true},
		{"invalid name", true, allow(4, true, "auto/f"), kerr.InvalidTopicException.Code, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.fb.setLimits(func(l *Limits) { l.AutoCreateTopics = tc.enabled })
			resp := c.roundTrip(tc.req).(*kmsg.MetadataResponse)
			tp := resp.Topics[0]
			if tp.ErrorCode != tc.code {
				t.Fatalf("error %d, want %d", tp.ErrorCode, tc.code)
			}
			name := *tc.req.Topics[0].Topic
			created := env.fb.Image().Topic(name)
			if (created != nil) != tc.created {
				t.Fatalf("created %v, want %v", created != nil, tc.created)
			}
			if tc.created && (len(tp.Partitions) != 1 || tp.Partitions[0].Leader != 1) {
				t.Fatalf("auto-created topic answered without its partition: %+v", tp)
			}
		})
	}
}

func TestMetadataUnavailableLeaderAndOps(t *testing.T) {
	env := newTestEnv(t)
	// Broker 2 is registered but fenced; a partition it leads is offline.
	if err := env.fb.ctrl.RegisterBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092, Fenced: true}); err != nil {
		t.Fatal(err)
	}
	errs := env.fb.CreateTopics(context.Background(), []metadata.CreateTopic{{Name: "split", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]int32{{1, 2}, {2, 1}}}}, false)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	c := env.dial()
	for _, v := range []int16{0, 5, 8, 10, 12} {
		req := metadataReq(v, "split")
		req.IncludeTopicAuthorizedOperations = true
		req.IncludeClusterAuthorizedOperations = true
		resp := c.roundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 {
			t.Errorf("v%d: fenced broker listed: %+v", v, resp.Brokers)
		}
		p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
		if p1.ErrorCode != kerr.LeaderNotAvailable.Code || p1.Leader != -1 {
			t.Errorf("v%d: partition led by fenced broker: %+v", v, p1)
		}
		switch {
		case v == 0:
			if p0.ErrorCode != kerr.ReplicaNotAvailable.Code || !slices.Equal(p0.Replicas, []int32{1}) {
				t.Errorf("v0: partition with an offline replica: %+v", p0)
			}
		case v >= 5:
			if p0.ErrorCode != 0 || !slices.Equal(p0.OfflineReplicas, []int32{2}) || !slices.Equal(p0.Replicas, []int32{1, 2}) {
				t.Errorf("v%d: partition with an offline replica: %+v", v, p0)
			}
		}
		wantTopicOps, wantClusterOps := int32(authorizedOpsOmitted), int32(authorizedOpsOmitted)
		if v >= 8 {
			wantTopicOps = topicAuthorizedOps
		}
		if v >= 8 && v <= 10 {
			wantClusterOps = clusterAuthorizedOps
		}
		if resp.Topics[0].AuthorizedOperations != wantTopicOps || resp.AuthorizedOperations != wantClusterOps {
			t.Errorf("v%d: authorized ops topic %d cluster %d", v, resp.Topics[0].AuthorizedOperations, resp.AuthorizedOperations)
		}
	}
}

func createTopicsReq(v int16, validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = v
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func newTopic(name string, partitions int32, rf int16) kmsg.CreateTopicsRequestTopic {
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	return t
}

func TestCreateTopicsEveryVersion(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for v := int16(0); v <= 7; v++ {
		name := fmt.Sprintf("ct-v%d", v)
		tp := newTopic(name, 2, 1)
		tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: ptrTo("1234")}}
		resp := c.roundTrip(createTopicsReq(v, false, tp)).(*kmsg.CreateTopicsResponse)
		rt := resp.Topics[0]
		if rt.Topic != name || rt.ErrorCode != 0 || rt.ErrorMessage != nil {
			t.Fatalf("v%d: %+v", v, rt)
		}
		created := env.fb.Image().Topic(name)
		if created == nil || len(created.Partitions) != 2 || created.Configs["retention.ms"] != "1234" {
			t.Fatalf("v%d: topic not created as asked: %+v", v, created)
		}
		if v < 5 {
			continue
		}
		if rt.NumPartitions != 2 || rt.ReplicationFactor != 1 {
			t.Errorf("v%d: partitions %d rf %d", v, rt.NumPartitions, rt.ReplicationFactor)
		}
		i := slices.IndexFunc(rt.Configs, func(c kmsg.CreateTopicsResponseTopicConfig) bool { return c.Name == "retention.ms" })
		if i < 0 || derefOr(rt.Configs[i].Value, "") != "1234" || rt.Configs[i].Source != int8(kmsg.ConfigSourceDynamicTopicConfig) {
			t.Errorf("v%d: configs %+v", v, rt.Configs)
		}
		if v >= 7 && rt.TopicID != created.ID {
			t.Errorf("v%d: topic id %x, want %x", v, rt.TopicID, created.ID)
		}
	}
}

func TestCreateTopicsValidateOnly(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	tp := newTopic("dry", -1, -1)
	tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: ptrTo("compact")}}
	resp := c.roundTrip(createTopicsReq(7, true, tp)).(*kmsg.CreateTopicsResponse)
	rt := resp.Topics[0]
	if rt.ErrorCode != 0 || rt.NumPartitions != 1 || rt.ReplicationFactor != 1 || rt.TopicID != (metadata.TopicID{}) {
		t.Fatalf("validate-only answer: %+v", rt)
	}
	cfg := map[string]kmsg.CreateTopicsResponseTopicConfig{}
	for _, c := range rt.Configs {
		cfg[c.Name] = c
	}
	if derefOr(cfg["cleanup.policy"].Value, "") != "compact" || derefOr(cfg["retention.ms"].Value, "") != "3600000" ||
		cfg["retention.ms"].Source != int8(kmsg.ConfigSourceStaticBrokerConfig) {
		t.Errorf("validate-only configs: %+v", rt.Configs)
	}
	if env.fb.Image().Topic("dry") != nil {
		t.Fatal("validate-only created the topic")
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("exists", 1, nil)
	c := env.dial()
	withAssignment := func(name string, parts ...int32) kmsg.CreateTopicsRequestTopic {
		tp := newTopic(name, -1, -1)
		for _, p := range parts {
			tp.ReplicaAssignment = append(tp.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: p, Replicas: []int32{1}})
		}
		return tp
	}
	withConfig := func(name, key string, value *string) kmsg.CreateTopicsRequestTopic {
		tp := newTopic(name, 1, 1)
		tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: key, Value: value}}
		return tp
	}
	countAndAssignment := withAssignment("both", 0)
	countAndAssignment.NumPartitions = 1
	for _, tc := range []struct {
		name   string
		topics []kmsg.CreateTopicsRequestTopic
		codes  []int16
	}{
		{"duplicate names", []kmsg.CreateTopicsRequestTopic{newTopic("dup", 1, 1), newTopic("dup", 1, 1), newTopic("ok-1", 1, 1)},
			[]int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0}},
		{"bad name", []kmsg.CreateTopicsRequestTopic{newTopic("a:b", 1, 1)}, []int16{kerr.InvalidTopicException.Code}},
		{"long name", []kmsg.CreateTopicsRequestTopic{newTopic(strings.Repeat("x", 250), 1, 1)}, []int16{kerr.InvalidTopicException.Code}},
		{"exists", []kmsg.CreateTopicsRequestTopic{newTopic("exists", 1, 1)}, []int16{kerr.TopicAlreadyExists.Code}},
		{"zero partitions", []kmsg.CreateTopicsRequestTopic{newTopic("zp", 0, 1)}, []int16{kerr.InvalidPartitions.Code}},
		{"bad rf", []kmsg.CreateTopicsRequestTopic{newTopic("rf", 1, -2)}, []int16{kerr.InvalidReplicationFactor.Code}},
		{"rf above brokers", []kmsg.CreateTopicsRequestTopic{newTopic("rf3", 1, 3)}, []int16{kerr.InvalidReplicationFactor.Code}},
		{"count and assignment", []kmsg.CreateTopicsRequestTopic{countAndAssignment}, []int16{kerr.InvalidRequest.Code}},
		{"assignment gap", []kmsg.CreateTopicsRequestTopic{withAssignment("gap", 0, 2)}, []int16{kerr.InvalidReplicaAssignment.Code}},
		{"assignment unknown broker", []kmsg.CreateTopicsRequestTopic{func() kmsg.CreateTopicsRequestTopic {
			tp := withAssignment("ub", 0)
			tp.ReplicaAssignment[0].Replicas = []int32{7}
			return tp
		}()}, []int16{kerr.InvalidReplicaAssignment.Code}},
		{"assignment ok", []kmsg.CreateTopicsRequestTopic{withAssignment("manual", 1, 0)}, []int16{0}},
		{"null config", []kmsg.CreateTopicsRequestTopic{withConfig("nc", "retention.ms", nil)}, []int16{kerr.InvalidConfig.Code}},
		{"unknown config", []kmsg.CreateTopicsRequestTopic{withConfig("uc", "retention.typo", ptrTo("1"))}, []int16{kerr.InvalidConfig.Code}},
		{"bad config value", []kmsg.CreateTopicsRequestTopic{withConfig("bc", "retention.ms", ptrTo("soon"))}, []int16{kerr.InvalidConfig.Code}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.roundTrip(createTopicsReq(4, false, tc.topics...)).(*kmsg.CreateTopicsResponse)
			for i, rt := range resp.Topics {
				if rt.ErrorCode != tc.codes[i] {
					t.Errorf("topic %d %q: error %d (%s), want %d", i, rt.Topic, rt.ErrorCode, derefOr(rt.ErrorMessage, ""), tc.codes[i])
				}
				if (rt.ErrorCode != 0) != (rt.ErrorMessage != nil) {
					t.Errorf("topic %d: error %d with message %v", i, rt.ErrorCode, rt.ErrorMessage)
				}
			}
		})
	}
}

func deleteTopicsReq(v int16, names ...string) *kmsg.DeleteTopicsRequest {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = v
	if v < 6 {
		req.TopicNames = names
	} else {
		for _, n := range names {
			req.Topics = append(req.Topics, kmsg.DeleteTopicsRequestTopic{Topic: ptrTo(n)})
		}
	}
	return req
}

func TestDeleteTopics(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for v := int16(0); v <= 6; v++ {
		name := fmt.Sprintf("del-v%d", v)
		created := env.createTopic(name, 1, nil)
		resp := c.roundTrip(deleteTopicsReq(v, name, "nope")).(*kmsg.DeleteTopicsResponse)
		ok, missing := resp.Topics[0], resp.Topics[1]
		if derefOr(ok.Topic, "") != name || ok.ErrorCode != 0 || env.fb.Image().Topic(name) != nil {
			t.Fatalf("v%d: delete %s: %+v", v, name, ok)
		}
		if v >= 6 && ok.TopicID != created.ID {
			t.Errorf("v%d: topic id %x, want %x", v, ok.TopicID, created.ID)
		}
		if missing.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d: missing topic error %d", v, missing.ErrorCode)
		}
		if v >= 5 && missing.ErrorMessage == nil {
			t.Errorf("v%d: no error message", v)
		}
	}

	// v6 by id.
	byID := env.createTopic("by-id", 1, nil)
	req := deleteTopicsReq(6)
	req.Topics = []kmsg.DeleteTopicsRequestTopic{
		{TopicID: byID.ID},
		{TopicID: metadata.TopicID{1, 2, 3}},
		{Topic: ptrTo("x"), TopicID: metadata.TopicID{4}},
		{},
	}
	resp := c.roundTrip(req).(*kmsg.DeleteTopicsResponse)
	want := []int16{0, kerr.UnknownTopicID.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	for i, rt := range resp.Topics {
		if rt.ErrorCode != want[i] {
			t.Errorf("by id entry %d: error %d, want %d", i, rt.ErrorCode, want[i])
		}
	}
	if derefOr(resp.Topics[0].Topic, "") != "by-id" || env.fb.Image().Topic("by-id") != nil {
		t.Errorf("delete by id: %+v", resp.Topics[0])
	}

	// Duplicates.
	env.createTopic("twice", 1, nil)
	resp = c.roundTrip(deleteTopicsReq(4, "twice", "twice")).(*kmsg.DeleteTopicsResponse)
	for _, rt := range resp.Topics {
		if rt.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("duplicate delete: %+v", rt)
		}
	}
	if env.fb.Image().Topic("twice") == nil {
		t.Error("duplicate delete deleted the topic")
	}
}

func TestDeleteTopicsDisabled(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("keep", 1, nil)
	env.fb.setLimits(func(l *Limits) { l.DeleteTopicEnable = false })
	c := env.dial()
	for v := int16(0); v <= 6; v++ {
		resp := c.roundTrip(deleteTopicsReq(v, "keep")).(*kmsg.DeleteTopicsResponse)
		want := kerr.TopicDeletionDisabled.Code
		if v < 3 {
			want = kerr.InvalidRequest.Code
		}
		if resp.Topics[0].ErrorCode != want {
			t.Errorf("v%d: error %d, want %d", v, resp.Topics[0].ErrorCode, want)
		}
	}
	if env.fb.called("DeleteTopics") != 0 || env.fb.Image().Topic("keep") == nil {
		t.Fatal("deletion reached the backend")
	}
}

func TestCreatePartitions(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("grow", 1, nil)
	c := env.dial()
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = v
		have := int32(len(env.fb.Image().Topic("grow").Partitions))
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: have + 1}, {Topic: "absent", Count: 2}}
		resp := c.roundTrip(req).(*kmsg.CreatePartitionsResponse)
		if resp.Topics[0].ErrorCode != 0 || resp.Topics[0].ErrorMessage != nil {
			t.Fatalf("v%d: %+v", v, resp.Topics[0])
		}
		if got := len(env.fb.Image().Topic("grow").Partitions); got != int(have)+1 {
			t.Fatalf("v%d: %d partitions, want %d", v, got, have+1)
		}
		if resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || resp.Topics[1].ErrorMessage == nil {
			t.Errorf("v%d: absent topic: %+v", v, resp.Topics[1])
		}
	}
	for _, tc := range []struct {
		name     string
		topics   []kmsg.CreatePartitionsRequestTopic
		validate bool
		codes    []int16
		after    int
	}{
		{"shrink", []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 2}}, false, []int16{kerr.InvalidPartitions.Code}, 5},
		{"duplicate", []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 9}, {Topic: "grow", Count: 9}}, false,
			[]int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}, 5},
		{"validate only", []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 9}}, true, []int16{0}, 5},
		{"assignment", []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 7, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}, {Replicas: []int32{1}}}}}, false, []int16{0}, 7},
		{"short assignment", []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 9, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}}}}, false,
			[]int16{kerr.InvalidReplicaAssignment.Code}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Version = 3
			req.Topics, req.ValidateOnly = tc.topics, tc.validate
			resp := c.roundTrip(req).(*kmsg.CreatePartitionsResponse)
			for i, rt := range resp.Topics {
				if rt.ErrorCode != tc.codes[i] {
					t.Errorf("topic %d: error %d (%s), want %d", i, rt.ErrorCode, derefOr(rt.ErrorMessage, ""), tc.codes[i])
				}
			}
			if got := len(env.fb.Image().Topic("grow").Partitions); got != tc.after {
				t.Errorf("%d partitions, want %d", got, tc.after)
			}
		})
	}
}

func describeConfigsReq(v int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsRequest {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = v
	req.IncludeSynonyms, req.IncludeDocumentation = synonyms, docs
	req.Resources = resources
	return req
}

func configsByName(rr kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range rr.Configs {
		m[c.Name] = c
	}
	return m
}

func TestDescribeConfigsTopic(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("cfg", 1, map[string]*string{"retention.ms": ptrTo("5000")})
	c := env.dial()
	topic := kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "cfg"}
	for v := int16(0); v <= 4; v++ {
		resp := c.roundTrip(describeConfigsReq(v, true, true, topic)).(*kmsg.DescribeConfigsResponse)
		rr := resp.Resources[0]
		if rr.ErrorCode != 0 || rr.ResourceName != "cfg" || rr.ResourceType != kmsg.ConfigResourceTypeTopic {
			t.Fatalf("v%d: %+v", v, rr)
		}
		cfg := configsByName(rr)
		if len(cfg) != len(metadata.TopicConfigDefs) {
			t.Errorf("v%d: %d configs, want %d", v, len(cfg), len(metadata.TopicConfigDefs))
		}
		ret, cleanup := cfg["retention.ms"], cfg["cleanup.policy"]
		if derefOr(ret.Value, "") != "5000" || derefOr(cleanup.Value, "") != "delete" {
			t.Fatalf("v%d: values %v %v", v, ret.Value, cleanup.Value)
		}
		if v == 0 {
			if ret.IsDefault || !cleanup.IsDefault {
				t.Errorf("v0: is-default %v %v", ret.IsDefault, cleanup.IsDefault)
			}
			continue
		}
		if ret.Source != kmsg.ConfigSourceDynamicTopicConfig || cleanup.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("v%d: sources %v %v", v, ret.Source, cleanup.Source)
		}
		// retention.ms: topic override, then the broker's log.retention.ms
		// (set), then its default.
		var syn []string
		for _, s := range ret.ConfigSynonyms {
			syn = append(syn, fmt.Sprintf("%s=%s/%d", s.Name, derefOr(s.Value, "<nil>"), s.Source))
		}
		wantSyn := []string{"retention.ms=5000/1", "log.retention.ms=3600000/4", "log.retention.ms=604800000/5"}
		if !slices.Equal(syn, wantSyn) {
			t.Errorf("v%d: synonyms %v, want %v", v, syn, wantSyn)
		}
		if v >= 3 {
			if ret.ConfigType != kmsg.ConfigTypeLong || cleanup.ConfigType != kmsg.ConfigTypeList {
				t.Errorf("v%d: types %v %v", v, ret.ConfigType, cleanup.ConfigType)
			}
			if cleanup.Documentation == nil {
				t.Errorf("v%d: no documentation", v)
			}
		}
	}

	// Filtering, no synonyms, no docs.
	filtered := topic
	filtered.ConfigNames = []string{"cleanup.policy", "no.such.config"}
	resp := c.roundTrip(describeConfigsReq(4, false, false, filtered)).(*kmsg.DescribeConfigsResponse)
	rr := resp.Resources[0]
	if len(rr.Configs) != 1 || rr.Configs[0].Name != "cleanup.policy" || rr.Configs[0].ConfigSynonyms != nil || rr.Configs[0].Documentation != nil {
		t.Fatalf("filtered: %+v", rr.Configs)
	}
}

func TestDescribeConfigsResources(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	res := func(typ kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsRequestResource {
		return kmsg.DescribeConfigsRequestResource{ResourceType: typ, ResourceName: name}
	}
	resp := c.roundTrip(describeConfigsReq(4, true, false,
		res(kmsg.ConfigResourceTypeBroker, "1"),
		res(kmsg.ConfigResourceTypeBroker, ""),
		res(kmsg.ConfigResourceTypeBroker, "2"),
		res(kmsg.ConfigResourceTypeBroker, "one"),
		res(kmsg.ConfigResourceTypeTopic, "absent"),
		res(kmsg.ConfigResourceTypeTopic, "bad name"),
		res(kmsg.ConfigResourceTypeBrokerLogger, "1"),
	)).(*kmsg.DescribeConfigsResponse)
	want := []int16{0, 0, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code}
	for i, rr := range resp.Resources {
		if rr.ErrorCode != want[i] {
			t.Errorf("resource %d (%d %q): error %d (%s), want %d", i, rr.ResourceType, rr.ResourceName, rr.ErrorCode, derefOr(rr.ErrorMessage, ""), want[i])
		}
		if rr.ErrorCode != 0 && (rr.ErrorMessage == nil || len(rr.Configs) != 0) {
			t.Errorf("resource %d: failed without message or with configs: %+v", i, rr)
		}
	}
	cfg := configsByName(resp.Resources[0])
	if len(cfg) != len(fakeBrokerConfigs) {
		t.Fatalf("broker configs: %+v", resp.Resources[0].Configs)
	}
	secret := cfg["sasl.jaas.config"]
	if !secret.IsSensitive || secret.Value != nil || len(secret.ConfigSynonyms) != 1 || secret.ConfigSynonyms[0].Value != nil {
		t.Errorf("sensitive config leaked: %+v", secret)
	}
	if ret := cfg["log.retention.ms"]; derefOr(ret.Value, "") != "3600000" || ret.Source != kmsg.ConfigSourceStaticBrokerConfig || !ret.ReadOnly {
		t.Errorf("broker config: %+v", ret)
	}
}

func alterReq(v int16, validateOnly bool, resources ...kmsg.IncrementalAlterConfigsRequestResource) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly, req.Resources = v, validateOnly, resources
	return req
}

func alterTopic(name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	return kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name, Configs: ops}
}

func setOp(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpSet, Value: ptrTo(value)}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	env := newTestEnv(t)
	env.createTopic("alt", 1, nil)
	c := env.dial()
	for v := int16(0); v <= 1; v++ {
		val := fmt.Sprint(1000 + v)
		resp := c.roundTrip(alterReq(v, false, alterTopic("alt", setOp("retention.ms", val)))).(*kmsg.IncrementalAlterConfigsResponse)
		if rr := resp.Resources[0]; rr.ErrorCode != 0 || rr.ResourceName != "alt" {
			t.Fatalf("v%d: %+v", v, rr)
		}
		if got := env.fb.Image().Topic("alt").Configs["retention.ms"]; got != val {
			t.Fatalf("v%d: retention.ms %q", v, got)
		}
	}
	broker := kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{setOp("log.retention.ms", "1")}}
	badOp := setOp("retention.ms", "1")
	badOp.Op = 9
	for _, tc := range []struct {
		name      string
		resources []kmsg.IncrementalAlterConfigsRequestResource
		validate  bool
		codes     []int16
	}{
		{"broker", []kmsg.IncrementalAlterConfigsRequestResource{broker}, false, []int16{kerr.PolicyViolation.Code}},
		{"unknown op", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("alt", badOp)}, false, []int16{kerr.InvalidRequest.Code}},
		{"same config twice", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("alt", setOp("retention.ms", "1"), setOp("retention.ms", "2"))}, false, []int16{kerr.InvalidRequest.Code}},
		{"duplicate resource", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("alt", setOp("retention.ms", "1")), alterTopic("alt", setOp("segment.ms", "1"))}, false,
			[]int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}},
		{"unknown topic", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("absent", setOp("retention.ms", "1"))}, false, []int16{kerr.UnknownTopicOrPartition.Code}},
		{"invalid value", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("alt", setOp("retention.ms", "x"))}, false, []int16{kerr.InvalidConfig.Code}},
		{"validate only", []kmsg.IncrementalAlterConfigsRequestResource{alterTopic("alt", setOp("retention.ms", "77"))}, true, []int16{0}},
		{"group resource", []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: "g"}}, false, []int16{kerr.InvalidRequest.Code}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.roundTrip(alterReq(1, tc.validate, tc.resources...)).(*kmsg.IncrementalAlterConfigsResponse)
			for i, rr := range resp.Resources {
				if rr.ErrorCode != tc.codes[i] || (rr.ErrorCode != 0 && rr.ErrorMessage == nil) {
					t.Errorf("resource %d: error %d (%s), want %d", i, rr.ErrorCode, derefOr(rr.ErrorMessage, ""), tc.codes[i])
				}
			}
			if got := env.fb.Image().Topic("alt").Configs["retention.ms"]; got != "1001" {
				t.Errorf("retention.ms changed to %q", got)
			}
		})
	}
}

func TestDescribeCluster(t *testing.T) {
	env := newTestEnv(t)
	if err := env.fb.ctrl.RegisterBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092, Rack: "r2", Fenced: true}); err != nil {
		t.Fatal(err)
	}
	c := env.dial()
	for _, tc := range []struct {
		v           int16
		endpoint    int8
		fenced, ops bool
		code        int16
		brokers     int
		clusterOps  int32
	}{
		{0, 1, false, true, 0, 1, clusterAuthorizedOps},
		{1, 1, false, false, 0, 1, authorizedOpsOmitted},
		{1, 2, false, false, kerr.MismatchedEndpointType.Code, 0, authorizedOpsOmitted},
		{1, 9, false, false, kerr.UnsupportedEndpointType.Code, 0, authorizedOpsOmitted},
		{2, 1, false, false, 0, 1, authorizedOpsOmitted},
		{2, 1, true, false, 0, 2, authorizedOpsOmitted},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version, req.EndpointType, req.IncludeFencedBrokers, req.IncludeClusterAuthorizedOperations = tc.v, tc.endpoint, tc.fenced, tc.ops
		resp := c.roundTrip(req).(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != tc.code || len(resp.Brokers) != tc.brokers || resp.ClusterAuthorizedOperations != tc.clusterOps {
			t.Errorf("%+v: got error %d, %d brokers, ops %d", tc, resp.ErrorCode, len(resp.Brokers), resp.ClusterAuthorizedOperations)
			continue
		}
		if tc.code != 0 {
			if resp.ErrorMessage == nil {
				t.Errorf("%+v: no error message", tc)
			}
			continue
		}
		if resp.ClusterID != "fake-cluster" || resp.ControllerID != 1 || (tc.v >= 1 && resp.EndpointType != 1) {
			t.Errorf("%+v: %+v", tc, resp)
		}
		if tc.fenced && (!resp.Brokers[1].IsFenced || derefOr(resp.Brokers[1].Rack, "") != "r2") {
			t.Errorf("fenced broker: %+v", resp.Brokers[1])
		}
	}
}

func TestInitProducerID(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: %+v", v, resp)
		}
		seen[resp.ProducerID] = true
	}

	for _, tc := range []struct {
		name     string
		v        int16
		txn      *string
		id       int64
		epoch    int16
		allocErr error
		code     int16
	}{
		{"transactional", 4, ptrTo("txn-1"), -1, -1, nil, kerr.TransactionalIDAuthorizationFailed.Code},
		{"empty transactional id", 4, ptrTo(""), -1, -1, nil, kerr.InvalidRequest.Code},
		{"epoch bump gets a new id", 4, nil, 5, 3, nil, 0},
		{"id without epoch", 3, nil, 5, -1, nil, kerr.InvalidRequest.Code},
		{"epoch without id", 5, nil, -1, 0, nil, kerr.InvalidRequest.Code},
		{"backend kafka error", 2, nil, -1, -1, fmt.Errorf("controller away: %w", kerr.NotController), kerr.NotController.Code},
		{"backend other error", 2, nil, -1, -1, errors.New("disk on fire"), kerr.UnknownServerError.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.fb.mu.Lock()
			env.fb.allocErr = tc.allocErr
			env.fb.mu.Unlock()
			req := kmsg.NewPtrInitProducerIDRequest()
			req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = tc.v, tc.txn, tc.id, tc.epoch
			resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
			if resp.ErrorCode != tc.code {
				t.Fatalf("error %d, want %d", resp.ErrorCode, tc.code)
			}
			if tc.code != 0 {
				if resp.ProducerID != -1 || resp.ProducerEpoch != -1 {
					t.Errorf("failed answer carries id %d epoch %d", resp.ProducerID, resp.ProducerEpoch)
				}
				return
			}
			if resp.ProducerID == tc.id || seen[resp.ProducerID] || resp.ProducerEpoch != 0 {
				t.Errorf("bump: %+v", resp)
			}
		})
	}
}
