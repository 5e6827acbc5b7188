package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestPerfProduceAndConsume(t *testing.T) {
	bs := newCluster(t)
	b := []string{"--bootstrap-server", bs}

	// --partitions creates the missing topic.
	r := mustTroupe(t, "", append([]string{"perf", "produce", "--topic", "bench", "--num-records", "2000",
		"--record-size", "64", "--partitions", "2"}, b...)...)
	final := regexp.MustCompile(`^2000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, [\d.]+ ms 50th, [\d.]+ ms 99th, [\d.]+ ms 99\.9th\.\n$`)
	if !final.MatchString(r.out) {
		t.Fatalf("perf produce output %q", r.out)
	}

	r = mustTroupe(t, "", append([]string{"perf", "produce", "--topic", "bench", "--num-records", "2000",
		"--record-size", "64", "--acks", "1", "--compression", "snappy", "--json"}, b...)...)
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil {
		t.Fatalf("perf produce --json printed %q: %v", r.out, err)
	}
	for _, k := range []string{"records", "seconds", "records_per_sec", "mb_per_sec", "avg_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("JSON lacks %q: %s", k, r.out)
		}
	}
	p50, p999, maxMs := raw["p50_ms"].(float64), raw["p999_ms"].(float64), raw["max_ms"].(float64)
	if raw["records"].(float64) != 2000 || p50 > p999 || p999 > maxMs || strings.Count(r.out, "\n") != 1 {
		t.Fatalf("implausible result %s", r.out)
	}

	r = mustTroupe(t, "", append([]string{"perf", "consume", "--topic", "bench", "--messages", "4000"}, b...)...)
	lines := strings.Split(r.out, "\n")
	row := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, 0\.2441, [\d.]+, 4000, [\d.]+$`)
	if len(lines) != 3 || lines[0] != "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec" || !row.MatchString(lines[1]) {
		t.Fatalf("perf consume output %q", r.out)
	}

	r = mustTroupe(t, "", append([]string{"perf", "consume", "--topic", "bench", "--messages", "4000", "--json"}, b...)...)
	var cres struct {
		Records int64   `json:"records"`
		Bytes   int64   `json:"bytes"`
		MB      float64 `json:"mb"`
	}
	if err := json.Unmarshal([]byte(r.out), &cres); err != nil || cres.Records != 4000 || cres.Bytes != 4000*64 {
		t.Fatalf("perf consume --json printed %q (%v)", r.out, err)
	}

	// Asking for more than exists times out: the partial result is still
	// printed, then one error line.
	r = troupe(t, "", append([]string{"perf", "consume", "--topic", "bench", "--messages", "5000", "--timeout", "300"}, b...)...)
	assertOneErrorLine(t, r, "consumed 4000 of 5000 records: timed out waiting for records")
	if !strings.Contains(r.out, ", 4000, ") {
		t.Fatalf("partial result missing: %q", r.out)
	}
}

func TestPerfFailures(t *testing.T) {
	bs := newCluster(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing topic", []string{"produce", "--topic", "nope", "--num-records", "1", "--record-size", "1"}, "topic does not exist (--partitions N creates it)"},
		{"no records", []string{"produce", "--topic", "x", "--partitions", "1", "--num-records", "0", "--record-size", "1"}, "number of records must be positive"},
		{"idempotent needs acks all", []string{"produce", "--topic", "x", "--partitions", "1", "--num-records", "1", "--record-size", "1", "--acks", "0", "--idempotent"}, "idempotent producing requires acks=-1"},
		{"consume missing topic", []string{"consume", "--topic", "nope", "--messages", "1"}, `perf consume from topic "nope": topic does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"perf"}, tt.args...), "--bootstrap-server", bs)
			assertOneErrorLine(t, troupe(t, "", args...), tt.want)
		})
	}
}
