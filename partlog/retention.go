package partlog

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// DeleteRecordsBefore moves the log start offset up to offset (at most
// EndOffset), persisting it durably, and deletes the segments that lie
// entirely below it. Owner only.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if end := l.end.Load(); offset > end {
		return fmt.Errorf("%w: %s: delete records before %d beyond end %d", ErrOffsetOutOfRange, l.id, offset, end)
	}
	if offset <= l.start.Load() {
		return nil
	}
	if _, err := l.moveStart(offset); err != nil {
		return fmt.Errorf("partlog: %s: delete records before %d: %w", l.id, offset, err)
	}
	return nil
}

// EnforceRetention deletes the oldest segments, never the active one,
// while the oldest is past RetentionMs (its newest record older than
// nowMs-RetentionMs) or the log would still hold at least RetentionBytes
// without it (as Kafka counts), and moves the start offset to the first
// remaining segment. It returns the number of segments deleted. Owner only.
func (l *Log) EnforceRetention(nowMs int64) (removed int, err error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	total := l.size.Load()
	n := 0
	for ; n < len(l.segs)-1; n++ {
		seg := l.segs[n]
		expired := false
		if l.cfg.RetentionMs >= 0 {
			ts, err := l.segmentMaxTimestamp(seg)
			if err != nil {
				return 0, fmt.Errorf("partlog: %s: retention: %w", l.id, err)
			}
			// A segment without timestamps holds nothing readable.
			expired = ts == noTimestamp || nowMs-ts > l.cfg.RetentionMs
		}
		if !expired && l.cfg.RetentionBytes >= 0 {
			expired = total-seg.size.Load() >= l.cfg.RetentionBytes
		}
		if !expired {
			break
		}
		total -= seg.size.Load()
	}
	if n == 0 {
		return 0, nil
	}
	newStart := max(l.start.Load(), l.segs[n].base)
	removed, err = l.moveStart(newStart)
	if err != nil {
		return removed, fmt.Errorf("partlog: %s: retention: %w", l.id, err)
	}
	return removed, nil
}

