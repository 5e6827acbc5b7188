package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/perf"
)

const (
	// defaultMaxBuffered bounds records in flight; reading stdin pauses
	// while this many wait for acknowledgement.
	defaultMaxBuffered = 10000
	// maxBufferedBytes bounds the value bytes in flight, so a stream of
	// large lines cannot exhaust memory before the broker catches up.
	maxBufferedBytes = 64 << 20
	// deliveryTimeouts is how many request timeouts one record may spend
	// being retried before it is failed, so a broker that dies mid-stream
	// ends the command instead of stalling it.
	deliveryTimeouts = 3
)

type produceFlags struct {
	topic        string
	keySeparator string
	headers      []string
	acks         string
	compression  string
	partition    int32
	linger       time.Duration
	batchSize    int32
	maxLineBytes int
	verbose      bool
}

func newProduceCmd(s *streams) *cobra.Command {
	var (
		cf clientFlags
		pf produceFlags
	)
	c := &cobra.Command{
		Use:   "produce --topic T",
		Short: "Produce each line of stdin as one record (like kafka-console-producer.sh)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if pf.topic == "" {
				return fmt.Errorf("produce: %w", errNeedTopic)
			}
			if err := produceLines(c.Context(), s, &cf, &pf, c.Flags().Changed("key-separator")); err != nil {
				return fmt.Errorf("produce to topic %q: %w", pf.topic, err)
			}
			return nil
		},
	}
	cf.register(c.Flags())
	fs := c.Flags()
	fs.StringVar(&pf.topic, "topic", "", "topic to produce to")
	fs.StringVar(&pf.keySeparator, "key-separator", "\t",
		`split each line at the first separator into key and value; keys are parsed only when this flag is given ("\t" is a tab)`)
	fs.StringArrayVar(&pf.headers, "header", nil, "header key=value added to every record (repeatable)")
	fs.StringVar(&pf.acks, "acks", "-1", "acknowledgements to wait for: -1 (all in-sync replicas), 1 (leader) or 0 (none)")
	fs.StringVar(&pf.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Int32Var(&pf.partition, "partition", -1, "partition to produce to (-1: the client's partitioner, by key hash when keyed)")
	fs.DurationVar(&pf.linger, "linger", 5*time.Millisecond, "how long to wait for more records to fill a batch")
	fs.Int32Var(&pf.batchSize, "batch-size", 0, "maximum bytes in one record batch (0: the client default, about 1 MB)")
	fs.IntVar(&pf.maxLineBytes, "max-line-bytes", 1<<20, "longest input line accepted")
	fs.BoolVar(&pf.verbose, "verbose", false, "print a summary on stderr when done")
	return c
}

func produceLines(ctx context.Context, s *streams, cf *clientFlags, pf *produceFlags, keyed bool) error {
	acks, err := parseAcks(pf.acks)
	if err != nil {
		return err
	}
	codec, err := parseCompression(pf.compression)
	if err != nil {
		return err
	}
	var sep []byte
	if keyed {
		str, err := parseSeparator("key-separator", pf.keySeparator)
		if err != nil {
			return err
		}
		sep = []byte(str)
	}
	// One header slice serves every record: kgo only reads it.
	headers := make([]kgo.RecordHeader, 0, len(pf.headers))
	for _, kv := range pf.headers {
		k, v, err := parseKeyValue("header", kv)
		if err != nil {
			return err
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if pf.maxLineBytes <= 0 {
		return fmt.Errorf("--max-line-bytes must be positive, got %d", pf.maxLineBytes)
	}

	opts := []kgo.Opt{
		kgo.RequiredAcks(kgoAcks(acks)),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(pf.linger),
		kgo.MaxBufferedRecords(defaultMaxBuffered),
		kgo.MaxBufferedBytes(max(maxBufferedBytes, 2*pf.maxLineBytes)),
		kgo.RecordDeliveryTimeout(deliveryTimeouts * cf.timeout),
	}
	if acks != perf.AcksAll {
		// Idempotence needs acks from all in-sync replicas.
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if pf.batchSize > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(pf.batchSize))
	}
	if pf.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := cf.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	// Fail now, with a plain message, rather than after the client has
	// retried an unknown topic or partition.
	lookupCtx, cancel := cf.deadline(ctx)
	detail, err := lookupTopic(lookupCtx, cf.admin(cl), pf.topic)
	cancel()
	if err != nil {
		return err
	}
	if pf.partition >= 0 && int(pf.partition) >= len(detail.Partitions) {
		return fmt.Errorf("partition %d does not exist: the topic has %d partitions", pf.partition, len(detail.Partitions))
	}

	p := lineProducer{
		cl:        cl,
		topic:     pf.topic,
		partition: pf.partition,
		sep:       sep,
		headers:   headers,
		pool:      newRecordPool(defaultMaxBuffered),
	}
	start := time.Now()
	err = p.run(ctx, s, pf.maxLineBytes)
	if err != nil {
		return err
	}
	if pf.verbose {
		fmt.Fprintf(s.err, "Produced %d records (%d bytes) to topic %s in %.3fs.\n",
			p.acked.Load(), p.bytes.Load(), pf.topic, time.Since(start).Seconds())
	}
	return nil
}

// lineProducer turns input lines into records and sends them without
// waiting for each acknowledgement; a promise accounts for the outcome.
type lineProducer struct {
	cl        *kgo.Client
	topic     string
	partition int32
	sep       []byte // nil: lines are values only
	headers   []kgo.RecordHeader
	pool      *recordPool
	arena     byteArena

	sent  int64
	acked atomic.Int64
	bytes atomic.Int64

	failed   atomic.Bool
	errOnce  sync.Once
	firstErr error // set once, before failed
}

func (p *lineProducer) run(ctx context.Context, s *streams, maxLineBytes int) error {
	sc := bufio.NewScanner(s.in)
	// Room for the longest line plus its "\r\n".
	sc.Buffer(make([]byte, 0, min(64<<10, maxLineBytes+2)), maxLineBytes+2)
	onAck := p.onAck // bind once: a method value allocates

	var readErr error
	for line := int64(1); !p.failed.Load() && sc.Scan(); line++ {
		b := sc.Bytes()
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		var key []byte
		if p.sep != nil {
			k, v, ok := bytes.Cut(b, p.sep)
			if !ok {
				readErr = fmt.Errorf("line %d: no key separator %q in it", line, p.sep)
				break
			}
			key, b = p.arena.copy(k), v
		}
		r, err := p.pool.get(ctx)
		if err != nil {
			readErr = err
			break
		}
		r.Topic = p.topic
		r.Key = key
		r.Value = p.arena.copy(b)
		r.Headers = p.headers
		r.Partition = p.partition
		p.cl.Produce(ctx, r, onAck)
		p.sent++
	}
	if readErr == nil {
		if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
			readErr = fmt.Errorf("line %d is longer than --max-line-bytes (%d)", p.sent+1, maxLineBytes)
		} else if err != nil {
			readErr = fmt.Errorf("read stdin: %w", err)
		}
	}

	// Every record is accounted for only once all are back in the pool.
	_ = p.cl.Flush(ctx)
	p.pool.awaitAll(ctx, p.cl)

	switch {
	case readErr != nil:
		return readErr
	case p.failed.Load():
		return fmt.Errorf("%d of %d records not acknowledged: %w", p.sent-p.acked.Load(), p.sent, p.firstErr)
	case ctx.Err() != nil:
		return fmt.Errorf("%d of %d records acknowledged: %w", p.acked.Load(), p.sent, ctx.Err())
	}
	return nil
}

