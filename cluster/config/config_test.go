package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// writeFile writes a config file named server.properties in a temp dir.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, text string, overrides ...string) *Config {
	t.Helper()
	path := ""
	if text != "" {
		path = writeFile(t, text)
	}
	c, err := Load(path, overrides)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := Default()
	plain := Listener{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NodeID", c.NodeID, int32(1)},
		{"Listeners", c.Listeners, []Listener{plain}},
		{"AdvertisedListeners", c.AdvertisedListeners, []Listener{plain}},
		{"SecurityProtocolMap", c.SecurityProtocolMap, map[string]string{"CONTROLLER": "PLAINTEXT", "PLAINTEXT": "PLAINTEXT"}},
		{"LogDir", c.LogDir, "./data"},
		{"NumPartitions", c.NumPartitions, int32(1)},
		{"DefaultReplicationFactor", c.DefaultReplicationFactor, int16(1)},
		{"AutoCreateTopics", c.AutoCreateTopics, true},
		{"DeleteTopicEnable", c.DeleteTopicEnable, true},
		{"MessageMaxBytes", c.MessageMaxBytes, int32(1048588)},
		{"SocketRequestMaxBytes", c.SocketRequestMaxBytes, int32(104857600)},
		{"SegmentBytes", c.SegmentBytes, int64(1073741824)},
		{"RollMs", c.RollMs, int64(168 * 3600 * 1000)},
		{"RetentionMs", c.RetentionMs, int64(168 * 3600 * 1000)},
		{"RetentionBytes", c.RetentionBytes, int64(-1)},
		{"RetentionCheckIntervalMs", c.RetentionCheckIntervalMs, int64(300000)},
		{"FlushIntervalMessages", c.FlushIntervalMessages, int64(0)},
		{"FlushIntervalMs", c.FlushIntervalMs, int64(-1)},
		{"CleanupPolicy", c.CleanupPolicy, []string{"delete"}},
		{"MinInsyncReplicas", c.MinInsyncReplicas, int32(1)},
		{"UncleanLeaderElection", c.UncleanLeaderElection, false},
		{"CompressionType", c.CompressionType, "producer"},
		{"MessageTimestampType", c.MessageTimestampType, "CreateTime"},
		{"Rack", c.Rack, ""},
		{"MetricsListener", c.MetricsListener, ""},
		{"UIListener", c.UIListener, ""},
		{"ProcessRoles", c.ProcessRoles, []string(nil)},
		{"ControllerQuorumVoters", c.ControllerQuorumVoters, []Voter(nil)},
		{"Set", c.Set(), map[string]string{}},
		{"TopicDefaults", c.TopicDefaults(), map[string]string{}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	b, a := c.BrokerListener(), c.AdvertisedBrokerListener()
	if b != plain || a != plain {
		t.Errorf("broker listener = %v, advertised = %v; want %v", b, a, plain)
	}
	if got := b.Addr(); got != "127.0.0.1:9092" {
		t.Errorf("Addr() = %q", got)
	}
}

// TestKeyTable checks the key table's own invariants: sorted, unique, and
// every default passes its own check unchanged (already normalized).
func TestKeyTable(t *testing.T) {
	if !sort.SliceIsSorted(keyDefs, func(i, j int) bool { return keyDefs[i].name < keyDefs[j].name }) {
		t.Error("keyDefs are not sorted by name")
	}
	for i, d := range keyDefs {
		if i > 0 && keyDefs[i-1].name == d.name {
			t.Errorf("key %s defined twice", d.name)
		}
		if d.doc == "" {
			t.Errorf("key %s has no doc", d.name)
		}
		if d.def == "" {
			continue
		}
		norm, err := d.check(d.def)
		if err != nil || norm != d.def {
			t.Errorf("default of %s: check(%q) = %q, %v", d.name, d.def, norm, err)
		}
	}
	for k := range unsupportedKafkaKeys {
		if _, ok := lookupKey(k); ok {
			t.Errorf("%s is both supported and listed as unsupported", k)
		}
	}
}

func TestLoadFile(t *testing.T) {
	c := mustLoad(t, `# A node.
node.id = 7
listeners: PLAINTEXT://localhost:19092,\
           CONTROLLER://localhost:19093
controller.listener.names=controller
process.roles=broker,controller
controller.quorum.voters=7@localhost:19093
log.dirs=/var/lib/troupe
num.partitions 3
auto.create.topics.enable=FALSE
log.cleanup.policy = compact , delete
broker.rack=r\u00e9ck  
troupe.metrics.listener=127.0.0.1:9100
`)
	if c.NodeID != 7 || c.NumPartitions != 3 || c.AutoCreateTopics || c.LogDir != "/var/lib/troupe" || c.Rack != "réck" {
		t.Errorf("got NodeID=%d NumPartitions=%d AutoCreateTopics=%v LogDir=%q Rack=%q",
			c.NodeID, c.NumPartitions, c.AutoCreateTopics, c.LogDir, c.Rack)
	}
	wantListeners := []Listener{{"PLAINTEXT", "localhost", 19092}, {"CONTROLLER", "localhost", 19093}}
	if !reflect.DeepEqual(c.Listeners, wantListeners) {
		t.Errorf("Listeners = %v", c.Listeners)
	}
	// Controller listeners are not advertised to clients by default.
	if !reflect.DeepEqual(c.AdvertisedListeners, wantListeners[:1]) {
		t.Errorf("AdvertisedListeners = %v", c.AdvertisedListeners)
	}
	if !reflect.DeepEqual(c.ControllerListenerNames, []string{"CONTROLLER"}) ||
		!reflect.DeepEqual(c.ProcessRoles, []string{"broker", "controller"}) ||
		!reflect.DeepEqual(c.ControllerQuorumVoters, []Voter{{7, "localhost", 19093}}) {
		t.Errorf("cluster keys: %v %v %v", c.ControllerListenerNames, c.ProcessRoles, c.ControllerQuorumVoters)
	}
	if !reflect.DeepEqual(c.CleanupPolicy, []string{"compact", "delete"}) || c.MetricsListener != "127.0.0.1:9100" {
		t.Errorf("CleanupPolicy = %v, MetricsListener = %q", c.CleanupPolicy, c.MetricsListener)
	}
	wantSet := map[string]string{
		"node.id":                   "7",
		"listeners":                 "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093",
		"controller.listener.names": "CONTROLLER",
		"process.roles":             "broker,controller",
		"controller.quorum.voters":  "7@localhost:19093",
		"log.dirs":                  "/var/lib/troupe",
		"num.partitions":            "3",
		"auto.create.topics.enable": "false",
		"log.cleanup.policy":        "compact,delete",
		"broker.rack":               "réck",
		"troupe.metrics.listener":   "127.0.0.1:9100",
	}
	if got := c.Set(); !reflect.DeepEqual(got, wantSet) {
		t.Errorf("Set() = %v\nwant %v", got, wantSet)
	}
	if got := c.TopicDefaults(); !reflect.DeepEqual(got, map[string]string{"log.cleanup.policy": "compact,delete"}) {
		t.Errorf("TopicDefaults() = %v", got)
	}
}

func TestOverrides(t *testing.T) {
	path := writeFile(t, "num.partitions=3\nlog.dir=/a\n")
	c, err := Load(path, []string{"num.partitions=5", " log.dir = /b ", "num.partitions=6", "broker.rack=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.NumPartitions != 6 || c.LogDir != "/b" || c.Rack != "a=b" {
		t.Errorf("NumPartitions=%d LogDir=%q Rack=%q; overrides must win, in order", c.NumPartitions, c.LogDir, c.Rack)
	}
	for _, e := range c.All() {
		if e.Name == "num.partitions" && (e.Source != "--override" || !e.Set || e.Value != "6") {
			t.Errorf("All() entry %+v", e)
		}
	}
	if _, err := Load("", []string{"num.partitions"}); err == nil || !strings.Contains(err.Error(), `--override "num.partitions": want key=value`) {
		t.Errorf("override without '=': error %v", err)
	}
}

func TestRetentionAndRollPrecedence(t *testing.T) {
	const h, m = 3600 * 1000, 60 * 1000
	tests := []struct {
		settings      string
		wantRetention int64
		wantRoll      int64
		wantDefaults  map[string]string
	}{
		{"", 168 * h, 168 * h, map[string]string{}},
		{"log.retention.hours=2", 2 * h, 168 * h, map[string]string{"log.retention.ms": "7200000"}},
		{"log.retention.hours=2\nlog.retention.minutes=3", 3 * m, 168 * h, map[string]string{"log.retention.ms": "180000"}},
		{"log.retention.ms=1234\nlog.retention.hours=2\nlog.retention.minutes=3", 1234, 168 * h, map[string]string{"log.retention.ms": "1234"}},
		{"log.retention.minutes=3\nlog.retention.ms=1234", 1234, 168 * h, map[string]string{"log.retention.ms": "1234"}},
		{"log.retention.ms=-1\nlog.retention.hours=2", -1, 168 * h, map[string]string{"log.retention.ms": "-1"}},
		{"log.retention.hours=-1", -1, 168 * h, map[string]string{"log.retention.ms": "-1"}},
		{"log.retention.minutes=-1", -1, 168 * h, map[string]string{"log.retention.ms": "-1"}},
		{"log.roll.hours=1", 168 * h, h, map[string]string{"log.roll.ms": "3600000"}},
		{"log.roll.hours=1\nlog.roll.ms=500", 168 * h, 500, map[string]string{"log.roll.ms": "500"}},
	}
	for _, tt := range tests {
		c := mustLoad(t, tt.settings)
		if c.RetentionMs != tt.wantRetention || c.RollMs != tt.wantRoll {
			t.Errorf("%q: RetentionMs=%d RollMs=%d, want %d %d", tt.settings, c.RetentionMs, c.RollMs, tt.wantRetention, tt.wantRoll)
		}
		if got := c.TopicDefaults(); !reflect.DeepEqual(got, tt.wantDefaults) {
			t.Errorf("%q: TopicDefaults() = %v, want %v", tt.settings, got, tt.wantDefaults)
		}
	}
}

func TestTopicDefaults(t *testing.T) {
	c := mustLoad(t, "", "log.segment.bytes=1000", "message.max.bytes=2000", "log.flush.interval.messages=10",
		"log.flush.interval.ms=0", "min.insync.replicas=2", "unclean.leader.election.enable=True",
		"compression.type=zstd", "log.message.timestamp.type=LogAppendTime", "log.retention.bytes=99",
		"num.partitions=4") // not a topic default
	want := map[string]string{
		"log.segment.bytes":              "1000",
		"message.max.bytes":              "2000",
		"log.flush.interval.messages":    "10",
		"log.flush.interval.ms":          "0",
		"min.insync.replicas":            "2",
		"unclean.leader.election.enable": "true",
		"compression.type":               "zstd",
		"log.message.timestamp.type":     "LogAppendTime",
		"log.retention.bytes":            "99",
	}
	if got := c.TopicDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("TopicDefaults() = %v\nwant %v", got, want)
	}
	if c.FlushIntervalMs != 0 || c.FlushIntervalMessages != 10 {
		t.Errorf("FlushIntervalMs=%d FlushIntervalMessages=%d", c.FlushIntervalMs, c.FlushIntervalMessages)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		text      string
		overrides []string
		want      string
	}{
		{"# x\n\n\nlog.dirz=/tmp", nil, `unknown key "log.dirz" at SERVER:4 (did you mean "log.dirs"?)`},
		{"", []string{"num.partition=3"}, `unknown key "num.partition" at --override (did you mean "num.partitions"?)`},
		{"Node.ID=1", nil, `unknown key "Node.ID" at SERVER:1 (did you mean "node.id"?)`},
		{"auto.create.topic.enabled=false", nil, `(did you mean "auto.create.topics.enable"?)`},
		{"completely.different=1", nil, `unknown key "completely.different" at SERVER:1`},
		{"broker.id=1", nil, `key "broker.id" at SERVER:1 is not supported by Troupe: Troupe uses node.id`},
		{"num.network.threads=3", nil, `is not supported by Troupe`},
		{"=3", nil, `unknown key "" at SERVER:1`},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.text)
		_, err := Load(path, tt.overrides)
		if err == nil {
			t.Errorf("%q %q: no error", tt.text, tt.overrides)
			continue
		}
		want := strings.ReplaceAll(tt.want, "SERVER", path)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q %q: error %q, want it to contain %q", tt.text, tt.overrides, err, want)
		}
		if strings.Contains(tt.want, "completely") && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("unexpected suggestion: %v", err)
		}
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		setting string
		want    string
	}{
		{"node.id=abc", `invalid value "abc" for node.id at --override: not an integer`},
		{"node.id=-1", "must be at least 0"},
		{"node.id=2147483648", "must be at most 2147483647"},
		{"num.partitions=0", "must be at least 1"},
		{"default.replication.factor=40000", "must be at most 32767"},
		{"auto.create.topics.enable=yes", "must be true or false"},
		{"message.max.bytes=1e6", "not an integer"},
		{"log.segment.bytes=10", "must be at least 14"},
		{"log.retention.ms=-2", "must be at least -1"},
		{"log.flush.interval.messages=0", "must be at least 1"},
		{"log.flush.interval.ms=-1", "must be at least 0"},
		{"log.flush.interval.ms=", "not an integer"},
		{"log.cleanup.policy=delete,archive", `"archive" is not one of delete, compact`},
		{"log.cleanup.policy=", "must list at least one"},
		{"log.cleanup.policy=delete,delete", "appears twice"},
		{"compression.type=brotli", "must be one of producer, uncompressed, gzip, snappy, lz4, zstd"},
		{"log.message.timestamp.type=createtime", "must be one of CreateTime, LogAppendTime"},
		{"log.dir=", "must not be empty"},
		{"log.dirs=/a,/b", "only one log dir is supported yet"},
		{"listeners=", "must name at least one listener"},
		{"listeners=127.0.0.1:9092", "want NAME://host:port"},
		{"listeners=PLAIN TEXT://h:1", "name must be"},
		{"listeners=PLAINTEXT://h", "want host:port"},
		{"listeners=PLAINTEXT://h:99999", "not a number in 0..65535"},
		{"listeners=PLAINTEXT://h:1,plaintext://h:2", "listener name PLAINTEXT appears twice"},
		{"listener.security.protocol.map=PLAINTEXT", "want LISTENER_NAME:PROTOCOL"},
		{"listener.security.protocol.map=PLAINTEXT:TLS", `unknown security protocol "TLS"`},
		{"process.roles=worker", `"worker" is not a role`},
		{"controller.quorum.voters=1@h", "voter \"1@h\""},
		{"controller.quorum.voters=x@h:1", "is not a non-negative integer"},
		{"controller.quorum.voters=1@h:1,1@g:2", "voter id 1 appears twice"},
		{"troupe.metrics.listener=9100", "want host:port"},
	}
	for _, tt := range tests {
		_, err := Load("", []string{tt.setting})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.setting, err, tt.want)
			continue
		}
		key, _, _ := strings.Cut(tt.setting, "=")
		if !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name the key", tt.setting, err)
		}
	}
}

