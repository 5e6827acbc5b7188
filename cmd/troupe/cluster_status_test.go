package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/troupe-io/troupe/cluster"
	"github.com/troupe-io/troupe/cluster/config"
)

// startTroupe starts a single-node Troupe in-process and returns its
// bootstrap address; the node stops when the test ends.
func startTroupe(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "log.dirs=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n.Addr().String()
}

// TestClusterAdminAgainstTroupe runs the cluster-administration commands
// against a real single-node Troupe: its own one-voter quorum, where no
// election is ever needed and a reassignment can only go to [1].
func TestClusterAdminAgainstTroupe(t *testing.T) {
	bs := startTroupe(t)
	b := []string{"--bootstrap-server", bs}
	cli := func(args ...string) result { return troupe(t, "", append(args, b...)...) }
	mustCLI := func(args ...string) result { return mustTroupe(t, "", append(args, b...)...) }

	mustCLI("topics", "create", "--topic", "orders", "--partitions", "2")

	// The single-node describe output is as it always was.
	r := mustCLI("topics", "describe", "--topic", "orders")
	if !strings.HasSuffix(r.out, "\n\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n\tTopic: orders\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n") {
		t.Fatalf("describe:\n%s", r.out)
	}

	r = mustCLI("metadata-quorum", "describe", "--status")
	status := regexp.MustCompile(`^ClusterId:              \S+\n` +
		`LeaderId:               1\n` +
		`LeaderEpoch:            \d+\n` +
		`HighWatermark:          \d+\n` +
		`MaxFollowerLag:         0\n` +
		`MaxFollowerLagTimeMs:   0\n` +
		`CurrentVoters:          \[1\]\n` +
		`CurrentObservers:       \[\]\n$`)
	if !status.MatchString(r.out) {
		t.Fatalf("quorum status:\n%s", r.out)
	}
	r = mustCLI("metadata-quorum", "describe", "--replication")
	replication := regexp.MustCompile(`^NodeId +LogEndOffset +Lag +LastFetchTimestamp +LastCaughtUpTimestamp +Status\n1 +\d+ +0 +-?\d+ +-?\d+ +Leader\n$`)
	if !replication.MatchString(r.out) {
		t.Fatalf("quorum replication:\n%s", r.out)
	}
	assertOneErrorLine(t, cli("metadata-quorum", "describe"), "exactly one of --status and --replication")

	r = mustCLI("cluster", "status")
	clusterStatus := regexp.MustCompile(`^NODE +ROLES +HOST:PORT +STATUS +CONTROLLER\n` +
		`1 +broker,controller +` + regexp.QuoteMeta(bs) + ` +alive +\*\n` +
		`controller: 1, quorum leader epoch \d+, 1/1 voters caught up\n$`)
	if !clusterStatus.MatchString(r.out) {
		t.Fatalf("cluster status:\n%s", r.out)
	}

	// Node 1 leads everything already.
	if r := mustCLI("leader-election", "--election-type", "preferred", "--all-topic-partitions"); r.out != "" {
		t.Fatalf("election of all partitions printed %q", r.out)
	}
	if r := mustCLI("leader-election", "--election-type", "unclean", "--topic", "orders"); r.out != "Valid replica already elected for partitions orders-0, orders-1\n" {
		t.Fatalf("election of a topic printed %q", r.out)
	}
	r = cli("leader-election", "--election-type", "preferred", "--topic", "orders", "--partition", "7")
	assertOneErrorLine(t, r, "1 replica(s) could not be elected")
	if !strings.HasPrefix(r.out, "Error completing leader election (PREFERRED) for partition: orders-7: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("election of a missing partition printed %q", r.out)
	}

	// Reassignments: [1] is all a single node can offer, and it is
	// in sync, so the move completes at once.
	plan := writeFile(t, "plan.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1]}]}`)
	r = mustCLI("reassign-partitions", "--execute", "--reassignment-json-file", plan)
	if !strings.HasSuffix(r.out, "during rollback\nSuccessfully started partition reassignment for orders-0\n") ||
		!strings.Contains(r.out, `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1],"log_dirs":["any"]}]}`) {
		t.Fatalf("execute:\n%s", r.out)
	}
	if r := mustCLI("reassign-partitions", "--verify", "--reassignment-json-file", plan); r.out != "Status of partition reassignment:\nReassignment of partition orders-0 is completed.\n" {
		t.Fatalf("verify: %q", r.out)
	}
	if r := mustCLI("reassign-partitions", "--list"); r.out != "No partition reassignments found.\n" {
		t.Fatalf("list: %q", r.out)
	}
	if r := mustCLI("reassign-partitions", "--cancel", "--reassignment-json-file", plan); r.out != "None of the specified partition reassignments are active.\n" {
		t.Fatalf("cancel: %q", r.out)
	}
	bad := writeFile(t, "bad.json", `{"version":1,"partitions":[{"topic":"orders","partition":1,"replicas":[1,5]}]}`)
	assertOneErrorLine(t, cli("reassign-partitions", "--execute", "--reassignment-json-file", bad), "error reassigning partition(s): orders-1: INVALID_REPLICA_ASSIGNMENT")
	topicsFile := writeFile(t, "topics.json", `{"version":1,"topics":[{"topic":"orders"}]}`)
	r = mustCLI("reassign-partitions", "--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "1")
	if want := `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1],"log_dirs":["any"]},{"topic":"orders","partition":1,"replicas":[1],"log_dirs":["any"]}]}`; strings.Count(r.out, want) != 2 {
		t.Fatalf("generate:\n%s", r.out)
	}
}
