package cluster

import (
	"testing"

	"github.com/troupe-io/troupe/cluster/config"
	"github.com/troupe-io/troupe/metadata"
)

// TestPartitionConfig checks how topic configs (over broker defaults)
// become a partition's settings, above all the durability stance.
func TestPartitionConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		broker    []string
		topic     map[string]string
		ackSync   bool
		flushMsgs int64
		flushMs   int64
		retention int64
		keys      bool
	}{
		{name: "defaults: fsync before ack", ackSync: true, retention: 604800000},
		{name: "flush.messages=1 is still fsync before ack", topic: map[string]string{"flush.messages": "1"}, ackSync: true, flushMsgs: 1, retention: 604800000},
		{name: "flush.messages relaxes", topic: map[string]string{"flush.messages": "100"}, flushMsgs: 100, retention: 604800000},
		{name: "flush.ms relaxes", topic: map[string]string{"flush.ms": "500"}, flushMs: 500, retention: 604800000},
		{name: "flush.ms=0 syncs at once, after the ack", topic: map[string]string{"flush.ms": "0"}, flushMsgs: 1, retention: 604800000},
		{name: "broker-wide relaxed flush", broker: []string{"log.flush.interval.ms=1000"}, flushMs: 1000, retention: 604800000},
		{name: "broker retention hours", broker: []string{"log.retention.hours=1"}, ackSync: true, retention: 3600000},
		{name: "compact keeps everything and needs keys", topic: map[string]string{"cleanup.policy": "compact"}, ackSync: true, retention: -1, keys: true},
		{name: "compact,delete retains by time", topic: map[string]string{"cleanup.policy": "compact,delete"}, ackSync: true, retention: 604800000, keys: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load("", tc.broker)
			if err != nil {
				t.Fatal(err)
			}
			n := &Node{cfg: cfg}
			pc := n.partitionConfig(&metadata.Topic{Name: "t", Configs: tc.topic})
			if pc.Core.AckAfterSync != tc.ackSync || pc.Core.FlushMessages != tc.flushMsgs || pc.Core.FlushMs != tc.flushMs {
				t.Errorf("core settings %+v, want ack-after-sync %v flush.messages %d flush.ms %d", pc.Core, tc.ackSync, tc.flushMsgs, tc.flushMs)
			}
			if pc.Log.RetentionMs != tc.retention {
				t.Errorf("retention.ms %d, want %d", pc.Log.RetentionMs, tc.retention)
			}
			if pc.Validate.RequireKeys != tc.keys {
				t.Errorf("require keys %v, want %v", pc.Validate.RequireKeys, tc.keys)
			}
			if pc.Core.ProducerExpirationMs != 86400000 || pc.Validate.MaxBatchBytes != 1048588 {
				t.Errorf("defaults: %+v %+v", pc.Core, pc.Validate)
			}
		})
	}
}
