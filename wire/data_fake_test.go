package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
)

// dpBackend is the data-path tests' Backend: a metadata image plus, for
// each partition led here, a dpPartition whose records live in a real
// partlog.Log (so that fetches carry real Regions and exercise sendfile).
// Admin methods are unused by these tests and fail.
type dpBackend struct {
	t     testing.TB
	store *partlog.Store

	mu    sync.Mutex
	img   *metadata.Image
	parts map[tp]*dpPartition
}

const dpNodeID = 1

// newDPBackend creates topics with the given partition counts, all led by
// this node at leader epoch 0.
func newDPBackend(t testing.TB, topics map[string]int) *dpBackend {
	t.Helper()
	store, err := partlog.Open(partlog.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("open partlog: %v", err)
	}
	b := &dpBackend{t: t, store: store, img: metadata.NewImage("test-cluster"), parts: map[tp]*dpPartition{}}
	b.apply(metadata.Record{Type: metadata.RecordRegisterBroker, Broker: &metadata.BrokerRecord{ID: dpNodeID, Host: "127.0.0.1", Port: 9092}})
	b.apply(metadata.Record{Type: metadata.RecordController, Controller: &metadata.ControllerRecord{ID: dpNodeID}})
	for name, n := range topics {
		b.addTopic(name, n)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.parts {
			p.close()
		}
		if err := store.Close(); err != nil {
			t.Errorf("close partlog: %v", err)
		}
	})
	return b
}

func (b *dpBackend) apply(rec metadata.Record) {
	b.t.Helper()
	next, err := metadata.Apply(b.img, b.img.Offset+1, rec)
	if err != nil {
		b.t.Fatalf("apply %+v: %v", rec, err)
	}
	b.img = next
}

// topicID derives a stable, distinct id from a topic name.
func dpTopicID(name string) metadata.TopicID {
	var id metadata.TopicID
	copy(id[:], "tid:"+name)
	id[15] ^= byte(len(name))
	return id
}

func (b *dpBackend) addTopic(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := dpTopicID(name)
	b.apply(metadata.Record{Type: metadata.RecordTopic, Topic: &metadata.TopicRecord{Name: name, ID: id}})
	for i := range n {
		b.apply(metadata.Record{Type: metadata.RecordPartition, Partition: &metadata.PartitionRecord{
			TopicID: id, Index: int32(i), Leader: dpNodeID, Replicas: []int32{dpNodeID}, ISR: []int32{dpNodeID},
		}})
		l, err := b.store.OpenLog(partlog.LogID{Topic: name, Partition: int32(i)}, partlog.DefaultLogConfig())
		if err != nil {
			b.t.Fatalf("open log %s-%d: %v", name, i, err)
		}
		b.parts[tp{name, int32(i)}] = &dpPartition{log: l, opts: batch.Options{MaxBatchBytes: 1 << 20}}
	}
}

// setLeader moves a partition's leadership in the image (to another
// broker, which it registers) and bumps its leader epoch; the local
// partition goes away when the leader is not this node.
func (b *dpBackend) setLeader(topic string, p int32, leader int32, epoch int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.img.Broker(leader); !ok {
		b.apply(metadata.Record{Type: metadata.RecordRegisterBroker, Broker: &metadata.BrokerRecord{
			ID: leader, Host: "10.0.0." + fmt.Sprint(leader), Port: 9092, Rack: "r" + fmt.Sprint(leader),
		}})
	}
	b.apply(metadata.Record{Type: metadata.RecordPartition, Partition: &metadata.PartitionRecord{
		TopicID: dpTopicID(topic), Index: p, Leader: leader, LeaderEpoch: epoch,
		Replicas: []int32{leader}, ISR: []int32{leader},
	}})
	dp := b.parts[tp{topic, p}]
	switch {
	case dp == nil:
	case leader != dpNodeID:
		dp.hidden = true
	default:
		dp.mu.Lock()
		dp.epoch = epoch
		dp.mu.Unlock()
	}
}