// onAck is every record's promise. It may run on another goroutine.
func (p *lineProducer) onAck(r *kgo.Record, err error) {
	if err != nil {
		p.errOnce.Do(func() {
			p.firstErr = err
			p.failed.Store(true)
		})
	} else {
		p.acked.Add(1)
		p.bytes.Add(int64(len(r.Key) + len(r.Value)))
	}
	p.pool.put(r)
}

// recordPool recycles records so producing does not allocate one per line.
// Records are made lazily, in chunks, up to limit; after that get waits for
// an acknowledged record to come back, which is what bounds the records in
// flight.
type recordPool struct {
	// free has capacity limit, so put never blocks.
	free  chan *kgo.Record
	limit int
	made  int          // only touched by get
	chunk []kgo.Record // unused part of the latest chunk; only touched by get
}

const recordChunk = 256

func newRecordPool(limit int) *recordPool {
	return &recordPool{free: make(chan *kgo.Record, limit), limit: limit}
}

func (p *recordPool) get(ctx context.Context) (*kgo.Record, error) {
	select {
	case r := <-p.free:
		return r, nil
	default:
	}
	if p.made < p.limit {
		if len(p.chunk) == 0 {
			p.chunk = make([]kgo.Record, min(recordChunk, p.limit-p.made))
		}
		r := &p.chunk[0]
		p.chunk = p.chunk[1:]
		p.made++
		return r, nil
	}
	select {
	case r := <-p.free:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put clears r, dropping its references to key and value memory, and makes
// it available again.
func (p *recordPool) put(r *kgo.Record) {
	*r = kgo.Record{}
	p.free <- r
}

// awaitAll waits until every record made is back. If ctx ends first,
// closing the client fails whatever is still buffered, which returns it.
func (p *recordPool) awaitAll(ctx context.Context, cl *kgo.Client) {
	done := ctx.Done()
	for n := p.made; n > 0; {
		select {
		case <-p.free:
			n--
		case <-done:
			cl.Close()
			done = nil
		}
	}
}

// byteArena copies small keys and values into shared chunks so a line costs
// no allocation of its own. A chunk is never reused: the garbage collector
// frees it once every record pointing into it has been acknowledged and
// returned to the pool.
type byteArena struct {
	buf []byte
}

const (
	arenaChunk = 64 << 10
	arenaLimit = arenaChunk / 4 // larger slices get their own allocation
)

// copy returns a copy of b that stays valid after the caller reuses b. An
// empty b yields an empty, non-nil slice: an empty line is an empty value,
// not a null one.
func (a *byteArena) copy(b []byte) []byte {
	if len(b) > arenaLimit {
		return append([]byte(nil), b...)
	}
	if len(b) > cap(a.buf)-len(a.buf) || a.buf == nil {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	// The full slice expression stops an append on the copy from running
	// into the next record's bytes.
	return a.buf[start:len(a.buf):len(a.buf)]
}
