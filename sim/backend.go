package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/wire"
)

// backend is a simulated process seen by the Kafka request handlers of
// package wire (wire.Backend): the very handlers real clients reach run
// against it. Partition and group handles enqueue to the process's
// cells; blocking calls (controller commands) park the request's task.
type backend struct {
	p   *process
	srv *wire.Server
	// cur is the request whose handler is running: the replies its
	// handles are owed are counted there, so the request task knows when
	// its answer is complete.
	cur *inflight
}

// inflight is one request being served.
type inflight struct {
	t      *sched.Task
	owed   []func() bool // one per reply channel: have all its replies arrived?
	counts map[any]*int  // replies owed per channel
}

func (r *inflight) complete() bool {
	for _, ok := range r.owed {
		if !ok() {
			return false
		}
	}
	return true
}

type taskKey struct{}

// owe records that the running handler sent a message whose reply will
// land in ch. Handlers size their reply channels for every message they
// send before reading any, so a channel's length counts the replies in.
func owe[T any](b *backend, ch chan<- T) {
	cur := b.cur
	if cur == nil {
		return
	}
	if cur.counts == nil {
		cur.counts = map[any]*int{}
	}
	if n, ok := cur.counts[ch]; ok {
		*n++
		return
	}
	n := new(int)
	*n = 1
	cur.counts[ch] = n
	cur.owed = append(cur.owed, func() bool { return len(ch) >= *n })
}

func newBackend(p *process) *backend {
	b := &backend{p: p}
	b.srv = wire.NewServer(b, wire.Options{})
	return b
}

// serve answers one client request through the wire handlers, in a task
// of the process; reply gets the response (or an error when the request
// cannot be answered, as a closed connection).
func (b *backend) serve(clientID string, kreq kmsg.Request, reply func(kmsg.Response, error)) {
	p := b.p
	p.goTask("request", func(t *sched.Task) {
		req := &inflight{t: t}
		ctx := context.WithValue(context.Background(), taskKey{}, req)
		b.cur = req
		call := b.srv.Call(ctx, wire.CallInfo{ClientID: clientID, Remote: clientID, NowMs: p.n.nowMs()}, kreq)
		b.cur = nil
		if ok, err := p.n.w.waitFor(t, requestTimeout, req.complete); err != nil || !ok {
			return // the process died, or the cells never answered: the client times out
		}
		resp, err := call.Finish()
		reply(resp, err)
	})
}

// requestTimeout bounds how long a request waits for its cells.
const requestTimeout = 30 * sched.Second

// taskOf is the task serving the request ctx belongs to.
func (b *backend) taskOf(ctx context.Context) (*inflight, error) {
	r, ok := ctx.Value(taskKey{}).(*inflight)
	if !ok || r.t == nil {
		return nil, errors.New("sim: backend call outside a request task")
	}
	return r, nil
}

// callController runs op on the active controller from the request
// task of ctx, retrying while there is none.
func (b *backend) callController(ctx context.Context, op ctrlOp) (any, error) {
	req, err := b.taskOf(ctx)
	if err != nil {
		return nil, err
	}
	res, err := b.p.callControllerTask(req.t, op)
	// Other requests ran while this one waited: their handlers are done,
	// and what this handler sends from here on is owed to it.
	b.cur = req
	return res, err
}

func (b *backend) NodeID() int32          { return b.p.n.id }
func (b *backend) Image() *metadata.Image { return b.p.ctrl.Image() }
func (b *backend) Limits() wire.Limits {
	return wire.Limits{SocketRequestMaxBytes: 100 << 20, AutoCreateTopics: false, DeleteTopicEnable: true,
		MaxInflightPerConn: 16}
}

func (b *backend) CreateTopics(ctx context.Context, reqs []metadata.CreateTopic, validateOnly bool) []error {
	return b.controllerErrs(ctx, len(reqs), func(c *metadata.Controller) []error { return c.CreateTopics(reqs, validateOnly) })
}

func (b *backend) DeleteTopics(ctx context.Context, names []string) []error {
	return b.controllerErrs(ctx, len(names), func(c *metadata.Controller) []error { return c.DeleteTopics(names) })
}

func (b *backend) CreatePartitions(ctx context.Context, reqs []metadata.CreatePartitions, validateOnly bool) []error {
	return b.controllerErrs(ctx, len(reqs), func(c *metadata.Controller) []error { return c.CreatePartitions(reqs, validateOnly) })
}

// controllerErrs runs a command with one error per item on the active
// controller; a failed call fails every item.
func (b *backend) controllerErrs(ctx context.Context, n int, cmd func(*metadata.Controller) []error) []error {
	res, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) { return cmd(c), nil })
	if err != nil {
		return fillErrs(n, err)
	}
	return res.([]error)
}

func fillErrs(n int, err error) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func (b *backend) TopicConfigs(topic string) ([]metadata.ConfigValue, error) {
	t := b.Image().Topic(topic)
	if t == nil {
		return nil, fmt.Errorf("topic %q: %w", topic, kerr.UnknownTopicOrPartition)
	}
	return metadata.EffectiveTopicConfigs(t, b.p.n.w.metadataDefaults().BrokerConfig), nil
}

