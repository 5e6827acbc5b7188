package batch

import (
	"bytes"
	"errors"
	"testing"
)

func TestAssignOffsets(t *testing.T) {
	records := concat(
		mustBuild(t, withCodec(idempotent(0), CodecGzip), sampleRecords(3)),
		mustBuild(t, idempotent(3), sampleRecords(1)),
		mustBuild(t, withCodec(idempotent(4), CodecZstd), sampleRecords(10)),
	)
	if last := AssignOffsets(records, 100); last != 113 {
		t.Fatalf("AssignOffsets returned %d, want 113", last)
	}
	var bases []int64
	it := NewIter(records)
	for h, _, ok := it.Next(); ok; h, _, ok = it.Next() {
		bases = append(bases, h.BaseOffset)
	}
	if it.Err() != nil || len(bases) != 3 || bases[0] != 100 || bases[1] != 103 || bases[2] != 104 {
		t.Fatalf("base offsets %v, err %v", bases, it.Err())
	}
	if _, err := Validate(records, Options{Deep: true}); err != nil {
		t.Fatalf("Validate after AssignOffsets: %v", err)
	}
	if last := AssignOffsets(nil, 100); last != 99 {
		t.Fatalf("AssignOffsets(nil, 100) = %d", last)
	}
	// A trailing partial batch is left alone rather than written past.
	one := mustBuild(t, plain, sampleRecords(2))
	cut := concat(one, one[:40])
	if last := AssignOffsets(cut, 0); last != 1 || !bytes.Equal(cut[len(one):], one[:40]) {
		t.Fatalf("partial batch: last %d, tail %x", last, cut[len(one):])
	}
}

func TestSetPartitionLeaderEpoch(t *testing.T) {
	records := concat(mustBuild(t, plain, sampleRecords(2)), mustBuild(t, plain, sampleRecords(5)))
	SetPartitionLeaderEpoch(records, 42)
	it := NewIter(records)
	n := 0
	for h, _, ok := it.Next(); ok; h, _, ok = it.Next() {
		if h.PartitionLeaderEpoch != 42 {
			t.Fatalf("batch %d epoch %d", n, h.PartitionLeaderEpoch)
		}
		n++
	}
	if it.Err() != nil || n != 2 {
		t.Fatalf("%d batches, %v", n, it.Err())
	}
}