func (b *dpBackend) part(topic string, p int32) *dpPartition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parts[tp{topic, p}]
}

func (b *dpBackend) NodeID() int32 { return dpNodeID }
func (b *dpBackend) Image() *metadata.Image {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.img
}
func (b *dpBackend) Limits() Limits { return Limits{} }

var errDPUnsupported = fmt.Errorf("not in the data-path fake: %w", kerr.UnsupportedVersion)

func (b *dpBackend) CreateTopics(context.Context, []metadata.CreateTopic, bool) []error {
	return []error{errDPUnsupported}
}
func (b *dpBackend) DeleteTopics(context.Context, []string) []error { return []error{errDPUnsupported} }
func (b *dpBackend) CreatePartitions(context.Context, []metadata.CreatePartitions, bool) []error {
	return []error{errDPUnsupported}
}
func (b *dpBackend) TopicConfigs(string) ([]metadata.ConfigValue, error) {
	return nil, errDPUnsupported
}
func (b *dpBackend) BrokerConfigs() []metadata.ConfigValue { return nil }
func (b *dpBackend) AlterTopicConfigs(context.Context, string, []metadata.ConfigOp, bool) error {
	return errDPUnsupported
}
func (b *dpBackend) AllocateProducerID(context.Context) (int64, error) { return 1000, nil }

func (b *dpBackend) Partition(topic string, p int32) Partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	dp := b.parts[tp{topic, p}]
	if dp == nil || dp.hidden {
		return nil
	}
	return dp
}

// dpPartition is a partition actor stand-in. It answers every request
// synchronously, inline (the reply channels are buffered, so that never
// blocks), which keeps tests deterministic; hold makes it park requests
// instead, to test what happens when an actor is slow.
type dpPartition struct {
	log  *partlog.Log
	opts batch.Options

	mu       sync.Mutex
	hidden   bool  // not led here any more
	epoch    int32 // the leader epoch, as setLeader made it
	logStart int64
	// diverging, when set, is answered to every replica fetch that
	// carries a last fetched epoch (the fake's stand-in for KIP-320).
	diverging *actors.FetchResult
	// replicaFetches are the replica fetches seen (Reply cleared).
	replicaFetches []actors.ReplicaFetchRequest
	watches        []actors.WatchRequest
	held           []func()
	hold           bool
	// Counters for assertions.
	fetches, produces, watchesSeen int
}

func (p *dpPartition) close() {
	if err := p.log.Close(); err != nil && !errors.Is(err, partlog.ErrClosed) {
		panic(err)
	}
}

func (p *dpPartition) BatchOptions() batch.Options { return p.opts }

