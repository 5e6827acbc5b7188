package metadata

import (
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAlterPartition(t *testing.T) {
	tc := newTestCluster(t, Defaults{}, 1, 2, 3, 4)
	tc.createTopic("t", nil, []int32{1, 2, 3})
	wantErr(t, "fence 4", tc.c.ReportDead(4, 0), nil)
	for _, tt := range []struct {
		name                     string
		topic                    string
		partition, leader        int32
		leaderEpoch, partitionEp int32
		isr                      []int32
		want                     *kerr.Error
	}{
		{"unknown topic", "nope", 0, 1, 0, 0, []int32{1}, kerr.UnknownTopicOrPartition},
		{"unknown partition", "t", 1, 1, 0, 0, []int32{1}, kerr.UnknownTopicOrPartition},
		{"leader epoch from the future", "t", 0, 1, 1, 0, []int32{1}, kerr.NotController},
		{"partition epoch from the future", "t", 0, 1, 0, 5, []int32{1}, kerr.NotController},
		{"not the leader", "t", 0, 2, 0, 0, []int32{2}, kerr.NotLeaderForPartition},
		{"empty isr", "t", 0, 1, 0, 0, []int32{}, kerr.InvalidRequest},
		{"duplicate in isr", "t", 0, 1, 0, 0, []int32{1, 2, 2}, kerr.InvalidRequest},
		{"leader left out", "t", 0, 1, 0, 0, []int32{2, 3}, kerr.InvalidRequest},
		{"not a replica", "t", 0, 1, 0, 0, []int32{1, 4}, kerr.IneligibleReplica},
		{"shrink", "t", 0, 1, 0, 0, []int32{1, 2}, nil},
		{"stale partition epoch", "t", 0, 1, 0, 0, []int32{1}, kerr.InvalidUpdateVersion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.c.AlterPartition(tt.topic, tt.partition, tt.leader, tt.leaderEpoch, tt.partitionEp, tt.isr)
			wantErr(t, "alter", err, tt.want)
		})
	}
	wantState(t, "after shrink", tc.part("t", 0), 1, []int32{1, 2}, 0, 1)

	// Expanding back; an unchanged ISR writes nothing.
	p, err := tc.c.AlterPartition("t", 0, 1, 0, 1, []int32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "after expand", p, 1, []int32{1, 2, 3}, 0, 2)
	off := tc.c.Image().Offset
	if p, err = tc.c.AlterPartition("t", 0, 1, 0, 2, []int32{1, 2, 3}); err != nil || p.PartitionEpoch != 2 || tc.c.Image().Offset != off {
		t.Fatalf("no-op alter: %+v %v", p, err)
	}

	// Leadership moves: the old leader's epoch is fenced.
	wantErr(t, "fence 1", tc.c.ReportDead(1, 0), nil)
	wantState(t, "after fencing 1", tc.part("t", 0), 2, []int32{2, 3}, 1, 3)
	_, err = tc.c.AlterPartition("t", 0, 1, 0, 3, []int32{1, 2, 3})
	wantErr(t, "old leader", err, kerr.NotLeaderForPartition)
	_, err = tc.c.AlterPartition("t", 0, 2, 0, 3, []int32{2, 3})
	wantErr(t, "stale leader epoch", err, kerr.FencedLeaderEpoch)
	// A fenced broker cannot rejoin the ISR.
	_, err = tc.c.AlterPartition("t", 0, 2, 1, 3, []int32{2, 3, 1})
	wantErr(t, "fenced member", err, kerr.IneligibleReplica)
}