func TestBadValueInFileNamesLine(t *testing.T) {
	path := writeFile(t, "node.id=1\n\nnum.partitions=many\n")
	_, err := Load(path, nil)
	want := `config: invalid value "many" for num.partitions at ` + path + `:3: not an integer`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	path = writeFile(t, "a=1\nbroker.rack=\\u12\n")
	_, err = Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), path+":2: ") {
		t.Errorf("syntax error %v does not name %s:2", err, path)
	}
}

func TestListeners(t *testing.T) {
	tests := []struct {
		name           string
		settings       []string
		wantBind       Listener
		wantAdvertised Listener
		wantErr        string
	}{
		{name: "explicit host", settings: []string{"listeners=PLAINTEXT://10.1.2.3:9092"},
			wantBind: Listener{"PLAINTEXT", "10.1.2.3", 9092}, wantAdvertised: Listener{"PLAINTEXT", "10.1.2.3", 9092}},
		{name: "lower-case name is normalized", settings: []string{"listeners=plaintext://h:1"},
			wantBind: Listener{"PLAINTEXT", "h", 1}, wantAdvertised: Listener{"PLAINTEXT", "h", 1}},
		{name: "ipv6", settings: []string{"listeners=PLAINTEXT://[::1]:9092"},
			wantBind: Listener{"PLAINTEXT", "::1", 9092}, wantAdvertised: Listener{"PLAINTEXT", "::1", 9092}},
		{name: "port 0 advertises the bound port", settings: []string{"listeners=PLAINTEXT://127.0.0.1:0"},
			wantBind: Listener{"PLAINTEXT", "127.0.0.1", 0}, wantAdvertised: Listener{"PLAINTEXT", "127.0.0.1", 0}},
		{name: "empty host needs advertised", settings: []string{"listeners=PLAINTEXT://:9092"},
			wantErr: "binds all interfaces, which clients cannot connect to: set advertised.listeners=PLAINTEXT://<host clients can reach>:9092"},
		{name: "0.0.0.0 needs advertised", settings: []string{"listeners=PLAINTEXT://0.0.0.0:9092"},
			wantErr: "listener PLAINTEXT://0.0.0.0:9092 (listeners at --override) binds all interfaces"},
		{name: ":: needs advertised", settings: []string{"listeners=PLAINTEXT://[::]:9092"}, wantErr: "binds all interfaces"},
		{name: "wildcard with advertised",
			settings: []string{"listeners=PLAINTEXT://0.0.0.0:9092", "advertised.listeners=PLAINTEXT://broker1.example:9092"},
			wantBind: Listener{"PLAINTEXT", "0.0.0.0", 9092}, wantAdvertised: Listener{"PLAINTEXT", "broker1.example", 9092}},
		{name: "empty advertised means unset",
			settings: []string{"advertised.listeners="},
			wantBind: Listener{"PLAINTEXT", "127.0.0.1", 9092}, wantAdvertised: Listener{"PLAINTEXT", "127.0.0.1", 9092}},
		{name: "advertised wildcard", settings: []string{"listeners=PLAINTEXT://0.0.0.0:9092", "advertised.listeners=PLAINTEXT://0.0.0.0:9092"},
			wantErr: "is not an address clients can connect to"},
		{name: "advertised port 0", settings: []string{"advertised.listeners=PLAINTEXT://h:0"}, wantErr: "needs a port"},
		{name: "advertised unknown name", settings: []string{"advertised.listeners=PLAINTEXT://h:1,EXTERNAL://h:2"},
			wantErr: "advertised listener EXTERNAL://h:2 (advertised.listeners at --override) has no listener of that name"},
		{name: "advertised misses broker listener",
			settings: []string{"listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093", "advertised.listeners=CONTROLLER://h:9093"},
			wantErr:  "has no entry for the broker listener PLAINTEXT"},
		{name: "controller listener first",
			settings: []string{"listeners=CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092", "controller.listener.names=CONTROLLER"},
			wantBind: Listener{"PLAINTEXT", "127.0.0.1", 9092}, wantAdvertised: Listener{"PLAINTEXT", "127.0.0.1", 9092}},
		{name: "wildcard controller listener needs no advertised entry",
			settings: []string{"listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://0.0.0.0:9093", "controller.listener.names=CONTROLLER"},
			wantBind: Listener{"PLAINTEXT", "127.0.0.1", 9092}, wantAdvertised: Listener{"PLAINTEXT", "127.0.0.1", 9092}},
		{name: "only controller listeners",
			settings: []string{"listeners=CONTROLLER://127.0.0.1:9093", "controller.listener.names=CONTROLLER"},
			wantErr:  "every listener in listeners at --override is a controller listener"},
		{name: "unmapped name", settings: []string{"listeners=EXTERNAL://h:1"},
			wantErr: "listener EXTERNAL://h:1 (listeners at --override) has no entry in listener.security.protocol.map (default); add EXTERNAL:PLAINTEXT"},
		{name: "mapped name",
			settings: []string{"listeners=EXTERNAL://h:1", "listener.security.protocol.map=EXTERNAL:PLAINTEXT"},
			wantBind: Listener{"EXTERNAL", "h", 1}, wantAdvertised: Listener{"EXTERNAL", "h", 1}},
		{name: "ssl by name", settings: []string{"listeners=SSL://h:9093"},
			wantErr: "uses security protocol SSL: not supported yet"},
		{name: "sasl by map",
			settings: []string{"listeners=EXTERNAL://h:1", "listener.security.protocol.map=EXTERNAL:SASL_SSL"},
			wantErr:  "uses security protocol SASL_SSL: not supported yet"},
		{name: "unused ssl mapping is fine",
			settings: []string{"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL"},
			wantBind: Listener{"PLAINTEXT", "127.0.0.1", 9092}, wantAdvertised: Listener{"PLAINTEXT", "127.0.0.1", 9092}},
		{name: "same port twice",
			settings: []string{"listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9092", "controller.listener.names=CONTROLLER"},
			wantErr:  "bind the same port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", tt.settings)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, a := c.BrokerListener(), c.AdvertisedBrokerListener()
			if b != tt.wantBind || a != tt.wantAdvertised {
				t.Errorf("broker listener %v advertised %v, want %v %v", b, a, tt.wantBind, tt.wantAdvertised)
			}
		})
	}
}

