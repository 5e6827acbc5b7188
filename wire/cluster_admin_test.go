package wire

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// The cluster view of Metadata and DescribeCluster, the advertised
// cluster-administration APIs, and those APIs through franz-go's admin
// client.

// TestMetadataClusterView checks, at every version, what a cluster
// with a fenced broker and a reassignment in progress looks like: the
// fenced broker is not listed (KRaft omits it) but stays in replica
// lists and ISRs, its replicas are offline (v5+), and a reassigning
// partition shows the target followed by the replicas being removed.
func TestMetadataClusterView(t *testing.T) {
	env := newTestEnv(t)
	env.addBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092})
	env.addBroker(metadata.BrokerRecord{ID: 3, Host: "10.0.0.3", Port: 9092, Fenced: true})
	env.createAssigned("m", []int32{1, 3})
	env.createAssigned("n", []int32{1})
	if errs := env.fb.ctrl.AlterPartitionReassignments([]metadata.Reassignment{{Topic: "n", Partition: 0, Replicas: []int32{2}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	c := env.dial()
	for v := int16(0); v <= 13; v++ {
		resp := c.roundTrip(metadataReq(v, "m", "n")).(*kmsg.MetadataResponse)
		var ids []int32
		for _, b := range resp.Brokers {
			ids = append(ids, b.NodeID)
		}
		if !slices.Equal(ids, []int32{1, 2}) {
			t.Errorf("v%d brokers %v, want the unfenced 1 and 2", v, ids)
		}
		p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
		wantReplicas, wantISR, wantCode := []int32{1, 3}, []int32{1, 3}, int16(0)
		var wantOffline []int32
		switch {
		case v == 0: // v0 lists only available replicas and flags the rest
			wantReplicas, wantISR, wantCode = []int32{1}, []int32{1}, kerr.ReplicaNotAvailable.Code
		case v >= 5:
			wantOffline = []int32{3}
		}
		if p0.Leader != 1 || p0.ErrorCode != wantCode || !slices.Equal(p0.Replicas, wantReplicas) ||
			!slices.Equal(p0.ISR, wantISR) || !slices.Equal(p0.OfflineReplicas, wantOffline) {
			t.Errorf("v%d m/0: %+v", v, p0)
		}
		// Moving to [2]: 2 is added, 1 (still the leader) is removed
		// once 2 has caught up.
		if p1.Leader != 1 || p1.ErrorCode != 0 || !slices.Equal(p1.Replicas, []int32{2, 1}) ||
			!slices.Equal(p1.ISR, []int32{1}) || len(p1.OfflineReplicas) != 0 {
			t.Errorf("v%d n/0: %+v", v, p1)
		}
	}
}

func TestAdminApisAdvertised(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1.0.0"
	resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, want := range map[int16][2]int16{
		43: {0, 2}, // ElectLeaders
		45: {0, 0}, // AlterPartitionReassignments
		46: {0, 0}, // ListPartitionReassignments
		55: {0, 2}, // DescribeQuorum
		60: {0, 2}, // DescribeCluster
	} {
		if got[key] != want {
			t.Errorf("key %d (%s): advertised %v, want %v", key, kmsg.NameForKey(key), got[key], want)
		}
	}
}

// TestKadmClusterAdmin drives elections and reassignments with
// franz-go's admin client. The other brokers listen where node 1 does,
// so whatever the client sends them reaches this server.
func TestKadmClusterAdmin(t *testing.T) {
	env := newTestEnv(t)
	host, portStr, _ := net.SplitHostPort(env.addr)
	port, _ := strconv.Atoi(portStr)
	env.addBroker(metadata.BrokerRecord{ID: 2, Host: host, Port: int32(port)})
	env.createAssigned("k", []int32{2, 1}, []int32{1, 2})
	adm, _ := env.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Preferred elections: k/0 is led by 2 already (created so), k/1 by 1.
	var ts kadm.TopicsSet
	ts.Add("k", 0, 1)
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, ts)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if r := res["k"][p]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			t.Errorf("elect k/%d: %+v", p, r)
		}
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("k", 0, []int32{1})
	req.Assign("k", 1, []int32{1, 2, 9})
	altered, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := altered["k"][0]; r.Err != nil {
		t.Errorf("reassign k/0: %+v", r)
	}
	if r := altered["k"][1]; !errors.Is(r.Err, kerr.InvalidReplicaAssignment) || r.ErrMessage == "" {
		t.Errorf("reassign k/1 to an unknown broker: %+v", r)
	}
	// [1] is in the ISR already: k/0 moved at once, with 1 its leader.
	if p := env.partition("k", 0); !slices.Equal(p.Replicas, []int32{1}) || p.Leader != 1 || p.Reassigning() {
		t.Errorf("k/0 after reassignment: %+v", p)
	}
	listed, err := adm.ListPartitionReassignments(ctx, ts)
	if err != nil || len(listed) != 0 {
		t.Errorf("list reassignments: %v %v", listed, err)
	}
}
