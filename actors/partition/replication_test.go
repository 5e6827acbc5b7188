package partition

import "testing"

// leaderAt returns a leader of epoch 7 whose log ends at 10, having
// appended appended records in its own epoch.
func leaderAt(t *testing.T, appended int) *Core {
	t.Helper()
	c := NewReplica(Settings{AckAfterSync: true}, 1)
	c.Step(Recovered{LogEnd: 10})
	c.Step(BecomeLeader{LeaderEpoch: 7, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}})
	for range appended {
		b, s := records(t, 1, -1, 0, -1)
		c.Step(Produce{Records: b, Summary: s, Acks: 1})
	}
	c.Ready()
	return c
}

func TestEndOffsetForEpoch(t *testing.T) {
	none := EpochLookup{Epoch: -1, EndOffset: -1, LatestEpoch: -1}
	for _, tc := range []struct {
		name     string
		appended int // records appended in epoch 7
		epoch    int32
		lookup   EpochLookup
		want     EpochEndOffset
	}{
		// Nothing appended in epoch 7 yet: the log's history lacks it,
		// the core adds (7, 10).
		{"current epoch", 0, 7, EpochLookup{-1, -1, 5}, EpochEndOffset{7, 10}},
		{"above current", 0, 8, EpochLookup{-1, -1, 5}, EpochEndOffset{-1, -1}},
		{"log's latest ends where 7 starts", 0, 5, EpochLookup{5, 10, 5}, EpochEndOffset{5, 10}},
		{"between latest and current", 0, 6, EpochLookup{-1, -1, 5}, EpochEndOffset{5, 10}},
		{"bounded inside the log", 0, 3, EpochLookup{3, 4, 5}, EpochEndOffset{3, 4}},
		{"empty history", 0, 4, none, EpochEndOffset{4, 10}},
		{"undefined epoch", 0, -1, none, EpochEndOffset{-1, -1}},
		// Once epoch 7 has an append, the log's answer stands.
		{"appended: current", 2, 7, EpochLookup{7, 12, 7}, EpochEndOffset{7, 12}},
		{"appended: above latest", 2, 6, EpochLookup{5, 10, 7}, EpochEndOffset{5, 10}},
		{"appended: above current", 2, 8, EpochLookup{-1, -1, 7}, EpochEndOffset{-1, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := leaderAt(t, tc.appended)
			if got := c.EndOffsetForEpoch(tc.epoch, tc.lookup); got != tc.want {
				t.Fatalf("EndOffsetForEpoch(%d, %+v) = %+v, want %+v", tc.epoch, tc.lookup, got, tc.want)
			}
		})
	}
	// A follower answers from its log alone.
	c := NewReplica(Settings{}, 2)
	c.Step(Recovered{LogEnd: 10})
	c.Step(BecomeFollower{Leader: 1, LeaderEpoch: 7, Replicas: []int32{1, 2}})
	if got := c.EndOffsetForEpoch(7, EpochLookup{-1, -1, 5}); got != (EpochEndOffset{-1, -1}) {
		t.Fatalf("follower answered %+v, want the log's (-1, -1)", got)
	}
}

// TestUpdateFetchState checks Kafka's rule for lastCaughtUpTimeMs: a
// fetch at the leader's log end is caught up now; one at or past what the
// leader had at the follower's previous fetch was caught up as of that
// previous fetch; anything else leaves it.
func TestUpdateFetchState(t *testing.T) {
	type fetch struct {
		offset, nowMs    int64
		leaderEnd        int64 // the leader's log end when it arrives
		wantCaughtUpMs   int64
		wantLastLeaderLE int64
	}
	for _, tc := range []struct {
		name    string
		fetches []fetch
	}{
		{"at the log end", []fetch{{offset: 5, nowMs: 100, leaderEnd: 5, wantCaughtUpMs: 100, wantLastLeaderLE: 5}}},
		{"behind, first fetch", []fetch{{offset: 3, nowMs: 100, leaderEnd: 5, wantCaughtUpMs: 0, wantLastLeaderLE: 5}}},
		{"reached the previous fetch's end", []fetch{
			{offset: 3, nowMs: 100, leaderEnd: 5, wantCaughtUpMs: 0, wantLastLeaderLE: 5},
			{offset: 5, nowMs: 200, leaderEnd: 9, wantCaughtUpMs: 100, wantLastLeaderLE: 9},
		}},
		{"still short of the previous fetch's end", []fetch{
			{offset: 3, nowMs: 100, leaderEnd: 5, wantCaughtUpMs: 0, wantLastLeaderLE: 5},
			{offset: 4, nowMs: 200, leaderEnd: 9, wantCaughtUpMs: 0, wantLastLeaderLE: 9},
		}},
		{"never goes back", []fetch{
			{offset: 5, nowMs: 300, leaderEnd: 5, wantCaughtUpMs: 300, wantLastLeaderLE: 5},
			{offset: 5, nowMs: 400, leaderEnd: 8, wantCaughtUpMs: 300, wantLastLeaderLE: 8},
			{offset: 6, nowMs: 500, leaderEnd: 8, wantCaughtUpMs: 300, wantLastLeaderLE: 8},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Core{}
			f := &replicaState{id: 2, leo: -1, lastFetchLeaderLEO: -1}
			for i, x := range tc.fetches {
				c.logEnd = x.leaderEnd
				c.updateFetchState(f, x.offset, x.nowMs)
				if f.lastCaughtUpMs != x.wantCaughtUpMs || f.lastFetchLeaderLEO != x.wantLastLeaderLE || f.leo != x.offset {
					t.Fatalf("fetch %d: caught up %d, last leader end %d, leo %d; want %d, %d, %d",
						i, f.lastCaughtUpMs, f.lastFetchLeaderLEO, f.leo, x.wantCaughtUpMs, x.wantLastLeaderLE, x.offset)
				}
			}
		})
	}
}
