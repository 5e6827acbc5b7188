package batch

import "fmt"

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
	// parseRecord checked these bytes; failing here only keeps a
	// hand-made RecordHeaders from panicking.
	c := cursor{b: h.b}
	key, okKey := c.nullableBytes()
	value, okValue := c.nullableBytes()
	if !okKey || !okValue || key == nil {
		h.n = 0
		return nil, nil, false
	}
	h.b = h.b[c.i:]
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
	cur   RecordView // the record advance parsed last
}

// NewRecordIter iterates over section, which must hold exactly numRecords
// records.
func NewRecordIter(section []byte, numRecords int32) RecordIter {
	return RecordIter{b: section, want: numRecords}
}

// Next returns the next record, or false at the end or on error (see Err).
func (it *RecordIter) Next() (RecordView, bool) {
	if !it.advance() {
		return RecordView{}, false
	}
	return it.cur, true
}

// advance parses the next record into it.cur. Validate uses it directly to
// skip copying each record out.
func (it *RecordIter) advance() bool {
	if it.err != nil {
		return false
	}
	if it.index >= it.want {
		if it.pos != len(it.b) {
			it.err = fmt.Errorf("%d bytes left after the %d records the header declares: %w", len(it.b)-it.pos, it.want, ErrInvalidRecord)
		}
		return false
	}
	if it.pos == len(it.b) {
		it.err = fmt.Errorf("records section holds %d records, header declares %d: %w", it.index, it.want, ErrInvalidRecord)
		return false
	}
	next, fail := parseRecord(it.b, it.pos, &it.cur)
	if fail != parseOK {
		it.err = fmt.Errorf("record %d at byte %d of the records section: %s: %w", it.index, it.pos, fail, ErrInvalidRecord)
		return false
	}
	it.pos = next
	it.index++
	return true
}

// Err is the reason Next stopped early, or nil after a clean end.
func (it *RecordIter) Err() error { return it.err }

// parseFailure says which part of a record failed to parse. Parsing
// reports this small code rather than an error so that the hot path carries
// no interface values; RecordIter turns it into an error.
type parseFailure uint8

const (
	parseOK parseFailure = iota
	badLength
	badTimestampDelta
	badOffsetDelta
	badKey
	badValue
	badHeaderCount
	badHeaderKey
	badHeaderValue
	badFill
)

func (f parseFailure) String() string {
	switch f {
	case parseOK:
		return "ok"
	case badLength:
		return "length invalid or past the records section"
	case badTimestampDelta:
		return "timestamp delta unreadable"
	case badOffsetDelta:
		return "offset delta unreadable"
	case badKey:
		return "key length invalid or past the record"
	case badValue:
		return "value length invalid or past the record"
	case badHeaderCount:
		return "header count invalid"
	case badHeaderKey:
		return "header key length invalid or past the record"
	case badHeaderValue:
		return "header value length invalid or past the record"
	case badFill:
		return "fields do not fill the record length exactly"
	}
	return "unknown failure"
}

// parseRecord decodes the record starting at b[pos] into r and returns the
// index just past it. Every length is checked against the record's own end
// before slicing, so a hostile record cannot reach outside itself.
func parseRecord(b []byte, pos int, r *RecordView) (next int, fail parseFailure) {
	c := cursor{b: b, i: pos}
	length, ok := c.varint()
	if !ok || length <= 0 || length > int64(len(b)-c.i) {
		return 0, badLength
	}
	end := c.i + int(length)
	c.b = b[:end] // nothing below may read past this record

	r.Attributes = int8(c.b[c.i]) // length > 0 makes this byte exist
	c.i++
	if r.TimestampDelta, ok = c.varint(); !ok {
		return 0, badTimestampDelta
	}
	offsetDelta, ok := c.varint()
	if !ok || offsetDelta != int64(int32(offsetDelta)) {
		return 0, badOffsetDelta
	}
	r.OffsetDelta = int32(offsetDelta)
	if r.Key, ok = c.nullableBytes(); !ok {
		return 0, badKey
	}
	if r.Value, ok = c.nullableBytes(); !ok {
		return 0, badValue
	}
	numHeaders, ok := c.varint()
	if !ok || numHeaders < 0 || numHeaders > int64(end-c.i) {
		return 0, badHeaderCount
	}
	headersStart := c.i
	// Each pass consumes at least two bytes or fails, so a huge declared
	// count cannot loop longer than the record is long.
	for range numHeaders {
		if key, ok := c.nullableBytes(); !ok || key == nil {
			return 0, badHeaderKey
		}
		if _, ok := c.nullableBytes(); !ok {
			return 0, badHeaderValue
		}
	}
	if c.i != end {
		return 0, badFill
	}
	r.Headers = RecordHeaders{b: c.b[headersStart:end:end], n: int(numHeaders)}
	return end, parseOK
}

// cursor reads varint-framed fields from b, starting at i.
type cursor struct {
	b []byte
	i int
}

// varint decodes a zigzag varint of at most ten bytes. It is written as
// one small loop so that it inlines into parseRecord.
func (c *cursor) varint() (int64, bool) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if c.i >= len(c.b) {
			return 0, false
		}
		x := c.b[c.i]
		c.i++
		u |= uint64(x&0x7f) << shift
		if x < 0x80 {
			return int64(u>>1) ^ -int64(u&1), true
		}
	}
	return 0, false
}

// nullableBytes reads a length-prefixed byte string; length -1 is null
// (nil). The result's capacity ends with it.
func (c *cursor) nullableBytes() ([]byte, bool) {
	n, ok := c.varint()
	if !ok || n < -1 || n > int64(len(c.b)-c.i) {
		return nil, false
	}
	if n == -1 {
		return nil, true
	}
	s := c.b[c.i : c.i+int(n) : c.i+int(n)]
	c.i += int(n)
	return s, true
}
