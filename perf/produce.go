package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Acks is how many replicas must have a record before the broker answers.
// The zero value waits for all in-sync replicas, the safe default.
type Acks int8

const (
	AcksAll    Acks = iota // acks=-1: every in-sync replica
	AcksLeader             // acks=1: the leader only
	AcksNone               // acks=0: no answer at all
)

// kgo returns the client option value for a.
func (a Acks) kgo() kgo.Acks {
	switch a {
	case AcksLeader:
		return kgo.LeaderAck()
	case AcksNone:
		return kgo.NoAck()
	default:
		return kgo.AllISRAcks()
	}
}

func (a Acks) String() string {
	switch a {
	case AcksLeader:
		return "1"
	case AcksNone:
		return "0"
	default:
		return "-1"
	}
}

// Defaults applied to zero-valued options.
const (
	DefaultProgressInterval   = 5 * time.Second
	DefaultMaxBufferedRecords = 10000
	DefaultConsumeTimeout     = 10 * time.Second
)

// ProduceOptions configures one producer run. Zero values mean the defaults
// documented on each field.
type ProduceOptions struct {
	// Brokers seeds the client. It may be empty when ClientOpts carries
	// kgo.SeedBrokers.
	Brokers []string
	Topic   string

	NumRecords int64 // records to send; must be > 0
	RecordSize int   // value bytes per record; must be > 0

	// Throughput caps the send rate in records per second; <= 0 is
	// unlimited.
	Throughput float64

	Acks Acks
	// DisableIdempotence turns off idempotent writes, which Kafka clients
	// enable by default. It must be set for AcksLeader and AcksNone.
	DisableIdempotence bool
	Compression        kgo.CompressionCodec // zero value: none
	BatchMaxBytes      int32                // 0: the client default
	Linger             time.Duration        // passed as is; 0 sends at once

	// MaxBufferedRecords bounds the records in flight (default
	// DefaultMaxBufferedRecords). Each one has a preallocated slot.
	MaxBufferedRecords int

	// Partitions, when > 0, creates the topic with that many partitions
	// (and the broker's default replication factor) if it is missing.
	Partitions int32

	// Progress, when non-nil, receives a kafka-producer-perf-test style line
	// every ProgressInterval (default DefaultProgressInterval).
	Progress         io.Writer
	ProgressInterval time.Duration

	// ClientOpts are applied after the options above, so they win.
	ClientOpts []kgo.Opt
}

