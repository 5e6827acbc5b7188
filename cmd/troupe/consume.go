package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeFlags struct {
	topic          string
	fromBeginning  bool
	partition      int32
	offset         string
	maxMessages    int64
	timeoutMs      int64
	isolationLevel string
	format         recordFormat
	keySeparator   string
}

func newConsumeCmd(s *streams) *cobra.Command {
	var (
		cf    clientFlags
		flags consumeFlags
	)
	c := &cobra.Command{
		Use:   "consume --topic T",
		Short: "Print records to stdout, one per line (like kafka-console-consumer.sh)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if flags.topic == "" {
				return fmt.Errorf("consume: %w", errNeedTopic)
			}
			n, err := consume(c.Context(), s, &cf, &flags)
			if err != nil {
				return fmt.Errorf("consume from topic %q: %w", flags.topic, err)
			}
			fmt.Fprintf(s.err, "Processed a total of %d messages\n", n)
			return nil
		},
	}
	cf.register(c.Flags())
	fs := c.Flags()
	fs.StringVar(&flags.topic, "topic", "", "topic to consume from")
	fs.BoolVar(&flags.fromBeginning, "from-beginning", false, "start at the earliest record rather than the latest")
	fs.Int32Var(&flags.partition, "partition", -1, "consume only this partition (-1: all)")
	fs.StringVar(&flags.offset, "offset", "", "where to start: earliest, latest or an offset N (N needs --partition)")
	fs.Int64Var(&flags.maxMessages, "max-messages", -1, "exit after this many records (-1: never)")
	fs.Int64Var(&flags.timeoutMs, "timeout-ms", -1, "exit when no record arrives for this many milliseconds (-1: wait forever)")
	fs.StringVar(&flags.isolationLevel, "isolation-level", "read_uncommitted", "read_uncommitted or read_committed")
	fs.BoolVar(&flags.format.timestamp, "print-timestamp", false, "print each record's timestamp")
	fs.BoolVar(&flags.format.partition, "print-partition", false, "print each record's partition")
	fs.BoolVar(&flags.format.offset, "print-offset", false, "print each record's offset")
	fs.BoolVar(&flags.format.headers, "print-headers", false, "print each record's headers")
	fs.BoolVar(&flags.format.key, "print-key", false, "print each record's key")
	fs.StringVar(&flags.keySeparator, "key-separator", "\t", `separator between printed fields ("\t" is a tab)`)
	return c
}

// startOffsets decides where consumption starts and where it restarts if
// that offset is out of range, following kafka-console-consumer: the reset
// goes to the earliest record with --from-beginning and the latest without.
func (f *consumeFlags) startOffsets() (start, reset kgo.Offset, err error) {
	earliest, latest := kgo.NewOffset().AtStart(), kgo.NewOffset().AtEnd()
	if f.offset != "" && f.fromBeginning {
		return start, reset, errors.New("--from-beginning and --offset cannot be used together")
	}
	switch f.offset {
	case "":
		if f.fromBeginning {
			return earliest, earliest, nil
		}
		return latest, latest, nil
	case "earliest":
		return earliest, earliest, nil
	case "latest":
		return latest, latest, nil
	}
	n, perr := strconv.ParseInt(f.offset, 10, 64)
	switch {
	case perr != nil || n < 0:
		return start, reset, fmt.Errorf("--offset %q: want earliest, latest or a non-negative number", f.offset)
	case f.partition < 0:
		return start, reset, errors.New("--offset N needs --partition")
	}
	return kgo.NewOffset().At(n), latest, nil
}

