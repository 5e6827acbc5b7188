package wire

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The framing of the Kafka protocol: every request and response is a
// 4-byte big-endian size followed by that many bytes. A request frame
// starts with the request header:
//
//	api key int16, api version int16, correlation id int32   (v0)
//	client id nullable string (int16 length)                 (v1+)
//	tagged fields (uvarint count, then tag/size/bytes)       (v2, flexible versions)
//
// A response frame starts with the correlation id, followed by empty
// tagged fields when the response is flexible — except ApiVersions, whose
// response header is always v0 so that a client that does not yet know
// the broker's versions can parse it.

const (
	// minRequestFrame is the fixed part of a request header; a smaller
	// size prefix cannot be a request.
	minRequestFrame = 8
	// apiVersionsKey is ApiVersions, the one API answered even at
	// versions the server does not know (KIP-511).
	apiVersionsKey = 18
	// produceKey is Produce, whose frames are recycled (framepool.go).
	produceKey = 0
)

// errFrameSize is returned for a size prefix that is negative, below
// the request header or above socket.request.max.bytes. It carries no
// detail so that rejecting a frame allocates nothing.
var errFrameSize = errors.New("request frame size out of bounds")

// readFrame reads one size-prefixed frame from r. The prefix is checked
// before the frame buffer is allocated, so a hostile prefix costs nothing;
// the buffer is then sized from the checked prefix. The returned size is
// the prefix as read, for logs.
//
// The frame comes from the frame pools (framepool.go); decoded requests
// alias it, so it goes back only under the rules stated there.
//
// reserve, when non-nil, is called with the checked size before the buffer
// is allocated; it blocks while the server's budget of queued request
// bytes is spent, and an error from it is returned as is.
func readFrame(r io.Reader, hdr *[4]byte, maxBytes int32, reserve func(int32) error) (size int32, frame []byte, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	size = int32(binary.BigEndian.Uint32(hdr[:]))
	if size < minRequestFrame || size > maxBytes {
		return size, nil, errFrameSize
	}
	if reserve != nil {
		if err := reserve(size); err != nil {
			return size, nil, err
		}
	}
	frame = getFrame(int(size))
	if _, err := io.ReadFull(r, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return size, nil, err
	}
	return size, frame, nil
}

// readNullableString reads a header string (int16 length, -1 for null).
// The returned bytes alias b.
func readNullableString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	switch {
	case n == -1:
		return nil, b, true
	case n < 0 || int(n) > len(b):
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// skipTaggedFields skips a tagged-field section. The request header
// defines no tags, so all are ignored. Every tag takes at least two bytes,
// so the loop is bounded by len(b).
func skipTaggedFields(b []byte) (rest []byte, ok bool) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, false
	}
	b = b[n:]
	for range count {
		_, n := binary.Uvarint(b) // tag
		if n <= 0 {
			return nil, false
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, false
		}
		b = b[n+int(size):]
	}
	return b, true
}

// appendResponse appends resp as a complete response frame for
// correlation id corr. resp's version must already be set.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, patched below
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0) // no header tags
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
