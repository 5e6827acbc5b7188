package actors

import (
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

// AlterISRFunc sends a partition's ISR change to the controller
// (Kafka's AlterPartition). It must not block: it hands the change off and
// later calls answer exactly once, from any goroutine, with the
// controller's answer (Seq copied from change; a lost request or answer
// is REQUEST_TIMED_OUT).
type AlterISRFunc func(id partlog.LogID, change partition.AlterISR, answer func(partition.AlterISRResult))

// Host runs partition actors on a protoactor-go actor system.
type Host struct {
	system *actor.ActorSystem
	store  *partlog.Store
	clock  func() time.Time
	logger *slog.Logger

	// Replication (EnableReplication): this broker's id and the way to
	// the controller. Set before any replicated partition starts.
	localID  int32
	alterISR AlterISRFunc

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

// EnableReplication lets the host run replicated partitions
// (StartReplica) on broker localID, sending their ISR changes through
// alterISR. Call it before the first StartReplica.
func (h *Host) EnableReplication(localID int32, alterISR AlterISRFunc) {
	h.localID, h.alterISR = localID, alterISR
}

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

// Start opens (recovering) the partition's log and spawns its actor: the
// single-replica leader of leaderEpoch (single-node mode). Starting a
// running partition only reconfigures it.
func (h *Host) Start(id partlog.LogID, cfg PartitionConfig, leaderEpoch int32) error {
	if p := h.Partition(id.Topic, id.Partition); p != nil {
		p.Reconfigure(cfg)
		return nil
	}
	return h.spawn(id, cfg, func() *partition.Core { return partition.New(cfg.Core, leaderEpoch) }, nil)
}

// StartReplica opens (recovering) a replicated partition's log and spawns
// its actor in role: leader or follower of the partition as the metadata
// image has it. Starting a running partition reconfigures it and applies
// role (see Partition.SetRole). EnableReplication must have been called.
func (h *Host) StartReplica(id partlog.LogID, cfg PartitionConfig, role ReplicaRole) error {
	if p := h.Partition(id.Topic, id.Partition); p != nil {
		p.Reconfigure(cfg)
		p.SetRole(role)
		return nil
	}
	return h.spawn(id, cfg, func() *partition.Core { return partition.NewReplica(cfg.Core, h.localID) }, &role)
}

// spawn opens the log, recovers the core newCore makes into a cell, and
// spawns the actor hosting it; role, when not nil, is the first message
// it handles.
func (h *Host) spawn(id partlog.LogID, cfg PartitionConfig, newCore func() *partition.Core, role *ReplicaRole) error {
	a := &partitionActor{
		clock: h.clock, root: h.system.Root,
		syncReq: make(chan struct{}, 1), syncStop: make(chan struct{}), syncDone: make(chan struct{}),
	}
	var alterISR AlterISRFunc
	if role != nil {
		alterISR = h.alterISR
	}
	cell, err := openCell(h.store, id, cfg, newCore, role != nil, h.localID, alterISR, a, h.logger)
	if err != nil {
		return err
	}
	a.cell = cell

	p := &Partition{root: h.system.Root, cfg: cfg, replicated: role != nil}
	p.validate.Store(&cfg.Validate)
	bounded := actor.Bounded(mailboxSize)
	props := actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(func() actor.Mailbox {
		a.mailbox = bounded()
		return a.mailbox
	}))
	p.pid = h.system.Root.Spawn(props)
	a.self = p.pid
	go a.syncLoop()
	if role != nil {
		p.SetRole(*role)
	}

	h.mu.Lock()
	h.parts[id] = p
	h.mu.Unlock()
	return nil
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

// Resign makes every replicated partition this node leads step down
// before the node stops: produces waiting for the ISR are answered
// NOT_LEADER_OR_FOLLOWER (the producers retry on the next leader) and
// parked follower fetches are answered, so that a graceful shutdown does
// not wait out request timeouts. The partitions stay open until Stop.
func (h *Host) Resign() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, p := range h.parts {
		if p.replicated {
			p.root.Send(p.pid, resign{})
		}
	}
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
	// replicated: made by StartReplica (roles, follower fetching).
	replicated bool
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

// ReplicaFetch serves a follower's fetch (leader side).
func (p *Partition) ReplicaFetch(r ReplicaFetchRequest) { p.root.Send(p.pid, &r) }

// ReplicaWatch parks a one-shot wake-up until the leader's log grows past
// r.Offset (a follower's long poll), the leadership changes, or
// r.DeadlineMs passes.
func (p *Partition) ReplicaWatch(r WatchRequest) { p.root.Send(p.pid, &ReplicaWatchRequest{r}) }

// OffsetForLeaderEpoch answers where an epoch ends in the log.
func (p *Partition) OffsetForLeaderEpoch(r EpochRequest) { p.root.Send(p.pid, &r) }

// SetRole applies the partition's state in the metadata image: a new
// leader epoch makes the replica leader or follower, an ISR or replica
// set change within the epoch updates it. Stale states are ignored. Only
// for partitions started with StartReplica.
func (p *Partition) SetRole(r ReplicaRole) {
	if p.replicated {
		p.root.Send(p.pid, &r)
	}
}

// ReadLocal reads this replica's log up to its end, whatever its role
// (diagnostics and tests).
func (p *Partition) ReadLocal(r LocalReadRequest) { p.root.Send(p.pid, &r) }

// Status asks for the replica's state.
func (p *Partition) Status(r StatusRequest) { p.root.Send(p.pid, &r) }

// FollowerState asks where the follower's next fetch starts (fetcher
// side).
func (p *Partition) FollowerState(r FollowerStateRequest) { p.root.Send(p.pid, &r) }

// FollowerFetched hands the follower its share of a fetch response
// (fetcher side); see FollowerFetchedRequest.
func (p *Partition) FollowerFetched(r FollowerFetchedRequest) { p.root.Send(p.pid, &r) }

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
