package group

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetRecordRoundTrip writes every shape of commit record and reads
// it back with kmsg's own decoders (what Kafka's tools see) and with the
// Replayer (what a new coordinator sees).
func TestOffsetRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name               string
		group, topic       string
		partition          int32
		off                CommittedOffset
		wantValueVersion   int16
		wantKafkaExpire    int64 // ExpireTimestamp as kmsg reads it
		wantKafkaEpochRead int32 // LeaderEpoch as kmsg reads it
	}{
		{
			name: "plain", group: "g", topic: "t", partition: 0,
			off:              CommittedOffset{Offset: 42, LeaderEpoch: 7, Metadata: "m", CommitTimestampMs: 1000, ExpireTimestampMs: -1},
			wantValueVersion: 3, wantKafkaExpire: 0, wantKafkaEpochRead: 7,
		},
		{
			name: "no epoch, no metadata", group: "group-x", topic: "orders", partition: 1<<31 - 1,
			off:              CommittedOffset{Offset: 0, LeaderEpoch: -1, CommitTimestampMs: 0, ExpireTimestampMs: -1},
			wantValueVersion: 3, wantKafkaExpire: 0, wantKafkaEpochRead: -1,
		},
		{
			// An explicit expiry (OffsetCommit v2-v4) needs value
			// version 1, which has no leader epoch.
			name: "explicit expiry", group: "g", topic: "t", partition: 3,
			off:              CommittedOffset{Offset: 9, LeaderEpoch: -1, Metadata: "x", CommitTimestampMs: 5, ExpireTimestampMs: 86400005},
			wantValueVersion: 1, wantKafkaExpire: 86400005, wantKafkaEpochRead: -1,
		},
		{
			// Kafka reads any expire timestamp but -1 as one, even a
			// negative one: it must survive the round trip.
			name: "negative expiry", group: "g", topic: "t", partition: 0,
			off:              CommittedOffset{Offset: 1, LeaderEpoch: -1, CommitTimestampMs: 5, ExpireTimestampMs: -7},
			wantValueVersion: 1, wantKafkaExpire: -7, wantKafkaEpochRead: -1,
		},
		{
			name: "non-ASCII names and metadata", group: "gröup-😀", topic: "tópico", partition: 2,
			off:              CommittedOffset{Offset: 1 << 40, LeaderEpoch: 0, Metadata: strings.Repeat("é", 100), CommitTimestampMs: 1700000000000, ExpireTimestampMs: -1},
			wantValueVersion: 3, wantKafkaExpire: 0, wantKafkaEpochRead: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := offsetRecord(tc.group, tc.topic, tc.partition, tc.off)

			var k kmsg.OffsetCommitKey
			if err := k.ReadFrom(rec.Key); err != nil {
				t.Fatalf("kmsg reading the key: %v", err)
			}
			if k.Version != 1 || k.Group != tc.group || k.Topic != tc.topic || k.Partition != tc.partition {
				t.Fatalf("key = %+v", k)
			}
			var v kmsg.OffsetCommitValue
			if err := v.ReadFrom(rec.Value); err != nil {
				t.Fatalf("kmsg reading the value: %v", err)
			}
			if v.Version != tc.wantValueVersion || v.Offset != tc.off.Offset || v.Metadata != tc.off.Metadata ||
				v.CommitTimestamp != tc.off.CommitTimestampMs || v.ExpireTimestamp != tc.wantKafkaExpire {
				t.Fatalf("value = %+v, want version %d of %+v", v, tc.wantValueVersion, tc.off)
			}
			if v.Version >= 3 && v.LeaderEpoch != tc.wantKafkaEpochRead {
				t.Fatalf("leader epoch = %d, want %d", v.LeaderEpoch, tc.wantKafkaEpochRead)
			}
			// The encoding is kmsg's exactly (no trailing bytes).
			if want := v.AppendTo(nil); !bytes.Equal(want, rec.Value) {
				t.Fatalf("value bytes differ from kmsg's re-encoding:\n got %x\nwant %x", rec.Value, want)
			}

			var rp Replayer
			if err := rp.Add(rec.Key, rec.Value); err != nil {
				t.Fatal(err)
			}
			got := rp.Groups()[tc.group].Offsets[TopicPartition{tc.topic, tc.partition}]
			if got != tc.off {
				t.Fatalf("replayed %+v, want %+v", got, tc.off)
			}

			tomb := offsetTombstone(tc.group, tc.topic, tc.partition)
			if tomb.Value != nil || !bytes.Equal(tomb.Key, rec.Key) {
				t.Fatalf("tombstone %x/%v, want key %x and a nil value", tomb.Key, tomb.Value, rec.Key)
			}
		})
	}
}

