package wire

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
)

// fakeBackend is an in-memory Backend for the protocol tests. Metadata
// goes through the real metadata.Controller over an in-memory journal, so
// administrative requests meet the same validation as on a node; the
// partitions are fakePartitions that keep produced batches in memory.
type fakeBackend struct {
	nodeID int32
	ctrl   *metadata.Controller

	mu         sync.Mutex
	limits     Limits
	brokerCfgs []metadata.ConfigValue
	parts      map[fakePartitionKey]*fakePartition
	// allocErr, when set, is what AllocateProducerID fails with.
	allocErr error
	// calls counts Backend calls by method name, for tests that check a
	// request never reached the Backend.
	calls map[string]int

	// Group coordination (see groups_fake_test.go): coordErrs fail
	// FindCoordinator by key, groupErrs fail Group by group id; groups
	// are the fake coordinator actors, made on first use; summaries are
	// what ListGroups answers.
	coordErrs map[string]error
	groupErrs map[string]error
	groups    map[string]*fakeGroup
	summaries []group.Summary

	// Cluster administration (see admin_fake_test.go): quorum is what
	// DescribeQuorum answers; adminErrs fail the whole call of the
	// admin method they are keyed by.
	quorum    QuorumInfo
	adminErrs map[string]error
}

type fakePartitionKey struct {
	topic     metadata.TopicID
	partition int32
}

// fakeBrokerConfigs are the broker's configs: log.retention.ms is
// explicitly set, the rest are defaults.
var fakeBrokerConfigs = []metadata.ConfigValue{
	{Name: "auto.create.topics.enable", Value: "true", Source: metadata.SourceDefault, ReadOnly: true, Type: metadata.TypeBoolean, Doc: "Create topics on first use."},
	{Name: "default.replication.factor", Value: "1", Source: metadata.SourceDefault, ReadOnly: true, Type: metadata.TypeInt},
	{Name: "log.retention.ms", Value: "3600000", Source: metadata.SourceStaticBroker, ReadOnly: true, Type: metadata.TypeLong, Doc: "How long to keep data."},
	{Name: "message.max.bytes", Value: "1048588", Source: metadata.SourceDefault, ReadOnly: true, Type: metadata.TypeInt},
	{Name: "num.partitions", Value: "1", Source: metadata.SourceDefault, ReadOnly: true, Type: metadata.TypeInt},
	{Name: "sasl.jaas.config", Value: "secret", Source: metadata.SourceStaticBroker, ReadOnly: true, Sensitive: true, Type: metadata.TypePassword},
}

// newFakeBackend returns a backend for node 1 of cluster "fake-cluster"
// with no broker registered yet: call registerBroker with the address the
// server listens on, so that real clients connect to it.
func newFakeBackend() *fakeBackend {
	d := metadata.Defaults{
		NumPartitions:     1,
		ReplicationFactor: 1,
		DeleteTopicEnable: true,
		BrokerConfig:      staticBrokerConfig(fakeBrokerConfigs),
	}
	// Topic ids from a seeded generator: tests are deterministic.
	random := rand.NewChaCha8([32]byte{'t', 'r', 'o', 'u', 'p', 'e'})
	ctrl, err := metadata.NewController(&memJournal{}, 1, "fake-cluster", d, random)
	if err != nil {
		panic(err) // an empty in-memory journal cannot fail to replay
	}
	return &fakeBackend{
		nodeID: 1,
		ctrl:   ctrl,
		limits: Limits{
			SocketRequestMaxBytes: 1 << 20,
			AutoCreateTopics:      false,
			DeleteTopicEnable:     true,
			MaxInflightPerConn:    64,
		},
		brokerCfgs: fakeBrokerConfigs,
		parts:      map[fakePartitionKey]*fakePartition{},
		calls:      map[string]int{},
		coordErrs:  map[string]error{},
		groupErrs:  map[string]error{},
		groups:     map[string]*fakeGroup{},
	}
}

// registerBroker registers this node's listener and makes it controller.
func (fb *fakeBackend) registerBroker(host string, port int32) {
	if err := fb.ctrl.RegisterBroker(metadata.BrokerRecord{ID: fb.nodeID, Host: host, Port: port}); err != nil {
		panic(err)
	}
}

func (fb *fakeBackend) setLimits(f func(*Limits)) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f(&fb.limits)
}

func (fb *fakeBackend) called(method string) int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.calls[method]
}

func (fb *fakeBackend) count(method string) {
	fb.mu.Lock()
	fb.calls[method]++
	fb.mu.Unlock()
}

func (fb *fakeBackend) NodeID() int32          { return fb.nodeID }
func (fb *fakeBackend) Image() *metadata.Image { return fb.ctrl.Image() }

func (fb *fakeBackend) Limits() Limits {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.limits
}