func TestListenerAddr(t *testing.T) {
	tests := []struct {
		l          Listener
		addr, str  string
		isWildcard bool
	}{
		{Listener{"PLAINTEXT", "127.0.0.1", 9092}, "127.0.0.1:9092", "PLAINTEXT://127.0.0.1:9092", false},
		{Listener{"PLAINTEXT", "", 9092}, ":9092", "PLAINTEXT://:9092", true},
		{Listener{"PLAINTEXT", "::1", 1}, "[::1]:1", "PLAINTEXT://[::1]:1", false},
		{Listener{"PLAINTEXT", "::", 1}, "[::]:1", "PLAINTEXT://[::]:1", true},
		{Listener{"PLAINTEXT", "localhost", 1}, "localhost:1", "PLAINTEXT://localhost:1", false},
	}
	for _, tt := range tests {
		if tt.l.Addr() != tt.addr || tt.l.String() != tt.str || tt.l.Wildcard() != tt.isWildcard {
			t.Errorf("%#v: Addr %q String %q Wildcard %v", tt.l, tt.l.Addr(), tt.l.String(), tt.l.Wildcard())
		}
		back, err := parseListener(tt.str)
		if err != nil || back != tt.l {
			t.Errorf("parseListener(%q) = %v, %v", tt.str, back, err)
		}
	}
}

