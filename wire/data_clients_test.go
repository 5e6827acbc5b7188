package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOffsetAPIsWithKadm drives ListOffsets, DeleteRecords and
// OffsetForLeaderEpoch through franz-go's admin client.
func TestOffsetAPIsWithKadm(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2})
	_, addr := startDPServer(t, b)
	b.part("t", 0).append(t, testBatch(t, 5, 3, 1000))
	b.part("t", 0).append(t, testBatch(t, 5, 3, 9000))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	check := func(what string, lo kadm.ListedOffsets, err error, p int32, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		o, ok := lo.Lookup("t", p)
		if !ok || o.Err != nil || o.Offset != want {
			t.Fatalf("%s: partition %d: %+v, want offset %d", what, p, o, want)
		}
	}
	lo, err := adm.ListEndOffsets(ctx, "t")
	check("end", lo, err, 0, 10)
	check("end", lo, err, 1, 0)
	lo, err = adm.ListStartOffsets(ctx, "t")
	check("start", lo, err, 0, 0)
	lo, err = adm.ListOffsetsAfterMilli(ctx, 5000, "t")
	check("after 5000", lo, err, 0, 5)
	lo, err = adm.ListMaxTimestampOffsets(ctx, "t")
	check("max timestamp", lo, err, 0, 9)

	var del kadm.Offsets
	del.AddOffset("t", 0, 4, -1)
	dr, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := dr.Lookup("t", 0); !ok || r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", r)
	}
	lo, err = adm.ListStartOffsets(ctx, "t")
	check("start after delete", lo, err, 0, 4)

	var req kadm.OffsetForLeaderEpochRequest
	req.Add("t", 0, 0)
	eps, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := eps["t"][0]; !ok || ep.Err != nil || ep.LeaderEpoch != 0 || ep.EndOffset != 10 {
		t.Fatalf("offset for leader epoch: %+v", ep)
	}
}

// TestKgoConsumerWokenByProduce: a consumer parked in a long poll gets a
// record produced meanwhile without waiting out FetchMaxWait.
func TestKgoConsumerWokenByProduce(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s, addr := startDPServer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer func() {
		// The consumer's next fetch is parked for 10 s; a forced
		// shutdown must end it at once.
		sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer scancel()
		start := time.Now()
		s.Shutdown(sctx)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("forced shutdown took %v with a parked fetch", el)
		}
	}()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	got := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if fs.NumRecords() > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the consumer park its fetch
	sent := time.Now()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		if d := at.Sub(sent); d > 3*time.Second {
			t.Fatalf("record arrived %v after the produce; the long poll was not woken", d)
		}
	case <-ctx.Done():
		t.Fatal("the record never arrived")
	}
}
