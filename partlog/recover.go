package partlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/troupe-io/troupe/batch"
)

// recoverLog opens a log's segments and makes segments and index agree.
//
// The index holds a recovery point rp: Sync wrote it after fsyncing every
// batch below it, and Pebble recovers a prefix of its writes, so the index
// entries below rp (written before rp) are present and their bytes are
// intact. Everything from rp on is suspect: segment bytes may be torn or
// missing, index entries may be missing, or present for bytes that were
// lost. Recovery therefore drops the index entries from rp on, scans the
// segments from rp's position batch by batch (header sanity, offset
// continuity, CRC), truncates at the first bad batch, deletes every later
// segment, re-indexes what it found, fsyncs it, and only then moves rp to
// the recovered end. A clean Close leaves rp at the end, so there is
// nothing to scan.
func (s *Store) recoverLog(id LogID, num uint32, dir string, cfg LogConfig) (*Log, error) {
	l := &Log{
		store:  s,
		id:     id,
		num:    num,
		dir:    dir,
		fs:     s.fs,
		db:     s.db,
		logger: s.logger.With("log", id.String()),
		cfg:    cfg,
		wb:     s.db.NewBatch(),
		runMax: noTimestamp,
		maxTs:  noTimestamp,
	}
	done := false
	defer func() {
		if !done {
			l.closeFiles()
		}
	}()
	if err := l.recover(); err != nil {
		return nil, fmt.Errorf("partlog: open %s: %w", id, err)
	}
	done = true
	return l, nil
}

func (l *Log) recover() error {
	if err := l.loadSegments(); err != nil {
		return err
	}
	start, hasStart, err := l.readScalar(kindStart)
	if err != nil {
		return fmt.Errorf("read start offset: %w", err)
	}
	rp, hasRP, err := l.readScalar(kindRecovery)
	if err != nil {
		return fmt.Errorf("read recovery point: %w", err)
	}
	persisted, epochsComplete, err := l.readEpochs()
	if err != nil {
		return err
	}
	// A crash after DeleteRecordsBefore or retention persisted a new start
	// offset may have left the segments it meant to delete.
	for len(l.segs) > 1 && hasStart && l.segs[1].base <= start {
		if err := l.removeSegmentFile(l.segs[0]); err != nil {
			return err
		}
		l.segs[0].release()
		l.segs = l.segs[1:]
	}
	if len(l.segs) == 0 {
		base := int64(0)
		if hasStart {
			base = start
		}
		if _, err := l.roll(base); err != nil {
			return fmt.Errorf("create first segment: %w", err)
		}
	}
	if !hasStart || start < l.segs[0].base {
		start = l.segs[0].base
		hasStart = false // persist it below
	}

	// Where the trusted prefix ends. An index without a complete epoch
	// history (one written before it existed) trusts nothing: the whole
	// log is scanned once, which rebuilds the history from its batches.
	scanSeg, scanPos, next := 0, int64(0), l.segs[0].base
	if hasRP && rp > next && epochsComplete {
		if e, last, ok, err := l.entryAtOrAfter(rp - 1); err == nil && ok && last == rp-1 {
			if i := l.segmentIndex(e.segBase); i >= 0 && e.pos+int64(e.size) <= l.segs[i].size.Load() {
				scanSeg, scanPos, next = i, e.pos+int64(e.size), rp
			}
		}
	}
	// Always scan, even after a clean Close: it costs a few seeks when
	// there is nothing past rp, and it also drops index entries for bytes
	// that never reached the segment (Pebble may be more durable than the
	// segment file when another log synced the shared index).
	// Epoch entries for offsets below the scan's first were written before
	// the recovery point that lets it start there, so they are intact;
	// the scan rebuilds the rest from the batch headers it reads.
	epochs := epochsInRange(persisted, start, next)
	end, err := l.scan(scanSeg, scanPos, next, start, &epochs)
	if err != nil {
		return err
	}
	next = end

	// Persisted start beyond everything recovered (the data after a synced
	// DeleteRecordsBefore was never synced): start over empty at start,
	// as Kafka does.
	if start > next {
		l.logger.Warn("partlog: start offset beyond recovered end; log restarts empty",
			"start", start, "end", next)
		if err := l.resetTo(start); err != nil {
			return err
		}
		next, epochs = start, nil
	}

	// Always, even when this open changed no file: the process that wrote
	// the log may have died before it made its directory entries durable
	// (a rolled segment before its first Sync, a truncation copy renamed
	// over a segment whose directory sync then failed). The entries found
	// here are what later Syncs take for durable, and what the recovery
	// point written below vouches for; without this sync a power loss
	// could bring back the file an entry named before, under data that
	// later Syncs reported durable.
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	for _, seg := range l.segs {
		seg.dirSynced.Store(true)
	}
	b := l.db.NewBatch()
	defer b.Close()
	var k keyBuf
	if !hasStart {
		_ = b.Set(k.scalar(l.num, kindStart), encodeInt64(start), nil)
	}
	if !hasRP || rp != next {
		_ = b.Set(k.scalar(l.num, kindRecovery), encodeInt64(next), nil)
	}
	if !epochsComplete || !slices.Equal(epochs, persisted) {
		if err := l.rewriteEpochs(b, epochs); err != nil {
			return fmt.Errorf("persist recovered state: %w", err)
		}
	}
	if !epochsComplete {
		_ = b.Set(k.scalar(l.num, kindEpochsOK), encodeInt64(1), nil)
	}
	// A snapshot saved past what the crash left describes batches that
	// are gone; the ones appended at those offsets from now on will be
	// others (SaveSnapshot's invariant). end, not next: a log restarted
	// empty at its start lost the batches between them too.
	if dropped, err := l.dropSnapshotPast(b, end); err != nil {
		return fmt.Errorf("persist recovered state: %w", err)
	} else if dropped {
		l.logger.Info("partlog: dropping producer snapshot past the recovered end", "end", end)
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("persist recovered state: %w", err)
		}
	}

	var size int64
	for _, seg := range l.segs {
		size += seg.size.Load()
	}
	l.size.Store(size)
	l.start.Store(start)
	l.end.Store(next)
	l.rp = next
	l.syncFrom = l.active().base
	l.publishEpochs(epochs)
	return nil
}