// segmentMaxTimestamp returns the largest batch max timestamp in seg,
// computing it from the index the first time (segments recovered at open
// are not read for it).
func (l *Log) segmentMaxTimestamp(seg *segment) (int64, error) {
	if seg.maxTsKnown {
		return seg.maxTs, nil
	}
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.offset(l.num, seg.base),
		UpperBound: hi.kindEnd(l.num, kindOffset),
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	ts := int64(noTimestamp)
	var e batchEntry
	for ok := it.First(); ok; ok = it.Next() {
		if err := e.decode(it.Value()); err != nil {
			return 0, err
		}
		if e.segBase != seg.base {
			break
		}
		ts = max(ts, e.maxTimestamp)
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	seg.maxTs, seg.maxTsKnown = ts, true
	return ts, nil
}

// moveStart persists newStart as the log start offset together with the
// index changes that go with it, then deletes the segments entirely below
// it. The order makes a crash safe: the files outlive the index entries,
// and an open deletes segments below the persisted start.
func (l *Log) moveStart(newStart int64) (removed int, err error) {
	for removed < len(l.segs)-1 && l.segs[removed+1].base <= newStart {
		removed++
	}
	wb := l.wb
	defer wb.Reset()
	var k, k2 keyBuf
	if err := wb.Set(k.scalar(l.num, kindStart), encodeInt64(newStart), nil); err != nil {
		return 0, err
	}
	if err := wb.DeleteRange(k.offset(l.num, 0), k2.offset(l.num, newStart), nil); err != nil {
		return 0, err
	}
	runMax, runMaxBase, changed, err := l.retimeHead(wb, newStart)
	if err != nil {
		return 0, err
	}
	// The epochs wholly below newStart collapse into the one in force at
	// it (Kafka's truncateFromStart), in the same synced commit as the
	// start offset, so the two always agree on disk.
	epochs := epochsInRange(l.ownEpochs(), newStart, l.end.Load())
	epochsChanged := !slices.Equal(epochs, l.ownEpochs())
	if epochsChanged {
		if err := l.rewriteEpochs(wb, epochs); err != nil {
			return 0, err
		}
	}
	// Publish the new start before the entries below it disappear, so
	// that a reader that misses them also sees why (Read re-checks start).
	oldStart := l.start.Swap(newStart)
	if err := wb.Commit(pebble.Sync); err != nil {
		l.start.Store(oldStart)
		return 0, err
	}
	if changed {
		l.setMaxTimestamp(runMax, runMaxBase)
	}
	if epochsChanged {
		l.publishEpochs(epochs)
	}

	if removed == 0 {
		return 0, nil
	}
	drop := l.segs[:removed]
	l.mu.Lock()
	l.segs = slices.Clone(l.segs[removed:])
	l.mu.Unlock()
	var firstErr error
	for _, seg := range drop {
		// A failed unlink leaves a file below the start offset; the next
		// open deletes it.
		if err := l.removeSegmentFile(seg); err != nil && firstErr == nil {
			firstErr = err
		}
		l.size.Add(-seg.size.Load())
		seg.release()
	}
	return removed, firstErr
}

// retimeHead keeps the time index equal to the running maximum over the
// batches that remain once the entries below newStart go. Those entries
// are a prefix of the time keys; after removing them the running maximum
// restarts lower, so entries are recomputed from the first remaining batch
// until it catches up with M, the largest removed key: from there on the
// old entries are exact again. changed reports that the log's overall
// maximum, or the batch first holding it, changed; runMax and runMaxBase
// then describe the new one.
func (l *Log) retimeHead(wb *pebble.Batch, newStart int64) (runMax, runMaxBase int64, changed bool, err error) {
	lo, hi := logRange(l.num)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, 0, false, err
	}
	defer it.Close()

	var k, k2 keyBuf
	// The first remaining batch.
	var e batchEntry
	if !it.SeekGE(k.offset(l.num, newStart)) || it.Key()[idLen] != kindOffset {
		if err := it.Error(); err != nil {
			return 0, 0, false, err
		}
		// Nothing remains: no time entries either.
		if err := wb.DeleteRange(k.time(l.num, noTimestamp), k2.kindEnd(l.num, kindTime), nil); err != nil {
			return 0, 0, false, err
		}
		return noTimestamp, -1, true, nil
	}
	if err := e.decode(it.Value()); err != nil {
		return 0, 0, false, err
	}
	firstBase := decodeOffsetKey(it.Key()) - int64(e.lastOffsetDelta)

	// Find M and the end of the removed prefix.
	removedMax := int64(noTimestamp)
	var keepFrom []byte
	for ok := it.SeekGE(k.time(l.num, noTimestamp)); ok && it.Key()[idLen] == kindTime; ok = it.Next() {
		base, err := decodeInt64(it.Value())
		if err != nil {
			return 0, 0, false, err
		}
		if base >= firstBase {
			keepFrom = append([]byte(nil), it.Key()...)
			break
		}
		removedMax = decodeTimeKey(it.Key())
	}
	if err := it.Error(); err != nil {
		return 0, 0, false, err
	}
	if removedMax == noTimestamp {
		return 0, 0, false, nil
	}
	if keepFrom == nil {
		keepFrom = k2.kindEnd(l.num, kindTime)
	}
	if err := wb.DeleteRange(k.time(l.num, noTimestamp), keepFrom, nil); err != nil {
		return 0, 0, false, err
	}

	// Recompute the head. Sets come after the DeleteRange in the batch, so
	// they win over it for equal keys.
	runMax, runMaxBase = noTimestamp, -1
	var val [8]byte
	for ok := it.SeekGE(k.offset(l.num, newStart)); ok && it.Key()[idLen] == kindOffset; ok = it.Next() {
		if err := e.decode(it.Value()); err != nil {
			return 0, 0, false, err
		}
		ts := e.maxTimestamp
		if ts > removedMax {
			return 0, 0, false, nil // this batch's old entry is exact
		}
		if ts > runMax {
			runMax, runMaxBase = ts, decodeOffsetKey(it.Key())-int64(e.lastOffsetDelta)
			binary.BigEndian.PutUint64(val[:], uint64(runMaxBase))
			if err := wb.Set(k.time(l.num, ts), val[:], nil); err != nil {
				return 0, 0, false, err
			}
			if ts == removedMax {
				// Caught up: the rest is exact. If M is the log's maximum,
				// its first holder is now this batch.
				return runMax, runMaxBase, removedMax == l.runMax, nil
			}
		}
	}
	if err := it.Error(); err != nil {
		return 0, 0, false, err
	}
	return runMax, runMaxBase, true, nil
}

