package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/troupe-io/troupe/batch"
)

// Read returns whole batches from the one segment holding offset: from
// the batch containing offset (or, if offset falls where nothing is
// stored, the next batch) up to but excluding the first batch that would
// take the total past maxBytes, that starts at or after limit (the high
// watermark the caller may expose), or that lies in another segment. The
// first batch is returned even if it alone exceeds maxBytes (KIP-74).
//
// offset == limit or EndOffset gives an empty Region and no error; offset
// below StartOffset or above EndOffset gives ErrOffsetOutOfRange. The
// caller must Release the Region. Safe from any goroutine.
func (l *Log) Read(offset int64, maxBytes int, limit int64) (Region, error) {
	// A retention pass or Truncate between the index lookup and taking the
	// segment makes the lookup stale; looking again sees the new state.
	for attempt := 0; ; attempt++ {
		r, retry, err := l.read(offset, maxBytes, limit)
		if !retry || attempt == 2 {
			return r, err
		}
	}
}

func (l *Log) read(offset int64, maxBytes int, limit int64) (_ Region, retry bool, _ error) {
	if l.closed.Load() {
		return Region{}, false, ErrClosed
	}
	end := l.end.Load()
	start := l.start.Load()
	if offset < start || offset > end {
		return Region{}, false, fmt.Errorf("%w: %s: offset %d not in [%d, %d]", ErrOffsetOutOfRange, l.id, offset, start, end)
	}
	limit = min(limit, end)
	if offset >= limit {
		return Region{}, false, nil
	}

	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.offset(l.num, offset),
		UpperBound: hi.kindEnd(l.num, kindOffset),
	})
	if err != nil {
		return Region{}, false, fmt.Errorf("partlog: %s: read at %d: %w", l.id, offset, err)
	}
	var e batchEntry
	var first, total, segBase int64
	for ok := it.First(); ok; ok = it.Next() {
		if err := e.decode(it.Value()); err != nil {
			_ = it.Close()
			return Region{}, false, fmt.Errorf("partlog: %s: read at %d: %w", l.id, offset, err)
		}
		base := decodeOffsetKey(it.Key()) - int64(e.lastOffsetDelta)
		if base >= limit {
			break
		}
		if total == 0 {
			first, segBase = e.pos, e.segBase
		} else if e.segBase != segBase || e.pos != first+total || total+int64(e.size) > int64(maxBytes) {
			break
		}
		total += int64(e.size)
	}
	if err := it.Close(); err != nil {
		return Region{}, false, fmt.Errorf("partlog: %s: read at %d: %w", l.id, offset, err)
	}
	// The start offset moves before the index entries below it go, so if
	// the lookup missed entries for offset, this sees the new start.
	if offset < l.start.Load() {
		return Region{}, false, fmt.Errorf("%w: %s: offset %d deleted during read", ErrOffsetOutOfRange, l.id, offset)
	}
	if total == 0 {
		return Region{}, false, nil
	}

	l.mu.RLock()
	seg := l.findSegment(segBase)
	var sf *segFile
	if seg != nil && first+total <= seg.size.Load() {
		sf = seg.acquire()
	}
	l.mu.RUnlock()
	if sf == nil {
		return Region{}, true, fmt.Errorf("partlog: %s: read at %d: segment %d keeps changing", l.id, offset, segBase)
	}
	return Region{r: &region{sf: sf, pos: first, n: total}}, false, nil
}

// findSegment returns the segment whose base is exactly base, or nil.
// Callers hold mu or are the owner.
func (l *Log) findSegment(base int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base >= base })
	if i < len(l.segs) && l.segs[i].base == base {
		return l.segs[i]
	}
	return nil
}

// entryAtOrAfter returns the index entry of the first batch whose last
// offset is at least offset: the batch holding offset, or the next one.
func (l *Log) entryAtOrAfter(offset int64) (e batchEntry, lastOffset int64, ok bool, err error) {
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.offset(l.num, max(offset, 0)),
		UpperBound: hi.kindEnd(l.num, kindOffset),
	})
	if err != nil {
		return e, 0, false, err
	}
	defer it.Close()
	if !it.First() {
		return e, 0, false, it.Error()
	}
	if err := e.decode(it.Value()); err != nil {
		return e, 0, false, err
	}
	return e, decodeOffsetKey(it.Key()), true, nil
}

