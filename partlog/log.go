package partlog

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/troupe-io/troupe/batch"
)

// DefaultSegmentBytes is used when LogConfig.SegmentBytes is not positive
// (Kafka's segment.bytes default).
const DefaultSegmentBytes = 1 << 30

// recoveryPointSyncBytes paces how often Sync makes its recovery point
// durable in the index. The recovery point is written on every Sync that
// advances it, but without an fsync of the index; after this many appended
// bytes one write is synced, bounding how much a crash can make recovery
// rescan even if the OS never wrote the index's WAL back on its own.
const recoveryPointSyncBytes = 32 << 20

// preallocBytes is how far ahead of the appends the active segment's file
// is extended (never past SegmentBytes unless one append needs more).
// Writes inside the extended range leave the file size alone, so the Sync
// after them commits no metadata; the extension itself is one metadata
// change per chunk, committed by the Sync that follows it.
const preallocBytes = 8 << 20

// minPreallocBytes is the first preallocation step of a segment; each
// later step is the file's size so far, up to preallocBytes.
const minPreallocBytes = 64 << 10

// LogConfig is the per-topic storage configuration.
type LogConfig struct {
	// SegmentBytes is the size at which the active segment rolls (the new
	// append would push it past this). Not positive: DefaultSegmentBytes.
	SegmentBytes int64
	// SegmentMs rolls the active segment once its first append is this old.
	// Not positive: never roll by time.
	SegmentMs int64
	// RetentionMs deletes a segment once its newest record is this old.
	// Negative: keep forever. Zero deletes every inactive segment.
	RetentionMs int64
	// RetentionBytes deletes oldest segments while the log would still hold
	// at least this many bytes without them. Negative: no size limit.
	RetentionBytes int64
}

// DefaultLogConfig returns Kafka's defaults: 1 GiB segments rolled after
// 7 days, 7 days retention, no size limit.
func DefaultLogConfig() LogConfig {
	const week = 7 * 24 * 3600 * 1000
	return LogConfig{SegmentBytes: DefaultSegmentBytes, SegmentMs: week, RetentionMs: week, RetentionBytes: -1}
}

// Log is one partition's log: a run of segment files plus its entries in
// the Store's index. See the package documentation for which methods the
// owner goroutine calls and which are safe from anywhere.
type Log struct {
	store  *Store
	id     LogID
	num    uint32 // prefix of this log's index keys
	dir    string
	fs     vfs.FS
	db     *pebble.DB
	logger *slog.Logger

	// Published state, readable from any goroutine. Invariant:
	// start <= end, every batch with an offset in [start, end) is written
	// and indexed before end moves past it.
	start  atomic.Int64
	end    atomic.Int64
	size   atomic.Int64 // sum of segment sizes
	closed atomic.Bool
	// epochs is the leader-epoch history (epoch.go), published
	// copy-on-write: the owner stores a new slice and never changes one it
	// stored. An Append stores its entries before the end offset that
	// covers them; see epochView for how readers pair the two.
	epochs atomic.Pointer[[]EpochEntry]

	// mu guards the segs slice header and the segments' file handles.
	// The owner writes under mu; other goroutines read under mu.RLock.
	// The owner reads segs without locking (it is the only writer).
	// Invariant: segs is sorted by base, non-empty while open, and the
	// last element is the active segment.
	mu   sync.RWMutex
	segs []*segment

	// maxMu guards the log's largest timestamp, for ListOffsets -3.
	maxMu       sync.Mutex
	maxTs       int64 // noTimestamp if empty
	maxTsBase   int64 // base offset of the batch holding it
	maxTsOffset int64 // exact record offset, -1 until MaxTimestamp looks it up

	// syncMu serializes Sync with itself and with the owner operations that
	// rewrite durable state (Truncate, Close).
	syncMu sync.Mutex
	// syncFrom is the base of the oldest segment that may hold bytes no
	// Sync covered yet; older ones are durable.
	syncFrom int64
	// rp is the recovery point last written to the index: every batch
	// below it was fsynced before the write. rpDurableAt is l.appended when
	// a recovery point write was last synced.
	rp          int64
	rpDurableAt int64
	appended    atomic.Int64 // bytes appended since open

	// Owner-only state.
	cfg    LogConfig
	wb     *pebble.Batch // reused index batch
	runMax int64         // running maximum timestamp == the last time-index key
	failed error         // sticky: a failed write could not be undone
	key    keyBuf
	val    [entryLen]byte
	tsVal  [8]byte
	// epochAdds collects an Append's new epoch entries until its index
	// commit succeeds (reused: no allocation unless the epoch changes).
	epochAdds []EpochEntry

	// noPrealloc is set once the file system refused to preallocate.
	noPrealloc bool
}