// loadSegments opens every segment file of the log, in offset order.
func (l *Log) loadSegments() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	slices.Sort(names)
	for _, name := range names {
		path := l.fs.PathJoin(l.dir, name)
		base, ok := parseSegmentName(name)
		if !ok {
			if strings.HasSuffix(name, segmentSuffix+tmpSuffix) {
				// An unfinished truncation copy; the segment it was
				// copied from is intact.
				if err := l.fs.Remove(path); err != nil {
					return fmt.Errorf("remove %s: %w", path, err)
				}
				continue
			}
			l.logger.Warn("partlog: ignoring file that is not a segment", "file", path)
			continue
		}
		f, err := l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("stat %s: %w", path, err)
		}
		l.segs = append(l.segs, newSegment(base, path, f, fi.Size()))
	}
	return nil
}

// segmentIndex returns the position of the segment with this base in
// l.segs, or -1.
func (l *Log) segmentIndex(base int64) int {
	for i, seg := range l.segs {
		if seg.base == base {
			return i
		}
	}
	return -1
}

// scan checks and indexes the batches from (segs[si], pos), where offset
// next is expected, to the end of the log, cutting the log at the first
// batch that fails. Batches entirely below start are checked but not
// indexed. The epochs of the batches it keeps extend *epochs (the history
// below next); the caller persists it. It returns the recovered end
// offset.
func (l *Log) scan(si int, pos, next, start int64, epochs *[]EpochEntry) (end int64, err error) {
	wb := l.wb
	defer wb.Reset()
	// changed: the scan found something to do (bytes past rp, stale
	// entries), so the bytes it keeps are fsynced before rp covers them.
	changed := false
	indexedEnd := int64(-1) // one past the last batch the index knew of
	if _, _, stale, err := l.entryAtOrAfter(next); err != nil {
		return 0, err
	} else if stale {
		if indexedEnd, err = l.lastIndexedEnd(); err != nil {
			return 0, err
		}
		var k, k2 keyBuf
		if err := wb.DeleteRange(k.offset(l.num, next), k2.kindEnd(l.num, kindOffset), nil); err != nil {
			return 0, err
		}
		changed = true
	}
	if dropped, err := l.dropTimeSuffix(wb, next); err != nil {
		return 0, err
	} else if dropped {
		changed = true
	}

	// The window need not exceed what there is to scan: after a clean
	// Close that is nothing, and opening thousands of logs should not
	// allocate a megabyte each.
	sc := segScanner{buf: make([]byte, min(max(l.bytesFrom(si, pos), batch.HeaderLen), 1<<20))}
	torn := false
	for i := si; i < len(l.segs) && !torn; i++ {
		seg := l.segs[i]
		if i > si {
			pos = 0
			if seg.base != next {
				l.logger.Warn("partlog: segment does not continue the log; dropping it and all later segments",
					"segment", seg.path, "base", seg.base, "want", next)
				torn = true
				if err := l.dropSegmentsFrom(i); err != nil {
					return 0, err
				}
				changed = true
				break
			}
		}
		if pos == 0 {
			seg.maxTs, seg.maxTsKnown = noTimestamp, true
		}
		fileSize := seg.size.Load()
		if pos < fileSize {
			changed = true
		}
		sc.reset(seg.file.Load().f, fileSize)
		for pos < fileSize {
			h, reason := sc.check(pos, next)
			if reason != "" {
				if sc.zeroFrom(pos) {
					// Preallocated space the appends never reached: the
					// expected end of an active segment after a crash.
					// Later segments may still continue the log (the
					// base check above decides), so only this tail goes.
					l.logger.Debug("partlog: dropping preallocated tail",
						"segment", seg.path, "position", pos, "bytes", fileSize-pos)
					if err := truncateFile(l.fs, l.dir, seg, pos, l.withSegmentsLocked); err != nil {
						return 0, err
					}
					seg.size.Store(pos)
					changed = true
					break
				}
				l.logger.Warn("partlog: dropping torn or corrupt log tail",
					"segment", seg.path, "offset", next, "position", pos,
					"bytes_dropped", l.bytesFrom(i, pos), "reason", reason)
				if err := truncateFile(l.fs, l.dir, seg, pos, l.withSegmentsLocked); err != nil {
					return 0, err
				}
				seg.size.Store(pos)
				if err := l.dropSegmentsFrom(i + 1); err != nil {
					return 0, err
				}
				torn, changed = true, true
				break
			}
			if h.LastOffset() >= start {
				if err := l.indexScanned(wb, seg, pos, h); err != nil {
					return 0, err
				}
				*epochs = nextEntry(*epochs, h.PartitionLeaderEpoch, h.BaseOffset, start)
			}
			next = h.LastOffset() + 1
			pos += int64(h.Size())
			if wb.Len() > 1<<20 {
				if err := wb.Commit(pebble.NoSync); err != nil {
					return 0, err
				}
				wb.Reset()
			}
		}
		// The scanned bytes may be only in the page cache (a process
		// crash); make them durable before the recovery point covers them.
		if changed {
			if err := seg.file.Load().f.SyncData(); err != nil {
				return 0, fmt.Errorf("sync %s: %w", seg.path, err)
			}
		}
	}

	// Trailing segments that hold nothing and do not start at the end
	// (a roll whose first append never made it) go; an empty last segment
	// starting exactly at the end stays as the active one.
	for len(l.segs) > 1 && l.active().size.Load() == 0 && l.active().base != next {
		if err := l.dropSegmentsFrom(len(l.segs) - 1); err != nil {
			return 0, err
		}
		changed = true
	}
	if !wb.Empty() {
		if err := wb.Commit(pebble.NoSync); err != nil {
			return 0, err
		}
	}
	if indexedEnd > next {
		l.logger.Warn("partlog: indexed batches lost from the segment files (appended but never synced)",
			"indexed_end", indexedEnd, "recovered_end", next)
	}
	if err := l.loadTimeState(); err != nil {
		return 0, err
	}
	return next, nil
}

