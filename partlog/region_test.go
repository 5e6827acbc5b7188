package partlog

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// bigLog returns a log on disk holding about size bytes in one segment.
func bigLog(t *testing.T, size int) (*Store, *Log, *history) {
	t.Helper()
	s := openTestStore(t, vfs.Default, t.TempDir())
	l := openTestLog(t, s, testID, infiniteConfig(1<<30))
	var h history
	for l.Size() < int64(size) {
		h.appendN(t, l, 1, 100, 1000, 0, constTs(1))
	}
	return s, l, &h
}

func TestRegionWriteToTCPUsesSendfile(t *testing.T) {
	s, l, h := bigLog(t, 8<<20) // larger than socket buffers: exercises EAGAIN waits
	defer s.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c)
		received <- b
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))

	// Two regions: one from the start, one from the middle of the log.
	mid := l.EndOffset() / 2
	var want []byte
	var total int64
	for _, from := range []int64{0, mid} {
		r, err := l.Read(from, 64<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if r.r.sf.fd == vfs.InvalidFd {
			t.Fatal("segment on vfs.Default has no descriptor")
		}
		n, err := r.WriteTo(conn)
		if err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		if n != r.Len() {
			t.Fatalf("WriteTo wrote %d of %d bytes", n, r.Len())
		}
		total += n
		r.Release()
		want = append(want, h.bytesFrom(from, l.EndOffset())...)
	}
	_ = conn.Close()
	got := <-received
	if int64(len(got)) != total || !bytes.Equal(got, want) {
		t.Fatalf("receiver got %d bytes, want %d identical bytes", len(got), len(want))
	}
}

func TestSendfileDirect(t *testing.T) {
	s, l, _ := bigLog(t, 256<<10)
	defer s.Close()
	r, err := l.Read(0, 1<<30, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	want, err := r.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, _ := io.ReadAll(c)
		done <- got
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Send the second half of the region through sendfile directly: the
	// handled flag proves the zero-copy path ran, and the explicit offset
	// must not depend on (or move) the file position.
	half := r.r.n / 2
	n, handled, err := sendfile(conn.(syscall.Conn), r.r.sf.fd, r.r.pos+half, r.r.n-half)
	if !handled || err != nil || n != r.r.n-half {
		t.Fatalf("sendfile = (%d, %v, %v), want (%d, true, nil)", n, handled, err, r.r.n-half)
	}
	_ = conn.Close()
	if got := <-done; !bytes.Equal(got, want[half:]) {
		t.Fatalf("sendfile delivered %d bytes, want %d identical", len(got), len(want)-int(half))
	}
}

func TestRegionWriteToFallbacks(t *testing.T) {
	for _, fsName := range []string{"disk", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			fs, dir := vfs.FS(vfs.NewMem()), "/d"
			if fsName == "disk" {
				fs, dir = vfs.Default, t.TempDir()
			}
			s := openTestStore(t, fs, dir)
			defer s.Close()
			l := openTestLog(t, s, testID, infiniteConfig(1<<30))
			var h history
			h.appendN(t, l, 40, 50, 200, 0, constTs(1)) // > one copy buffer
			r, err := l.Read(3, 1<<30, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := r.WriteTo(&buf)
			if err != nil || n != r.Len() || !bytes.Equal(buf.Bytes(), h.bytesFrom(3, l.EndOffset())) {
				t.Fatalf("WriteTo(bytes.Buffer) = %d, %v; content equal %v", n, err, bytes.Equal(buf.Bytes(), h.bytesFrom(3, l.EndOffset())))
			}
			// A pipe is not a syscall.Conn either.
			a, b := net.Pipe()
			var got []byte
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); got, _ = io.ReadAll(b) }()
			if _, err := r.WriteTo(a); err != nil {
				t.Fatal(err)
			}
			a.Close()
			wg.Wait()
			if !bytes.Equal(got, buf.Bytes()) {
				t.Fatal("WriteTo(net.Pipe) differs")
			}
			// AppendTo keeps what dst held.
			out, err := r.AppendTo([]byte("x"))
			if err != nil || string(out[:1]) != "x" || !bytes.Equal(out[1:], buf.Bytes()) {
				t.Fatalf("AppendTo: %v", err)
			}
			r.Release()
			r.Release() // idempotent
			if _, err := r.WriteTo(io.Discard); !errors.Is(err, errReleased) {
				t.Fatalf("WriteTo after Release: %v", err)
			}
		})
	}
	var zero Region
	if n, err := zero.WriteTo(io.Discard); n != 0 || err != nil || zero.Len() != 0 {
		t.Fatal("zero Region not empty")
	}
	if out, err := zero.AppendTo(nil); len(out) != 0 || err != nil {
		t.Fatal("zero Region AppendTo")
	}
	zero.Release()
}

// TestRegionOutlivesRetention: a fetch holding a Region keeps the deleted
// segment readable, and its file closes on the last Release.
func TestRegionOutlivesRetention(t *testing.T) {
	s := openTestStore(t, vfs.Default, t.TempDir())
	defer s.Close()
	l := openTestLog(t, s, testID, LogConfig{SegmentBytes: 3000, RetentionMs: -1, RetentionBytes: 0})
	var h history
	h.appendN(t, l, 12, 5, 100, 0, constTs(1))
	r, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	sf := r.r.sf
	if removed, err := l.EnforceRetention(0); err != nil || removed == 0 {
		t.Fatalf("retention removed %d: %v", removed, err)
	}
	if _, err := s.fs.Stat(l.fs.PathJoin(l.dir, segmentName(0))); err == nil {
		t.Fatal("segment file still present after retention")
	}
	got, err := r.AppendTo(nil)
	if err != nil || !bytes.Equal(got, h.bytesFrom(0, 20)) {
		t.Fatalf("region over deleted segment: %v", err)
	}
	if refs := sf.refs.Load(); refs != 1 {
		t.Fatalf("deleted segment has %d refs, want only the region's", refs)
	}
	r.Release()
	if refs := sf.refs.Load(); refs != 0 {
		t.Fatalf("refs after release %d", refs)
	}
}