// ID returns the log's name.
func (l *Log) ID() LogID { return l.id }

// StartOffset is the first offset that may be read (ListOffsets -2).
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the offset the next appended record will get.
func (l *Log) EndOffset() int64 { return l.end.Load() }

// Size is the number of bytes in the log's segment files.
func (l *Log) Size() int64 { return l.size.Load() }

// SetConfig changes the log's configuration; it applies from the next
// Append or EnforceRetention. Owner only.
func (l *Log) SetConfig(cfg LogConfig) { l.cfg = cfg }

func (l *Log) segmentBytes() int64 {
	if l.cfg.SegmentBytes > 0 {
		return l.cfg.SegmentBytes
	}
	return DefaultSegmentBytes
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Append writes records, one or more complete v2 batches whose offsets are
// already assigned and continue exactly at EndOffset, to the active
// segment, rolling first if the segment is full or too old (nowMs is the
// clock). It does not fsync: durability comes from Sync. On any error
// nothing of records remains in the log. Owner only.
//
// A batch whose PartitionLeaderEpoch is above the log's latest epoch
// starts a new entry of the epoch history at its base offset; one below
// it (including an unstamped -1 once the history has an entry) fails
// with ErrEpochRegression.
//
// The batches' CRCs are not checked here: the caller validated them when
// they arrived, and recovery checks them after a crash.
func (l *Log) Append(records []byte, nowMs int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("partlog: %s: append refused after an earlier failure: %w", l.id, l.failed)
	}
	if len(records) == 0 {
		return fmt.Errorf("partlog: %s: append: no batches", l.id)
	}
	end := l.end.Load()
	next, err := checkFraming(records, end, latestEpoch(l.ownEpochs()))
	if err != nil {
		return fmt.Errorf("partlog: %s: append at offset %d: %w", l.id, end, err)
	}

	seg := l.active()
	if l.shouldRoll(seg, int64(len(records)), nowMs) {
		if err := l.trimTail(seg); err != nil {
			return fmt.Errorf("partlog: %s: roll segment at offset %d: %w", l.id, end, err)
		}
		if seg, err = l.roll(end); err != nil {
			return fmt.Errorf("partlog: %s: roll segment at offset %d: %w", l.id, end, err)
		}
	}
	pos := seg.size.Load()
	if pos == 0 {
		seg.firstAppendMs = nowMs
	}

	// A positioned write, not Write: vfs.File.Write may scribble on its
	// input (the caller's batches), and after an in-place truncation the
	// file position no longer matches the end of the data.
	sf := seg.file.Load()
	if need := pos + int64(len(records)); need > seg.allocEnd {
		l.preallocate(seg, sf, need)
	}
	if n, err := sf.f.WriteAt(records, pos); err != nil || n != len(records) {
		if err == nil {
			err = fmt.Errorf("short write: %d of %d bytes", n, len(records))
		}
		l.undoWrite(seg, pos)
		return fmt.Errorf("partlog: %s: write %s at %d: %w", l.id, seg.path, pos, err)
	}

	runMax, runMaxBase, newEpochs, err := l.indexBatches(seg, pos, records)
	if err != nil {
		l.undoWrite(seg, pos)
		return fmt.Errorf("partlog: %s: index append at offset %d: %w", l.id, end, err)
	}

	// Publish: size before end, so a reader that sees the new end finds
	// the bytes inside the segment's size.
	seg.size.Store(pos + int64(len(records)))
	l.size.Add(int64(len(records)))
	l.appended.Add(int64(len(records)))
	if runMax > l.runMax {
		l.maxMu.Lock()
		l.maxTs, l.maxTsBase, l.maxTsOffset = runMax, runMaxBase, -1
		l.maxMu.Unlock()
		l.runMax = runMax
	}
	if len(newEpochs) > 0 {
		// Before the end offset moves past the batches: see epochView.
		old := l.ownEpochs()
		l.publishEpochs(append(append(make([]EpochEntry, 0, len(old)+len(newEpochs)), old...), newEpochs...))
	}
	l.end.Store(next)
	return nil
}

