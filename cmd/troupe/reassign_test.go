package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFormatReassignmentJSON(t *testing.T) {
	got := formatReassignmentJSON([]partitionReplicas{
		{Topic: "a", Partition: 0, Replicas: []int32{1, 2}},
		{Topic: "b", Partition: 3, Replicas: []int32{3}, LogDirs: []string{"any"}},
	})
	want := `{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},` +
		`{"topic":"b","partition":3,"replicas":[3],"log_dirs":["any"]}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestReadReassignmentFile(t *testing.T) {
	for _, tc := range []struct {
		content, err string
	}{
		{`{"version":1,"partitions":[{"topic":"b","partition":0,"replicas":[2]},{"topic":"a","partition":1,"replicas":[1,2],"log_dirs":["any","any"]}]}`, ""},
		{`{"version":2,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}`, "unsupported version 2"},
		{`{"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}`, "unsupported version 0"},
		{`{"version":1,"partitions":[]}`, "cannot be empty"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}`, "a-0 is listed twice"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[]}]}`, "a-0 has no replicas"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2,1]}]}`, "lists replica 1 twice"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, "1 log_dirs for 2 replicas"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/data"]}]}`, `log dir "/data"`},
		{`{"version":1,"partitions":[{"topic":"","partition":0,"replicas":[1]}]}`, "invalid partition"},
		{`[1,2]`, "parse"},
	} {
		parts, err := readReassignmentFile(writeFile(t, "r.json", tc.content))
		switch {
		case tc.err == "":
			// Sorted by topic and partition.
			if err != nil || len(parts) != 2 || parts[0].Topic != "a" || !slices.Equal(parts[0].Replicas, []int32{1, 2}) {
				t.Errorf("%s: %+v %v", tc.content, parts, err)
			}
		case err == nil || !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: error %v, want %q", tc.content, err, tc.err)
		}
	}
}

func TestProposeAssignment(t *testing.T) {
	details := kadm.TopicDetails{
		"a": {Topic: "a", Partitions: kadm.PartitionDetails{
			0: {Partition: 0, Replicas: []int32{1, 2}},
			1: {Partition: 1, Replicas: []int32{2, 1}},
		}},
		"b": {Topic: "b", Partitions: kadm.PartitionDetails{0: {Partition: 0, Replicas: []int32{1}}}},
	}
	current, proposed, err := proposeAssignment([]string{"a", "b"}, details, []int32{4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	// Round-robin over the broker list, continuing across topics.
	if got := formatReassignmentJSON(proposed); got != formatReassignmentJSON([]partitionReplicas{
		{Topic: "a", Partition: 0, Replicas: []int32{4, 5}},
		{Topic: "a", Partition: 1, Replicas: []int32{5, 6}},
		{Topic: "b", Partition: 0, Replicas: []int32{6}},
	}) {
		t.Errorf("proposed %s", got)
	}
	if len(current) != 3 || !slices.Equal(current[1].Replicas, []int32{2, 1}) {
		t.Errorf("current %+v", current)
	}
	if _, _, err := proposeAssignment([]string{"a"}, details, []int32{4}); err == nil || !strings.Contains(err.Error(), "more than the 1 brokers") {
		t.Errorf("replication factor above the broker count: %v", err)
	}
}

func TestReassignFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of"},
		{[]string{"--execute", "--verify", "--reassignment-json-file", "f"}, "exactly one of"},
		{[]string{"--generate", "--broker-list", "1"}, "--generate needs"},
		{[]string{"--execute"}, "need --reassignment-json-file"},
		{[]string{"--list", "--broker-list", "1"}, "go with --generate only"},
		{[]string{"--list", "--reassignment-json-file", "f"}, "goes with --execute, --verify or --cancel only"},
		{[]string{"--verify", "--reassignment-json-file", "f", "--additional"}, "--additional goes with --execute only"},
		{[]string{"--generate", "--topics-to-move-json-file", "f", "--broker-list", "1,x"}, "no such file"},
	} {
		r := troupe(t, "", append([]string{"reassign-partitions", "--bootstrap-server", closedAddr(t)}, tc.args...)...)
		assertOneErrorLine(t, r, tc.want)
	}
	if _, err := parseBrokerList("1, 2,3"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "1,x", "1,1", "-1"} {
		if _, err := parseBrokerList(bad); err == nil {
			t.Errorf("--broker-list %q accepted", bad)
		}
	}
}

