package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/troupe-io/troupe/perf"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Phase is one measurement the comparison can run on each broker.
type Phase string

const (
	PhaseIdle         Phase = "idle"          // RSS after start, topic creation and IdleWait
	PhaseProduceSmall Phase = "produce-small" // (a) 100 B, acks=1
	PhaseConsume      Phase = "consume"       // (c) read back everything of (a)
	PhaseProduceLarge Phase = "produce-large" // (b) 1 KiB, acks=-1
	PhaseLatency      Phase = "latency"       // (d) acks=-1 at a fixed rate, linger 0
	PhaseStartup      Phase = "startup"       // restarts on the data dir left behind
)

// AllPhases is every phase, in the order they run on each broker. Consume
// must follow produce-small, whose records it reads.
var AllPhases = []Phase{PhaseIdle, PhaseProduceSmall, PhaseConsume, PhaseProduceLarge, PhaseLatency, PhaseStartup}

// ParsePhase checks that s names a known phase.
func ParsePhase(s string) (Phase, error) {
	for _, p := range AllPhases {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown phase %q (want one of %v)", s, AllPhases)
}

// Options configures a comparison. Sizes are the same for every broker,
// which is the point: only the broker differs between rows.
type Options struct {
	Brokers []BrokerKind
	Phases  []Phase
	Bins    Binaries
	WorkDir string // data directories and broker logs go under here

	SmallRecords  int64         // (a): records of SmallSize bytes
	SmallSize     int           // (a): default 100
	LargeRecords  int64         // (b): records of LargeSize bytes
	LargeSize     int           // (b): default 1024
	PhaseCap      time.Duration // wall-clock cap of (a), (b) and (c)
	Linger        time.Duration // producer linger of (a) and (b)
	FetchMaxBytes int32         // (c): 0 is franz-go's default

	LatencyRate     float64       // (d): records per second
	LatencyDuration time.Duration // (d): how long to send at that rate
	LatencySize     int           // (d): value bytes, default 100

	IdleWait    time.Duration // before reading idle RSS
	StartupRuns int           // restarts to time

	// Rounds repeats the whole sequence of brokers (default 1) and keeps
	// each broker's best figure per phase. On a shared machine, load from
	// elsewhere only ever makes a run slower, so the best of a few rounds
	// is the closest to what the broker can do.
	Rounds int

	// ProfileOut, when set, makes troupe-durable serve
	// troupe.metrics.listener and saves a CPU profile of ProfileSeconds
	// taken at the start of (a) to this path.
	ProfileOut     string
	ProfileSeconds int

	Log io.Writer // progress lines; nil for none
}

// Topic names, one per workload so phases never read each other's records.
const (
	topicSmall   = "bench-small"
	topicLarge   = "bench-large"
	topicLatency = "bench-latency"
)

// PhaseResult is one workload on one broker.
type PhaseResult struct {
	Records                     int64
	Bytes                       int64 // value bytes produced or consumed
	Seconds                     float64
	RecordsPerSec               float64
	MBPerSec                    float64       // 2^20 bytes, as Kafka's tools
	BrokerCPU                   time.Duration // user+system time the broker used meanwhile
	Capped                      bool          // stopped by PhaseCap before all records
	P50Ms, P99Ms, P999Ms, MaxMs float64
}

// CPUSecPerGB is broker CPU seconds per 10^9 payload bytes, or 0 without
// bytes.
func (r *PhaseResult) CPUSecPerGB() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return r.BrokerCPU.Seconds() / (float64(r.Bytes) / 1e9)
}

// BrokerResult is every phase on one broker set-up. A nil phase did not
// run (or could not, like consuming from a blackhole).
type BrokerResult struct {
	Kind                       BrokerKind
	Small, Consume, Large, Lat *PhaseResult
	IdleRSS                    int64           // bytes, 0 when not measured
	Startups                   []time.Duration // exec to TCP connect, each restart
	Errors                     []string
	// LoadAvg is the 1-minute load average before and after this broker's
	// turn, so readers can tell a quiet machine from a busy one.
	LoadAvg [2]float64
}