// BatchInfo describes one stored batch, from the index alone.
type BatchInfo struct {
	BaseOffset    int64
	LastOffset    int64
	MaxTimestamp  int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// Attributes are the batch's attribute bits: codec, timestamp type,
	// transactional (bit 4), control (bit 5).
	Attributes int16
}

// IsTransactional reports whether the batch belongs to a transaction.
func (b BatchInfo) IsTransactional() bool { return b.Attributes&(1<<4) != 0 }

// IsControl reports whether the batch holds transaction markers.
func (b BatchInfo) IsControl() bool { return b.Attributes&(1<<5) != 0 }

// Batches calls fn for every stored batch whose last offset is at least
// from, in offset order, until fn returns false: how producer state is
// rebuilt at start-up without reading segment files. Safe from any
// goroutine; it sees the index as of the call.
func (l *Log) Batches(from int64, fn func(BatchInfo) bool) error {
	if l.closed.Load() {
		return ErrClosed
	}
	var lo, hi keyBuf
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: lo.offset(l.num, max(from, 0)),
		UpperBound: hi.kindEnd(l.num, kindOffset),
	})
	if err != nil {
		return fmt.Errorf("partlog: %s: batches: %w", l.id, err)
	}
	var e batchEntry
	for ok := it.First(); ok; ok = it.Next() {
		if err := e.decode(it.Value()); err != nil {
			_ = it.Close()
			return fmt.Errorf("partlog: %s: batches: %w", l.id, err)
		}
		last := decodeOffsetKey(it.Key())
		if !fn(BatchInfo{
			BaseOffset:    last - int64(e.lastOffsetDelta),
			LastOffset:    last,
			MaxTimestamp:  e.maxTimestamp,
			ProducerID:    e.producerID,
			ProducerEpoch: e.producerEpoch,
			BaseSequence:  e.baseSequence,
			Attributes:    e.attributes,
		}) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("partlog: %s: batches: %w", l.id, err)
	}
	return nil
}

// maxRefineBatches bounds how many batches OffsetForTimestamp opens when
// their records disagree with their headers' max timestamps (only corrupt
// or unusual batches do); past it, the answer is the next candidate
// batch's base offset, which errs towards returning more data.
const maxRefineBatches = 16

// OffsetForTimestamp finds the first offset at or after StartOffset whose
// record timestamp is at least ts (ListOffsets by time). The time index
// gives the first batch whose max timestamp reaches ts; the record is then
// found inside it. found is false if no record is that new. Safe from any
// goroutine.
//
// If the batch found straddles StartOffset (DeleteRecordsBefore cut into
// it) and the matching record lies below StartOffset, the answer is
// StartOffset: never an offset that cannot be read, never one past data
// the caller asked for.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	// Retention may delete the batch found between the index lookup and
	// reading it; the index then no longer leads there.
	for attempt := 0; ; attempt++ {
		offset, timestamp, found, err = l.offsetForTimestamp(ts)
		if attempt == 2 || !errors.Is(err, ErrOffsetOutOfRange) {
			return offset, timestamp, found, err
		}
	}
}

func (l *Log) offsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	if l.closed.Load() {
		return 0, 0, false, ErrClosed
	}
	lo, hi := logRange(l.num)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, 0, false, fmt.Errorf("partlog: %s: offset for time %d: %w", l.id, ts, err)
	}
	defer it.Close()

	var k keyBuf
	if !it.SeekGE(k.time(l.num, ts)) || it.Key()[idLen] != kindTime {
		return 0, 0, false, it.Error()
	}
	base, err := decodeInt64(it.Value())
	if err != nil {
		return 0, 0, false, fmt.Errorf("partlog: %s: time index: %w", l.id, err)
	}

	var e batchEntry
	tries := 0
	for ok := it.SeekGE(k.offset(l.num, base)); ok && it.Key()[idLen] == kindOffset; ok = it.Next() {
		if err := e.decode(it.Value()); err != nil {
			return 0, 0, false, fmt.Errorf("partlog: %s: offset for time %d: %w", l.id, ts, err)
		}
		if e.maxTimestamp < ts {
			continue
		}
		last := decodeOffsetKey(it.Key())
		first := last - int64(e.lastOffsetDelta)
		start := l.start.Load()
		if tries++; tries > maxRefineBatches {
			return max(first, start), e.maxTimestamp, true, nil
		}
		off, t, ok, err := l.refine(e, ts)
		if err != nil {
			return 0, 0, false, fmt.Errorf("partlog: %s: offset for time %d in batch at %d: %w", l.id, ts, first, err)
		}
		if ok {
			return max(off, start), t, true, nil
		}
	}
	return 0, 0, false, it.Error()
}

