package cluster

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// dropOnceProxy forwards Kafka connections to a broker, and the first
// time it forwards a Produce request it cuts the connection before the
// response can come back, so the client must resend that produce.
type dropOnceProxy struct {
	ln      net.Listener
	target  string
	dropped atomic.Int32
}

func newDropOnceProxy(t *testing.T, target string) *dropOnceProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropOnceProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go p.accept()
	return p
}

func (p *dropOnceProxy) addr() string { return p.ln.Addr().String() }

func (p *dropOnceProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *dropOnceProxy) serve(client net.Conn) {
	defer client.Close()
	broker, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer broker.Close()
	go io.Copy(client, broker)
	var size [4]byte
	for {
		if _, err := io.ReadFull(client, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 64<<20 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		if _, err := broker.Write(append(size[:], body...)); err != nil {
			return
		}
		if n >= 2 && binary.BigEndian.Uint16(body) == 0 && p.dropped.CompareAndSwap(0, 1) {
			// Let the broker append it, then lose the response.
			time.Sleep(200 * time.Millisecond)
			return
		}
	}
}
