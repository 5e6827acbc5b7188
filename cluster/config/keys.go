package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a config value's type, numbered as the config_type field of
// DescribeConfigs v3+ so it can go on the wire unchanged.
type Type int8

const (
	TypeBoolean Type = 1
	TypeString  Type = 2
	TypeInt     Type = 3
	TypeShort   Type = 4
	TypeLong    Type = 5
	TypeList    Type = 7
)

// keyDef describes one supported key.
type keyDef struct {
	name string
	typ  Type
	// def is the default as text; "" for keys that are unset by default
	// (their effective value comes from another key or means "off").
	def string
	doc string
	// check validates a value (already trimmed) and returns it normalized:
	// the form Set, All and TopicDefaults report. Errors say what is
	// wrong with the value, without naming the key.
	check func(string) (string, error)
}

const (
	msPerMinute = 60 * 1000
	msPerHour   = 60 * msPerMinute
)

// keyDefs are the supported keys, sorted by name. Kafka's names and
// meanings are kept, including the fallbacks between related keys (see
// Config.resolve); only the defaults of node.id, listeners and log.dir
// differ, so that no config at all gives a working local node.
var keyDefs = []keyDef{
	{name: "advertised.listeners", typ: TypeList, check: checkListeners(false),
		doc: "Listeners as clients should reach them, NAME://host:port, one per name in listeners. Unset: the listeners themselves, which then must not bind all interfaces."},
	{name: "auto.create.topics.enable", typ: TypeBoolean, def: "true", check: checkBool,
		doc: "Create a topic on first use by Metadata or Produce."},
	{name: "broker.heartbeat.interval.ms", typ: TypeInt, def: "2000", check: checkInt(1, math.MaxInt32),
		doc: "How often a broker heartbeats to the active controller."},
	{name: "broker.rack", typ: TypeString, check: checkString,
		doc: "Rack of this broker, reported in Metadata."},
	{name: "broker.session.timeout.ms", typ: TypeInt, def: "9000", check: checkInt(1, math.MaxInt32),
		doc: "A broker that has not heartbeaten for this long is fenced: its partitions get new leaders."},
	{name: "compression.type", typ: TypeString, def: "producer", check: checkOneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
		doc: "Default compression.type of topics; producer keeps batches as the producer compressed them."},
	{name: "controller.listener.names", typ: TypeList, check: checkListenerNames,
		doc: "Names of the listeners used by the controller quorum. Kept for the cluster mode; a single node ignores it."},
	{name: "controller.quorum.election.timeout.ms", typ: TypeInt, def: "1000", check: checkInt(100, math.MaxInt32),
		doc: "How long a quorum voter waits without hearing from the leader before it calls an election (raft election timeout; randomised up to twice this)."},
	{name: "controller.quorum.voters", typ: TypeList, check: checkVoters,
		doc: "Controller quorum, id@host:port,... Kept for the cluster mode; a single node ignores it."},
	{name: "default.replication.factor", typ: TypeInt, def: "1", check: checkInt(1, math.MaxInt16),
		doc: "Replication factor of auto-created topics and of CreateTopics requests that leave it to the broker."},
	{name: "delete.topic.enable", typ: TypeBoolean, def: "true", check: checkBool,
		doc: "Allow DeleteTopics."},
	{name: "group.consumer.assignors", typ: TypeList, def: "uniform,range", check: checkListOf("uniform", "range"),
		doc: "Server-side assignors of KIP-848 consumer groups; the first is the default."},
	{name: "group.consumer.heartbeat.interval.ms", typ: TypeInt, def: "5000", check: checkInt(1, math.MaxInt32),
		doc: "Heartbeat interval the coordinator gives KIP-848 consumer group members."},
	{name: "group.consumer.max.size", typ: TypeInt, def: "2147483647", check: checkInt(1, math.MaxInt32),
		doc: "Most members of one KIP-848 consumer group."},
	{name: "group.consumer.session.timeout.ms", typ: TypeInt, def: "45000", check: checkInt(1, math.MaxInt32),
		doc: "Session timeout of KIP-848 consumer group members."},
	{name: "group.initial.rebalance.delay.ms", typ: TypeInt, def: "3000", check: checkInt(0, math.MaxInt32),
		doc: "How long the first rebalance of an empty classic group waits for more members to join."},
	{name: "group.max.session.timeout.ms", typ: TypeInt, def: "1800000", check: checkInt(1, math.MaxInt32),
		doc: "Largest session timeout a classic group member may ask for."},
	{name: "group.max.size", typ: TypeInt, def: "2147483647", check: checkInt(1, math.MaxInt32),
		doc: "Most members of one classic group."},
	{name: "group.min.session.timeout.ms", typ: TypeInt, def: "6000", check: checkInt(1, math.MaxInt32),
		doc: "Smallest session timeout a classic group member may ask for."},
	{name: "listener.security.protocol.map", typ: TypeList, def: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT", check: checkProtocolMap,
		doc: "Security protocol of each listener name, NAME:PROTOCOL,... Only PLAINTEXT is supported yet."},
	{name: "listeners", typ: TypeList, def: "PLAINTEXT://127.0.0.1:9092", check: checkListeners(true),
		doc: "Addresses to listen on, NAME://host:port,...; an empty host or 0.0.0.0 binds all interfaces. The broker serves the first listener not named in controller.listener.names."},
	{name: "log.cleanup.policy", typ: TypeList, def: "delete", check: checkListOf("delete", "compact"),
		doc: "Default cleanup.policy of topics."},
	{name: "log.dir", typ: TypeString, def: "./data", check: checkNonEmpty,
		doc: "Directory of the data; used when log.dirs is unset."},
	{name: "log.dirs", typ: TypeList, check: checkLogDirs,
		doc: "Directory of the data (only one directory is supported yet). Overrides log.dir."},
	{name: "log.flush.interval.messages", typ: TypeLong, check: checkInt(1, math.MaxInt64),
		doc: "Default flush.messages of topics. Unset: every produce is fsynced before it is acknowledged (group commit)."},
	{name: "log.flush.interval.ms", typ: TypeLong, check: checkInt(0, math.MaxInt64),
		doc: "Default flush.ms of topics. Unset: every produce is fsynced before it is acknowledged (group commit)."},
	{name: "log.message.timestamp.type", typ: TypeString, def: "CreateTime", check: checkOneOf("CreateTime", "LogAppendTime"),
		doc: "Default message.timestamp.type of topics."},
	{name: "log.retention.bytes", typ: TypeLong, def: "-1", check: checkInt(-1, math.MaxInt64),
		doc: "Default retention.bytes of topics (per partition); -1: no size limit."},
	{name: "log.retention.check.interval.ms", typ: TypeLong, def: "300000", check: checkInt(1, math.MaxInt64),
		doc: "How often retention is enforced."},
	{name: "log.retention.hours", typ: TypeInt, def: "168", check: checkInt(-1, math.MaxInt32),
		doc: "Default retention of topics in hours, used when log.retention.ms and log.retention.minutes are unset; -1: unlimited."},
	{name: "log.retention.minutes", typ: TypeInt, check: checkInt(-1, math.MaxInt32),
		doc: "Default retention of topics in minutes, used when log.retention.ms is unset; -1: unlimited."},
	{name: "log.retention.ms", typ: TypeLong, check: checkInt(-1, math.MaxInt64),
		doc: "Default retention.ms of topics; -1: unlimited. Beats log.retention.minutes and log.retention.hours."},
	{name: "log.roll.hours", typ: TypeInt, def: "168", check: checkInt(1, math.MaxInt32),
		doc: "Default segment.ms of topics in hours, used when log.roll.ms is unset."},
	{name: "log.roll.ms", typ: TypeLong, check: checkInt(1, math.MaxInt64),
		doc: "Default segment.ms of topics: roll a new segment after this long. Beats log.roll.hours."},
	{name: "log.segment.bytes", typ: TypeInt, def: "1073741824", check: checkInt(14, math.MaxInt32),
		doc: "Default segment.bytes of topics."},
	{name: "message.max.bytes", typ: TypeInt, def: "1048588", check: checkInt(0, math.MaxInt32),
		doc: "Default max.message.bytes of topics: the largest record batch accepted."},
	{name: "min.insync.replicas", typ: TypeInt, def: "1", check: checkInt(1, math.MaxInt32),
		doc: "Default min.insync.replicas of topics."},
	{name: "node.id", typ: TypeInt, def: "1", check: checkInt(0, math.MaxInt32),
		doc: "Id of this node."},
	{name: "num.partitions", typ: TypeInt, def: "1", check: checkInt(1, math.MaxInt32),
		doc: "Partition count of auto-created topics and of CreateTopics requests that leave it to the broker."},
	{name: "offset.metadata.max.bytes", typ: TypeInt, def: "4096", check: checkInt(0, math.MaxInt32),
		doc: "Largest metadata string an offset commit may carry."},
	{name: "offsets.retention.check.interval.ms", typ: TypeLong, def: "600000", check: checkInt(1, math.MaxInt64),
		doc: "How often group coordinators look for expired committed offsets."},
	{name: "offsets.retention.minutes", typ: TypeInt, def: "10080", check: checkInt(1, math.MaxInt32),
		doc: "How long committed offsets of an empty group (or group-less commits) are kept."},
	{name: "offsets.topic.num.partitions", typ: TypeInt, def: "50", check: checkInt(1, 10000),
		doc: "Partitions of __consumer_offsets, fixed when it is created."},
	{name: "offsets.topic.replication.factor", typ: TypeShort, def: "3", check: checkInt(1, math.MaxInt16),
		doc: "Replication factor of __consumer_offsets (at most the number of brokers)."},
	{name: "offsets.topic.segment.bytes", typ: TypeInt, def: "104857600", check: checkInt(14, math.MaxInt32),
		doc: "Segment size of __consumer_offsets."},
	{name: "process.roles", typ: TypeList, check: checkRoles,
		doc: "broker, controller or both. Kept for the cluster mode; a single node is both."},
	{name: "producer.id.expiration.ms", typ: TypeInt, def: "86400000", check: checkInt(1, math.MaxInt32),
		doc: "How long an idempotent producer may stay silent before its sequence state is forgotten."},
	{name: "replica.fetch.max.bytes", typ: TypeInt, def: "1048576", check: checkInt(1, math.MaxInt32),
		doc: "Bytes a follower asks for per partition in one fetch from its leader."},
	{name: "replica.fetch.response.max.bytes", typ: TypeInt, def: "10485760", check: checkInt(1, math.MaxInt32),
		doc: "Bytes a follower accepts in one fetch response."},
	{name: "replica.fetch.wait.max.ms", typ: TypeInt, def: "500", check: checkInt(0, math.MaxInt32),
		doc: "How long a follower's fetch waits at the leader for new data."},
	{name: "replica.lag.time.max.ms", typ: TypeLong, def: "30000", check: checkInt(1, math.MaxInt64),
		doc: "A follower that has not caught up with the leader for this long leaves the ISR."},
	{name: "socket.request.max.bytes", typ: TypeInt, def: "104857600", check: checkInt(1, math.MaxInt32),
		doc: "Largest request accepted; a longer frame closes the connection."},
	{name: "troupe.gossip.advertised.listener", typ: TypeString, check: checkHostPort,
		doc: "host:port other nodes use to reach this node's gossip (failure detection). Empty: troupe.gossip.listener, or its host with the bound port."},
	{name: "troupe.gossip.listener", typ: TypeString, check: checkHostPort,
		doc: "host:port for gossip between nodes (memberlist failure detection). Empty: the broker listener's host with a free port; nodes find each other through the metadata."},
	{name: "troupe.metrics.listener", typ: TypeString, check: checkHostPort,
		doc: "host:port serving Prometheus /metrics and /debug/pprof. Empty: off."},
	{name: "troupe.ui.listener", typ: TypeString, check: checkHostPort,
		doc: "host:port of the web UI (reserved). Empty: off."},
	{name: "unclean.leader.election.enable", typ: TypeBoolean, def: "false", check: checkBool,
		doc: "Default unclean.leader.election.enable of topics."},
}