// TestOffsetValueVersions replays commit values of every version Kafka
// ever wrote, encoded by kmsg.
func TestOffsetValueVersions(t *testing.T) {
	for version := int16(0); version <= 4; version++ {
		for _, keyVersion := range []int16{0, 1} {
			t.Run(fmt.Sprintf("key=v%d/value=v%d", keyVersion, version), func(t *testing.T) {
				k := kmsg.OffsetCommitKey{Version: keyVersion, Group: "g", Topic: "t", Partition: 5}
				v := kmsg.NewOffsetCommitValue()
				v.Version, v.Offset, v.LeaderEpoch, v.Metadata = version, 77, 4, "meta"
				v.CommitTimestamp, v.ExpireTimestamp = 123, 456
				var rp Replayer
				if err := rp.Add(k.AppendTo(nil), v.AppendTo(nil)); err != nil {
					t.Fatal(err)
				}
				want := CommittedOffset{Offset: 77, LeaderEpoch: -1, Metadata: "meta", CommitTimestampMs: 123, ExpireTimestampMs: -1}
				if version >= 3 {
					want.LeaderEpoch = 4
				}
				if version == 1 {
					want.ExpireTimestampMs = 456
				}
				if got := rp.Groups()["g"].Offsets[TopicPartition{"t", 5}]; got != want {
					t.Fatalf("got %+v, want %+v", got, want)
				}
			})
		}
	}
}

// TestGroupRecordRoundTrip writes group metadata, with and without
// members, and reads it back with kmsg and the Replayer.
func TestGroupRecordRoundTrip(t *testing.T) {
	member := func(id string, instance *string, sub, assign string) kmsg.GroupMetadataValueMember {
		m := kmsg.NewGroupMetadataValueMember()
		m.MemberID, m.InstanceID, m.ClientID, m.ClientHost = id, instance, "client-"+id, "/10.0.0.1"
		m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = 30000, 10000
		m.Subscription, m.Assignment = []byte(sub), []byte(assign)
		return m
	}
	empty := kmsg.NewGroupMetadataValue()
	empty.ProtocolType, empty.Generation, empty.CurrentStateTimestamp = "consumer", 4, 1234

	stable := kmsg.NewGroupMetadataValue()
	stable.ProtocolType, stable.Generation, stable.CurrentStateTimestamp = "consumer", 9, 99
	stable.Protocol, stable.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("a")
	stable.Members = []kmsg.GroupMetadataValueMember{
		member("a", nil, "sub-a", "assign-a"),
		member("b", kmsg.StringPtr("instance-b"), "sub-b", ""),
	}

	simple := kmsg.NewGroupMetadataValue() // protocol type "" (Kafka's None)
	simple.CurrentStateTimestamp = -1

	for _, tc := range []struct {
		name string
		v    kmsg.GroupMetadataValue
	}{{"empty", empty}, {"stable with members", stable}, {"no protocol type", simple}} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.v
			rec := groupRecord("grp", &in)

			var k kmsg.GroupMetadataKey
			if err := k.ReadFrom(rec.Key); err != nil || k.Version != 2 || k.Group != "grp" {
				t.Fatalf("key %+v: %v", k, err)
			}
			var v kmsg.GroupMetadataValue
			if err := v.ReadFrom(rec.Value); err != nil {
				t.Fatalf("kmsg reading the value: %v", err)
			}
			if v.Version != 3 {
				t.Fatalf("value version %d, want 3", v.Version)
			}
			want := tc.v
			want.Version = 3
			if d := diffGroupValues(&v, &want); d != "" {
				t.Fatalf("kmsg read back: %s", d)
			}

			var rp Replayer
			if err := rp.Add(rec.Key, rec.Value); err != nil {
				t.Fatal(err)
			}
			l := rp.Groups()["grp"]
			if l == nil || l.Group == nil {
				t.Fatalf("replayed nothing: %+v", rp.Groups())
			}
			if d := diffGroupValues(l.Group, &want); d != "" {
				t.Fatalf("replayed: %s", d)
			}

			tomb := groupTombstone("grp")
			if tomb.Value != nil || !bytes.Equal(tomb.Key, rec.Key) {
				t.Fatalf("tombstone %x/%v, want key %x and a nil value", tomb.Key, tomb.Value, rec.Key)
			}
			if err := rp.Add(tomb.Key, tomb.Value); err != nil {
				t.Fatal(err)
			}
			if len(rp.Groups()) != 0 {
				t.Fatalf("a tombstone left %+v", rp.Groups())
			}
		})
	}
}

