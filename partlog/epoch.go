package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
)

// The leader-epoch history of a log is Kafka's leader-epoch checkpoint:
// for every leader epoch that wrote to the log, the first offset written
// in it. Replication asks it where two replicas' logs diverge
// (OffsetForLeaderEpoch) and truncates a returning replica by it.
//
// It is derived from the batches themselves (each carries the epoch its
// leader stamped in PartitionLeaderEpoch), so it can always be rebuilt
// from the segments. Invariant, kept by Append, Truncate, moveStart and
// recovery: the entries are exactly what the headers of the batches in
// [StartOffset, EndOffset) imply, walking them in offset order and
// adding (epoch, max(baseOffset, StartOffset)) whenever a batch's epoch
// is non-negative and above the last entry's. Hence epochs and start
// offsets strictly ascend and StartOffset <= entry start < EndOffset.
//
// That differs from Kafka in one corner: when every record is deleted
// (StartOffset == EndOffset) Kafka's in-memory cache keeps the last epoch
// at the end offset until restart; here the history is empty.

// EpochEntry is one step of a log's leader-epoch history: StartOffset is
// the first offset in the log written under leader epoch Epoch.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// ErrEpochRegression is returned (wrapped) by Append for a batch whose
// PartitionLeaderEpoch is below the log's latest epoch: leaders only ever
// move forwards, so such a batch is a caller bug, and storing it would
// make the epoch history lie.
var ErrEpochRegression = errors.New("partlog: leader epoch below the log's latest")

// noEpoch is a batch's PartitionLeaderEpoch when no leader stamped it
// (Kafka's RecordBatch.NO_PARTITION_LEADER_EPOCH), and the answer of
// EndOffsetForEpoch when it has none (UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET).
const noEpoch = -1

// EpochEntries returns the log's leader-epoch history, ascending: one
// entry per leader epoch that has records in the log, with the first
// offset it wrote (the log start offset for the epoch in force there).
// Safe from any goroutine; the slice is the caller's.
func (l *Log) EpochEntries() []EpochEntry {
	_, h := l.epochView()
	if len(h) == 0 {
		return nil
	}
	return append([]EpochEntry(nil), h...)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor does:
//
//   - epoch is the latest epoch in the log: (epoch, EndOffset);
//   - otherwise, if some epoch above it exists: the largest epoch at or
//     below the requested one and the start offset of the first epoch
//     above it, or, if the requested epoch is below every entry (its
//     records were deleted, or it never wrote), the requested epoch
//     itself and the first entry's start offset;
//   - epoch -1 (undefined), an empty history, or an epoch above the
//     latest: (-1, -1).
//
// Safe from any goroutine, without locks: see epochView.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	end, h := l.epochView()
	return endOffsetFor(h, epoch, end)
}

// epochView returns the end offset and the history that describes the
// log up to it.
//
// The owner publishes the history copy-on-write through an atomic pointer
// and never changes a published slice. Append publishes a batch's entry
// before the end offset that covers the batch, and Truncate lowers the
// end offset before it cuts entries, so loading the end first and then
// the history yields a history at least as new as the end: it may hold
// entries for records past that end (an Append in progress), which are
// left out, but never lack one for a record below it. Entries ascend, so
// those left out are a suffix.
func (l *Log) epochView() (end int64, h []EpochEntry) {
	end = l.end.Load()
	if p := l.epochs.Load(); p != nil {
		h = *p
	}
	n := sort.Search(len(h), func(i int) bool { return h[i].StartOffset >= end })
	return end, h[:n]
}

// endOffsetFor is LeaderEpochFileCache.endOffsetFor over history h of a
// log ending at end.
func endOffsetFor(h []EpochEntry, epoch int32, end int64) (int32, int64) {
	if epoch == noEpoch || len(h) == 0 {
		return noEpoch, noEpoch
	}
	if h[len(h)-1].Epoch == epoch {
		return epoch, end
	}
	above := sort.Search(len(h), func(i int) bool { return h[i].Epoch > epoch })
	switch above {
	case len(h): // above the latest epoch
		return noEpoch, noEpoch
	case 0: // below the first: the start of the oldest epoch known
		return epoch, h[0].StartOffset
	default:
		return h[above-1].Epoch, h[above].StartOffset
	}
}

// latestEpoch is the epoch of h's last entry, or noEpoch. Append accepts
// batches at or above it.
func latestEpoch(h []EpochEntry) int32 {
	if len(h) == 0 {
		return noEpoch
	}
	return h[len(h)-1].Epoch
}