func TestElectLeaders(t *testing.T) {
	tc := newTestCluster(t, Defaults{}, 1, 2, 3)
	tc.createTopic("t", nil, []int32{1, 2}, []int32{2, 3}, []int32{3, 1}, []int32{1, 3})
	// p0: 1 dies and comes back; 2 leads, 1 out of the ISR until the
	// leader adds it. p3: 1 dies, 3 leads, and 3 then dies too: no leader.
	wantErr(t, "fence 1", tc.c.ReportDead(1, 0), nil)
	tc.heartbeat(1, false)
	if _, err := tc.c.AlterPartition("t", 0, 2, 1, 1, []int32{2, 1}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "fence 3", tc.c.ReportDead(3, 0), nil)
	wantState(t, "p3 offline", tc.part("t", 3), -1, []int32{3}, 2, 2)

	tp := func(p int32) TopicPartition { return TopicPartition{"t", p} }
	for _, tt := range []struct {
		name  string
		typ   ElectionType
		parts []TopicPartition
		want  []*kerr.Error
	}{
		{"preferred", ElectPreferred, []TopicPartition{tp(0), tp(1), tp(2), {"t", 9}, {"x", 0}},
			[]*kerr.Error{nil, kerr.ElectionNotNeeded, kerr.PreferredLeaderNotAvailable, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition}},
		{"preferred again", ElectPreferred, []TopicPartition{tp(0), tp(0)}, []*kerr.Error{kerr.ElectionNotNeeded, kerr.InvalidRequest}},
		{"unclean needs no leader", ElectUnclean, []TopicPartition{tp(1)}, []*kerr.Error{kerr.ElectionNotNeeded}},
		{"bad type", ElectionType(7), []TopicPartition{tp(3)}, []*kerr.Error{kerr.InvalidRequest}},
		{"unclean", ElectUnclean, []TopicPartition{tp(3)}, []*kerr.Error{nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := tc.c.ElectLeaders(tt.typ, tt.parts)
			if len(res) != len(tt.want) {
				t.Fatalf("%d results for %d partitions", len(res), len(tt.want))
			}
			for i, r := range res {
				if r.TopicPartition != tt.parts[i] {
					t.Fatalf("result %d is for %v", i, r.TopicPartition)
				}
				wantErr(t, r.Topic, r.Err, tt.want[i])
			}
		})
	}
	wantState(t, "p0 preferred", tc.part("t", 0), 1, []int32{2, 1}, 2, 3)
	wantState(t, "p3 unclean", tc.part("t", 3), 1, []int32{1}, 3, 3)

	// All partitions: only those that needed an election are reported.
	res := tc.c.ElectLeaders(ElectPreferred, nil)
	if len(res) != 1 || res[0].TopicPartition != tp(2) || !errorIs(res[0].Err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("elect all: %+v", res)
	}
	wantErr(t, "fence 1 and 2", tc.c.ReportDead(2, 0), nil)
	wantErr(t, "fence 1 and 2", tc.c.ReportDead(1, 0), nil)
	res = tc.c.ElectLeaders(ElectUnclean, []TopicPartition{tp(0)})
	wantErr(t, "no live replica", res[0].Err, kerr.EligibleLeadersNotAvailable)
}

