// Package partlog stores partition logs: the record batches of every
// partition on a node, exactly as they arrived on the wire, in append-only
// segment files, with one Pebble database indexing all of them.
//
// # Layout
//
// A Store owns a directory:
//
//	<Dir>/<topic>-<partition>/<20-digit base offset>.log   segment files
//	<Dir>/__index/                                        Pebble index
//
// A segment holds v2 record batches back to back, byte for byte as the
// producer (or leader) sent them after offsets were assigned. Fetches hand
// those bytes to the socket with sendfile(2) (Region.WriteTo).
//
// Each log gets a short numeric id, persisted in the index and never
// reused, which prefixes all of its keys:
//
//	(id, 'o', lastOffset)  → segment base, file position, size, and the
//	                         batch's lastOffsetDelta, max timestamp,
//	                         producer id/epoch, base sequence, attributes
//	(id, 't', maxTs)       → base offset of the first batch that raised the
//	                         running maximum timestamp to maxTs
//	(id, 's')              → log start offset
//	(id, 'r')              → recovery point: every batch below it was fsynced
//	(id, 'e', leaderEpoch) → first offset written in that leader epoch
//	(id, 'h')              → marker: the 'e' keys describe the whole log
//
// Finding offset X is one SeekGE to the first lastOffset >= X; finding a
// timestamp T is one SeekGE in the time index to the first running maximum
// >= T, then a look inside that batch for the first record at or after T
// (batch.FirstOffsetAtOrAfter). The base offset is not stored separately
// in the batch entry: it is lastOffset - lastOffsetDelta.
//
// The 'e' keys are the log's leader-epoch history (Kafka's leader-epoch
// checkpoint), which OffsetForLeaderEpoch and replica truncation use: one
// entry per leader epoch that has records in the log, at the first offset
// it wrote (EpochEntries, EndOffsetForEpoch). Each batch carries its
// epoch in its header (PartitionLeaderEpoch, stamped by the leader), so
// the history is always what the headers of the batches in
// [start, end) imply: Append adds an entry when a batch raises the epoch
// and refuses one that lowers it (ErrEpochRegression), Truncate drops the
// entries of the cut batches, and a start offset move collapses the
// entries below it into one at the new start, as Kafka's
// truncateFromStart does (an empty log has an empty history).
//
// The time index always describes the batches that remain: when the start
// offset moves, the removed prefix of time entries goes and the running
// maximum is recomputed from the first remaining batch until it meets the
// old entries again. Without that, a large timestamp in deleted data would
// hide the remaining batches from timestamp queries.
//
// # Concurrency
//
// Each Log has one owner goroutine, the only one that calls Append,
// Truncate, DeleteRecordsBefore, EnforceRetention, SetConfig and Close (and
// Store.DeleteLog for that log). Sync, Read, StartOffset, EndOffset,
// OffsetForTimestamp, MaxTimestamp, Batches, Size, EpochEntries and
// EndOffsetForEpoch may be called from any goroutine concurrently with the
// owner. Offsets are atomics; the epoch history is published
// copy-on-write behind an atomic pointer, ahead of the end offset that
// covers its entries; the segment
// list is behind an RWMutex; segment files are reference counted, so a
// Region keeps a segment readable after retention deleted it, and the file
// closes when the last reference is released. Sync may run concurrently
// with Append (group commit from a syncer goroutine): the file system
// must allow a file's WriteAt and Sync to overlap, as vfs.Default and
// vfs.MemFS do.
//
// Append writes with a single positioned write and no fsync, then indexes
// with a NoSync Pebble commit, and only then publishes the new end offset,
// so a reader that sees an offset below EndOffset finds it written and
// indexed.
//
// Store methods are safe for concurrent use, but Store.Close must not race
// with anything else on the store.
//
// # Durability and recovery
//
// Sync fdatasyncs every segment that may hold unsynced bytes (including
// ones rolled since the last Sync, after syncing the partition directory
// so their names survive) and returns the end offset read before it
// started. It then records that offset as the recovery point, without an
// fsync of the index, except once per 32 MiB appended, which bounds how
// much a crash can make recovery rescan. Sync trusts the directory
// entries OpenLog found to be durable, so OpenLog syncs the partition
// directory every time: a process that died may have left entries it
// never synced (a segment it rolled, a truncation copy renamed over a
// segment before a failed directory sync), and without that sync a power
// loss could bring back the file an entry named before, under batches a
// later Sync reported durable.
//
// Index writes are not synced: the index can be rebuilt from the segments.
// Pebble replays a prefix of its writes after a crash, and the recovery
// point is written after the entries below it, so entries below a
// recovered recovery point are present and their bytes intact. OpenLog
// therefore trusts everything below the recovery point and checks
// everything after it batch by batch (header sanity, offset continuity,
// CRC-32C), truncating at the first torn or corrupt batch, deleting later
// segments, dropping index entries past the recovered end and adding
// missing ones. The same goes for the epoch history: entries below the
// recovery point are kept, the rest is rebuilt from the headers of the
// scanned batches. An index without the 'h' marker (written before the
// history existed) is trusted for nothing, so that open scans the whole
// log once. The scanned bytes are fsynced before the recovery point
// moves past them. A clean Close leaves the recovery point at the end, so
// the next open scans nothing. A crash between any two syscalls recovers a
// prefix of what was appended that includes everything a completed Sync
// covered. Bytes below the recovery point are not re-read at open: bit rot
// in synced data is not detected here.
//
// The start offset is persisted with a synced write before segments below
// it are deleted; an open deletes segments a crash left below it. Truncate
// lowers the recovery point durably before it cuts files, so recovery can
// never re-index a cut batch. A snapshot (SaveSnapshot) that covers batches
// Truncate cuts, or that a crash lost, is deleted in the same synced write
// (Truncate) or at open, so a snapshot never describes batches other than
// the log's. DeleteLog renames the directory away before
// dropping the index, and Open finishes an interrupted deletion.
//
// # Preallocation
//
// An fdatasync after an append that grew the file must also commit the
// new file size through the file system's journal, which on ext4 makes
// Sync's latency tail an order of magnitude longer. So when a file has a
// descriptor (on Linux), Append extends the active segment ahead of the
// data with fallocate(2) in steps that double with the file from 64 KiB
// up to 8 MiB (so an idle partition reserves little disk; capped at
// SegmentBytes unless a batch needs more), moving the file size with it;
// appends then land
// inside the file and Sync commits a size change once per step. A file
// system that cannot preallocate turns it off for the log. A segment's
// logical size (the bytes holding batches, which reads, Size and
// retention use) is tracked apart from its file's length, and only the
// active segment may be longer than its batches: rolling trims the old
// active segment, durably, before the next segment file exists, and Close
// trims the active one, so a clean open finds exact sizes. After a crash,
// the zeros past the active segment's last batch are dropped at open as a
// preallocated tail (logged at Debug); a tail that is not all zeros is
// still reported as torn or corrupt.
//
// vfs.File has no Truncate. Files that offer one (vfs.Default's, backed by
// *os.File) are truncated in place; for others (vfs.MemFS, a simulator's
// file system) the kept prefix is copied to a temporary file that is
// synced and renamed over the segment. If an Append's write fails and the
// partial bytes cannot be removed, the log refuses further appends until
// it is reopened.
//
// All file access goes through the vfs.FS given in Options so that a
// simulator can substitute a crashable in-memory file system; only
// Region.WriteTo reaches past it, using the file's descriptor for
// sendfile when the vfs.File has one (Fd() != vfs.InvalidFd). Appends use
// WriteAt at the segment's end: vfs.File.Write may modify its input, and
// the file position is meaningless after a truncation. (vfs.MemFS grows a
// file byte by byte in WriteAt, so appends to it are slow; a simulator's
// FS should implement WriteAt directly.)
//
// # Semantics worth knowing
//
//   - Truncate removes whole batches: the end offset becomes the base
//     offset of the batch holding the requested offset. A segment cut in
//     the middle is sealed and the next append rolls, so a Region handed
//     out before the cut never sees new batches at old positions.
//   - A segment rolls when the append would take it past SegmentBytes
//     (an empty segment takes any batch) or when its first append is older
//     than SegmentMs by the caller's clock; for a segment recovered at
//     open, the first batch's max timestamp (capped at now) stands in for
//     its first append time, as in Kafka. The package never reads a clock.
//   - Retention by size deletes a segment while the log would still hold
//     at least RetentionBytes without it, as Kafka does. RetentionMs 0
//     (the zero LogConfig) deletes every inactive segment; use -1 to keep
//     data, or DefaultLogConfig.
//   - A Read whose offset falls below the start offset while it runs
//     (retention, DeleteRecordsBefore) fails with ErrOffsetOutOfRange; a
//     Read racing Truncate may fail with another error.
//   - OffsetForTimestamp and MaxTimestamp never answer below the start
//     offset: in a batch that DeleteRecordsBefore cut into, a match below
//     the start becomes the start offset.
//   - Each segment keeps a file descriptor open while the log is open.
package partlog