// TestGroupValueVersions replays group metadata of every version, as
// kmsg encodes it: fields a version lacks come back as Kafka's defaults.
func TestGroupValueVersions(t *testing.T) {
	for version := int16(0); version <= 4; version++ {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			v := kmsg.NewGroupMetadataValue()
			v.Version, v.ProtocolType, v.Generation = version, "consumer", 3
			v.Protocol, v.Leader, v.CurrentStateTimestamp = kmsg.StringPtr("range"), kmsg.StringPtr("m"), 500
			m := kmsg.NewGroupMetadataValueMember()
			m.MemberID, m.InstanceID, m.ClientID, m.ClientHost = "m", kmsg.StringPtr("i"), "c", "h"
			m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = 20000, 7000
			m.Subscription, m.Assignment = subscription("t"), []byte("A")
			v.Members = []kmsg.GroupMetadataValueMember{m}
			key := appendGroupKey(nil, "g")

			var rp Replayer
			if err := rp.Add(key, v.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
			got := rp.Groups()["g"].Group
			want := v
			if version < 1 {
				// One timeout for both, as Kafka's loader reads v0.
				want.Members[0].RebalanceTimeoutMillis = want.Members[0].SessionTimeoutMillis
			}
			if version < 2 {
				want.CurrentStateTimestamp = -1
			}
			if version < 3 {
				want.Members[0].InstanceID = nil
			}
			if d := diffGroupValues(got, &want); d != "" {
				t.Fatal(d)
			}
			// A core restores the member; v0 had one timeout for both.
			c := New("g", DefaultSettings(), rp.Groups()["g"], 1000)
			if c.Summary().State != "Stable" || len(c.classic.members) != 1 {
				t.Fatalf("restored %+v with %d members", c.Summary(), len(c.classic.members))
			}
			rt := c.classic.members[0].rebalanceTimeoutMs
			if wantRT := map[bool]int32{true: 7000, false: 20000}[version == 0]; rt != wantRT {
				t.Fatalf("rebalance timeout %d, want %d", rt, wantRT)
			}
		})
	}
}

// diffGroupValues compares two group metadata values field by field,
// nil and empty byte slices alike; "" when equal.
func diffGroupValues(got, want *kmsg.GroupMetadataValue) string {
	g, w := formatGroupValue(got), formatGroupValue(want)
	if got.Version != want.Version {
		return fmt.Sprintf("version %d, want %d", got.Version, want.Version)
	}
	if g != w {
		return fmt.Sprintf("\n got %s\nwant %s", g, w)
	}
	for i := range got.Members {
		gm, wm := &got.Members[i], &want.Members[i]
		if !bytes.Equal(gm.Subscription, wm.Subscription) || !bytes.Equal(gm.Assignment, wm.Assignment) {
			return fmt.Sprintf("member %d bytes differ", i)
		}
	}
	return ""
}

// javaHashCode is Java's String.hashCode written independently of the
// package's: over the UTF-16 code units of the string, h = 31*h + c in
// int32 arithmetic.
func javaHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = h*31 + int32(u)
	}
	return h
}

// kafkaPartitionFor is Kafka's Utils.abs(groupId.hashCode) % n, with
// Utils.abs(Integer.MIN_VALUE) == 0.
func kafkaPartitionFor(s string, n int32) int32 {
	h := javaHashCode(s)
	if h == -1<<31 {
		return 0
	}
	if h < 0 {
		h = -h
	}
	return h % n
}

