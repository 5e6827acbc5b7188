package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/troupe-io/troupe/cluster"
	"github.com/troupe-io/troupe/cluster/config"
)

// The other CLI tests run against franz-go's kfake; this one runs the
// Kafka quickstart from README.md against a real Troupe node.
func TestQuickstartAgainstTroupe(t *testing.T) {
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "log.dirs=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	bs := "--bootstrap-server=" + n.Addr().String()
	cli := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code := run(ctx, append(args, bs), strings.NewReader(stdin), &out, &errb)
		return out.String(), errb.String(), code
	}

	if out, errs, code := cli("", "topics", "create", "--topic", "quickstart-events", "--partitions", "3"); code != 0 || !strings.Contains(out, "Created topic quickstart-events.") {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	out, _, _ := cli("", "topics", "describe", "--topic", "quickstart-events")
	for _, want := range []string{"PartitionCount: 3", "ReplicationFactor: 1", "\tTopic: quickstart-events\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe output lacks %q:\n%s", want, out)
		}
	}
	if _, errs, code := cli("first event\nsecond event\n", "produce", "--topic", "quickstart-events", "--partition", "0"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	if _, errs, code := cli("user1:login\n", "produce", "--topic", "quickstart-events", "--partition", "0", "--key-separator", ":", "--header", "source=cli"); code != 0 {
		t.Fatalf("produce with key: %d %s", code, errs)
	}
	out, errs, code := cli("", "consume", "--topic", "quickstart-events", "--partition", "0", "--offset", "earliest", "--max-messages", "3", "--print-key", "--print-offset")
	if code != 0 {
		t.Fatalf("consume: %d %s", code, errs)
	}
	want := "Offset:0\tnull\tfirst event\nOffset:1\tnull\tsecond event\nOffset:2\tuser1\tlogin\n"
	if out != want {
		t.Fatalf("consume printed\n%q\nwant\n%q", out, want)
	}
	if !strings.Contains(errs, "Processed a total of 3 messages") {
		t.Fatalf("consume summary: %q", errs)
	}
	_, errs, code = cli("", "topics", "create", "--topic", "quickstart-events")
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "troupe: ") {
		t.Fatalf("duplicate create: exit %d, stderr %q (want one troupe: line)", code, errs)
	}
}

func TestBrokerPrintConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"broker", "--print-config", "--override", "num.partitions=3"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "\nnum.partitions=3\n") || !strings.Contains(out.String(), "#log.segment.bytes=1073741824") {
		t.Fatalf("--print-config output:\n%s", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"broker", "--print-config", "--override", "num.partitons=3"}, strings.NewReader(""), &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), `did you mean "num.partitions"`) {
		t.Fatalf("misspelt key: exit %d, stderr %q", code, errb.String())
	}
}
