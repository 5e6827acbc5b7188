package quorum

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Proposal entries carry a small header in front of the caller's payload:
//
//	byte 0       entryFormat (1)
//	uvarint      the proposal's sequence number (ProposalID.Seq)
//	rest         the payload (a record batch, metadata.EncodeBatch)
//
// The sequence number is how a leader recognises its own proposals among
// the committed entries: only the leader of term T appends entries of term
// T, and it numbers them in the order it proposes them, so (Term, Seq)
// names one proposal in the whole cluster and forever. raft does not tell
// a proposer which index its entry got, so this is the only reliable way
// to answer a proposal with its index.
//
// The other entries in the log carry no header: the empty entry a new
// leader appends (EntryNormal, no data) and the bootstrap configuration
// (EntryConfChange).
const entryFormat byte = 1

// MaxProposalBytes bounds one proposal's payload: the largest metadata
// batch (metadata.MaxBatchBytes; a test keeps the two in step). raft
// sends an entry above MaxSizePerMsg alone in one message, so the
// transport must carry messages this large.
const MaxProposalBytes = 64 << 20

// maxEntryHeader is the largest header: the format byte and a uvarint.
const maxEntryHeader = 1 + binary.MaxVarintLen64

// encodeEntry returns a fresh entry data: header then payload.
func encodeEntry(seq uint64, payload []byte) []byte {
	b := make([]byte, 0, maxEntryHeader+len(payload))
	b = append(b, entryFormat)
	b = binary.AppendUvarint(b, seq)
	return append(b, payload...)
}

// decodeEntry splits proposal entry data into its sequence number and
// payload (a sub-slice of data, not a copy).
func decodeEntry(data []byte) (seq uint64, payload []byte, err error) {
	if len(data) == 0 || data[0] != entryFormat {
		return 0, nil, fmt.Errorf("%w: unknown entry format", ErrCorruptEntry)
	}
	seq, n := binary.Uvarint(data[1:])
	if n <= 0 || seq == 0 {
		return 0, nil, fmt.Errorf("%w: bad proposal sequence number", ErrCorruptEntry)
	}
	return seq, data[1+n:], nil
}

// entryPayload returns the payload of a committed entry: the batch of a
// proposal, nil for the entries that carry none (a new leader's empty
// entry, a configuration change).
func entryPayload(e *pb.Entry) ([]byte, error) {
	if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
		return nil, nil
	}
	_, payload, err := decodeEntry(e.GetData())
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
	}
	return payload, nil
}

// Kafka node ids start at 0, but raft reserves id 0 for "none": a node's
// raft id is its node id plus one.
func raftID(node int32) uint64 { return uint64(node) + 1 }

// nodeID maps a raft id back to a node id; raft's None (0) and ids out of
// range become -1.
func nodeID(id uint64) int32 {
	if id == 0 || id-1 > math.MaxInt32 {
		return -1
	}
	return int32(id - 1)
}
