package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed is the output limit of Decompress and of the record
// readers (Payload, FirstOffsetAtOrAfter): far above any honest batch,
// low enough that a zip bomb fails instead of exhausting memory.
const MaxDecompressed = 64 << 20

// Decompress is DecompressLimit with a limit of MaxDecompressed.
func Decompress(c Codec, src, dst []byte) ([]byte, error) {
	return DecompressLimit(c, src, dst, MaxDecompressed)
}

// DecompressLimit decompresses the records section src of a batch with
// codec c into dst[:0], reusing its capacity, and returns the result. Output
// beyond max bytes fails, as does any malformed input, with ErrCorrupt. The
// output buffer never grows much past max bytes, with one exception: a zstd
// frame that does not declare its size is decoded by the shared decoder,
// whose own bound is MaxDecompressed, before its size is checked against a
// smaller max. On failure the returned slice is empty but may carry grown
// capacity worth reusing. Safe for concurrent use.
//
// Snappy accepts both a raw block (what franz-go and librdkafka send) and
// the xerial framing of the Java client.
func DecompressLimit(c Codec, src, dst []byte, max int) ([]byte, error) {
	out, err := appendDecompressed(c, dst[:0], src, max)
	if err != nil {
		return out[:0], fmt.Errorf("decompress %s (%d bytes): %w", c, len(src), err)
	}
	return out, nil
}

// errExpands is wrapped with the limit by appendDecompressed.
var errExpands = errors.New("decompressed size over the limit")

func appendDecompressed(c Codec, dst, src []byte, max int) ([]byte, error) {
	var err error
	switch c {
	case CodecNone:
		if len(src) > max {
			return dst, fmt.Errorf("%w of %d bytes: %w", errExpands, max, ErrCorrupt)
		}
		return append(dst, src...), nil
	case CodecGzip:
		dst, err = gunzip(dst, src, max)
	case CodecSnappy:
		dst, err = unsnappy(dst, src, max)
	case CodecLZ4:
		dst, err = unlz4(dst, src, max)
	case CodecZstd:
		dst, err = unzstd(dst, src, max)
	default:
		return dst, fmt.Errorf("unknown codec %d: %w", int8(c), ErrCorrupt)
	}
	if err != nil {
		if errors.Is(err, errExpands) {
			return dst, fmt.Errorf("%w of %d bytes: %w", errExpands, max, ErrCorrupt)
		}
		return dst, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return dst, nil
}

// readAllLimit appends what r yields to dst until EOF, failing with
// errExpands once more than max bytes were appended. It grows dst at most
// to max+1 appended bytes, so the limit also bounds memory.
func readAllLimit(r io.Reader, dst []byte, max int) ([]byte, error) {
	start := len(dst)
	stalls := 0
	for {
		if len(dst) == cap(dst) {
			dst = growLimited(dst, start+max+1)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > max {
			return dst, errExpands
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		// A reader that keeps returning nothing must not spin forever.
		if n == 0 {
			if stalls++; stalls > 100 {
				return dst, io.ErrNoProgress
			}
		} else {
			stalls = 0
		}
	}
}

// growLimited doubles dst's capacity (at least to 4 KiB), never past limit.
// Callers make sure cap(dst) < limit.
func growLimited(dst []byte, limit int) []byte {
	n := min(max(2*cap(dst), 4<<10), limit)
	return reserve(dst, n-len(dst))
}

// reserve makes room for n more bytes after len(dst).
func reserve(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	grown := make([]byte, len(dst), len(dst)+n)
	copy(grown, dst)
	return grown
}

type gzipDecoder struct {
	r   gzip.Reader
	src bytes.Reader
}

var gzipDecoders = sync.Pool{New: func() any { return new(gzipDecoder) }}

func gunzip(dst, src []byte, max int) ([]byte, error) {
	d := gzipDecoders.Get().(*gzipDecoder)
	defer gzipDecoders.Put(d)
	defer d.src.Reset(nil) // do not pin the caller's bytes in the pool
	d.src.Reset(src)
	if err := d.r.Reset(&d.src); err != nil {
		return dst, err
	}
	// The trailer records the size (mod 2^32) of a single-member stream;
	// trusting it up to the limit saves regrowing dst. +1 leaves room to
	// see EOF without growing again.
	// The ratio check keeps a forged trailer on a tiny input from
	// committing max bytes up front: deflate cannot expand past ~1032:1.
	if len(src) >= 8 {
		if hint := int(binary.LittleEndian.Uint32(src[len(src)-4:])); hint <= max && hint <= 1032*len(src) {
			dst = reserve(dst, hint+1)
		}
	}
	return readAllLimit(&d.r, dst, max)
}

// xerialMagic starts the Java client's snappy framing: the magic, then two
// big-endian int32s (version, minimum compatible version), then repeated
// [int32 length][raw snappy block].
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

func unsnappy(dst, src []byte, max int) ([]byte, error) {
	if len(src) < xerialHeaderLen || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		return appendSnappyBlock(dst, src, max)
	}
	start := len(dst)
	for rest := src[xerialHeaderLen:]; len(rest) > 0; {
		if len(rest) < 4 {
			return dst, fmt.Errorf("xerial chunk length cut short")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst, fmt.Errorf("xerial chunk of %d bytes with %d left", n, len(rest))
		}
		var err error
		if dst, err = appendSnappyBlock(dst, rest[:n], max-(len(dst)-start)); err != nil {
			return dst, err
		}
		rest = rest[n:]
	}
	return dst, nil
}

// appendSnappyBlock decodes one raw snappy block after dst. The block
// states its decoded length up front, so the limit is checked before any
// memory is committed.
func appendSnappyBlock(dst, block []byte, max int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return dst, err
	}
	if n > max {
		return dst, errExpands
	}
	// No snappy element expands more than 64 bytes out of 3 in, so a
	// larger claim is a lie meant to make us allocate.
	if n > 22*len(block)+64 {
		return dst, fmt.Errorf("snappy block of %d bytes claims %d decoded", len(block), n)
	}
	dst = reserve(dst, n)
	// With room for n bytes, Decode writes into the slice it is given.
	if _, err := snappy.Decode(dst[len(dst):len(dst)+n], block); err != nil {
		return dst, err
	}
	return dst[:len(dst)+n], nil
}

type lz4Decoder struct {
	r   *lz4.Reader
	src bytes.Reader
}

var lz4Decoders = sync.Pool{New: func() any { return &lz4Decoder{r: lz4.NewReader(nil)} }}

func unlz4(dst, src []byte, max int) ([]byte, error) {
	d := lz4Decoders.Get().(*lz4Decoder)
	defer lz4Decoders.Put(d)
	d.src.Reset(src)
	d.r.Reset(&d.src)
	dst, err := readAllLimit(d.r, dst, max)
	d.src.Reset(nil)
	d.r.Reset(nil) // returns the block buffer to lz4's pool
	return dst, err
}

// sharedZstd decodes with DecodeAll, which is safe for concurrent use, so
// one decoder serves the whole process. Its own limit is MaxDecompressed;
// larger limits get a decoder of their own (see unzstd).
var sharedZstd = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0), // one per GOMAXPROCS
		zstd.WithDecoderMaxMemory(MaxDecompressed))
})