// run answers now, or parks the answer while hold is set.
func (p *dpPartition) run(fn func()) {
	p.mu.Lock()
	if p.hold {
		p.held = append(p.held, fn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	fn()
}

// setHold parks (true) or releases (false) requests; releasing answers the
// parked ones.
func (p *dpPartition) setHold(hold bool) {
	p.mu.Lock()
	p.hold = hold
	held := p.held
	p.held = nil
	p.mu.Unlock()
	if !hold {
		for _, fn := range held {
			fn()
		}
	}
}

func (p *dpPartition) Produce(m actors.ProduceRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.produces++
		base := p.log.EndOffset()
		batch.AssignOffsets(m.Records, base)
		if err := p.log.Append(m.Records, time.Now().UnixMilli()); err != nil {
			m.Reply <- actors.ProduceResult{Tag: m.Tag, ErrorCode: kerr.KafkaStorageError.Code, ErrorMessage: err.Error(),
				BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			return
		}
		m.Reply <- actors.ProduceResult{Tag: m.Tag, BaseOffset: base, LogAppendTime: -1, LogStartOffset: p.logStart}
		p.wakeLocked()
	})
}

// append writes a ready-made batch directly (test setup), waking watches.
func (p *dpPartition) append(t testing.TB, records []byte) int64 {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	base := p.log.EndOffset()
	batch.AssignOffsets(records, base)
	if err := p.log.Append(records, time.Now().UnixMilli()); err != nil {
		t.Fatalf("append: %v", err)
	}
	p.wakeLocked()
	return base
}

func (p *dpPartition) wakeLocked() {
	hw := p.log.EndOffset()
	kept := p.watches[:0]
	for _, w := range p.watches {
		if hw > w.Offset {
			select {
			case w.Wake <- struct{}{}:
			default:
			}
			continue
		}
		kept = append(kept, w)
	}
	p.watches = kept
}

func (p *dpPartition) Fetch(m actors.FetchRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.fetches++
		hw := p.log.EndOffset()
		r := actors.FetchResult{Tag: m.Tag, HighWatermark: hw, LastStableOffset: hw, LogStartOffset: p.logStart}
		if m.Offset < p.logStart || m.Offset > hw {
			r.ErrorCode = kerr.OffsetOutOfRange.Code
			m.Reply <- r
			return
		}
		region, err := p.log.Read(m.Offset, int(m.MaxBytes), hw)
		if err != nil {
			r.ErrorCode = kerr.KafkaStorageError.Code
		}
		r.Records = region
		m.Reply <- r
	})
}

// ReplicaFetch is a leader's answer to a follower: up to the log end (the
// fake's high watermark is its log end too), fenced by the fake's epoch.
func (p *dpPartition) ReplicaFetch(m actors.ReplicaFetchRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		seen := m
		seen.Reply = nil
		p.replicaFetches = append(p.replicaFetches, seen)
		end := p.log.EndOffset()
		r := actors.FetchResult{Tag: m.Tag, HighWatermark: end, LastStableOffset: end, LogStartOffset: p.logStart, LogEndOffset: end}
		switch {
		case m.CurrentLeaderEpoch >= 0 && m.CurrentLeaderEpoch < p.epoch:
			r.ErrorCode = kerr.FencedLeaderEpoch.Code
		case m.CurrentLeaderEpoch > p.epoch:
			r.ErrorCode = kerr.UnknownLeaderEpoch.Code
		case p.diverging != nil && m.LastFetchedEpoch >= 0:
			r.Diverging, r.DivergingEpoch, r.DivergingEndOffset = true, p.diverging.DivergingEpoch, p.diverging.DivergingEndOffset
		case m.FetchOffset < p.logStart || m.FetchOffset > end:
			r.ErrorCode = kerr.OffsetOutOfRange.Code
		case m.FetchOffset < end:
			region, err := p.log.Read(m.FetchOffset, int(m.MaxBytes), end)
			if err != nil {
				r.ErrorCode = kerr.KafkaStorageError.Code
			}
			r.Records = region
		}
		m.Reply <- r
	})
}

// ReplicaWatch: the fake's high watermark is its log end, so a replica
// watch is a watch.
func (p *dpPartition) ReplicaWatch(m actors.WatchRequest) { p.Watch(m) }

// OffsetForLeaderEpoch answers from the log's epoch history, the current
// epoch ending at the log end (as a Kafka leader's epoch cache has it).
func (p *dpPartition) OffsetForLeaderEpoch(m actors.EpochRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		r := actors.EpochResult{Tag: m.Tag, LeaderEpoch: -1, EndOffset: -1}
		switch {
		case m.CurrentLeaderEpoch >= 0 && m.CurrentLeaderEpoch < p.epoch:
			r.ErrorCode = kerr.FencedLeaderEpoch.Code
		case m.CurrentLeaderEpoch > p.epoch:
			r.ErrorCode = kerr.UnknownLeaderEpoch.Code
		case m.LeaderEpoch == p.epoch:
			r.LeaderEpoch, r.EndOffset = p.epoch, p.log.EndOffset()
		case m.LeaderEpoch >= 0 && m.LeaderEpoch < p.epoch:
			r.LeaderEpoch, r.EndOffset = p.log.EndOffsetForEpoch(m.LeaderEpoch)
		}
		m.Reply <- r
	})
}