// Report is a whole comparison.
type Report struct {
	Opts     Options
	Started  time.Time
	Duration time.Duration
	Brokers  []BrokerResult
	Profile  string // where the CPU profile went, or why there is none
}

func (o *Options) setDefaults() {
	if len(o.Brokers) == 0 {
		o.Brokers = AllBrokers
	}
	if len(o.Phases) == 0 {
		o.Phases = AllPhases
	}
	if o.SmallSize == 0 {
		o.SmallSize = 100
	}
	if o.LargeSize == 0 {
		o.LargeSize = 1024
	}
	if o.LatencySize == 0 {
		o.LatencySize = 100
	}
	if o.ProfileSeconds == 0 {
		o.ProfileSeconds = 10
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
}

func (o *Options) validate() error {
	switch {
	case o.Bins.Troupe == "" && slices.ContainsFunc(o.Brokers, BrokerKind.isTroupe):
		return errors.New("no troupe binary")
	case o.Bins.Kfake == "" && slices.ContainsFunc(o.Brokers, func(k BrokerKind) bool { return !k.isTroupe() }):
		return errors.New("no kfakebroker binary")
	case o.WorkDir == "":
		return errors.New("no work directory")
	case o.SmallRecords <= 0 || o.LargeRecords <= 0:
		return fmt.Errorf("record counts must be positive, got %d and %d", o.SmallRecords, o.LargeRecords)
	case o.PhaseCap <= 0 || o.LatencyDuration <= 0 || o.LatencyRate <= 0:
		return errors.New("phase cap, latency duration and latency rate must be positive")
	case o.StartupRuns < 0:
		return errors.New("startup runs must not be negative")
	}
	return nil
}

func (o *Options) has(p Phase) bool { return slices.Contains(o.Phases, p) }

// Run measures every broker in turn. A broker that fails to start or a
// phase that fails is recorded in its row, and the comparison moves on, so
// one bad set-up never costs the whole run.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("bench options: %w", err)
	}
	rep := &Report{Opts: opts, Started: time.Now()}
	rep.Brokers = make([]BrokerResult, len(opts.Brokers))
	for round := 1; round <= opts.Rounds; round++ {
		for i, kind := range opts.Brokers {
			if err := ctx.Err(); err != nil {
				rep.Duration = time.Since(rep.Started)
				return rep, err
			}
			fmt.Fprintf(opts.Log, "== %s (round %d of %d)\n", kind, round, opts.Rounds)
			res := BrokerResult{Kind: kind}
			res.LoadAvg[0] = loadAvg1()
			if err := runBroker(ctx, &opts, kind, &res, rep); err != nil {
				res.Errors = append(res.Errors, err.Error())
			}
			res.LoadAvg[1] = loadAvg1()
			for _, e := range res.Errors {
				fmt.Fprintf(opts.Log, "   error: %s\n", e)
			}
			if round == 1 {
				rep.Brokers[i] = res
			} else {
				rep.Brokers[i].merge(&res)
			}
		}
	}
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

// merge folds another round of the same broker into r, keeping the better
// figure of each phase: the higher rate for throughput, the lower p99 for
// latency, the lower idle RSS. Start-up samples and errors accumulate, and
// the load average keeps the highest seen, the pessimistic reading.
func (r *BrokerResult) merge(o *BrokerResult) {
	faster := func(a, b *PhaseResult) *PhaseResult {
		if a == nil || (b != nil && b.RecordsPerSec > a.RecordsPerSec) {
			return b
		}
		return a
	}
	r.Small = faster(r.Small, o.Small)
	r.Large = faster(r.Large, o.Large)
	r.Consume = faster(r.Consume, o.Consume)
	if r.Lat == nil || (o.Lat != nil && o.Lat.P99Ms < r.Lat.P99Ms) {
		r.Lat = o.Lat
	}
	if r.IdleRSS == 0 || (o.IdleRSS > 0 && o.IdleRSS < r.IdleRSS) {
		r.IdleRSS = o.IdleRSS
	}
	r.Startups = append(r.Startups, o.Startups...)
	r.Errors = append(r.Errors, o.Errors...)
	r.LoadAvg[0] = max(r.LoadAvg[0], o.LoadAvg[0])
	r.LoadAvg[1] = max(r.LoadAvg[1], o.LoadAvg[1])
}