func unzstd(dst, src []byte, max int) ([]byte, error) {
	// Producers record the content size in the frame header; refuse a
	// frame declaring too much before decoding anything.
	var fh zstd.Header
	if fh.Decode(src) == nil && fh.HasFCS && fh.FrameContentSize > uint64(max) {
		return dst, errExpands
	}
	dec, err := sharedZstd()
	if err != nil {
		return dst, err
	}
	if max > MaxDecompressed {
		// Only topics with a max.message.bytes above 32 MiB get here.
		if dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max))); err != nil {
			return dst, err
		}
		defer dec.Close()
	}
	start := len(dst)
	out, err := dec.DecodeAll(src, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || (err == nil && len(out)-start > max) {
		return dst, errExpands
	}
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Compress compresses src with codec c into dst[:0], reusing its capacity,
// and returns the result: the records section of a compressed batch. Snappy
// output is a raw block, as franz-go and librdkafka write it.
func Compress(c Codec, src, dst []byte) ([]byte, error) {
	out, err := appendCompressed(c, dst[:0], src)
	if err != nil {
		return out[:0], fmt.Errorf("compress %s: %w", c, err)
	}
	return out, nil
}

func appendCompressed(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		e := gzipEncoders.Get().(*streamEncoder)
		defer gzipEncoders.Put(e)
		return e.encode(dst, src)
	case CodecSnappy:
		n := snappy.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("%d bytes is too much for one snappy block", len(src))
		}
		dst = reserve(dst, n)
		enc := snappy.Encode(dst[len(dst):len(dst)+n], src)
		// enc normally aliases the room reserved above; append copes either way.
		return append(dst, enc...), nil
	case CodecLZ4:
		e := lz4Encoders.Get().(*streamEncoder)
		defer lz4Encoders.Put(e)
		return e.encode(dst, src)
	case CodecZstd:
		enc, err := sharedZstdEncoder()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("unknown codec %d", int8(c))
}

// appendWriter is an io.Writer appending to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// streamWriter is what gzip.Writer and lz4.Writer have in common.
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// streamEncoder pairs a pooled stream compressor with the buffer it writes.
type streamEncoder struct {
	w   streamWriter
	out appendWriter
}

func (e *streamEncoder) encode(dst, src []byte) ([]byte, error) {
	e.out.b = dst
	defer func() { e.out.b = nil }()
	e.w.Reset(&e.out)
	if _, err := e.w.Write(src); err != nil {
		return dst, err
	}
	if err := e.w.Close(); err != nil {
		return dst, err
	}
	return e.out.b, nil
}

var (
	gzipEncoders = sync.Pool{New: func() any {
		e := new(streamEncoder)
		e.w = gzip.NewWriter(&e.out)
		return e
	}}
	lz4Encoders = sync.Pool{New: func() any {
		e := new(streamEncoder)
		e.w = lz4.NewWriter(&e.out)
		return e
	}}
	// EncodeAll is safe for concurrent use.
	sharedZstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithZeroFrames(true))
	})
)
