package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Markdown writes the report as markdown tables, one per workload, with a
// row per broker set-up. A dash means the phase did not run.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	o := &r.Opts
	fmt.Fprintf(&b, "Run %s, %s in total. Every broker is its own process on 127.0.0.1, driven by the same franz-go client (package perf); one partition everywhere. Broker CPU is utime+stime of the broker process from /proc/PID/stat across the phase, per 10^9 payload bytes.\n\n",
		r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Second))
	if o.Rounds > 1 {
		fmt.Fprintf(&b, "Best of %d rounds per broker: highest rate per throughput phase, lowest p99 for latency, lowest idle RSS; start-up takes the median over all restarts of all rounds.\n\n", o.Rounds)
	}

	fmt.Fprintf(&b, "### (a) produce %d B records, acks=1, linger %s, up to %d records or %s\n\n", o.SmallSize, o.Linger, o.SmallRecords, o.PhaseCap)
	throughputTable(&b, r.Brokers, func(br *BrokerResult) *PhaseResult { return br.Small })
	fmt.Fprintf(&b, "\n### (b) produce %d B records, acks=-1 (idempotent), linger %s, up to %d records or %s\n\n", o.LargeSize, o.Linger, o.LargeRecords, o.PhaseCap)
	throughputTable(&b, r.Brokers, func(br *BrokerResult) *PhaseResult { return br.Large })
	fetch := "franz-go default fetch size"
	if o.FetchMaxBytes > 0 {
		fetch = fmt.Sprintf("fetch.max.bytes %d", o.FetchMaxBytes)
	}
	fmt.Fprintf(&b, "\n### (c) consume all of (a) from offset 0, %s, up to %s\n\n", fetch, o.PhaseCap)
	throughputTable(&b, r.Brokers, func(br *BrokerResult) *PhaseResult { return br.Consume })

	fmt.Fprintf(&b, "\n### (d) produce→ack latency, %d B records at %.0f records/s for %s, acks=-1 (idempotent), linger 0\n\n", o.LatencySize, o.LatencyRate, o.LatencyDuration)
	b.WriteString("| broker | records | achieved rec/s | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range r.Brokers {
		br := &r.Brokers[i]
		p := br.Lat
		if p == nil {
			fmt.Fprintf(&b, "| %s | - | - | - | - | - | - | - |\n", br.Kind)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.3f | %.3f | %.3f | %.3f | %.2f |\n",
			br.Kind, p.Records, p.RecordsPerSec, p.P50Ms, p.P99Ms, p.P999Ms, p.MaxMs, p.BrokerCPU.Seconds())
	}

	fmt.Fprintf(&b, "\n### Process footprint: idle RSS (VmRSS after start, 3 topics, %s idle) and start-up (exec → first TCP connect; restarts on the data dir the phases left)\n\n", o.IdleWait)
	b.WriteString("| broker | idle RSS MiB | start-up median ms | min ms | max ms | restarts | load avg (1 min) before → after |\n|---|---:|---:|---:|---:|---:|---|\n")
	for i := range r.Brokers {
		br := &r.Brokers[i]
		rss := "-"
		if br.IdleRSS > 0 {
			rss = fmt.Sprintf("%.1f", float64(br.IdleRSS)/(1<<20))
		}
		med, lo, hi := "-", "-", "-"
		if len(br.Startups) > 0 {
			s := slices.Clone(br.Startups)
			slices.Sort(s)
			med, lo, hi = ms(median(s)), ms(s[0]), ms(s[len(s)-1])
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %.1f → %.1f |\n", br.Kind, rss, med, lo, hi, len(br.Startups), br.LoadAvg[0], br.LoadAvg[1])
	}

	var errs []string
	for _, br := range r.Brokers {
		for _, e := range br.Errors {
			errs = append(errs, fmt.Sprintf("- %s: %s", br.Kind, oneLine(e)))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	if r.Profile != "" {
		b.WriteString("\nProfile: " + r.Profile + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func throughputTable(b *strings.Builder, brokers []BrokerResult, pick func(*BrokerResult) *PhaseResult) {
	b.WriteString("| broker | records | seconds | records/s | MB/s | broker CPU s | CPU s/GB | stopped by cap |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for i := range brokers {
		p := pick(&brokers[i])
		if p == nil {
			fmt.Fprintf(b, "| %s | - | - | - | - | - | - | - |\n", brokers[i].Kind)
			continue
		}
		capped := "no"
		if p.Capped {
			capped = "yes"
		}
		fmt.Fprintf(b, "| %s | %d | %.2f | %.0f | %.1f | %.2f | %.2f | %s |\n",
			brokers[i].Kind, p.Records, p.Seconds, p.RecordsPerSec, p.MBPerSec, p.BrokerCPU.Seconds(), p.CPUSecPerGB(), capped)
	}
}

// median of sorted, non-empty d; the lower middle for an even count, so
// the figure is always one that was measured.
func median(sorted []time.Duration) time.Duration { return sorted[(len(sorted)-1)/2] }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// oneLine keeps a multi-line error from breaking the markdown list.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
