package fetcher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one Kafka connection to a source broker, used by one goroutine
// at a time with one request in flight.
type conn struct {
	nc   net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
	wbuf []byte
	// rbuf holds the last response. Decoded byte fields (the records)
	// alias it, so it is reused only once they are no longer read; see
	// dropBuffer.
	rbuf []byte
	// maxFrame bounds a response: a larger length prefix fails the
	// request before anything is allocated.
	maxFrame int
	// keepBuffer is the largest rbuf kept between requests.
	keepBuffer int
}

// errFrameTooLarge: the source answered more than maxFrame bytes.
var errFrameTooLarge = errors.New("fetcher: response frame too large")

func newConn(nc net.Conn, clientID string, maxFrame, keepBuffer int) *conn {
	return &conn{nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)), maxFrame: maxFrame, keepBuffer: keepBuffer}
}

// roundTrip sends req and decodes the answer into resp, all before
// deadline. Any error leaves the connection unusable: close it.
func (c *conn) roundTrip(req kmsg.Request, resp kmsg.Response, deadline time.Time) error {
	c.corr++
	c.wbuf = c.fmt.AppendRequest(c.wbuf[:0], req, c.corr)
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return fmt.Errorf("write %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 4 || n > c.maxFrame {
		return fmt.Errorf("%s response of %d bytes (limit %d): %w", kmsg.NameForKey(req.Key()), n, c.maxFrame, errFrameTooLarge)
	}
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	b := c.rbuf[:n]
	if _, err := io.ReadFull(c.nc, b); err != nil {
		return fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if corr := int32(binary.BigEndian.Uint32(b)); corr != c.corr {
		return fmt.Errorf("%s response has correlation id %d, want %d", kmsg.NameForKey(req.Key()), corr, c.corr)
	}
	body := b[4:]
	// Flexible responses carry a tag section after the correlation id
	// (but ApiVersions, whose header stays v0).
	if req.IsFlexible() && req.Key() != 18 {
		r := kbin.Reader{Src: body}
		for i := r.Uvarint(); i > 0 && r.Ok(); i-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if err := r.Complete(); err != nil {
			return fmt.Errorf("%s response header: %w", kmsg.NameForKey(req.Key()), err)
		}
		body = r.Src
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return nil
}

// dropBuffer forgets the response buffer: something may still read the
// last response's records (a partition that did not answer in time), or
// the buffer grew past what is worth keeping.
func (c *conn) dropBuffer() { c.rbuf = nil }

// trimBuffer drops the buffer if it grew past keepBuffer.
func (c *conn) trimBuffer() {
	if cap(c.rbuf) > c.keepBuffer {
		c.rbuf = nil
	}
}

func (c *conn) close() error { return c.nc.Close() }