// fakeMaxPartitions caps partition counts in the fake: the metadata image
// applies partitions one record at a time, copying the topic's partition
// list each time, so a fuzzed request for 10^5 partitions would take
// minutes there. The wire layer passes counts through unchecked.
const fakeMaxPartitions = 1000

func (fb *fakeBackend) CreateTopics(ctx context.Context, reqs []metadata.CreateTopic, validateOnly bool) []error {
	fb.count("CreateTopics")
	errs := make([]error, len(reqs))
	var pass []metadata.CreateTopic
	var at []int
	for i, r := range reqs {
		if r.NumPartitions > fakeMaxPartitions || len(r.Assignment) > fakeMaxPartitions {
			errs[i] = fmt.Errorf("fake backend: more than %d partitions: %w", fakeMaxPartitions, kerr.InvalidPartitions)
			continue
		}
		pass, at = append(pass, r), append(at, i)
	}
	for j, err := range fb.ctrl.CreateTopics(pass, validateOnly) {
		errs[at[j]] = err
	}
	return errs
}

func (fb *fakeBackend) DeleteTopics(ctx context.Context, names []string) []error {
	fb.count("DeleteTopics")
	return fb.ctrl.DeleteTopics(names)
}

func (fb *fakeBackend) CreatePartitions(ctx context.Context, reqs []metadata.CreatePartitions, validateOnly bool) []error {
	fb.count("CreatePartitions")
	errs := make([]error, len(reqs))
	var pass []metadata.CreatePartitions
	var at []int
	for i, r := range reqs {
		if r.Count > fakeMaxPartitions {
			errs[i] = fmt.Errorf("fake backend: more than %d partitions: %w", fakeMaxPartitions, kerr.InvalidPartitions)
			continue
		}
		pass, at = append(pass, r), append(at, i)
	}
	for j, err := range fb.ctrl.CreatePartitions(pass, validateOnly) {
		errs[at[j]] = err
	}
	return errs
}

func (fb *fakeBackend) TopicConfigs(topic string) ([]metadata.ConfigValue, error) {
	fb.count("TopicConfigs")
	t := fb.ctrl.Image().Topic(topic)
	if t == nil {
		return nil, fmt.Errorf("topic %q does not exist: %w", topic, kerr.UnknownTopicOrPartition)
	}
	return metadata.EffectiveTopicConfigs(t, staticBrokerConfig(fb.BrokerConfigs())), nil
}

func (fb *fakeBackend) BrokerConfigs() []metadata.ConfigValue {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return slices.Clone(fb.brokerCfgs)
}

func (fb *fakeBackend) AlterTopicConfigs(ctx context.Context, topic string, ops []metadata.ConfigOp, validateOnly bool) error {
	fb.count("AlterTopicConfigs")
	return fb.ctrl.AlterTopicConfigs(topic, ops, validateOnly)
}

func (fb *fakeBackend) AllocateProducerID(ctx context.Context) (int64, error) {
	fb.count("AllocateProducerID")
	fb.mu.Lock()
	err := fb.allocErr
	fb.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return fb.ctrl.AllocateProducerID()
}

// Partition returns the fake partition of an existing partition led by
// this node, creating it on first use.
func (fb *fakeBackend) Partition(topic string, partition int32) Partition {
	t := fb.ctrl.Image().Topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) || t.Partitions[partition].Leader != fb.nodeID {
		return nil // an untyped nil: handlers compare against nil
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	k := fakePartitionKey{t.ID, partition}
	p := fb.parts[k]
	if p == nil {
		p = &fakePartition{opts: batch.Options{MaxBatchBytes: 1048588}}
		fb.parts[k] = p
	}
	return p
}

// FindCoordinator answers this node for any key of a known type, unless
// coordErrs fails the key.
func (fb *fakeBackend) FindCoordinator(ctx context.Context, keyType int8, key string) (metadata.Broker, error) {
	fb.count("FindCoordinator")
	if keyType != 0 && keyType != 1 {
		return metadata.Broker{}, fmt.Errorf("unknown coordinator key type %d: %w", keyType, kerr.InvalidRequest)
	}
	fb.mu.Lock()
	err := fb.coordErrs[key]
	fb.mu.Unlock()
	if err != nil {
		return metadata.Broker{}, err
	}
	b, ok := fb.ctrl.Image().Broker(fb.nodeID)
	if !ok {
		return metadata.Broker{}, fmt.Errorf("fake backend: node not registered: %w", kerr.CoordinatorNotAvailable)
	}
	return b, nil
}

// Group returns the fake coordinator of groupID, unless groupErrs fails
// it.
func (fb *fakeBackend) Group(groupID string) (Group, error) {
	fb.count("Group")
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if err := fb.groupErrs[groupID]; err != nil {
		return nil, err
	}
	g := fb.groups[groupID]
	if g == nil {
		g = newFakeGroup(groupID, fb.ctrl.Image)
		fb.groups[groupID] = g
	}
	return g, nil
}

