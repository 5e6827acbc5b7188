package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

var (
	tp0 = TP{Topic: "t", Partition: 0}
	tp1 = TP{Topic: "t", Partition: 1}
	tpU = TP{Topic: "u", Partition: 0}
)

// records returns values[i] at base+i.
func records(base int64, values ...string) []Record {
	out := make([]Record, len(values))
	for i, v := range values {
		out[i] = Record{Offset: base + int64(i), Value: v}
	}
	return out
}

// sameOn builds a final partition where every node in nodes holds recs
// and all of them are in sync.
func sameOn(logStart int64, recs []Record, nodes ...int32) FinalPartition {
	fp := FinalPartition{LogStart: logStart, ISR: nodes, Replicas: map[int32][]Record{}}
	for _, n := range nodes {
		fp.Replicas[n] = recs
	}
	return fp
}

func view(parts map[TP]FinalPartition) *FinalView { return &FinalView{Partitions: parts} }

// replicate reports values committed on each node from base, with high
// watermarks rising as they go.
func replicate(c *Checker, tp TP, base int64, values []string, nodes ...int32) {
	for _, n := range nodes {
		for i, v := range values {
			off := base + int64(i)
			c.Committed(n, tp, off, v, 0)
			c.ReplicaHW(n, 1, tp, off+1)
		}
	}
}

func names(vs []Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Check)
	}
	return out
}

type invariantCase struct {
	name  string
	run   func(c *Checker)
	final *FinalView
	want  []string // Check names of all violations, in order
}

func runCases(t *testing.T, cases []invariantCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			if tc.run != nil {
				tc.run(c)
			}
			var fromFinal []Violation
			if tc.final != nil {
				fromFinal = c.Final(*tc.final)
			}
			got := c.Violations()
			if !slices.Equal(names(got), tc.want) {
				t.Fatalf("violations = %v, want checks %v", got, tc.want)
			}
			if !slices.Equal(fromFinal, got[len(got)-len(fromFinal):]) {
				t.Fatalf("Final returned %v, not the tail of %v", fromFinal, got)
			}
			if c.Failed() != (len(tc.want) > 0) {
				t.Fatalf("Failed() = %v with %d violations", c.Failed(), len(tc.want))
			}
		})
	}
}

func TestHealthyRun(t *testing.T) {
	c := New()
	c.ControllerTerm(1, 100)
	c.ControllerTerm(2, 101)
	c.ControllerTerm(2, 101)
	c.Leader(tp0, 0, 1)
	c.Leader(tp0, 1, 2)
	c.Leader(tp0, 1, 2)
	c.Leader(tp1, 1, 3) // another partition's epoch 1
	c.Acked(tp0, 0, []string{"a", "b", "c"})
	c.Acked(tp0, 3, []string{"d"})
	c.Acked(tp1, 0, []string{"a"}) // same value, other partition
	replicate(c, tp0, 0, []string{"a", "b", "c", "d"}, 1, 2, 3)
	replicate(c, tp1, 0, []string{"a"}, 1, 2, 3)
	replicate(c, tp1, 1, []string{"z"}, 1, 2, 3) // committed, its ack lost in transit
	c.Seek("c1", tp0, 0)
	c.Consumed("c1", tp0, []int64{0, 1}, []string{"a", "b"}, 4)
	c.Consumed("c1", tp0, []int64{2, 3}, []string{"c", "d"}, 4)
	c.Consumed("c1", tp0, nil, nil, 4)
	c.Assignment("g", 1, 5, 1, "m1", []TP{tp0})
	c.Assignment("g", 1, 5, 1, "m2", []TP{tp1})
	c.CommitAcked("g", tp0, 2, c.Seq())
	c.CommitFetched("g", tp0, 2, c.Seq())
	c.CommitAcked("g", tp0, 4, c.Seq())
	c.CommitFetched("g", tp0, 4, c.Seq())

	got := c.Final(FinalView{Partitions: map[TP]FinalPartition{
		tp0: sameOn(0, records(0, "a", "b", "c", "d"), 1, 2, 3),
		tp1: sameOn(0, records(0, "a", "z"), 1, 2, 3),
	}})
	if len(got) != 0 || c.Failed() {
		t.Fatalf("healthy run flagged: %v", c.Violations())
	}
	for _, cs := range c.Stats().Checks {
		switch cs.Name {
		case CheckInvalid:
			continue
		}
		if cs.Checked == 0 {
			t.Errorf("check %s was never exercised by the healthy run", cs.Name)
		}
	}
	_, _, h1 := c.ReplicaHash(1, tp0)
	from, upTo, h3 := c.ReplicaHash(3, tp0)
	if h1 == "" || h1 != h3 || from != 0 || upTo != 4 {
		t.Fatalf("replica hashes: node 1 %q, node 3 [%d,%d) %q", h1, from, upTo, h3)
	}
}

