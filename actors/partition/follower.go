package partition

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/batch"
)

// This file is the follower's side of replication: it appends what the
// leader's log holds, exactly as fetched, and cuts its own tail when the
// host's fetcher finds it diverged.

// FollowerAppend refusals (FollowerAppendResult.Err wraps one of them).
var (
	// ErrNotFollower: this core leads; drop the response.
	ErrNotFollower = errors.New("partition: not a follower")
	// ErrStaleLeaderEpoch: the fetch was sent in another leader epoch;
	// drop the response and fetch again.
	ErrStaleLeaderEpoch = errors.New("partition: fetch response from another leader epoch")
	// ErrStaleFetch: the batches start below the log end, so they answer
	// an older fetch (a retry, a duplicate); drop them and fetch from
	// FetchOffset.
	ErrStaleFetch = errors.New("partition: fetched batches start below the log end")
	// ErrNotContiguous: the batches skip past the log end. The host
	// treats it as divergence: find the truncation point with
	// OffsetForLeaderEpoch, truncate, and fetch again.
	ErrNotContiguous = errors.New("partition: fetched batches do not continue the log")
	// ErrCorruptFetch: a batch failed its framing or CRC check; fetch
	// again.
	ErrCorruptFetch = errors.New("partition: corrupt batch in fetch response")
	// ErrOffline: storage failed; the partition takes no more writes.
	ErrOffline = errors.New("partition: offline after a storage error")
)

func (c *Core) followerAppend(m FollowerAppend) {
	err := c.takeFetched(m)
	c.ready.FollowerResults = append(c.ready.FollowerResults, FollowerAppendResult{
		Token: m.Token, Err: err, LogEnd: c.logEnd, FetchOffset: c.fetchOffset(),
	})
}

// takeFetched appends what a fetch returned and follows the leader's high
// watermark and log start, or says why not.
func (c *Core) takeFetched(m FollowerAppend) error {
	switch {
	case c.role != roleFollower:
		return fmt.Errorf("append fetched batches at epoch %d: %w", m.LeaderEpoch, ErrNotFollower)
	case m.LeaderEpoch != c.leaderEpoch:
		return fmt.Errorf("fetched in epoch %d, follower is in epoch %d: %w", m.LeaderEpoch, c.leaderEpoch, ErrStaleLeaderEpoch)
	case c.failed:
		return ErrOffline
	case m.FetchOffset != c.logEnd:
		return fmt.Errorf("fetched from %d, log end is %d: %w", m.FetchOffset, c.logEnd, ErrStaleFetch)
	}
	n, next, err := c.checkFetched(m.Records)
	if err != nil {
		return err
	}
	if n > 0 {
		recs := m.Records[:n:n]
		c.ready.Appends = append(c.ready.Appends, Append{
			Records: recs, BaseOffset: c.logEnd, LastOffset: next - 1, NowMs: m.NowMs, LogAppendTime: -1,
		})
		numRecords := c.rememberFetchedProducers(recs, m.NowMs)
		c.logEnd = next
		c.wrote(numRecords, m.NowMs)
	}
	c.leaderHW = max(c.leaderHW, m.HighWatermark)
	c.settle()
	if m.LogStartOffset > c.logStart {
		// Follow the leader's DeleteRecords and retention, never past
		// what is committed here.
		if start := min(m.LogStartOffset, c.hw); start > c.logStart {
			c.logStart = start
			c.ready.MoveLogStart = start
		}
	}
	return nil
}