func (fb *fakeBackend) ListGroups() []group.Summary {
	fb.count("ListGroups")
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return slices.Clone(fb.summaries)
}

// group returns the fake coordinator of groupID, creating it (so tests
// can configure it before the first request).
func (fb *fakeBackend) group(groupID string) *fakeGroup {
	g, err := fb.Group(groupID)
	if err != nil {
		panic(err)
	}
	return g.(*fakeGroup)
}

// setGroupErr makes Group(groupID) fail with err (nil: succeed again).
func (fb *fakeBackend) setGroupErr(groupID string, err error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.groupErrs[groupID] = err
}

// hasGroup reports whether a fake actor was made for groupID.
func (fb *fakeBackend) hasGroup(groupID string) bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.groups[groupID] != nil
}

// groupCount is how many fake actors were made.
func (fb *fakeBackend) groupCount() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return len(fb.groups)
}

func (fb *fakeBackend) setSummaries(s []group.Summary) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.summaries = s
}

// fakePartition is a partition actor stand-in: it answers every request
// at once, in the caller's goroutine. Produced batches are kept (copied)
// in memory; Fetch answers offsets and watermarks with an empty Region,
// since only partlog can make Regions with data — tests that need record
// bytes on the wire extend this.
type fakePartition struct {
	opts batch.Options

	mu       sync.Mutex
	batches  [][]byte // produced records, one entry per Produce
	logStart int64
	hwm      int64
	watches  []actors.WatchRequest
	// dropped counts replies that found their channel full: a caller
	// that did not size its reply channel (the actors' contract).
	dropped int
}

func (p *fakePartition) BatchOptions() batch.Options { return p.opts }

func (p *fakePartition) Produce(req actors.ProduceRequest) {
	p.mu.Lock()
	base := p.hwm
	p.batches = append(p.batches, slices.Clone(req.Records))
	n := req.Summary.OffsetCount
	if n <= 0 {
		n = 1
	}
	p.hwm += n
	res := actors.ProduceResult{Tag: req.Tag, BaseOffset: base, LogAppendTime: -1, LogStartOffset: p.logStart}
	watches := p.takeWatchesLocked()
	p.mu.Unlock()
	for _, w := range watches {
		wake(w.Wake)
	}
	if req.Reply != nil {
		p.send(func() bool {
			select {
			case req.Reply <- res:
				return true
			default:
				return false
			}
		})
	}
}

func (p *fakePartition) Fetch(req actors.FetchRequest) {
	p.mu.Lock()
	res := actors.FetchResult{Tag: req.Tag, HighWatermark: p.hwm, LastStableOffset: p.hwm, LogStartOffset: p.logStart, Records: partlog.Region{}}
	if req.Offset < p.logStart || req.Offset > p.hwm {
		res.ErrorCode = kerr.OffsetOutOfRange.Code
	}
	p.mu.Unlock()
	p.send(offer(req.Reply, res))
}

func (p *fakePartition) Watch(req actors.WatchRequest) {
	p.mu.Lock()
	ready := p.hwm > req.Offset
	if !ready {
		p.watches = append(p.watches, req)
	}
	p.mu.Unlock()
	if ready {
		wake(req.Wake)
	}
}

func (p *fakePartition) ListOffsets(req actors.ListOffsetsRequest) {
	p.mu.Lock()
	res := actors.ListOffsetsResult{Tag: req.Tag, Timestamp: -1, LeaderEpoch: 0}
	switch req.Timestamp {
	case -2:
		res.Offset = p.logStart
	case -3:
		res.Offset = max(p.hwm-1, p.logStart)
	default: // latest, and timestamps: no timestamps are kept
		res.Offset = p.hwm
	}
	p.mu.Unlock()
	p.send(offer(req.Reply, res))
}

func (p *fakePartition) DeleteRecords(req actors.DeleteRecordsRequest) {
	p.mu.Lock()
	res := actors.DeleteRecordsResult{Tag: req.Tag}
	off := req.Offset
	if off == -1 {
		off = p.hwm
	}
	if off < 0 || off > p.hwm {
		res.ErrorCode = kerr.OffsetOutOfRange.Code
	} else {
		p.logStart = max(p.logStart, off)
	}
	res.LowWatermark = p.logStart
	p.mu.Unlock()
	p.send(offer(req.Reply, res))
}

// The fake has no replicas: replica fetches and epoch lookups are answered
// NOT_LEADER_OR_FOLLOWER, and a replica watch is a watch.
func (p *fakePartition) ReplicaFetch(req actors.ReplicaFetchRequest) {
	res := actors.FetchResult{Tag: req.Tag, ErrorCode: kerr.NotLeaderForPartition.Code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, LogEndOffset: -1}
	p.send(offer(req.Reply, res))
}

