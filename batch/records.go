package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Record layout inside a records section (all integers zigzag varints
// unless noted):
//
//	length          varint   bytes after this field
//	attributes      int8     unused, always 0
//	timestampDelta  varlong  from the header's firstTimestamp
//	offsetDelta     varint   from the header's baseOffset
//	keyLength       varint   -1 for a null key
//	key             bytes
//	valueLength     varint   -1 for a null value
//	value           bytes
//	headerCount     varint
//	headers         headerCount × (keyLength varint ≥ 0, key, valueLength varint ≥ -1, value)

// readVarint decodes the zigzag varint at b[i:] and returns the index just
// past it. Most lengths and deltas in practice fit one byte, hence the fast
// path before binary.Varint.
func readVarint(b []byte, i int) (v int64, next int, ok bool) {
	if i >= len(b) {
		return 0, i, false
	}
	if c := b[i]; c < 0x80 {
		return int64(c>>1) ^ -int64(c&1), i + 1, true
	}
	v, n := binary.Varint(b[i:])
	if n <= 0 {
		return 0, i, false
	}
	return v, i + n, true
}

// readVarint32 is readVarint for fields Kafka defines as 32-bit.
func readVarint32(b []byte, i int) (v int32, next int, ok bool) {
	w, next, ok := readVarint(b, i)
	if !ok || w < math.MinInt32 || w > math.MaxInt32 {
		return 0, i, false
	}
	return int32(w), next, true
}

// varintLen is the encoded size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// RecordView is one decoded record. Its slices alias the records section it
// was read from, with their capacity capped so appending to them never
// overwrites a neighbouring record.
type RecordView struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil if and only if the key is null
	Value          []byte // nil if and only if the value is null
	Headers        RecordHeaders
}

// RecordHeaders iterates over one record's headers. RecordIter has already
// checked their encoding, so Next cannot fail.
type RecordHeaders struct {
	b []byte
	n int
}

// Len is the number of headers not yet returned by Next.
func (h *RecordHeaders) Len() int { return h.n }

// Next returns the next header; value is nil for a null value.
func (h *RecordHeaders) Next() (key, value []byte, ok bool) {
	if h.n <= 0 {
		return nil, nil, false
	}
	// The lengths were range-checked by parseRecord; the checks here only
	// keep a hand-made RecordHeaders from panicking.
	kl, i, ok1 := readVarint32(h.b, 0)
	if !ok1 || kl < 0 || int(kl) > len(h.b)-i {
		h.n = 0
		return nil, nil, false
	}
	key = h.b[i : i+int(kl) : i+int(kl)]
	i += int(kl)
	vl, i, ok1 := readVarint32(h.b, i)
	if !ok1 || vl < -1 || int(vl) > len(h.b)-i {
		h.n = 0
		return nil, nil, false
	}
	if vl >= 0 {
		value = h.b[i : i+int(vl) : i+int(vl)]
		i += int(vl)
	}
	h.b = h.b[i:]
	h.n--
	return key, value, true
}

// RecordIter walks the records of one uncompressed records section (the
// bytes after the header, decompressed if the batch is compressed; see
// Payload). It checks every record's framing and that the section holds
// exactly the number of records the header declares. It never allocates
// except to build an error.
//
// Malformed records are ErrInvalidRecord, as in Kafka: the batch passed its
// CRC, so the producer wrote it that way and resending will not help.
type RecordIter struct {
	b     []byte
	pos   int
	want  int32 // records the header declares
	index int32 // records returned so far
	err   error
}

// NewRecordIter iterates over section, which must hold exactly numRecords
// records.
func NewRecordIter(section []byte, numRecords int32) RecordIter {
	return RecordIter{b: section, want: numRecords}
}