func TestAll(t *testing.T) {
	path := writeFile(t, "log.retention.hours=1\nlistener.security.protocol.map = plaintext:plaintext\n")
	c, err := Load(path, []string{"log.dir=/x"})
	if err != nil {
		t.Fatal(err)
	}
	all := c.All()
	if len(all) != len(keyDefs) {
		t.Fatalf("All() has %d entries, want %d", len(all), len(keyDefs))
	}
	byName := make(map[string]Entry)
	for i, e := range all {
		if i > 0 && all[i-1].Name >= e.Name {
			t.Errorf("All() not sorted at %s", e.Name)
		}
		byName[e.Name] = e
	}
	want := []Entry{
		{Name: "log.retention.hours", Value: "1", Set: true, Source: path + ":1", Type: TypeInt},
		{Name: "log.retention.ms", Value: "3600000", Type: TypeLong},
		{Name: "log.retention.minutes", Value: "", Type: TypeInt},
		{Name: "listener.security.protocol.map", Value: "PLAINTEXT:PLAINTEXT", Set: true, Source: path + ":2", Type: TypeList},
		{Name: "log.dir", Value: "/x", Set: true, Source: "--override", Type: TypeString},
		{Name: "log.dirs", Value: "/x", Type: TypeList},
		{Name: "advertised.listeners", Value: "PLAINTEXT://127.0.0.1:9092", Type: TypeList},
		{Name: "log.roll.ms", Value: "604800000", Type: TypeLong},
		{Name: "log.flush.interval.ms", Value: "", Type: TypeLong},
		{Name: "node.id", Value: "1", Type: TypeInt},
		{Name: "auto.create.topics.enable", Value: "true", Type: TypeBoolean},
	}
	for _, w := range want {
		got := byName[w.Name]
		got.Doc = ""
		if got != w {
			t.Errorf("All()[%s] = %+v, want %+v", w.Name, got, w)
		}
	}
}

