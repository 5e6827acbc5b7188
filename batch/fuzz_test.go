package batch

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzSeeds are valid inputs of every codec plus damaged copies.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, c := range allCodecs {
		one := mustBuild(f, withCodec(idempotent(5), c), sampleRecords(6))
		two := concat(one, mustBuild(f, withCodec(idempotent(11), c), sampleRecords(2)))
		seeds = append(seeds, one, two, one[:len(one)-3], flipLastByte(one),
			mutate(one, func(b []byte) { b[HeaderLen+3] ^= 0x40 }))
	}
	seeds = append(seeds,
		rawBatch(plainHeader(3), recordsWithDeltas(0, 1, 3)),
		mustBuild(f, BuildOptions{ProducerID: 1, Control: true, Transactional: true}, []Record{{Key: []byte{0, 0, 0, 1}}}),
		nil)
	return seeds
}

// fixCRCs recomputes the CRC of every complete batch so that mutations get
// past the checksum and reach the record parser.
func fixCRCs(b []byte) {
	for off := 0; ; {
		size, ok := nextFramed(b, off)
		if !ok {
			return
		}
		putCRC(b[off : off+size])
		off += size
	}
}

// FuzzValidate: Validate never panics, and whatever it accepts is a run of
// intact batches that the leader can number and still validate.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, byte(0))
		f.Add(s, byte(0x0f))
	}
	f.Fuzz(func(t *testing.T, in []byte, mode byte) {
		opts := Options{
			Deep:         mode&1 != 0,
			RequireKeys:  mode&2 != 0,
			AllowControl: mode&4 != 0,
		}
		if mode&8 != 0 {
			in = bytes.Clone(in)
			fixCRCs(in)
		}
		if mode&16 != 0 {
			opts.MaxBatchBytes = int32(len(in) / 2)
		}
		s, err := Validate(in, opts)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the documented set: %v", err)
			}
			return
		}
		it := NewIter(in)
		n := 0
		for _, b, ok := it.Next(); ok; _, b, ok = it.Next() {
			if !VerifyCRC(b) {
				t.Fatal("accepted batch fails VerifyCRC")
			}
			n++
		}
		if it.Err() != nil || it.Pos() != len(in) || n != s.NumBatches {
			t.Fatalf("Iter over accepted input: %d batches (summary %d), pos %d of %d, %v", n, s.NumBatches, it.Pos(), len(in), it.Err())
		}
		c := bytes.Clone(in)
		if last := AssignOffsets(c, 1000); last != 1000+s.OffsetCount-1 {
			t.Fatalf("AssignOffsets = %d, want %d", last, 1000+s.OffsetCount-1)
		}
		SetPartitionLeaderEpoch(c, 3)
		s2, err := Validate(c, opts)
		if err != nil || s2 != s {
			t.Fatalf("after rewriting offsets: %+v, %v; before %+v", s2, err, s)
		}
	})
}

// FuzzIter: the recovery scan never panics and accounts for every byte.
func FuzzIter(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		it := NewIter(in)
		sum := 0
		for h, b, ok := it.Next(); ok; h, b, ok = it.Next() {
			if h.Size() != len(b) || !VerifyCRC(b) || !bytes.Equal(b, in[sum:sum+len(b)]) {
				t.Fatalf("bad batch at %d", sum)
			}
			sum += len(b)
			// Must not panic on anything that frames and checksums.
			_, _, _, _ = FirstOffsetAtOrAfter(b, 0, nil)
		}
		if sum != it.Pos() {
			t.Fatalf("batches cover %d bytes, Pos %d", sum, it.Pos())
		}
		if err := it.Err(); err == nil && it.Pos() != len(in) || err != nil && (!errors.Is(err, ErrCorrupt) || it.Pos() >= len(in)) {
			t.Fatalf("pos %d of %d, err %v", it.Pos(), len(in), err)
		}
	})
}

// FuzzDecompress: no codec panics or outgrows the limit on hostile input.
func FuzzDecompress(f *testing.F) {
	for _, c := range allCodecs {
		comp := mustCompress(f, c, bytes.Repeat([]byte("abcd"), 300))
		f.Add(byte(c), comp)
		f.Add(byte(c), comp[:len(comp)/2])
	}
	f.Add(byte(CodecSnappy), append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 2, 4, 'a'))
	f.Fuzz(func(t *testing.T, c byte, in []byte) {
		const limit = 1 << 16
		out, err := DecompressLimit(Codec(c%8), in, nil, limit)
		if len(out) > limit {
			t.Fatalf("%d bytes out for a limit of %d", len(out), limit)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error outside ErrCorrupt: %v", err)
		}
	})
}
