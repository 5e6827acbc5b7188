package cluster

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/batch"
)

// rawProducer sends hand-built idempotent batches so the test controls
// producer id, epoch and sequence numbers exactly.
type rawProducer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	id    [16]byte
	pid   int64
	epoch int16
}

func (p *rawProducer) send(seq int32, n int) (int16, int64) {
	p.t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte{byte(seq), byte(i)}}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: p.pid, ProducerEpoch: p.epoch, BaseSequence: seq}, recs)
	if err != nil {
		p.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = p.topic, p.id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(p.t), p.cl)
	if err != nil {
		p.t.Fatal(err)
	}
	pr := resp.Topics[0].Partitions[0]
	return pr.ErrorCode, pr.BaseOffset
}

func TestIdempotenceSurvivesRestart(t *testing.T) {
	tn := startNode(t)
	tn.createTopic("idem-restart", 1, nil)
	cl := tn.client()
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = 60000
	ir, err := init.RequestWith(ctxT(t), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %d", err, ir.ErrorCode)
	}
	p := &rawProducer{t: t, cl: cl, topic: "idem-restart", id: topicID(t, cl, "idem-restart"), pid: ir.ProducerID, epoch: ir.ProducerEpoch}

	for _, step := range []struct {
		seq  int32
		n    int
		code int16
		base int64
	}{
		{0, 3, 0, 0},
		{3, 2, 0, 3},
		{3, 2, 0, 3}, // retry of the last batch: original offset
		{0, 3, 0, 0}, // retry of an older batch still in the window
		{9, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
	} {
		code, base := p.send(step.seq, step.n)
		if code != step.code || (code == 0 && base != step.base) {
			t.Fatalf("seq %d: code %d base %d, want code %d base %d", step.seq, code, base, step.code, step.base)
		}
	}

	tn.restart()
	p.cl = tn.client()
	if code, base := p.send(3, 2); code != 0 || base != 3 {
		t.Fatalf("retry after restart: code %d base %d, want the original offset 3", code, base)
	}
	if code, base := p.send(5, 1); code != 0 || base != 5 {
		t.Fatalf("next batch after restart: code %d base %d, want offset 5", code, base)
	}
	if code, _ := p.send(7, 1); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: code %d", code)
	}
	p.epoch--
	if code, _ := p.send(6, 1); code != kerr.InvalidProducerEpoch.Code && code != kerr.ProducerFenced.Code {
		t.Fatalf("stale epoch: code %d", code)
	}
	end, _ := tn.admin().ListEndOffsets(ctxT(t), "idem-restart")
	if o, _ := end.Lookup("idem-restart", 0); o.Offset != 6 {
		t.Fatalf("log end %d, want 6 (no duplicate appended)", o.Offset)
	}
}
