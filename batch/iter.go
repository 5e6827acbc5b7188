package batch

import (
	"errors"
	"fmt"
)

// Iter walks concatenated batches, as stored in a log segment, checking
// each one's framing and CRC. The storage layer's recovery scan uses it to
// find where the intact prefix of a segment ends:
//
//	it := batch.NewIter(segment)
//	for h, b, ok := it.Next(); ok; h, b, ok = it.Next() { ... }
//	if it.Err() != nil { truncate at it.Pos() }
type Iter struct {
	b   []byte
	pos int
	err error
}

// NewIter iterates over b.
func NewIter(b []byte) Iter { return Iter{b: b} }

// Next returns the next batch's header and bytes (capacity capped at its
// end). It returns false at the end of b, or at a batch that is cut short
// or corrupt; Err then tells which.
func (it *Iter) Next() (h Header, batch []byte, ok bool) {
	if it.err != nil || it.pos >= len(it.b) {
		return Header{}, nil, false
	}
	rest := it.b[it.pos:]
	h, err := ParseHeader(rest)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			// Old-format data in a log is corruption too.
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		it.err = fmt.Errorf("batch at byte %d: %w", it.pos, err)
		return Header{}, nil, false
	}
	size := h.Size()
	if size > len(rest) {
		it.err = fmt.Errorf("batch at byte %d: %d bytes long but only %d present: %w", it.pos, size, len(rest), ErrCorrupt)
		return Header{}, nil, false
	}
	batch = rest[:size:size]
	if !VerifyCRC(batch) {
		it.err = fmt.Errorf("batch at byte %d: crc mismatch: %w", it.pos, ErrCorrupt)
		return Header{}, nil, false
	}
	it.pos += size
	return h, batch, true
}

// Err is nil if Next stopped at the clean end of the bytes, else an
// ErrCorrupt describing the batch it stopped at.
func (it *Iter) Err() error { return it.err }

// Pos is the byte offset just past the last batch Next returned: after a
// failure, where the intact prefix ends.
func (it *Iter) Pos() int { return it.pos }