func TestValueChecks(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "same value from every source",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"a"})
				c.Committed(1, tp0, 0, "a", 3)
				c.Committed(2, tp0, 0, "a", 3)
				c.Consumed("c", tp0, []int64{0}, []string{"a"}, 1)
			},
		},
		{
			name: "acked and consumed disagree",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"a", "b"})
				c.Consumed("c", tp0, []int64{0, 1}, []string{"a", "x"}, 2)
			},
			want: []string{CheckValueConflict},
		},
		{
			name: "two replicas commit different values",
			run: func(c *Checker) {
				c.Committed(1, tp0, 0, "a", 1)
				c.Committed(2, tp0, 0, "b", 1)
			},
			want: []string{CheckValueConflict},
		},
		{
			name: "same offset in two partitions is no conflict",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"a"})
				c.Acked(tp1, 0, []string{"b"})
			},
		},
		{
			name: "same value stamped with two epochs",
			run: func(c *Checker) {
				c.Committed(1, tp0, 0, "a", 1)
				c.Committed(2, tp0, 0, "a", 2)
				c.Committed(3, tp0, 0, "a", -1) // epoch unknown: not compared
			},
			want: []string{CheckEpochConflict},
		},
		{
			name: "value at two offsets",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"a"})
				c.Acked(tp0, 1, []string{"a"})
			},
			want: []string{CheckDuplicate},
		},
		{
			name: "duplicate seen by a consumer only",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"a"})
				c.Consumed("c", tp0, []int64{0, 1}, []string{"a", "a"}, 2)
			},
			want: []string{CheckDuplicate},
		},
		{
			name: "empty values are exempt from duplicates",
			run: func(c *Checker) {
				c.Acked(tp0, 0, []string{"", ""})
			},
		},
	})
}

func TestHighWatermark(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "rises and repeats",
			run: func(c *Checker) {
				for _, hw := range []int64{0, 3, 3, 7} {
					c.ReplicaHW(1, 1, tp0, hw)
				}
			},
		},
		{
			name: "goes down within an incarnation",
			run: func(c *Checker) {
				c.ReplicaHW(1, 1, tp0, 5)
				c.ReplicaHW(1, 1, tp0, 4)
				c.ReplicaHW(1, 1, tp0, 6)
			},
			want: []string{CheckHWRegress},
		},
		{
			name: "restart may start lower",
			run: func(c *Checker) {
				c.ReplicaHW(1, 1, tp0, 5)
				c.ReplicaHW(1, 2, tp0, 0)
				c.ReplicaHW(1, 2, tp0, 5)
			},
		},
		{
			name: "per node and partition",
			run: func(c *Checker) {
				c.ReplicaHW(1, 1, tp0, 5)
				c.ReplicaHW(2, 1, tp0, 1)
				c.ReplicaHW(1, 1, tp1, 1)
			},
		},
		{
			name: "report from a stale incarnation",
			run: func(c *Checker) {
				c.ReplicaHW(1, 2, tp0, 5)
				c.ReplicaHW(1, 1, tp0, 9)
			},
			want: []string{CheckInvalid},
		},
	})
}

func TestLeadership(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "one leader per epoch, reported again",
			run: func(c *Checker) {
				c.Leader(tp0, 1, 1)
				c.Leader(tp0, 2, 2)
				c.Leader(tp0, 1, 1)
				c.Leader(tp1, 1, 2)
			},
		},
		{
			name: "two leaders in one epoch",
			run: func(c *Checker) {
				c.Leader(tp0, 3, 1)
				c.Leader(tp0, 3, 2)
			},
			want: []string{CheckLeaderEpoch},
		},
		{
			name: "one controller per term",
			run: func(c *Checker) {
				c.ControllerTerm(1, 1)
				c.ControllerTerm(2, 2)
				c.ControllerTerm(2, 2)
			},
		},
		{
			name: "two controllers in one term",
			run: func(c *Checker) {
				c.ControllerTerm(4, 1)
				c.ControllerTerm(4, 3)
			},
			want: []string{CheckControllerTerm},
		},
	})
}

