package metadata

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// populated builds an image with something of every kind in it.
func populated(t *testing.T) *Image {
	t.Helper()
	tc := newTestCluster(t, Defaults{}, 1, 2, 3, 4)
	tc.createTopic("a", map[string]*string{"retention.ms": strp("1000")}, []int32{1, 2}, []int32{2, 3})
	tc.createTopic("b", nil, []int32{3, 4, 1})
	if _, _, err := tc.c.AllocateProducerIDBlock(3); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "reassign", tc.c.AlterPartitionReassignments([]Reassignment{{Topic: "b", Partition: 0, Replicas: []int32{2, 4, 1}}})[0], nil)
	wantErr(t, "fence", tc.c.ReportDead(3, 0), nil)
	wantErr(t, "delete", tc.c.DeleteTopics([]string{"nothing"})[0], kerr.TopicDeletionDisabled)
	return tc.c.Image()
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		img  func(*testing.T) *Image
	}{
		{"empty", func(*testing.T) *Image { return NewImage("c") }},
		{"populated", populated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.img(t)
			b, err := img.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ImageFromSnapshot(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(img, back) {
				t.Fatalf("round trip differs:\n%+v\n%+v", img, back)
			}
			again, _ := back.Snapshot()
			if !bytes.Equal(b, again) {
				t.Fatal("snapshot encoding is not deterministic")
			}
		})
	}
	img := populated(t)
	if len(img.Reassignments()) != 1 || img.Offset <= 0 {
		t.Fatalf("populated image lacks a reassignment or offset: %+v", img)
	}
	for _, bad := range []string{"", "{", `{"version":2}`, `{"version":1,"brokers":[{"id":2},{"id":1}]}`,
		`{"version":1,"topics":[{"name":"a","partitions":[]},{"name":"a","partitions":[]}]}`} {
		if _, err := ImageFromSnapshot([]byte(bad)); err == nil {
			t.Errorf("snapshot %q decoded", bad)
		}
	}

	// A controller restored from the snapshot carries on from it; an older
	// snapshot and already-applied batches are ignored.
	b, _ := img.Snapshot()
	back, _ := ImageFromSnapshot(b)
	j := newRaftJournal(t)
	c, err := NewController(j, 1, "test-cluster", Defaults{}, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	var seen []int64
	c.Watch(func(_, n *Image) { seen = append(seen, n.Offset) })
	if err := c.Restore(back); err != nil || c.Image() != back {
		t.Fatalf("restore: %v", err)
	}
	if err := c.Restore(NewImage("test-cluster")); err != nil || c.Image() != back {
		t.Fatalf("older snapshot replaced the image: %v", err)
	}
	if err := c.Apply(back.Offset, []Record{{Type: RecordController, Controller: &ControllerRecord{ID: 9}}}); err != nil || c.Image() != back {
		t.Fatalf("applied batch re-applied: %v", err)
	}
	j.index = back.Offset
	if err := c.BecomeActive(0); err != nil {
		t.Fatal(err)
	}
	if c.Image().Offset != back.Offset+1 || c.Image().ControllerID != 1 || !slices.Equal(seen, []int64{back.Offset, back.Offset + 1}) {
		t.Fatalf("after take-over: offset %d controller %d watched %v", c.Image().Offset, c.Image().ControllerID, seen)
	}
	other := img
	other.ClusterID = "other"
	other.Offset += 100
	if err := c.Restore(other); err == nil {
		t.Fatal("restored a snapshot of another cluster")
	}
}

