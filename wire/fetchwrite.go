package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/partlog"
)

// Zero-copy Fetch responses.
//
// A Fetch response is mostly record bytes that already sit, framed as
// Kafka wants them, in segment files. Instead of copying them into the
// encoded response, writeTo encodes the response with kmsg while every
// partition's RecordBatches is empty, finds where each records field sits
// in those bytes, and writes the frame in pieces:
//
//	[size][correlation id][tags]  kmsg bytes up to a records field
//	[real length prefix]          Region.WriteTo (sendfile on a TCP conn)
//	kmsg bytes up to the next records field ... the rest
//
// The records fields are located exactly, without knowing kmsg's layout:
// the response is encoded twice, once with empty RecordBatches and once
// with a one-byte placeholder in every partition that carries a region.
// The two encodings are identical except at those fields (int32 length 0
// vs 1 and the extra byte before v12; uvarint 1 vs 2 and the extra byte
// from v12 on, where lengths are stored plus one), so walking them in
// lockstep yields every field's offset. The real length prefix is then
// written per region; in flexible versions its uvarint may be wider than
// the placeholder's one byte, which the frame size accounts for.

// fetchReply is a Fetch response whose records are still in the log. The
// connection's writer calls writeTo once and then release (release alone
// if the reply is never written).
type fetchReply struct {
	resp kmsg.FetchResponse
	// records are the partitions carrying log regions, in the order the
	// partitions are encoded (topic by topic, partition by partition);
	// their RecordBatches stay emptyRecords between writes.
	records  []fetchRecords
	released bool
}

// fetchRecords ties a region to the response partition it answers.
type fetchRecords struct {
	part   *kmsg.FetchResponseTopicPartition
	region partlog.Region
}

var (
	// emptyRecords is the records field of a partition without data:
	// Kafka sends an empty (not null) record set there.
	emptyRecords = []byte{}
	// placeholderRecords marks a records field for the lockstep walk.
	placeholderRecords = []byte{0}
)

// release drops the references on every region. Idempotent.
func (f *fetchReply) release() {
	if f.released {
		return
	}
	f.released = true
	for i := range f.records {
		f.records[i].region.Release()
		f.records[i].region = partlog.Region{}
	}
}

// recordBytes is the number of record bytes the reply carries.
func (f *fetchReply) recordBytes() int64 {
	var n int64
	for i := range f.records {
		n += f.records[i].region.Len()
	}
	return n
}

// splice is one records field in the empty-records encoding: the length
// prefix at offset at, placeholderLen bytes long.
type splice struct{ at int }

// fetchScratch holds the buffers of one writeTo, pooled between calls.
type fetchScratch struct {
	empty, marked []byte
	splices       []splice
	bw            *bufio.Writer
	// small holds the frame header and length prefixes; kept here because
	// a stack array would escape through bufio's io.Writer.
	small [16]byte
}

const (
	// fetchScratchKeep bounds the encoding buffers kept in the pool, so a
	// response with huge metadata does not pin its buffers forever.
	fetchScratchKeep = 1 << 20
	fetchWriteBuffer = 16 << 10
)

var fetchScratchPool = sync.Pool{New: func() any {
	return &fetchScratch{bw: bufio.NewWriterSize(nil, fetchWriteBuffer)}
}}

func getFetchScratch(w io.Writer) *fetchScratch {
	sc := fetchScratchPool.Get().(*fetchScratch)
	sc.bw.Reset(w)
	return sc
}

func putFetchScratch(sc *fetchScratch) {
	sc.bw.Reset(nil) // do not keep the connection reachable
	if cap(sc.empty) > fetchScratchKeep || cap(sc.marked) > fetchScratchKeep {
		return
	}
	sc.empty, sc.marked, sc.splices = sc.empty[:0], sc.marked[:0], sc.splices[:0]
	fetchScratchPool.Put(sc)
}