// Next returns the next record, or false at the end or on error (see Err).
func (it *RecordIter) Next() (RecordView, bool) {
	if it.err != nil {
		return RecordView{}, false
	}
	if it.index >= it.want {
		if it.pos != len(it.b) {
			it.err = fmt.Errorf("%d bytes left after the %d records the header declares: %w", len(it.b)-it.pos, it.want, ErrInvalidRecord)
		}
		return RecordView{}, false
	}
	if it.pos == len(it.b) {
		it.err = fmt.Errorf("records section holds %d records, header declares %d: %w", it.index, it.want, ErrInvalidRecord)
		return RecordView{}, false
	}
	r, next, err := parseRecord(it.b, it.pos)
	if err != nil {
		it.err = fmt.Errorf("record %d at byte %d of the records section: %w", it.index, it.pos, err)
		return RecordView{}, false
	}
	it.pos = next
	it.index++
	return r, true
}

// Err is the reason Next stopped early, or nil after a clean end.
func (it *RecordIter) Err() error { return it.err }

// Index is the number of records Next has returned.
func (it *RecordIter) Index() int32 { return it.index }

// parseRecord decodes the record starting at b[pos] and returns the index
// just past it. Every length is checked against the record's own length
// before slicing, so a hostile record cannot reach outside itself.
func parseRecord(b []byte, pos int) (r RecordView, next int, err error) {
	length, i, ok := readVarint32(b, pos)
	if !ok {
		return r, 0, fmt.Errorf("unreadable length: %w", ErrInvalidRecord)
	}
	if length < 0 || int(length) > len(b)-i {
		return r, 0, fmt.Errorf("length %d with %d bytes left: %w", length, len(b)-i, ErrInvalidRecord)
	}
	end := i + int(length)
	rec := b[:end] // nothing below may read past this record

	if i >= end {
		return r, 0, fmt.Errorf("empty record: %w", ErrInvalidRecord)
	}
	r.Attributes = int8(rec[i])
	i++
	if r.TimestampDelta, i, ok = readVarint(rec, i); !ok {
		return r, 0, fmt.Errorf("unreadable timestamp delta: %w", ErrInvalidRecord)
	}
	if r.OffsetDelta, i, ok = readVarint32(rec, i); !ok {
		return r, 0, fmt.Errorf("unreadable offset delta: %w", ErrInvalidRecord)
	}
	if r.Key, i, err = readBytes(rec, i, "key"); err != nil {
		return r, 0, err
	}
	if r.Value, i, err = readBytes(rec, i, "value"); err != nil {
		return r, 0, err
	}
	numHeaders, i, ok := readVarint32(rec, i)
	if !ok || numHeaders < 0 {
		return r, 0, fmt.Errorf("bad header count: %w", ErrInvalidRecord)
	}
	headersStart := i
	// Each pass consumes at least two bytes or fails, so a huge declared
	// count cannot loop longer than the record is long.
	for h := int32(0); h < numHeaders; h++ {
		kl, j, ok := readVarint32(rec, i)
		if !ok || kl < 0 || int(kl) > end-j {
			return r, 0, fmt.Errorf("header %d: bad key length: %w", h, ErrInvalidRecord)
		}
		i = j + int(kl)
		if _, i, err = readBytes(rec, i, "header value"); err != nil {
			return r, 0, fmt.Errorf("header %d: %w", h, err)
		}
	}
	if i != end {
		return r, 0, fmt.Errorf("record length %d but fields use %d: %w", length, int(length)-(end-i), ErrInvalidRecord)
	}
	r.Headers = RecordHeaders{b: rec[headersStart:end:end], n: int(numHeaders)}
	return r, end, nil
}

// readBytes reads a nullable length-prefixed byte string from b[i:].
func readBytes(b []byte, i int, what string) ([]byte, int, error) {
	n, i, ok := readVarint32(b, i)
	if !ok || n < -1 {
		return nil, i, fmt.Errorf("bad %s length: %w", what, ErrInvalidRecord)
	}
	if n == -1 {
		return nil, i, nil
	}
	if int(n) > len(b)-i {
		return nil, i, fmt.Errorf("%s length %d with %d bytes left: %w", what, n, len(b)-i, ErrInvalidRecord)
	}
	return b[i : i+int(n) : i+int(n)], i + int(n), nil
}