// checkFetched finds the part of records to append: whole batches
// continuing the log exactly from its end, up to a batch cut short at the
// end (a fetch's size limit), which is ignored. It returns the length of
// that prefix and the log end after it, or an error.
//
// The first batch must start at the log end, never below it: a fetch is
// sent from FetchOffset only when that is the log end, so the leader's
// KIP-320 check has vouched for the whole log. Skipping batches "already
// here" would trust a tail the check never saw — written under an older
// leadership, it may differ from the leader's.
func (c *Core) checkFetched(records []byte) (n int, next int64, err error) {
	next = c.logEnd
	for n < len(records) {
		off := n
		rest := records[off:]
		if len(rest) < batch.HeaderLen {
			break // cut short
		}
		h, err := batch.ParseHeader(rest)
		if err != nil {
			return 0, 0, fmt.Errorf("batch at byte %d: %w: %w", off, ErrCorruptFetch, err)
		}
		size := h.Size()
		if size > len(rest) {
			break // cut short
		}
		switch {
		case h.LastOffsetDelta < 0:
			return 0, 0, fmt.Errorf("batch at byte %d: negative last offset delta: %w", off, ErrCorruptFetch)
		case off == 0 && h.BaseOffset < next:
			return 0, 0, fmt.Errorf("first batch has base offset %d, log end is %d: %w", h.BaseOffset, next, ErrStaleFetch)
		case h.BaseOffset != next:
			return 0, 0, fmt.Errorf("batch at byte %d has base offset %d, log end is %d: %w", off, h.BaseOffset, next, ErrNotContiguous)
		case !batch.VerifyCRC(rest[:size]):
			return 0, 0, fmt.Errorf("batch at offset %d: crc mismatch: %w", h.BaseOffset, ErrCorruptFetch)
		}
		next = h.LastOffset() + 1
		n += size
	}
	return n, next, nil
}

// rememberFetchedProducers updates the producer table from the headers of
// fetched batches, as recovery does from the log, so that a follower that
// becomes leader deduplicates retries of batches the old leader wrote. It
// returns the number of records.
func (c *Core) rememberFetchedProducers(records []byte, nowMs int64) int64 {
	var n int64
	for off := 0; off < len(records); {
		h, err := batch.ParseHeader(records[off:])
		if err != nil {
			break // checked by checkFetched
		}
		off += h.Size()
		n += int64(h.NumRecords)
		if h.ProducerID < 0 || h.BaseSequence < 0 {
			continue
		}
		st := c.producers[h.ProducerID]
		switch {
		case st == nil || h.ProducerEpoch > st.epoch:
			st = &producerState{epoch: h.ProducerEpoch}
			c.producers[h.ProducerID] = st
		case h.ProducerEpoch < st.epoch:
			continue
		}
		st.remember(seqBatch{
			firstSeq: h.BaseSequence, lastSeq: addSeq(h.BaseSequence, h.LastOffsetDelta),
			firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
		})
		st.lastMs = max(st.lastMs, nowMs)
	}
	return n
}

// truncateTo forgets the log from offset on: storage has cut it there,
// durably. Producer state keeps what lies below (see
// forgetProducerBatchesFrom); the host need not rebuild it.
func (c *Core) truncateTo(offset int64) {
	if offset >= c.logEnd {
		return
	}
	if offset < c.logStart {
		c.truncateFully(offset)
		return
	}
	c.cutTail(offset)
	c.forgetProducerBatchesFrom(offset, true)
}

// truncateFully forgets the whole log: storage now starts and ends at
// offset.
func (c *Core) truncateFully(offset int64) {
	if offset < 0 {
		return
	}
	c.cutTail(min(offset, c.logEnd))
	c.logStart, c.logEnd, c.durableEnd, c.hw, c.leaderHW = offset, offset, offset, offset, offset
	clear(c.producers)
	c.snapshotEnd = offset
	c.fetchOffsetSent = c.fetchOffset()
}

// cutTail lowers every offset past the cut to it; an fsync in flight is
// capped. Only followers truncate (a leader's log only grows), but should
// a host cut a leader's log anyway, what waits past the cut fails and the
// epoch's start comes down with it, so that followers can still rejoin.
func (c *Core) cutTail(offset int64) {
	if c.syncInFlight {
		if c.syncCap < 0 || offset < c.syncCap {
			c.syncCap = offset
		}
	}
	c.failPendingFrom(offset, kerr.NotLeaderForPartition.Code, "the records were truncated")
	c.logEnd = offset
	c.durableEnd = min(c.durableEnd, offset)
	if c.durableEnd >= c.logEnd {
		c.unflushed = 0 // the cut took everything unflushed
	}
	c.hw, c.leaderHW = min(c.hw, offset), min(c.leaderHW, offset)
	c.recheckPending()
	c.snapshotEnd = min(c.snapshotEnd, offset)
	c.epochStart = min(c.epochStart, offset)
	c.fetchOffsetSent = c.fetchOffset()
}