// writeTo writes the whole response frame to w: the 4-byte size prefix,
// the response header (correlation id, and empty tagged fields from v12)
// and the body, with each region's bytes sent by Region.WriteTo so that a
// TCP conn gets them by sendfile. w should be the raw connection (with any
// buffer of the caller flushed), or sendfile cannot apply; any other
// writer works, by copying. An error leaves the stream mid-frame: the
// caller must close the connection.
func (f *fetchReply) writeTo(w io.Writer, corr int32, version int16) (int64, error) {
	if f.released {
		return 0, errors.New("fetch response: write after release")
	}
	f.resp.Version = version
	flexible := version >= 12
	sc := getFetchScratch(w)
	defer putFetchScratch(sc)

	for i := range f.records {
		f.records[i].part.RecordBatches = emptyRecords
	}
	sc.empty = f.resp.AppendTo(sc.empty[:0])
	if len(f.records) == 0 {
		return writeFrame(sc, corr, flexible, sc.empty)
	}
	for i := range f.records {
		f.records[i].part.RecordBatches = placeholderRecords
	}
	sc.marked = f.resp.AppendTo(sc.marked[:0])
	for i := range f.records {
		f.records[i].part.RecordBatches = emptyRecords
	}
	var ok bool
	sc.splices, ok = locateRecords(sc.empty, sc.marked, len(f.records), flexible, sc.splices[:0])
	if !ok {
		return f.writeCopied(w, corr, version)
	}

	placeholderLen := 4
	if flexible {
		placeholderLen = 1
	}
	size := int64(4 + len(sc.empty)) // correlation id + body
	if flexible {
		size++ // empty header tags
	}
	for i := range f.records {
		n := f.records[i].region.Len()
		if n < 0 || n > math.MaxInt32-1 {
			return 0, fmt.Errorf("fetch response: region of %d bytes cannot be framed", n)
		}
		size += n + int64(recordsPrefixLen(n, flexible)-placeholderLen)
	}
	if size > math.MaxInt32 {
		return 0, fmt.Errorf("fetch response: %d bytes exceed a frame", size)
	}

	// Small pieces gather in the buffer (bufio writes one larger than
	// its space straight through); it is flushed before every region so
	// that the bytes stay in order.
	bw := &countingBuffer{bw: sc.bw}
	bw.write(appendFrameHeader(sc.small[:0], int32(size), corr, flexible))
	pos := 0
	for i, sp := range sc.splices {
		region := f.records[i].region
		n := region.Len()
		bw.write(sc.empty[pos:sp.at])
		bw.write(appendRecordsPrefix(sc.small[:0], n, flexible))
		pos = sp.at + placeholderLen
		if n == 0 {
			continue
		}
		if err := bw.flush(); err != nil {
			return bw.n, err
		}
		m, err := region.WriteTo(w)
		bw.n += m
		if err != nil {
			return bw.n, fmt.Errorf("fetch response: write records: %w", err)
		}
		if m != n {
			return bw.n, fmt.Errorf("fetch response: wrote %d of %d record bytes", m, n)
		}
	}
	bw.write(sc.empty[pos:])
	if err := bw.flush(); err != nil {
		return bw.n, err
	}
	if bw.n != size+4 {
		return bw.n, fmt.Errorf("fetch response: wrote %d bytes, framed %d", bw.n, size+4)
	}
	return bw.n, nil
}

// countingBuffer counts the bytes handed to a bufio.Writer and keeps its
// first error (bufio's own errors are sticky too).
type countingBuffer struct {
	bw  *bufio.Writer
	n   int64
	err error
}

func (c *countingBuffer) write(p []byte) {
	if c.err != nil {
		return
	}
	m, err := c.bw.Write(p)
	c.n += int64(m)
	c.err = err
}

func (c *countingBuffer) flush() error {
	if c.err == nil {
		c.err = c.bw.Flush()
	}
	if c.err != nil {
		return fmt.Errorf("fetch response: write: %w", c.err)
	}
	return nil
}

