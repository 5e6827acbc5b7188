package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxFileBytes bounds the config file read into memory; real
// server.properties files are a few kilobytes.
const maxFileBytes = 1 << 20

// Config is a node's resolved configuration. Load fills every field; the
// zero Config is not usable.
type Config struct {
	// NodeID is node.id.
	NodeID int32
	// ProcessRoles, ControllerQuorumVoters and ControllerListenerNames are
	// parsed and kept for the cluster mode; a single node ignores them
	// except that listeners named in ControllerListenerNames are not the
	// broker listener.
	ProcessRoles            []string
	ControllerQuorumVoters  []Voter
	ControllerListenerNames []string

	// Listeners are the addresses to bind, in configured order.
	Listeners []Listener
	// AdvertisedListeners are what Metadata tells clients: advertised.listeners
	// if set, else the listeners that are not controller listeners. Load
	// guarantees none is a wildcard address and that the broker listener
	// has an entry.
	AdvertisedListeners []Listener
	// SecurityProtocolMap is listener.security.protocol.map, keyed by
	// upper-case listener name. Every listener is PLAINTEXT today.
	SecurityProtocolMap map[string]string
	// Rack is broker.rack ("" for none).
	Rack string

	// LogDir is the data directory: log.dirs if set, else log.dir.
	LogDir string

	NumPartitions            int32
	DefaultReplicationFactor int16
	AutoCreateTopics         bool // auto.create.topics.enable
	DeleteTopicEnable        bool
	MessageMaxBytes          int32
	SocketRequestMaxBytes    int32
	SegmentBytes             int64 // log.segment.bytes
	// RollMs is log.roll.ms, else log.roll.hours in ms.
	RollMs int64
	// RetentionMs is log.retention.ms, else log.retention.minutes, else
	// log.retention.hours, in ms; -1 means unlimited (any negative
	// setting is normalized to -1).
	RetentionMs              int64
	RetentionBytes           int64 // log.retention.bytes; -1 means unlimited
	RetentionCheckIntervalMs int64
	// ProducerIDExpirationMs is producer.id.expiration.ms.
	ProducerIDExpirationMs int64
	// FlushIntervalMessages is log.flush.interval.messages; 0 means unset
	// (the key's minimum is 1, so 0 is never a setting).
	FlushIntervalMessages int64
	// FlushIntervalMs is log.flush.interval.ms; -1 means unset, because 0
	// is a legal setting (flush at once).
	FlushIntervalMs int64
	// Unset flush settings mean every produce is fsynced before it is
	// acknowledged (group commit).

	CleanupPolicy         []string // log.cleanup.policy: delete and/or compact
	MinInsyncReplicas     int32
	UncleanLeaderElection bool   // unclean.leader.election.enable
	CompressionType       string // compression.type
	MessageTimestampType  string // log.message.timestamp.type

	// Cluster mode settings.
	BrokerHeartbeatIntervalMs    int32
	BrokerSessionTimeoutMs       int32
	QuorumElectionTimeoutMs      int32
	ReplicaLagTimeMaxMs          int64
	ReplicaFetchWaitMaxMs        int32
	ReplicaFetchMaxBytes         int32
	ReplicaFetchResponseMaxBytes int32
	GossipListener               string
	GossipAdvertisedListener     string

	// Groups are the group coordinator settings (group.*, offset*.*).
	Groups GroupConfig

	// MetricsListener is troupe.metrics.listener, host:port or "" for off.
	MetricsListener string
	// UIListener is troupe.ui.listener (reserved), host:port or "".
	UIListener string

	// set holds the explicitly set keys with normalized values; sources
	// where each was set ("path:line" or "--override").
	set     map[string]string
	sources map[string]string
}

// Entry is one supported key in Config.All.
type Entry struct {
	Name string
	// Value is the effective value, normalized. Keys that fall back to
	// another key (advertised.listeners, log.dirs, log.retention.ms,
	// log.roll.ms) report the resolved value; keys unset by default that
	// mean "off" report "".
	Value string
	// Set reports whether the key was set by the file or an override.
	Set bool
	// Source is where the key was set ("server.properties:12",
	// "--override"), or "" when defaulted.
	Source string
	Type   Type
	Doc    string
}

