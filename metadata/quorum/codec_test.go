package quorum

import (
	"errors"
	"testing"

	"github.com/troupe-io/troupe/metadata"
	pb "go.etcd.io/raft/v3/raftpb"
)

// TestProposalsFitMetadataBatches: the quorum carries any batch the
// metadata package can encode.
func TestProposalsFitMetadataBatches(t *testing.T) {
	if MaxProposalBytes < metadata.MaxBatchBytes {
		t.Errorf("MaxProposalBytes %d < metadata.MaxBatchBytes %d", MaxProposalBytes, metadata.MaxBatchBytes)
	}
}

func TestEntryHeader(t *testing.T) {
	data := encodeEntry(300, []byte("batch"))
	seq, payload, err := decodeEntry(data)
	if err != nil || seq != 300 || string(payload) != "batch" {
		t.Fatalf("decodeEntry = %d, %q, %v", seq, payload, err)
	}
	for _, bad := range [][]byte{nil, {2, 1}, {entryFormat}, {entryFormat, 0}, {entryFormat, 0x80}} {
		if _, _, err := decodeEntry(bad); !errors.Is(err, ErrCorruptEntry) {
			t.Errorf("decodeEntry(%x): %v, want ErrCorruptEntry", bad, err)
		}
	}
	// Entries without a payload: a new leader's empty entry, a
	// configuration change.
	for _, e := range []*pb.Entry{
		{Type: pb.EntryNormal.Enum()},
		{Type: pb.EntryConfChange.Enum(), Data: []byte{1, 2}},
	} {
		if p, err := entryPayload(e); p != nil || err != nil {
			t.Errorf("entryPayload(%v) = %q, %v", e, p, err)
		}
	}
}

func TestNodeIDMapping(t *testing.T) {
	for _, id := range []int32{0, 1, 2147483647} {
		if got := nodeID(raftID(id)); got != id {
			t.Errorf("nodeID(raftID(%d)) = %d", id, got)
		}
	}
	if nodeID(0) != -1 || nodeID(1<<40) != -1 {
		t.Error("raft's None or an out-of-range id did not map to -1")
	}
}
