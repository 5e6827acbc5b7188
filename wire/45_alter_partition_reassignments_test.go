package wire

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// reassignEnv is node 1 with brokers 2 and 3 live and topic "r" of two
// partitions, both on [1].
func reassignEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.addBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092})
	env.addBroker(metadata.BrokerRecord{ID: 3, Host: "10.0.0.3", Port: 9092})
	env.createAssigned("r", []int32{1}, []int32{1})
	return env
}

// target is one partition of an AlterPartitionReassignments request;
// cancel sends null replicas.
type target struct {
	topic     string
	partition int32
	replicas  []int32
	cancel    bool
}

func alterReassignReq(targets ...target) *kmsg.AlterPartitionAssignmentsRequest {
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	for _, tg := range targets {
		i := slices.IndexFunc(req.Topics, func(t kmsg.AlterPartitionAssignmentsRequestTopic) bool { return t.Topic == tg.topic })
		if i < 0 {
			i = len(req.Topics)
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic = tg.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition = tg.partition
		rp.Replicas = tg.replicas
		if !tg.cancel && rp.Replicas == nil {
			rp.Replicas = []int32{} // an empty target, not a cancel
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

func alterReassignCodes(t *testing.T, resp *kmsg.AlterPartitionAssignmentsResponse) map[string]int16 {
	t.Helper()
	out := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			k := fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)
			if rp.ErrorCode != 0 && rp.ErrorMessage == nil {
				t.Errorf("%s: error %d without a message", k, rp.ErrorCode)
			}
			out[k] = rp.ErrorCode
		}
	}
	return out
}

// listReassignReq lists all reassignments for nil topics.
func listReassignReq(topics map[string][]int32) *kmsg.ListPartitionReassignmentsRequest {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	if topics != nil {
		req.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{}
		for _, name := range sortedNames(topics) {
			rt := kmsg.NewListPartitionReassignmentsRequestTopic()
			rt.Topic, rt.Partitions = name, topics[name]
			req.Topics = append(req.Topics, rt)
		}
	}
	return req
}

// listed renders a list response as "topic/partition replicas +adding -removing" lines.
func listed(resp *kmsg.ListPartitionReassignmentsResponse) []string {
	var out []string
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, fmt.Sprintf("%s/%d %v +%v -%v", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas))
		}
	}
	return out
}