// lookupKey finds a supported key.
func lookupKey(name string) (*keyDef, bool) {
	for i := range keyDefs {
		if keyDefs[i].name == name {
			return &keyDefs[i], true
		}
	}
	return nil, false
}

// unsupportedKafkaKeys are Kafka broker keys found in stock
// server.properties files that Troupe does not implement. They are still
// errors (a setting that silently does nothing is worse than none), but
// the message says why and what to do instead of "unknown".
var unsupportedKafkaKeys = map[string]string{
	"broker.id":                                "Troupe uses node.id",
	"zookeeper.connect":                        "Troupe needs no ZooKeeper; remove it",
	"zookeeper.connection.timeout.ms":          "Troupe needs no ZooKeeper; remove it",
	"inter.broker.listener.name":               "the broker listener is the first one not in controller.listener.names",
	"num.network.threads":                      "Troupe sizes its own threads; remove it",
	"num.io.threads":                           "Troupe sizes its own threads; remove it",
	"num.recovery.threads.per.data.dir":        "Troupe sizes its own threads; remove it",
	"socket.send.buffer.bytes":                 "Troupe leaves socket buffers to the OS; remove it",
	"socket.receive.buffer.bytes":              "Troupe leaves socket buffers to the OS; remove it",
	"transaction.state.log.replication.factor": "transactions are not supported yet; remove it",
	"transaction.state.log.min.isr":            "transactions are not supported yet; remove it",
	"controller.quorum.bootstrap.servers":      "Troupe uses controller.quorum.voters",
}

