package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newKfake3 starts a three-broker kfake cluster and returns it with its
// bootstrap address.
func newKfake3(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportElection(t *testing.T) {
	notAvailable := fmt.Errorf("%w (broker 3 is fenced)", kerr.PreferredLeaderNotAvailable)
	for _, tc := range []struct {
		name    string
		results []electionResult
		out     string
		err     string
	}{
		{"nothing to do", nil, "", ""},
		{"all elected", []electionResult{{tp: topicPartition{"a", 0}}, {tp: topicPartition{"b", 1}}},
			"Successfully completed leader election (PREFERRED) for partitions a-0, b-1\n", ""},
		{"mixed", []electionResult{
			{tp: topicPartition{"a", 0}},
			{tp: topicPartition{"a", 1}, err: kerr.ElectionNotNeeded},
			{tp: topicPartition{"a", 2}, err: kerr.ElectionNotNeeded},
			{tp: topicPartition{"b", 0}, err: notAvailable},
		}, "Successfully completed leader election (PREFERRED) for partitions a-0\n" +
			"Valid replica already elected for partitions a-1, a-2\n" +
			"Error completing leader election (PREFERRED) for partition: b-0: " + notAvailable.Error() + "\n",
			"1 replica(s) could not be elected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			err := reportElection(&sb, "PREFERRED", tc.results)
			if sb.String() != tc.out {
				t.Errorf("printed\n%q\nwant\n%q", sb.String(), tc.out)
			}
			if got := fmt.Sprint(err); (err == nil) != (tc.err == "") || (err != nil && got != tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestReadElectionFile(t *testing.T) {
	for _, tc := range []struct {
		content, err string
	}{
		{`{"partitions":[{"topic":"a","partition":1},{"topic":"a","partition":0}]}`, ""},
		{`{"partitions":[]}`, "lists no partitions"},
		{`{"partitions":[{"topic":"a","partition":0},{"topic":"a","partition":0}]}`, "lists partition a-0 twice"},
		{`{"partitions":[{"topic":"","partition":0}]}`, "invalid partition"},
		{`{"partitions":[{"topic":"a","partition":-1}]}`, "invalid partition"},
		{`{"partitions":`, "parse"},
	} {
		parts, err := readElectionFile(writeFile(t, "elect.json", tc.content))
		switch {
		case tc.err == "" && (err != nil || len(parts) != 2):
			t.Errorf("%s: %v %v", tc.content, parts, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.content, err, tc.err)
		}
	}
}

// TestLeaderElectionAgainstKfake: kfake moves a partition's leadership to
// the next broker on every election, so each requested one succeeds.
func TestLeaderElectionAgainstKfake(t *testing.T) {
	_, bs := newKfake3(t)
	b := []string{"--bootstrap-server", bs}
	mustTroupe(t, "", append([]string{"topics", "create", "--topic", "t", "--partitions", "2", "--replication-factor", "3"}, b...)...)
	elect := func(args ...string) result {
		return troupe(t, "", append(append([]string{"leader-election"}, args...), b...)...)
	}

	if r := elect("--election-type", "preferred", "--topic", "t", "--partition", "1"); r.code != 0 ||
		r.out != "Successfully completed leader election (PREFERRED) for partitions t-1\n" {
		t.Fatalf("one partition: %+v", r)
	}
	if r := elect("--election-type", "UNCLEAN", "--topic", "t"); r.code != 0 ||
		r.out != "Successfully completed leader election (UNCLEAN) for partitions t-0, t-1\n" {
		t.Fatalf("a topic: %+v", r)
	}
	if r := elect("--election-type", "preferred", "--all-topic-partitions"); r.code != 0 ||
		r.out != "Successfully completed leader election (PREFERRED) for partitions t-0, t-1\n" {
		t.Fatalf("all partitions: %+v", r)
	}
	file := writeFile(t, "elect.json", `{"partitions":[{"topic":"t","partition":0},{"topic":"missing","partition":0}]}`)
	r := elect("--election-type", "preferred", "--path-to-json-file", file)
	assertOneErrorLine(t, r, "leader election: 1 replica(s) could not be elected")
	if !strings.HasPrefix(r.out, "Successfully completed leader election (PREFERRED) for partitions t-0\n"+
		"Error completing leader election (PREFERRED) for partition: missing-0: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("partial failure printed %q", r.out)
	}
	assertOneErrorLine(t, elect("--election-type", "preferred", "--topic", "missing"), `leader election: topic "missing"`)
}

func TestLeaderElectionFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--all-topic-partitions"}, `--election-type ""`},
		{[]string{"--election-type", "dirty", "--all-topic-partitions"}, `--election-type "dirty"`},
		{[]string{"--election-type", "preferred"}, "exactly one of"},
		{[]string{"--election-type", "preferred", "--all-topic-partitions", "--topic", "t"}, "exactly one of"},
		{[]string{"--election-type", "preferred", "--all-topic-partitions", "--partition", "0"}, "--partition needs --topic"},
		{[]string{"--election-type", "preferred", "--topic", "t", "--partition", "-2"}, "must not be negative"},
		{[]string{"--election-type", "preferred", "--path-to-json-file", "/nonexistent/elect.json"}, "no such file"},
	} {
		r := troupe(t, "", append([]string{"leader-election", "--bootstrap-server", closedAddr(t)}, tc.args...)...)
		assertOneErrorLine(t, r, tc.want)
	}
}
