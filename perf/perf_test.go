package perf

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestProduceThenConsume(t *testing.T) {
	brokers := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var progress bytes.Buffer
	pres, err := RunProduce(ctx, ProduceOptions{
		Brokers:            brokers,
		Topic:              "bench",
		NumRecords:         2000,
		RecordSize:         100,
		Partitions:         3,
		Linger:             time.Millisecond,
		MaxBufferedRecords: 64, // far fewer slots than records: slots are reused
		Throughput:         40000,
		Progress:           &progress,
		ProgressInterval:   10 * time.Millisecond,
		ClientOpts:         []kgo.Opt{kgo.ClientID("perf-test")},
	})
	if err != nil {
		t.Fatalf("RunProduce: %v", err)
	}
	if pres.Records != 2000 || pres.Bytes != 2000*100 {
		t.Fatalf("result %+v", pres)
	}
	// 2000 records at 40000/s take at least 50ms.
	if pres.Seconds < 0.045 || pres.RecordsPerSec > 45000 {
		t.Fatalf("throughput cap not honoured: %+v", pres)
	}
	if !(0 < pres.P50Ms && pres.P50Ms <= pres.P99Ms && pres.P99Ms <= pres.P999Ms && pres.P999Ms <= pres.MaxMs) {
		t.Fatalf("latencies out of order: %+v", pres)
	}
	if !strings.HasPrefix(pres.Summary(), "2000 records sent, ") {
		t.Fatalf("summary %q", pres.Summary())
	}
	if !strings.Contains(progress.String(), " records sent, ") {
		t.Fatalf("no progress line in %q", progress.String())
	}

	cres, err := RunConsume(ctx, ConsumeOptions{Brokers: brokers, Topic: "bench", Messages: 2000})
	if err != nil {
		t.Fatalf("RunConsume: %v", err)
	}
	if cres.Records != 2000 || cres.Bytes != 2000*100 || cres.End.Before(cres.Start) {
		t.Fatalf("result %+v", cres)
	}

	_, err = RunConsume(ctx, ConsumeOptions{Brokers: brokers, Topic: "bench", Messages: 2001, Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("consuming past the end: err = %v, want ErrTimeout", err)
	}
}

func TestProduceStopsAtFirstFailure(t *testing.T) {
	brokers := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The topic does not exist and is not created: every record fails,
	// and the run must end promptly rather than send all of them.
	res, err := RunProduce(ctx, ProduceOptions{
		Brokers:    brokers,
		Topic:      "missing",
		NumRecords: 1_000_000,
		RecordSize: 10,
		ClientOpts: []kgo.Opt{kgo.UnknownTopicRetries(0)},
	})
	if err == nil || res.Records != 0 {
		t.Fatalf("got %+v, %v; want an error and nothing acknowledged", res, err)
	}
}

func TestProduceOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts ProduceOptions
		want string
	}{
		{"no topic", ProduceOptions{NumRecords: 1, RecordSize: 1}, "topic is required"},
		{"no records", ProduceOptions{Topic: "t", RecordSize: 1}, "number of records"},
		{"no size", ProduceOptions{Topic: "t", NumRecords: 1}, "record size"},
		{"acks 1 idempotent", ProduceOptions{Topic: "t", NumRecords: 1, RecordSize: 1, Acks: AcksLeader}, "requires acks=-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RunProduce(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConsumeRow(t *testing.T) {
	start := time.Date(2024, 5, 6, 7, 8, 9, 12_000_000, time.UTC)
	r := ConsumeResult{Start: start, End: start.Add(2 * time.Second), Records: 1000, Bytes: 2 << 20}
	r.finish()
	want := "2024-05-06 07:08:09:012, 2024-05-06 07:08:11:012, 2.0000, 1.0000, 1000, 500.0000"
	if got := r.Row(); got != want {
		t.Fatalf("Row() = %q, want %q", got, want)
	}
}

func TestProduceCancel(t *testing.T) {
	brokers := newCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	// Throttled so that it would run for 100 s if not cancelled.
	res, err := RunProduce(ctx, ProduceOptions{
		Brokers: brokers, Topic: "slow", NumRecords: 100_000, RecordSize: 10, Partitions: 1, Throughput: 1000,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second || res.Records == 0 || res.Records >= 100_000 {
		t.Fatalf("cancelled run took %s and acknowledged %d records", took, res.Records)
	}
}
