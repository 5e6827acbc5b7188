package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/batch"
)

func TestAdminTopicLifecycle(t *testing.T) {
	tn := startNode(t)
	adm := tn.admin()
	ctx := ctxT(t)

	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": strp("60000")}, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	// validate_only checks everything and creates nothing.
	vr, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "validated")
	if err != nil || vr.Error() != nil {
		t.Fatalf("validate-only create: %v %v", err, vr.Error())
	}
	if vr, _ := adm.ValidateCreateTopics(ctx, 0, 1, nil, "invalid"); !errors.Is(vr.Error(), kerr.InvalidPartitions) {
		t.Fatalf("validate-only create with 0 partitions: %v", vr.Error())
	}
	if listed, _ := adm.ListTopics(ctx, "validated"); listed["validated"].Err == nil {
		t.Fatal("validate-only CreateTopics created the topic")
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	r, _ := adm.CreateTopic(ctx, 0, 1, nil, "zero")
	if !errors.Is(r.Err, kerr.InvalidPartitions) {
		t.Fatalf("0 partitions: %v", r.Err)
	}
	r, _ = adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
	if !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", r.Err)
	}
	r, _ = adm.CreateTopic(ctx, 1, 3, nil, "rf3")
	if !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3 on one node: %v", r.Err)
	}
	r, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.msx": strp("1")}, "badcfg")
	if !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Fatalf("unknown config: %v", r.Err)
	}

	details, err := adm.ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	d := details["orders"]
	if len(d.Partitions) != 3 {
		t.Fatalf("partitions = %d", len(d.Partitions))
	}
	for _, p := range d.Partitions {
		if p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition %+v", p)
		}
	}

	if _, err := adm.CreatePartitions(ctx, 2, "orders"); err != nil {
		t.Fatal(err)
	}
	details, _ = adm.ListTopics(ctx, "orders")
	if n := len(details["orders"].Partitions); n != 5 {
		t.Fatalf("after CreatePartitions: %d partitions", n)
	}

	rc, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc[0].Configs {
		got[c.Key] = c
	}
	if c := got["retention.ms"]; c.MaybeValue() != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %+v", c)
	}
	if c := got["segment.bytes"]; c.MaybeValue() != "1073741824" {
		t.Fatalf("segment.bytes default = %+v", c)
	}

	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: strp("1000")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	rc, _ = adm.DescribeTopicConfigs(ctx, "orders")
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != "1000" {
			t.Fatalf("after alter retention.ms = %s", c.MaybeValue())
		}
	}

	if _, err := adm.DeleteTopics(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	details, _ = adm.ListTopics(ctx)
	if _, ok := details["orders"]; ok {
		t.Fatal("topic still listed after delete")
	}
	// Re-created under the same name, it starts empty.
	tn.createTopic("orders", 1, nil)
	offs, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("orders", 0); o.Offset != 0 {
		t.Fatalf("re-created topic ends at %d", o.Offset)
	}
}

// produceN produces n records with keys and headers synchronously.
func produceN(t testing.TB, cl *kgo.Client, topic string, n int, prefix string) {
	t.Helper()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	tn := startNode(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			tn.createTopic(topic, 2, nil)
			const n = 2000
			produceN(t, tn.client(kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic)), topic, n, name)
			recs := consumeAll(t, tn.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), n)
			requireExactlyOnce(t, recs, n)
			for _, r := range recs {
				if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
					t.Fatalf("record %q has headers %+v", r.Value, r.Headers)
				}
			}
		})
	}
}

func TestAcksSettings(t *testing.T) {
	tn := startNode(t)
	for i, acks := range []kgo.Acks{kgo.NoAck(), kgo.LeaderAck(), kgo.AllISRAcks()} {
		topic := []string{"acks0", "acks1", "acks-all"}[i]
		tn.createTopic(topic, 1, nil)
		opts := []kgo.Opt{kgo.RequiredAcks(acks), kgo.DefaultProduceTopic(topic)}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		produceN(t, tn.client(opts...), topic, 500, "a")
		requireExactlyOnce(t, consumeAll(t, tn.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 500), 500)
	}
}