// Load reads the properties file at path ("" for none), then applies
// overrides ("key=value", in order; later settings win), and resolves the
// result. Every error names the offending key and where it was set.
func Load(path string, overrides []string) (*Config, error) {
	c := &Config{set: make(map[string]string), sources: make(map[string]string)}
	if path != "" {
		text, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		props, err := parseProperties(text)
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return nil, fmt.Errorf("config: %s:%d: %w", path, le.line, le.err)
			}
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		for _, p := range props {
			if err := c.apply(p.key, p.value, path+":"+strconv.Itoa(p.line)); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("config: --override %q: want key=value", o)
		}
		if err := c.apply(strings.TrimSpace(k), v, "--override"); err != nil {
			return nil, err
		}
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

// Default returns the configuration of no file and no overrides.
func Default() *Config {
	c, err := Load("", nil)
	if err != nil {
		// The built-in defaults are constants checked by the tests; this
		// is a programming error, not bad input.
		panic("config: built-in defaults are invalid: " + err.Error())
	}
	return c
}

func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxFileBytes)
	}
	return string(data), nil
}

// apply checks one setting and records it, replacing an earlier one.
func (c *Config) apply(key, value, where string) error {
	def, ok := lookupKey(key)
	if !ok {
		return unknownKeyError(key, where)
	}
	norm, err := def.check(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("config: invalid value %q for %s at %s: %w", value, key, where, err)
	}
	c.set[key] = norm
	c.sources[key] = where
	return nil
}

func unknownKeyError(key, where string) error {
	if why, ok := unsupportedKafkaKeys[key]; ok {
		return fmt.Errorf("config: key %q at %s is not supported by Troupe: %s", key, where, why)
	}
	if s := suggestKey(key); s != "" {
		return fmt.Errorf("config: unknown key %q at %s (did you mean %q?)", key, where, s)
	}
	return fmt.Errorf("config: unknown key %q at %s", key, where)
}

// value is a key's normalized value: as set, else its default.
func (c *Config) value(key string) string {
	if v, ok := c.set[key]; ok {
		return v
	}
	if def, ok := lookupKey(key); ok {
		return def.def
	}
	return ""
}

func (c *Config) isSet(key string) bool {
	_, ok := c.set[key]
	return ok
}

// where says where a key's value came from, for error messages.
func (c *Config) where(key string) string {
	if s, ok := c.sources[key]; ok {
		return key + " at " + s
	}
	return key + " (default)"
}

