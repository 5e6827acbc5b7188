package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults, tuned for a LAN or loopback where a round trip is well under a
// millisecond. With them a crashed node in a cluster of up to
// DefaultSuspicionMult nodes is reported Failed in about 1–1.6 s (see
// Config.FailureDetectionTime).
const (
	// DefaultProbeInterval is how often each node probes one peer. It is
	// the unit of every other failure-detection delay.
	DefaultProbeInterval = 200 * time.Millisecond
	// DefaultProbeTimeout is how long a direct probe waits for its ack
	// before asking other nodes to probe indirectly: half the probe
	// interval, unless set. 100 ms is ~100× a LAN round trip, so a busy
	// but healthy node is not suspected.
	DefaultProbeTimeout = 100 * time.Millisecond
	// DefaultSuspicionMult is how many probe intervals a node stays suspect
	// (scaled by log10 of the cluster size above 10 nodes) before it is
	// declared dead, giving it time to refute.
	DefaultSuspicionMult = 4
	// DefaultGossipInterval is how often queued membership changes are
	// pushed to random peers (besides riding on probes).
	DefaultGossipInterval = 100 * time.Millisecond
	// DefaultLeaveTimeout bounds the graceful part of Close.
	DefaultLeaveTimeout = time.Second
)

// Tuning that is not worth a knob. Each value says why it differs from
// memberlist.DefaultLANConfig, if it does.
const (
	// gossipNodes is how many peers each gossip round reaches.
	gossipNodes = 3
	// retransmitMult scales how often a change is re-gossiped.
	retransmitMult = 4
	// suspicionMaxTimeoutMult caps the suspicion timeout when the expected
	// confirmations from other nodes do not come (clusters larger than
	// SuspicionMult nodes). memberlist's 6 would let a lone observer wait
	// 4.8 s with our defaults; 4 keeps it at 3.2 s.
	suspicionMaxTimeoutMult = 4
	// pushPullInterval is the period of full state syncs. They are cheap in
	// clusters of tens of nodes, and they repair what lost gossip left
	// behind (memberlist's LAN default is 30 s).
	pushPullInterval = 5 * time.Second
	// tcpTimeout bounds a stream connection (join, state sync, TCP probe
	// fallback). It also bounds how long Close waits for an in-flight join.
	tcpTimeout = time.Second
	// gossipToTheDeadTime is how long a dead node keeps receiving gossip
	// (its chance to refute) and stays in memberlist's tables.
	gossipToTheDeadTime = 10 * time.Second
	// deadNodeReclaimTime lets a node that died (or left) come back on a
	// different address almost at once. memberlist's default (never) exists
	// to stop two live processes fighting over one name; Troupe fences by
	// incarnation at the controller instead, and a restarted broker often
	// gets a new port in tests.
	deadNodeReclaimTime = time.Millisecond
)

// maxRoles bounds NodeMeta.Roles; with the 512-byte meta limit it is only
// a sanity check on configuration.
const maxRoles = 16

// Config configures one node's membership. Zero durations and multipliers
// take the defaults above.
type Config struct {
	// NodeID is this node's Kafka node id (broker.id / node.id). It is the
	// node's identity in the cluster: its memberlist name is
	// "troupe-<NodeID>". Must be >= 0.
	NodeID int32
	// BindAddr is the IP:port gossip listens on, UDP and TCP. The host must
	// be an IP literal (memberlist would silently bind every interface for
	// an unparsable host). Port 0 picks a free port; see Membership.Addr.
	BindAddr string
	// AdvertiseAddr, if set, is the IP:port other nodes use to reach this
	// one (NAT, containers). Port 0 means the bound port (required when the
	// bind port is 0). Empty means the bind address, or a private IP of
	// this host when binding 0.0.0.0.
	AdvertiseAddr string
	// ClusterID, if set, labels every gossip packet so nodes of different
	// clusters that reach each other (a wrong seed) are refused instead of
	// merged. Up to 200 bytes.
	ClusterID string
	// Meta is what other nodes learn about this one. Meta.NodeID must equal
	// NodeID or be 0 (then it is set to NodeID); a zero Meta.Incarnation is
	// replaced by the start time in nanoseconds. Callers that fence by
	// incarnation should pass the incarnation they register with the
	// controller.
	Meta NodeMeta
	// Seeds are host:port gossip addresses of other nodes. Start does not
	// need any of them to be up: a background loop keeps joining them (see
	// the package doc). Listing every other node is best.
	Seeds []string

	// ProbeInterval is the period of probing one peer (default 200 ms).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for an ack (default
	// half of ProbeInterval: 100 ms). Must be less than ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult: a suspect is declared dead after SuspicionMult ×
	// max(1, log10(cluster size)) × ProbeInterval (default 4).
	SuspicionMult int
	// GossipInterval is the period of gossip rounds (default 100 ms).
	GossipInterval time.Duration
	// LeaveTimeout bounds how long Close waits for the cluster to hear that
	// this node is leaving (default 1 s).
	LeaveTimeout time.Duration

	// Logger receives this package's logs and memberlist's (at debug
	// level). Nil means slog.Default().
	Logger *slog.Logger
}

