package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestValidateErrors(t *testing.T) {
	good := mustBuild(t, plain, sampleRecords(4))
	second := mustBuild(t, plain, sampleRecords(2))
	gzipped := mustBuild(t, withCodec(plain, CodecGzip), sampleRecords(4))
	nullKey := mustBuild(t, plain, []Record{{Key: []byte("a")}, {Key: nil, Value: []byte("v")}})
	nullKeyZstd := mustBuild(t, withCodec(plain, CodecZstd), []Record{{Key: nil, Value: []byte("v")}})
	control := mustBuild(t, BuildOptions{ProducerID: 7, Control: true, Transactional: true},
		[]Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	setU32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint32(b[off:], v) }
	}
	// A record whose length claims one byte more than its fields use.
	padded := recordsWithDeltas(0)
	padded = append(append([]byte{byte(2 * (len(padded)))}, padded[1:]...), 0)

	for _, tc := range []struct {
		name    string
		records []byte
		opts    Options
		want    error
	}{
		{"empty", nil, Options{}, ErrInvalidRecord},
		{"wrong crc", flipLastByte(good), Options{}, ErrCorrupt},
		{"truncated", good[:len(good)-1], Options{}, ErrCorrupt},
		{"only a partial header", good[:HeaderLen-5], Options{}, ErrCorrupt},
		{"trailing garbage", concat(good, []byte{1, 2, 3}), Options{}, ErrCorrupt},
		{"trailing partial batch", concat(good, second[:70]), Options{}, ErrCorrupt},
		{"too large", good, Options{MaxBatchBytes: int32(len(good) - 1)}, ErrTooLarge},
		{"second batch too large", concat(second, good), Options{MaxBatchBytes: int32(len(second))}, ErrTooLarge},
		{"magic 1", mutate(good, func(b []byte) { b[offMagic] = 1 }), Options{}, ErrInvalidRecord},
		{"magic 3", mutate(good, func(b []byte) { b[offMagic] = 3 }), Options{}, ErrCorrupt},
		{"unknown codec", mutate(good, func(b []byte) { b[offAttributes+1] |= 6 }), Options{}, ErrCorrupt},
		{"control batch", control, Options{}, ErrInvalidRecord},
		{"negative last offset delta", mutate(good, setU32(offLastDelta, math.MaxUint32)), Options{}, ErrInvalidRecord},
		{"count above last offset delta", mutate(good, setU32(offNumRecords, 5)), Options{}, ErrInvalidRecord},
		{"count below last offset delta", mutate(good, setU32(offLastDelta, 4)), Options{}, ErrInvalidRecord},
		{"zero records", rawBatch(plainHeader(0), nil), Options{}, ErrInvalidRecord},
		{"zero records, last offset delta 0", rawBatch(Header{ProducerID: -1, BaseSequence: -1}, nil), Options{}, ErrInvalidRecord},
		{"fewer records than declared", rawBatch(plainHeader(3), recordsWithDeltas(0, 1)), Options{}, ErrInvalidRecord},
		{"more records than declared", rawBatch(plainHeader(2), recordsWithDeltas(0, 1, 2)), Options{}, ErrInvalidRecord},
		{"offset delta gap", rawBatch(plainHeader(3), recordsWithDeltas(0, 1, 3)), Options{}, ErrInvalidRecord},
		{"offset delta repeat", rawBatch(plainHeader(2), recordsWithDeltas(0, 0)), Options{}, ErrInvalidRecord},
		{"record longer than its fields", rawBatch(plainHeader(1), padded), Options{}, ErrInvalidRecord},
		{"record overruns section", rawBatch(plainHeader(1), recordsWithDeltas(0)[:5]), Options{}, ErrInvalidRecord},
		{"key length -2", rawBatch(plainHeader(1), []byte{10, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0}), Options{}, ErrInvalidRecord},
		{"negative header count", rawBatch(plainHeader(1), []byte{12, 0, 0, 0, 1, 1, 3}), Options{}, ErrInvalidRecord},
		{"null key, keys required", nullKey, Options{RequireKeys: true}, ErrInvalidRecord},
		{"null key in zstd batch, keys required", nullKeyZstd, Options{RequireKeys: true}, ErrInvalidRecord},
		{"undecompressable gzip, deep", mutate(gzipped, func(b []byte) { b[HeaderLen+20] ^= 0xff }), Options{Deep: true}, ErrCorrupt},
		{"compressed offset gap, deep", rawBatch(Header{Attributes: int16(CodecSnappy), LastOffsetDelta: 1, NumRecords: 2, ProducerID: -1, BaseSequence: -1},
			mustCompress(t, CodecSnappy, recordsWithDeltas(0, 2))), Options{Deep: true}, ErrInvalidRecord},
		{"mixed producer ids", concat(mustBuild(t, idempotent(0), sampleRecords(2)),
			mustBuild(t, BuildOptions{ProducerID: 8, ProducerEpoch: 3, BaseSequence: 2}, sampleRecords(1))), Options{}, ErrInvalidRecord},
		{"mixed producer epochs", concat(mustBuild(t, idempotent(0), sampleRecords(2)),
			mustBuild(t, BuildOptions{ProducerID: 7, ProducerEpoch: 4, BaseSequence: 2}, sampleRecords(1))), Options{}, ErrInvalidRecord},
		{"idempotent then plain", concat(mustBuild(t, idempotent(0), sampleRecords(2)), second), Options{}, ErrInvalidRecord},
		{"sequence gap", concat(mustBuild(t, idempotent(0), sampleRecords(2)), mustBuild(t, idempotent(3), sampleRecords(1))), Options{}, ErrInvalidRecord},
		{"sequence past the wrap", concat(mustBuild(t, idempotent(math.MaxInt32), sampleRecords(1)), mustBuild(t, idempotent(1), sampleRecords(1))), Options{}, ErrInvalidRecord},
		{"idempotent without sequence", mustBuild(t, idempotent(-1), sampleRecords(1)), Options{}, ErrInvalidRecord},
		{"transactional without producer", mustBuild(t, BuildOptions{ProducerID: -1, BaseSequence: -1, Transactional: true}, sampleRecords(1)), Options{}, ErrInvalidRecord},
		{"transactional after plain", concat(mustBuild(t, idempotent(0), sampleRecords(1)),
			mustBuild(t, BuildOptions{ProducerID: 7, ProducerEpoch: 3, BaseSequence: 1, Transactional: true}, sampleRecords(1))), Options{}, ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.records, tc.opts)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate: %v, want %v", err, tc.want)
			}
		})
	}
}

