// Command compare benchmarks Troupe against franz-go's kfake, each as a
// separate broker process, with identical franz-go workloads, and prints a
// markdown table (see package bench).
//
//	go run ./bench/cmd/compare --out BENCHMARKS-run.md          # full run
//	go run ./bench/cmd/compare --quick --out BENCHMARKS-run.md  # a few minutes
//
// Run it from the repository root: unless --troupe-bin and --kfake-bin are
// given, it builds both commands from the module in --repo.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/troupe-io/troupe/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	var (
		brokers   = fs.String("brokers", joinKinds(bench.AllBrokers), "comma-separated broker set-ups to run, in order")
		phases    = fs.String("phases", joinPhases(bench.AllPhases), "comma-separated phases to run on each broker")
		quick     = fs.Bool("quick", false, "small sizes for a run of a few minutes; explicit flags still win")
		out       = fs.String("out", "", "also write the markdown report to this file")
		workDir   = fs.String("work-dir", "", "directory for data dirs, logs and binaries (default: a new temp dir, removed afterwards)")
		repo      = fs.String("repo", ".", "module root to build the brokers from")
		troupeBin = fs.String("troupe-bin", "", "prebuilt troupe binary (default: build it)")
		kfakeBin  = fs.String("kfake-bin", "", "prebuilt bench/kfakebroker binary (default: build it)")
		profile   = fs.String("profile", "", "save a CPU profile of troupe-durable during produce-small here (needs troupe.metrics.listener to serve /debug/pprof)")
		profSecs  = fs.Int("profile-seconds", 10, "length of that profile")

		smallRecords = fs.Int64("small-records", 2_000_000, "(a) records of 100 B, acks=1")
		largeRecords = fs.Int64("large-records", 1_000_000, "(b) records of 1 KiB, acks=-1")
		phaseCap     = fs.Duration("cap", 15*time.Second, "wall-clock cap of each of (a), (b), (c)")
		linger       = fs.Duration("linger", 5*time.Millisecond, "producer linger of (a) and (b), as Kafka 4's linger.ms default")
		fetchMax     = fs.Int("fetch-max-bytes", 0, "(c) fetch.max.bytes; 0 is franz-go's default")
		latRate      = fs.Float64("latency-rate", 20_000, "(d) records per second")
		latDuration  = fs.Duration("latency-duration", 10*time.Second, "(d) how long to send at that rate")
		idleWait     = fs.Duration("idle-wait", 2*time.Second, "idle time before reading RSS")
		startupRuns  = fs.Int("startup-runs", 5, "restarts to time on the data dir")
		rounds       = fs.Int("rounds", 1, "repeat the whole sequence and keep each broker's best figures")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quickDefaults := map[string]func(){
			"small-records":    func() { *smallRecords = 1_000_000 },
			"large-records":    func() { *largeRecords = 300_000 },
			"cap":              func() { *phaseCap = 8 * time.Second },
			"latency-duration": func() { *latDuration = 5 * time.Second },
		}
		for name, apply := range quickDefaults {
			if !set[name] {
				apply()
			}
		}
	}

	opts := bench.Options{
		SmallRecords: *smallRecords, LargeRecords: *largeRecords,
		PhaseCap: *phaseCap, Linger: *linger, FetchMaxBytes: int32(*fetchMax),
		LatencyRate: *latRate, LatencyDuration: *latDuration,
		IdleWait: *idleWait, StartupRuns: *startupRuns, Rounds: *rounds,
		ProfileOut: *profile, ProfileSeconds: *profSecs,
		Log: os.Stderr,
	}
	for _, s := range strings.Split(*brokers, ",") {
		k, err := bench.ParseBrokerKind(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		opts.Brokers = append(opts.Brokers, k)
	}
	for _, s := range strings.Split(*phases, ",") {
		p, err := bench.ParsePhase(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		opts.Phases = append(opts.Phases, p)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts.WorkDir = *workDir
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "troupe-bench-")
		if err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		opts.WorkDir = dir
	}
	opts.Bins = bench.Binaries{Troupe: *troupeBin, Kfake: *kfakeBin}
	if opts.Bins.Troupe == "" || opts.Bins.Kfake == "" {
		fmt.Fprintln(os.Stderr, "building troupe and kfakebroker...")
		built, err := bench.BuildBinaries(ctx, *repo, opts.WorkDir)
		if err != nil {
			return err
		}
		if opts.Bins.Troupe == "" {
			opts.Bins.Troupe = built.Troupe
		}
		if opts.Bins.Kfake == "" {
			opts.Bins.Kfake = built.Kfake
		}
	}

	rep, err := bench.Run(ctx, opts)
	if rep == nil {
		return err
	}
	var md strings.Builder
	if merr := rep.Markdown(&md); merr != nil {
		return merr
	}
	fmt.Print(md.String())
	if *out != "" {
		if werr := os.WriteFile(*out, []byte(md.String()), 0o644); werr != nil {
			return fmt.Errorf("write %s: %w", *out, werr)
		}
	}
	return err
}

func joinKinds(ks []bench.BrokerKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

func joinPhases(ps []bench.Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}
