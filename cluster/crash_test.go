package cluster

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/batch"
)

// brokerProcess is a troupe binary running as its own OS process, so the
// test can SIGKILL it like a crash.
type brokerProcess struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

func buildTroupe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "troupe")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/troupe-io/troupe/cmd/troupe").CombinedOutput()
	if err != nil {
		t.Fatalf("build troupe: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (b *brokerProcess) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "broker", "--override", "listeners=PLAINTEXT://"+b.addr, "--override", "log.dirs="+b.dir)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker did not listen on %s: %v (log %s)", b.addr, err, b.log.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *brokerProcess) kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
}

func (b *brokerProcess) stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		b.t.Errorf("broker did not stop on SIGTERM within 20s")
		b.kill()
	}
}

type ackedRecord struct {
	partition int32
	offset    int64
}

// TestCrashKeepsAcknowledgedRecords SIGKILLs the broker process at several
// points while an idempotent acks=all producer runs, restarts it each
// time, and then checks that every acknowledged record is there, once, at
// the offset it was acknowledged with, and that no served batch is
// corrupt.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills broker processes")
	}
	b := &brokerProcess{t: t, bin: buildTroupe(t), dir: t.TempDir(), addr: freeAddr(t)}
	var err error
	b.log, err = os.Create(filepath.Join(t.TempDir(), "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	b.start()
	defer func() {
		if b.cmd.ProcessState == nil {
			b.stop()
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked = map[string]ackedRecord{}
		fails int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("v%07d", i)
			cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails++
					return
				}
				acked[v] = ackedRecord{r.Partition, r.Offset}
			})
		}
	}()

	rng := rand.New(rand.NewSource(1))
	kills := 4
	if v, err := strconv.Atoi(os.Getenv("TROUPE_CRASH_KILLS")); err == nil && v > 0 {
		kills = v // make crash runs longer campaigns
	}
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(300+rng.Intn(700)) * time.Millisecond)
		b.kill()
		time.Sleep(time.Duration(rng.Intn(200)) * time.Millisecond)
		b.start()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 1000 {
		t.Fatalf("only %d records acknowledged; the test exercised too little", n)
	}
	t.Logf("%d records acknowledged across %d kills (%d failed)", n, kills, fails)

	// A final restart makes sure recovery of a cleanly stopped node works too.
	b.stop()
	b.start()

	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	end, err := kadm.NewClient(consumer).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	end.Each(func(o kadm.ListedOffset) { total += o.Offset })
	got := map[string]ackedRecord{}
	next := map[int32]int64{}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for int64(len(got)) < total && cctx.Err() == nil {
		fs := consumer.PollFetches(cctx)
		fs.EachError(func(_ string, p int32, err error) {
			if cctx.Err() == nil {
				t.Fatalf("fetch partition %d: %v", p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d follows %d (gap)", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition] = r.Offset + 1
			v := string(r.Value)
			if _, dup := got[v]; dup {
				t.Fatalf("value %s stored twice", v)
			}
			got[v] = ackedRecord{r.Partition, r.Offset}
		})
	}
	for v, want := range acked {
		have, ok := got[v]
		if !ok {
			t.Fatalf("acknowledged record %s (partition %d offset %d) lost", v, want.partition, want.offset)
		}
		if have != want {
			t.Fatalf("record %s acknowledged at %+v but stored at %+v", v, want, have)
		}
	}
	verifyServedBatches(t, consumer, "crash", 3)
}

// verifyServedBatches fetches every partition raw and checks each batch's
// CRC, so a torn write could never be served.
func verifyServedBatches(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	id := topicID(t, cl, topic)
	checked := 0
	for p := int32(0); p < partitions; p++ {
		offset := int64(0)
		for {
			req := kmsg.NewPtrFetchRequest()
			req.Version = 11
			req.MaxBytes = 4 << 20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rt.TopicID = id
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = offset
			rp.PartitionMaxBytes = 4 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("partition %d: fetch error code %d", p, code)
			}
			rb := resp.Topics[0].Partitions[0].RecordBatches
			if len(rb) == 0 {
				break
			}
			it := batch.NewIter(rb)
			for {
				h, raw, ok := it.Next()
				if !ok {
					break
				}
				if !batch.VerifyCRC(raw) {
					t.Fatalf("partition %d: batch at offset %d fails its CRC", p, h.BaseOffset)
				}
				if h.PartitionLeaderEpoch != 0 {
					t.Fatalf("partition %d: batch at offset %d carries leader epoch %d, want the leader's 0", p, h.BaseOffset, h.PartitionLeaderEpoch)
				}
				offset = h.LastOffset() + 1
			}
			if it.Err() != nil {
				t.Fatalf("partition %d: %v", p, it.Err())
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no batch was fetched: the CRC check checked nothing")
	}
}