// TestOldJournalReplays replays a journal written by the single-node code
// before the cluster records existed (testdata/journal-v1), then keeps
// using it.
func TestOldJournalReplays(t *testing.T) {
	b, err := os.ReadFile("testdata/journal-v1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() (*Controller, *FileJournal) {
		j, err := OpenFileJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewController(j, 1, "golden-cluster", Defaults{NumPartitions: 1, ReplicationFactor: 1, DeleteTopicEnable: true}, rand.New(rand.NewSource(3)))
		if err != nil {
			t.Fatal(err)
		}
		return c, j
	}
	c, j := open()
	img := c.Image()
	b1, _ := img.Broker(1)
	b2, _ := img.Broker(2)
	switch {
	case img.ClusterID != "golden-cluster" || img.ControllerID != 1 || img.Offset != 18 || img.NextProducerID != 1000:
		t.Fatalf("image header: %+v", img)
	case b1 != Broker{ID: 1, Host: "127.0.0.1", Port: 9092, Rack: "r1", Epoch: 0} || !b2.Fenced || b2.Port != 9093:
		t.Fatalf("brokers: %+v", img.Brokers)
	case !slices.Equal(img.TopicNames(), []string{"orders", "pinned"}):
		t.Fatalf("topics: %v", img.TopicNames())
	case len(img.Topic("orders").Partitions) != 5 || !reflect.DeepEqual(img.Topic("orders").Configs, map[string]string{"cleanup.policy": "compact"}):
		t.Fatalf("orders: %+v", img.Topic("orders"))
	case img.Topic("pinned").Partitions[1].Leader != 2 || !slices.Equal(img.OfflineReplicas("pinned", 0), []int32{2}):
		t.Fatalf("pinned: %+v", img.Topic("pinned"))
	}
	// The single-node path writes on, new record types included, and the
	// mixed journal replays to the same image.
	if err := c.RegisterBroker(BrokerRecord{ID: 1, Host: "127.0.0.1", Port: 9092, Rack: "r1"}); err != nil || c.Image().Offset != 18 {
		t.Fatalf("unchanged registration wrote records: %v", err)
	}
	wantErr(t, "create", c.CreateTopics([]CreateTopic{{Name: "new", NumPartitions: 2, ReplicationFactor: 1}}, false)[0], nil)
	wantErr(t, "fence 1", c.ReportDead(1, 0), nil)
	wantState(t, "fenced single node", *must(c.Image().Partition("new", 0)), -1, []int32{1}, 1, 1)
	fenced, err := c.BrokerHeartbeat(1, IncarnationID{}, c.Image().Offset, false, 0)
	if err != nil || fenced {
		t.Fatalf("heartbeat: fenced %v: %v", fenced, err)
	}
	// A restart: registration and leadership moves in one batch.
	epoch, err := c.RegisterBrokerIncarnation(BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), Host: "127.0.0.1", Port: 9092}, 0)
	if b, _ := c.Image().Broker(1); err != nil || epoch != b.Epoch || epoch >= c.Image().Offset {
		t.Fatalf("register: epoch %d at offset %d: %v", epoch, c.Image().Offset, err)
	}
	before := c.Image()
	j.Close()
	c2, j2 := open()
	defer j2.Close()
	if after := c2.Image(); !reflect.DeepEqual(before, after) {
		t.Fatalf("replay differs:\n%+v\n%+v", before, after)
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("missing")
	}
	return v
}

// TestFileJournalAppliesThroughHook checks the single-node path: the
// FileJournal applies each batch before Append returns and watchers see
// it; a batch that does not apply fails the Append.
func TestFileJournalAppliesThroughHook(t *testing.T) {
	c, j := newTestController(t, t.TempDir())
	var mu sync.Mutex
	var batches []int64
	c.Watch(func(old, n *Image) {
		mu.Lock()
		defer mu.Unlock()
		if n.Offset <= old.Offset {
			t.Errorf("watch went from offset %d to %d", old.Offset, n.Offset)
		}
		batches = append(batches, n.Offset)
	})
	last, err := j.Append([]Record{{Type: RecordController, Controller: &ControllerRecord{ID: 1}}, {Type: RecordController, Controller: &ControllerRecord{ID: 1}}})
	if err != nil || c.Image().Offset != last {
		t.Fatalf("append at %d, image at %d: %v", last, c.Image().Offset, err)
	}
	wantErr(t, "create", c.CreateTopics([]CreateTopic{{Name: "x", NumPartitions: 3, ReplicationFactor: 1}}, false)[0], nil)
	if len(c.Image().Topic("x").Partitions) != 3 || len(batches) != 2 || batches[1] != c.Image().Offset {
		t.Fatalf("watched %v, image %+v", batches, c.Image())
	}
	if _, err := j.Append([]Record{{Type: RecordRemoveTopic, RemoveTopic: &RemoveTopicRecord{}}}); err == nil {
		t.Fatal("an unappliable batch was acknowledged")
	}
}

