package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// plain is a producer without idempotence.
var plain = BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: 1_700_000_000_000}

// idempotent returns options for producer 7 epoch 3 starting at seq.
func idempotent(seq int32) BuildOptions {
	o := plain
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = 7, 3, seq
	return o
}

func withCodec(o BuildOptions, c Codec) BuildOptions { o.Codec = c; return o }

// sampleRecords returns n keyed records with compressible values, some
// headers, a null-valued one and an empty key, to exercise every field.
func sampleRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Key:            fmt.Appendf(nil, "key-%d", i),
			Value:          bytes.Repeat(fmt.Appendf(nil, "value %d ", i), 1+i%7),
			TimestampDelta: int64(i * 3),
		}
		switch i % 4 {
		case 1:
			recs[i].Headers = []RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: nil}}
		case 2:
			recs[i].Value = nil
		case 3:
			recs[i].Key = []byte{}
		}
	}
	return recs
}

func mustBuild(t testing.TB, opts BuildOptions, recs []Record) []byte {
	t.Helper()
	b, err := BuildBatch(opts, recs)
	if err != nil {
		t.Fatalf("BuildBatch: %v", err)
	}
	return b
}

// rawBatch assembles a batch around an arbitrary records section, so tests
// can make batches the builder refuses to: the header fields come from h
// (BatchLength, Magic and CRC are filled in unless keepFraming).
func rawBatch(h Header, section []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(section))
	b = append(b, section...)
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
	be.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], uint16(h.Attributes))
	be.PutUint32(b[offLastDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(b[offFirstTS:], uint64(h.FirstTimestamp))
	be.PutUint64(b[offMaxTS:], uint64(h.MaxTimestamp))
	be.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(b[offNumRecords:], uint32(h.NumRecords))
	putCRC(b)
	return b
}

// plainHeader is a header for rawBatch with n records numbered densely.
func plainHeader(n int32) Header {
	return Header{LastOffsetDelta: n - 1, NumRecords: n, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
}

// recordsWithDeltas encodes one record per offset delta given.
func recordsWithDeltas(deltas ...int32) []byte {
	var out []byte
	for _, d := range deltas {
		out = appendRecord(out, d, &Record{Key: []byte("k"), Value: []byte("v")})
	}
	return out
}

// mutate returns a copy of b changed by fn, with the CRC of the first
// batch recomputed so the change reaches the checks behind the CRC.
func mutate(b []byte, fn func(b []byte)) []byte {
	c := bytes.Clone(b)
	fn(c)
	putCRC(c[:Header{BatchLength: int32(binary.BigEndian.Uint32(c[offBatchLength:]))}.Size()])
	return c
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