func TestRestartKeepsAcknowledgedRecords(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("durable", 3, nil)
	cl := tn.client(kgo.DefaultProduceTopic("durable"))
	produceN(t, cl, "durable", 3000, "r")
	cl.Close()
	tn.restart()
	recs := consumeAll(t, tn.client(kgo.ConsumeTopics("durable"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 3000)
	requireExactlyOnce(t, recs, 3000)
	// Idempotent producer state survives: the producer can continue.
	produceN(t, tn.client(kgo.DefaultProduceTopic("durable")), "durable", 100, "after")
}

func TestAutoCreateTopic(t *testing.T) {
	tn := startNode(t, "num.partitions=2")
	produceN(t, tn.client(kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation()), "auto", 10, "x")
	details, err := tn.admin().ListTopics(ctxT(t), "auto")
	if err != nil || len(details["auto"].Partitions) != 2 {
		t.Fatalf("auto-created topic: %v %+v", err, details)
	}

	off := startNode(t, "auto.create.topics.enable=false")
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("nope")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctxT(t), off.client())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata for missing topic with auto-create off: code %d", resp.Topics[0].ErrorCode)
	}
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("lo", 1, nil)
	cl := tn.client(kgo.DefaultProduceTopic("lo"), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	start, _ := adm.ListStartOffsets(ctx, "lo")
	end, _ := adm.ListEndOffsets(ctx, "lo")
	if o, _ := start.Lookup("lo", 0); o.Offset != 0 {
		t.Fatalf("start %d", o.Offset)
	}
	if o, _ := end.Lookup("lo", 0); o.Offset != 10 {
		t.Fatalf("end %d", o.Offset)
	}
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("lo", 0); o.Offset != 5 {
		t.Fatalf("offset for timestamp: %d, want 5", o.Offset)
	}

	del, err := adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := del.Lookup("lo", 0); d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete records %+v", d)
	}
	start, _ = adm.ListStartOffsets(ctx, "lo")
	if o, _ := start.Lookup("lo", 0); o.Offset != 4 {
		t.Fatalf("start after delete %d", o.Offset)
	}
	del, _ = adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {At: 99}}})
	if d, _ := del.Lookup("lo", 0); !errors.Is(d.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past end: %v", d.Err)
	}
	// Survives a restart.
	tn.restart()
	start, _ = tn.admin().ListStartOffsets(ctxT(t), "lo")
	if o, _ := start.Lookup("lo", 0); o.Offset != 4 {
		t.Fatalf("start after restart %d", o.Offset)
	}
	recs := consumeAll(t, tn.client(kgo.ConsumeTopics("lo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 6)
	if recs[0].Offset != 4 {
		t.Fatalf("first consumed offset %d", recs[0].Offset)
	}
}

func TestRetentionBySize(t *testing.T) {
	tn := startNode(t, "log.retention.check.interval.ms=100")
	tn.createTopic("ret", 1, map[string]*string{"segment.bytes": strp("2048"), "retention.bytes": strp("4096")})
	cl := tn.client(kgo.DefaultProduceTopic("ret"), kgo.ProducerLinger(0))
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: make([]byte, 200)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		start, _ := tn.admin().ListStartOffsets(ctxT(t), "ret")
		if o, _ := start.Lookup("ret", 0); o.Offset > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention never moved the log start offset")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFetchLongPoll(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("poll", 1, nil)
	cl := tn.client()
	id := topicID(t, cl, "poll")
	fetch := func(maxWait int32) (time.Duration, int) {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.MaxWaitMillis = maxWait
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "poll"
		rt.TopicID = id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset = 0
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("fetch error code %d", code)
		}
		return time.Since(start), len(resp.Topics[0].Partitions[0].RecordBatches)
	}
	took, n := fetch(600)
	if took < 550*time.Millisecond || n != 0 {
		t.Fatalf("empty long-poll returned after %v with %d bytes, want ~600ms and 0", took, n)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		tn.client(kgo.DefaultProduceTopic("poll")).ProduceSync(context.Background(), &kgo.Record{Value: []byte("wake")})
	}()
	// A long MaxWait, so that returning well before it can only mean the
	// produce woke the fetch, however slow a loaded machine is.
	took, n = fetch(5000)
	if took > 4*time.Second || n == 0 {
		t.Fatalf("long-poll (MaxWait 5s) with a produce after 150ms returned after %v with %d bytes", took, n)
	}
}

// TestIdempotentRetryIsDeduplicated sends every produce through a proxy
// that drops the connection right after forwarding the first Produce
// request, so the client never sees that response and resends the same
// batch. The broker must answer the resend from its sequence window.
func TestIdempotentRetryIsDeduplicated(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("idem", 1, nil)
	proxy := newDropOnceProxy(t, tn.addr())
	// The broker advertises its own address; a dialer pins every
	// connection to the proxy instead.
	var d net.Dialer
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.addr()), kgo.DefaultProduceTopic("idem"), kgo.ProducerLinger(0),
		kgo.RecordRetries(10), kgo.RetryTimeout(10*time.Second),
		kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, proxy.addr())
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	if proxy.dropped.Load() == 0 {
		t.Fatal("the proxy never dropped a produce: the test did not exercise a retry")
	}
	recs := consumeAll(t, tn.client(kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 20)
	time.Sleep(300 * time.Millisecond)
	var vals []string
	for _, r := range recs {
		vals = append(vals, string(r.Value))
	}
	if len(vals) != 20 {
		t.Fatalf("got %d records (%v), want exactly 20", len(vals), vals)
	}
	end, _ := tn.admin().ListEndOffsets(ctxT(t), "idem")
	if o, _ := end.Lookup("idem", 0); o.Offset != 20 {
		t.Fatalf("log end %d, want 20: a resent batch was appended twice", o.Offset)
	}
}

