package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/partlog"
)

// regionSource appends batches of chosen sizes to a log once and hands out
// fresh Regions over each (every fetchReply releases its own).
type regionSource struct {
	t       testing.TB
	log     *partlog.Log
	offsets map[int]int64 // batch size → its offset
	bytes   map[int][]byte
}

func newRegionSource(t testing.TB, sizes ...int) *regionSource {
	t.Helper()
	b := newDPBackend(t, map[string]int{"src": 1})
	p := b.part("src", 0)
	rs := &regionSource{t: t, log: p.log, offsets: map[int]int64{}, bytes: map[int][]byte{}}
	for _, size := range sizes {
		if _, ok := rs.offsets[size]; ok {
			continue
		}
		rec := batchOfSize(t, size)
		rs.offsets[size] = p.append(t, rec)
	}
	for size, off := range rs.offsets {
		r := rs.region(size)
		data, err := r.AppendTo(nil)
		r.Release()
		if err != nil {
			t.Fatalf("read back batch of %d bytes: %v", size, err)
		}
		if len(data) != size {
			t.Fatalf("region at %d has %d bytes, want %d", off, len(data), size)
		}
		rs.bytes[size] = data
	}
	return rs
}

// region returns a Region holding exactly the batch of the given size.
func (rs *regionSource) region(size int) partlog.Region {
	rs.t.Helper()
	off, ok := rs.offsets[size]
	if !ok {
		rs.t.Fatalf("no batch of %d bytes", size)
	}
	r, err := rs.log.Read(off, size, rs.log.EndOffset())
	if err != nil || r.Len() != int64(size) {
		rs.t.Fatalf("read %d at %d: len %d, err %v", size, off, r.Len(), err)
	}
	return r
}

// fetchShape describes a response: topics of partitions, each either an
// error, empty, or carrying a batch of a given size.
type fetchShape struct {
	name   string
	topics [][]partShape
	// top-level extras
	sessionID int32
	errorCode int16
	brokers   bool
}

type partShape struct {
	code    int16
	size    int  // record bytes; 0 for none
	leader  bool // non-default CurrentLeader tag (v12+)
	aborted bool // empty, non-nil aborted transactions
}

var uvarintEdgeSizes = []int{125, 126, 127, 128, 16382, 16383, 16384}

func fetchShapes() []fetchShape {
	shapes := []fetchShape{
		{name: "no-topics"},
		{name: "session-error", errorCode: kerr.InvalidFetchSessionEpoch.Code},
		{name: "one-empty", topics: [][]partShape{{{}}}},
		{name: "one-error", topics: [][]partShape{{{code: kerr.OffsetOutOfRange.Code}}}},
	}
	for _, size := range uvarintEdgeSizes {
		shapes = append(shapes, fetchShape{name: fmt.Sprintf("one-%d", size), topics: [][]partShape{{{size: size}}}})
	}
	shapes = append(shapes,
		fetchShape{name: "many", sessionID: 77, brokers: true, topics: [][]partShape{
			{{size: 126}, {}, {code: kerr.NotLeaderForPartition.Code, leader: true}, {size: 16383, aborted: true}},
			{{code: kerr.UnknownTopicOrPartition.Code}},
			{{size: 127}, {size: 128}, {size: 16384}, {}, {size: 125, leader: true}},
			{},
			{{}, {size: 16382}},
		}},
		fetchShape{name: "all-data", topics: [][]partShape{
			{{size: 127}, {size: 127}},
			{{size: 16383}},
			{{size: 126}, {size: 128}, {size: 16382}},
		}},
	)
	// Wide enough that the encoded metadata outgrows the write buffer.
	wide := make([]partShape, 3000)
	wide[0].size, wide[1500].size, wide[2999].size = 127, 16384, 126
	wide[10].code = kerr.NotLeaderForPartition.Code
	shapes = append(shapes, fetchShape{name: "wide", topics: [][]partShape{wide, {{size: 128}}}})
	return shapes
}