// ProduceResult summarises a producer run. Latency is measured per record
// from the Produce call to its acknowledgement.
type ProduceResult struct {
	Records       int64   `json:"records"` // acknowledged records
	Bytes         int64   `json:"bytes"`   // acknowledged value bytes
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // MB = 2^20 bytes, as Kafka's tools
	AvgMs         float64 `json:"avg_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
}

// Summary formats r as kafka-producer-perf-test's final line.
func (r ProduceResult) Summary() string {
	return fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %.2f ms 50th, %.2f ms 99th, %.2f ms 99.9th.",
		r.Records, r.RecordsPerSec, r.MBPerSec, r.AvgMs, r.MaxMs, r.P50Ms, r.P99Ms, r.P999Ms)
}

const bytesPerMB = 1 << 20

func (o *ProduceOptions) validate() error {
	switch {
	case o.Topic == "":
		return errors.New("a topic is required")
	case o.NumRecords <= 0:
		return fmt.Errorf("number of records must be positive, got %d", o.NumRecords)
	case o.RecordSize <= 0:
		return fmt.Errorf("record size must be positive, got %d", o.RecordSize)
	case o.MaxBufferedRecords < 0:
		return fmt.Errorf("max buffered records must not be negative, got %d", o.MaxBufferedRecords)
	case o.Acks != AcksAll && !o.DisableIdempotence:
		return fmt.Errorf("idempotent producing requires acks=-1, got acks=%s", o.Acks)
	}
	return nil
}

// slot is one record in flight together with the time it was handed to the
// client. The record's Context points back at its slot, which is how the
// acknowledgement finds the start time without a map or an allocation;
// slot embeds the run's context so kgo still sees cancellation through it.
type slot struct {
	context.Context
	startNs int64 // nanoseconds since producer.base
	rec     kgo.Record
}

// window is the statistics of one progress interval.
type window struct {
	records int64
	sumUs   int64
	maxUs   int64
}

type producer struct {
	opts ProduceOptions
	base time.Time // monotonic origin for slot.startNs

	// free holds idle slots. Its capacity equals the number of slots, so
	// returning a slot never blocks; taking one blocks while all are in
	// flight, which is what bounds memory.
	free chan *slot

	hist  latencyHistogram // only touched by onAck (kgo runs promises serially)
	acked int64            // only touched by onAck

	failed   atomic.Bool
	firstErr error // written once, before failed is set

	mu  sync.Mutex // guards win, which the progress reporter reads
	win window
}

// RunProduce sends opts.NumRecords records of opts.RecordSize bytes and
// reports throughput and latency. It stops at the first failed record and
// returns what was acknowledged so far together with the error.
func RunProduce(ctx context.Context, opts ProduceOptions) (ProduceResult, error) {
	if err := opts.validate(); err != nil {
		return ProduceResult{}, err
	}
	if opts.MaxBufferedRecords == 0 {
		opts.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	nslots := int(min(int64(opts.MaxBufferedRecords), opts.NumRecords))

	cl, err := kgo.NewClient(producerClientOpts(&opts, nslots)...)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("configure client: %w", err)
	}
	defer cl.Close()

	if opts.Partitions > 0 {
		if err := ensureTopic(ctx, cl, opts.Topic, opts.Partitions); err != nil {
			return ProduceResult{}, err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p := &producer{opts: opts, free: make(chan *slot, nslots)}
	payload := makePayload(opts.RecordSize)
	slots := make([]slot, nslots)
	for i := range slots {
		s := &slots[i]
		s.Context = ctx
		s.rec = kgo.Record{Topic: opts.Topic, Value: payload, Context: s}
		p.free <- s
	}
	return p.run(ctx, cl, slots)
}

func producerClientOpts(o *ProduceOptions, nslots int) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RequiredAcks(o.Acks.kgo()),
		kgo.ProducerLinger(o.Linger),
		kgo.ProducerBatchCompression(o.Compression),
		// kgo never has to block us: our slot pool is the tighter bound.
		kgo.MaxBufferedRecords(nslots + 1),
	}
	if len(o.Brokers) > 0 {
		opts = append(opts, kgo.SeedBrokers(o.Brokers...))
	}
	if o.DisableIdempotence {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.BatchMaxBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(o.BatchMaxBytes))
	}
	return append(opts, o.ClientOpts...)
}

// ensureTopic creates topic with partitions partitions unless it exists.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w (%s)", err, resp.ErrMessage)
		}
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	return nil
}

// makePayload returns the value every record shares: random upper-case
// letters, as kafka-producer-perf-test sends, so compression has something
// realistic to chew on. A fixed seed keeps runs comparable.
func makePayload(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('A' + rng.IntN(26))
	}
	return b
}

func (p *producer) run(ctx context.Context, cl *kgo.Client, slots []slot) (ProduceResult, error) {
	stopProgress := p.startProgress()
	defer stopProgress()

	p.base = time.Now()
	var throttle throttler
	throttle.init(p.opts.Throughput, p.base)
	onAck := p.onAck // bind once: a method value allocates

	var sent int64
	for sent < p.opts.NumRecords && !p.failed.Load() {
		if err := throttle.wait(ctx, sent); err != nil {
			break
		}
		var s *slot
		select {
		case s = <-p.free:
		case <-ctx.Done():
		}
		if s == nil {
			break
		}
		// Reset what kgo filled in on the previous use; the timestamp
		// must be zero so kgo stamps the record afresh.
		s.rec = kgo.Record{Topic: p.opts.Topic, Value: s.rec.Value, Context: s}
		s.startNs = int64(time.Since(p.base))
		cl.Produce(ctx, &s.rec, onAck)
		sent++
	}

	// Cut lingering short, then wait until every slot is back: only then
	// have all acknowledgements been counted.
	_ = cl.Flush(ctx)
	p.awaitSlots(ctx, cl, len(slots))
	elapsed := time.Since(p.base)

	res := p.result(elapsed)
	switch {
	case p.failed.Load():
		return res, fmt.Errorf("%d of %d records acknowledged: %w", res.Records, p.opts.NumRecords, p.firstErr)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%d of %d records acknowledged: %w", res.Records, p.opts.NumRecords, ctx.Err())
	}
	return res, nil
}

// awaitSlots waits for n slots to come back to the free list. If ctx ends
// first, closing the client fails every buffered record, which calls their
// promises and so returns their slots; an idempotent producer would
// otherwise keep retrying records a dead broker never answers.
func (p *producer) awaitSlots(ctx context.Context, cl *kgo.Client, n int) {
	done := ctx.Done()
	for n > 0 {
		select {
		case <-p.free:
			n--
		case <-done:
			cl.Close()
			done = nil // once is enough; kgo tolerates the deferred second Close
		}
	}
}

// onAck is the promise for every record. kgo calls promises one at a time,
// so the histogram and acked need no lock; win does, for the reporter.
func (p *producer) onAck(r *kgo.Record, err error) {
	s := r.Context.(*slot)
	lat := time.Since(p.base) - time.Duration(s.startNs)
	if err != nil {
		if !p.failed.Load() {
			p.firstErr = err
			p.failed.Store(true)
		}
	} else {
		p.hist.record(lat)
		p.acked++
		us := int64(lat / time.Microsecond)
		p.mu.Lock()
		p.win.records++
		p.win.sumUs += us
		p.win.maxUs = max(p.win.maxUs, us)
		p.mu.Unlock()
	}
	// Last: once the slot is free the send loop may reuse it.
	p.free <- s
}

func (p *producer) result(elapsed time.Duration) ProduceResult {
	secs := elapsed.Seconds()
	r := ProduceResult{
		Records: p.acked,
		Bytes:   p.acked * int64(p.opts.RecordSize),
		Seconds: secs,
		AvgMs:   usToMs(p.hist.meanUs()),
		P50Ms:   usToMs(float64(p.hist.quantileUs(0.50))),
		P99Ms:   usToMs(float64(p.hist.quantileUs(0.99))),
		P999Ms:  usToMs(float64(p.hist.quantileUs(0.999))),
		MaxMs:   usToMs(float64(p.hist.maxUs)),
	}
	if secs > 0 {
		r.RecordsPerSec = float64(r.Records) / secs
		r.MBPerSec = float64(r.Bytes) / bytesPerMB / secs
	}
	return r
}

// startProgress prints one line per interval, like kafka-producer-perf-test,
// and returns a function that stops it.
func (p *producer) startProgress() (stop func()) {
	if p.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.opts.ProgressInterval)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p.mu.Lock()
				w := p.win
				p.win = window{}
				p.mu.Unlock()
				secs := now.Sub(last).Seconds()
				last = now
				fmt.Fprintln(p.opts.Progress, formatWindow(w, secs, p.opts.RecordSize))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func formatWindow(w window, secs float64, recordSize int) string {
	var rate, mbps, avg float64
	if secs > 0 {
		rate = float64(w.records) / secs
		mbps = float64(w.records*int64(recordSize)) / bytesPerMB / secs
	}
	if w.records > 0 {
		avg = usToMs(float64(w.sumUs) / float64(w.records))
	}
	return fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.",
		w.records, rate, mbps, avg, usToMs(float64(w.maxUs)))
}

// throttler paces sends to a target rate the way Kafka's
// ThroughputThrottler does: it compares records sent with the records the
// elapsed time allows and sleeps off any lead. Sleeping only once the lead
// reaches minSleep keeps a high rate from paying for a timer per record.
type throttler struct {
	perRecord time.Duration // 0: unlimited
	start     time.Time
}

const minSleep = 2 * time.Millisecond

func (t *throttler) init(recordsPerSec float64, start time.Time) {
	t.start = start
	if recordsPerSec > 0 {
		t.perRecord = time.Duration(float64(time.Second) / recordsPerSec)
	}
}

// wait blocks until sending record number sent (0-based) keeps us at or
// below the target rate.
func (t *throttler) wait(ctx context.Context, sent int64) error {
	if t.perRecord == 0 {
		return nil
	}
	lead := time.Duration(sent)*t.perRecord - time.Since(t.start)
	if lead < minSleep {
		return nil
	}
	timer := time.NewTimer(lead)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
