package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/perf"
)

// parseKeyValue splits "key=value" at the first '='; values may contain '='.
func parseKeyValue(flag, s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("--%s %q: want key=value", flag, s)
	}
	return key, value, nil
}

// unescape turns the escapes people type for separators, such as "\t" in
// --key-separator "\t", into the characters they mean, so the flag works
// without the shell's $'\t'.
var unescape = strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\r`, "\r")

func parseSeparator(flag, s string) (string, error) {
	s = unescape.Replace(s)
	if s == "" {
		return "", fmt.Errorf("--%s must not be empty", flag)
	}
	return s, nil
}

// parseAcks accepts Kafka's acks values: -1 (or "all"), 0 and 1.
func parseAcks(s string) (perf.Acks, error) {
	switch s {
	case "-1", "all":
		return perf.AcksAll, nil
	case "1":
		return perf.AcksLeader, nil
	case "0":
		return perf.AcksNone, nil
	}
	return 0, fmt.Errorf("--acks %q: want -1, 0 or 1", s)
}

func kgoAcks(a perf.Acks) kgo.Acks {
	switch a {
	case perf.AcksLeader:
		return kgo.LeaderAck()
	case perf.AcksNone:
		return kgo.NoAck()
	}
	return kgo.AllISRAcks()
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

func parseIsolation(s string) (kgo.IsolationLevel, error) {
	switch s {
	case "read_uncommitted":
		return kgo.ReadUncommitted(), nil
	case "read_committed":
		return kgo.ReadCommitted(), nil
	}
	return kgo.IsolationLevel{}, fmt.Errorf("--isolation-level %q: want read_uncommitted or read_committed", s)
}

// errNeedTopic is the error for a missing --topic.
var errNeedTopic = errors.New("--topic is required")
