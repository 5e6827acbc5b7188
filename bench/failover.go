package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FailoverOptions configure RunFailover.
type FailoverOptions struct {
	TroupeBin string // the troupe binary
	Dir       string // data directory of the dev cluster (emptied first)
	BasePort  int    // troupe dev --base-port
	Kills     int    // how many times to kill a node
	// KillController kills the active controller (which also leads some
	// partitions) instead of the partition's leader.
	KillController bool
	Log            io.Writer // progress lines
}

// FailoverResult is what RunFailover measured and checked.
type FailoverResult struct {
	// Failover is, per kill, the time from SIGKILL to the first produce
	// acknowledged after it (necessarily by the new leader).
	Failover []time.Duration
	Acked    int // records acknowledged
	Consumed int // records read back (each acknowledged one exactly once, in order)
}

// RunFailover starts a 3-node cluster with `troupe dev` (default
// settings), creates a topic with one partition, replication factor 3 and
// min.insync.replicas=2, and runs an idempotent acks=all producer while it
// SIGKILLs the partition's leader (or the active controller) Kills
// times, restarting the killed node and waiting for the ISR to be whole
// again each time. At the end it reads the partition back and checks
// that every acknowledged record is there exactly once and in order.
func RunFailover(ctx context.Context, o FailoverOptions) (FailoverResult, error) {
	var res FailoverResult
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if err := os.RemoveAll(o.Dir); err != nil {
		return res, err
	}
	dev := exec.Command(o.TroupeBin, "dev", "--nodes", "3", "--dir", o.Dir, "--base-port", strconv.Itoa(o.BasePort))
	out, err := dev.StdoutPipe()
	if err != nil {
		return res, err
	}
	dev.Stderr = os.Stderr
	if err := dev.Start(); err != nil {
		return res, err
	}
	// Nodes this harness restarted itself (dev restarts nothing).
	var restarted []*exec.Cmd
	defer func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		_ = dev.Wait()
		for _, c := range restarted {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range restarted {
			_ = c.Wait()
		}
	}()
	pids := map[int32]int{}
	nodeLine := regexp.MustCompile(`^node (\d)  pid (\d+)  kafka (\S+)`)
	sc := bufio.NewScanner(out)
	var bootstrap []string
	for sc.Scan() {
		line := sc.Text()
		logf("dev: %s", line)
		if m := nodeLine.FindStringSubmatch(line); m != nil {
			id, _ := strconv.Atoi(m[1])
			pid, _ := strconv.Atoi(m[2])
			pids[int32(id)] = pid
			bootstrap = append(bootstrap, m[3])
		}
		if len(line) >= 5 && line[:5] == "ready" {
			break
		}
	}
	go func() { // keep draining dev's output
		for sc.Scan() {
			logf("dev: %s", sc.Text())
		}
	}()
	if len(pids) != 3 {
		return res, fmt.Errorf("troupe dev did not start 3 nodes")
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic("failover"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(60*time.Second),
		// A client that looks for the new leader promptly (kgo's default
		// refreshes metadata at most every 5 s): the measurement is of
		// the cluster, not of the client's back-off.
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := waitFor(ctx, 30*time.Second, func() error {
		md, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		if len(md.Brokers) != 3 {
			return fmt.Errorf("%d brokers", len(md.Brokers))
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("cluster never listed 3 brokers: %w", err)
	}
	minISR := "2"
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, "failover"); err != nil || r.Err != nil {
		return res, fmt.Errorf("create topic: %v %v", err, r.Err)
	}

	// The producer: one record at a time, so an ack's time is the time
	// the record became durable on the ISR.
	var (
		mu     sync.Mutex
		starts []time.Time // when each acknowledged record was sent
		acks   []time.Time // and acknowledged
		acked  []int
	)
	prodCtx, stopProd := context.WithCancel(ctx)
	defer stopProd()
	prodDone := make(chan error, 1)
	go func() {
		for i := 0; prodCtx.Err() == nil; i++ {
			r := &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i))}
			sent := time.Now()
			if err := cl.ProduceSync(prodCtx, r).FirstErr(); err != nil {
				if prodCtx.Err() != nil {
					break
				}
				prodDone <- fmt.Errorf("record %d: %w", i, err)
				return
			}
			mu.Lock()
			acks = append(acks, time.Now())
			starts = append(starts, sent)
			acked = append(acked, i)
			mu.Unlock()
		}
		prodDone <- nil
	}()
	// firstAckAfter waits for the first record sent after t0 to be
	// acknowledged (one sent before may have been answered by the old
	// leader in its last moment) and returns t0 to that ack.
	firstAckAfter := func(t0 time.Time, limit time.Duration) (time.Duration, error) {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			mu.Lock()
			i, _ := slices.BinarySearchFunc(starts, t0, func(a, b time.Time) int { return a.Compare(b) })
			var at time.Time
			if i < len(acks) {
				at = acks[i]
			}
			mu.Unlock()
			if !at.IsZero() {
				return at.Sub(t0), nil
			}
			select {
			case err := <-prodDone:
				return 0, fmt.Errorf("producer stopped: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		return 0, fmt.Errorf("no produce acknowledged within %s of the kill", limit)
	}
	if _, err := firstAckAfter(time.Now(), 30*time.Second); err != nil {
		return res, err
	}
	// A consumer tails the partition through every failover; at the end
	// it must have read up to the last acknowledged record (it resumed on
	// each new leader).
	tail, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"failover": {0: kgo.NewOffset().AtStart()}}), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer tail.Close()
	var tailMu sync.Mutex
	tailLast := -1
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		for tailCtx.Err() == nil {
			fs := tail.PollFetches(tailCtx)
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				tailMu.Lock()
				tailLast = max(tailLast, v)
				tailMu.Unlock()
			})
		}
	}()

	for k := 0; k < o.Kills; k++ {
		victim, err := pickVictim(ctx, adm, o.KillController)
		if err != nil {
			return res, err
		}
		time.Sleep(200 * time.Millisecond) // some acknowledged traffic before the kill
		t0 := time.Now()
		if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
			return res, fmt.Errorf("kill node %d: %w", victim, err)
		}
		d, err := firstAckAfter(t0, 60*time.Second)
		if err != nil {
			return res, fmt.Errorf("kill %d (node %d): %w", k+1, victim, err)
		}
		res.Failover = append(res.Failover, d)
		logf("kill %d: node %d (pid %d): first acknowledged produce after %s", k+1, victim, pids[victim], d.Round(time.Millisecond))
		// Restart it and wait until it is back in the ISR.
		c := exec.Command(o.TroupeBin, "broker", "--config", filepath.Join(o.Dir, fmt.Sprintf("node-%d", victim), "server.properties"))
		logFile, err := os.OpenFile(filepath.Join(o.Dir, fmt.Sprintf("node-%d", victim), "broker.log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return res, err
		}
		c.Stdout, c.Stderr = logFile, logFile
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			return res, err
		}
		restarted = append(restarted, c)
		pids[victim] = c.Process.Pid
		if err := waitFor(ctx, 60*time.Second, func() error { return wholeISR(ctx, adm) }); err != nil {
			return res, fmt.Errorf("after restarting node %d: %w", victim, err)
		}
	}
	stopProd()
	if err := <-prodDone; err != nil {
		return res, err
	}
	mu.Lock()
	want := append([]int(nil), acked...)
	mu.Unlock()
	res.Acked = len(want)
	if err := waitFor(ctx, 30*time.Second, func() error {
		tailMu.Lock()
		defer tailMu.Unlock()
		if tailLast < want[len(want)-1] {
			return fmt.Errorf("the tailing consumer stopped at record %d; the last acknowledged is %d", tailLast, want[len(want)-1])
		}
		return nil
	}); err != nil {
		return res, err
	}
	stopTail()
	<-tailDone

	// Read everything back: every acknowledged record exactly once, in
	// order (unacknowledged ones may appear too, but at most once).
	cons, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"failover": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return res, err
	}
	defer cons.Close()
	var got []int
	readCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(got) == 0 || got[len(got)-1] < want[len(want)-1] {
		fs := cons.PollFetches(readCtx)
		if readCtx.Err() != nil {
			return res, fmt.Errorf("read back %d records, the last acknowledged is %d", len(got), want[len(want)-1])
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			got = append(got, v)
		})
	}
	res.Consumed = len(got)
	seen := map[int]bool{}
	for i, v := range got {
		if seen[v] {
			return res, fmt.Errorf("record %d read twice", v)
		}
		seen[v] = true
		if i > 0 && v < got[i-1] {
			return res, fmt.Errorf("record %d read after %d", v, got[i-1])
		}
	}
	for _, v := range want {
		if !seen[v] {
			return res, fmt.Errorf("acknowledged record %d is missing", v)
		}
	}
	return res, nil
}

// pickVictim returns the leader of failover-0, or the active controller.
func pickVictim(ctx context.Context, adm *kadm.Client, controller bool) (int32, error) {
	md, err := adm.Metadata(ctx, "failover")
	if err != nil {
		return 0, err
	}
	if controller {
		return md.Controller, nil
	}
	p, ok := md.Topics["failover"].Partitions[0]
	if !ok || p.Leader < 0 {
		return 0, errors.New("failover-0 has no leader")
	}
	return p.Leader, nil
}

// wholeISR is nil once failover-0 has all three replicas in its ISR.
func wholeISR(ctx context.Context, adm *kadm.Client) error {
	md, err := adm.Metadata(ctx, "failover")
	if err != nil {
		return err
	}
	p := md.Topics["failover"].Partitions[0]
	if len(p.ISR) != 3 || p.Leader < 0 {
		return fmt.Errorf("leader %d, isr %v", p.Leader, p.ISR)
	}
	return nil
}

func waitFor(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