// preallocate extends seg's file to cover at least need bytes, a chunk at
// a time, when the file has a descriptor. Failure is not an append error:
// the write that follows extends the file as it always could, and if the
// disk is full it fails there. Owner only.
func (l *Log) preallocate(seg *segment, sf *segFile, need int64) {
	if l.noPrealloc || sf.fd == vfs.InvalidFd {
		return
	}
	from := seg.allocEnd
	// Grow in steps that double with the segment, from minPreallocBytes up
	// to preallocBytes: an idle partition reserves little disk, a busy one
	// pays for one fallocate per 8 MiB.
	step := min(max(from, minPreallocBytes), preallocBytes)
	to := max(need, min(from+step, l.segmentBytes()))
	err := fallocate(sf.fd, from, to-from)
	switch {
	case err == nil:
		seg.allocEnd = to
	case preallocUnsupported(err):
		l.noPrealloc = true
		l.logger.Debug("partlog: file system cannot preallocate segments", "segment", seg.path, "error", err)
	default:
		// The range may be partly allocated and the file partly extended;
		// counting it as allocated makes roll and Close trim it, and
		// skips retrying on every append until the writes pass it.
		seg.allocEnd = to
		l.logger.Debug("partlog: preallocating segment failed", "segment", seg.path, "error", err)
	}
}

// trimTail cuts a preallocated tail off seg's file, durably, so that the
// file holds exactly its batches. Roll calls it before the next segment
// exists, which keeps the invariant that only the last segment may have
// a zero tail: recovery never takes a rolled segment's stat size for more
// than its batches. Owner only.
func (l *Log) trimTail(seg *segment) error {
	if seg.allocEnd <= seg.size.Load() {
		return nil
	}
	return truncateFile(l.fs, l.dir, seg, seg.size.Load(), l.withSegmentsLocked)
}

// checkFraming walks the batches in records without copying, checking
// that they tile it exactly, that offsets continue from want, and that
// leader epochs never go below epoch (the log's latest, or noEpoch). It
// returns the offset after the last batch.
func checkFraming(records []byte, want int64, epoch int32) (int64, error) {
	for off := 0; off < len(records); {
		h, err := batch.ParseHeader(records[off:])
		if err != nil {
			return 0, fmt.Errorf("batch at byte %d: %w", off, err)
		}
		if h.Size() > len(records)-off {
			return 0, fmt.Errorf("batch at byte %d is %d bytes, only %d present: %w", off, h.Size(), len(records)-off, batch.ErrCorrupt)
		}
		if h.BaseOffset != want {
			return 0, fmt.Errorf("batch at byte %d has base offset %d, want %d", off, h.BaseOffset, want)
		}
		if h.LastOffsetDelta < 0 {
			return 0, fmt.Errorf("batch at byte %d has negative last offset delta %d: %w", off, h.LastOffsetDelta, batch.ErrCorrupt)
		}
		// Unstamped batches (-1, or any negative value) count as noEpoch:
		// fine before the first stamped one, a regression after it.
		e := max(h.PartitionLeaderEpoch, noEpoch)
		if e < epoch {
			return 0, fmt.Errorf("batch at offset %d has leader epoch %d, below the latest %d: %w",
				h.BaseOffset, h.PartitionLeaderEpoch, epoch, ErrEpochRegression)
		}
		epoch = e
		want = h.LastOffset() + 1
		off += h.Size()
	}
	return want, nil
}