func TestBadBatchesNeverReachTheLog(t *testing.T) {
	tn := startNode(t, "message.max.bytes=10000")
	tn.createTopic("bad", 1, nil)
	cl := tn.client()
	id := topicID(t, cl, "bad")
	good, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte("ok")}})
	if err != nil {
		t.Fatal(err)
	}
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	big, _ := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: make([]byte, 20000)}})
	for _, tc := range []struct {
		name    string
		topic   string
		records []byte
		code    int16
	}{
		{"wrong crc", "bad", badCRC, kerr.CorruptMessage.Code},
		{"truncated", "bad", good[:len(good)-3], kerr.CorruptMessage.Code},
		{"too large", "bad", big, kerr.MessageTooLarge.Code},
		{"missing topic", "missing", good, -1},
	} {
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = -1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = tc.topic
		if tc.topic == "bad" {
			rt.TopicID = id
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = tc.records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := resp.Topics[0].Partitions[0].ErrorCode
		if tc.code == -1 {
			// By name (v<13) or by id (v13+).
			if got != kerr.UnknownTopicOrPartition.Code && got != kerr.UnknownTopicID.Code {
				t.Errorf("%s: error code %d, want unknown topic", tc.name, got)
			}
			continue
		}
		if got != tc.code {
			t.Errorf("%s: error code %d, want %d", tc.name, got, tc.code)
		}
	}
	end, _ := tn.admin().ListEndOffsets(ctxT(t), "bad")
	if o, _ := end.Lookup("bad", 0); o.Offset != 0 {
		t.Fatalf("bad batches reached the log: end offset %d", o.Offset)
	}
	// The broker still serves.
	produceN(t, tn.client(kgo.DefaultProduceTopic("bad")), "bad", 5, "fine")
}

func TestGarbageConnectionsDoNotHurtOthers(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("g", 1, nil)
	for _, payload := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},                       // negative length
		{0x7f, 0xff, 0xff, 0xff, 1, 2, 3},              // 2 GiB length
		{0, 0, 0, 8, 0, 99, 0, 0, 0, 0, 0, 1},          // unknown API key 99
		{0, 0, 0, 10, 0, 0, 0x7f, 0, 0, 0, 0, 1, 0, 0}, // produce v32512
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		c, err := net.Dial("tcp", tn.addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		_, err = c.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("payload %x: connection answered instead of closing", payload)
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("payload %x: connection left open instead of closed", payload)
		}
		c.Close()
	}
	produceN(t, tn.client(kgo.DefaultProduceTopic("g")), "g", 10, "after-garbage")
}

