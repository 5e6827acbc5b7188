package wire

import (
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func describeQuorumReq(v int16, topics map[string][]int32) *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = v
	for _, name := range sortedNames(topics) {
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = name
		for _, p := range topics[name] {
			rp := kmsg.NewDescribeQuorumRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

var metadataLog = map[string][]int32{"__cluster_metadata": {0}}

// replicaStates renders replica states as "id:leo:fetch:caughtUp".
func replicaStates(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d:%d:%d:%d", r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp))
	}
	return out
}

func quorumNodes(ns []kmsg.DescribeQuorumResponseNode) []string {
	var out []string
	for _, n := range ns {
		for _, l := range n.Listeners {
			out = append(out, fmt.Sprintf("%d %s://%s:%d", n.NodeID, l.Name, l.Host, l.Port))
		}
	}
	return out
}

func TestDescribeQuorumEveryVersion(t *testing.T) {
	env := newTestEnv(t)
	// Voters 1 (the leader), 2 (behind) and 3 (not registered);
	// observer 4, a broker without a controller listener.
	env.addBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092, ControllerAddr: "10.0.0.2:9093", Roles: metadata.RoleBroker | metadata.RoleController})
	env.addBroker(metadata.BrokerRecord{ID: 4, Host: "10.0.0.4", Port: 9092, Roles: metadata.RoleBroker})
	env.fb.setQuorum(QuorumInfo{
		LeaderID: 1, LeaderEpoch: 7, HighWatermark: 42,
		Voters: []QuorumReplica{
			{ID: 1, LogEndOffset: 42, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1},
			{ID: 2, LogEndOffset: 40, LastFetchTimestamp: 1000, LastCaughtUpTimestamp: 900},
			{ID: 3, LogEndOffset: -1, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1},
		},
		Observers: []QuorumReplica{{ID: 4, LogEndOffset: 41, LastFetchTimestamp: 1001, LastCaughtUpTimestamp: 950}},
	})
	host, port, _ := net.SplitHostPort(env.addr)
	c := env.dial()
	for v := int16(0); v <= 2; v++ {
		resp := c.roundTrip(describeQuorumReq(v, metadataLog)).(*kmsg.DescribeQuorumResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != "__cluster_metadata" || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.Partition != 0 || p.ErrorCode != 0 || p.LeaderID != 1 || p.LeaderEpoch != 7 || p.HighWatermark != 42 {
			t.Errorf("v%d partition: %+v", v, p)
		}
		// The timestamps are v1+; a v0 decoder leaves their -1 default.
		wantVoters := []string{"1:42:-1:-1", "2:40:1000:900", "3:-1:-1:-1"}
		wantObservers := []string{"4:41:1001:950"}
		if v == 0 {
			wantVoters = []string{"1:42:-1:-1", "2:40:-1:-1", "3:-1:-1:-1"}
			wantObservers = []string{"4:41:-1:-1"}
		}
		if got := replicaStates(p.CurrentVoters); !slices.Equal(got, wantVoters) {
			t.Errorf("v%d voters %q, want %q", v, got, wantVoters)
		}
		if got := replicaStates(p.Observers); !slices.Equal(got, wantObservers) {
			t.Errorf("v%d observers %q, want %q", v, got, wantObservers)
		}
		var wantNodes []string
		if v >= 2 {
			wantNodes = []string{
				"1 PLAINTEXT://" + host + ":" + port,
				"2 CONTROLLER://10.0.0.2:9093", "2 PLAINTEXT://10.0.0.2:9092",
				"4 PLAINTEXT://10.0.0.4:9092",
			}
		}
		if got := quorumNodes(resp.Nodes); !slices.Equal(got, wantNodes) {
			t.Errorf("v%d nodes %q, want %q", v, got, wantNodes)
		}
	}
}

func TestDescribeQuorumErrors(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()

	// Anything but partition 0 of __cluster_metadata: every requested
	// partition is unknown, and the Backend is not asked.
	for _, topics := range []map[string][]int32{
		{"orders": {0}},
		{"__cluster_metadata": {1}},
		{"__cluster_metadata": {0, 1}},
		{"__cluster_metadata": {0}, "orders": {0}},
		{},
	} {
		for v := int16(0); v <= 2; v++ {
			resp := c.roundTrip(describeQuorumReq(v, topics)).(*kmsg.DescribeQuorumResponse)
			n := 0
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					n++
					if rp.ErrorCode != kerr.UnknownTopicOrPartition.Code || (v >= 2) != (rp.ErrorMessage != nil) {
						t.Errorf("v%d %v: %s/%d answered %+v", v, topics, rt.Topic, rp.Partition, rp)
					}
				}
			}
			want := 0
			for _, ps := range topics {
				want += len(ps)
			}
			if resp.ErrorCode != 0 || n != want {
				t.Errorf("v%d %v: top-level %d, %d partitions answered, want %d", v, topics, resp.ErrorCode, n, want)
			}
		}
	}
	if n := env.fb.called("DescribeQuorum"); n != 0 {
		t.Fatalf("backend asked %d times", n)
	}

	// A Backend failure is the top-level error, with its message from v2.
	env.fb.setAdminErr("DescribeQuorum", fmt.Errorf("no raft leader: %w", kerr.NotLeaderForPartition))
	for v := int16(0); v <= 2; v++ {
		resp := c.roundTrip(describeQuorumReq(v, metadataLog)).(*kmsg.DescribeQuorumResponse)
		wantMsg := ""
		if v >= 2 {
			wantMsg = "no raft leader"
		}
		if resp.ErrorCode != kerr.NotLeaderForPartition.Code || derefOr(resp.ErrorMessage, "") != wantMsg || len(resp.Topics) != 0 {
			t.Errorf("v%d backend failure: %+v", v, resp)
		}
	}
}

func TestSplitListener(t *testing.T) {
	for _, tc := range []struct {
		addr string
		host string
		port uint16
		ok   bool
	}{
		{"10.0.0.1:9093", "10.0.0.1", 9093, true},
		{"[::1]:9093", "::1", 9093, true},
		{"", "", 0, false},
		{"10.0.0.1", "", 0, false},
		{"10.0.0.1:0", "", 0, false},
		{"10.0.0.1:65536", "", 0, false},
		{"10.0.0.1:x", "", 0, false},
	} {
		host, port, ok := splitListener(tc.addr)
		if host != tc.host || port != tc.port || ok != tc.ok {
			t.Errorf("splitListener(%q) = %q %d %v", tc.addr, host, port, ok)
		}
	}
}