func checkString(v string) (string, error) { return v, nil }

func checkNonEmpty(v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("must not be empty")
	}
	return v, nil
}

func checkInt(min, max int64) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("not an integer")
		}
		if n < min {
			return "", fmt.Errorf("must be at least %d", min)
		}
		if n > max {
			return "", fmt.Errorf("must be at most %d", max)
		}
		return strconv.FormatInt(n, 10), nil
	}
}

// checkBool accepts true and false in any case, as Kafka does.
func checkBool(v string) (string, error) {
	switch strings.ToLower(v) {
	case "true":
		return "true", nil
	case "false":
		return "false", nil
	}
	return "", fmt.Errorf("must be true or false")
}

func checkOneOf(allowed ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		if !contains(allowed, v) {
			return "", fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
		}
		return v, nil
	}
}

// checkListOf accepts a non-empty list of distinct allowed values.
func checkListOf(allowed ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		items := splitList(v)
		if len(items) == 0 {
			return "", fmt.Errorf("must list at least one of %s", strings.Join(allowed, ", "))
		}
		for i, item := range items {
			if !contains(allowed, item) {
				return "", fmt.Errorf("%q is not one of %s", item, strings.Join(allowed, ", "))
			}
			if contains(items[:i], item) {
				return "", fmt.Errorf("%q appears twice", item)
			}
		}
		return strings.Join(items, ","), nil
	}
}

