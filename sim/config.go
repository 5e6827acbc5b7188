package sim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/wire"
)

// offsetsTopic is Kafka's topic of committed offsets.
const offsetsTopic = wire.OffsetsTopic

// Fault kinds, as --faults names them.
const (
	FaultNetwork   = "net"       // delays, drops, duplicates, reordering
	FaultPartition = "partition" // symmetric and one-way network partitions
	FaultCrash     = "crash"     // kill -9 and power loss, then restart
	FaultPause     = "pause"     // stop-the-world pauses
	FaultDisk      = "disk"      // I/O errors, disk full, torn writes
	FaultClock     = "clock"     // clock offsets and jumps
)

// AllFaults lists every fault kind.
var AllFaults = []string{FaultNetwork, FaultPartition, FaultCrash, FaultPause, FaultDisk, FaultClock}

// ParseFaults reads a comma-separated fault list ("all", "none", or
// names from AllFaults).
func ParseFaults(s string) ([]string, error) {
	switch s {
	case "", "all":
		return slices.Clone(AllFaults), nil
	case "none":
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(AllFaults, f) {
			return nil, fmt.Errorf("unknown fault %q (known: %s, all, none)", f, strings.Join(AllFaults, ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Config describes one simulation run. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Seed uint64
	// Nodes is how many nodes run (each a broker and a voter).
	Nodes int
	// Faults are the fault kinds injected during the safety phase.
	Faults []string
	// SafetyTime is how long (simulated) the workload runs under faults;
	// LivenessTime bounds how long the healed cluster may take to finish
	// all pending work.
	SafetyTime, LivenessTime sched.Time
	// MaxSteps, when positive, ends the safety phase after this many of
	// its events (or at SafetyTime, whichever comes first).
	MaxSteps uint64
	// Mutation is the deliberately broken variant to run (mutation.None:
	// the real code).
	Mutation mutation.Kind
	// Trace, when set, receives every trace line.
	Trace io.Writer
	// StopAtViolation ends the run at the first violation.
	StopAtViolation bool

	Producers, Consumers int
	Partitions           int32
	OffsetsPartitions    int32

	TickInterval      sched.Time
	ElectionTicks     int
	HeartbeatInterval sched.Time
	SessionTimeout    sched.Time
	RequestTimeout    sched.Time
	RetryBackoff      sched.Time
	ProduceInterval   sched.Time
	ConsumeInterval   sched.Time
	ReplicaPoll       sched.Time
	ReplicaLagMax     sched.Time
}

// DefaultConfig is a three-node cluster under every fault kind for ten
// simulated seconds.
func DefaultConfig() Config {
	return Config{
		Nodes: 3, Faults: slices.Clone(AllFaults),
		SafetyTime: 10 * sched.Second, LivenessTime: 30 * sched.Second,
		Producers: 2, Consumers: 2, Partitions: 3, OffsetsPartitions: 2,
		TickInterval: 100 * sched.Millisecond, ElectionTicks: 10,
		HeartbeatInterval: 500 * sched.Millisecond, SessionTimeout: 3 * sched.Second,
		RequestTimeout: 2 * sched.Second, RetryBackoff: 100 * sched.Millisecond,
		ProduceInterval: 20 * sched.Millisecond, ConsumeInterval: 50 * sched.Millisecond,
		ReplicaPoll: 20 * sched.Millisecond, ReplicaLagMax: 3 * sched.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *sched.Time, def sched.Time) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.Nodes <= 0 {
		c.Nodes = d.Nodes
	}
	set(&c.SafetyTime, d.SafetyTime)
	set(&c.LivenessTime, d.LivenessTime)
	set(&c.TickInterval, d.TickInterval)
	set(&c.HeartbeatInterval, d.HeartbeatInterval)
	set(&c.SessionTimeout, d.SessionTimeout)
	set(&c.RequestTimeout, d.RequestTimeout)
	set(&c.RetryBackoff, d.RetryBackoff)
	set(&c.ProduceInterval, d.ProduceInterval)
	set(&c.ConsumeInterval, d.ConsumeInterval)
	set(&c.ReplicaPoll, d.ReplicaPoll)
	set(&c.ReplicaLagMax, d.ReplicaLagMax)
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = d.ElectionTicks
	}
	if c.Producers <= 0 {
		c.Producers = d.Producers
	}
	if c.Consumers < 0 {
		c.Consumers = 0
	} else if c.Consumers == 0 {
		c.Consumers = d.Consumers
	}
	if c.Partitions <= 0 {
		c.Partitions = d.Partitions
	}
	if c.OffsetsPartitions <= 0 {
		c.OffsetsPartitions = d.OffsetsPartitions
	}
	return c
}

func (c Config) has(fault string) bool { return slices.Contains(c.Faults, fault) }

// partitionConfig is what the daemon's partitionConfig makes of a topic,
// with the simulator's lag bound.
func (w *World) partitionConfig(t *metadata.Topic) actors.PartitionConfig {
	v := map[string]string{}
	for _, cv := range metadata.EffectiveTopicConfigs(t, w.metadataDefaults().BrokerConfig) {
		v[cv.Name] = cv.Value
	}
	minISR, _ := strconv.Atoi(v["min.insync.replicas"])
	return actors.PartitionConfig{
		Log: partlog.LogConfig{SegmentBytes: 64 << 10, SegmentMs: 7 * 24 * 3600 * 1000, RetentionMs: -1, RetentionBytes: -1},
		Core: partition.Settings{
			AckAfterSync: true, SnapshotIntervalMs: 2000, ProducerExpirationMs: 24 * 3600 * 1000,
			MinInsyncReplicas: int32(minISR), ReplicaLagTimeMaxMs: w.cfg.ReplicaLagMax.Ms(),
		},
		Validate: batch.Options{MaxBatchBytes: 1 << 20, RequireKeys: t.Name != offsetsTopic && strings.Contains(v["cleanup.policy"], "compact")},
	}
}

// diskLatency is how long an fsync takes.
func (w *World) diskLatency() sched.Time {
	return 500*sched.Microsecond + w.s.Jitter(5*sched.Millisecond)
}

func batchHeader(b []byte) (batch.Header, error) { return batch.ParseHeader(b) }
