package raftlog

import (
	pb "go.etcd.io/raft/v3/raftpb"
)

// Default bounds of the entry cache. Raft reads back what it just appended
// twice: to send it to followers and, once committed, to apply it. A
// follower that lags by more than this is caught up from Pebble.
const (
	defaultCacheEntries = 1024    // a power of two
	defaultCacheBytes   = 4 << 20 // encoded entry bytes
)

// entryCache holds the most recent entries of the log: a contiguous run
// [first, first+n) which, when non-empty, always ends at the storage's last
// index (the Storage keeps that true on every append, truncation, snapshot
// and compaction). Entries sit in a ring at slot index mod capacity, so
// appending, truncating and evicting never copy or allocate.
//
// The cached *pb.Entry values are the ones SaveReady was given. Raft's
// contract makes entries immutable once handed to storage, so sharing them
// with later Entries callers is safe.
type entryCache struct {
	ents     []*pb.Entry // ring; nil when the cache is disabled
	sizes    []uint32    // encoded size of ents[slot], for maxSize and the byte bound
	first    uint64      // index of the oldest cached entry, if n > 0
	n        int
	bytes    int
	maxBytes int
}

// newEntryCache returns a cache of at most capacity entries (rounded up to
// a power of two; 0 disables it) and maxBytes encoded bytes.
func newEntryCache(capacity, maxBytes int) entryCache {
	if capacity <= 0 || maxBytes <= 0 {
		return entryCache{}
	}
	c := 1
	for c < capacity {
		c <<= 1
	}
	return entryCache{ents: make([]*pb.Entry, c), sizes: make([]uint32, c), maxBytes: maxBytes}
}

func (c *entryCache) slot(i uint64) int { return int(i & uint64(len(c.ents)-1)) }

// covers reports whether entries [lo, last] are all cached.
func (c *entryCache) covers(lo uint64) bool {
	return c.n > 0 && lo >= c.first
}

// get returns the cached entry at index i and its encoded size; the caller
// checked covers.
func (c *entryCache) get(i uint64) (*pb.Entry, int) {
	s := c.slot(i)
	return c.ents[s], int(c.sizes[s])
}

// reset empties the cache, dropping the references it held.
func (c *entryCache) reset() {
	for c.n > 0 {
		c.dropOldest()
	}
}

func (c *entryCache) dropOldest() {
	s := c.slot(c.first)
	c.bytes -= int(c.sizes[s])
	c.ents[s], c.sizes[s] = nil, 0
	c.first++
	c.n--
}

func (c *entryCache) dropNewest() {
	s := c.slot(c.first + uint64(c.n) - 1)
	c.bytes -= int(c.sizes[s])
	c.ents[s], c.sizes[s] = nil, 0
	c.n--
}

// truncateFrom drops cached entries at index >= i.
func (c *entryCache) truncateFrom(i uint64) {
	for c.n > 0 && c.first+uint64(c.n)-1 >= i {
		c.dropNewest()
	}
}

// dropBefore drops cached entries at index < i.
func (c *entryCache) dropBefore(i uint64) {
	for c.n > 0 && c.first < i {
		c.dropOldest()
	}
}

// append caches e, the new last entry of the log. If it does not follow
// the cached run (the cache was empty or emptied), the run restarts at e.
func (c *entryCache) append(e *pb.Entry, size int) {
	if c.ents == nil {
		return
	}
	if size > c.maxBytes {
		// Cannot be cached without breaking contiguity with what follows.
		c.reset()
		return
	}
	i := e.GetIndex()
	if c.n > 0 && c.first+uint64(c.n) != i {
		c.reset()
	}
	if c.n == 0 {
		c.first = i
	}
	for c.n == len(c.ents) || (c.n > 0 && c.bytes+size > c.maxBytes) {
		c.dropOldest()
	}
	if c.n == 0 {
		c.first = i
	}
	s := c.slot(i)
	c.ents[s], c.sizes[s] = e, uint32(size)
	c.n++
	c.bytes += size
}