// TestWriteProperties checks that the printed config loads back to the
// same settings.
func TestWriteProperties(t *testing.T) {
	c := mustLoad(t, "node.id=3\nbroker.rack= a rack\\twith tab\nlog.retention.minutes=5\n",
		"listeners=PLAINTEXT://0.0.0.0:9092", "advertised.listeners=PLAINTEXT://h:9092")
	var buf bytes.Buffer
	if err := c.WriteProperties(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"# set at --override\nlisteners=PLAINTEXT://0.0.0.0:9092\n", "\n#num.partitions=1\n", "\nnode.id=3\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	back := mustLoad(t, text)
	if !reflect.DeepEqual(back.Set(), c.Set()) || !reflect.DeepEqual(back.All()[0].Value, c.All()[0].Value) {
		t.Errorf("reloaded Set() = %v, want %v", back.Set(), c.Set())
	}
	if back.RetentionMs != 5*60*1000 || back.Rack != "a rack\twith tab" {
		t.Errorf("reloaded RetentionMs=%d Rack=%q", back.RetentionMs, back.Rack)
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.properties"), nil); err == nil || !strings.Contains(err.Error(), "missing.properties") {
		t.Errorf("missing file: error %v", err)
	}
	big := writeFile(t, "# "+strings.Repeat("x", maxFileBytes)+"\n")
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: error %v", err)
	}
}