// NodeMeta is what a node tells the others about itself. It travels in
// memberlist's node metadata, which is limited to 512 bytes encoded.
type NodeMeta struct {
	NodeID int32
	// Incarnation changes every time the node's process starts, so peers
	// and the controller can tell a restarted node from the one they knew.
	Incarnation int64
	// KafkaAddr is the host:port of the node's Kafka listener, if any.
	KafkaAddr string
	// ControllerAddr is the host:port of the node's controller (metadata
	// quorum) listener, if any.
	ControllerAddr string
	// Roles are the node's process.roles ("broker", "controller").
	Roles []string
}

// Equal reports whether m and o describe the same thing.
func (m NodeMeta) Equal(o NodeMeta) bool {
	if m.NodeID != o.NodeID || m.Incarnation != o.Incarnation ||
		m.KafkaAddr != o.KafkaAddr || m.ControllerAddr != o.ControllerAddr ||
		len(m.Roles) != len(o.Roles) {
		return false
	}
	for i := range m.Roles {
		if m.Roles[i] != o.Roles[i] {
			return false
		}
	}
	return true
}

// withDefaults returns c with zero knobs replaced by the defaults. It does
// not validate.
func (c Config) withDefaults() Config {
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		// Half the interval leaves the other half for indirect probes;
		// with the default interval it is DefaultProbeTimeout.
		c.ProbeTimeout = c.ProbeInterval / 2
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = DefaultLeaveTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Meta.NodeID == 0 {
		c.Meta.NodeID = c.NodeID
	}
	return c
}

// FailureDetectionTime estimates, for a healthy network, how long after a
// node crashes the surviving nodes of a cluster of clusterSize nodes
// (counting the crashed one) report it Failed:
//
//	(clusterSize-1) × ProbeInterval   until a given survivor's round-robin
//	                                  probing reaches it (with several
//	                                  survivors it is usually much sooner)
//	+ ProbeInterval                   the failed direct and indirect probes
//	+ SuspicionMult × max(1, log10(clusterSize)) × ProbeInterval
//	                                  the suspicion timeout
//	+ 2 × GossipInterval              spreading the verdict
//
// With the defaults that is 1.6 s for 3 nodes and 2.0 s for 5. It is an
// estimate, not a guarantee: memberlist slows its probing down (up to 8×)
// on a node that sees itself missing deadlines, and in clusters larger than
// SuspicionMult nodes suspicion waits up to 4× longer when other nodes do
// not confirm it.
func (c Config) FailureDetectionTime(clusterSize int) time.Duration {
	c = c.withDefaults()
	if clusterSize < 2 {
		clusterSize = 2
	}
	scale := math.Max(1, math.Log10(float64(clusterSize)))
	suspicion := time.Duration(float64(c.SuspicionMult) * scale * float64(c.ProbeInterval))
	return time.Duration(clusterSize-1)*c.ProbeInterval + c.ProbeInterval + suspicion + 2*c.GossipInterval
}

