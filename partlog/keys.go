package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Index key layout. Every key starts with a 4-byte big-endian log id so that
// one log's keys are contiguous and DeleteLog is a single range deletion.
// Id 0 is reserved for Store-wide metadata.
//
//	meta:   [0 0 0 0] 'n' topic 0x00 partition(4)  → log id (4)
//	meta:   [0 0 0 0] 'c'                          → next log id (4)
//	log:    [id] 'o' lastOffset(8)                 → batchEntry (entryLen bytes)
//	log:    [id] 't' runningMaxTimestamp(8, sign-flipped) → baseOffset (8)
//	log:    [id] 's'                               → log start offset (8)
//	log:    [id] 'r'                               → recovery point (8)
//	log:    [id] 'p'                               → snapshot end (8) + snapshot bytes
//	log:    [id] 'e' leaderEpoch(4)                → start offset (8) of that epoch
//	log:    [id] 'h'                               → 1 (8): the 'e' keys describe the
//	                                                 whole log (absent in indexes
//	                                                 written before they existed)
//
// Integers are big-endian so byte order is numeric order; timestamps have
// their sign bit flipped so that negative ones (-1 = "no timestamp") sort
// below positive ones.
const (
	kindName     = 'n'
	kindCounter  = 'c'
	kindOffset   = 'o'
	kindTime     = 't'
	kindStart    = 's'
	kindRecovery = 'r'
	kindSnapshot = 'p'
	kindEpoch    = 'e'
	kindEpochsOK = 'h'

	idLen      = 4
	scalarKey  = idLen + 1     // id + kind
	offsetKey  = idLen + 1 + 8 // id + kind + 8-byte payload
	epochKey   = idLen + 1 + 4 // id + kind + 4-byte leader epoch
	firstLogID = 1             // id 0 holds the meta keys
)

// keyBuf holds one fixed-size key; it lives in the caller's frame or struct
// so building a key never allocates.
type keyBuf [offsetKey]byte

func putID(b []byte, id uint32) { binary.BigEndian.PutUint32(b, id) }

// offset is the key of the batch whose last offset is lastOffset.
func (k *keyBuf) offset(id uint32, lastOffset int64) []byte {
	putID(k[:], id)
	k[idLen] = kindOffset
	binary.BigEndian.PutUint64(k[idLen+1:], uint64(lastOffset))
	return k[:]
}

// time is the key of a time-index entry for running maximum ts.
func (k *keyBuf) time(id uint32, ts int64) []byte {
	putID(k[:], id)
	k[idLen] = kindTime
	binary.BigEndian.PutUint64(k[idLen+1:], uint64(ts)^(1<<63))
	return k[:]
}

// epoch is the key of the epoch-history entry for leaderEpoch. Only
// non-negative epochs are stored, so big-endian order is numeric order.
func (k *keyBuf) epoch(id uint32, leaderEpoch int32) []byte {
	putID(k[:], id)
	k[idLen] = kindEpoch
	binary.BigEndian.PutUint32(k[idLen+1:], uint32(leaderEpoch))
	return k[:epochKey]
}

// kindEnd is the first key after every key of the given kind for log id.
func (k *keyBuf) kindEnd(id uint32, kind byte) []byte {
	putID(k[:], id)
	k[idLen] = kind + 1
	return k[:scalarKey]
}

// scalar is the key of a single-valued per-log setting (start offset,
// recovery point).
func (k *keyBuf) scalar(id uint32, kind byte) []byte {
	putID(k[:], id)
	k[idLen] = kind
	return k[:scalarKey]
}

// logRange returns [lo, hi) covering every key of log id.
func logRange(id uint32) (lo, hi []byte) {
	lo = make([]byte, idLen)
	putID(lo, id)
	hi = make([]byte, idLen)
	putID(hi, id+1)
	return lo, hi
}

func decodeTimeKey(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[idLen+1:]) ^ (1 << 63))
}

func decodeOffsetKey(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[idLen+1:]))
}

func nameKey(id LogID) []byte {
	k := make([]byte, 0, idLen+1+len(id.Topic)+1+4)
	k = append(k, 0, 0, 0, 0, kindName)
	k = append(k, id.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(id.Partition))
}

func counterKey() []byte { return []byte{0, 0, 0, 0, kindCounter} }

func encodeInt64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("index value is %d bytes, want 8", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// batchEntry is the index value for one stored batch. The batch's last
// offset is the key; its base offset is lastOffset - lastOffsetDelta (not
// stored twice).
type batchEntry struct {
	segBase         int64 // base offset of the segment file holding the batch
	pos             int64 // byte position of the batch in that file
	size            int32 // bytes, header included
	lastOffsetDelta int32
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	attributes      int16
}

const (
	entryVersion = 1
	entryLen     = 1 + 8 + 8 + 4 + 4 + 8 + 8 + 2 + 4 + 2
)

var errBadEntry = errors.New("partlog: malformed index entry")

func (e *batchEntry) encode(b *[entryLen]byte) []byte {
	b[0] = entryVersion
	binary.BigEndian.PutUint64(b[1:], uint64(e.segBase))
	binary.BigEndian.PutUint64(b[9:], uint64(e.pos))
	binary.BigEndian.PutUint32(b[17:], uint32(e.size))
	binary.BigEndian.PutUint32(b[21:], uint32(e.lastOffsetDelta))
	binary.BigEndian.PutUint64(b[25:], uint64(e.maxTimestamp))
	binary.BigEndian.PutUint64(b[33:], uint64(e.producerID))
	binary.BigEndian.PutUint16(b[41:], uint16(e.producerEpoch))
	binary.BigEndian.PutUint32(b[43:], uint32(e.baseSequence))
	binary.BigEndian.PutUint16(b[47:], uint16(e.attributes))
	return b[:]
}

func (e *batchEntry) decode(b []byte) error {
	if len(b) != entryLen || b[0] != entryVersion {
		return fmt.Errorf("%w: %d bytes, version %d", errBadEntry, len(b), firstByte(b))
	}
	e.segBase = int64(binary.BigEndian.Uint64(b[1:]))
	e.pos = int64(binary.BigEndian.Uint64(b[9:]))
	e.size = int32(binary.BigEndian.Uint32(b[17:]))
	e.lastOffsetDelta = int32(binary.BigEndian.Uint32(b[21:]))
	e.maxTimestamp = int64(binary.BigEndian.Uint64(b[25:]))
	e.producerID = int64(binary.BigEndian.Uint64(b[33:]))
	e.producerEpoch = int16(binary.BigEndian.Uint16(b[41:]))
	e.baseSequence = int32(binary.BigEndian.Uint32(b[43:]))
	e.attributes = int16(binary.BigEndian.Uint16(b[47:]))
	if e.size <= 0 || e.pos < 0 || e.lastOffsetDelta < 0 {
		return fmt.Errorf("%w: size %d pos %d delta %d", errBadEntry, e.size, e.pos, e.lastOffsetDelta)
	}
	return nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// noTimestamp is below every timestamp a batch can carry, the running
// maximum of an empty log.
const noTimestamp = math.MinInt64