// TestNotController checks that commands on a node that may not propose
// fail with NOT_CONTROLLER, whether the controller knows it (resigned)
// or the journal says so (a raft follower).
func TestNotController(t *testing.T) {
	tc := newTestCluster(t, Defaults{NumPartitions: 1, ReplicationFactor: 1, DeleteTopicEnable: true}, 1, 2)
	tc.createTopic("t", nil, []int32{1, 2})
	c := tc.c
	inc := incarnation(2, tc.gen[2])
	commands := map[string]func() error{
		"create": func() error {
			return c.CreateTopics([]CreateTopic{{Name: "n", NumPartitions: 1, ReplicationFactor: 1}}, false)[0]
		},
		"delete":     func() error { return c.DeleteTopics([]string{"t"})[0] },
		"partitions": func() error { return c.CreatePartitions([]CreatePartitions{{Topic: "t", Count: 3}}, false)[0] },
		"configs": func() error {
			return c.AlterTopicConfigs("t", []ConfigOp{{Name: "retention.ms", Value: strp("1")}}, false)
		},
		"pid":        func() error { _, err := c.AllocateProducerID(); return err },
		"register":   func() error { _, err := c.RegisterBrokerIncarnation(tc.registration(3), 0); return err },
		"heartbeat":  func() error { _, err := c.BrokerHeartbeat(2, inc, 0, true, 0); return err },
		"dead":       func() error { return c.ReportDead(2, 0) },
		"unregister": func() error { return c.UnregisterBroker(2) },
		"alter":      func() error { _, err := c.AlterPartition("t", 0, 1, 0, 0, []int32{1}); return err },
		"elect":      func() error { return c.ElectLeaders(ElectPreferred, []TopicPartition{{"t", 0}})[0].Err },
		"reassign": func() error {
			return c.AlterPartitionReassignments([]Reassignment{{Topic: "t", Replicas: []int32{2, 1}}})[0]
		},
		"take over": func() error { return c.BecomeActive(0) },
		"pid block": func() error { _, _, err := c.AllocateProducerIDBlock(2); return err },
		"create only": func() error {
			return c.CreateTopics([]CreateTopic{{Name: "n", NumPartitions: 1, ReplicationFactor: 1}}, true)[0]
		},
	}
	before := c.Image()
	t.Run("resigned", func(t *testing.T) {
		c.Resign()
		for name, cmd := range commands {
			if name == "take over" {
				continue // a resigned controller may take over
			}
			if err := cmd(); !errors.Is(err, ErrNotController) || !errors.Is(err, kerr.NotController) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("raft follower", func(t *testing.T) {
		tc.j.setFollower(true)
		wantErr(t, "take over", c.BecomeActive(0), kerr.NotController)
		if c.Active() {
			t.Fatal("active after a failed take-over")
		}
	})
	if c.Image() != before {
		t.Fatal("a refused command changed the image")
	}
	t.Run("leader again", func(t *testing.T) {
		tc.j.setFollower(false)
		wantErr(t, "take over", c.BecomeActive(0), nil)
		tc.j.setFollower(true) // lost the leadership without knowing yet
		for name, cmd := range commands {
			if name == "create only" || name == "elect" {
				continue // nothing to write, so nothing asks raft
			}
			if err := cmd(); !errors.Is(err, kerr.NotController) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	// Applying another node's take-over resigns this one.
	tc.j.setFollower(false)
	wantErr(t, "take over", c.BecomeActive(0), nil)
	if err := c.Apply(c.Image().Offset+1, []Record{{Type: RecordController, Controller: &ControllerRecord{ID: 2}}}); err != nil {
		t.Fatal(err)
	}
	if c.Active() || c.Image().ControllerID != 2 {
		t.Fatal("still active after node 2 took over")
	}
}

// TestDeterminism runs the same commands twice with the same random
// source: the logs must be identical.
func TestDeterminism(t *testing.T) {
	run := func() [][]Record {
		tc := newTestCluster(t, Defaults{NumPartitions: 6, ReplicationFactor: 2, BrokerSessionTimeoutMs: 100}, 1, 2, 3, 4)
		c := tc.c
		for _, name := range []string{"a", "b", "c"} {
			wantErr(t, "create", c.CreateTopics([]CreateTopic{{Name: name, NumPartitions: -1, ReplicationFactor: -1,
				Configs: map[string]*string{"retention.ms": strp("5"), "cleanup.policy": strp("compact"), "segment.ms": strp("9")}}}, false)[0], nil)
		}
		wantErr(t, "partitions", c.CreatePartitions([]CreatePartitions{{Topic: "a", Count: 9}}, false)[0], nil)
		tc.now = 50
		tc.heartbeat(1, false)
		tc.heartbeat(2, false)
		if _, err := c.Tick(101); err != nil {
			t.Fatal(err)
		}
		c.ElectLeaders(ElectPreferred, nil)
		c.AlterPartitionReassignments([]Reassignment{{Topic: "b", Partition: 0, Replicas: []int32{4, 3}}})
		c.AllocateProducerID()
		return tc.j.log
	}
	first, second := run(), run()
	if !reflect.DeepEqual(first, second) {
		t.Fatal("the same commands produced different logs")
	}
}

// TestApplyWhileCommandWaits runs commands against a journal whose apply
// loop is another goroutine, with readers and watchers busy meanwhile: no
// deadlock, no race, every batch applied in order.
func TestApplyWhileCommandWaits(t *testing.T) {
	tc := newTestCluster(t, Defaults{ReplicationFactor: 1, NumPartitions: 1}, 1, 2, 3)
	c := tc.c
	var last int64
	c.Watch(func(old, n *Image) {
		if n.Offset != old.Offset+1 || n.Offset <= last {
			t.Errorf("watch out of order: %d -> %d after %d", old.Offset, n.Offset, last)
		}
		last = n.Offset
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = c.Image().NumTopics()
			}
		}
	}()
	var cmds sync.WaitGroup
	for i := range 4 {
		cmds.Add(1)
		go func() {
			defer cmds.Done()
			for k := range 20 {
				name := string(rune('a'+i)) + string(rune('a'+k))
				if err := c.CreateTopics([]CreateTopic{{Name: name, NumPartitions: 2, ReplicationFactor: 2}}, false)[0]; err != nil {
					t.Error(err)
				}
				if _, err := c.AllocateProducerID(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	cmds.Wait()
	close(stop)
	wg.Wait()
	if c.Image().NumTopics() != 80 {
		t.Fatalf("%d topics", c.Image().NumTopics())
	}
}

func TestPlacementSpreads(t *testing.T) {
	for _, tt := range []struct {
		brokers    []int32
		partitions int32
		rf         int
	}{
		{[]int32{1}, 4, 1},
		{[]int32{1, 2, 3}, 12, 3},
		{[]int32{1, 2, 3, 5, 8}, 50, 3},
		{[]int32{2, 4, 6, 8}, 8, 2},
	} {
		for seed := range 5 {
			var id TopicID
			io.ReadFull(rand.New(rand.NewSource(int64(seed))), id[:])
			got := slices.Concat(assignReplicas(tt.brokers, id, 0, tt.partitions/2, tt.rf), assignReplicas(tt.brokers, id, tt.partitions/2, tt.partitions-tt.partitions/2, tt.rf))
			leaders, replicas := map[int32]int{}, map[int32]int{}
			for _, rs := range got {
				if len(rs) != tt.rf || hasDuplicates(rs) {
					t.Fatalf("%v rf %d: replicas %v", tt.brokers, tt.rf, rs)
				}
				leaders[rs[0]]++
				for _, r := range rs {
					replicas[r]++
				}
			}
			per := int(tt.partitions) / len(tt.brokers)
			for _, b := range tt.brokers {
				if leaders[b] < per || leaders[b] > per+1 {
					t.Fatalf("%v: broker %d leads %d of %d partitions", tt.brokers, b, leaders[b], tt.partitions)
				}
				want := int(tt.partitions) * tt.rf / len(tt.brokers)
				if replicas[b] < want-tt.rf || replicas[b] > want+tt.rf {
					t.Fatalf("%v: broker %d holds %d replicas, want about %d", tt.brokers, b, replicas[b], want)
				}
			}
		}
	}
	// Topics do not all put their first leader on the same broker.
	tc := newTestCluster(t, Defaults{NumPartitions: 1, ReplicationFactor: 1}, 1, 2, 3)
	first := map[int32]bool{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		wantErr(t, "create", tc.c.CreateTopics([]CreateTopic{{Name: name, NumPartitions: -1, ReplicationFactor: -1}}, false)[0], nil)
		first[tc.part(name, 0).Leader] = true
	}
	if len(first) < 2 {
		t.Fatalf("every topic starts on broker %v", first)
	}
	// Fenced brokers get no new replicas.
	wantErr(t, "fence", tc.c.ReportDead(2, 0), nil)
	wantErr(t, "create", tc.c.CreateTopics([]CreateTopic{{Name: "z", NumPartitions: 6, ReplicationFactor: 2}}, false)[0], nil)
	for _, p := range tc.c.Image().Topic("z").Partitions {
		if slices.Contains(p.Replicas, 2) || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Fatalf("partition on a fenced broker or not led by its first replica: %+v", p)
		}
	}
	wantErr(t, "rf", tc.c.CreateTopics([]CreateTopic{{Name: "y", NumPartitions: 1, ReplicationFactor: 3}}, false)[0], kerr.InvalidReplicationFactor)
}

func TestBatchEncoding(t *testing.T) {
	recs := []Record{
		{Type: RecordRegisterBroker, Broker: &BrokerRecord{ID: 3, Host: "h", Port: 1, Incarnation: incarnation(3, 1), Roles: RoleBroker}},
		{Type: RecordFenceBroker, BrokerRef: &BrokerRefRecord{ID: 3}},
		{Type: RecordPartitionChange, PartitionChange: &PartitionChangeRecord{Leader: NoLeaderChange, ISR: []int32{1}, RemovingReplicas: []int32{}}},
	}
	b, err := EncodeBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBatch(b)
	if err != nil || !reflect.DeepEqual(recs, back) {
		t.Fatalf("batch round trip: %v\n%+v", err, back)
	}
	// A registration without an incarnation encodes as before it existed.
	old, _ := Record{Type: RecordRegisterBroker, Broker: &BrokerRecord{ID: 1, Host: "h", Port: 1}}.Encode()
	if string(old) != `{"type":1,"broker":{"id":1,"host":"h","port":1}}` {
		t.Fatalf("legacy registration encodes as %s", old)
	}
	for _, bad := range []string{`[{"type":1,"broker":{"incarnation":"xyz"}}]`, `{`} {
		if _, err := DecodeBatch([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
}
