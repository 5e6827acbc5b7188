package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
)

// Every codec survives BuildBatch → Validate(Deep) → Payload → RecordIter
// with every record field intact.
func TestCodecRoundTrip(t *testing.T) {
	recs := sampleRecords(50)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			opts := withCodec(idempotent(10), c)
			opts.BaseOffset = 500
			b := mustBuild(t, opts, recs)
			s, err := Validate(b, Options{Deep: true})
			if err != nil {
				t.Fatal(err)
			}
			if s.Codec != c || s.NumRecords != int64(len(recs)) || s.LastSequence != 10+int32(len(recs))-1 {
				t.Fatalf("summary %+v", s)
			}
			if c != CodecNone && len(b) >= len(mustBuild(t, withCodec(opts, CodecNone), recs)) {
				t.Errorf("%s batch of %d bytes did not shrink", c, len(b))
			}
			payload, err := Payload(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, payload, recs)
		})
	}
}

// checkRecords asserts that section decodes to exactly recs.
func checkRecords(t *testing.T, section []byte, recs []Record) {
	t.Helper()
	it := NewRecordIter(section, int32(len(recs)))
	for i := 0; ; i++ {
		r, ok := it.Next()
		if !ok {
			if it.Err() != nil || i != len(recs) {
				t.Fatalf("after %d records: %v", i, it.Err())
			}
			return
		}
		want := recs[i]
		if r.OffsetDelta != int32(i) || r.TimestampDelta != want.TimestampDelta ||
			!sameNullable(r.Key, want.Key) || !sameNullable(r.Value, want.Value) || r.Headers.Len() != len(want.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, r, want)
		}
		for j, wh := range want.Headers {
			k, v, ok := r.Headers.Next()
			if !ok || string(k) != wh.Key || !sameNullable(v, wh.Value) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, k, v, wh.Key, wh.Value)
			}
		}
		if _, _, ok := r.Headers.Next(); ok {
			t.Fatalf("record %d: extra header", i)
		}
	}
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestCompressDecompressReusesBuffers(t *testing.T) {
	src := bytes.Repeat([]byte("troupe "), 10_000)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			comp := make([]byte, 5, 1<<20) // stale bytes must be dropped
			comp, err := Compress(c, src, comp)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, 3, len(src)+1)
			out, err := Decompress(c, comp, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, src) {
				t.Fatalf("round trip changed %d bytes into %d", len(src), len(out))
			}
			if &out[0] != &dst[:1][0] {
				t.Error("Decompress did not reuse a big enough dst")
			}
		})
	}
}

// The Java client frames snappy (xerial); Kafka and franz-go accept both
// that and a raw block.
func TestSnappyXerial(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // several 32 KiB chunks
	framed := xerial.Encode(nil, src)
	if !bytes.HasPrefix(framed, xerialMagic) {
		t.Fatalf("xerial.Encode wrote %x", framed[:16])
	}
	out, err := Decompress(CodecSnappy, framed, nil)
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("xerial: %d bytes, %v", len(out), err)
	}

	// Hand-framed, as KafkaProducer writes it, around a batch's records.
	recs := sampleRecords(30)
	var section []byte
	for i := range recs {
		section = appendRecord(section, int32(i), &recs[i])
	}
	hand := append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	for half := range 2 {
		part := section[half*len(section)/2 : (half+1)*len(section)/2]
		block := snappy.Encode(nil, part)
		hand = binary.BigEndian.AppendUint32(hand, uint32(len(block)))
		hand = append(hand, block...)
	}
	h := plainHeader(int32(len(recs)))
	h.Attributes = int16(CodecSnappy)
	if _, err := Validate(rawBatch(h, hand), Options{Deep: true}); err != nil {
		t.Fatalf("Validate(xerial batch): %v", err)
	}

	for name, bad := range map[string][]byte{
		"chunk length cut":  hand[:xerialHeaderLen+2],
		"chunk overruns":    hand[:len(hand)-1],
		"corrupt chunk":     append(hand[:len(hand):len(hand)], 0, 0, 0, 2, 0xff, 0xff),
		"header only, junk": append(bytes.Clone(hand[:xerialHeaderLen]), 1),
	} {
		if _, err := Decompress(CodecSnappy, bad, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// Output past the limit fails as corrupt, for every codec, without the
// codec growing its output much beyond the limit.
func TestDecompressLimit(t *testing.T) {
	src := make([]byte, 1<<20)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			comp := mustCompress(t, c, src)
			if _, err := DecompressLimit(c, comp, nil, len(src)); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			out, err := DecompressLimit(c, comp, nil, 64<<10)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("over the limit: %v", err)
			}
			if cap(out) > 64<<10+1 {
				t.Errorf("grew to %d bytes for a 64 KiB limit", cap(out))
			}
		})
	}
	// Limits above the shared zstd decoder's own take another decoder.
	zcomp := mustCompress(t, CodecZstd, src)
	if out, err := DecompressLimit(CodecZstd, zcomp, nil, 2*MaxDecompressed); err != nil || len(out) != len(src) {
		t.Errorf("zstd with a %d byte limit: %d bytes, %v", 2*MaxDecompressed, len(out), err)
	}
	// A snappy block may not claim far more than it could hold.
	forged := binary.AppendUvarint(nil, 50<<20)
	forged = append(forged, 0)
	if _, err := Decompress(CodecSnappy, forged, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("forged snappy length: %v", err)
	}
}

func TestDecompressGarbage(t *testing.T) {
	garbage := []byte("this is not compressed by anything at all")
	for _, c := range allCodecs[1:] {
		if out, err := Decompress(c, garbage, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %d bytes, %v; want ErrCorrupt", c, len(out), err)
		}
	}
	if _, err := Decompress(Codec(5), garbage, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("codec 5: %v", err)
	}
	if _, err := Compress(Codec(5), garbage, nil); err == nil {
		t.Error("Compress with codec 5 succeeded")
	}
}