// nextEntry applies one batch to history h, which it may append to: a
// batch whose epoch is non-negative and above the latest starts a new
// entry at max(base, start). Recovery rebuilds the history with it;
// Append applies the same rule (indexBatches), where base >= start.
func nextEntry(h []EpochEntry, epoch int32, base, start int64) []EpochEntry {
	if epoch > latestEpoch(h) { // noEpoch is -1, so epoch >= 0 here
		return append(h, EpochEntry{Epoch: epoch, StartOffset: max(base, start)})
	}
	return h
}

// epochsBefore returns h without its entries starting at or after end: a
// prefix of h whose capacity ends with it, so appending to it copies.
func epochsBefore(h []EpochEntry, end int64) []EpochEntry {
	n := sort.Search(len(h), func(i int) bool { return h[i].StartOffset >= end })
	return h[:n:n]
}

// epochsInRange returns history h as it must be once the log holds
// [start, end): entries starting at or before start collapse into the
// latest of them, moved up to start (Kafka's truncateFromStart), and
// entries at or after end go. It never changes h; the result may share
// h's array (a prefix, capped so that appending to it copies).
func epochsInRange(h []EpochEntry, start, end int64) []EpochEntry {
	// first: index of the first entry starting after start.
	first := sort.Search(len(h), func(i int) bool { return h[i].StartOffset > start })
	out := h
	if first > 0 && (first > 1 || h[0].StartOffset != start) {
		out = make([]EpochEntry, 0, len(h)-first+1)
		out = append(out, EpochEntry{Epoch: h[first-1].Epoch, StartOffset: start})
		out = append(out, h[first:]...)
	}
	return epochsBefore(out, end)
}

// publishEpochs makes h the history readers see. h must not change
// afterwards. Owner only.
func (l *Log) publishEpochs(h []EpochEntry) {
	if len(h) == 0 {
		h = nil
	}
	l.epochs.Store(&h)
}

// ownEpochs is the current history, for the owner.
func (l *Log) ownEpochs() []EpochEntry {
	if p := l.epochs.Load(); p != nil {
		return *p
	}
	return nil
}

// rewriteEpochs adds to wb the replacement of every persisted entry by h.
// Histories are short (one entry per leader change), so rewriting all of
// them after a truncation or a start move is cheap. The Sets follow the
// DeleteRange in the batch, so they win over it.
func (l *Log) rewriteEpochs(wb *pebble.Batch, h []EpochEntry) error {
	var k, k2 keyBuf
	var v [8]byte
	if err := wb.DeleteRange(k.epoch(l.num, 0), k2.kindEnd(l.num, kindEpoch), nil); err != nil {
		return err
	}
	for _, e := range h {
		binary.BigEndian.PutUint64(v[:], uint64(e.StartOffset))
		if err := wb.Set(k.epoch(l.num, e.Epoch), v[:], nil); err != nil {
			return err
		}
	}
	return nil
}

// readEpochs loads the persisted history. complete is false if it cannot
// be trusted to describe the log: an index written before the history
// existed, or entries out of order.
func (l *Log) readEpochs() (h []EpochEntry, complete bool, err error) {
	if _, ok, err := l.readScalar(kindEpochsOK); err != nil {
		return nil, false, fmt.Errorf("read epoch history marker: %w", err)
	} else if !ok {
		return nil, false, nil
	}
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.epoch(l.num, 0),
		UpperBound: hi.kindEnd(l.num, kindEpoch),
	})
	if err != nil {
		return nil, false, fmt.Errorf("read epoch history: %w", err)
	}
	defer it.Close()
	complete = true
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		off, err := decodeInt64(it.Value())
		if err != nil || len(key) != epochKey {
			complete = false
			break
		}
		e := EpochEntry{Epoch: int32(binary.BigEndian.Uint32(key[idLen+1:])), StartOffset: off}
		if e.Epoch < 0 || e.StartOffset < 0 || (len(h) > 0 && e.StartOffset <= h[len(h)-1].StartOffset) {
			complete = false
			break
		}
		h = append(h, e)
	}
	if err := it.Error(); err != nil {
		return nil, false, fmt.Errorf("read epoch history: %w", err)
	}
	if !complete {
		l.logger.Warn("partlog: malformed leader-epoch history in the index; rebuilding it from the segments")
		return nil, false, nil
	}
	return h, true, nil
}
