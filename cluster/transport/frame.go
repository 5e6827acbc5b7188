package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameType says what a frame carries.
type frameType uint8

const (
	frameMessage  frameType = 1 // one-way, no correlation id
	frameRequest  frameType = 2 // answered by a response or an error
	frameResponse frameType = 3 // a handler's answer
	frameError    frameType = 4 // a handler's error; the payload is its text
)

func (t frameType) valid() bool { return t >= frameMessage && t <= frameError }

// hasCorrelation reports whether frames of this type carry a correlation id.
func (t frameType) hasCorrelation() bool { return t != frameMessage }

const (
	lengthSize    = 4
	typeKindSize  = 2
	corrSize      = 8
	maxHeaderSize = lengthSize + typeKindSize + corrSize

	// DefaultMaxFrameBytes bounds a frame (everything after its length
	// prefix). Raft snapshots of the metadata image are the largest thing
	// sent; 16 MiB leaves room and still bounds a bad length prefix.
	DefaultMaxFrameBytes = 16 << 20
	// minMaxFrameBytes and maxMaxFrameBytes bound Options.MaxFrameBytes.
	minMaxFrameBytes = 64
	maxMaxFrameBytes = 1 << 30

	// retainReadBuffer is the largest read buffer a connection keeps
	// between frames.
	retainReadBuffer = 1 << 20
)

var (
	errFrameTooLarge  = errors.New("frame too large")
	errMalformedFrame = errors.New("malformed frame")
)

// maxPayload is the largest payload a frame of type t can carry when
// frames are bounded by maxFrame.
func maxPayload(t frameType, maxFrame int) int {
	if t.hasCorrelation() {
		return maxFrame - typeKindSize - corrSize
	}
	return maxFrame - typeKindSize
}

// putHeader encodes a frame header for a payload of payloadLen bytes into
// hdr and returns its length. The caller has checked payloadLen against
// maxPayload.
func putHeader(hdr *[maxHeaderSize]byte, t frameType, kind Kind, corr uint64, payloadLen int) int {
	body := typeKindSize + payloadLen
	n := lengthSize + typeKindSize
	if t.hasCorrelation() {
		body += corrSize
		binary.BigEndian.PutUint64(hdr[6:14], corr)
		n += corrSize
	}
	binary.BigEndian.PutUint32(hdr[0:4], uint32(body))
	hdr[4] = byte(t)
	hdr[5] = byte(kind)
	return n
}

// frame is one decoded frame. payload aliases the reader's buffer and is
// valid until the next call to next.
type frame struct {
	typ     frameType
	kind    Kind
	corr    uint64
	payload []byte
}

// frameReader decodes frames from a connection, reusing one buffer so
// that reading a frame does not allocate.
type frameReader struct {
	r   *bufio.Reader
	max int
	hdr [lengthSize]byte
	buf []byte
}

func newFrameReader(r *bufio.Reader, maxFrame int) *frameReader {
	return &frameReader{r: r, max: maxFrame}
}

// next reads one frame. The length prefix is checked against the bound
// before the buffer grows, so a bad or hostile prefix costs nothing.
// Errors other than io.EOF mean the stream can no longer be trusted.
func (fr *frameReader) next() (frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	if uint64(n) > uint64(fr.max) {
		return frame{}, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, fr.max)
	}
	if n < typeKindSize {
		return frame{}, fmt.Errorf("%w: length %d", errMalformedFrame, n)
	}
	if cap(fr.buf) < int(n) {
		// Grow geometrically so a stream of slowly growing frames does
		// not reallocate each time; never past the bound.
		size := max(int(n), 2*cap(fr.buf))
		size = min(size, fr.max)
		fr.buf = make([]byte, size)
	}
	b := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	f := frame{typ: frameType(b[0]), kind: Kind(b[1])}
	if !f.typ.valid() {
		return frame{}, fmt.Errorf("%w: type %d", errMalformedFrame, b[0])
	}
	off := typeKindSize
	if f.typ.hasCorrelation() {
		if n < typeKindSize+corrSize {
			return frame{}, fmt.Errorf("%w: type %d with length %d", errMalformedFrame, b[0], n)
		}
		f.corr = binary.BigEndian.Uint64(b[2:10])
		off += corrSize
	}
	f.payload = b[off:]
	return f, nil
}

// release drops a large read buffer once its frame has been handled.
func (fr *frameReader) release() {
	if cap(fr.buf) > retainReadBuffer {
		fr.buf = nil
	}
}

// Handshake.

var handshakeMagic = [4]byte{'T', 'R', 'P', 'T'}

const (
	handshakeVersion = 1
	maxClusterIDLen  = 255
	helloFixedSize   = 4 + 2 + 4 + 1
	ackSize          = 4 + 2 + 1 + 4
)

// ackStatus is the acceptor's verdict on a hello.
type ackStatus uint8

const (
	ackOK           ackStatus = 0
	ackWrongCluster ackStatus = 1
	ackBadVersion   ackStatus = 2
)

func (s ackStatus) String() string {
	switch s {
	case ackOK:
		return "accepted"
	case ackWrongCluster:
		return "wrong cluster id"
	case ackBadVersion:
		return "unsupported version"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

var errHandshake = errors.New("handshake failed")

// hello is what a dialer says about itself.
type hello struct {
	version   uint16
	nodeID    int32
	clusterID string
}

// appendHello encodes a hello. clusterID has been checked to fit.
func appendHello(dst []byte, nodeID int32, clusterID string) []byte {
	dst = append(dst, handshakeMagic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, handshakeVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(nodeID))
	dst = append(dst, byte(len(clusterID)))
	return append(dst, clusterID...)
}

func readHello(r io.Reader) (hello, error) {
	var b [helloFixedSize + maxClusterIDLen]byte
	if _, err := io.ReadFull(r, b[:helloFixedSize]); err != nil {
		return hello{}, fmt.Errorf("%w: reading hello: %w", errHandshake, err)
	}
	if [4]byte(b[0:4]) != handshakeMagic {
		return hello{}, fmt.Errorf("%w: bad magic %q", errHandshake, b[0:4])
	}
	h := hello{
		version: binary.BigEndian.Uint16(b[4:6]),
		nodeID:  int32(binary.BigEndian.Uint32(b[6:10])),
	}
	n := int(b[10]) // at most maxClusterIDLen by construction
	if _, err := io.ReadFull(r, b[helloFixedSize:helloFixedSize+n]); err != nil {
		return hello{}, fmt.Errorf("%w: reading cluster id: %w", errHandshake, err)
	}
	h.clusterID = string(b[helloFixedSize : helloFixedSize+n])
	return h, nil
}

func appendAck(dst []byte, status ackStatus, nodeID int32) []byte {
	dst = append(dst, handshakeMagic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, handshakeVersion)
	dst = append(dst, byte(status))
	return binary.BigEndian.AppendUint32(dst, uint32(nodeID))
}

func readAck(r io.Reader) (ackStatus, int32, error) {
	var b [ackSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, fmt.Errorf("%w: reading answer: %w", errHandshake, err)
	}
	if [4]byte(b[0:4]) != handshakeMagic {
		return 0, 0, fmt.Errorf("%w: bad magic %q in answer", errHandshake, b[0:4])
	}
	return ackStatus(b[6]), int32(binary.BigEndian.Uint32(b[7:11])), nil
}