// consume prints records until --max-messages, --timeout-ms or an
// interrupt, and returns how many it printed.
func consume(ctx context.Context, s *streams, cf *clientFlags, f *consumeFlags) (int64, error) {
	start, reset, err := f.startOffsets()
	if err != nil {
		return 0, err
	}
	isolation, err := parseIsolation(f.isolationLevel)
	if err != nil {
		return 0, err
	}
	sep, err := parseSeparator("key-separator", f.keySeparator)
	if err != nil {
		return 0, err
	}
	f.format.sep = sep

	opts := []kgo.Opt{
		kgo.ConsumeResetOffset(reset),
		kgo.FetchIsolationLevel(isolation),
	}
	if f.partition >= 0 {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			f.topic: {f.partition: start},
		}))
	} else {
		// Without a group, ConsumeResetOffset is also where every
		// partition starts.
		opts = append(opts, kgo.ConsumeTopics(f.topic))
	}
	cl, err := cf.connect(ctx, opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()

	// A missing topic would otherwise look like a quiet one forever.
	lookupCtx, cancel := cf.deadline(ctx)
	detail, err := lookupTopic(lookupCtx, cf.admin(cl), f.topic)
	cancel()
	if err != nil {
		return 0, err
	}
	if f.partition >= 0 && int(f.partition) >= len(detail.Partitions) {
		return 0, fmt.Errorf("partition %d does not exist: the topic has %d partitions", f.partition, len(detail.Partitions))
	}

	w := bufio.NewWriterSize(s.out, 64<<10)
	var (
		n        int64
		line     []byte // reused for every record
		timeout  = time.Duration(f.timeoutMs) * time.Millisecond
		lastRecv = time.Now()
	)
	for f.maxMessages < 0 || n < f.maxMessages {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, lastRecv.Add(timeout))
		}
		limit := -1 // PollRecords: no limit
		if f.maxMessages >= 0 {
			limit = int(min(f.maxMessages-n, 1<<20))
		}
		fetches := cl.PollRecords(pollCtx, limit)
		cancel()

		got := false
		for it := fetches.RecordIter(); !it.Done(); {
			line = f.format.appendRecord(line[:0], it.Next())
			if _, err := w.Write(line); err != nil {
				return n, fmt.Errorf("write stdout: %w", err)
			}
			n++
			got = true
		}
		// Keep the line buffer from pinning one huge record's worth.
		if cap(line) > 1<<20 {
			line = nil
		}
		if err := w.Flush(); err != nil {
			return n, fmt.Errorf("write stdout: %w", err)
		}
		if got {
			lastRecv = time.Now()
		}

		if err := firstFetchError(fetches); err != nil {
			switch {
			case ctx.Err() != nil:
				// Interrupted: a normal way to stop, as with Kafka.
				return n, nil
			case errors.Is(err, context.DeadlineExceeded):
				// --timeout-ms passed without a record.
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

// firstFetchError returns the first error in fetches, including the poll
// context's own error, which kgo reports as a fetch error.
func firstFetchError(fetches kgo.Fetches) error {
	if fetches.IsClientClosed() {
		return kgo.ErrClientClosed
	}
	if errs := fetches.Errors(); len(errs) > 0 {
		fe := errs[0]
		if fe.Topic != "" {
			return fmt.Errorf("fetch partition %d: %w", fe.Partition, fe.Err)
		}
		return fe.Err
	}
	return nil
}

// recordFormat prints records the way Kafka's DefaultMessageFormatter does:
// the enabled fields in a fixed order (timestamp, partition, offset,
// headers, key, value), joined by the separator.
type recordFormat struct {
	timestamp, partition, offset, headers, key bool
	sep                                        string
}

// appendRecord appends r's line, newline included, to dst.
func (f *recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	if f.timestamp {
		if r.Attrs.TimestampType() == 1 {
			dst = append(dst, "LogAppendTime:"...)
		} else {
			dst = append(dst, "CreateTime:"...)
		}
		dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		dst = append(dst, f.sep...)
	}
	if f.partition {
		dst = append(dst, "Partition:"...)
		dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		dst = append(dst, f.sep...)
	}
	if f.offset {
		dst = append(dst, "Offset:"...)
		dst = strconv.AppendInt(dst, r.Offset, 10)
		dst = append(dst, f.sep...)
	}
	if f.headers {
		if len(r.Headers) == 0 {
			dst = append(dst, "NO_HEADERS"...)
		}
		for i, h := range r.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, h.Key...)
			dst = append(dst, ':')
			dst = appendNullable(dst, h.Value)
		}
		dst = append(dst, f.sep...)
	}
	if f.key {
		dst = appendNullable(dst, r.Key)
		dst = append(dst, f.sep...)
	}
	dst = appendNullable(dst, r.Value)
	return append(dst, '\n')
}

// appendNullable prints a null key, value or header value as "null", as
// Kafka does.
func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}