func TestSetLogAppendTime(t *testing.T) {
	records := concat(mustBuild(t, plain, sampleRecords(2)), mustBuild(t, withCodec(plain, CodecLZ4), sampleRecords(5)))
	const now = 1_800_000_000_000
	SetLogAppendTime(records, now)
	if _, err := Validate(records, Options{Deep: true}); err != nil {
		t.Fatalf("Validate after SetLogAppendTime: %v", err)
	}
	it := NewIter(records)
	for h, b, ok := it.Next(); ok; h, b, ok = it.Next() {
		if h.TimestampType() != TimestampLogAppendTime || h.MaxTimestamp != now || h.Codec() != CodecNone && h.Codec() != CodecLZ4 {
			t.Fatalf("header %+v", h)
		}
		off, ts, found, err := FirstOffsetAtOrAfter(b, 0, nil)
		if err != nil || !found || ts != now || off != h.BaseOffset {
			t.Fatalf("FirstOffsetAtOrAfter: %d %d %v %v", off, ts, found, err)
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
}

func TestIter(t *testing.T) {
	b1 := mustBuild(t, plain, sampleRecords(2))
	b2 := mustBuild(t, withCodec(plain, CodecSnappy), sampleRecords(3))
	b3 := mustBuild(t, plain, sampleRecords(1))
	clean := concat(b1, b2, b3)
	badCRC := concat(b1, flipLastByte(b2), b3)
	oldMagic := concat(b1, mutate(b2, func(b []byte) { b[offMagic] = 1 }))

	for _, tc := range []struct {
		name    string
		in      []byte
		batches int  // returned before stopping
		pos     int  // Pos() at the end
		corrupt bool // Err() is ErrCorrupt, else nil
	}{
		{"empty", nil, 0, 0, false},
		{"clean", clean, 3, len(clean), false},
		{"torn last batch", clean[:len(clean)-1], 2, len(b1) + len(b2), true},
		{"torn header", concat(b1, b2[:30]), 1, len(b1), true},
		{"crc mismatch", badCRC, 1, len(b1), true},
		{"old magic", oldMagic, 1, len(b1), true},
		{"zeroed tail", concat(b1, make([]byte, 100)), 1, len(b1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := NewIter(tc.in)
			n, sum := 0, 0
			for h, b, ok := it.Next(); ok; h, b, ok = it.Next() {
				if h.Size() != len(b) || cap(b) != len(b) || !VerifyCRC(b) {
					t.Fatalf("batch %d: size %d, len %d cap %d", n, h.Size(), len(b), cap(b))
				}
				n++
				sum += len(b)
			}
			if _, _, ok := it.Next(); ok {
				t.Fatal("Next after the end returned a batch")
			}
			if n != tc.batches || it.Pos() != tc.pos || sum != tc.pos {
				t.Fatalf("%d batches, pos %d, %d bytes; want %d batches, pos %d", n, it.Pos(), sum, tc.batches, tc.pos)
			}
			if got := it.Err(); tc.corrupt != errors.Is(got, ErrCorrupt) || !tc.corrupt && got != nil {
				t.Fatalf("Err() = %v, corrupt wanted: %v", got, tc.corrupt)
			}
		})
	}
}

func TestFirstOffsetAtOrAfter(t *testing.T) {
	// Timestamps 1000, 1005, 1005, 1010, 1003: CreateTime need not be monotonic.
	deltas := []int64{0, 5, 5, 10, 3}
	recs := make([]Record, len(deltas))
	for i, d := range deltas {
		recs[i] = Record{Key: []byte{byte(i)}, TimestampDelta: d}
	}
	for _, c := range allCodecs {
		opts := withCodec(plain, c)
		opts.FirstTimestamp, opts.BaseOffset = 1000, 50
		b := mustBuild(t, opts, recs)
		for _, tc := range []struct {
			ts     int64
			offset int64
			at     int64
			found  bool
		}{
			{0, 50, 1000, true},
			{1000, 50, 1000, true},
			{1001, 51, 1005, true},
			{1006, 53, 1010, true},
			{1010, 53, 1010, true},
			{1011, 0, 0, false},
		} {
			off, at, found, err := FirstOffsetAtOrAfter(b, tc.ts, make([]byte, 0, 64))
			if err != nil || off != tc.offset || at != tc.at || found != tc.found {
				t.Errorf("%s ts %d: offset %d at %d found %v err %v; want %d at %d found %v",
					c, tc.ts, off, at, found, err, tc.offset, tc.at, tc.found)
			}
		}
	}

	// After compaction the first surviving record need not be delta 0.
	var section []byte
	section = appendRecord(section, 2, &Record{Key: []byte("a"), TimestampDelta: 7})
	h := Header{BaseOffset: 10, LastOffsetDelta: 4, NumRecords: 1, FirstTimestamp: 100, MaxTimestamp: 107, ProducerID: -1}
	off, at, found, err := FirstOffsetAtOrAfter(rawBatch(h, section), 50, nil)
	if err != nil || !found || off != 12 || at != 107 {
		t.Errorf("compacted batch: offset %d at %d found %v err %v", off, at, found, err)
	}

	if _, _, _, err := FirstOffsetAtOrAfter(rawBatch(h, section)[:HeaderLen+1], 50, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated batch: %v", err)
	}
}

func TestBuilderReuse(t *testing.T) {
	var bl Builder
	first, err := bl.Build(withCodec(plain, CodecGzip), sampleRecords(20))
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Clone(first)
	second, err := bl.Build(plain, sampleRecords(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{kept, second} {
		if _, err := Validate(b, Options{Deep: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bl.Build(plain, nil); err == nil {
		t.Error("Build with no records succeeded")
	}
	if _, err := bl.Build(withCodec(plain, 7), sampleRecords(1)); err == nil {
		t.Error("Build with codec 7 succeeded")
	}
}