func TestConsumer(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "dense after seek across fetches",
			run: func(c *Checker) {
				c.Seek("c", tp0, 5)
				c.Consumed("c", tp0, []int64{5, 6}, []string{"f", "g"}, 9)
				c.Consumed("c", tp0, []int64{7}, []string{"h"}, 9)
			},
		},
		{
			name: "skip within a fetch",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0, 2, 3}, []string{"a", "c", "d"}, 9)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "skip between fetches",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0, 1}, []string{"a", "b"}, 9)
				c.Consumed("c", tp0, []int64{4}, []string{"e"}, 9)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "out of order",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0, 1, 1, 2}, []string{"a", "b", "b", "c"}, 9)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "first record after seek is not the seek offset",
			run: func(c *Checker) {
				c.Seek("c", tp0, 3)
				c.Consumed("c", tp0, []int64{4}, []string{"e"}, 9)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "first record after seek is before the seek offset",
			run: func(c *Checker) {
				c.Seek("c", tp0, 3)
				c.Consumed("c", tp0, []int64{2}, []string{"c"}, 9)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "seek below the log start jumps to it",
			run: func(c *Checker) {
				c.LogStart(tp0, 10)
				c.Seek("c", tp0, 3)
				c.Consumed("c", tp0, []int64{10, 11}, []string{"k", "l"}, 12)
			},
		},
		{
			name: "seek below the log start may not jump past it",
			run: func(c *Checker) {
				c.LogStart(tp0, 10)
				c.Seek("c", tp0, 3)
				c.Consumed("c", tp0, []int64{11}, []string{"l"}, 12)
			},
			want: []string{CheckConsumeOrder},
		},
		{
			name: "re-seek backwards after a rebalance",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0, 1, 2}, []string{"a", "b", "c"}, 9)
				c.Seek("c", tp0, 1)
				c.Consumed("c", tp0, []int64{1}, []string{"b"}, 9)
			},
		},
		{
			name: "sessions are per consumer and partition",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Seek("d", tp0, 2)
				c.Seek("c", tp1, 7)
				c.Consumed("c", tp0, []int64{0}, []string{"a"}, 9)
				c.Consumed("d", tp0, []int64{2}, []string{"c"}, 9)
				c.Consumed("c", tp1, []int64{7}, []string{"x"}, 9)
				c.Consumed("c", tp0, []int64{1}, []string{"b"}, 9)
			},
		},
		{
			name: "record at the high watermark",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0, 1}, []string{"a", "b"}, 1)
			},
			want: []string{CheckConsumeAboveHW},
		},
		{
			name: "unknown high watermark is not checked",
			run: func(c *Checker) {
				c.Seek("c", tp0, 0)
				c.Consumed("c", tp0, []int64{0}, []string{"a"}, -1)
			},
		},
	})
}

func TestAssignment(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "disjoint members",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0})
				c.Assignment("g", 1, 5, 2, "b", []TP{tp1, tpU})
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0}) // resent
			},
		},
		{
			name: "one partition, two members, one generation",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0, tp1})
				c.Assignment("g", 1, 5, 2, "b", []TP{tp1})
			},
			want: []string{CheckDoubleOwnership},
		},
		{
			name: "moved in the next generation",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0})
				c.Assignment("g", 1, 5, 3, "b", []TP{tp0})
			},
		},
		{
			name: "moved after the member gave it up",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0, tp1})
				c.Assignment("g", 1, 5, 2, "a", []TP{tp1})
				c.Assignment("g", 1, 5, 2, "b", []TP{tp0})
			},
		},
		{
			name: "successor coordinator's generation is separate",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0})
				c.Assignment("g", 2, 6, 2, "b", []TP{tp0})
			},
		},
		{
			name: "two coordinators in one epoch disagree",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0})
				c.Assignment("g", 2, 5, 2, "b", []TP{tp0})
			},
			want: []string{CheckDoubleOwnership},
		},
		{
			name: "groups are separate",
			run: func(c *Checker) {
				c.Assignment("g", 1, 5, 2, "a", []TP{tp0})
				c.Assignment("h", 1, 5, 2, "b", []TP{tp0})
			},
		},
	})
}