// Truncate removes every batch that holds an offset at or after end, so
// the end offset becomes the base offset of the first removed batch (at
// most end): replication cuts a diverged tail this way. It is durable when
// it returns. end must be at least StartOffset; at or past EndOffset it
// does nothing. Owner only.
//
// A Read racing with Truncate may fail with an error. A segment cut in the
// middle is sealed, so later appends go to a new file and bytes a
// concurrent Region refers to are never overwritten with other batches.
func (l *Log) Truncate(end int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if end >= l.end.Load() {
		return nil
	}
	start := l.start.Load()
	if end < start {
		return fmt.Errorf("%w: %s: truncate to %d below start offset %d", ErrOffsetOutOfRange, l.id, end, start)
	}
	e, last, ok, err := l.entryAtOrAfter(end)
	if err != nil {
		return fmt.Errorf("partlog: %s: truncate to %d: %w", l.id, end, err)
	}
	if !ok {
		return fmt.Errorf("partlog: %s: truncate to %d: no index entry below end %d", l.id, end, l.end.Load())
	}
	if err := l.truncate(e, last-int64(e.lastOffsetDelta), start); err != nil {
		// Files and index may now disagree; reopening recovers them.
		l.failed = err
		return fmt.Errorf("partlog: %s: truncate to %d: %w", l.id, end, err)
	}
	return nil
}

// truncate cuts the log at batch e, whose base offset is newEnd.
//
// Crash safety: the recovery point first comes down to newEnd, durably, so
// that from then on recovery re-derives everything past newEnd from the
// files; a snapshot covering the cut batches is deleted in the same
// write. Then the files are cut and removed, durably. A crash before that
// finishes recovers the old tail or part of it (Truncate had not returned);
// a crash after it cannot bring the cut batches back. The index entries
// past newEnd are dropped last, without a sync: recovery drops them too.
func (l *Log) truncate(e batchEntry, newEnd, start int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.end.Store(max(newEnd, start)) // readers stop here from now on

	i := l.segmentIndex(e.segBase)
	if i < 0 {
		return fmt.Errorf("index names missing segment %d", e.segBase)
	}
	// One synced write lowers the recovery point and drops a snapshot that
	// describes cut batches (SaveSnapshot's invariant): both must be
	// durable before the first file is cut, since new batches may take
	// the cut offsets as soon as Truncate returns.
	b := l.db.NewBatch()
	defer b.Close()
	var rk keyBuf
	if l.rp > newEnd {
		if err := b.Set(rk.scalar(l.num, kindRecovery), encodeInt64(newEnd), nil); err != nil {
			return err
		}
	}
	if _, err := l.dropSnapshotPast(b, newEnd); err != nil {
		return err
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("lower recovery point: %w", err)
		}
		l.rp = min(l.rp, newEnd)
	}
	switch {
	case newEnd < start:
		// The batch holding start goes too: nothing readable remains.
		if err := l.resetTo(start); err != nil {
			return err
		}
		newEnd = start
	case e.pos == 0:
		if err := l.dropSegmentsFrom(i); err != nil {
			return err
		}
		if len(l.segs) == 0 {
			if _, err := l.roll(newEnd); err != nil {
				return fmt.Errorf("create segment: %w", err)
			}
		}
	default:
		if err := l.dropSegmentsFrom(i + 1); err != nil {
			return err
		}
		seg := l.segs[i]
		if err := truncateFile(l.fs, l.dir, seg, e.pos, l.withSegmentsLocked); err != nil {
			return err
		}
		l.size.Add(e.pos - seg.size.Load())
		seg.size.Store(e.pos)
		seg.sealed, seg.maxTsKnown = true, false
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	for _, seg := range l.segs {
		seg.dirSynced.Store(true)
	}

	wb := l.wb
	defer wb.Reset()
	var k, k2 keyBuf
	if err := wb.DeleteRange(k.offset(l.num, newEnd), k2.kindEnd(l.num, kindOffset), nil); err != nil {
		return err
	}
	if _, err := l.dropTimeSuffix(wb, newEnd); err != nil {
		return err
	}
	// The epochs that started in the cut batches go. Not synced either:
	// the recovery point is at most newEnd now, and recovery rebuilds the
	// history from there.
	epochs := epochsBefore(l.ownEpochs(), newEnd)
	if len(epochs) < len(l.ownEpochs()) {
		dropped := l.ownEpochs()[len(epochs)]
		if err := wb.DeleteRange(k.epoch(l.num, dropped.Epoch), k2.kindEnd(l.num, kindEpoch), nil); err != nil {
			return err
		}
	}
	if err := wb.Commit(pebble.NoSync); err != nil {
		return err
	}
	l.publishEpochs(epochs)
	// Segments from syncFrom on may still hold unsynced bytes; if it named
	// a dropped segment, the new active one (base below it) is where the
	// next appends go.
	l.syncFrom = min(l.syncFrom, l.active().base)
	l.end.Store(newEnd)
	return nil
}