func TestPartitionFor(t *testing.T) {
	// Values Java itself computes.
	for _, tc := range []struct {
		s    string
		hash int32
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"Aa", 2112}, {"BB", 2112}, // Java's classic collision
		{"polygenelubricants", -1 << 31}, // hashCode == Integer.MIN_VALUE
		{"é", 0xe9},
		{"😀", 31*0xd83d + 0xde00}, // one rune, two UTF-16 code units
	} {
		if got := javaStringHash(tc.s); got != tc.hash {
			t.Errorf("javaStringHash(%q) = %d, want %d", tc.s, got, tc.hash)
		}
		if got := javaHashCode(tc.s); got != tc.hash {
			t.Errorf("test's javaHashCode(%q) = %d, want %d", tc.s, got, tc.hash)
		}
	}

	// Utils.abs: MIN_VALUE maps to partition 0, whatever the count.
	for _, n := range []int32{1, 3, 50, 7919} {
		if got := PartitionFor("polygenelubricants", n); got != 0 {
			t.Errorf("PartitionFor(MIN_VALUE hash, %d) = %d, want 0", n, got)
		}
	}
	if got := PartitionFor("hello", 50); got != 99162322%50 {
		t.Errorf(`PartitionFor("hello", 50) = %d, want %d`, got, 99162322%50)
	}

	names := []string{
		"test-group", "console-consumer-12345", "my-group", "orders-processor",
		"Ünïcödé-grüppe", "группа", "グループ", "组-🚀-𝄞", "\u0000", "tab\tand\nnewline",
		strings.Repeat("x", 1000), strings.Repeat("😀", 300),
	}
	for _, s := range names {
		for _, n := range []int32{1, 2, 3, 10, 50, 64, 1 << 30} {
			want := kafkaPartitionFor(s, n)
			got := PartitionFor(s, n)
			if got != want {
				t.Errorf("PartitionFor(%q, %d) = %d, want %d", s, n, got, want)
			}
			if got < 0 || got >= n {
				t.Errorf("PartitionFor(%q, %d) = %d out of range", s, n, got)
			}
		}
	}
	negatives := 0
	for _, s := range names {
		if javaHashCode(s) < 0 {
			negatives++
		}
	}
	if negatives == 0 {
		t.Fatal("no name with a negative hash: the abs path is untested")
	}
	for _, n := range []int32{0, -1} {
		if got := PartitionFor("g", n); got != 0 {
			t.Errorf("PartitionFor(g, %d) = %d, want 0", n, got)
		}
	}
}

// rec builds the records replay tests feed.
func commitRec(group, topic string, p int32, offset int64) Record {
	return offsetRecord(group, topic, p, CommittedOffset{Offset: offset, LeaderEpoch: -1, CommitTimestampMs: offset, ExpireTimestampMs: -1})
}

func groupRec(group string, gen int32) Record {
	v := kmsg.NewGroupMetadataValue()
	v.ProtocolType, v.Generation = "consumer", gen
	return groupRecord(group, &v)
}