func TestReassignmentLifecycle(t *testing.T) {
	tc := newTestCluster(t, Defaults{}, 1, 2, 3, 4, 5)
	tc.createTopic("t", nil, []int32{1, 2, 3}, []int32{1, 2, 3}, []int32{1, 2, 3})
	c := tc.c
	reassign := func(p int32, target []int32) error {
		return c.AlterPartitionReassignments([]Reassignment{{Topic: "t", Partition: p, Replicas: target}})[0]
	}
	check := func(what string, p int32, replicas, adding, removing, isr []int32, leader int32) {
		t.Helper()
		got := tc.part("t", p)
		if !slices.Equal(got.Replicas, replicas) || !slices.Equal(got.AddingReplicas, adding) || !slices.Equal(got.RemovingReplicas, removing) ||
			!slices.Equal(got.ISR, isr) || got.Leader != leader {
			t.Fatalf("%s: replicas %v adding %v removing %v isr %v leader %d; want %v %v %v %v %d",
				what, got.Replicas, got.AddingReplicas, got.RemovingReplicas, got.ISR, got.Leader, replicas, adding, removing, isr, leader)
		}
	}
	alter := func(p int32, isr ...int32) Partition {
		t.Helper()
		cur := tc.part("t", p)
		np, err := c.AlterPartition("t", p, cur.Leader, cur.LeaderEpoch, cur.PartitionEpoch, isr)
		if err != nil {
			t.Fatal(err)
		}
		return np
	}

	for _, tt := range []struct {
		name string
		p    int32
		r    []int32
		want *kerr.Error
	}{
		{"cancel with none", 0, nil, kerr.NoReassignmentInProgress},
		{"empty target", 0, []int32{}, kerr.InvalidReplicaAssignment},
		{"duplicate", 0, []int32{4, 4}, kerr.InvalidReplicaAssignment},
		{"unregistered broker", 0, []int32{4, 9}, kerr.InvalidReplicaAssignment},
		{"unknown partition", 7, []int32{4}, kerr.UnknownTopicOrPartition},
		{"same replicas", 0, []int32{1, 2, 3}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, "reassign", reassign(tt.p, tt.r), tt.want) })
	}
	wantState(t, "no-op reassignment", tc.part("t", 0), 1, []int32{1, 2, 3}, 0, 0)

	// p0: [1 2 3] -> [3 4 5]: 4 and 5 catch up before 1 and 2 leave.
	wantErr(t, "start", reassign(0, []int32{3, 4, 5}), nil)
	check("started", 0, []int32{3, 4, 5, 1, 2}, []int32{4, 5}, []int32{1, 2}, []int32{1, 2, 3}, 1)
	if p := tc.part("t", 0); !slices.Equal(p.TargetReplicas(), []int32{3, 4, 5}) || !p.Reassigning() {
		t.Fatalf("target of %+v", p)
	}
	if got := c.ListPartitionReassignments(); len(got) != 1 || got[0].Topic != "t" || got[0].Partition != 0 ||
		!slices.Equal(got[0].AddingReplicas, []int32{4, 5}) || !slices.Equal(got[0].RemovingReplicas, []int32{1, 2}) {
		t.Fatalf("list: %+v", got)
	}
	alter(0, 1, 2, 3, 4)
	check("4 caught up", 0, []int32{3, 4, 5, 1, 2}, []int32{4, 5}, []int32{1, 2}, []int32{1, 2, 3, 4}, 1)
	le := tc.part("t", 0).LeaderEpoch
	np := alter(0, 1, 2, 3, 4, 5)
	check("complete", 0, []int32{3, 4, 5}, nil, nil, []int32{3, 4, 5}, 3)
	if np.Leader != 3 || np.LeaderEpoch != le+1 {
		t.Fatalf("completion returned %+v", np)
	}
	if len(c.ListPartitionReassignments()) != 0 {
		t.Fatal("reassignment still listed")
	}

	// p1: start, then cancel: the adding replica leaves the ISR.
	wantErr(t, "start p1", reassign(1, []int32{4, 2, 3}), nil)
	check("p1 started", 1, []int32{4, 2, 3, 1}, []int32{4}, []int32{1}, []int32{1, 2, 3}, 1)
	wantErr(t, "cancel p1", reassign(1, nil), nil)
	check("p1 cancelled", 1, []int32{2, 3, 1}, nil, nil, []int32{1, 2, 3}, 1)

	// p1 again: a new target restarts from the original replicas; the
	// replica only the old target had leaves the ISR.
	wantErr(t, "start p1", reassign(1, []int32{4, 5, 3}), nil)
	alter(1, 1, 2, 3, 4)
	wantErr(t, "retarget p1", reassign(1, []int32{5, 2, 3}), nil)
	check("p1 retargeted", 1, []int32{5, 2, 3, 1}, []int32{5}, []int32{1}, []int32{1, 2, 3}, 1)
	wantErr(t, "cancel p1", reassign(1, nil), nil)

	// p2: dropping a replica completes at once (nothing to catch up).
	wantErr(t, "shrink p2", reassign(2, []int32{2, 3}), nil)
	check("p2 shrunk", 2, []int32{2, 3}, nil, nil, []int32{2, 3}, 2)
}

