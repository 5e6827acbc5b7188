package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The __consumer_offsets record format, as Kafka's coordinator writes it.
//
// A key starts with its int16 version, which also says what the record
// is: 0 and 1 are offset commits (OffsetCommitKey), 2 is classic group
// metadata (GroupMetadataKey). Versions 3 and up are KIP-848, share and
// streams group records; this package does not restore those groups, so
// replay skips them.
const (
	offsetCommitKeyVersion  = 1 // what Kafka writes for commits
	groupMetadataKeyVersion = 2

	// offsetCommitValueVersion is Kafka's current commit value (leader
	// epoch, no expire timestamp); a commit carrying an explicit expire
	// time (OffsetCommit v2-v4 retention time) is written as version 1,
	// the only one with that field, exactly as Kafka does.
	offsetCommitValueVersion           = 3
	offsetCommitValueVersionWithExpiry = 1
	maxOffsetCommitValueVersion        = 4

	groupMetadataValueVersion    = 3
	maxGroupMetadataValueVersion = 4
)

// errShortKey is the error of a record key too short to hold a version.
var errShortKey = errors.New("group: offsets topic key shorter than its version")

// PartitionFor is the partition of the offsets topic that holds groupID,
// computed exactly as Kafka does (Utils.abs(groupId.hashCode()) %
// numPartitions) so that Troupe and Kafka agree on every group's
// coordinator partition. numPartitions <= 0 yields 0.
func PartitionFor(groupID string, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return 0
	}
	h := javaStringHash(groupID)
	// Kafka's Utils.abs maps MinInt32, whose absolute value overflows,
	// to 0.
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % numPartitions
}

// javaStringHash is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over the string's UTF-16 code units, in wrapping int32 arithmetic.
// Bytes that are not valid UTF-8 count as one U+FFFD each, as Go
// decodes them; Java's decoder may fold a malformed sequence into a
// single U+FFFD, so a group id that is not valid UTF-8 (which no Java
// client can send) may map to another partition than Kafka's.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + int32(hi)
			h = 31*h + int32(lo)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is one committed offset as the offsets topic keeps it.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32 // -1 when the commit carried none
	Metadata    string
	// CommitTimestampMs is when the coordinator accepted the commit
	// (or the client's v1 commit timestamp).
	CommitTimestampMs int64
	// ExpireTimestampMs is an explicit expiry (OffsetCommit v2-v4
	// retention time), or noExpireTimestamp (-1) for the broker's
	// retention. Any other value, even a negative one, is an expiry
	// time, as Kafka reads the field.
	ExpireTimestampMs int64
}

// noExpireTimestamp is Kafka's DEFAULT_EXPIRE_TIMESTAMP: the commit
// expires by the broker's offsets.retention.minutes.
const noExpireTimestamp = -1

// Loaded is what the offsets topic holds for one group: its committed
// offsets and its last classic group metadata (nil when there is none or
// it was deleted).
type Loaded struct {
	Offsets map[TopicPartition]CommittedOffset
	Group   *kmsg.GroupMetadataValue
}

func (l *Loaded) empty() bool { return len(l.Offsets) == 0 && l.Group == nil }

// Replayer rebuilds groups from the records of an offsets topic
// partition fed to it in log order. Later records override earlier ones
// and tombstones delete, so the result is what a compacted partition
// would keep. The zero value is ready to use.
type Replayer struct {
	groups map[string]*Loaded
}

// Add applies one record. Record types this package does not restore
// (KIP-848, share and streams groups: key versions 3 and up) are
// skipped; a record that claims a known type but does not decode is an
// error, and leaves the replayed state as it was.
func (r *Replayer) Add(key, value []byte) error {
	if len(key) < 2 {
		return errShortKey
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: decoding offset commit key: %w", err)
		}
		if value == nil {
			if l := r.groups[k.Group]; l != nil {
				delete(l.Offsets, TopicPartition{k.Topic, k.Partition})
				r.dropIfEmpty(k.Group, l)
			}
			return nil
		}
		o, err := decodeOffsetValue(value)
		if err != nil {
			return fmt.Errorf("group: offset commit of group %q %s/%d: %w", k.Group, k.Topic, k.Partition, err)
		}
		l := r.group(k.Group)
		if l.Offsets == nil {
			l.Offsets = make(map[TopicPartition]CommittedOffset)
		}
		l.Offsets[TopicPartition{k.Topic, k.Partition}] = o
		return nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: decoding group metadata key: %w", err)
		}
		if value == nil {
			if l := r.groups[k.Group]; l != nil {
				l.Group = nil
				r.dropIfEmpty(k.Group, l)
			}
			return nil
		}
		g, err := decodeGroupValue(value)
		if err != nil {
			return fmt.Errorf("group: metadata of group %q: %w", k.Group, err)
		}
		r.group(k.Group).Group = g
		return nil
	default:
		return nil // not a record type this package restores
	}
}