func (p *dpPartition) Watch(m actors.WatchRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchesSeen++
	if p.log.EndOffset() > m.Offset {
		select {
		case m.Wake <- struct{}{}:
		default:
		}
		return
	}
	p.watches = append(p.watches, m)
}

func (p *dpPartition) ListOffsets(m actors.ListOffsetsRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		r := actors.ListOffsetsResult{Tag: m.Tag, Timestamp: -1, LeaderEpoch: 0}
		switch m.Timestamp {
		case -2:
			r.Offset = p.logStart
		case -1:
			r.Offset = p.log.EndOffset()
		case -3:
			r.Timestamp, r.Offset = p.log.MaxTimestamp()
		default:
			off, ts, found, err := p.log.OffsetForTimestamp(m.Timestamp)
			switch {
			case err != nil:
				r.ErrorCode = kerr.KafkaStorageError.Code
			case found:
				r.Offset, r.Timestamp = off, ts
			default:
				r.Offset = -1
			}
		}
		m.Reply <- r
	})
}

func (p *dpPartition) DeleteRecords(m actors.DeleteRecordsRequest) {
	p.run(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		hw := p.log.EndOffset()
		off := m.Offset
		if off == -1 {
			off = hw
		}
		if off < 0 || off > hw {
			m.Reply <- actors.DeleteRecordsResult{Tag: m.Tag, ErrorCode: kerr.OffsetOutOfRange.Code, LowWatermark: -1}
			return
		}
		p.logStart = max(p.logStart, off)
		m.Reply <- actors.DeleteRecordsResult{Tag: m.Tag, LowWatermark: p.logStart}
	})
}

// startDPServer serves b on a loopback listener until the test ends and
// returns its address.
func startDPServer(t testing.TB, b Backend) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if dp, ok := b.(*dpBackend); ok {
		// Advertise the real listener, so clients connect back to it.
		tcp := ln.Addr().(*net.TCPAddr)
		dp.mu.Lock()
		dp.apply(metadata.Record{Type: metadata.RecordRegisterBroker, Broker: &metadata.BrokerRecord{
			ID: dpNodeID, Host: tcp.IP.String(), Port: int32(tcp.Port)}})
		dp.mu.Unlock()
	}
	s := NewServer(b, Options{Listener: ln})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return s, ln.Addr().String()
}

// testBatch builds a plain (non-idempotent) batch of n records with the
// given value size.
func testBatch(t testing.TB, n, valueSize int, firstTimestamp int64) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		recs[i] = batch.Record{Value: v, TimestampDelta: int64(i)}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{FirstTimestamp: firstTimestamp, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatalf("build batch: %v", err)
	}
	return b
}