func TestPartitionChangeApply(t *testing.T) {
	id := TopicID{7}
	base := applyAllMust(t, NewImage("c"),
		Record{Type: RecordTopic, Topic: &TopicRecord{Name: "t", ID: id}},
		Record{Type: RecordPartition, Partition: &PartitionRecord{TopicID: id, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 9, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}},
	)
	for _, tt := range []struct {
		name     string
		pc       PartitionChangeRecord
		ok       bool
		want     Partition
		unknownT bool
	}{
		{"isr shrink", PartitionChangeRecord{Leader: NoLeaderChange, ISR: []int32{1, 2}}, true,
			Partition{Leader: 1, LeaderEpoch: 4, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}}, false},
		{"leader change", PartitionChangeRecord{Leader: 2}, true,
			Partition{Leader: 2, LeaderEpoch: 5, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, false},
		{"no leader", PartitionChangeRecord{Leader: -1}, true,
			Partition{Leader: -1, LeaderEpoch: 5, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, false},
		{"replica removed bumps leader epoch", PartitionChangeRecord{Leader: NoLeaderChange, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}, true,
			Partition{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 10, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}, false},
		{"reassignment fields", PartitionChangeRecord{Leader: NoLeaderChange, Replicas: []int32{4, 1, 2, 3}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{3}}, true,
			Partition{Leader: 1, LeaderEpoch: 4, PartitionEpoch: 10, Replicas: []int32{4, 1, 2, 3}, ISR: []int32{1, 2, 3}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{3}}, false},
		{"leader not in isr", PartitionChangeRecord{Leader: 3, ISR: []int32{1, 2}}, false, Partition{}, false},
		{"isr not replicas", PartitionChangeRecord{Leader: NoLeaderChange, ISR: []int32{1, 5}}, false, Partition{}, false},
		{"duplicate replicas", PartitionChangeRecord{Leader: NoLeaderChange, Replicas: []int32{1, 1, 2, 3}}, false, Partition{}, false},
		{"no replicas", PartitionChangeRecord{Leader: NoLeaderChange, Replicas: []int32{}}, false, Partition{}, false},
		{"adding not replica", PartitionChangeRecord{Leader: NoLeaderChange, AddingReplicas: []int32{9}}, false, Partition{}, false},
		{"adding and removing overlap", PartitionChangeRecord{Leader: NoLeaderChange, AddingReplicas: []int32{2}, RemovingReplicas: []int32{2}}, false, Partition{}, false},
		{"bad leader", PartitionChangeRecord{Leader: -3}, false, Partition{}, false},
		{"unknown partition", PartitionChangeRecord{Index: 1, Leader: NoLeaderChange}, false, Partition{}, false},
		{"unknown topic", PartitionChangeRecord{Leader: NoLeaderChange}, false, Partition{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pc := tt.pc
			pc.TopicID = id
			if tt.unknownT {
				pc.TopicID = TopicID{8}
			}
			next, err := Apply(base, 5, Record{Type: RecordPartitionChange, PartitionChange: &pc})
			if !tt.ok {
				if err == nil {
					t.Fatal("invalid change applied")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := next.Topic("t").Partitions[0]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			if base.Topic("t").Partitions[0].PartitionEpoch != 9 {
				t.Fatal("Apply changed its input")
			}
		})
	}
	// Encoded and decoded, "clear" (empty) and "keep" (nil) stay apart.
	b, _ := Record{Type: RecordPartitionChange, PartitionChange: &PartitionChangeRecord{Leader: NoLeaderChange, AddingReplicas: []int32{}}}.Encode()
	r, err := DecodeRecord(b)
	if err != nil || r.PartitionChange.AddingReplicas == nil || r.PartitionChange.ISR != nil {
		t.Fatalf("round trip of %s: %+v %v", b, r.PartitionChange, err)
	}
}

func applyAllMust(t *testing.T, img *Image, recs ...Record) *Image {
	t.Helper()
	next, err := ApplyAll(img, img.Offset+1, recs)
	if err != nil {
		t.Fatal(err)
	}
	return next
}