func TestReplayer(t *testing.T) {
	otherKey := func(version int16) []byte {
		// A KIP-848 (or transaction, share, streams) record key: its
		// version and anything after.
		return binary.BigEndian.AppendUint16(nil, uint16(version))
	}
	tomb := func(r Record) Record { return Record{Key: r.Key} }

	type want struct {
		offsets map[string]map[TopicPartition]int64
		gens    map[string]int32 // group metadata generation, absent: none
	}
	for _, tc := range []struct {
		name    string
		recs    []Record
		wantErr []bool // per record; nil: none
		want    want
	}{
		{
			name: "later commits override earlier ones",
			recs: []Record{commitRec("g", "t", 0, 1), commitRec("g", "t", 1, 5), commitRec("g", "t", 0, 2), commitRec("h", "t", 0, 9)},
			want: want{offsets: map[string]map[TopicPartition]int64{
				"g": {{"t", 0}: 2, {"t", 1}: 5},
				"h": {{"t", 0}: 9},
			}},
		},
		{
			name: "tombstones delete, later commits revive",
			recs: []Record{
				commitRec("g", "t", 0, 1), commitRec("g", "u", 0, 3),
				tomb(commitRec("g", "t", 0, 0)), tomb(commitRec("x", "t", 0, 0)),
				commitRec("g", "u", 0, 4), tomb(commitRec("g", "u", 0, 0)), commitRec("g", "u", 0, 6),
			},
			want: want{offsets: map[string]map[TopicPartition]int64{"g": {{"u", 0}: 6}}},
		},
		{
			name: "a group whose last record is tombstoned is gone",
			recs: []Record{commitRec("g", "t", 0, 1), groupRec("g", 3), tomb(commitRec("g", "t", 0, 0)), tomb(groupRec("g", 0))},
			want: want{},
		},
		{
			name: "group metadata: the latest wins, its tombstone keeps the offsets",
			recs: []Record{groupRec("g", 1), commitRec("g", "t", 0, 8), groupRec("g", 2), groupRec("h", 7), tomb(groupRec("h", 0))},
			want: want{
				offsets: map[string]map[TopicPartition]int64{"g": {{"t", 0}: 8}},
				gens:    map[string]int32{"g": 2},
			},
		},
		{
			name: "key versions 3 and up are skipped",
			recs: []Record{
				commitRec("g", "t", 0, 1),
				{Key: append(otherKey(3), "whatever"...), Value: []byte("x")},
				{Key: otherKey(4), Value: nil},
				{Key: otherKey(5), Value: []byte{0, 0}},
				{Key: otherKey(11), Value: []byte{1}},
				{Key: otherKey(-1), Value: []byte{1}},
			},
			want: want{offsets: map[string]map[TopicPartition]int64{"g": {{"t", 0}: 1}}},
		},
		{
			name: "undecodable records are errors that change nothing",
			recs: []Record{
				commitRec("g", "t", 0, 1),
				{Key: []byte{0}, Value: []byte{0, 3}}, // key too short
				{Key: commitRec("g", "t", 0, 0).Key[:5], Value: commitRec("g", "t", 0, 2).Value}, // truncated key
				{Key: commitRec("g", "t", 0, 0).Key, Value: []byte{0}},                           // value too short
				{Key: commitRec("g", "t", 0, 0).Key, Value: []byte{0, 9, 0, 0}},                  // unknown value version
				{Key: commitRec("g", "t", 0, 0).Key, Value: commitRec("g", "t", 0, 3).Value[:9]}, // truncated value
				{Key: groupRec("g", 1).Key, Value: []byte{0, 3, 0xff}},                           // bad group value
				{Key: groupRec("g", 1).Key, Value: []byte{0x7f, 0}},                              // unknown group value version
				{Key: groupRec("g", 1).Key[:3], Value: nil},                                      // truncated group key
				{Key: commitRec("g", "t", 0, 0).Key, Value: []byte{}},                            // empty, not null
			},
			wantErr: []bool{false, true, true, true, true, true, true, true, true, true},
			want:    want{offsets: map[string]map[TopicPartition]int64{"g": {{"t", 0}: 1}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rp Replayer
			for i, r := range tc.recs {
				err := rp.Add(r.Key, r.Value)
				wantErr := tc.wantErr != nil && tc.wantErr[i]
				if (err != nil) != wantErr {
					t.Fatalf("record %d: error %v, want error %v", i, err, wantErr)
				}
			}
			groups := rp.Groups()
			var ids []string
			for id := range tc.want.offsets {
				ids = append(ids, id)
			}
			for id := range tc.want.gens {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			if got := slices.Sorted(maps.Keys(groups)); !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
				t.Fatalf("groups %v, want %v", got, ids)
			}
			for id, l := range groups {
				got := map[TopicPartition]int64{}
				for tp, o := range l.Offsets {
					got[tp] = o.Offset
				}
				if want := tc.want.offsets[id]; !maps.Equal(got, want) && len(got)+len(want) > 0 {
					t.Errorf("group %s offsets %v, want %v", id, got, want)
				}
				wantGen, hasGroup := tc.want.gens[id]
				if (l.Group != nil) != hasGroup || (hasGroup && l.Group.Generation != wantGen) {
					t.Errorf("group %s metadata %+v, want generation %d (present %v)", id, l.Group, wantGen, hasGroup)
				}
			}
		})
	}

	var zero Replayer
	if g := zero.Groups(); g == nil || len(g) != 0 {
		t.Fatalf("zero Replayer groups %v", g)
	}
}

// encodeLoaded writes a replayed group back as records, sorted so that
// equal states encode equally.
func encodeLoaded(id string, l *Loaded) [][]byte {
	var out [][]byte
	for tp, o := range l.Offsets {
		r := offsetRecord(id, tp.Topic, tp.Partition, o)
		out = append(out, append(append([]byte{}, r.Key...), r.Value...))
	}
	slices.SortFunc(out, bytes.Compare)
	if l.Group != nil {
		v := *l.Group // groupRecord sets the version
		r := groupRecord(id, &v)
		out = append(out, append(append([]byte{}, r.Key...), r.Value...))
	}
	return out
}

func encodeAll(groups map[string]*Loaded) [][]byte {
	var out [][]byte
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, []byte("group:"+id))
		out = append(out, encodeLoaded(id, groups[id])...)
	}
	return out
}