func TestManyConnections(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("many", 4, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(tn.addr()), kgo.DefaultProduceTopic("many"))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for j := 0; j < 50; j++ {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(fmt.Sprintf("%d-%d", i, j))}).FirstErr(); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs := consumeAll(t, tn.client(kgo.ConsumeTopics("many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 1000)
	requireExactlyOnce(t, recs, 1000)
}

func TestMetricsEndpoint(t *testing.T) {
	addr := freeAddr(t)
	tn := startNode(t, "troupe.metrics.listener="+addr)
	tn.createTopic("m", 2, nil)
	produceN(t, tn.client(kgo.DefaultProduceTopic("m")), "m", 10, "x")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`troupe_requests_total{api="Produce"}`, "troupe_partitions_led 2", "troupe_topics 1", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	hr, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", hr.Status)
	}
}

func TestTopicConfigChangesApply(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("cfg", 1, map[string]*string{"message.timestamp.type": strp("LogAppendTime")})
	cl := tn.client(kgo.DefaultProduceTopic("cfg"), kgo.ProducerLinger(0))
	old := time.Now().Add(-48 * time.Hour)
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, tn.client(kgo.ConsumeTopics("cfg"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 1)
	if since := time.Since(recs[0].Timestamp); since > time.Minute || since < -time.Minute {
		t.Fatalf("LogAppendTime topic kept the producer's timestamp %v", recs[0].Timestamp)
	}
	if recs[0].Attrs.TimestampType() != 1 {
		t.Fatalf("timestamp type %d, want log-append (1)", recs[0].Attrs.TimestampType())
	}

	if _, err := tn.admin().AlterTopicConfigs(ctxT(t), []kadm.AlterConfig{{Name: "max.message.bytes", Value: strp("2000")}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	// Random bytes, so the client's compression cannot shrink it.
	big := make([]byte, 5000)
	rand.New(rand.NewSource(1)).Read(big)
	err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("record over the altered max.message.bytes: %v", err)
	}
}

// TestShutdownIsNotHeldByParkedFetch: a consumer long-polling an idle
// partition must not hold a graceful shutdown up for its MaxWait.
func TestShutdownIsNotHeldByParkedFetch(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("idle", 1, nil)
	cl := tn.client(kgo.ConsumeTopics("idle"), kgo.FetchMaxWait(30*time.Second))
	go cl.PollFetches(context.Background())
	time.Sleep(300 * time.Millisecond) // let the fetch park
	start := time.Now()
	tn.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("graceful shutdown took %v with a parked fetch", took)
	}
}

func TestDescribeClusterAndOffsetForLeaderEpoch(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("dc", 1, nil)
	cl := tn.client()
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("DescribeCluster: %v %d", err, resp.ErrorCode)
	}
	if resp.ControllerID != 1 || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.ClusterID == "" {
		t.Fatalf("DescribeCluster answer %+v", resp)
	}
	host, port, _ := net.SplitHostPort(tn.addr())
	if b := resp.Brokers[0]; b.Host != host || fmt.Sprint(b.Port) != port {
		t.Fatalf("broker %s:%d, want %s", b.Host, b.Port, tn.addr())
	}

	produceN(t, tn.client(kgo.DefaultProduceTopic("dc")), "dc", 7, "x")
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "dc"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.LeaderEpoch = 0
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	oe.Topics = append(oe.Topics, rt)
	or, err := oe.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := or.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.EndOffset != 7 {
		t.Fatalf("OffsetForLeaderEpoch %+v, want end offset 7", p)
	}
}

func TestRetentionByTime(t *testing.T) {
	tn := startNode(t, "log.retention.check.interval.ms=100")
	tn.createTopic("old", 1, map[string]*string{"segment.bytes": strp("1024"), "retention.ms": strp("3600000")})
	cl := tn.client(kgo.DefaultProduceTopic("old"), kgo.ProducerLinger(0))
	twoDaysAgo := time.Now().Add(-48 * time.Hour)
	// Incompressible values, so each segment holds two or three batches.
	rng := rand.New(rand.NewSource(2))
	value := func() []byte { b := make([]byte, 300); rng.Read(b); return b }
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: value(), Timestamp: twoDaysAgo}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The newest records are recent: the active segment stays anyway, and
	// a recent segment must survive.
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: value()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		start, _ := tn.admin().ListStartOffsets(ctxT(t), "old")
		if o, _ := start.Lookup("old", 0); o.Offset >= 16 {
			if o.Offset > 20 {
				t.Fatalf("retention deleted recent records: start offset %d", o.Offset)
			}
			break
		}
		if time.Now().After(deadline) {
			start, _ := tn.admin().ListStartOffsets(ctxT(t), "old")
			o, _ := start.Lookup("old", 0)
			entries, _ := os.ReadDir(filepath.Join(tn.dir, "old-0"))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("time retention never moved the log start offset past the old records: start %d, files %v", o.Offset, names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCompactedTopicRequiresKeys: a compacted topic is the config that
// makes the broker decompress batches to validate them (every record
// needs a key), for every codec.
func TestCompactedTopicRequiresKeys(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("compacted", 1, map[string]*string{"cleanup.policy": strp("compact")})
	for name, codec := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "zstd": kgo.ZstdCompression(), "lz4": kgo.Lz4Compression()} {
		cl := tn.client(kgo.DefaultProduceTopic("compacted"), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(0))
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("%s: keyed record: %v", name, err)
		}
		err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("no key")}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("%s: record without a key on a compacted topic: %v, want INVALID_RECORD", name, err)
		}
	}
	end, _ := tn.admin().ListEndOffsets(ctxT(t), "compacted")
	if o, _ := end.Lookup("compacted", 0); o.Offset != 3 {
		t.Fatalf("end offset %d, want 3 (only the keyed records)", o.Offset)
	}
}
