package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMergeKeepsBestFigures(t *testing.T) {
	r := BrokerResult{
		Kind:     KfakeMemory,
		Small:    &PhaseResult{RecordsPerSec: 100},
		Lat:      &PhaseResult{P99Ms: 5},
		IdleRSS:  20 << 20,
		Startups: []time.Duration{time.Millisecond},
		LoadAvg:  [2]float64{1, 2},
	}
	r.merge(&BrokerResult{
		Kind:     KfakeMemory,
		Small:    &PhaseResult{RecordsPerSec: 50},
		Large:    &PhaseResult{RecordsPerSec: 7},
		Lat:      &PhaseResult{P99Ms: 3},
		IdleRSS:  30 << 20,
		Startups: []time.Duration{2 * time.Millisecond},
		Errors:   []string{"boom"},
		LoadAvg:  [2]float64{4, 0.5},
	})
	switch {
	case r.Small.RecordsPerSec != 100:
		t.Errorf("small rate %v, want the faster 100", r.Small.RecordsPerSec)
	case r.Large == nil || r.Large.RecordsPerSec != 7:
		t.Errorf("large %+v, want the only measurement", r.Large)
	case r.Lat.P99Ms != 3:
		t.Errorf("p99 %v, want the lower 3", r.Lat.P99Ms)
	case r.IdleRSS != 20<<20:
		t.Errorf("rss %d, want the lower", r.IdleRSS)
	case len(r.Startups) != 2 || len(r.Errors) != 1:
		t.Errorf("startups %v errors %v, want both rounds' samples", r.Startups, r.Errors)
	case r.LoadAvg != [2]float64{4, 2}:
		t.Errorf("load %v, want the highest of each", r.LoadAvg)
	}
}

func TestMarkdownRows(t *testing.T) {
	rep := &Report{
		Opts: Options{SmallSize: 100, LargeSize: 1024, LatencySize: 100, Rounds: 1},
		Brokers: []BrokerResult{
			{Kind: TroupeDurable, Small: &PhaseResult{Records: 10, Bytes: 1e9, RecordsPerSec: 123456, BrokerCPU: 2 * time.Second},
				Startups: []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}, IdleRSS: 10 << 20},
			{Kind: KfakeBlackhole, Errors: []string{"line one\nline two"}},
		},
	}
	var b strings.Builder
	if err := rep.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| troupe-durable | 10 | 0.00 | 123456 | 0.0 | 2.00 | 2.00 | no |", // 2 CPU s over 1 GB
		"| troupe-durable | 10.0 | 2.0 | 1.0 | 3.0 | 3 |",                  // median of three restarts
		"| kfake-blackhole | - | - | - | - | - | - | - |",
		"- kfake-blackhole: line one line two",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestRunKfakeMemory drives the real kfakebroker command through every
// phase with tiny sizes: it checks the process plumbing, the /proc readings
// and that consume reads back exactly what produce-small wrote.
func TestRunKfakeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker process")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kfakebroker")
	if out, err := exec.Command("go", "build", "-o", bin, "./kfakebroker").CombinedOutput(); err != nil {
		t.Fatalf("build kfakebroker: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Run(ctx, Options{
		Brokers: []BrokerKind{KfakeMemory}, Bins: Binaries{Kfake: bin}, WorkDir: dir,
		SmallRecords: 3000, LargeRecords: 300, PhaseCap: 20 * time.Second,
		LatencyRate: 1000, LatencyDuration: 300 * time.Millisecond,
		IdleWait: 10 * time.Millisecond, StartupRuns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	br := rep.Brokers[0]
	if len(br.Errors) > 0 {
		t.Fatalf("errors: %v", br.Errors)
	}
	switch {
	case br.Small == nil || br.Small.Records != 3000 || br.Small.Bytes != 3000*100:
		t.Errorf("produce-small %+v, want 3000 records of 100 B", br.Small)
	case br.Consume == nil || br.Consume.Records != 3000:
		t.Errorf("consume %+v, want the 3000 records of produce-small", br.Consume)
	case br.Large == nil || br.Large.Bytes != 300*1024:
		t.Errorf("produce-large %+v, want 300 records of 1 KiB", br.Large)
	case br.Lat == nil || br.Lat.Records != 300 || br.Lat.P50Ms <= 0:
		t.Errorf("latency %+v, want 300 timed records", br.Lat)
	case br.IdleRSS <= 0:
		t.Errorf("idle RSS %d, want > 0", br.IdleRSS)
	case len(br.Startups) != 2:
		t.Errorf("startups %v, want 2", br.Startups)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := Options{Bins: Binaries{Troupe: "t", Kfake: "k"}, WorkDir: "w", SmallRecords: 1, LargeRecords: 1,
		PhaseCap: time.Second, LatencyRate: 1, LatencyDuration: time.Second}
	tests := []struct {
		name  string
		tweak func(*Options)
		ok    bool
	}{
		{"good", func(*Options) {}, true},
		{"no troupe binary", func(o *Options) { o.Bins.Troupe = "" }, false},
		{"kfake only needs no troupe", func(o *Options) { o.Bins.Troupe = ""; o.Brokers = []BrokerKind{KfakeSync} }, true},
		{"no records", func(o *Options) { o.SmallRecords = 0 }, false},
		{"no rate", func(o *Options) { o.LatencyRate = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.tweak(&o)
			o.setDefaults()
			if err := o.validate(); (err == nil) != tt.ok {
				t.Fatalf("validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