// batchOfSize builds a one-record batch exactly size bytes long.
func batchOfSize(t testing.TB, size int) []byte {
	t.Helper()
	v := max(size-80, 0)
	for range 8 {
		b := testBatch(t, 1, v, 1000)
		if len(b) == size {
			return b
		}
		v += size - len(b)
		if v < 0 {
			break
		}
	}
	// A varint width boundary can make a size unreachable with one
	// record; a second, small record fills the gap.
	opts := batch.BuildOptions{FirstTimestamp: 1000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for w := range 48 {
		for v := max(size-140, 0); v < size; v++ {
			b, err := batch.BuildBatch(opts, []batch.Record{{Value: make([]byte, v)}, {Value: make([]byte, w), TimestampDelta: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == size {
				return b
			}
			if len(b) > size {
				break
			}
		}
	}
	t.Fatalf("cannot build a batch of exactly %d bytes", size)
	return nil
}

// dpResult is the outcome of one request run through its handler.
type dpResult struct {
	resp      kmsg.Response // nil when the server sends no response
	closeConn bool
}

// dpCall runs kreq (at its set version) through the server's handler the
// way a connection does: the request is encoded and decoded first (so
// fields the version lacks are dropped), awaits are settled, and a
// zero-copy fetch reply is written out and decoded.
func dpCall(t testing.TB, s *Server, kreq kmsg.Request) dpResult {
	t.Helper()
	return dpCallCtx(t, s, kreq, context.Background())
}

// dpCallCtx is dpCall on a connection whose context is ctx.
func dpCallCtx(t testing.TB, s *Server, kreq kmsg.Request, ctx context.Context) dpResult {
	t.Helper()
	a, ok := s.lookup(kreq.Key())
	if !ok {
		t.Fatalf("no handler for key %d", kreq.Key())
	}
	v := kreq.GetVersion()
	if v < a.minVersion || v > a.maxVersion {
		t.Fatalf("%s v%d not advertised (%d-%d)", kmsg.NameForKey(kreq.Key()), v, a.minVersion, a.maxVersion)
	}
	dec := kmsg.RequestForKey(kreq.Key())
	dec.SetVersion(v)
	if err := dec.ReadFrom(kreq.AppendTo(nil)); err != nil {
		t.Fatalf("re-decode request: %v", err)
	}
	r := a.handle(s, &request{
		key: kreq.Key(), version: v, corr: 7, clientID: "dp-test", kreq: dec,
		nowMs: time.Now().UnixMilli(), remote: "127.0.0.1:1", ctx: ctx,
	})
	for r.await != nil {
		r = r.await()
	}
	res := dpResult{closeConn: r.closeConn}
	if r.resp != nil {
		// Round-trip through the encoding, so that fields the version
		// lacks read back as a client sees them.
		r.resp.SetVersion(v)
		dec := kmsg.ResponseForKey(kreq.Key())
		dec.SetVersion(v)
		if err := dec.ReadFrom(r.resp.AppendTo(nil)); err != nil {
			t.Fatalf("re-decode response: %v", err)
		}
		res.resp = dec
	}
	if r.fetch != nil {
		var buf bytes.Buffer
		_, err := r.fetch.writeTo(&buf, 7, v)
		r.fetch.release()
		if err != nil {
			t.Fatalf("write fetch reply: %v", err)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		hdr := 8
		if v >= 12 {
			hdr = 9
		}
		if err := resp.ReadFrom(buf.Bytes()[hdr:]); err != nil {
			t.Fatalf("decode fetch reply: %v", err)
		}
		res.resp = resp
	}
	if res.resp != nil && res.resp.GetVersion() != v {
		res.resp.SetVersion(v)
	}
	return res
}

// dpFetch runs a fetch and returns its response.
func dpFetch(t testing.TB, s *Server, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	res := dpCall(t, s, req)
	resp, ok := res.resp.(*kmsg.FetchResponse)
	if !ok {
		t.Fatalf("fetch answered %T", res.resp)
	}
	return resp
}

// countRecords counts the records in a fetched RecordBatches field.
func countRecords(t testing.TB, records []byte) int {
	t.Helper()
	n := 0
	it := batch.NewIter(records)
	for {
		h, _, ok := it.Next()
		if !ok {
			break
		}
		n += int(h.NumRecords)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("fetched records do not parse: %v", err)
	}
	return n
}

// newDPServer returns a server over b without listening, for dpCall.
func newDPServer(b Backend) *Server { return NewServer(b, Options{}) }

// metadataInternalTopic is the record creating an internal topic.
func metadataInternalTopic(name string) metadata.Record {
	return metadata.Record{Type: metadata.RecordTopic, Topic: &metadata.TopicRecord{Name: name, ID: dpTopicID(name), Internal: true}}
}