// lastIndexedEnd returns one past the last offset the index has an entry
// for, or -1.
func (l *Log) lastIndexedEnd() (int64, error) {
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.offset(l.num, 0),
		UpperBound: hi.kindEnd(l.num, kindOffset),
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return -1, it.Error()
	}
	return decodeOffsetKey(it.Key()) + 1, nil
}

// indexScanned adds the index entries for one recovered batch.
func (l *Log) indexScanned(wb *pebble.Batch, seg *segment, pos int64, h batch.Header) error {
	e := batchEntry{
		segBase:         seg.base,
		pos:             pos,
		size:            int32(h.Size()),
		lastOffsetDelta: h.LastOffsetDelta,
		maxTimestamp:    h.MaxTimestamp,
		producerID:      h.ProducerID,
		producerEpoch:   h.ProducerEpoch,
		baseSequence:    h.BaseSequence,
		attributes:      h.Attributes,
	}
	if err := wb.Set(l.key.offset(l.num, h.LastOffset()), e.encode(&l.val), nil); err != nil {
		return err
	}
	if h.MaxTimestamp > l.runMax {
		l.runMax = h.MaxTimestamp
		binary.BigEndian.PutUint64(l.tsVal[:], uint64(h.BaseOffset))
		if err := wb.Set(l.key.time(l.num, l.runMax), l.tsVal[:], nil); err != nil {
			return err
		}
	}
	if seg.maxTsKnown {
		seg.maxTs = max(seg.maxTs, h.MaxTimestamp)
	}
	return nil
}