func TestCommittedOffsets(t *testing.T) {
	runCases(t, []invariantCase{
		{
			name: "fetch sees the latest acknowledged commit",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				c.CommitAcked("g", tp0, 9, c.Seq())
				c.CommitFetched("g", tp0, 9, c.Seq())
			},
		},
		{
			name: "fetch returns an older commit",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				c.CommitAcked("g", tp0, 9, c.Seq())
				c.CommitFetched("g", tp0, 5, c.Seq())
			},
			want: []string{CheckCommitRegress},
		},
		{
			name: "fetch returns nothing after a commit",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				c.CommitFetched("g", tp0, -1, c.Seq())
			},
			want: []string{CheckCommitRegress},
		},
		{
			name: "fetch sent before the commit was acknowledged",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				sent := c.Seq()
				c.CommitAcked("g", tp0, 9, c.Seq())
				c.CommitFetched("g", tp0, 5, sent)
			},
		},
		{
			name: "commit reported late with an earlier seq",
			run: func(c *Checker) {
				early := c.Seq()
				c.CommitAcked("g", tp0, 3, c.Seq())
				sent := c.Seq()
				c.CommitAcked("g", tp0, 8, early)
				c.CommitFetched("g", tp0, 3, sent)
			},
			want: []string{CheckCommitRegress},
		},
		{
			name: "group deleted by an admin",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				c.CommitsDeleted("g")
				c.CommitFetched("g", tp0, -1, c.Seq())
			},
		},
		{
			name: "partitions and groups are separate",
			run: func(c *Checker) {
				c.CommitAcked("g", tp0, 5, c.Seq())
				c.CommitFetched("g", tp1, -1, c.Seq())
				c.CommitFetched("h", tp0, -1, c.Seq())
			},
		},
	})
}

func TestFinal(t *testing.T) {
	abc := []string{"a", "b", "c"}
	acked := func(c *Checker) { c.Acked(tp0, 0, abc) }
	runCases(t, []invariantCase{
		{
			name:  "acked records on every in-sync replica",
			run:   acked,
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, abc...), 1, 2, 3)}),
		},
		{
			name: "acked record lost on one in-sync replica",
			run:  acked,
			final: view(map[TP]FinalPartition{tp0: {ISR: []int32{1, 2}, Replicas: map[int32][]Record{
				1: records(0, abc...),
				2: records(0, "a", "b"),
			}}}),
			want: []string{CheckAckedLost},
		},
		{
			name:  "acked record lost everywhere",
			run:   acked,
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "a"), 1, 2, 3)}),
			want:  []string{CheckAckedLost, CheckAckedLost, CheckAckedLost},
		},
		{
			name: "lagging replica outside the ISR is not required to hold it",
			run:  acked,
			final: view(map[TP]FinalPartition{tp0: {ISR: []int32{1}, Replicas: map[int32][]Record{
				1: records(0, abc...),
				2: records(0, "a"),
			}}}),
		},
		{
			name:  "below the log start may be gone",
			run:   acked,
			final: view(map[TP]FinalPartition{tp0: sameOn(2, records(2, "c"), 1, 2)}),
		},
		{
			name: "below a log start observed during the run may be gone",
			run: func(c *Checker) {
				acked(c)
				c.LogStart(tp0, 1)
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(1, "b", "c"), 1, 2)}),
		},
		{
			name: "consumed record lost",
			run: func(c *Checker) {
				c.Consumed("c", tp0, []int64{0, 1}, []string{"a", "b"}, 2)
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "a"), 1)}),
			want:  []string{CheckCommittedLost},
		},
		{
			name: "record seen committed is lost",
			run: func(c *Checker) {
				c.Committed(2, tp0, 0, "a", 1)
				c.Truncated(2, tp0, 0)
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, nil, 1, 2)}),
			want:  []string{CheckCommittedLost, CheckCommittedLost},
		},
		{
			name: "truncated and fetched back",
			run: func(c *Checker) {
				acked(c)
				replicate(c, tp0, 0, abc, 2)
				c.Truncated(2, tp0, 1)
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, abc...), 1, 2)}),
		},
		{
			name: "no live in-sync replica",
			run:  acked,
			final: view(map[TP]FinalPartition{tp0: {ISR: []int32{3}, Replicas: map[int32][]Record{
				1: records(0, abc...),
			}}}),
			want: []string{CheckAckedLost},
		},
		{
			name:  "partition missing from the final view",
			run:   acked,
			final: view(map[TP]FinalPartition{}),
			want:  []string{CheckAckedLost},
		},
		{
			name: "deleted topic is forgotten",
			run: func(c *Checker) {
				acked(c)
				c.TopicDeleted("t")
				c.Acked(tp0, 0, []string{"new"}) // recreated topic reuses offsets
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "new"), 1)}),
		},
		{
			name:  "final log duplicates a value",
			run:   acked,
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "a", "b", "c", "a"), 1, 2)}),
			want:  []string{CheckDuplicate},
		},
		{
			name:  "final log disagrees with an acked value",
			run:   acked,
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "a", "x", "c"), 1)}),
			want:  []string{CheckFinalMismatch},
		},
		{
			name: "final log disagrees with a consumed value",
			run: func(c *Checker) {
				c.Consumed("c", tp0, []int64{0}, []string{"a"}, 1)
			},
			final: view(map[TP]FinalPartition{tp0: sameOn(0, records(0, "x"), 1)}),
			want:  []string{CheckFinalMismatch},
		},
		{
			name: "in-sync replicas diverge",
			final: view(map[TP]FinalPartition{tp0: {ISR: []int32{1, 2}, Replicas: map[int32][]Record{
				1: records(0, "a", "b"),
				2: records(0, "a", "x"),
			}}}),
			want: []string{CheckFinalMismatch, CheckReplicaDivergence},
		},
		{
			name: "in-sync replicas of different lengths agree on the common prefix",
			final: view(map[TP]FinalPartition{tp0: {ISR: []int32{1, 2}, Replicas: map[int32][]Record{
				1: records(0, "a", "b"),
				2: records(1, "b", "c"),
			}}}),
		},
		{
			name:  "final log with a gap",
			final: view(map[TP]FinalPartition{tp0: sameOn(0, []Record{{0, "a"}, {2, "c"}}, 1)}),
			want:  []string{CheckReplicaDivergence},
		},
		{
			name: "running hashes of equal ranges differ",
			run: func(c *Checker) {
				c.Committed(1, tp0, 0, "a", 0)
				c.Committed(2, tp0, 0, "b", 0)
			},
			final: view(map[TP]FinalPartition{tp0: {}}),
			want:  []string{CheckValueConflict, CheckReplicaDivergence, CheckCommittedLost},
		},
	})
}