// locateRecords walks the empty-records and placeholder encodings in
// lockstep and appends to dst the offset (in empty) of each of the n
// records fields. It reports false unless the encodings differ exactly at
// n well-formed records fields.
func locateRecords(empty, marked []byte, n int, flexible bool, dst []splice) ([]splice, bool) {
	prefixLen := 4
	if flexible {
		prefixLen = 1
	}
	ei, mi := 0, 0
	for range n {
		d := commonPrefixLen(empty[ei:], marked[mi:])
		// The first differing byte is the last of the length prefix:
		// int32 0 vs 1, or the single uvarint byte 1 vs 2.
		at := ei + d - (prefixLen - 1)
		mat := mi + (at - ei)
		if at < ei || at+prefixLen > len(empty) || mat+prefixLen+1 > len(marked) {
			return dst, false
		}
		if flexible {
			if empty[at] != 1 || marked[mat] != 2 || marked[mat+1] != placeholderRecords[0] {
				return dst, false
			}
		} else if binary.BigEndian.Uint32(empty[at:]) != 0 || binary.BigEndian.Uint32(marked[mat:]) != 1 ||
			marked[mat+4] != placeholderRecords[0] {
			return dst, false
		}
		dst = append(dst, splice{at: at})
		ei = at + prefixLen
		mi = mat + prefixLen + 1
	}
	return dst, bytes.Equal(empty[ei:], marked[mi:])
}

func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	// Compare eight bytes at a time; the encodings share long runs.
	for ; i+8 <= n; i += 8 {
		if binary.LittleEndian.Uint64(a[i:]) != binary.LittleEndian.Uint64(b[i:]) {
			break
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// recordsPrefixLen is the size of the length prefix of n record bytes.
func recordsPrefixLen(n int64, flexible bool) int {
	if !flexible {
		return 4
	}
	return kbin.UvarintLen(uint32(n + 1))
}

// appendRecordsPrefix appends the length prefix of n record bytes: an
// int32, or from v12 a compact (length+1) uvarint.
func appendRecordsPrefix(dst []byte, n int64, flexible bool) []byte {
	if !flexible {
		return kbin.AppendInt32(dst, int32(n))
	}
	return kbin.AppendUvarint(dst, uint32(n+1))
}

// appendFrameHeader appends a response frame's size prefix (size counts
// what follows it) and response header.
func appendFrameHeader(dst []byte, size, corr int32, flexible bool) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if flexible {
		dst = append(dst, 0) // no header tags
	}
	return dst
}

// writeFrame writes a response frame around an encoded body.
func writeFrame(sc *fetchScratch, corr int32, flexible bool, body []byte) (int64, error) {
	size := 4 + len(body)
	if flexible {
		size++
	}
	if size > math.MaxInt32 {
		return 0, fmt.Errorf("fetch response: %d bytes exceed a frame", size)
	}
	sc.bw.Write(appendFrameHeader(sc.small[:0], int32(size), corr, flexible))
	sc.bw.Write(body)
	if err := sc.bw.Flush(); err != nil {
		return 0, fmt.Errorf("fetch response: write: %w", err)
	}
	return int64(size + 4), nil
}

// appendFrame appends the whole response frame to dst, copying the record
// bytes out of the log (pread). It is the slow path: a fallback for
// writeTo, and the reference the zero-copy path is tested and benchmarked
// against.
func (f *fetchReply) appendFrame(dst []byte, corr int32, version int16) ([]byte, error) {
	if f.released {
		return dst, errors.New("fetch response: write after release")
	}
	f.resp.Version = version
	total := f.recordBytes()
	if total > math.MaxInt32 {
		return dst, fmt.Errorf("fetch response: %d record bytes exceed a frame", total)
	}
	data := make([]byte, 0, total)
	for i := range f.records {
		start := len(data)
		var err error
		if data, err = f.records[i].region.AppendTo(data); err != nil {
			return dst, fmt.Errorf("fetch response: read records: %w", err)
		}
		f.records[i].part.RecordBatches = data[start:len(data):len(data)]
	}
	defer func() {
		for i := range f.records {
			f.records[i].part.RecordBatches = emptyRecords
		}
	}()
	start := len(dst)
	dst = appendFrameHeader(dst, 0, corr, version >= 12) // size patched below
	dst = f.resp.AppendTo(dst)
	size := len(dst) - start - 4
	if size > math.MaxInt32 {
		return dst[:start], fmt.Errorf("fetch response: %d bytes exceed a frame", size)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(size))
	return dst, nil
}

// writeCopied writes the frame built by appendFrame.
func (f *fetchReply) writeCopied(w io.Writer, corr int32, version int16) (int64, error) {
	buf, err := f.appendFrame(nil, corr, version)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(buf)
	if err != nil {
		return int64(n), fmt.Errorf("fetch response: write: %w", err)
	}
	return int64(n), nil
}
