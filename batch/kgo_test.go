package batch

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Batches written by franz-go, a real producer, must validate deeply and
// decode to what was produced. kfake stands in for the broker; a control
// hook copies every Produce request's records before kfake handles it.
func TestValidateFranzGoBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an in-process Kafka")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	var (
		mu       sync.Mutex
		captured [][]byte
	)
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, topic := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range topic.Partitions {
				captured = append(captured, bytes.Clone(p.Records))
			}
		}
		return nil, nil, false // observe only; kfake answers
	})
	take := func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		out := captured
		captured = nil
		return out
	}

	codecs := map[Codec]kgo.CompressionCodec{
		CodecNone:   kgo.NoCompression(),
		CodecGzip:   kgo.GzipCompression(),
		CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4:    kgo.Lz4Compression(),
		CodecZstd:   kgo.ZstdCompression(),
	}
	for _, codec := range allCodecs {
		for _, txn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/transactional=%v", codec, txn), func(t *testing.T) {
				opts := []kgo.Opt{
					kgo.SeedBrokers(cluster.ListenAddrs()...),
					kgo.DefaultProduceTopic("t"),
					kgo.ProducerBatchCompression(codecs[codec]),
					kgo.ProducerLinger(5 * time.Millisecond),
				}
				if txn {
					opts = append(opts, kgo.TransactionalID("tx-"+codec.String()))
				}
				produced := produceWithKgo(t, opts, txn)
				checkCaptured(t, take(), codec, txn, produced)
			})
		}
	}
}

const kgoRecords = 4000

// produceWithKgo writes kgoRecords keyed records and returns them by key.
func produceWithKgo(t *testing.T, opts []kgo.Opt, txn bool) map[string]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if txn {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	produced := make(map[string]*kgo.Record, kgoRecords)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for i := range kgoRecords {
		r := &kgo.Record{
			Key:   fmt.Appendf(nil, "key-%05d", i),
			Value: bytes.Repeat(fmt.Appendf(nil, "value %d, ", i), 1+i%40),
		}
		if i%3 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}
		}
		produced[string(r.Key)] = r
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			errMu.Lock()
			defer errMu.Unlock()
			if firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if txn {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	return produced
}

// checkCaptured validates every captured partition payload and checks the
// records in them are exactly the ones produced.
func checkCaptured(t *testing.T, captured [][]byte, codec Codec, txn bool, produced map[string]*kgo.Record) {
	t.Helper()
	if len(captured) == 0 {
		t.Fatal("no produce requests captured")
	}
	seen := 0
	xerial := 0
	var scratch []byte
	for i, records := range captured {
		s, err := Validate(records, Options{Deep: true, RequireKeys: true, MaxBatchBytes: 1 << 20})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if s.Codec != codec || s.Transactional != txn || s.ProducerID < 0 || s.BaseSequence < 0 {
			t.Fatalf("request %d: summary %+v", i, s)
		}
		it := NewIter(records)
		for h, b, ok := it.Next(); ok; h, b, ok = it.Next() {
			if h.Codec() == CodecSnappy && bytes.HasPrefix(b[HeaderLen:], xerialMagic) {
				xerial++
			}
			payload, err := Payload(b, scratch)
			if err != nil {
				t.Fatal(err)
			}
			if h.Codec() != CodecNone {
				scratch = payload
			}
			rit := NewRecordIter(payload, h.NumRecords)
			for r, ok := rit.Next(); ok; r, ok = rit.Next() {
				want := produced[string(r.Key)]
				if want == nil || !bytes.Equal(r.Value, want.Value) || r.Headers.Len() != len(want.Headers) {
					t.Fatalf("record %q does not match what was produced", r.Key)
				}
				for _, wh := range want.Headers {
					if k, v, _ := r.Headers.Next(); string(k) != wh.Key || !bytes.Equal(v, wh.Value) {
						t.Fatalf("record %q header %q=%q, want %q=%q", r.Key, k, v, wh.Key, wh.Value)
					}
				}
				seen++
			}
			if rit.Err() != nil {
				t.Fatal(rit.Err())
			}
		}
	}
	// Retries may resend a batch, never drop one.
	if seen < len(produced) {
		t.Fatalf("saw %d records, produced %d", seen, len(produced))
	}
	t.Logf("%d requests, %d records, %d xerial batches", len(captured), seen, xerial)
}