// Groups returns the replayed groups by id. The map and its values
// belong to the caller afterwards; the Replayer must not be used again.
func (r *Replayer) Groups() map[string]*Loaded {
	if r.groups == nil {
		return map[string]*Loaded{}
	}
	return r.groups
}

func (r *Replayer) group(id string) *Loaded {
	if r.groups == nil {
		r.groups = make(map[string]*Loaded)
	}
	l := r.groups[id]
	if l == nil {
		l = &Loaded{}
		r.groups[id] = l
	}
	return l
}

func (r *Replayer) dropIfEmpty(id string, l *Loaded) {
	if l.empty() {
		delete(r.groups, id)
	}
}

func decodeOffsetValue(b []byte) (CommittedOffset, error) {
	if len(b) < 2 {
		return CommittedOffset{}, errors.New("value shorter than its version")
	}
	if v := int16(binary.BigEndian.Uint16(b)); v < 0 || v > maxOffsetCommitValueVersion {
		return CommittedOffset{}, fmt.Errorf("unknown offset commit value version %d", v)
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(b); err != nil {
		return CommittedOffset{}, fmt.Errorf("decoding offset commit value: %w", err)
	}
	o := CommittedOffset{
		Offset:            v.Offset,
		LeaderEpoch:       -1,
		Metadata:          v.Metadata,
		CommitTimestampMs: v.CommitTimestamp,
		ExpireTimestampMs: noExpireTimestamp,
	}
	if v.Version >= 3 {
		o.LeaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.ExpireTimestampMs = v.ExpireTimestamp // -1 (none) is Kafka's default
	}
	return o, nil
}

func decodeGroupValue(b []byte) (*kmsg.GroupMetadataValue, error) {
	if len(b) < 2 {
		return nil, errors.New("value shorter than its version")
	}
	if v := int16(binary.BigEndian.Uint16(b)); v < 0 || v > maxGroupMetadataValueVersion {
		return nil, fmt.Errorf("unknown group metadata value version %d", v)
	}
	g := new(kmsg.GroupMetadataValue)
	if err := g.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("decoding group metadata value: %w", err)
	}
	if g.Version < 2 {
		g.CurrentStateTimestamp = -1 // the field came with version 2
	}
	if g.Version == 0 {
		// Version 0 had one timeout for both, as Kafka's loader reads it.
		for i := range g.Members {
			g.Members[i].RebalanceTimeoutMillis = g.Members[i].SessionTimeoutMillis
		}
	}
	return g, nil
}

// appendOffsetKey appends the key of group's commit for topic/partition.
func appendOffsetKey(dst []byte, group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(dst)
}

// appendOffsetValue appends the value of a commit.
func appendOffsetValue(dst []byte, o CommittedOffset) []byte {
	v := kmsg.OffsetCommitValue{
		Version:         offsetCommitValueVersion,
		Offset:          o.Offset,
		LeaderEpoch:     o.LeaderEpoch,
		Metadata:        o.Metadata,
		CommitTimestamp: o.CommitTimestampMs,
	}
	if o.ExpireTimestampMs != noExpireTimestamp {
		v.Version = offsetCommitValueVersionWithExpiry
		v.ExpireTimestamp = o.ExpireTimestampMs
	}
	return v.AppendTo(dst)
}

// appendGroupKey appends the key of group's metadata record.
func appendGroupKey(dst []byte, group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: group}
	return k.AppendTo(dst)
}

// offsetRecord is the record of one commit; the key and value share one
// allocation.
func offsetRecord(group, topic string, partition int32, o CommittedOffset) Record {
	buf := make([]byte, 0, 2+2+len(group)+2+len(topic)+4+2+8+4+2+len(o.Metadata)+8+8)
	buf = appendOffsetKey(buf, group, topic, partition)
	n := len(buf)
	buf = appendOffsetValue(buf, o)
	return Record{Key: buf[:n:n], Value: buf[n:]}
}

// offsetTombstone is the record deleting one commit.
func offsetTombstone(group, topic string, partition int32) Record {
	return Record{Key: appendOffsetKey(make([]byte, 0, 2+2+len(group)+2+len(topic)+4), group, topic, partition)}
}

// groupRecord is the record of a classic group's metadata.
func groupRecord(group string, v *kmsg.GroupMetadataValue) Record {
	v.Version = groupMetadataValueVersion
	key := appendGroupKey(make([]byte, 0, 4+len(group)), group)
	return Record{Key: key, Value: v.AppendTo(nil)}
}

// groupTombstone is the record deleting a group's metadata.
func groupTombstone(group string) Record {
	return Record{Key: appendGroupKey(make([]byte, 0, 4+len(group)), group)}
}