func TestInvalidObservationsDoNotPanic(t *testing.T) {
	c := New()
	c.Acked(tp0, -1, []string{"a"})
	c.Acked(tp0, maxOffset, []string{"a", "b"})
	c.Consumed("c", tp0, []int64{0, 1}, []string{"a"}, 5)
	c.Consumed("c", tp0, []int64{-3}, []string{"a"}, 5)
	c.Seek("c", tp0, -2)
	c.LogStart(tp0, -1)
	c.ReplicaHW(1, 1, tp0, -1)
	c.Committed(1, tp0, -1, "a", 0)
	c.Truncated(1, tp0, -1)
	c.CommitAcked("g", tp0, -2, c.Seq())
	c.Final(FinalView{Partitions: map[TP]FinalPartition{tp0: sameOn(0, []Record{{-1, "z"}, {0, "a"}}, 1)}})
	for _, v := range c.Violations() {
		if v.Check != CheckInvalid && v.Check != CheckReplicaDivergence {
			t.Errorf("unexpected %v", v)
		}
	}
	if got := c.Stats().Checks[chkInvalid].Violations; got != 11 {
		t.Fatalf("invalid observations = %d, want 11: %v", got, c.Violations())
	}
}

func TestReplicaHashFollowsTruncation(t *testing.T) {
	c := New()
	vals := []string{"a", "b", "c", "d"}
	c.Acked(tp0, 0, vals)
	replicate(c, tp0, 0, vals, 1, 2)
	replicate(c, tp0, 0, vals[:2], 3)

	c.Truncated(1, tp0, 2)
	from, upTo, h1 := c.ReplicaHash(1, tp0)
	_, _, h3 := c.ReplicaHash(3, tp0)
	if from != 0 || upTo != 2 || h1 != h3 {
		t.Fatalf("after truncation node 1 [%d,%d) %q, node 3 %q", from, upTo, h1, h3)
	}
	// Fetched back: the chain extends again to match node 2.
	c.Committed(1, tp0, 2, "c", 0)
	c.Committed(1, tp0, 3, "d", 0)
	_, _, h1 = c.ReplicaHash(1, tp0)
	_, _, h2 := c.ReplicaHash(2, tp0)
	if h1 != h2 {
		t.Fatalf("re-fetched chain %q differs from %q", h1, h2)
	}
	// Re-reports (a restart) leave the chain alone.
	c.Committed(2, tp0, 1, "b", 0)
	if _, _, again := c.ReplicaHash(2, tp0); again != h2 {
		t.Fatalf("re-report changed chain")
	}

	tr := c.Truncations()
	if len(tr) != 1 || tr[0] != (Truncation{Node: 1, TP: tp0, To: 2, HW: 4, CutCommitted: true}) {
		t.Fatalf("truncations = %+v", tr)
	}
	if s := c.Stats(); s.Truncations != 1 || s.TruncationsCutting != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if c.Failed() {
		t.Fatalf("violations: %v", c.Violations())
	}
	if _, _, h := c.ReplicaHash(9, tp0); h != "" {
		t.Fatalf("unknown replica has hash %q", h)
	}
}

