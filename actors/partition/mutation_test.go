package partition

import (
	"testing"

	"github.com/troupe-io/troupe/internal/mutation"
)

// These tests show that each deliberately broken variant this package
// carries (internal/mutation) does break what it names, and that with
// the switch off the same steps keep the invariant.

// withMutation runs f with k the active mutation (None: none).
func withMutation(k mutation.Kind, f func()) {
	prev := mutation.Set(k)
	defer mutation.Set(prev)
	f()
}

// TestMutationHWBeforeISR: a leader whose follower has fetched nothing
// must not raise its high watermark past it; broken, it raises it to its
// own durable end and answers acks=-1 alone.
func TestMutationHWBeforeISR(t *testing.T) {
	for _, tc := range []struct {
		active mutation.Kind
		wantHW int64
		acked  bool
	}{
		{mutation.None, 10, false},
		{mutation.HWBeforeISR, 13, true},
	} {
		t.Run(tc.active.String(), func(t *testing.T) {
			withMutation(tc.active, func() {
				c := NewReplica(Settings{AckAfterSync: true}, 1)
				c.Step(Recovered{LogEnd: 10, HighWatermark: 10})
				c.Step(BecomeLeader{LeaderEpoch: 7, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}})
				b, s := records(t, 3, -1, 0, -1)
				c.Step(Produce{Token: "p", Records: b, Summary: s, Acks: -1})
				c.Step(Synced{DurableEnd: 13})
				rd := c.Ready()
				if got := c.HighWatermark(); got != tc.wantHW {
					t.Errorf("high watermark %d, want %d", got, tc.wantHW)
				}
				if acked := len(rd.Replies) == 1 && rd.Replies[0].Result.ErrorCode == 0; acked != tc.acked {
					t.Errorf("acks=-1 answered: %v (%+v), want %v", acked, rd.Replies, tc.acked)
				}
			})
		})
	}
}

// TestMutationAckBeforeFsync: under AckAfterSync nothing is acknowledged,
// nor reported replicated by a follower, before its fsync completes;
// broken, both happen on append. The fsync is still asked for.
func TestMutationAckBeforeFsync(t *testing.T) {
	for _, tc := range []struct {
		active  mutation.Kind
		early   bool  // answered before Synced
		reports int64 // the follower's fetch offset before Synced
	}{
		{mutation.None, false, 0},
		{mutation.AckBeforeFsync, true, 3},
	} {
		t.Run(tc.active.String(), func(t *testing.T) {
			withMutation(tc.active, func() {
				// The single-replica leader, acks=1 and acks=-1.
				h := newHarness(t, durable)
				h.produce("all", 2, -1, 0, -1)
				b, s := records(t, 1, -1, 0, -1)
				h.step(Produce{Token: "one", Records: b, Summary: s, Acks: 1})
				for _, tok := range []string{"all", "one"} {
					if _, answered := h.replies[tok]; answered != tc.early {
						t.Errorf("%s answered before fsync: %v, want %v", tok, answered, tc.early)
					}
				}
				if h.syncs != 1 {
					t.Errorf("%d fsyncs asked, want 1", h.syncs)
				}
				if durable := h.c.DurableEnd(); tc.early != (durable == 3) {
					t.Errorf("durable end %d before any fsync", durable)
				}

				// A follower appending what it fetched.
				c := NewReplica(durable, 2)
				c.Step(Recovered{})
				c.Step(BecomeFollower{Leader: 1, LeaderEpoch: 7, PartitionEpoch: 1, Replicas: []int32{1, 2}})
				c.Ready()
				b, _ = records(t, 3, -1, 0, -1)
				c.Step(FollowerAppend{Token: "f", LeaderEpoch: 7, FetchOffset: 0, Records: b})
				rd := c.Ready()
				if !rd.Sync {
					t.Error("the follower asked no fsync")
				}
				if rd.FollowerFetchOffset != tc.reports || c.FetchOffset() != tc.reports {
					t.Errorf("follower reports fetch offset %d (FetchOffset %d) before fsync, want %d",
						rd.FollowerFetchOffset, c.FetchOffset(), tc.reports)
				}
				if len(rd.FollowerResults) != 1 || rd.FollowerResults[0].FetchOffset != tc.reports {
					t.Errorf("follower result %+v, want fetch offset %d", rd.FollowerResults, tc.reports)
				}
			})
		})
	}
}
