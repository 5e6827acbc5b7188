package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/cluster/config"
)

// testNode is a broker started in-process on a loopback port.
type testNode struct {
	t    testing.TB
	dir  string
	args []string
	node *Node
}

// startNode starts a broker on 127.0.0.1 with a fresh data directory and
// the given config overrides.
func startNode(t *testing.T, overrides ...string) *testNode {
	t.Helper()
	tn := &testNode{t: t, dir: t.TempDir(), args: overrides}
	tn.start()
	t.Cleanup(func() { tn.stop() })
	return tn
}

func testLogger() *slog.Logger {
	if os.Getenv("TROUPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (tn *testNode) start() {
	tn.t.Helper()
	ov := append([]string{"listeners=PLAINTEXT://127.0.0.1:0", "log.dirs=" + tn.dir}, tn.args...)
	cfg, err := config.Load("", ov)
	if err != nil {
		tn.t.Fatalf("config: %v", err)
	}
	n, err := Start(cfg, testLogger())
	if err != nil {
		tn.t.Fatalf("start node: %v", err)
	}
	tn.node = n
}

func (tn *testNode) stop() {
	if tn.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dump := time.AfterFunc(8*time.Second, func() {
		if path := os.Getenv("TROUPE_TEST_STACKS"); path != "" {
			buf := make([]byte, 8<<20)
			os.WriteFile(path, buf[:runtime.Stack(buf, true)], 0o644)
		}
	})
	defer dump.Stop()
	if err := tn.node.Close(ctx); err != nil {
		tn.t.Errorf("close node: %v", err)
	}
	tn.node = nil
}

// restart stops the node and starts it again on the same data directory
// (and a new port).
func (tn *testNode) restart() {
	tn.t.Helper()
	tn.stop()
	tn.start()
}

func (tn *testNode) addr() string { return tn.node.Addr().String() }

func (tn *testNode) client(opts ...kgo.Opt) *kgo.Client {
	tn.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tn.addr()), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(cl.Close)
	return cl
}

func (tn *testNode) admin() *kadm.Client {
	return kadm.NewClient(tn.client())
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (tn *testNode) createTopic(name string, partitions int32, configs map[string]*string) {
	tn.t.Helper()
	resp, err := tn.admin().CreateTopic(ctxT(tn.t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		tn.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// consumeAll reads partition records from the start until n records have
// arrived or the deadline passes.
func consumeAll(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

func strp(s string) *string { return &s }

// topicID looks up a topic's id: raw requests need it, because kgo sends
// the newest version both sides support, and Fetch v13+ / Produce v13+
// name topics by id.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	details, err := kadm.NewClient(cl).ListTopics(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: %v", topic, d.Err)
	}
	return d.ID
}

// requireExactlyOnce checks that recs are n records with n distinct
// values: nothing lost, nothing twice.
func requireExactlyOnce(t *testing.T, recs []*kgo.Record, n int) {
	t.Helper()
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		v := string(r.Value)
		if seen[v] {
			t.Fatalf("record %q read twice", v)
		}
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records, want %d", len(seen), n)
	}
}
