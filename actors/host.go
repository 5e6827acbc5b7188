package actors

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
)

// mailboxSize bounds each partition actor's mailbox. A full mailbox blocks
// the sender (a connection's reader), which is the backpressure we want.
// The bounded mailbox preallocates its ring (24 bytes a slot), so this is
// also most of an idle partition's memory: 1024 slots keep it near 25 KiB
// while still queueing far more batches than a partition writes in one
// fsync.
const mailboxSize = 1024

// PartitionConfig is everything a partition actor needs from its topic's
// effective configs.
type PartitionConfig struct {
	Log      partlog.LogConfig
	Core     partition.Settings
	Validate batch.Options
}

// Host runs partition actors on a protoactor-go actor system.
type Host struct {
	system *actor.ActorSystem
	store  *partlog.Store
	clock  func() time.Time
	logger *slog.Logger

	mu    sync.RWMutex
	parts map[partlog.LogID]*Partition
}

// NewHost starts an actor system whose logging goes to logger.
func NewHost(store *partlog.Store, logger *slog.Logger, clock func() time.Time) *Host {
	if clock == nil {
		clock = time.Now
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("library", "protoactor-go")
	}))
	h := &Host{
		system: system, store: store, clock: clock, logger: logger,
		parts: map[partlog.LogID]*Partition{},
	}
	return h
}

// tick is the message a partition's timer sends its actor.
type tick struct{}

// Partition returns the running partition, or nil.
func (h *Host) Partition(topic string, index int32) *Partition {
	h.mu.RLock()
	p := h.parts[partlog.LogID{Topic: topic, Partition: index}]
	h.mu.RUnlock()
	return p
}

// Partitions lists the running partitions.
func (h *Host) Partitions() []partlog.LogID {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]partlog.LogID, 0, len(h.parts))
	for id := range h.parts {
		ids = append(ids, id)
	}
	return ids
}

// Start opens (recovering) the partition's log and spawns its actor.
// Starting a running partition only reconfigures it.
func (h *Host) Start(id partlog.LogID, cfg PartitionConfig, leaderEpoch int32) error {
	if p := h.Partition(id.Topic, id.Partition); p != nil {
		p.Reconfigure(cfg)
		return nil
	}
	l, err := h.store.OpenLog(id, cfg.Log)
	if err != nil {
		return fmt.Errorf("start partition %s-%d: %w", id.Topic, id.Partition, err)
	}
	// OpenLog leaves everything below EndOffset durable (what it trusted
	// was synced before, what it scanned it fsyncs), which is what
	// Recovered promises the core: no second fsync here.
	producers, snapEnd, err := h.recoverProducers(l)
	if err != nil {
		l.Close()
		return fmt.Errorf("start partition %s-%d: rebuild producer state: %w", id.Topic, id.Partition, err)
	}
	core := partition.New(cfg.Core, leaderEpoch)
	core.Step(partition.Recovered{LogStart: l.StartOffset(), LogEnd: l.EndOffset(), ProducerBatches: producers,
		SnapshotEnd: snapEnd, NowMs: h.clock().UnixMilli()})
	_ = core.Ready()

	p := &Partition{root: h.system.Root, cfg: cfg}
	p.validate.Store(&cfg.Validate)
	a := &partitionActor{
		id: id, core: core, log: l, clock: h.clock, logger: h.logger.With("topic", id.Topic, "partition", id.Partition),
		syncReq: make(chan struct{}, 1), syncStop: make(chan struct{}), syncDone: make(chan struct{}),
		timerAt: -1, root: h.system.Root,
	}
	bounded := actor.Bounded(mailboxSize)
	props := actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(func() actor.Mailbox {
		a.mailbox = bounded()
		return a.mailbox
	}))
	p.pid = h.system.Root.Spawn(props)
	a.self = p.pid
	go a.syncLoop()

	h.mu.Lock()
	h.parts[id] = p
	h.mu.Unlock()
	return nil
}

// recoverProducers rebuilds the idempotent producers' batches: the last
// snapshot, then every batch the log indexed from the snapshot's end on.
// Without a (readable) snapshot it replays the whole log.
func (h *Host) recoverProducers(l *partlog.Log) ([]partition.ProducerBatch, int64, error) {
	var producers []partition.ProducerBatch
	from := l.StartOffset()
	snapEnd, data, ok, err := l.LoadSnapshot()
	if err != nil {
		return nil, 0, err
	}
	if ok {
		if snap, err := decodeProducerSnapshot(data); err != nil {
			h.logger.Warn("ignoring unreadable producer snapshot; replaying the whole log", "log", l.ID().String(), "err", err)
			snapEnd = 0
		} else {
			producers = snap
			from = max(from, min(snapEnd, l.EndOffset()))
		}
	}
	err = l.Batches(from, func(b partlog.BatchInfo) bool {
		if b.ProducerID >= 0 {
			producers = append(producers, partition.ProducerBatch{
				BaseOffset: b.BaseOffset, LastOffset: b.LastOffset, ProducerID: b.ProducerID,
				ProducerEpoch: b.ProducerEpoch, BaseSequence: b.BaseSequence, TimestampMs: b.MaxTimestamp,
			})
		}
		return true
	})
	return producers, snapEnd, err
}

// Stop stops a partition's actor after it has finished the messages
// already queued, fsyncs and closes its log.
func (h *Host) Stop(id partlog.LogID) error {
	h.mu.Lock()
	p := h.parts[id]
	delete(h.parts, id)
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	return h.system.Root.PoisonFuture(p.pid).Wait()
}

// Delete stops a partition and removes its data.
func (h *Host) Delete(id partlog.LogID) error {
	if err := h.Stop(id); err != nil {
		return err
	}
	return h.store.DeleteLog(id)
}

// Close stops every partition and the actor system.
func (h *Host) Close() error {
	var first error
	for _, id := range h.Partitions() {
		if err := h.Stop(id); err != nil && first == nil {
			first = err
		}
	}
	h.system.Shutdown()
	return first
}

// Partition is the handle through which the rest of the node reaches one
// partition actor (it implements wire.Partition). Its methods only
// enqueue and never block on the actor's work.
type Partition struct {
	pid      *actor.PID
	root     *actor.RootContext
	validate atomic.Pointer[batch.Options]
	// cfg is the last configuration sent to the actor; owned by the Host's
	// caller (reconciliation is serialised by the node).
	cfg PartitionConfig
}

// BatchOptions are the produce validation settings of the topic.
func (p *Partition) BatchOptions() batch.Options { return *p.validate.Load() }

func (p *Partition) Produce(r ProduceRequest)             { p.root.Send(p.pid, &r) }
func (p *Partition) Fetch(r FetchRequest)                 { p.root.Send(p.pid, &r) }
func (p *Partition) Watch(r WatchRequest)                 { p.root.Send(p.pid, &r) }
func (p *Partition) ListOffsets(r ListOffsetsRequest)     { p.root.Send(p.pid, &r) }
func (p *Partition) DeleteRecords(r DeleteRecordsRequest) { p.root.Send(p.pid, &r) }

// Reconfigure applies changed topic configs; unchanged ones cost nothing.
func (p *Partition) Reconfigure(cfg PartitionConfig) {
	if cfg == p.cfg {
		return
	}
	p.cfg = cfg
	v := cfg.Validate
	p.validate.Store(&v)
	p.root.Send(p.pid, &cfg)
}
