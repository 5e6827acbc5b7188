package metadata

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/internal/mutation"
)

// TestMutationStaleLeaderWrites shows the deliberately broken variant
// (internal/mutation) at work: the controller takes the ISR of a leader
// whose epochs are stale, which the unbroken controller fences.
func TestMutationStaleLeaderWrites(t *testing.T) {
	type want struct {
		err                         *kerr.Error
		leader                      int32
		isr                         []int32
		leaderEpoch, partitionEpoch int32
	}
	// Every case starts from: 1 led t/0 (replicas 1 2 3) in epochs 0/0,
	// was fenced, 2 took over (ISR [2 3], epochs 1/1), and 1 came back
	// unfenced without learning of it.
	for _, tc := range []struct {
		name             string
		active           mutation.Kind
		leader           int32
		leaderEp, partEp int32
		isr              []int32
		want             want
	}{
		{"deposed leader, fenced", mutation.None, 1, 0, 0, []int32{1}, want{kerr.NotLeaderForPartition, 2, []int32{2, 3}, 1, 1}},
		{"stale leader epoch, fenced", mutation.None, 2, 0, 1, []int32{2}, want{kerr.FencedLeaderEpoch, 2, []int32{2, 3}, 1, 1}},
		{"stale partition epoch, fenced", mutation.None, 2, 1, 0, []int32{2}, want{kerr.InvalidUpdateVersion, 2, []int32{2, 3}, 1, 1}},
		// Broken: the deposed leader's ISR of itself is taken; the
		// current leader, outside it, gives way (new leader epoch).
		{"deposed leader, taken", mutation.StaleLeaderWrites, 1, 0, 0, []int32{1}, want{nil, 1, []int32{1}, 2, 2}},
		{"stale partition epoch, taken", mutation.StaleLeaderWrites, 2, 1, 0, []int32{2}, want{nil, 2, []int32{2}, 1, 2}},
		// What was never about staleness stays refused.
		{"not a replica, refused", mutation.StaleLeaderWrites, 1, 0, 0, []int32{1, 4}, want{kerr.IneligibleReplica, 2, []int32{2, 3}, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := mutation.Set(tc.active)
			defer mutation.Set(prev)
			c := newTestCluster(t, Defaults{}, 1, 2, 3, 4)
			c.createTopic("t", nil, []int32{1, 2, 3})
			wantErr(t, "fence 1", c.c.ReportDead(1, 0), nil)
			c.heartbeat(1, false)
			wantState(t, "before", c.part("t", 0), 2, []int32{2, 3}, 1, 1)

			_, err := c.c.AlterPartition("t", 0, tc.leader, tc.leaderEp, tc.partEp, tc.isr)
			wantErr(t, "alter", err, tc.want.err)
			wantState(t, "after", c.part("t", 0), tc.want.leader, tc.want.isr, tc.want.leaderEpoch, tc.want.partitionEpoch)
		})
	}
}