// reassigning makes kfake, which never has reassignments in progress,
// answer ListPartitionReassignments as if t-0 were moving from [1,2] to
// [2,3] (3 being added and 1 removed).
func reassigning(c *kfake.Cluster) {
	c.ControlKey(46, func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		lr := req.(*kmsg.ListPartitionReassignmentsRequest)
		resp := lr.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		wanted := lr.Topics == nil
		for _, t := range lr.Topics {
			wanted = wanted || t.Topic == "t" && slices.Contains(t.Partitions, 0)
		}
		if wanted {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = "t"
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = 0, []int32{2, 3, 1}, []int32{3}, []int32{1}
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

func TestReassignPartitionsAgainstKfake(t *testing.T) {
	c, bs := newKfake3(t)
	b := []string{"--bootstrap-server", bs}
	mustTroupe(t, "", append([]string{"topics", "create", "--topic", "t", "--partitions", "2", "--replication-factor", "2"}, b...)...)
	reassign := func(args ...string) result {
		return troupe(t, "", append(append([]string{"reassign-partitions"}, args...), b...)...)
	}
	var meta kadm.TopicDetail
	withAdminT(t, bs, func(adm *kadm.Client) {
		meta = mustLookup(t, adm, "t")
	})
	current := formatReassignmentJSON([]partitionReplicas{
		{Topic: "t", Partition: 0, Replicas: meta.Partitions[0].Replicas},
		{Topic: "t", Partition: 1, Replicas: meta.Partitions[1].Replicas},
	})

	// --generate: the current assignment, and a round-robin proposal.
	topicsFile := writeFile(t, "topics.json", `{"version":1,"topics":[{"topic":"t"}]}`)
	r := reassign("--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "2,0")
	want := "Current partition replica assignment\n" + current + "\n\n" +
		"Proposed partition reassignment configuration\n" +
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,0],"log_dirs":["any","any"]},{"topic":"t","partition":1,"replicas":[0,2],"log_dirs":["any","any"]}]}` + "\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("generate: %+v\nwant %q", r, want)
	}
	assertOneErrorLine(t, reassign("--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "0,7"), "brokers 7 are not available")
	assertOneErrorLine(t, reassign("--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "0"), "more than the 1 brokers")

	// --execute: the rollback JSON first, then the start.
	planFile := writeFile(t, "plan.json", `{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[0,2]},{"topic":"t","partition":0,"replicas":[2,0]}]}`)
	r = reassign("--execute", "--reassignment-json-file", planFile)
	want = "Current partition replica assignment\n\n" + current + "\n\n" +
		"Save this to use as the --reassignment-json-file option during rollback\n" +
		"Successfully started partition reassignments for t-0,t-1\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("execute: %+v\nwant %q", r, want)
	}
	missingFile := writeFile(t, "missing.json", `{"version":1,"partitions":[{"topic":"t","partition":9,"replicas":[0]}]}`)
	assertOneErrorLine(t, reassign("--execute", "--reassignment-json-file", missingFile), "partition t-9 does not exist")

	// kfake moves nothing, so --verify finds the old replicas (unless
	// the plan happens to be what kfake placed).
	r = reassign("--verify", "--reassignment-json-file", planFile)
	if r.code != 0 || !strings.HasPrefix(r.out, "Status of partition reassignment:\n") || strings.Count(r.out, "\n") != 3 {
		t.Fatalf("verify: %+v", r)
	}
	for p, target := range map[int32]string{0: "2,0", 1: "0,2"} {
		line := "Reassignment of partition t-" + string(rune('0'+p)) + " is completed.\n"
		if cur := joinIDs(meta.Partitions[p].Replicas); cur != target {
			line = "There is no active reassignment of partition t-" + string(rune('0'+p)) + ", but replica set is " + cur + " rather than " + target + ".\n"
		}
		if !strings.Contains(r.out, line) {
			t.Errorf("verify lacks %q:\n%s", line, r.out)
		}
	}
	if r := reassign("--cancel", "--reassignment-json-file", planFile); r.code != 0 || r.out != "None of the specified partition reassignments are active.\n" {
		t.Fatalf("cancel with nothing in progress: %+v", r)
	}
	if r := reassign("--list"); r.code != 0 || r.out != "No partition reassignments found.\n" {
		t.Fatalf("list with nothing in progress: %+v", r)
	}

	// With t-0 being reassigned.
	reassigning(c)
	if r := reassign("--list"); r.code != 0 || r.out != "Current partition reassignments:\nt-0: replicas: 2,3,1. adding: 3. removing: 1.\n" {
		t.Fatalf("list: %+v", r)
	}
	r = reassign("--verify", "--reassignment-json-file", planFile)
	if r.code != 0 || !strings.Contains(r.out, "\nReassignment of partition t-0 is still in progress.\n") {
		t.Fatalf("verify in progress: %+v", r)
	}
	assertOneErrorLine(t, reassign("--execute", "--reassignment-json-file", planFile), "there is an existing partition assignment; use --additional")
	if r := reassign("--execute", "--additional", "--reassignment-json-file", planFile); r.code != 0 {
		t.Fatalf("execute --additional: %+v", r)
	}
	// kfake has nothing to cancel and says so: the failure is reported.
	assertOneErrorLine(t, reassign("--cancel", "--reassignment-json-file", planFile), "error cancelling partition reassignment(s): t-0: NO_REASSIGNMENT_IN_PROGRESS")

	// topics describe shows the replicas moving, as kafka-topics.sh does.
	r = mustTroupe(t, "", append([]string{"topics", "describe", "--topic", "t"}, b...)...)
	if !strings.Contains(r.out, "\tTopic: t\tPartition: 0\tLeader: ") || !strings.Contains(r.out, "\tAdding Replicas: 3\tRemoving Replicas: 1\n") ||
		strings.Count(r.out, "Adding Replicas") != 1 {
		t.Fatalf("describe during a reassignment:\n%s", r.out)
	}
}

// withAdminT runs fn with an admin client of the cluster at bs.
func withAdminT(t *testing.T, bs string, fn func(*kadm.Client)) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bs, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fn(kadm.NewClient(cl))
}

func mustLookup(t *testing.T, adm *kadm.Client, topic string) kadm.TopicDetail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := lookupTopic(ctx, adm, topic)
	if err != nil {
		t.Fatalf("look up %s: %v", topic, err)
	}
	return d
}

func TestWriteTopicReassigning(t *testing.T) {
	d := kadm.TopicDetail{
		Topic: "t",
		Partitions: kadm.PartitionDetails{
			0: {Topic: "t", Partition: 0, Leader: 1, Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2}},
			1: {Topic: "t", Partition: 1, Leader: -1, Replicas: []int32{3, 1}, ISR: []int32{3}, OfflineReplicas: []int32{3, 1}},
			2: {Topic: "t", Partition: 2, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}},
		},
	}
	var sb strings.Builder
	writeTopicReassigning(&sb, d, nil, map[int32]kadm.ListPartitionReassignmentsResponse{
		0: {Topic: "t", Partition: 0, Replicas: []int32{2, 3, 1}, AddingReplicas: []int32{2, 3}, RemovingReplicas: []int32{1}},
		1: {Topic: "t", Partition: 1, Replicas: []int32{3, 1}, AddingReplicas: []int32{3}},
	})
	want := "Topic: t\tTopicId: AAAAAAAAAAAAAAAAAAAAAA\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: \n" +
		"\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 2,3,1\tIsr: 1,2\tAdding Replicas: 2,3\tRemoving Replicas: 1\n" +
		"\tTopic: t\tPartition: 1\tLeader: none\tReplicas: 3,1\tIsr: 3\tAdding Replicas: 3\tRemoving Replicas: \tOffline: 3,1\n" +
		"\tTopic: t\tPartition: 2\tLeader: 2\tReplicas: 2\tIsr: 2\n"
	if sb.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", sb.String(), want)
	}
}
