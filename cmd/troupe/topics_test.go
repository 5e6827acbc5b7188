package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTopicsLifecycle(t *testing.T) {
	bs := newCluster(t)
	b := []string{"--bootstrap-server", bs}
	topics := func(stdin string, args ...string) result {
		return troupe(t, stdin, append(append([]string{"topics"}, args...), b...)...)
	}

	r := topics("", "create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=1000")
	if r.code != 0 || r.out != "Created topic orders.\n" {
		t.Fatalf("create: %+v", r)
	}
	assertOneErrorLine(t, topics("", "create", "--topic", "orders"), `create topic "orders": TOPIC_ALREADY_EXISTS`)
	if r := topics("", "create", "--topic", "orders", "--if-not-exists"); r.code != 0 || r.out != "" {
		t.Fatalf("create --if-not-exists of an existing topic: %+v", r)
	}
	for _, name := range []string{"alpha", "__hidden"} {
		if r := topics("", "create", "--topic", name, "--partitions", "1"); r.code != 0 {
			t.Fatalf("create %s: %+v", name, r)
		}
	}

	if r := topics("", "list"); r.out != "alpha\norders\n" {
		t.Fatalf("list = %q, want sorted names without __hidden", r.out)
	}
	if r := topics("", "list", "--all"); r.out != "__hidden\nalpha\norders\n" {
		t.Fatalf("list --all = %q", r.out)
	}

	r = topics("", "describe", "--topic", "orders")
	if r.code != 0 {
		t.Fatalf("describe: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	summary := regexp.MustCompile(`^Topic: orders\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=1000$`)
	if len(lines) != 4 || !summary.MatchString(lines[0]) {
		t.Fatalf("describe output:\n%s", r.out)
	}
	for i, line := range lines[1:] {
		want := regexp.MustCompile(`^\tTopic: orders\tPartition: ` + string(rune('0'+i)) + `\tLeader: \d+\tReplicas: \d+\tIsr: \d+$`)
		if !want.MatchString(line) {
			t.Fatalf("partition line %d = %q", i, line)
		}
	}
	assertOneErrorLine(t, topics("", "describe", "--topic", "missing"), `topic "missing" does not exist`)

	r = topics("", "alter", "--topic", "orders", "--partitions", "5", "--config", "cleanup.policy=compact,delete", "--delete-config", "retention.ms")
	if want := "Increased partition count of topic orders to 5.\nCompleted updating config for topic orders.\n"; r.code != 0 || r.out != want {
		t.Fatalf("alter: %+v", r)
	}
	r = topics("", "describe", "--topic", "orders")
	if !strings.Contains(r.out, "PartitionCount: 5\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,delete\n") ||
		strings.Count(r.out, "\tPartition: ") != 5 {
		t.Fatalf("describe after alter:\n%s", r.out)
	}
	assertOneErrorLine(t, topics("", "alter", "--topic", "orders", "--partitions", "2"), "can only be increased")
	assertOneErrorLine(t, topics("", "alter", "--topic", "orders"), "nothing to do")

	// Describing everything skips hidden names, like list.
	r = topics("", "describe")
	if strings.Count(r.out, "\n"+"Topic: ") != 1 || !strings.HasPrefix(r.out, "Topic: alpha\t") || strings.Contains(r.out, "__hidden") {
		t.Fatalf("describe all:\n%s", r.out)
	}

	if r := topics("", "delete", "--topic", "orders"); r.code != 0 || r.out != "Deleted topic orders.\n" {
		t.Fatalf("delete: %+v", r)
	}
	if r := topics("", "list"); r.out != "alpha\n" {
		t.Fatalf("list after delete = %q", r.out)
	}
	assertOneErrorLine(t, topics("", "delete", "--topic", "orders"), `delete topic "orders"`)
}

func TestWriteTopic(t *testing.T) {
	d := kadm.TopicDetail{
		Topic: "t",
		ID:    kadm.TopicID{0xfb, 0xff, 0xbf},
		Partitions: kadm.PartitionDetails{
			1: {Topic: "t", Partition: 1, Leader: -1, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, OfflineReplicas: []int32{2, 3}},
			0: {Topic: "t", Partition: 0, Leader: 2, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 3, 1}},
		},
	}
	v1, v2, v3 := "1", "delete", "x"
	configs := []kadm.Config{
		{Key: "segment.bytes", Value: &v1, Source: kmsg.ConfigSourceDefaultConfig},
		{Key: "retention.ms", Value: &v1, Source: kmsg.ConfigSourceDynamicTopicConfig},
		{Key: "cleanup.policy", Value: &v2, Source: kmsg.ConfigSourceStaticBrokerConfig},
		{Key: "a.b", Value: &v3, Source: kmsg.ConfigSourceDynamicDefaultBrokerConfig},
	}
	var sb strings.Builder
	writeTopic(&sb, d, configs)
	// Topic IDs print as Kafka's Uuid.toString: URL-safe base64, unpadded.
	want := "Topic: t\tTopicId: -_-_AAAAAAAAAAAAAAAAAA\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: a.b=x,cleanup.policy=delete,retention.ms=1\n" +
		"\tTopic: t\tPartition: 0\tLeader: 2\tReplicas: 2,3,1\tIsr: 2,3,1\n" +
		"\tTopic: t\tPartition: 1\tLeader: none\tReplicas: 1,2,3\tIsr: 1\tOffline: 2,3\n"
	if sb.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", sb.String(), want)
	}
}
