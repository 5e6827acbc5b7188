package main

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func replica(id int32, leo, fetch, caughtUp int64) replicaState {
	return replicaState{ReplicaID: id, LogEndOffset: leo, LastFetchTimestamp: fetch, LastCaughtUpTimestamp: caughtUp}
}

// threeVoters: 2 leads at 100; 1 is at 90, caught up 400 ms before the
// leader; 3 is at 100; observer 4 is at 95.
func threeVoters() quorum {
	var q quorum
	q.LeaderID, q.LeaderEpoch, q.HighWatermark = 2, 7, 98
	q.CurrentVoters = []replicaState{replica(1, 90, 1600, 1500), replica(2, 100, -1, 1900), replica(3, 100, 1890, 1890)}
	q.Observers = []replicaState{replica(4, 95, 1800, 1700)}
	return q
}

func TestWriteQuorumStatus(t *testing.T) {
	single := quorum{}
	single.LeaderID, single.LeaderEpoch, single.HighWatermark = 1, 1, 12
	single.CurrentVoters = []replicaState{replica(1, 12, -1, -1)}
	noLeader := threeVoters()
	noLeader.LeaderID = -1
	unknownTimes := threeVoters()
	unknownTimes.CurrentVoters[0].LastCaughtUpTimestamp = -1

	for _, tc := range []struct {
		name string
		q    quorum
		want string
	}{
		{"three voters", threeVoters(), "ClusterId:              c1\n" +
			"LeaderId:               2\n" +
			"LeaderEpoch:            7\n" +
			"HighWatermark:          98\n" +
			"MaxFollowerLag:         10\n" +
			"MaxFollowerLagTimeMs:   400\n" +
			"CurrentVoters:          [1,2,3]\n" +
			"CurrentObservers:       [4]\n"},
		{"single node", single, "ClusterId:              c1\n" +
			"LeaderId:               1\n" +
			"LeaderEpoch:            1\n" +
			"HighWatermark:          12\n" +
			"MaxFollowerLag:         0\n" +
			"MaxFollowerLagTimeMs:   0\n" +
			"CurrentVoters:          [1]\n" +
			"CurrentObservers:       []\n"},
		{"no leader", noLeader, "MaxFollowerLag:         -1\nMaxFollowerLagTimeMs:   -1\n"},
		{"unknown catch-up time", unknownTimes, "MaxFollowerLag:         10\nMaxFollowerLagTimeMs:   -1\n"},
	} {
		var sb strings.Builder
		writeQuorumStatus(&sb, "c1", tc.q)
		if !strings.Contains(sb.String(), tc.want) {
			t.Errorf("%s: printed\n%s\nwant it to contain\n%s", tc.name, sb.String(), tc.want)
		}
	}
}

func TestWriteQuorumReplication(t *testing.T) {
	var sb strings.Builder
	writeQuorumReplication(&sb, threeVoters())
	want := "" +
		"NodeId  LogEndOffset  Lag  LastFetchTimestamp  LastCaughtUpTimestamp  Status\n" +
		"2       100           0    -1                  1900                   Leader\n" +
		"1       90            10   1600                1500                   Follower\n" +
		"3       100           0    1890                1890                   Follower\n" +
		"4       95            5    1800                1700                   Observer\n"
	if sb.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", sb.String(), want)
	}
}

func TestWriteClusterStatus(t *testing.T) {
	dc := kmsg.NewPtrDescribeClusterResponse()
	dc.ControllerID = 1
	for _, b := range []struct {
		id     int32
		host   string
		fenced bool
	}{{1, "10.0.0.1", false}, {2, "10.0.0.2", false}, {4, "10.0.0.4", true}} {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.IsFenced = b.id, b.host, 9092, b.fenced
		dc.Brokers = append(dc.Brokers, rb)
	}
	q := threeVoters() // voters 1, 2 (leader), 3; observer 4
	n := kmsg.NewDescribeQuorumResponseNode()
	n.NodeID = 3
	l := kmsg.NewDescribeQuorumResponseNodeListener()
	l.Name, l.Host, l.Port = "CONTROLLER", "10.0.0.3", 9093
	n.Listeners = append(n.Listeners, l)
	q.Nodes = append(q.Nodes, n)

	var sb strings.Builder
	writeClusterStatus(&sb, dc, q)
	want := "" +
		"NODE  ROLES              HOST:PORT      STATUS  CONTROLLER\n" +
		"1     broker,controller  10.0.0.1:9092  alive\n" +
		"2     broker,controller  10.0.0.2:9092  alive   *\n" +
		"3     controller         10.0.0.3:9093  -\n" +
		"4     broker             10.0.0.4:9092  fenced\n" +
		"controller: 2, quorum leader epoch 7, 2/3 voters caught up\n"
	if sb.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", sb.String(), want)
	}

	// Without a quorum leader the brokers' controller id is shown.
	q.LeaderID = -1
	sb.Reset()
	writeClusterStatus(&sb, dc, q)
	if !strings.Contains(sb.String(), "\n1     broker,controller  10.0.0.1:9092  alive   *\n") ||
		!strings.HasSuffix(sb.String(), "controller: 1, quorum leader epoch 7, 2/3 voters caught up\n") {
		t.Fatalf("no quorum leader:\n%s", sb.String())
	}
}