// validate checks c after withDefaults.
func (c Config) validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("membership: node id %d: must be >= 0", c.NodeID)
	}
	if c.Meta.NodeID != c.NodeID {
		return fmt.Errorf("membership: meta node id %d differs from node id %d", c.Meta.NodeID, c.NodeID)
	}
	if _, _, err := parseBindAddr(c.BindAddr); err != nil {
		return err
	}
	if err := c.validateAdvertise(); err != nil {
		return err
	}
	if len(c.ClusterID) > 200 {
		return fmt.Errorf("membership: cluster id is %d bytes, limit 200", len(c.ClusterID))
	}
	for _, s := range c.Seeds {
		if _, _, err := splitHostPort("seed", s); err != nil {
			return err
		}
	}
	if c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.GossipInterval < 0 || c.LeaveTimeout < 0 {
		return errors.New("membership: negative interval or timeout")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("membership: probe timeout %v must be less than probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("membership: suspicion multiplier %d: must be >= 1", c.SuspicionMult)
	}
	return c.Meta.validate()
}

// validateAdvertise checks AdvertiseAddr against what memberlist accepts.
func (c Config) validateAdvertise() error {
	bindHost, bindPort, _ := parseBindAddr(c.BindAddr)
	if c.AdvertiseAddr == "" {
		// memberlist picks a private IP only for the literal "0.0.0.0";
		// for "::" it would advertise "::", which no peer can reach.
		if net.ParseIP(bindHost).IsUnspecified() && bindHost != "0.0.0.0" {
			return fmt.Errorf("membership: bind address %q: needs an advertise address", c.BindAddr)
		}
		return nil
	}
	host, port, err := splitHostPort("advertise address", c.AdvertiseAddr)
	if err != nil {
		return err
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("membership: advertise address %q: host must be an IP address", c.AdvertiseAddr)
	}
	// memberlist advertises the chosen port whenever it chooses one.
	if bindPort == 0 && port != 0 {
		return fmt.Errorf("membership: advertise address %q: a fixed port needs a fixed bind port", c.AdvertiseAddr)
	}
	return nil
}

func (m NodeMeta) validate() error {
	if m.KafkaAddr != "" {
		if _, _, err := splitHostPort("kafka address", m.KafkaAddr); err != nil {
			return err
		}
	}
	if m.ControllerAddr != "" {
		if _, _, err := splitHostPort("controller address", m.ControllerAddr); err != nil {
			return err
		}
	}
	if len(m.Roles) > maxRoles {
		return fmt.Errorf("membership: %d roles, limit %d", len(m.Roles), maxRoles)
	}
	for _, r := range m.Roles {
		if r == "" {
			return errors.New("membership: empty role")
		}
	}
	return nil
}

// splitHostPort parses host:port with a numeric port; what names the
// address in errors.
func splitHostPort(what, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("membership: %s %q: %w", what, addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("membership: %s %q: bad port: %w", what, addr, err)
	}
	return host, int(port), nil
}

// parseBindAddr splits the bind address and insists on an IP literal.
func parseBindAddr(addr string) (string, int, error) {
	host, port, err := splitHostPort("bind address", addr)
	if err != nil {
		return "", 0, err
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("membership: bind address %q: host must be an IP address", addr)
	}
	return host, port, nil
}

// memberlistConfig translates c (defaults applied, validated) into
// memberlist's configuration; d receives every callback.
func (c Config) memberlistConfig(d *delegate) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = nodeName(c.NodeID)
	host, port, err := parseBindAddr(c.BindAddr)
	if err != nil {
		return nil, err
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if c.AdvertiseAddr != "" {
		ahost, aport, err := splitHostPort("advertise address", c.AdvertiseAddr)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = ahost
		if aport != 0 {
			mc.AdvertisePort = aport
		}
	}
	if c.ClusterID != "" {
		mc.Label = "troupe/" + c.ClusterID
	}

	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = suspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = gossipNodes
	mc.RetransmitMult = retransmitMult
	mc.PushPullInterval = pushPullInterval
	mc.TCPTimeout = tcpTimeout
	mc.GossipToTheDeadTime = gossipToTheDeadTime
	mc.DeadNodeReclaimTime = deadNodeReclaimTime

	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Conflict = d
	mc.Merge = d
	mc.Logger = newMemberlistLogger(c.Logger)
	mc.LogOutput = nil
	return mc, nil
}