func TestPartitionReassignments(t *testing.T) {
	env := reassignEnv(t)
	c := env.dial()

	// Moving r/0 from [1] to [2,3] adds two replicas that are not in
	// the ISR yet: the reassignment stays in progress, the old replica
	// still there. r/1's target is what it has: nothing to do.
	resp := c.roundTrip(alterReassignReq(
		target{topic: "r", partition: 0, replicas: []int32{2, 3}},
		target{topic: "r", partition: 1, replicas: []int32{1}},
		target{topic: "r", partition: 5, replicas: []int32{1}},
		target{topic: "missing", partition: 0, replicas: []int32{1}},
	)).(*kmsg.AlterPartitionAssignmentsResponse)
	want := map[string]int16{"r/0": 0, "r/1": 0, "r/5": kerr.UnknownTopicOrPartition.Code, "missing/0": kerr.UnknownTopicOrPartition.Code}
	if got := alterReassignCodes(t, resp); resp.ErrorCode != 0 || !maps.Equal(got, want) {
		t.Fatalf("start: top-level %d, %v, want %v", resp.ErrorCode, got, want)
	}
	if p := env.partition("r", 0); !slices.Equal(p.Replicas, []int32{2, 3, 1}) || !slices.Equal(p.AddingReplicas, []int32{2, 3}) || !slices.Equal(p.RemovingReplicas, []int32{1}) {
		t.Fatalf("r/0 in reassignment: %+v", p)
	}

	// Invalid targets, and cancelling what is not in progress.
	resp = c.roundTrip(alterReassignReq(
		target{topic: "r", partition: 1, replicas: nil},           // empty
		target{topic: "r", partition: 1, replicas: []int32{1, 1}}, // twice
		target{topic: "r", partition: 1, replicas: []int32{9}},    // unregistered
		target{topic: "r", partition: 1, cancel: true},            // nothing to cancel
	)).(*kmsg.AlterPartitionAssignmentsResponse)
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode == 0 {
			t.Fatalf("invalid request accepted: %+v", resp.Topics)
		}
	}
	codes := make([]int16, 0, 4)
	for _, rp := range resp.Topics[0].Partitions {
		codes = append(codes, rp.ErrorCode)
	}
	inv := kerr.InvalidReplicaAssignment.Code
	if !slices.Equal(codes, []int16{inv, inv, inv, kerr.NoReassignmentInProgress.Code}) {
		t.Fatalf("invalid requests answered %v", codes)
	}

	// Listing: everything, or only the requested partitions.
	for _, tc := range []struct {
		name   string
		topics map[string][]int32
		want   []string
	}{
		{"all", nil, []string{"r/0 [2 3 1] +[2 3] -[1]"}},
		{"that partition", map[string][]int32{"r": {0, 1}}, []string{"r/0 [2 3 1] +[2 3] -[1]"}},
		{"another partition", map[string][]int32{"r": {1}}, nil},
		{"unknown topic", map[string][]int32{"missing": {0}}, nil},
		{"no partitions", map[string][]int32{"r": {}}, nil},
	} {
		lr := c.roundTrip(listReassignReq(tc.topics)).(*kmsg.ListPartitionReassignmentsResponse)
		if got := listed(lr); lr.ErrorCode != 0 || !slices.Equal(got, tc.want) {
			t.Errorf("list %s: error %d, %q, want %q", tc.name, lr.ErrorCode, got, tc.want)
		}
	}

	// Cancelling puts r/0 back on [1].
	resp = c.roundTrip(alterReassignReq(target{topic: "r", partition: 0, cancel: true})).(*kmsg.AlterPartitionAssignmentsResponse)
	if got := alterReassignCodes(t, resp); !maps.Equal(got, map[string]int16{"r/0": 0}) {
		t.Fatalf("cancel: %v", got)
	}
	if p := env.partition("r", 0); !slices.Equal(p.Replicas, []int32{1}) || p.Reassigning() {
		t.Fatalf("r/0 after cancelling: %+v", p)
	}
	if lr := c.roundTrip(listReassignReq(nil)).(*kmsg.ListPartitionReassignmentsResponse); len(lr.Topics) != 0 {
		t.Fatalf("list after cancelling: %q", listed(lr))
	}
}

func TestPartitionReassignmentsBackendErrors(t *testing.T) {
	env := reassignEnv(t)
	c := env.dial()
	failure := fmt.Errorf("controller moved: %w", kerr.NotController)
	env.fb.setAdminErr("AlterPartitionReassignments", failure)
	env.fb.setAdminErr("ListPartitionReassignments", failure)

	resp := c.roundTrip(alterReassignReq(
		target{topic: "r", partition: 0, replicas: []int32{2}},
		target{topic: "r", partition: 1, cancel: true},
	)).(*kmsg.AlterPartitionAssignmentsResponse)
	nc := kerr.NotController.Code
	if got := alterReassignCodes(t, resp); resp.ErrorCode != nc || derefOr(resp.ErrorMessage, "") != "controller moved" ||
		!maps.Equal(got, map[string]int16{"r/0": nc, "r/1": nc}) {
		t.Fatalf("alter: top-level %d %v, partitions %v", resp.ErrorCode, resp.ErrorMessage, got)
	}
	if p := env.partition("r", 0); p.Reassigning() {
		t.Fatalf("a failed request reassigned: %+v", p)
	}

	lr := c.roundTrip(listReassignReq(nil)).(*kmsg.ListPartitionReassignmentsResponse)
	if lr.ErrorCode != nc || derefOr(lr.ErrorMessage, "") != "controller moved" || len(lr.Topics) != 0 {
		t.Fatalf("list: %+v", lr)
	}

	// An empty request answers without asking the Backend.
	calls := env.fb.called("AlterPartitionReassignments")
	if resp := c.roundTrip(alterReassignReq()).(*kmsg.AlterPartitionAssignmentsResponse); resp.ErrorCode != 0 || len(resp.Topics) != 0 ||
		env.fb.called("AlterPartitionReassignments") != calls {
		t.Fatalf("empty request: %+v", resp)
	}
}