// runBroker runs opts.Phases on one fresh broker; phase errors go to
// res.Errors, and the returned error is one that ends this broker's turn.
func runBroker(ctx context.Context, opts *Options, kind BrokerKind, res *BrokerResult, rep *Report) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	dir := filepath.Join(opts.WorkDir, string(kind))
	// Each set-up starts from nothing and leaves nothing: the next one
	// must not pay for this one's page cache and disk usage.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	defer os.RemoveAll(filepath.Join(dir, "data"))
	spec := &brokerSpec{kind: kind, addr: addr, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "broker.log")}
	profiling := opts.ProfileOut != "" && kind == TroupeDurable && opts.has(PhaseProduceSmall)
	if profiling {
		if spec.metricsAddr, err = freeAddr(); err != nil {
			return err
		}
	}

	const startTimeout = 60 * time.Second
	proc, _, err := startBroker(ctx, spec, opts.Bins, startTimeout)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = proc.stop(30 * time.Second)
		}
	}()

	if err := createTopics(ctx, addr); err != nil {
		return err
	}
	if opts.has(PhaseIdle) {
		sleepCtx(ctx, opts.IdleWait)
		if res.IdleRSS, err = processRSS(proc.pid()); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		fmt.Fprintf(opts.Log, "   idle RSS %.1f MiB\n", float64(res.IdleRSS)/(1<<20))
	}

	brokers := []string{addr}
	measure := func(name string, fn func() (PhaseResult, error)) *PhaseResult {
		before, err := processCPU(proc.pid())
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			return nil
		}
		r, err := fn()
		after, cerr := processCPU(proc.pid())
		if cerr != nil {
			res.Errors = append(res.Errors, cerr.Error())
		}
		r.BrokerCPU = after - before
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", name, err))
		}
		fmt.Fprintf(opts.Log, "   %-13s %9d rec %10.0f rec/s %8.2f MB/s  broker cpu %6.2fs (%5.1f s/GB)  p50 %.2f p99 %.2f p99.9 %.2f ms%s\n",
			name, r.Records, r.RecordsPerSec, r.MBPerSec, r.BrokerCPU.Seconds(), r.CPUSecPerGB(), r.P50Ms, r.P99Ms, r.P999Ms, cappedNote(r.Capped))
		return &r
	}

	if opts.has(PhaseProduceSmall) {
		var prof <-chan string
		if profiling {
			prof = startProfile(ctx, spec.metricsAddr, opts.ProfileSeconds, opts.ProfileOut)
		}
		res.Small = measure("produce-small", func() (PhaseResult, error) {
			return produce(ctx, opts.PhaseCap, perf.ProduceOptions{
				Brokers: brokers, Topic: topicSmall,
				NumRecords: opts.SmallRecords, RecordSize: opts.SmallSize,
				Acks: perf.AcksLeader, DisableIdempotence: true, Linger: opts.Linger,
			})
		})
		if prof != nil {
			rep.Profile = <-prof
		}
	}
	if opts.has(PhaseConsume) && kind.storesRecords() && res.Small != nil && res.Small.Records > 0 {
		res.Consume = measure("consume", func() (PhaseResult, error) {
			return consume(ctx, opts.PhaseCap, perf.ConsumeOptions{
				Brokers: brokers, Topic: topicSmall,
				Messages: res.Small.Records, FetchMaxBytes: opts.FetchMaxBytes,
			})
		})
	}
	if opts.has(PhaseProduceLarge) {
		res.Large = measure("produce-large", func() (PhaseResult, error) {
			return produce(ctx, opts.PhaseCap, perf.ProduceOptions{
				Brokers: brokers, Topic: topicLarge,
				NumRecords: opts.LargeRecords, RecordSize: opts.LargeSize,
				Acks: perf.AcksAll, Linger: opts.Linger,
			})
		})
	}
	if opts.has(PhaseLatency) {
		n := int64(opts.LatencyRate * opts.LatencyDuration.Seconds())
		res.Lat = measure("latency", func() (PhaseResult, error) {
			return produce(ctx, opts.LatencyDuration+30*time.Second, perf.ProduceOptions{
				Brokers: brokers, Topic: topicLatency,
				NumRecords: max(n, 1), RecordSize: opts.LatencySize,
				Throughput: opts.LatencyRate, Acks: perf.AcksAll, Linger: 0,
			})
		})
	}

	stopped = true
	if err := proc.stop(60 * time.Second); err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("stop: %v", err))
	}
	if opts.has(PhaseStartup) {
		for i := 0; i < opts.StartupRuns; i++ {
			p, took, err := startBroker(ctx, spec, opts.Bins, startTimeout)
			if err != nil {
				return fmt.Errorf("restart %d: %w", i+1, err)
			}
			res.Startups = append(res.Startups, took)
			if err := p.stop(60 * time.Second); err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("stop after restart %d: %v", i+1, err))
			}
		}
		fmt.Fprintf(opts.Log, "   startup %v\n", res.Startups)
	}
	return nil
}