func flipLastByte(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}

func mustCompress(t testing.TB, c Codec, src []byte) []byte {
	t.Helper()
	out, err := Compress(c, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidateAccepts(t *testing.T) {
	good := mustBuild(t, plain, sampleRecords(4))
	gzipped := mustBuild(t, withCodec(plain, CodecGzip), sampleRecords(4))
	control := mustBuild(t, BuildOptions{ProducerID: 7, Control: true, Transactional: true},
		[]Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	for _, tc := range []struct {
		name    string
		records []byte
		opts    Options
	}{
		{"exactly max size", good, Options{MaxBatchBytes: int32(len(good))}},
		{"null key, keys optional", mustBuild(t, plain, []Record{{Value: []byte("v")}}), Options{}},
		{"control batch from the broker", control, Options{AllowControl: true}},
		// Without Deep, compressed batches are stored as sent.
		{"undecompressable gzip, shallow", mutate(gzipped, func(b []byte) { b[HeaderLen+20] ^= 0xff }), Options{}},
		{"offsets already assigned", mutate(good, func(b []byte) { AssignOffsets(b, 1<<40) }), Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Validate(tc.records, tc.opts); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateSummary(t *testing.T) {
	first := idempotent(math.MaxInt32 - 1)
	first.Codec = CodecZstd
	b1 := mustBuild(t, first, sampleRecords(3)) // sequences MaxInt32-1, MaxInt32, 0
	next := idempotent(1)
	next.FirstTimestamp += 1000
	b2 := mustBuild(t, next, sampleRecords(2)) // 1, 2
	records := concat(b1, b2)

	for _, opts := range []Options{{}, {Deep: true}, {RequireKeys: true, MaxBatchBytes: 1 << 20}} {
		s, err := Validate(records, opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		want := Summary{
			NumBatches: 2, NumRecords: 5, OffsetCount: 5,
			FirstTimestamp: first.FirstTimestamp, MaxTimestamp: next.FirstTimestamp + 3,
			Codec: CodecZstd, ProducerID: 7, ProducerEpoch: 3, BaseSequence: math.MaxInt32 - 1, LastSequence: 2,
		}
		if s != want {
			t.Fatalf("%+v:\n got %+v\nwant %+v", opts, s, want)
		}
	}

	s, err := Validate(mustBuild(t, plain, sampleRecords(1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ProducerID != -1 || s.BaseSequence != -1 || s.LastSequence != -1 || s.NumRecords != 1 {
		t.Fatalf("plain producer summary %+v", s)
	}
}

func TestNextSequence(t *testing.T) {
	for _, tc := range []struct{ seq, inc, want int32 }{
		{0, 0, 0}, {0, 1, 1}, {5, 10, 15},
		{math.MaxInt32, 1, 0}, {math.MaxInt32 - 1, 2, 0}, {math.MaxInt32 - 1, 5, 3}, {math.MaxInt32, 0, math.MaxInt32},
	} {
		if got := nextSequence(tc.seq, tc.inc); got != tc.want {
			t.Errorf("nextSequence(%d, %d) = %d, want %d", tc.seq, tc.inc, got, tc.want)
		}
	}
}

// Validating uncompressed input is the produce hot path: it must not
// allocate at all.
func TestValidateDoesNotAllocate(t *testing.T) {
	records := concat(
		mustBuild(t, idempotent(0), benchRecords(150)),
		mustBuild(t, idempotent(150), sampleRecords(20)),
	)
	for _, opts := range []Options{{}, {Deep: true, RequireKeys: true, MaxBatchBytes: 1 << 20}} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Validate(records, opts); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Validate(%+v) allocates %.1f times per call", opts, allocs)
		}
	}
}

// A batch inflating past the validation limit fails as corrupt instead of
// being inflated in full.
func TestValidateZipBomb(t *testing.T) {
	if got := decompressLimit(1 << 20); got != MaxDecompressed {
		t.Errorf("limit for 1 MiB batches: %d", got)
	}
	if got := decompressLimit(100 << 20); got != 200<<20 {
		t.Errorf("limit for 100 MiB batches: %d", got)
	}

	// A zstd frame declaring more than the limit is refused unread: magic,
	// single-segment descriptor with a 4-byte content size, then one RLE
	// block of 1000 zero bytes.
	declared := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0}
	declared = binary.LittleEndian.AppendUint32(declared, MaxDecompressed+1)
	const blockHeader = 1000<<3 | 1<<1 | 1 // size, RLE type, last block
	declared = append(declared, blockHeader&0xff, blockHeader>>8, 0, 0)
	h := plainHeader(1)
	h.Attributes = int16(CodecZstd)
	if _, err := Validate(rawBatch(h, declared), Options{Deep: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("zstd frame declaring %d bytes: %v, want ErrCorrupt", MaxDecompressed+1, err)
	}

	if testing.Short() || raceEnabled {
		t.Skip("inflates 64 MiB")
	}
	// Runs of 1 MiB zstd frames and gzip members, which decode back to
	// back, inflate to one frame more than the limit.
	frames := MaxDecompressed>>20 + 1
	for _, c := range []Codec{CodecGzip, CodecZstd} {
		frame := mustCompress(t, c, make([]byte, 1<<20))
		h.Attributes = int16(c)
		b := rawBatch(h, bytes.Repeat(frame, frames))
		if _, err := Validate(b, Options{Deep: true, MaxBatchBytes: 1 << 20}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Validate(bomb): %v, want ErrCorrupt", c, err)
		}
		if _, err := Validate(b, Options{MaxBatchBytes: 1 << 20}); err != nil {
			t.Errorf("%s: shallow Validate(bomb): %v", c, err)
		}
	}
}

func benchRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{'x'}, 100), TimestampDelta: int64(i)}
	}
	return recs
}

func BenchmarkValidate(b *testing.B) {
	// 100-byte records filling a 16 KiB batch.
	records := mustBuild(b, idempotent(0), benchRecords(16<<10/108))
	b.SetBytes(int64(len(records)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(records, Options{MaxBatchBytes: 1 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateDeep(b *testing.B) {
	for _, c := range allCodecs[1:] {
		b.Run(c.String(), func(b *testing.B) {
			records := mustBuild(b, withCodec(idempotent(0), c), benchRecords(16<<10/108))
			b.SetBytes(16 << 10)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(records, Options{Deep: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