func TestReplicaHashRestartsAtLogStartGap(t *testing.T) {
	c := New()
	c.Committed(1, tp0, 0, "a", 0)
	c.Committed(1, tp0, 5, "f", 0)
	c.Committed(2, tp0, 5, "f", 0)
	f1, u1, h1 := c.ReplicaHash(1, tp0)
	f2, u2, h2 := c.ReplicaHash(2, tp0)
	if f1 != 5 || u1 != 6 || f1 != f2 || u1 != u2 || h1 != h2 {
		t.Fatalf("node 1 [%d,%d) %q, node 2 [%d,%d) %q", f1, u1, h1, f2, u2, h2)
	}
	if c.Stats().ChainRestarts != 1 {
		t.Fatalf("chain restarts = %d", c.Stats().ChainRestarts)
	}
}

func TestCommitHistoryBounded(t *testing.T) {
	c := New()
	early := c.Seq()
	var last uint64
	for i := range 3 * maxCommitPoints {
		last = c.Seq()
		c.CommitAcked("g", tp0, int64(i), last)
	}
	h := c.groups["g"].commits[tp0]
	if len(h.points) > maxCommitPoints {
		t.Fatalf("history holds %d points", len(h.points))
	}
	// Too old to judge: not checked rather than guessed.
	c.CommitFetched("g", tp0, -1, early)
	if s := c.Stats(); s.UncheckedFetches != 1 {
		t.Fatalf("unchecked fetches = %d", s.UncheckedFetches)
	}
	// Recent ones are still exact, on both sides of the fold.
	c.CommitFetched("g", tp0, 3*maxCommitPoints-1, last)
	c.CommitFetched("g", tp0, 3*maxCommitPoints-2, last-1)
	if c.Failed() {
		t.Fatalf("violations: %v", c.Violations())
	}
	c.CommitFetched("g", tp0, 3*maxCommitPoints-3, last-1)
	if got := names(c.Violations()); !slices.Equal(got, []string{CheckCommitRegress}) {
		t.Fatalf("violations = %v", c.Violations())
	}
}

func TestCommitHistoryOrder(t *testing.T) {
	type commit struct {
		seq    uint64
		offset int64
	}
	cases := []struct {
		name    string
		commits []commit
		// at[seq] = expected highest offset at or before seq
		at map[uint64]int64
	}{
		{"in order", []commit{{1, 5}, {2, 7}, {4, 9}}, map[uint64]int64{0: -1, 1: 5, 3: 7, 4: 9, 100: 9}},
		{"lower later commit ignored", []commit{{1, 5}, {2, 3}}, map[uint64]int64{1: 5, 2: 5}},
		{"late report shadows later points", []commit{{2, 5}, {3, 7}, {1, 8}}, map[uint64]int64{0: -1, 1: 8, 2: 8, 3: 8}},
		{"late report in between", []commit{{1, 5}, {5, 9}, {3, 7}}, map[uint64]int64{2: 5, 3: 7, 4: 7, 5: 9}},
		{"two commits at one seq", []commit{{2, 5}, {2, 6}, {2, 4}}, map[uint64]int64{1: -1, 2: 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &commitHistory{floorMax: -1}
			for _, cm := range tc.commits {
				h.add(cm.seq, cm.offset)
			}
			for seq, want := range tc.at {
				if got, ok := h.atOrBefore(seq); !ok || got != want {
					t.Errorf("at or before %d = %d, %v; want %d", seq, got, ok, want)
				}
			}
			for i := 1; i < len(h.points); i++ {
				if h.points[i].seq <= h.points[i-1].seq || h.points[i].max <= h.points[i-1].max {
					t.Fatalf("points not strictly increasing: %v", h.points)
				}
			}
		})
	}
}