// bytesFrom counts the bytes from (segs[i], pos) to the end of the log.
func (l *Log) bytesFrom(i int, pos int64) int64 {
	n := -pos
	for _, seg := range l.segs[i:] {
		n += seg.size.Load()
	}
	return n
}

// dropSegmentsFrom deletes segs[i:] from disk and from the list (during
// recovery and Truncate; the caller syncs the directory).
func (l *Log) dropSegmentsFrom(i int) error {
	if i >= len(l.segs) {
		return nil
	}
	drop := slices.Clone(l.segs[i:])
	l.mu.Lock()
	l.segs = l.segs[:i:i]
	l.mu.Unlock()
	for _, seg := range drop {
		if err := l.removeSegmentFile(seg); err != nil {
			return err
		}
		l.size.Add(-seg.size.Load())
		seg.release()
	}
	return nil
}

func (l *Log) removeSegmentFile(seg *segment) error {
	if err := l.fs.Remove(seg.path); err != nil {
		return fmt.Errorf("remove %s: %w", seg.path, err)
	}
	return nil
}

// resetTo deletes every segment and index entry and starts an empty log at
// base.
func (l *Log) resetTo(base int64) error {
	if err := l.dropSegmentsFrom(0); err != nil {
		return err
	}
	l.size.Store(0)
	if _, err := l.roll(base); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	var k, k2 keyBuf
	b := l.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(k.offset(l.num, 0), k2.kindEnd(l.num, kindOffset), nil)
	_ = b.DeleteRange(k.time(l.num, noTimestamp), k2.kindEnd(l.num, kindTime), nil)
	_ = b.DeleteRange(k.epoch(l.num, 0), k2.kindEnd(l.num, kindEpoch), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("clear index: %w", err)
	}
	l.setMaxTimestamp(noTimestamp, -1)
	l.publishEpochs(nil)
	return nil
}

// dropTimeSuffix adds to wb the deletion of every time-index entry for a
// batch at or after offset from, and sets the running maximum to the last
// entry that stays. Entries rise in both timestamp and offset, so the
// doomed ones are a suffix of the keys.
func (l *Log) dropTimeSuffix(wb *pebble.Batch, from int64) (dropped bool, err error) {
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.time(l.num, noTimestamp),
		UpperBound: hi.kindEnd(l.num, kindTime),
	})
	if err != nil {
		return false, err
	}
	defer it.Close()
	var cut []byte
	runMax, runMaxBase := int64(noTimestamp), int64(-1)
	for ok := it.Last(); ok; ok = it.Prev() {
		base, err := decodeInt64(it.Value())
		if err != nil {
			return false, err
		}
		if base < from {
			runMax, runMaxBase = decodeTimeKey(it.Key()), base
			break
		}
		cut = append(cut[:0], it.Key()...)
	}
	if err := it.Error(); err != nil {
		return false, err
	}
	if cut != nil {
		if err := wb.DeleteRange(cut, hi.kindEnd(l.num, kindTime), nil); err != nil {
			return false, err
		}
	}
	l.setMaxTimestamp(runMax, runMaxBase)
	return cut != nil, nil
}