// build returns the reply to test (regions attached) and the response as
// kmsg would encode it with the records inline.
func (sh fetchShape) build(rs *regionSource, version int16) (*fetchReply, *kmsg.FetchResponse) {
	f := &fetchReply{}
	want := kmsg.NewPtrFetchResponse()
	for _, r := range []*kmsg.FetchResponse{&f.resp, want} {
		r.Default()
		r.Version = version
		r.ErrorCode = sh.errorCode
		r.SessionID = sh.sessionID
		r.ThrottleMillis = 0
		if sh.brokers && version >= 16 {
			rack := "rack-a"
			r.Brokers = []kmsg.FetchResponseBroker{{NodeID: 2, Host: "h2", Port: 9093, Rack: &rack}}
		}
		r.Topics = make([]kmsg.FetchResponseTopic, len(sh.topics))
		for ti, parts := range sh.topics {
			st := &r.Topics[ti]
			st.Topic = fmt.Sprintf("topic-%d", ti)
			st.TopicID = [16]byte{byte(ti + 1), 0xAB}
			if version >= 13 {
				st.Topic = ""
			}
			st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(parts))
			for pi, ps := range parts {
				sp := &st.Partitions[pi]
				sp.Default()
				sp.Partition = int32(pi * 3)
				sp.ErrorCode = ps.code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = int64(1000+pi), int64(999+pi), int64(ti)
				if ps.code != 0 {
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				}
				if ps.leader && version >= 12 {
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = 2, 5
				}
				if ps.aborted {
					sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				}
				sp.RecordBatches = emptyRecords
				if ps.size > 0 {
					if r == want {
						sp.RecordBatches = rs.bytes[ps.size]
					} else {
						f.records = append(f.records, fetchRecords{part: sp, region: rs.region(ps.size)})
					}
				}
			}
		}
	}
	return f, want
}

// kmsgFrame is the reference encoding: kmsg with the records inline.
func kmsgFrame(resp *kmsg.FetchResponse, corr int32) []byte {
	body := resp.AppendTo(nil)
	hdr := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if resp.Version >= 12 {
		hdr = append(hdr, 0)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)+len(body)))
	return append(append(frame, hdr...), body...)
}