// FuzzReplay feeds arbitrary records to a Replayer: it must never panic;
// what it rebuilt must encode and replay back to the same state; and a
// core must start from it and answer without panicking.
func FuzzReplay(f *testing.F) {
	seed := func(rs ...Record) {
		var b []byte
		for _, r := range rs {
			b = appendFuzzRecord(b, r)
		}
		f.Add(b)
	}
	stable := kmsg.NewGroupMetadataValue()
	stable.ProtocolType, stable.Generation, stable.Protocol, stable.Leader = "consumer", 2, kmsg.StringPtr("range"), kmsg.StringPtr("a")
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.InstanceID, m.SessionTimeoutMillis, m.Subscription = "a", kmsg.StringPtr("i"), 10000, subscription("t")
	stable.Members = []kmsg.GroupMetadataValueMember{m, m}
	seed(commitRec("g", "t", 0, 1), groupRecord("g", &stable))
	seed(commitRec("g", "t", 0, 1), Record{Key: commitRec("g", "t", 0, 1).Key})
	v1 := kmsg.NewOffsetCommitValue()
	v1.Version, v1.ExpireTimestamp = 1, -7
	seed(Record{Key: commitRec("g", "t", 1, 0).Key, Value: v1.AppendTo(nil)})
	seed(Record{Key: []byte{0, 2, 0, 1, 'g'}, Value: []byte{0, 4, 0}})
	seed(Record{Key: []byte{0, 9}, Value: []byte{1, 2, 3}})

	f.Fuzz(fuzzReplayBody)
}

// fuzzReplayBody is FuzzReplay's property.
func fuzzReplayBody(t *testing.T, data []byte) {
	var rp Replayer
	for len(data) > 0 {
		var r Record
		r, data = nextFuzzRecord(data)
		_ = rp.Add(r.Key, r.Value)
	}
	groups := rp.Groups()
	first := encodeAll(groups)

	var again Replayer
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		l := groups[id]
		for tp, o := range l.Offsets {
			r := offsetRecord(id, tp.Topic, tp.Partition, o)
			if err := again.Add(r.Key, r.Value); err != nil {
				t.Fatalf("re-encoded commit of %q does not replay: %v", id, err)
			}
		}
		if l.Group != nil {
			v := *l.Group
			r := groupRecord(id, &v)
			if err := again.Add(r.Key, r.Value); err != nil {
				t.Fatalf("re-encoded group %q does not replay: %v", id, err)
			}
		}
	}
	regrouped := again.Groups()
	for id, l := range groups {
		if !maps.Equal(l.Offsets, regrouped[id].Offsets) {
			t.Fatalf("group %q offsets %v replay as %v", id, l.Offsets, regrouped[id].Offsets)
		}
	}
	if second := encodeAll(regrouped); !slices.EqualFunc(first, second, bytes.Equal) {
		t.Fatalf("state changed through re-encoding:\n%q\n%q", first, second)
	}

	for id, l := range groups {
		c := New(id, DefaultSettings(), l, 1000)
		c.Step(Request{Tag: 1, NowMs: 1000, Req: &DescribeGroup{Version: 5}})
		c.Step(Request{Tag: 2, NowMs: 1000, Req: &FetchOffsets{Version: 8, MemberEpoch: -1}})
		c.Step(Tick{NowMs: 1 << 50})
		if rd := c.Ready(); len(rd.Replies) != 2 {
			t.Fatalf("group %q: %d replies, want 2", id, len(rd.Replies))
		}
	}
}

// Fuzz input framing: [keyLen u8][key][valueLen u8, 0xff = null][value].
func appendFuzzRecord(b []byte, r Record) []byte {
	b = append(b, byte(min(len(r.Key), 254)))
	b = append(b, r.Key[:min(len(r.Key), 254)]...)
	if r.Value == nil {
		return append(b, 0xff)
	}
	b = append(b, byte(min(len(r.Value), 254)))
	return append(b, r.Value[:min(len(r.Value), 254)]...)
}

func nextFuzzRecord(b []byte) (Record, []byte) {
	take := func() []byte {
		if len(b) == 0 {
			return nil
		}
		n := int(b[0])
		b = b[1:]
		if n == 0xff {
			return nil
		}
		n = min(n, len(b))
		out := b[:n:n]
		b = b[n:]
		if out == nil {
			out = []byte{}
		}
		return out
	}
	var r Record
	r.Key = take()
	r.Value = take()
	return r, b
}