// loadTimeState sets the running maximum from the last time-index entry.
func (l *Log) loadTimeState() error {
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.time(l.num, noTimestamp),
		UpperBound: hi.kindEnd(l.num, kindTime),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		l.setMaxTimestamp(noTimestamp, -1)
		return it.Error()
	}
	base, err := decodeInt64(it.Value())
	if err != nil {
		return err
	}
	l.setMaxTimestamp(decodeTimeKey(it.Key()), base)
	return nil
}

// segScanner reads a segment through a window buffer, so that recovery
// costs one read per megabyte rather than per batch, and checks batches
// of any size with bounded memory (the CRC is computed chunk by chunk).
type segScanner struct {
	f      vfs.File
	size   int64
	buf    []byte
	bufOff int64
	n      int
	hdr    [batch.HeaderLen]byte
}

func (sc *segScanner) reset(f vfs.File, size int64) {
	sc.f, sc.size, sc.bufOff, sc.n = f, size, 0, 0
}

// view returns the file's bytes [off, off+n); n must not exceed the window.
func (sc *segScanner) view(off int64, n int) ([]byte, error) {
	if off >= sc.bufOff && off+int64(n) <= sc.bufOff+int64(sc.n) {
		return sc.buf[off-sc.bufOff:][:n], nil
	}
	want := min(int64(len(sc.buf)), sc.size-off)
	if want < int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	if err := readFullAt(sc.f, sc.buf[:want], off); err != nil {
		return nil, err
	}
	sc.bufOff, sc.n = off, int(want)
	return sc.buf[:n], nil
}

// zeroFrom reports whether the file holds only zero bytes from off to its
// end, as the unused part of a preallocated segment does. Real torn writes
// and garbage are not all zero. A read error counts as not zero, leaving
// the tail to the torn-tail path, as before preallocation existed.
func (sc *segScanner) zeroFrom(off int64) bool {
	for off < sc.size {
		n := int(min(int64(len(sc.buf)), sc.size-off))
		b, err := sc.view(off, n)
		if err != nil {
			return false
		}
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		off += int64(n)
	}
	return true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcStart is where the CRC-covered part of a batch begins (attributes).
const crcStart = 21

// check validates the batch at pos, which must hold offset next. It
// returns the header, or a reason why the log ends here.
func (sc *segScanner) check(pos, next int64) (batch.Header, string) {
	if sc.size-pos < batch.HeaderLen {
		return batch.Header{}, "partial header"
	}
	b, err := sc.view(pos, batch.HeaderLen)
	if err != nil {
		return batch.Header{}, "read header: " + err.Error()
	}
	copy(sc.hdr[:], b)
	h, err := batch.ParseHeader(sc.hdr[:])
	switch {
	case err != nil:
		return h, "bad header: " + err.Error()
	case int64(h.Size()) > sc.size-pos:
		return h, "partial batch"
	case h.BaseOffset != next:
		return h, fmt.Sprintf("base offset %d, want %d", h.BaseOffset, next)
	case h.LastOffsetDelta < 0:
		return h, "negative last offset delta"
	}
	crc := uint32(0)
	for off, end := pos+crcStart, pos+int64(h.Size()); off < end; {
		n := int(min(int64(len(sc.buf)), end-off))
		chunk, err := sc.view(off, n)
		if err != nil {
			return h, "read batch: " + err.Error()
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		off += int64(n)
	}
	if crc != h.CRC {
		return h, "crc mismatch"
	}
	return h, ""
}