// refine reads the batch e describes and finds its first record with a
// timestamp at least ts.
func (l *Log) refine(e batchEntry, ts int64) (offset, timestamp int64, found bool, err error) {
	buf, err := l.readBatch(e)
	if err != nil {
		return 0, 0, false, err
	}
	defer putBatchBuf(buf)
	scratch := getBatchBuf(0)
	defer putBatchBuf(scratch)
	offset, timestamp, found, err = batch.FirstOffsetAtOrAfter(*buf, ts, (*scratch)[:0])
	return offset, timestamp, found, err
}

// readBatch reads the batch e describes into a pooled buffer (return it
// with putBatchBuf).
func (l *Log) readBatch(e batchEntry) (*[]byte, error) {
	l.mu.RLock()
	seg := l.findSegment(e.segBase)
	var sf *segFile
	if seg != nil && e.pos+int64(e.size) <= seg.size.Load() {
		sf = seg.acquire()
	}
	l.mu.RUnlock()
	if sf == nil {
		return nil, fmt.Errorf("%w: segment %d removed", ErrOffsetOutOfRange, e.segBase)
	}
	defer sf.unref()
	buf := getBatchBuf(int(e.size))
	if err := readFullAt(sf.f, *buf, e.pos); err != nil {
		putBatchBuf(buf)
		return nil, fmt.Errorf("read %d bytes at %d in segment %d: %w", e.size, e.pos, e.segBase, err)
	}
	return buf, nil
}

// MaxTimestamp returns the largest timestamp in the log and the offset of
// the first record carrying it (ListOffsets -3), or (-1, -1) for an empty
// log. The batch is tracked as appends go; the record inside it is looked
// up on first request. Safe from any goroutine.
func (l *Log) MaxTimestamp() (ts int64, offset int64) {
	l.maxMu.Lock()
	ts, base, offset := l.maxTs, l.maxTsBase, l.maxTsOffset
	l.maxMu.Unlock()
	if ts == noTimestamp || l.closed.Load() {
		return -1, -1
	}
	if offset >= 0 {
		return ts, max(offset, l.start.Load())
	}
	offset = base // if the lookup fails, the batch start errs towards more data
	if e, _, ok, err := l.entryAtOrAfter(base); err == nil && ok {
		if off, _, found, err := l.refine(e, ts); err == nil && found {
			offset = off
		}
	}
	l.maxMu.Lock()
	if l.maxTs == ts && l.maxTsBase == base {
		l.maxTsOffset = offset
	}
	l.maxMu.Unlock()
	return ts, max(offset, l.start.Load())
}

// maxPooledBatch caps the buffers kept for reuse, so that one huge batch
// does not pin its memory forever.
const maxPooledBatch = 1 << 20

var batchBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBatchBuf(n int) *[]byte {
	bp := batchBufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

func putBatchBuf(bp *[]byte) {
	if bp != nil && cap(*bp) <= maxPooledBatch {
		batchBufPool.Put(bp)
	}
}

// readScalar reads one of the log's single-valued keys.
func (l *Log) readScalar(kind byte) (v int64, ok bool, err error) {
	var k keyBuf
	b, closer, err := l.db.Get(k.scalar(l.num, kind))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(b) != 8 {
		return 0, false, fmt.Errorf("%w: key %c is %d bytes", errBadEntry, kind, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}