// indexBatches writes the index entries for records, just written at pos
// in seg, in one NoSync commit: batch and time entries, and an epoch
// entry for each batch that raises the leader epoch. It returns the new
// running maximum timestamp, the base offset of the batch that set it,
// and the new epoch entries (valid until the next Append). The segment's
// max timestamp is updated only on success.
func (l *Log) indexBatches(seg *segment, pos int64, records []byte) (runMax, runMaxBase int64, epochs []EpochEntry, err error) {
	wb := l.wb
	defer wb.Reset()
	runMax, segMax := l.runMax, seg.maxTs
	epoch, epochs := latestEpoch(l.ownEpochs()), l.epochAdds[:0]
	var epochVal [8]byte
	for off := 0; off < len(records); {
		h, _ := batch.ParseHeader(records[off:]) // checkFraming passed
		e := batchEntry{
			segBase:         seg.base,
			pos:             pos + int64(off),
			size:            int32(h.Size()),
			lastOffsetDelta: h.LastOffsetDelta,
			maxTimestamp:    h.MaxTimestamp,
			producerID:      h.ProducerID,
			producerEpoch:   h.ProducerEpoch,
			baseSequence:    h.BaseSequence,
			attributes:      h.Attributes,
		}
		if err := wb.Set(l.key.offset(l.num, h.LastOffset()), e.encode(&l.val), nil); err != nil {
			return 0, 0, nil, err
		}
		if h.MaxTimestamp > runMax {
			runMax, runMaxBase = h.MaxTimestamp, h.BaseOffset
			binary.BigEndian.PutUint64(l.tsVal[:], uint64(h.BaseOffset))
			if err := wb.Set(l.key.time(l.num, runMax), l.tsVal[:], nil); err != nil {
				return 0, 0, nil, err
			}
		}
		// nextEntry's rule; base >= end >= start, and checkFraming ruled
		// out regressions.
		if h.PartitionLeaderEpoch > epoch {
			epoch = h.PartitionLeaderEpoch
			epochs = append(epochs, EpochEntry{Epoch: epoch, StartOffset: h.BaseOffset})
			binary.BigEndian.PutUint64(epochVal[:], uint64(h.BaseOffset))
			if err := wb.Set(l.key.epoch(l.num, epoch), epochVal[:], nil); err != nil {
				return 0, 0, nil, err
			}
		}
		segMax = max(segMax, h.MaxTimestamp)
		off += h.Size()
	}
	l.epochAdds = epochs[:0]
	if err := wb.Commit(pebble.NoSync); err != nil {
		return 0, 0, nil, err
	}
	seg.maxTs = segMax // meaningful only while seg.maxTsKnown
	return runMax, runMaxBase, epochs, nil
}

// undoWrite cuts a failed append off the segment file, so no partial batch
// stays where the next append (or recovery) would find it. If even that
// fails the log refuses further appends; reopening recovers it.
func (l *Log) undoWrite(seg *segment, pos int64) {
	err := truncateFile(l.fs, l.dir, seg, pos, l.withSegmentsLocked)
	if err != nil {
		l.failed = err
		l.logger.Error("partlog: cannot undo failed append; log refuses appends until reopened",
			"segment", seg.path, "error", err)
	}
}

// withSegmentsLocked runs fn holding mu for writing.
func (l *Log) withSegmentsLocked(fn func()) {
	l.mu.Lock()
	fn()
	l.mu.Unlock()
}

// shouldRoll reports whether an append of n bytes goes to a new segment.
// An empty segment never rolls: a batch larger than SegmentBytes gets a
// segment of its own.
func (l *Log) shouldRoll(seg *segment, n int64, nowMs int64) bool {
	size := seg.size.Load()
	if size == 0 {
		return false
	}
	if seg.sealed || size+n > l.segmentBytes() {
		return true
	}
	if l.cfg.SegmentMs > 0 {
		if seg.firstAppendMs < 0 {
			seg.firstAppendMs = l.firstBatchTimestamp(seg, nowMs)
		}
		return nowMs-seg.firstAppendMs > l.cfg.SegmentMs
	}
	return false
}

// firstBatchTimestamp estimates when a segment recovered at open got its
// first append: its first batch's max timestamp (as Kafka does), but never
// later than now, so producer clocks ahead of ours cannot postpone a roll.
func (l *Log) firstBatchTimestamp(seg *segment, nowMs int64) int64 {
	e, _, ok, err := l.entryAtOrAfter(seg.base)
	if err != nil || !ok || e.segBase != seg.base {
		return nowMs
	}
	return min(e.maxTimestamp, nowMs)
}

