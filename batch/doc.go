// Package batch reads, validates and rewrites Kafka v2 record batches in
// their wire format, without copying them and without allocating per record.
//
// A record batch is the unit Troupe moves everywhere: a producer sends it,
// the partition leader validates it and assigns offsets by rewriting the
// header in place, the log stores the same bytes, and fetches return them
// unchanged. The fields rewritten here (base offset, partition leader epoch)
// lie outside the CRC-32C, so rewriting never recomputes the checksum; only
// SetLogAppendTime, which changes attributes and maxTimestamp, does.
//
// Who uses what:
//   - the produce path: Validate, then AssignOffsets and
//     SetPartitionLeaderEpoch on the same bytes;
//   - the log's recovery scan: Iter, which stops at the first torn or
//     corrupt batch and reports where the intact prefix ends;
//   - readers of individual records (ListOffsets by timestamp, compaction,
//     transaction markers): Payload, RecordIter, FirstOffsetAtOrAfter;
//   - tests, and the broker's own writes: Builder and BuildBatch.
//
// Compressed payloads are inflated only into bounded buffers (see
// DecompressLimit), so a hostile batch fails as ErrCorrupt rather than
// exhausting memory.
//
// Layout of the 61-byte header (all big-endian):
//
//	offset  0  baseOffset           int64
//	offset  8  batchLength          int32  (bytes after this field)
//	offset 12  partitionLeaderEpoch int32
//	offset 16  magic                int8   (must be 2)
//	offset 17  crc                  uint32 (CRC-32C of offset 21..end)
//	offset 21  attributes           int16
//	offset 23  lastOffsetDelta      int32
//	offset 27  firstTimestamp       int64
//	offset 35  maxTimestamp         int64
//	offset 43  producerId           int64
//	offset 51  producerEpoch        int16
//	offset 53  baseSequence         int32
//	offset 57  recordCount          int32
package batch
