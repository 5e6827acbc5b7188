package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/troupe-io/troupe/perf"
)

func newPerfCmd(s *streams) *cobra.Command {
	var cf clientFlags
	c := newGroupCmd("perf", "Measure produce and consume throughput and latency",
		newPerfProduceCmd(s, &cf),
		newPerfConsumeCmd(s, &cf),
	)
	cf.register(c.PersistentFlags())
	return c
}

func newPerfProduceCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		opts        perf.ProduceOptions
		acks        string
		compression string
		idempotent  bool
		asJSON      bool
	)
	c := &cobra.Command{
		Use:   "produce --topic T --num-records N --record-size B",
		Short: "Produce records as fast as allowed and report throughput and latency (like kafka-producer-perf-test.sh)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fail := func(err error) error { return fmt.Errorf("perf produce to topic %q: %w", opts.Topic, err) }
			if opts.Topic == "" {
				return fmt.Errorf("perf produce: %w", errNeedTopic)
			}
			var err error
			if opts.Acks, err = parseAcks(acks); err != nil {
				return fail(err)
			}
			if opts.Compression, err = parseCompression(compression); err != nil {
				return fail(err)
			}
			// Idempotence, on by default, needs acks=-1; only an
			// explicit --idempotent=true with other acks is an error.
			if opts.Acks != perf.AcksAll && !c.Flags().Changed("idempotent") {
				idempotent = false
			}
			opts.DisableIdempotence = !idempotent

			ctx := c.Context()
			if err := checkPerfTopic(ctx, cf, opts.Topic, opts.Partitions > 0, "--partitions N creates it"); err != nil {
				return fail(err)
			}
			if opts.ClientOpts, err = cf.options(); err != nil {
				return fail(err)
			}
			opts.ClientOpts = append(opts.ClientOpts, kgo.RecordDeliveryTimeout(deliveryTimeouts*cf.timeout))
			opts.Progress = s.err
			res, err := perf.RunProduce(ctx, opts)
			if err != nil {
				return fail(err)
			}
			if asJSON {
				return writeJSON(s.out, res)
			}
			fmt.Fprintln(s.out, res.Summary())
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&opts.Topic, "topic", "", "topic to produce to")
	fs.Int64Var(&opts.NumRecords, "num-records", 0, "number of records to produce")
	fs.IntVar(&opts.RecordSize, "record-size", 0, "value size of each record in bytes")
	fs.Float64Var(&opts.Throughput, "throughput", -1, "cap on records per second (-1: unlimited)")
	fs.StringVar(&acks, "acks", "-1", "acknowledgements to wait for: -1, 1 or 0")
	fs.Int32Var(&opts.BatchMaxBytes, "batch-size", 0, "maximum bytes in one record batch (0: the client default, about 1 MB)")
	fs.DurationVar(&opts.Linger, "linger", 5*time.Millisecond, "how long to wait for more records to fill a batch")
	fs.StringVar(&compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Int32Var(&opts.Partitions, "partitions", 0, "create the topic with this many partitions if it is missing (0: do not create)")
	fs.BoolVar(&idempotent, "idempotent", true, "produce idempotently (needs --acks -1; turned off by other acks unless set)")
	fs.IntVar(&opts.MaxBufferedRecords, "max-buffered-records", perf.DefaultMaxBufferedRecords, "records in flight at most")
	fs.DurationVar(&opts.ProgressInterval, "progress-interval", perf.DefaultProgressInterval, "how often to print a progress line on stderr")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return c
}

func newPerfConsumeCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		opts      perf.ConsumeOptions
		timeoutMs int64
		asJSON    bool
	)
	c := &cobra.Command{
		Use:   "consume --topic T --messages N",
		Short: "Consume records from the beginning and report throughput (like kafka-consumer-perf-test.sh)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fail := func(err error) error { return fmt.Errorf("perf consume from topic %q: %w", opts.Topic, err) }
			if opts.Topic == "" {
				return fmt.Errorf("perf consume: %w", errNeedTopic)
			}
			if timeoutMs <= 0 {
				return fail(fmt.Errorf("--timeout must be positive, got %d", timeoutMs))
			}
			opts.Timeout = time.Duration(timeoutMs) * time.Millisecond
			ctx := c.Context()
			if err := checkPerfTopic(ctx, cf, opts.Topic, false, ""); err != nil {
				return fail(err)
			}
			var err error
			if opts.ClientOpts, err = cf.options(); err != nil {
				return fail(err)
			}
			res, runErr := perf.RunConsume(ctx, opts)
			// A run that timed out still measured something worth
			// printing; the error then follows on stderr.
			if runErr == nil || errors.Is(runErr, perf.ErrTimeout) {
				if asJSON {
					if err := writeJSON(s.out, res); err != nil {
						return fail(err)
					}
				} else {
					fmt.Fprintln(s.out, perf.ConsumeHeader)
					fmt.Fprintln(s.out, res.Row())
				}
			}
			if runErr != nil {
				return fail(runErr)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&opts.Topic, "topic", "", "topic to consume from")
	fs.Int64Var(&opts.Messages, "messages", 0, "number of records to consume")
	fs.Int32Var(&opts.FetchMaxBytes, "fetch-max-bytes", 0, "maximum bytes one fetch returns (0: the client default)")
	fs.Int64Var(&timeoutMs, "timeout", perf.DefaultConsumeTimeout.Milliseconds(), "longest wait for the next record, in milliseconds")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return c
}

// checkPerfTopic fails fast on an unreachable cluster or a missing topic,
// before perf starts its clock. A topic perf will create may be missing;
// hint, if any, tells how to create one.
func checkPerfTopic(ctx context.Context, cf *clientFlags, topic string, willCreate bool, hint string) error {
	ctx, cancel := cf.deadline(ctx)
	defer cancel()
	cl, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = lookupTopic(ctx, cf.admin(cl), topic)
	switch {
	case errors.Is(err, errTopicNotFound) && willCreate:
		return nil
	case errors.Is(err, errTopicNotFound) && hint != "":
		return fmt.Errorf("%w (%s)", err, hint)
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