func cappedNote(capped bool) string {
	if capped {
		return " (time cap)"
	}
	return ""
}

// produce runs one producer workload, stopping it after limit. Hitting the
// limit is not an error: the result then covers what was acknowledged.
func produce(ctx context.Context, limit time.Duration, po perf.ProduceOptions) (PhaseResult, error) {
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r, err := perf.RunProduce(pctx, po)
	out := PhaseResult{
		Records: r.Records, Bytes: r.Bytes, Seconds: r.Seconds,
		RecordsPerSec: r.RecordsPerSec, MBPerSec: r.MBPerSec,
		P50Ms: r.P50Ms, P99Ms: r.P99Ms, P999Ms: r.P999Ms, MaxMs: r.MaxMs,
	}
	if err != nil && capHit(ctx, pctx) {
		out.Capped, err = true, nil
	}
	if err != nil {
		return out, fmt.Errorf("produce to %s: %w", po.Topic, err)
	}
	return out, nil
}

// consume reads co.Messages records, stopping after limit like produce.
func consume(ctx context.Context, limit time.Duration, co perf.ConsumeOptions) (PhaseResult, error) {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r, err := perf.RunConsume(cctx, co)
	out := PhaseResult{
		Records: r.Records, Bytes: r.Bytes, Seconds: r.Seconds,
		RecordsPerSec: r.RecordsPerSec, MBPerSec: r.MBPerSec,
	}
	if err != nil && capHit(ctx, cctx) {
		out.Capped, err = true, nil
	}
	if err != nil {
		return out, fmt.Errorf("consume %s: %w", co.Topic, err)
	}
	return out, nil
}

// capHit reports whether phase, derived from parent, ended by its own
// deadline. The error perf then returns varies (the client is closed under
// in-flight records, which fail with kgo's ErrClientClosed), so we look at
// the contexts rather than at the error.
func capHit(parent, phase context.Context) bool {
	return parent.Err() == nil && errors.Is(phase.Err(), context.DeadlineExceeded)
}

// createTopics makes the single-partition topics up front, so that topic
// creation is in no measurement and the idle broker already has a topic.
func createTopics(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("topic client: %w", err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range []string{topicSmall, topicLarge, topicLatency} {
		resp, err := kadm.NewClient(cl).CreateTopic(cctx, 1, -1, nil, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w (%s)", t, err, resp.ErrMessage)
		}
	}
	return nil
}

// startProfile fetches a CPU profile from the broker's pprof endpoint in
// the background; the channel yields a line saying where it went or why it
// failed.
func startProfile(ctx context.Context, addr string, seconds int, out string) <-chan string {
	done := make(chan string, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- fmt.Sprintf("no profile: %v", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Sprintf("no profile from %s: %v", url, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Sprintf("no profile from %s: %s", url, resp.Status)
			return
		}
		f, err := os.Create(out)
		if err != nil {
			done <- fmt.Sprintf("no profile: %v", err)
			return
		}
		// A CPU profile of a few seconds is well under this bound.
		_, err = io.Copy(f, io.LimitReader(resp.Body, 64<<20))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			done <- fmt.Sprintf("profile %s incomplete: %v", out, err)
			return
		}
		done <- fmt.Sprintf("%ds CPU profile of troupe-durable during produce-small: %s", seconds, out)
	}()
	return done
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