// roll creates a new active segment starting at base. Its directory entry
// is made durable by the next Sync, not here: until a Sync returns, losing
// the new file in a crash loses only unsynced appends.
func (l *Log) roll(base int64) (*segment, error) {
	path := l.fs.PathJoin(l.dir, segmentName(base))
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	seg := newSegment(base, path, f, 0)
	seg.maxTs, seg.maxTsKnown = noTimestamp, true
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return seg, nil
}

// Sync makes every batch appended before the call durable, including
// segments rolled since the last Sync and their directory entries, and
// returns the end offset it covers. It may run concurrently with Append
// (a syncer goroutine calls it for group commit) and with itself.
func (l *Log) Sync() (durableEnd int64, err error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	end := l.end.Load()

	// Every byte below end is in a segment already in the list: Append
	// adds the segment before writing to it and publishes end after.
	l.mu.RLock()
	var files []*segFile
	dirSynced := true
	lastBase := l.syncFrom
	for _, seg := range l.segs {
		if seg.base < l.syncFrom {
			continue
		}
		files = append(files, seg.acquire())
		dirSynced = dirSynced && seg.dirSynced.Load()
		lastBase = seg.base
	}
	segs := l.segs
	l.mu.RUnlock()
	defer func() {
		for _, sf := range files {
			sf.unref()
		}
	}()

	if !dirSynced {
		if err := syncDir(l.fs, l.dir); err != nil {
			return 0, fmt.Errorf("partlog: %s: sync: %w", l.id, err)
		}
		for _, seg := range segs {
			seg.dirSynced.Store(true)
		}
	}
	for _, sf := range files {
		if err := sf.f.SyncData(); err != nil {
			return 0, fmt.Errorf("partlog: %s: sync: %w", l.id, err)
		}
	}
	l.syncFrom = lastBase

	if end > l.rp {
		opts := pebble.NoSync
		if appended := l.appended.Load(); appended-l.rpDurableAt >= recoveryPointSyncBytes {
			opts, l.rpDurableAt = pebble.Sync, appended
		}
		if err := l.writeRecoveryPoint(end, opts); err != nil {
			return 0, fmt.Errorf("partlog: %s: sync: %w", l.id, err)
		}
	}
	return end, nil
}

// writeRecoveryPoint records that every batch below rp is durable in its
// segment file. Callers hold syncMu.
func (l *Log) writeRecoveryPoint(rp int64, opts *pebble.WriteOptions) error {
	var k keyBuf
	if err := l.db.Set(k.scalar(l.num, kindRecovery), encodeInt64(rp), opts); err != nil {
		return fmt.Errorf("write recovery point: %w", err)
	}
	l.rp = rp
	return nil
}

// Close trims the active segment's preallocated tail, syncs the log,
// records a durable recovery point at its end (so the next OpenLog has
// nothing to scan) and closes it. Regions still out stay readable until
// released. Owner only.
func (l *Log) Close() error {
	if l.closed.Load() {
		return nil
	}
	// Trimmed first, so that a clean open finds every file exactly as long
	// as its batches.
	trimErr := l.trimTail(l.active())
	end, err := l.Sync()
	if err == nil && trimErr != nil {
		err = fmt.Errorf("partlog: %s: close: trim preallocated tail: %w", l.id, trimErr)
	}
	if err == nil {
		l.syncMu.Lock()
		err = l.writeRecoveryPoint(end, pebble.Sync)
		l.syncMu.Unlock()
		if err != nil {
			err = fmt.Errorf("partlog: %s: close: %w", l.id, err)
		}
	}
	l.closeFiles()
	l.store.forget(l.id, l)
	return err
}

// closeFiles drops the log's references on its segments without syncing.
func (l *Log) closeFiles() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.closed.Swap(true) {
		return
	}
	l.mu.Lock()
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, seg := range segs {
		seg.release()
	}
	if l.wb != nil {
		_ = l.wb.Close()
		l.wb = nil
	}
}

// setMaxTimestamp resets the log's largest timestamp from the time index
// after the index changed other than by Append.
func (l *Log) setMaxTimestamp(ts, base int64) {
	l.maxMu.Lock()
	l.maxTs, l.maxTsBase, l.maxTsOffset = ts, base, -1
	l.maxMu.Unlock()
	l.runMax = ts
}