// resolve fills the typed fields from the settings and checks the rules
// that span several keys.
func (c *Config) resolve() error {
	r := resolver{c: c}
	c.NodeID = int32(r.int("node.id"))
	c.NumPartitions = int32(r.int("num.partitions"))
	c.DefaultReplicationFactor = int16(r.int("default.replication.factor"))
	c.AutoCreateTopics = c.value("auto.create.topics.enable") == "true"
	c.DeleteTopicEnable = c.value("delete.topic.enable") == "true"
	c.MessageMaxBytes = int32(r.int("message.max.bytes"))
	c.SocketRequestMaxBytes = int32(r.int("socket.request.max.bytes"))
	c.SegmentBytes = r.int("log.segment.bytes")
	c.RetentionBytes = r.int("log.retention.bytes")
	c.RetentionCheckIntervalMs = r.int("log.retention.check.interval.ms")
	c.ProducerIDExpirationMs = r.int("producer.id.expiration.ms")
	c.MinInsyncReplicas = int32(r.int("min.insync.replicas"))
	c.UncleanLeaderElection = c.value("unclean.leader.election.enable") == "true"
	c.CompressionType = c.value("compression.type")
	c.MessageTimestampType = c.value("log.message.timestamp.type")
	c.CleanupPolicy = splitList(c.value("log.cleanup.policy"))
	c.Rack = c.value("broker.rack")
	c.MetricsListener = c.value("troupe.metrics.listener")
	c.BrokerHeartbeatIntervalMs = int32(r.int("broker.heartbeat.interval.ms"))
	c.BrokerSessionTimeoutMs = int32(r.int("broker.session.timeout.ms"))
	c.QuorumElectionTimeoutMs = int32(r.int("controller.quorum.election.timeout.ms"))
	c.ReplicaLagTimeMaxMs = r.int("replica.lag.time.max.ms")
	c.ReplicaFetchWaitMaxMs = int32(r.int("replica.fetch.wait.max.ms"))
	c.ReplicaFetchMaxBytes = int32(r.int("replica.fetch.max.bytes"))
	c.ReplicaFetchResponseMaxBytes = int32(r.int("replica.fetch.response.max.bytes"))
	c.GossipListener = c.value("troupe.gossip.listener")
	c.GossipAdvertisedListener = c.value("troupe.gossip.advertised.listener")
	c.Groups = GroupConfig{
		MinSessionTimeoutMs:         int32(r.int("group.min.session.timeout.ms")),
		MaxSessionTimeoutMs:         int32(r.int("group.max.session.timeout.ms")),
		InitialRebalanceDelayMs:     int32(r.int("group.initial.rebalance.delay.ms")),
		MaxSize:                     int(r.int("group.max.size")),
		ConsumerSessionTimeoutMs:    int32(r.int("group.consumer.session.timeout.ms")),
		ConsumerHeartbeatIntervalMs: int32(r.int("group.consumer.heartbeat.interval.ms")),
		ConsumerAssignors:           splitList(c.value("group.consumer.assignors")),
		ConsumerMaxSize:             int(r.int("group.consumer.max.size")),
		OffsetsRetentionMs:          r.int("offsets.retention.minutes") * msPerMinute,
		OffsetsRetentionCheckMs:     r.int("offsets.retention.check.interval.ms"),
		OffsetMetadataMaxBytes:      int(r.int("offset.metadata.max.bytes")),
		OffsetsTopicPartitions:      int32(r.int("offsets.topic.num.partitions")),
		OffsetsTopicReplication:     int16(r.int("offsets.topic.replication.factor")),
		OffsetsTopicSegmentBytes:    r.int("offsets.topic.segment.bytes"),
	}
	c.UIListener = c.value("troupe.ui.listener")
	c.ProcessRoles = splitList(c.value("process.roles"))
	c.ControllerListenerNames = splitList(c.value("controller.listener.names"))

	// Kafka's precedence: the finer unit wins when several are set.
	switch {
	case c.isSet("log.roll.ms"):
		c.RollMs = r.int("log.roll.ms")
	default:
		c.RollMs = r.int("log.roll.hours") * msPerHour
	}
	switch {
	case c.isSet("log.retention.ms"):
		c.RetentionMs = r.int("log.retention.ms")
	case c.isSet("log.retention.minutes"):
		c.RetentionMs = r.int("log.retention.minutes") * msPerMinute
	default:
		c.RetentionMs = r.int("log.retention.hours") * msPerHour
	}
	if c.RetentionMs < 0 {
		c.RetentionMs = -1
	}

	c.FlushIntervalMessages = 0
	if c.isSet("log.flush.interval.messages") {
		c.FlushIntervalMessages = r.int("log.flush.interval.messages")
	}
	c.FlushIntervalMs = -1
	if c.isSet("log.flush.interval.ms") {
		c.FlushIntervalMs = r.int("log.flush.interval.ms")
	}

	c.LogDir = c.value("log.dir")
	if d := c.value("log.dirs"); d != "" {
		c.LogDir = d
	}
	if r.err != nil {
		return r.err
	}

	voters, err := parseVoters(c.value("controller.quorum.voters"))
	if err != nil {
		return fmt.Errorf("config: %s: %w", c.where("controller.quorum.voters"), err)
	}
	c.ControllerQuorumVoters = voters
	return c.resolveListeners()
}

