// Package perf measures how fast a Kafka-compatible cluster accepts and
// serves records, the way kafka-producer-perf-test and
// kafka-consumer-perf-test do.
//
// It is a library rather than part of the troupe command so that the same
// measurement code drives the CLI (troupe perf produce / troupe perf
// consume), Go benchmarks against a Troupe broker, and Go benchmarks against
// franz-go's in-process kfake cluster: every run takes extra kgo options, so
// a caller picks the cluster, and results are plain structs with JSON tags
// that scripts can parse.
//
// Measurement is built to stay out of its own way: records and their latency
// slots are preallocated and recycled, every record shares one payload, and
// latencies go into a fixed-size log-linear histogram, so the produce hot
// path does not allocate.
package perf