func checkListeners(required bool) func(string) (string, error) {
	return func(v string) (string, error) {
		ls, err := parseListenerList(v)
		if err != nil {
			return "", err
		}
		if required && len(ls) == 0 {
			return "", fmt.Errorf("must name at least one listener, like PLAINTEXT://127.0.0.1:9092")
		}
		return formatListeners(ls), nil
	}
}

func checkProtocolMap(v string) (string, error) {
	_, order, err := parseProtocolMap(v)
	if err != nil {
		return "", err
	}
	return strings.Join(order, ","), nil
}

func checkListenerNames(v string) (string, error) {
	items := splitList(v)
	for i, item := range items {
		if !validListenerName(item) {
			return "", fmt.Errorf("%q is not a listener name", item)
		}
		items[i] = strings.ToUpper(item)
	}
	return strings.Join(items, ","), nil
}

func checkVoters(v string) (string, error) {
	vs, err := parseVoters(v)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(vs))
	for i, vo := range vs {
		parts[i] = vo.String()
	}
	return strings.Join(parts, ","), nil
}

func checkRoles(v string) (string, error) {
	items := splitList(v)
	for i, item := range items {
		if item != "broker" && item != "controller" {
			return "", fmt.Errorf("%q is not a role (broker, controller)", item)
		}
		if contains(items[:i], item) {
			return "", fmt.Errorf("%q appears twice", item)
		}
	}
	return strings.Join(items, ","), nil
}

// checkLogDirs keeps the one directory Troupe supports.
func checkLogDirs(v string) (string, error) {
	dirs := splitList(v)
	if len(dirs) > 1 {
		return "", fmt.Errorf("only one log dir is supported yet, got %d", len(dirs))
	}
	if len(dirs) == 0 {
		return "", nil
	}
	return dirs[0], nil
}

func checkHostPort(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, _, err := splitHostPort(v); err != nil {
		return "", err
	}
	return v, nil
}