func (b *backend) BrokerConfigs() []metadata.ConfigValue { return nil }

func (b *backend) AlterTopicConfigs(ctx context.Context, topic string, ops []metadata.ConfigOp, validateOnly bool) error {
	_, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) {
		return nil, c.AlterTopicConfigs(topic, ops, validateOnly)
	})
	return err
}

func (b *backend) AllocateProducerID(ctx context.Context) (int64, error) {
	p := b.p
	if p.pidNext >= p.pidEnd {
		res, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) {
			first, count, err := c.AllocateProducerIDBlock(p.n.id)
			return [2]int64{first, count}, err
		})
		if err != nil {
			return 0, err
		}
		blk := res.([2]int64)
		p.pidNext, p.pidEnd = blk[0], blk[0]+blk[1]
	}
	id := p.pidNext
	p.pidNext++
	return id, nil
}

func (b *backend) Partition(topic string, index int32) wire.Partition {
	r := b.p.replicas[partlog.LogID{Topic: topic, Partition: index}]
	if r == nil || r.cell == nil {
		return nil
	}
	return partitionHandle{b: b, r: r}
}

func (b *backend) FindCoordinator(ctx context.Context, keyType int8, key string) (metadata.Broker, error) {
	if keyType != 0 {
		return metadata.Broker{}, fmt.Errorf("coordinator key type %d: %w", keyType, kerr.InvalidRequest)
	}
	if b.Image().Topic(offsetsTopic) == nil {
		w := b.p.n.w
		policy := "compact"
		errs := b.CreateTopics(ctx, []metadata.CreateTopic{{Name: offsetsTopic, NumPartitions: w.cfg.OffsetsPartitions,
			ReplicationFactor: int16(min(3, w.cfg.Nodes)), Configs: map[string]*string{"cleanup.policy": &policy}}}, false)
		if err := errs[0]; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return metadata.Broker{}, fmt.Errorf("create the offsets topic: %v: %w", err, kerr.CoordinatorNotAvailable)
		}
	}
	return wire.GroupCoordinator(b.Image(), key)
}

func (b *backend) Group(id string) (wire.Group, error) {
	if err := b.p.groups.check(id); err != nil {
		return nil, err
	}
	return groupHandle{b: b, id: id}, nil
}

func (b *backend) ListGroups() []group.Summary { return b.p.groups.list() }

func (b *backend) ElectLeaders(ctx context.Context, typ metadata.ElectionType, parts []metadata.TopicPartition) ([]metadata.ElectionResult, error) {
	res, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) {
		return c.ElectLeaders(typ, parts), nil
	})
	if err != nil {
		return nil, err
	}
	return res.([]metadata.ElectionResult), nil
}

func (b *backend) AlterPartitionReassignments(ctx context.Context, reqs []metadata.Reassignment) ([]error, error) {
	res, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) {
		return c.AlterPartitionReassignments(reqs), nil
	})
	if err != nil {
		return nil, err
	}
	return res.([]error), nil
}

func (b *backend) ListPartitionReassignments(ctx context.Context) ([]metadata.PartitionReassignment, error) {
	res, err := b.callController(ctx, func(c *metadata.Controller, _ int64) (any, error) {
		return c.ListPartitionReassignments(), nil
	})
	if err != nil {
		return nil, err
	}
	return res.([]metadata.PartitionReassignment), nil
}

func (b *backend) DescribeQuorum(context.Context) (wire.QuorumInfo, error) {
	st := b.p.raft.Status()
	return wire.QuorumInfo{LeaderID: st.Leader, LeaderEpoch: int32(st.Term), HighWatermark: int64(st.Commit)}, nil
}

// partitionHandle is wire.Partition for a replica of the process: every
// call is delivered to the replica's cell as an event, as a mailbox would.
type partitionHandle struct {
	b *backend
	r *replica
}

func (h partitionHandle) BatchOptions() batch.Options { return h.r.cfg.Validate }

func (h partitionHandle) deliver(msg any) {
	r := h.r
	r.p.after(0, func() { r.handle(msg) })
}

func (h partitionHandle) Produce(m actors.ProduceRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}
func (h partitionHandle) Fetch(m actors.FetchRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}
func (h partitionHandle) Watch(m actors.WatchRequest) { h.deliver(&m) }
func (h partitionHandle) ListOffsets(m actors.ListOffsetsRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}
func (h partitionHandle) DeleteRecords(m actors.DeleteRecordsRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}
func (h partitionHandle) ReplicaFetch(m actors.ReplicaFetchRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}
func (h partitionHandle) ReplicaWatch(m actors.WatchRequest) {
	h.deliver(&actors.ReplicaWatchRequest{WatchRequest: m})
}
func (h partitionHandle) OffsetForLeaderEpoch(m actors.EpochRequest) {
	owe(h.b, m.Reply)
	h.deliver(&m)
}

// groupHandle is wire.Group for a group coordinated by the process.
type groupHandle struct {
	b  *backend
	id string
}

func (h groupHandle) Send(r actors.GroupRequest) {
	owe(h.b, r.Reply)
	g, id := h.b.p.groups, h.id
	h.b.p.after(0, func() { g.handle(id, r) })
}
