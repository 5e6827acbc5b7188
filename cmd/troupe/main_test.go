package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// newCluster starts an in-process fake Kafka cluster for one test and
// returns its bootstrap address.
func newCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type result struct {
	out, err string
	code     int
}

// troupe runs one command in-process, as main would, with stdin as input.
func troupe(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{out: out.String(), err: errb.String(), code: code}
}

// mustTroupe is troupe for commands expected to succeed.
func mustTroupe(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := troupe(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("troupe %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.err)
	}
	return r
}

// assertOneErrorLine checks the failure contract: non-zero exit, exactly
// one line on stderr, "troupe: ..." containing want, and no stack.
func assertOneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure; stdout %q", r.out)
	}
	if strings.Count(r.err, "\n") != 1 || !strings.HasSuffix(r.err, "\n") {
		t.Fatalf("stderr is not exactly one line: %q", r.err)
	}
	if !strings.HasPrefix(r.err, "troupe: ") {
		t.Fatalf("stderr %q lacks the troupe: prefix", r.err)
	}
	if !strings.Contains(r.err, want) {
		t.Fatalf("stderr %q does not contain %q", r.err, want)
	}
	if strings.Contains(r.err, "goroutine ") || strings.Contains(r.err, "panic") {
		t.Fatalf("stderr looks like a stack: %q", r.err)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	bad := closedAddr(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"topics list unreachable", []string{"topics", "list", "--bootstrap-server", bad}, "list topics: cannot reach cluster at " + bad},
		{"topics create unreachable", []string{"topics", "create", "--topic", "t", "--bootstrap-server", bad}, "cannot reach cluster"},
		{"produce unreachable", []string{"produce", "--topic", "t", "--bootstrap-server", bad}, "produce to topic \"t\": cannot reach cluster"},
		{"consume unreachable", []string{"consume", "--topic", "t", "--bootstrap-server", bad}, "cannot reach cluster"},
		{"perf produce unreachable", []string{"perf", "produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--bootstrap-server", bad}, "cannot reach cluster"},
		{"perf consume unreachable", []string{"perf", "consume", "--topic", "t", "--messages", "1", "--bootstrap-server", bad}, "cannot reach cluster"},
		{"unknown flag", []string{"topics", "create", "--bogus"}, "topics create: unknown flag: --bogus"},
		{"unknown subcommand", []string{"topics", "bogus"}, `topics: unknown command "bogus"`},
		{"missing topic", []string{"produce"}, "--topic is required"},
		{"bad acks", []string{"produce", "--topic", "t", "--acks", "2"}, `--acks "2"`},
		{"bad compression", []string{"produce", "--topic", "t", "--compression", "brotli"}, `--compression "brotli"`},
		{"offset needs partition", []string{"consume", "--topic", "t", "--offset", "5"}, "--offset N needs --partition"},
		{"offset and from-beginning", []string{"consume", "--topic", "t", "--offset", "earliest", "--from-beginning"}, "cannot be used together"},
		{"bad config", []string{"topics", "create", "--topic", "t", "--config", "novalue"}, "want key=value"},
		{"empty bootstrap", []string{"topics", "list", "--bootstrap-server", " , "}, "--bootstrap-server is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertOneErrorLine(t, troupe(t, "", tt.args...), tt.want)
		})
	}
}

// A listener that accepts connections but never answers must not hold a
// command longer than --request-timeout.
func TestSilentBrokerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	start := time.Now()
	r := troupe(t, "", "topics", "list", "--bootstrap-server", ln.Addr().String(), "--request-timeout", "300ms")
	assertOneErrorLine(t, r, "cannot reach cluster")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s with --request-timeout 300ms", took)
	}
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	r := mustTroupe(t, "", "topics")
	if !strings.Contains(r.out, "Available Commands") {
		t.Fatalf("no help in %q", r.out)
	}
}
