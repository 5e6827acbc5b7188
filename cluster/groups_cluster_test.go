package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/actors/group"
)

// TestGroupCoordinatorFailoverOnCluster: on a 3-node cluster the group's
// offsets partition is replicated (RF 3); when its leader — the group's
// coordinator — stops, another replica leads it, replays the group from
// __consumer_offsets, the members find the new coordinator, and no
// committed offset is lost.
func TestGroupCoordinatorFailoverOnCluster(t *testing.T) {
	tc := startCluster(t, 3, groupNodeOverrides...)
	topic, grp := "gfo", "g-gfo"
	tc.createReplicated(topic, 4, 3, nil)
	prod := tc.client()
	produceN(t, prod, topic, 200, "a")

	// FindCoordinator creates __consumer_offsets (RF 3 here); its
	// partition for the group is led by the coordinator.
	p := group.PartitionFor(grp, 5)
	var coord int
	seed := 1
	m1 := startMember(t, tc.node(seed), "m1", grp, topic)
	waitUntil(t, 20*time.Second, "offsets topic", func() (bool, string) {
		mp := tc.partitionState(OffsetsTopic, p)
		coord = int(mp.Leader)
		return mp.Leader >= 0 && len(mp.ISR) == 3, ""
	})
	// What a member read is committed when it leaves, so the group reads
	// it only once: a member replaced here counts with the others.
	gone := m1
	if coord == seed {
		seed = coord%3 + 1
		m1.close()
		m1 = startMember(t, tc.node(seed), "m1", grp, topic)
	}
	m2 := startMember(t, tc.node(seed), "m2", grp, topic)
	waitBalanced(t, 4, m1, m2)
	waitConsumed(t, values("a", 200), gone, m1, m2)

	// A fresh client per look, seeded with the running nodes: a client
	// that cached the old coordinator would keep dialling it.
	fetchOffsets := func() (kadm.OffsetResponses, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(tc.bootstrap()...))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		return kadm.NewClient(cl).FetchOffsets(ctxT(t), grp)
	}
	committed := func() int64 {
		fo, err := fetchOffsets()
		if err != nil || fo.Error() != nil {
			return -1
		}
		var sum int64
		fo.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum
	}
	waitUntil(t, 20*time.Second, "commits before the failover", func() (bool, string) { return committed() == 200, "" })

	tc.stop(coord)
	waitUntil(t, 20*time.Second, "new coordinator", func() (bool, string) {
		mp := tc.partitionState(OffsetsTopic, p)
		return mp.Leader >= 0 && int(mp.Leader) != coord, ""
	})
	// Nothing committed is lost: the new coordinator answers 200 at once.
	waitUntil(t, 40*time.Second, "commits after the failover", func() (bool, string) {
		c := committed()
		if c >= 0 && c < 200 {
			t.Fatalf("committed offsets went back to %d after the coordinator moved", c)
		}
		fo, err := fetchOffsets()
		return c == 200, fmt.Sprintf("committed %d (%v %v)", c, err, fo.Error())
	})
	// The members carry on with the new coordinator.
	produceN(t, prod, topic, 200, "b")
	waitConsumed(t, values("b", 200), m1, m2)
	waitUntil(t, 30*time.Second, "commits on the new coordinator", func() (bool, string) { return committed() == 400, "" })
}
