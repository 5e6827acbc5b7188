package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseHeaderFields(t *testing.T) {
	opts := idempotent(41)
	opts.Codec = CodecLZ4
	opts.Transactional = true
	opts.BaseOffset = 1234
	opts.PartitionLeaderEpoch = 9
	recs := sampleRecords(5)
	b := mustBuild(t, opts, recs)

	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 1234, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: 9, Magic: 2,
		CRC: binary.BigEndian.Uint32(b[17:]), Attributes: int16(CodecLZ4) | 1<<4,
		LastOffsetDelta: 4, FirstTimestamp: opts.FirstTimestamp, MaxTimestamp: opts.FirstTimestamp + 12,
		ProducerID: 7, ProducerEpoch: 3, BaseSequence: 41, NumRecords: 5,
	}
	if h != want {
		t.Fatalf("ParseHeader:\n got %+v\nwant %+v", h, want)
	}
	if h.Size() != len(b) || h.LastOffset() != 1238 || h.Codec() != CodecLZ4 ||
		h.TimestampType() != TimestampCreateTime || !h.IsTransactional() || h.IsControl() {
		t.Fatalf("accessors: size %d last %d codec %v ts %d txn %v control %v",
			h.Size(), h.LastOffset(), h.Codec(), h.TimestampType(), h.IsTransactional(), h.IsControl())
	}

	opts.Transactional, opts.Control, opts.LogAppendTime = false, true, true
	h, err = ParseHeader(mustBuild(t, opts, recs))
	if err != nil {
		t.Fatal(err)
	}
	if h.TimestampType() != TimestampLogAppendTime || h.IsTransactional() || !h.IsControl() {
		t.Fatalf("attributes %#x: ts %d txn %v control %v", h.Attributes, h.TimestampType(), h.IsTransactional(), h.IsControl())
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := mustBuild(t, plain, sampleRecords(1))
	with := func(off int, v byte) []byte { b := bytes.Clone(good); b[off] = v; return b }
	withLength := func(n int32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[offBatchLength:], uint32(n))
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"short", good[:HeaderLen-1], ErrCorrupt},
		{"magic 0", with(offMagic, 0), ErrInvalidRecord},
		{"magic 1", with(offMagic, 1), ErrInvalidRecord},
		{"short v1 message", with(offMagic, 1)[:30], ErrInvalidRecord},
		{"magic 3", with(offMagic, 3), ErrCorrupt},
		{"magic -1", with(offMagic, 0xff), ErrCorrupt},
		{"length 48", withLength(HeaderLen - 13), ErrCorrupt},
		{"negative length", withLength(-1), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	// The smallest legal length: a header with an empty records section.
	if _, err := ParseHeader(withLength(HeaderLen - 12)); err != nil {
		t.Fatalf("length 49: %v", err)
	}
}

func TestVerifyCRC(t *testing.T) {
	b := mustBuild(t, plain, sampleRecords(3))
	if !VerifyCRC(b) {
		t.Fatal("fresh batch fails its CRC")
	}
	// Offsets and leader epoch lie outside the CRC.
	c := bytes.Clone(b)
	AssignOffsets(c, 99)
	SetPartitionLeaderEpoch(c, 5)
	if !VerifyCRC(c) {
		t.Fatal("rewritten batch fails its CRC")
	}
	for _, off := range []int{offAttributes, offNumRecords, HeaderLen, len(b) - 1} {
		c := bytes.Clone(b)
		c[off] ^= 1
		if VerifyCRC(c) {
			t.Errorf("flipping byte %d kept the CRC valid", off)
		}
	}
	for _, short := range [][]byte{nil, b[:HeaderLen-1], b[:len(b)-1]} {
		if VerifyCRC(short) {
			t.Errorf("VerifyCRC of %d of %d bytes = true", len(short), len(b))
		}
	}
}
