package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReassignmentMovesReplica: a partition on brokers {1,2} is
// reassigned to {2,3} while it holds records. Broker 3 catches up first
// (both old replicas stay in the replica set and ISR meanwhile), then
// broker 1 leaves and deletes its copy; broker 3's log is the leader's.
func TestReassignmentMovesReplica(t *testing.T) {
	tc := startCluster(t, 3)
	adm := kadm.NewClient(tc.node(1).client())
	// Create with an explicit assignment: partition 0 on brokers 1 and 2.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "moved", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	cr, err := req.RequestWith(ctxT(t), tc.node(1).client())
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(cr.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	tc.waitInSync("moved", 0, 2)
	cl := tc.client(kgo.DefaultProduceTopic("moved"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 2000; i++ {
		cl.Produce(ctxT(t), &kgo.Record{Value: []byte("m" + strconv.Itoa(i))}, nil)
	}
	if err := cl.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	var reqs kadm.AlterPartitionAssignmentsReq
	reqs.Assign("moved", 0, []int32{2, 3})
	ar, err := adm.AlterPartitionAssignments(ctxT(t), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.Error(); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	waitUntil(t, 30*time.Second, "reassignment completes", func() (bool, string) {
		mp := tc.partitionState("moved", 0)
		done := slices.Equal(sorted(mp.Replicas), []int32{2, 3}) && len(mp.AddingReplicas) == 0 && len(mp.RemovingReplicas) == 0
		return done, fmt.Sprintf("replicas %v isr %v adding %v removing %v", mp.Replicas, mp.ISR, mp.AddingReplicas, mp.RemovingReplicas)
	})
	tc.waitInSync("moved", 0, 2)
	vals, _ := tc.replicaValues(3, "moved", 0)
	if len(vals) != 2000 {
		t.Fatalf("broker 3 holds %d of 2000 records after the move", len(vals))
	}
	tc.requireReplicasEqual("moved", 0)
	waitUntil(t, 10*time.Second, "broker 1 drops its replica", func() (bool, string) {
		return tc.node(1).node.host.Partition("moved", 0) == nil, "still running"
	})
	lr, err := adm.ListPartitionReassignments(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lr) != 0 {
		t.Fatalf("reassignments still listed: %+v", lr)
	}
}

func sorted(s []int32) []int32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
