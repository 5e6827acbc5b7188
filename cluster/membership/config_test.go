package membership

import (
	"strings"
	"testing"
	"time"
)

func TestStartRejectsBadConfig(t *testing.T) {
	good := func() Config {
		return Config{NodeID: 1, BindAddr: "127.0.0.1:0", Meta: NodeMeta{Incarnation: 1}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		errHas string
	}{
		{"negative node id", func(c *Config) { c.NodeID = -1 }, "node id -1"},
		{"meta of another node", func(c *Config) { c.Meta.NodeID = 2 }, "meta node id 2"},
		{"no bind address", func(c *Config) { c.BindAddr = "" }, "bind address"},
		{"bind host name", func(c *Config) { c.BindAddr = "localhost:0" }, "must be an IP"},
		{"bind port out of range", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "bad port"},
		{"bind :: without advertise", func(c *Config) { c.BindAddr = "[::]:7946" }, "needs an advertise address"},
		{"advertise host name", func(c *Config) { c.AdvertiseAddr = "node1:7946"; c.BindAddr = "127.0.0.1:7946" }, "must be an IP"},
		{"advertise fixed port, bind port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:7946" }, "fixed bind port"},
		{"bad seed", func(c *Config) { c.Seeds = []string{"127.0.0.1"} }, "seed"},
		{"probe timeout not below interval", func(c *Config) { c.ProbeTimeout = time.Second }, "probe timeout"},
		{"negative interval", func(c *Config) { c.GossipInterval = -time.Second }, "negative"},
		{"negative suspicion", func(c *Config) { c.SuspicionMult = -1 }, "suspicion"},
		{"bad kafka address", func(c *Config) { c.Meta.KafkaAddr = "kafka" }, "kafka address"},
		{"empty role", func(c *Config) { c.Meta.Roles = []string{""} }, "empty role"},
		{"too many roles", func(c *Config) { c.Meta.Roles = make([]string, maxRoles+1) }, "roles"},
		{"meta over 512 bytes", func(c *Config) { c.Meta.Roles = []string{strings.Repeat("r", 600)} }, "limit 512"},
		{"long cluster id", func(c *Config) { c.ClusterID = strings.Repeat("c", 201) }, "cluster id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			m, err := Start(cfg)
			if err == nil {
				_ = m.Close()
				t.Fatal("Start accepted the config")
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not mention %q", err, tc.errHas)
			}
		})
	}
}

func TestStartFillsMeta(t *testing.T) {
	m := startNode(t, Config{NodeID: 7, BindAddr: "127.0.0.1:0", Logger: testLogger(t)})
	self, ok := memberOf(m, 7)
	if !ok || self.State != StateAlive || self.Addr != m.Addr() {
		t.Fatalf("self: %+v, %v", self, ok)
	}
	if self.Meta.NodeID != 7 || self.Meta.Incarnation == 0 {
		t.Errorf("meta not filled in: %+v", self.Meta)
	}
	if !strings.HasPrefix(m.Addr(), "127.0.0.1:") || strings.HasSuffix(m.Addr(), ":0") {
		t.Errorf("Addr %q: want the bound loopback port", m.Addr())
	}
}

func TestFailureDetectionTime(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		n    int
		want time.Duration
	}{
		// (n-1)·200 + 200 + 4·200 + 2·100 ms
		{Config{}, 3, 1600 * time.Millisecond},
		{Config{}, 5, 2000 * time.Millisecond},
		{Config{}, 1, 1400 * time.Millisecond}, // treated as 2
		// Above 10 nodes suspicion scales by log10(n): 4·200·log10(100) = 1.6 s.
		{Config{}, 100, 99*200*time.Millisecond + 200*time.Millisecond + 1600*time.Millisecond + 200*time.Millisecond},
		{Config{ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, SuspicionMult: 2, GossipInterval: 50 * time.Millisecond}, 3,
			2*time.Second + time.Second + 2*time.Second + 100*time.Millisecond},
	} {
		if got := tc.cfg.FailureDetectionTime(tc.n); got != tc.want {
			t.Errorf("%+v n=%d: got %v, want %v", tc.cfg, tc.n, got, tc.want)
		}
	}
}