// resolveListeners checks listeners against the protocol map and derives
// the advertised listeners.
func (c *Config) resolveListeners() error {
	listeners, err := parseListenerList(c.value("listeners"))
	if err != nil {
		return fmt.Errorf("config: %s: %w", c.where("listeners"), err)
	}
	protocols, _, err := parseProtocolMap(c.value("listener.security.protocol.map"))
	if err != nil {
		return fmt.Errorf("config: %s: %w", c.where("listener.security.protocol.map"), err)
	}
	for i, l := range listeners {
		proto, ok := protocols[l.Name]
		if !ok {
			// Kafka lets a listener named after a protocol go unmapped.
			if !contains(securityProtocols, l.Name) {
				return fmt.Errorf("config: listener %s (%s) has no entry in %s; add %s:PLAINTEXT",
					l, c.where("listeners"), c.where("listener.security.protocol.map"), l.Name)
			}
			proto = l.Name
		}
		if proto != "PLAINTEXT" {
			return fmt.Errorf("config: listener %s (%s) uses security protocol %s: not supported yet, Troupe serves PLAINTEXT only",
				l, c.where("listeners"), proto)
		}
		for _, prev := range listeners[:i] {
			if l.Port != 0 && prev.Port == l.Port && (prev.Host == l.Host || prev.Wildcard() || l.Wildcard()) {
				return fmt.Errorf("config: listeners %s and %s (%s) bind the same port", prev, l, c.where("listeners"))
			}
		}
	}
	c.Listeners = listeners
	c.SecurityProtocolMap = protocols

	broker, ok := c.brokerListener()
	if !ok {
		return fmt.Errorf("config: every listener in %s is a controller listener (%s); add one for clients, like PLAINTEXT://127.0.0.1:9092",
			c.where("listeners"), c.where("controller.listener.names"))
	}

	advertised, err := parseListenerList(c.value("advertised.listeners"))
	if err != nil {
		return fmt.Errorf("config: %s: %w", c.where("advertised.listeners"), err)
	}
	if len(advertised) == 0 {
		// Kafka's rule: advertise the listeners themselves, which only
		// works when they name a reachable address.
		for _, l := range listeners {
			if contains(c.ControllerListenerNames, l.Name) {
				continue
			}
			if l.Wildcard() {
				return fmt.Errorf("config: listener %s (%s) binds all interfaces, which clients cannot connect to: set advertised.listeners=%s://<host clients can reach>:%d",
					l, c.where("listeners"), l.Name, l.Port)
			}
			advertised = append(advertised, l)
		}
		c.AdvertisedListeners = advertised
		return nil
	}
	for _, a := range advertised {
		if !c.hasListener(a.Name) {
			return fmt.Errorf("config: advertised listener %s (%s) has no listener of that name in %s",
				a, c.where("advertised.listeners"), c.where("listeners"))
		}
		if a.Wildcard() {
			return fmt.Errorf("config: advertised listener %s (%s) is not an address clients can connect to; name the host",
				a, c.where("advertised.listeners"))
		}
		if a.Port == 0 {
			return fmt.Errorf("config: advertised listener %s (%s) needs a port", a, c.where("advertised.listeners"))
		}
	}
	c.AdvertisedListeners = advertised
	if _, ok := c.advertisedBrokerListener(); !ok {
		return fmt.Errorf("config: %s has no entry for the broker listener %s; add %s://<host>:%d",
			c.where("advertised.listeners"), broker.Name, broker.Name, broker.Port)
	}
	return nil
}

func (c *Config) hasListener(name string) bool {
	for _, l := range c.Listeners {
		if l.Name == name {
			return true
		}
	}
	return false
}

// BrokerListener is the listener that serves clients: the first one not
// named in controller.listener.names. Load guarantees there is one; on a
// Config not made by Load it may be the zero Listener.
func (c *Config) BrokerListener() Listener {
	l, _ := c.brokerListener()
	return l
}

func (c *Config) brokerListener() (Listener, bool) {
	for _, l := range c.Listeners {
		if !contains(c.ControllerListenerNames, l.Name) {
			return l, true
		}
	}
	return Listener{}, false
}

// AdvertisedBrokerListener is how clients reach the broker listener. A
// port of 0 (only possible when the listener binds port 0 and
// advertised.listeners is unset) stands for the port actually bound.
// Load guarantees there is one; on a Config not made by Load it may be
// the zero Listener.
func (c *Config) AdvertisedBrokerListener() Listener {
	a, _ := c.advertisedBrokerListener()
	return a
}

func (c *Config) advertisedBrokerListener() (Listener, bool) {
	b, ok := c.brokerListener()
	if !ok {
		return Listener{}, false
	}
	for _, a := range c.AdvertisedListeners {
		if a.Name == b.Name {
			return a, true
		}
	}
	return Listener{}, false
}

