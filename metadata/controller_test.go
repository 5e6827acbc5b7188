package metadata

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func newTestController(t *testing.T, dir string) (*Controller, *FileJournal) {
	t.Helper()
	j, err := OpenFileJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewController(j, 1, "test-cluster", Defaults{NumPartitions: 2, ReplicationFactor: 1, DeleteTopicEnable: true},
		rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterBroker(BrokerRecord{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	return c, j
}

func TestCreateTopicValidation(t *testing.T) {
	c, _ := newTestController(t, t.TempDir())
	if errs := c.CreateTopics([]CreateTopic{{Name: "exists", NumPartitions: 1, ReplicationFactor: 1}}, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for _, tc := range []struct {
		name string
		req  CreateTopic
		want *kerr.Error
	}{
		{"defaults", CreateTopic{Name: "d", NumPartitions: -1, ReplicationFactor: -1}, nil},
		{"exists", CreateTopic{Name: "exists", NumPartitions: 1, ReplicationFactor: 1}, kerr.TopicAlreadyExists},
		{"zero partitions", CreateTopic{Name: "z", NumPartitions: 0, ReplicationFactor: 1}, kerr.InvalidPartitions},
		{"negative rf", CreateTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 0}, kerr.InvalidReplicationFactor},
		{"rf above brokers", CreateTopic{Name: "r", NumPartitions: 1, ReplicationFactor: 2}, kerr.InvalidReplicationFactor},
		{"empty name", CreateTopic{Name: "", NumPartitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"dot", CreateTopic{Name: "..", NumPartitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"slash", CreateTopic{Name: "a/b", NumPartitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"too long", CreateTopic{Name: string(bytes.Repeat([]byte("x"), 250)), NumPartitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"collides", CreateTopic{Name: "ex_ists", NumPartitions: 1, ReplicationFactor: 1}, nil},
		{"collides with .", CreateTopic{Name: "ex.ists", NumPartitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"bad config", CreateTopic{Name: "c", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]*string{"retention.ms": strp("soon")}}, kerr.InvalidConfig},
		{"unknown config", CreateTopic{Name: "c2", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]*string{"nope": strp("1")}}, kerr.InvalidConfig},
		{"assignment", CreateTopic{Name: "a", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]int32{{1}, {1}}}, nil},
		{"assignment unknown broker", CreateTopic{Name: "a2", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]int32{{7}}}, kerr.InvalidReplicaAssignment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CreateTopics([]CreateTopic{tc.req}, false)[0]
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := len(c.Image().Topic("d").Partitions); got != 2 {
		t.Fatalf("default partitions: %d", got)
	}
	// validateOnly writes nothing.
	if errs := c.CreateTopics([]CreateTopic{{Name: "v", NumPartitions: 1, ReplicationFactor: 1}}, true); errs[0] != nil || c.Image().Topic("v") != nil {
		t.Fatalf("validate-only created the topic: %v", errs[0])
	}
}

func TestControllerStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c, j := newTestController(t, dir)
	c.CreateTopics([]CreateTopic{{Name: "a", NumPartitions: 3, ReplicationFactor: 1, Configs: map[string]*string{"cleanup.policy": strp("delete")}}}, false)
	c.CreateTopics([]CreateTopic{{Name: "b", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if err := c.CreatePartitions([]CreatePartitions{{Topic: "b", Count: 4}}, false)[0]; err != nil {
		t.Fatal(err)
	}
	if err := c.AlterTopicConfigs("a", []ConfigOp{
		{Name: "cleanup.policy", Op: ConfigAppend, Value: strp("compact")},
		{Name: "retention.ms", Op: ConfigSet, Value: strp("1000")},
	}, false); err != nil {
		t.Fatal(err)
	}
	if got := c.Image().Topic("a").Configs["cleanup.policy"]; got != "delete,compact" {
		t.Fatalf("append: %q", got)
	}
	if err := c.AlterTopicConfigs("a", []ConfigOp{{Name: "cleanup.policy", Op: ConfigSubtract, Value: strp("delete")}}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopics([]string{"b"})[0]; err != nil {
		t.Fatal(err)
	}
	pid1, _ := c.AllocateProducerID()
	pid2, _ := c.AllocateProducerID()
	if pid2 != pid1+1 {
		t.Fatalf("producer ids %d %d", pid1, pid2)
	}
	before := c.Image()
	j.Close()

	c2, _ := newTestController(t, dir)
	after := c2.Image()
	if !reflect.DeepEqual(before.TopicNames(), after.TopicNames()) || !reflect.DeepEqual(before.Topic("a"), after.Topic("a")) {
		t.Fatalf("replayed image differs:\n%+v\n%+v", before.Topic("a"), after.Topic("a"))
	}
	if got := after.Topic("a").Configs["cleanup.policy"]; got != "compact" {
		t.Fatalf("subtract: %q", got)
	}
	pid3, _ := c2.AllocateProducerID()
	if pid3 <= pid2 {
		t.Fatalf("producer id %d reused after restart (last was %d)", pid3, pid2)
	}
}

func TestJournalTruncatesTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal")
	j, err := OpenFileJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := j.Append([]Record{{Type: RecordController, Controller: &ControllerRecord{ID: int32(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	st, _ := os.Stat(path)
	for _, cut := range []int64{1, 5, 9} {
		b, _ := os.ReadFile(path)
		os.WriteFile(path, b[:st.Size()-cut], 0o644)
		j, err := OpenFileJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		j.Replay(func(int64, Record) error { n++; return nil })
		if n != 2 {
			t.Fatalf("cut %d bytes: replayed %d records, want 2", cut, n)
		}
		if _, err := j.Append([]Record{{Type: RecordController, Controller: &ControllerRecord{ID: 9}}}); err != nil {
			t.Fatal(err)
		}
		n = 0
		j.Replay(func(int64, Record) error { n++; return nil })
		if n != 3 {
			t.Fatalf("after append: %d records", n)
		}
		j.Close()
		os.WriteFile(path, b, 0o644)
	}
	// A flipped byte in the last entry fails its CRC and is dropped.
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 0xff
	os.WriteFile(path, b, 0o644)
	j, _ = OpenFileJournal(path)
	var n int
	j.Replay(func(int64, Record) error { n++; return nil })
	if n != 2 {
		t.Fatalf("corrupt tail: %d records", n)
	}
}

func TestApplyRejectsInconsistentRecords(t *testing.T) {
	img := NewImage("c")
	for _, rec := range []Record{
		{Type: RecordPartition, Partition: &PartitionRecord{TopicID: TopicID{1}, Index: 0}},
		{Type: RecordRemoveTopic, RemoveTopic: &RemoveTopicRecord{ID: TopicID{1}}},
		{Type: RecordConfig, Config: &ConfigRecord{Topic: "x", Name: "retention.ms"}},
		{Type: RecordTopic},
		{Type: 99},
	} {
		if _, err := Apply(img, 0, rec); err == nil {
			t.Errorf("record %+v applied to an empty image", rec)
		}
	}
	next, err := Apply(img, 0, Record{Type: RecordTopic, Topic: &TopicRecord{Name: "t", ID: TopicID{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Topic("t") != nil {
		t.Fatal("Apply mutated its input image")
	}
	if next.Topic("t") == nil {
		t.Fatal("topic missing from the new image")
	}
}

func strp(s string) *string { return &s }

func TestCreatePartitionsValidation(t *testing.T) {
	tc := newTestCluster(t, Defaults{NumPartitions: 1, ReplicationFactor: 1}, 1, 2, 3)
	tc.createTopic("t", nil, []int32{1, 2})
	for _, tt := range []struct {
		name string
		req  CreatePartitions
		want *kerr.Error
	}{
		{"unknown topic", CreatePartitions{Topic: "x", Count: 2}, kerr.UnknownTopicOrPartition},
		{"not larger", CreatePartitions{Topic: "t", Count: 1}, kerr.InvalidPartitions},
		{"over the limit", CreatePartitions{Topic: "t", Count: maxPartitionsPerTopic + 1}, kerr.InvalidPartitions},
		{"assignment count", CreatePartitions{Topic: "t", Count: 3, Assignment: [][]int32{{1, 2}}}, kerr.InvalidReplicaAssignment},
		{"assignment rf", CreatePartitions{Topic: "t", Count: 2, Assignment: [][]int32{{1}}}, kerr.InvalidReplicaAssignment},
		{"assignment unknown broker", CreatePartitions{Topic: "t", Count: 2, Assignment: [][]int32{{1, 9}}}, kerr.InvalidReplicaAssignment},
		{"assignment twice", CreatePartitions{Topic: "t", Count: 2, Assignment: [][]int32{{1, 1}}}, kerr.InvalidReplicaAssignment},
		{"assignment", CreatePartitions{Topic: "t", Count: 2, Assignment: [][]int32{{3, 1}}}, nil},
		{"placed", CreatePartitions{Topic: "t", Count: 5}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "create partitions", tc.c.CreatePartitions([]CreatePartitions{tt.req}, false)[0], tt.want)
		})
	}
	parts := tc.c.Image().Topic("t").Partitions
	if len(parts) != 5 || !slices.Equal(parts[1].Replicas, []int32{3, 1}) || parts[1].Leader != 3 {
		t.Fatalf("partitions %+v", parts)
	}
	for _, p := range parts[2:] {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Fatalf("placed partition %+v", p)
		}
	}
	// Not enough live brokers for the topic's replication factor.
	wantErr(t, "fence", tc.c.ReportDead(2, 0), nil)
	wantErr(t, "fence", tc.c.ReportDead(3, 0), nil)
	wantErr(t, "rf", tc.c.CreatePartitions([]CreatePartitions{{Topic: "t", Count: 6}}, false)[0], kerr.InvalidReplicationFactor)
	wantErr(t, "validate only", tc.c.CreatePartitions([]CreatePartitions{{Topic: "t", Count: 6, Assignment: [][]int32{{1, 2}}}}, true)[0], nil)
	if len(tc.c.Image().Topic("t").Partitions) != 5 {
		t.Fatal("validate-only added partitions")
	}
}

// failingJournal fails every Append with a storage error.
type failingJournal struct{ memJournal }

func (*failingJournal) Append([]Record) (int64, error) { return 0, errors.New("disk on fire") }

// TestJournalWithoutHook covers a Journal that does not apply (the wire
// package's in-memory fake): the controller applies after Append, and a
// failing Append is KAFKA_STORAGE_ERROR with the image unchanged.
func TestJournalWithoutHook(t *testing.T) {
	j := &memJournal{}
	c, err := NewController(j, 1, "c", Defaults{NumPartitions: 1, ReplicationFactor: 1}, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterBroker(BrokerRecord{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "create", c.CreateTopics([]CreateTopic{{Name: "t", NumPartitions: -1, ReplicationFactor: -1}}, false)[0], nil)
	if c.Image().Topic("t") == nil || c.Image().Offset != int64(len(j.recs)-1) || c.NodeID() != 1 {
		t.Fatalf("image %+v after %d records", c.Image(), len(j.recs))
	}
	c2, err := NewController(j, 1, "c", Defaults{}, rand.New(rand.NewSource(1)))
	if err != nil || !reflect.DeepEqual(c.Image(), c2.Image()) {
		t.Fatalf("replay differs: %v", err)
	}

	fj := &failingJournal{}
	c3, _ := NewController(fj, 1, "c", Defaults{NumPartitions: 1, ReplicationFactor: 1}, rand.New(rand.NewSource(1)))
	wantErr(t, "register", c3.RegisterBroker(BrokerRecord{ID: 1, Host: "h", Port: 1}), kerr.KafkaStorageError)
	if c3.Image().Offset != -1 {
		t.Fatal("a failed append changed the image")
	}
	// An invalid batch never reaches the journal.
	c.mu.Lock()
	err = c.commitLocked([]Record{{Type: RecordFenceBroker, BrokerRef: &BrokerRefRecord{ID: 42}}})
	c.mu.Unlock()
	wantErr(t, "invalid batch", err, kerr.UnknownServerError)
}
