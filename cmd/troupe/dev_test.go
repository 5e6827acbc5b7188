package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMain lets this test binary stand in for the troupe binary: the
// nodes `troupe dev` starts are this binary with TROUPE_AS_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("TROUPE_AS_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// freeBasePort finds a base port with n Kafka and n controller ports free.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+100+n > 65535 {
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			for _, p := range []int{base + i, base + 100 + i} {
				l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestDevCluster runs `troupe dev --nodes 3`: three node processes start,
// one line each plus the bootstrap string is printed, a killed node is
// reported (and not restarted), and cancelling stops the rest.
func TestDevCluster(t *testing.T) {
	t.Setenv("TROUPE_AS_MAIN", "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := freeBasePort(t, 3)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"dev", "--nodes", "3", "--dir", dir, "--base-port", strconv.Itoa(base), "--troupe-bin", exe,
			"--override", "group.initial.rebalance.delay.ms=0"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
		done <- code
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("dev stopped printing")
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatal("timed out waiting for dev's output")
		}
		return ""
	}
	nodeLine := regexp.MustCompile(`^node (\d)  pid (\d+)  kafka (127\.0\.0\.1:\d+)  data (.+)$`)
	pids := map[int]int{}
	for i := 1; i <= 3; i++ {
		l := next()
		m := nodeLine.FindStringSubmatch(l)
		if m == nil || m[1] != strconv.Itoa(i) || m[3] != "127.0.0.1:"+strconv.Itoa(base+i-1) || !strings.HasPrefix(m[4], dir) {
			t.Fatalf("node line %d: %q", i, l)
		}
		pid, _ := strconv.Atoi(m[2])
		pids[i] = pid
	}
	want := "bootstrap: 127.0.0.1:" + strconv.Itoa(base) + ",127.0.0.1:" + strconv.Itoa(base+1) + ",127.0.0.1:" + strconv.Itoa(base+2)
	if l := next(); l != want {
		t.Fatalf("bootstrap line %q, want %q", l, want)
	}
	if l := next(); !strings.HasPrefix(l, "ready") {
		t.Fatalf("ready line: %q", l)
	}
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(base+i), time.Second)
		if err != nil {
			t.Fatalf("node %d does not accept connections: %v", i+1, err)
		}
		c.Close()
	}

	// The three nodes form one cluster: every node's Metadata lists all
	// three brokers. (Each node is asked directly, through a client seeded
	// with it alone: a client that learned the cluster from one early
	// answer would otherwise keep asking the same node.)
	for i := 0; i < 3; i++ {
		addr := "127.0.0.1:" + strconv.Itoa(base+i)
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, err := metadataBrokers(addr)
			if err == nil && n == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never listed 3 brokers: %d, %v", i+1, n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Kill node 2 as in the failover demo: dev reports it and restarts
	// nothing.
	if err := syscall.Kill(pids[2], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if l := next(); !strings.HasPrefix(l, "node 2 (pid "+strconv.Itoa(pids[2])+") exited: signal: killed; start it again with:") {
		t.Fatalf("exit line: %q", l)
	}
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(base+1), time.Second); err == nil {
		c.Close()
		t.Fatal("node 2 was restarted")
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited with %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
	for _, i := range []int{1, 3} {
		if err := syscall.Kill(pids[i], 0); err == nil {
			t.Errorf("node %d (pid %d) still runs after dev stopped", i, pids[i])
		}
	}
}

// metadataBrokers asks the broker at addr (and only it) how many brokers
// its Metadata lists.
func metadataBrokers(addr string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return 0, err
	}
	return len(resp.(*kmsg.MetadataResponse).Brokers), nil
}