func (p *fakePartition) ReplicaWatch(req actors.WatchRequest) { p.Watch(req) }

func (p *fakePartition) OffsetForLeaderEpoch(req actors.EpochRequest) {
	res := actors.EpochResult{Tag: req.Tag, ErrorCode: kerr.NotLeaderForPartition.Code, LeaderEpoch: -1, EndOffset: -1}
	p.send(offer(req.Reply, res))
}

// produced returns copies of the produced record sets, in order.
func (p *fakePartition) produced() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]byte, len(p.batches))
	for i, b := range p.batches {
		out[i] = slices.Clone(b)
	}
	return out
}

// offer is a non-blocking send of v on ch, for send: an actor never
// blocks on a reply channel.
func offer[T any](ch chan<- T, v T) func() bool {
	return func() bool {
		select {
		case ch <- v:
			return true
		default:
			return false
		}
	}
}

func (p *fakePartition) send(try func() bool) {
	if !try() {
		p.mu.Lock()
		p.dropped++
		p.mu.Unlock()
	}
}

func (p *fakePartition) takeWatchesLocked() []actors.WatchRequest {
	var ready, keep []actors.WatchRequest
	for _, w := range p.watches {
		if p.hwm > w.Offset {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	p.watches = keep
	return ready
}

func wake(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// memJournal is a metadata.Journal in memory.
type memJournal struct {
	mu   sync.Mutex
	recs []metadata.Record
}

func (j *memJournal) Append(recs []metadata.Record) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, recs...)
	return int64(len(j.recs) - 1), nil
}

func (j *memJournal) Replay(fn func(offset int64, rec metadata.Record) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, r := range j.recs {
		if err := fn(int64(i), r); err != nil {
			return err
		}
	}
	return nil
}

func (j *memJournal) Close() error { return nil }

// TestFakePartition pins down the fake's behaviour for tests built on it.
func TestFakePartition(t *testing.T) {
	fb := newFakeBackend()
	fb.registerBroker("127.0.0.1", 9092)
	if errs := fb.CreateTopics(context.Background(), []metadata.CreateTopic{{Name: "t", NumPartitions: 2, ReplicationFactor: 1}}, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if fb.Partition("t", 2) != nil || fb.Partition("absent", 0) != nil {
		t.Fatal("partition of a missing partition")
	}
	p := fb.Partition("t", 1).(*fakePartition)

	wake := make(chan struct{}, 1)
	p.Watch(actors.WatchRequest{Offset: 0, Wake: wake})
	produced := make(chan actors.ProduceResult, 2)
	p.Produce(actors.ProduceRequest{Records: []byte{1, 2}, Summary: actors.BatchSummary{OffsetCount: 3}, Tag: 5, Reply: produced})
	p.Produce(actors.ProduceRequest{Records: []byte{3}, Summary: actors.BatchSummary{OffsetCount: 1}, Tag: 6, Reply: produced})
	if r := <-produced; r.Tag != 5 || r.BaseOffset != 0 {
		t.Fatalf("first produce: %+v", r)
	}
	if r := <-produced; r.Tag != 6 || r.BaseOffset != 3 {
		t.Fatalf("second produce: %+v", r)
	}
	select {
	case <-wake:
	default:
		t.Fatal("watch not woken by produce")
	}
	if got := p.produced(); len(got) != 2 || got[0][1] != 2 || got[1][0] != 3 {
		t.Fatalf("produced %v", got)
	}

	fetched := make(chan actors.FetchResult, 2)
	p.Fetch(actors.FetchRequest{Offset: 4, Tag: 1, Reply: fetched})
	p.Fetch(actors.FetchRequest{Offset: 5, Tag: 2, Reply: fetched})
	if r := <-fetched; r.ErrorCode != 0 || r.HighWatermark != 4 || r.Records.Len() != 0 {
		t.Fatalf("fetch at the end: %+v", r)
	}
	if r := <-fetched; r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: %+v", r)
	}

	deleted := make(chan actors.DeleteRecordsResult, 1)
	p.DeleteRecords(actors.DeleteRecordsRequest{Offset: 2, Reply: deleted})
	if r := <-deleted; r.LowWatermark != 2 {
		t.Fatalf("delete records: %+v", r)
	}
	listed := make(chan actors.ListOffsetsResult, 2)
	p.ListOffsets(actors.ListOffsetsRequest{Timestamp: -2, Reply: listed})
	p.ListOffsets(actors.ListOffsetsRequest{Timestamp: -1, Reply: listed})
	if a, b := <-listed, <-listed; a.Offset != 2 || b.Offset != 4 {
		t.Fatalf("list offsets: %+v %+v", a, b)
	}
}