// TestFetchReplyMatchesKmsg checks, for every version and response shape,
// that the spliced frame is byte for byte what kmsg encodes with the
// records inline, through both the zero-copy and the copying path.
func TestFetchReplyMatchesKmsg(t *testing.T) {
	rs := newRegionSource(t, uvarintEdgeSizes...)
	for v := int16(4); v <= kmsg.NewPtrFetchResponse().MaxVersion(); v++ {
		for _, sh := range fetchShapes() {
			t.Run(fmt.Sprintf("v%d/%s", v, sh.name), func(t *testing.T) {
				const corr = 0x01020304
				f, want := sh.build(rs, v)
				defer f.release()
				expected := kmsgFrame(want, corr)

				var buf bytes.Buffer
				n, err := f.writeTo(&buf, corr, v)
				if err != nil {
					t.Fatalf("writeTo: %v", err)
				}
				if n != int64(buf.Len()) {
					t.Errorf("writeTo reported %d bytes, wrote %d", n, buf.Len())
				}
				if !bytes.Equal(buf.Bytes(), expected) {
					t.Fatalf("zero-copy frame differs from kmsg's:\n got %x\nwant %x", head(buf.Bytes()), head(expected))
				}

				copied, err := f.appendFrame(nil, corr, v)
				if err != nil {
					t.Fatalf("appendFrame: %v", err)
				}
				if !bytes.Equal(copied, expected) {
					t.Fatalf("copied frame differs from kmsg's")
				}

				// The frame decodes back to the same response.
				got := kmsg.NewPtrFetchResponse()
				got.Version = v
				hdrLen := 8
				if v >= 12 {
					hdrLen = 9
				}
				if err := got.ReadFrom(buf.Bytes()[hdrLen:]); err != nil {
					t.Fatalf("decode: %v", err)
				}
				for i := range f.records {
					if f.records[i].part.RecordBatches == nil || len(f.records[i].part.RecordBatches) != 0 {
						t.Fatalf("writeTo left RecordBatches modified")
					}
				}
			})
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 256 {
		return b[:256]
	}
	return b
}

// TestFetchReplyOverTCP sends spliced frames over a loopback TCP
// connection, where Region.WriteTo uses sendfile, and checks the bytes
// that arrive.
func TestFetchReplyOverTCP(t *testing.T) {
	rs := newRegionSource(t, uvarintEdgeSizes...)
	client, server := tcpPair(t)
	var shapes []fetchShape
	for _, sh := range fetchShapes() {
		if sh.name == "many" || sh.name == "wide" {
			shapes = append(shapes, sh)
		}
	}
	for _, v := range []int16{4, 11, 12, 13, 16, kmsg.NewPtrFetchResponse().MaxVersion()} {
		for _, sh := range shapes {
			f, want := sh.build(rs, v)
			expected := kmsgFrame(want, 9)
			got := make([]byte, len(expected))
			errc := make(chan error, 1)
			go func() {
				_, err := io.ReadFull(client, got)
				errc <- err
			}()
			if _, err := f.writeTo(server, 9, v); err != nil {
				t.Fatalf("v%d: writeTo: %v", v, err)
			}
			f.release()
			if err := <-errc; err != nil {
				t.Fatalf("v%d: read: %v", v, err)
			}
			if !bytes.Equal(got, expected) {
				t.Fatalf("v%d %s: frame over TCP differs from kmsg's", v, sh.name)
			}
		}
	}
}

func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestFetchReplyRelease checks release is idempotent and that a released
// reply refuses to write.
func TestFetchReplyRelease(t *testing.T) {
	rs := newRegionSource(t, 200)
	f := &fetchReply{}
	f.resp.Default()
	f.resp.Topics = []kmsg.FetchResponseTopic{{Topic: "t", Partitions: []kmsg.FetchResponseTopicPartition{kmsg.NewFetchResponseTopicPartition()}}}
	f.resp.Topics[0].Partitions[0].RecordBatches = emptyRecords
	f.records = []fetchRecords{{part: &f.resp.Topics[0].Partitions[0], region: rs.region(200)}}
	f.release()
	f.release()
	if _, err := f.writeTo(io.Discard, 1, 12); err == nil {
		t.Fatal("writeTo after release succeeded")
	}
}

// TestLocateRecordsRejectsMismatch feeds the lockstep walk encodings that
// do not differ at records fields; it must refuse rather than splice.
func TestLocateRecordsRejectsMismatch(t *testing.T) {
	tests := []struct {
		name          string
		empty, marked []byte
		n             int
		flexible      bool
	}{
		{"identical", []byte{1, 2, 3}, []byte{1, 2, 3}, 1, true},
		{"wrong-flexible-bytes", []byte{5, 1, 9}, []byte{5, 3, 0, 9}, 1, true},
		{"wrong-int32", []byte{0, 0, 0, 0}, []byte{0, 0, 0, 2, 0}, 1, false},
		{"trailing-difference", []byte{1, 7}, []byte{2, 0, 8}, 1, true},
		{"too-few-fields", []byte{1, 1}, []byte{2, 0, 1}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := locateRecords(tt.empty, tt.marked, tt.n, tt.flexible, nil); ok {
				t.Fatal("locateRecords accepted a mismatching pair")
			}
		})
	}
	// And the well-formed cases.
	if sp, ok := locateRecords([]byte{9, 1, 8, 1}, []byte{9, 2, 0, 8, 2, 0}, 2, true, nil); !ok || len(sp) != 2 || sp[0].at != 1 || sp[1].at != 3 {
		t.Fatalf("flexible: got %v, %v", sp, ok)
	}
	if sp, ok := locateRecords([]byte{7, 0, 0, 0, 0, 6}, []byte{7, 0, 0, 0, 1, 0, 6}, 1, false, nil); !ok || len(sp) != 1 || sp[0].at != 1 {
		t.Fatalf("int32: got %v, %v", sp, ok)
	}
}

// BenchmarkFetchWrite writes a fetch response carrying 1 MiB of records
// to a loopback TCP connection: zero-copy (sendfile) against copying the
// records into the encoded response.
func BenchmarkFetchWrite(b *testing.B) {
	const size = 1 << 20
	rs := newRegionSource(b, size)
	client, server := tcpPair(b)
	go io.Copy(io.Discard, client)
	server.SetWriteDeadline(time.Now().Add(10 * time.Minute))

	newReply := func() *fetchReply {
		f := &fetchReply{}
		f.resp.Default()
		f.resp.Version = 16
		f.resp.Topics = []kmsg.FetchResponseTopic{{TopicID: [16]byte{1}, Partitions: []kmsg.FetchResponseTopicPartition{kmsg.NewFetchResponseTopicPartition()}}}
		sp := &f.resp.Topics[0].Partitions[0]
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 10, 10, 0
		sp.RecordBatches = emptyRecords
		f.records = []fetchRecords{{part: sp, region: rs.region(size)}}
		return f
	}
	b.Run("zero-copy", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			f := newReply()
			if _, err := f.writeTo(server, 1, 16); err != nil {
				b.Fatal(err)
			}
			f.release()
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			f := newReply()
			var err error
			if buf, err = f.appendFrame(buf[:0], 1, 16); err != nil {
				b.Fatal(err)
			}
			if _, err := server.Write(buf); err != nil {
				b.Fatal(err)
			}
			f.release()
		}
	})
}
