package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
)

// The product promise is that unmodified Kafka clients work. franz-go
// drives most tests; these cover the other two Go clients users bring,
// each producing and consuming through its own protocol code.

func TestSaramaClient(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("sarama", 2, nil)
	sarama.Logger = log.New(io.Discard, "", 0)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Compression = sarama.CompressionLZ4
	cfg.Consumer.Return.Errors = true
	cl, err := sarama.NewClient([]string{tn.addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prod, err := sarama.NewSyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := 0; i < n; i++ {
		msg := &sarama.ProducerMessage{Topic: "sarama", Partition: int32(i % 2), Key: sarama.StringEncoder(fmt.Sprint("k", i)),
			Value: sarama.StringEncoder(fmt.Sprint("v", i)), Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("x")}}}
		if _, _, err := prod.SendMessage(msg); err != nil {
			t.Fatalf("sarama produce %d: %v", i, err)
		}
	}
	prod.Close()

	cons, err := sarama.NewConsumer([]string{tn.addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for p := int32(0); p < 2; p++ {
		pc, err := cons.ConsumePartition("sarama", p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(20 * time.Second)
		for got := 0; got < n/2; got++ {
			select {
			case m := <-pc.Messages():
				if len(m.Headers) != 1 || string(m.Headers[0].Key) != "h" {
					t.Fatalf("headers %+v", m.Headers)
				}
				seen[string(m.Value)] = true
			case err := <-pc.Errors():
				t.Fatalf("sarama consume: %v", err)
			case <-timeout:
				t.Fatalf("partition %d: %d of %d records", p, got, n/2)
			}
		}
		pc.Close()
	}
	if len(seen) != n {
		t.Fatalf("sarama read %d distinct records, want %d", len(seen), n)
	}
}

func TestKafkaGoClient(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("kafkago", 1, nil)
	w := &kafkago.Writer{Addr: kafkago.TCP(tn.addr()), Topic: "kafkago", RequiredAcks: kafkago.RequireAll,
		Compression: kafkago.Zstd, BatchTimeout: time.Millisecond}
	defer w.Close()
	const n = 300
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		msgs[i] = kafkago.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go write: %v", err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{tn.addr()}, Topic: "kafkago", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := 0; i < n; i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go read %d: %v", i, err)
		}
		if string(m.Value) != fmt.Sprint("v", i) || m.Offset != int64(i) {
			t.Fatalf("record %d: offset %d value %q", i, m.Offset, m.Value)
		}
	}
}