func TestSetReturnsCopy(t *testing.T) {
	c := mustLoad(t, "", "node.id=2")
	c.Set()["node.id"] = "9"
	if c.Set()["node.id"] != "2" {
		t.Error("Set() exposes internal state")
	}
}

func TestSuggestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"log.dirz", "log.dirs"},
		{"listener", "listeners"},
		{"LOG.DIRS", "log.dirs"},
		{"log.retention.hour", "log.retention.hours"},
		{"troupe.metrics.listner", "troupe.metrics.listener"},
		{"xyz", ""},
		{"", ""},
		{strings.Repeat("a", 1000), ""},
	}
	for _, tt := range tests {
		if got := suggestKey(tt.in); got != tt.want {
			t.Errorf("suggestKey(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestExampleFile keeps config/server.properties honest: it loads, gives
// the defaults, mentions every supported key, and each commented-out
// setting is valid when uncommented.
func TestExampleFile(t *testing.T) {
	const path = "../../config/server.properties"
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Set()) != 0 {
		t.Errorf("example file sets %v; every line should be commented out", c.Set())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]bool)
	for _, line := range strings.Split(string(data), "\n") {
		setting, ok := strings.CutPrefix(line, "#")
		key, value, isSetting := strings.Cut(setting, "=")
		if !ok || !isSetting || strings.ContainsAny(key, " \t") {
			continue
		}
		listed[key] = true
		if d, ok := lookupKey(key); ok && d.def != "" && d.def != value {
			t.Errorf("example file shows %s=%s, but the default is %s", key, value, d.def)
		}
		if _, err := Load("", []string{setting}); err != nil {
			t.Errorf("uncommenting %q: %v", line, err)
		}
	}
	for _, d := range keyDefs {
		if !listed[d.name] {
			t.Errorf("example file does not list %s", d.name)
		}
	}
}