func TestViolationsCapped(t *testing.T) {
	c := New()
	for i := range MaxListed + 50 {
		c.Leader(tp0, 1, int32(i))
	}
	if got := len(c.Violations()); got != MaxListed {
		t.Fatalf("listed %d", got)
	}
	if c.Unlisted() != 50-1 {
		t.Fatalf("unlisted = %d", c.Unlisted())
	}
	if !strings.Contains(c.Summary(), fmt.Sprintf("%-19s checked=%d violations=%d\n", CheckLeaderEpoch, MaxListed+50, MaxListed+49)) {
		t.Fatalf("summary:\n%s", c.Summary())
	}
	// Final's own list is capped separately.
	c2 := New()
	for i := range MaxListed + 10 {
		c2.Acked(TP{Topic: "t", Partition: int32(i)}, 0, []string{"a"})
	}
	if got := len(c2.Final(FinalView{})); got != MaxListed {
		t.Fatalf("Final listed %d", got)
	}
}

func TestSummaryListsEveryCheck(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(New().Summary(), "\n"), "\n")
	if len(lines) != int(numChecks)+1 {
		t.Fatalf("summary has %d lines:\n%v", len(lines), lines)
	}
	for i, name := range checkNames {
		if !strings.HasPrefix(lines[i], name+" ") {
			t.Errorf("line %d = %q, want check %s", i, lines[i], name)
		}
	}
}

// TestDeterministic replays one messy history twice and expects identical
// reports, violations in the same order.
func TestDeterministic(t *testing.T) {
	history := func() (string, []Violation) {
		c := New()
		for p := range int32(8) {
			tp := TP{Topic: "t", Partition: p}
			c.Acked(tp, 0, []string{"a", "b", "c"})
			c.Leader(tp, 1, p%3)
			c.Leader(tp, 1, p%3+1)
		}
		fv := FinalView{Partitions: map[TP]FinalPartition{}}
		for p := range int32(8) {
			tp := TP{Topic: "t", Partition: p}
			fv.Partitions[tp] = FinalPartition{ISR: []int32{3, 1, 2}, Replicas: map[int32][]Record{
				1: records(0, "a"), 2: records(0, "a", "x"), 3: records(0, "a", "b", "c", "a"),
			}}
		}
		c.Final(fv)
		return c.Summary(), c.Violations()
	}
	s1, v1 := history()
	s2, v2 := history()
	if s1 != s2 || !slices.Equal(v1, v2) {
		t.Fatalf("two runs differ:\n%s\n%v\n%s\n%v", s1, v1, s2, v2)
	}
	if len(v1) == 0 {
		t.Fatal("messy history passed")
	}
}

func TestHotPathAllocations(t *testing.T) {
	c := New()
	vals := make([]string, 1<<14)
	for i := range vals {
		vals[i] = fmt.Sprintf("value-%d", i)
	}
	off := int64(0)
	allocs := testing.AllocsPerRun(len(vals)-1, func() {
		c.Committed(1, tp0, off, vals[off], 0)
		c.ReplicaHW(1, 1, tp0, off+1)
		c.Consumed("c", tp0, []int64{off}, vals[off:off+1], off+1)
		off++
	})
	// Chunks and map growth amortize to a small fraction per record.
	if allocs > 0.2 {
		t.Fatalf("%.2f allocations per record", allocs)
	}
	if c.Failed() {
		t.Fatalf("violations: %v", c.Violations())
	}
}

func BenchmarkObservations(b *testing.B) {
	vals := make([]string, 1<<16)
	for i := range vals {
		vals[i] = fmt.Sprintf("value-%d", i)
	}
	b.ReportAllocs()
	c := New()
	off := int64(0)
	for b.Loop() {
		if off == int64(len(vals)) {
			c, off = New(), 0
		}
		v := vals[off : off+1]
		c.Acked(tp0, off, v)
		for n := int32(1); n <= 3; n++ {
			c.Committed(n, tp0, off, v[0], 0)
			c.ReplicaHW(n, 1, tp0, off+1)
		}
		c.Consumed("c", tp0, []int64{off}, v, off+1)
		off++
	}
}
