package partlog

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/troupe-io/troupe/batch"
)

// BenchmarkAppend appends batches of 100 records of 100 bytes without
// syncing: the per-batch cost on top of the write syscall.
func BenchmarkAppend(b *testing.B) {
	for _, fsName := range []string{"disk", "mem"} {
		b.Run(fsName, func(b *testing.B) {
			fs, dir := vfs.FS(vfs.NewMem()), "/d"
			if fsName == "disk" {
				fs, dir = vfs.Default, b.TempDir()
			}
			s := openTestStore(b, fs, dir)
			defer s.Close()
			l := openTestLog(b, s, testID, infiniteConfig(256<<20))
			recs := make([]batch.Record, 100)
			for i := range recs {
				recs[i] = batch.Record{Value: make([]byte, 100), TimestampDelta: int64(i)}
			}
			data, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: 1}, recs)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Rewrite the base offset in place, as the leader does.
				base := l.EndOffset()
				for j := range 8 {
					data[j] = byte(uint64(base) >> (56 - 8*j))
				}
				if err := l.Append(data, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRead reads 1 MiB regions through the copy path and through
// index lookups only (Read + Release, no data movement).
func BenchmarkRead(b *testing.B) {
	s := openTestStore(b, vfs.Default, b.TempDir())
	defer s.Close()
	l := openTestLog(b, s, testID, infiniteConfig(64<<20))
	var h history
	for l.Size() < 32<<20 {
		h.appendN(b, l, 1, 100, 100, 0, constTs(1))
	}
	end := l.EndOffset()
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		var n int64
		for i := 0; i < b.N; i++ {
			off := int64(i*9973) % end
			r, err := l.Read(off, 1<<20, end)
			if err != nil {
				b.Fatal(err)
			}
			m, err := r.WriteTo(io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			n += m
			r.Release()
		}
		b.SetBytes(n / int64(b.N))
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r, err := l.Read(int64(i*9973)%end, 16<<10, end)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
}

// BenchmarkAppendSync is the produce path with fsync-before-ack: one 1 KiB
// batch appended, then Sync, on the real disk. Its cost is dominated by
// fdatasync, which preallocation keeps from committing a size change on
// every call; prealloc=off measures the same log with it disabled.
func BenchmarkAppendSync(b *testing.B) {
	for _, prealloc := range []bool{true, false} {
		name := "prealloc=on"
		if !prealloc {
			name = "prealloc=off"
		}
		b.Run(name, func(b *testing.B) {
			s := openTestStore(b, vfs.Default, b.TempDir())
			defer s.Close()
			l := openTestLog(b, s, testID, infiniteConfig(1<<30))
			l.noPrealloc = !prealloc
			recs := []batch.Record{{Value: make([]byte, 1024-100)}}
			data, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: 1}, recs)
			if err != nil {
				b.Fatal(err)
			}
			// Tail latency is the point, so report percentiles too.
			lat := make([]time.Duration, b.N)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				base := l.EndOffset()
				for j := range 8 {
					data[j] = byte(uint64(base) >> (56 - 8*j))
				}
				if err := l.Append(data, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := l.Sync(); err != nil {
					b.Fatal(err)
				}
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)*999/1000].Microseconds()), "p99.9-µs")
		})
	}
}