// Set returns the explicitly set keys (by the file or an override) with
// their normalized values. The map is a copy.
func (c *Config) Set() map[string]string {
	out := make(map[string]string, len(c.set))
	for k, v := range c.set {
		out[k] = v
	}
	return out
}

// All lists every supported key, sorted by name, with its effective value
// and whether it was set. It backs DescribeConfigs of the BROKER resource
// and `troupe broker --print-config`.
func (c *Config) All() []Entry {
	out := make([]Entry, 0, len(keyDefs))
	for _, d := range keyDefs {
		e := Entry{Name: d.name, Value: c.value(d.name), Type: d.typ, Doc: d.doc}
		e.Set = c.isSet(d.name)
		e.Source = c.sources[d.name]
		switch d.name {
		case "advertised.listeners":
			e.Value = formatListeners(c.AdvertisedListeners)
		case "log.dirs":
			e.Value = c.LogDir
		case "log.retention.ms":
			e.Value = strconv.FormatInt(c.RetentionMs, 10)
		case "log.roll.ms":
			e.Value = strconv.FormatInt(c.RollMs, 10)
		}
		out = append(out, e)
	}
	return out
}

// topicDefaultKeys are the broker keys that topic configs fall back to
// (see metadata.TopicConfigDefs).
var topicDefaultKeys = []string{
	"compression.type",
	"log.cleanup.policy",
	"log.flush.interval.messages",
	"log.flush.interval.ms",
	"log.message.timestamp.type",
	"log.retention.bytes",
	"log.retention.ms",
	"log.roll.ms",
	"log.segment.bytes",
	"message.max.bytes",
	"min.insync.replicas",
	"unclean.leader.election.enable",
}

// TopicDefaults maps the broker keys topic configs fall back to onto their
// effective values, for the keys explicitly set only: a topic config whose
// broker key is absent uses its own built-in default. log.retention.ms
// counts as set when any of log.retention.{ms,minutes,hours} is, and
// log.roll.ms when log.roll.{ms,hours} is; both are given in ms.
func (c *Config) TopicDefaults() map[string]string {
	out := make(map[string]string)
	for _, k := range topicDefaultKeys {
		switch k {
		case "log.retention.ms":
			if c.isSet("log.retention.ms") || c.isSet("log.retention.minutes") || c.isSet("log.retention.hours") {
				out[k] = strconv.FormatInt(c.RetentionMs, 10)
			}
		case "log.roll.ms":
			if c.isSet("log.roll.ms") || c.isSet("log.roll.hours") {
				out[k] = strconv.FormatInt(c.RollMs, 10)
			}
		default:
			if v, ok := c.set[k]; ok {
				out[k] = v
			}
		}
	}
	return out
}

// WriteProperties writes every key with its effective value in the
// properties format: explicitly set keys as settings, each after a comment
// saying where it was set, and defaulted keys commented out. Loading the
// output therefore gives the same effective config.
func (c *Config) WriteProperties(w io.Writer) error {
	var b strings.Builder
	for _, e := range c.All() {
		if e.Set {
			fmt.Fprintf(&b, "# set at %s\n", e.Source)
		} else {
			b.WriteByte('#')
		}
		b.WriteString(escapeProperty(e.Name, true))
		b.WriteByte('=')
		b.WriteString(escapeProperty(e.Value, false))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// resolver reads already checked values as integers, keeping the first
// error (there should be none: apply checked every set value and the
// tests check the defaults).
type resolver struct {
	c   *Config
	err error
}

func (r *resolver) int(key string) int64 {
	v := r.c.value(key)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("config: %s: %q is not an integer", r.c.where(key), v)
	}
	return n
}

// GroupConfig are the group coordinator settings, in Kafka's units.
type GroupConfig struct {
	MinSessionTimeoutMs, MaxSessionTimeoutMs int32
	InitialRebalanceDelayMs                  int32
	MaxSize                                  int
	ConsumerSessionTimeoutMs                 int32
	ConsumerHeartbeatIntervalMs              int32
	ConsumerAssignors                        []string
	ConsumerMaxSize                          int
	OffsetsRetentionMs                       int64
	OffsetsRetentionCheckMs                  int64
	OffsetMetadataMaxBytes                   int
	OffsetsTopicPartitions                   int32
	OffsetsTopicReplication                  int16
	OffsetsTopicSegmentBytes                 int64
}
