package partlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestConcurrentReadersDuringAppendRetentionAndSync runs the owner
// (appending, enforcing retention, truncating now and then) against
// readers, a syncer and time queries. Readers check that every region is
// whole, valid batches starting with the one they asked for.
func TestConcurrentReadersDuringAppendRetentionAndSync(t *testing.T) {
	for _, fsName := range []string{"disk", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			fs, dir := vfs.FS(vfs.NewMem()), "/d"
			if fsName == "disk" {
				fs, dir = vfs.Default, t.TempDir()
			}
			s := openTestStore(t, fs, dir)
			defer s.Close()
			l := openTestLog(t, s, testID, LogConfig{SegmentBytes: 8000, RetentionMs: -1, RetentionBytes: 40000})

			var stop atomic.Bool
			// truncations counts Truncate calls; a read that overlaps one
			// may fail (documented), one that does not must succeed.
			var truncations atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			fail := func(err error) {
				select {
				case errs <- err:
				default:
				}
				stop.Store(true)
			}
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					var buf []byte
					for i := 0; i < 100_000 && !stop.Load(); i++ {
						gen := truncations.Load()
						start, end := l.StartOffset(), l.EndOffset()
						if end <= start {
							continue
						}
						off := start + rng.Int64N(end-start)
						r, err := l.Read(off, 1+rng.IntN(20000), end)
						if errors.Is(err, ErrOffsetOutOfRange) {
							continue // retention or truncation passed us by
						}
						if err == nil {
							buf, err = r.AppendTo(buf[:0])
							r.Release()
						}
						if err != nil {
							if truncations.Load() != gen || gen%2 == 1 {
								continue
							}
							fail(err)
							return
						}
						last, ok := lastOffsetIn(buf)
						if truncations.Load() != gen || gen%2 == 1 {
							continue // the bytes may have been cut under us
						}
						if !ok || last < off || last >= end {
							fail(fmt.Errorf("read(%d) with [%d, %d): region of %d bytes is not whole batches holding it (last %d, parses %v)",
								off, start, end, len(buf), last, ok))
							return
						}
						if i%50 == 0 {
							if _, _, _, err := l.OffsetForTimestamp(rng.Int64N(2000)); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
								fail(err)
								return
							}
							l.MaxTimestamp()
							// The epoch history is published copy-on-write
							// while the owner appends, truncates and moves
							// the start; whatever is seen is well formed.
							h := l.EpochEntries()
							for j := 1; j < len(h); j++ {
								if h[j].Epoch <= h[j-1].Epoch || h[j].StartOffset <= h[j-1].StartOffset {
									fail(fmt.Errorf("epoch history %v not ascending", h))
									return
								}
							}
							if e, off := l.EndOffsetForEpoch(int32(rng.IntN(30))); (e == -1) != (off == -1) || off < -1 {
								fail(fmt.Errorf("EndOffsetForEpoch = (%d, %d)", e, off))
								return
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() { // syncer
				defer wg.Done()
				for !stop.Load() {
					if _, err := l.Sync(); err != nil {
						fail(err)
						return
					}
					time.Sleep(200 * time.Microsecond) // group commit interval
				}
			}()

			var h history
			for i := range 600 {
				h.epoch = int32(i / 25) // a leader change every 25 appends
				h.appendN(t, l, 1, 1+i%10, 50+i%300, int64(i), func(o int64) int64 { return o })
				if i%20 == 0 {
					if _, err := l.EnforceRetention(int64(i)); err != nil {
						t.Fatal(err)
					}
				}
				if i%97 == 0 && l.EndOffset()-l.StartOffset() > 5 {
					truncations.Add(1) // odd: in progress
					to := l.EndOffset() - 3
					if err := l.Truncate(to); err != nil {
						t.Fatal(err)
					}
					h.truncate(to)
					truncations.Add(1)
				}
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			checkEpochs(t, l, h.batches)
		})
	}
}
