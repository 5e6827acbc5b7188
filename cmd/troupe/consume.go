package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	group          string
	groupProtocol  string
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
	fs.BoolVar(&flags.fromBeginning, "from-beginning", false, "start at the earliest record rather than the latest (with --group: where the group has committed nothing)")
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
	fs.StringVar(&flags.group, "group", "", "consume as a member of this consumer group, committing the offsets of what was printed")
	fs.StringVar(&flags.groupProtocol, "group-protocol", "classic", "with --group: classic (JoinGroup/SyncGroup) or consumer (KIP-848, the broker assigns)")
	return c
}

// startOffsets decides where consumption starts and where it restarts if
// that offset is out of range, following kafka-console-consumer: the reset
// goes to the earliest record with --from-beginning and the latest without.
func (f *consumeFlags) startOffsets() (start, reset kgo.Offset, err error) {
	earliest, latest := kgo.NewOffset().AtStart(), kgo.NewOffset().AtEnd()
	if f.group != "" {
		// A group member starts where the group committed; the reset
		// offset applies only to partitions without a commit, which is
		// what --from-beginning (auto.offset.reset=earliest) means to
		// kafka-console-consumer.
		switch {
		case f.partition >= 0:
			return start, reset, errors.New("--group and --partition cannot be used together")
		case f.offset != "":
			return start, reset, errors.New("--group and --offset cannot be used together")
		case f.fromBeginning:
			return earliest, earliest, nil
		}
		return latest, latest, nil
	}
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
	groupOpts, err := f.groupOptions()
	if err != nil {
		return 0, err
	}

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
		// partition starts; in a group, where uncommitted ones do.
		opts = append(opts, kgo.ConsumeTopics(f.topic))
	}
	cl, err := cf.connect(ctx, append(opts, groupOpts...)...)
	if err != nil {
		return 0, err
	}
	// Closing leaves the group, after the final commit below. Every
	// poll's rebalance block has been lifted by then, but a failed write
	// may return between a poll and its AllowRebalance.
	defer cl.CloseAllowingRebalance()

	// A missing topic would otherwise look like a quiet one forever.
	lookupCtx, cancel := cf.deadline(ctx)
	adm := cf.admin(cl)
	detail, err := lookupTopic(lookupCtx, adm, f.topic)
	if err == nil && f.group != "" && f.groupProtocol == "consumer" {
		err = requireConsumerProtocol(lookupCtx, adm)
	}
	cancel()
	if err != nil {
		return 0, err
	}
	if f.partition >= 0 && int(f.partition) >= len(detail.Partitions) {
		return 0, fmt.Errorf("partition %d does not exist: the topic has %d partitions", f.partition, len(detail.Partitions))
	}

	n, err := f.printRecords(ctx, s, cl)
	if f.group != "" {
		// Commit what was printed, however the loop ended: an
		// interrupt, --max-messages, --timeout-ms, or a failure after
		// some records were already out. The command's context may be
		// the interrupt that ended the loop, so the commit gets its own.
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cf.timeout)
		cerr := cl.CommitMarkedOffsets(commitCtx)
		cancel()
		if cerr != nil && err == nil {
			err = fmt.Errorf("commit offsets of group %q: %w", f.group, cerr)
		}
	}
	return n, err
}

// groupOptions returns the kgo options for --group and --group-protocol.
//
// Offsets are committed with marks: a record is marked only once its line
// has reached stdout, and only marked records are committed, by the
// periodic autocommit and once more on the way out. Polls block rebalances
// until the polled records are marked, so a partition cannot move to
// another member between being printed and being marked.
func (f *consumeFlags) groupOptions() ([]kgo.Opt, error) {
	switch f.groupProtocol {
	case "classic", "consumer":
	default:
		return nil, fmt.Errorf("--group-protocol %q: want classic or consumer", f.groupProtocol)
	}
	if f.group == "" {
		if f.groupProtocol != "classic" {
			return nil, errors.New("--group-protocol consumer needs --group")
		}
		return nil, nil
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(f.group),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
	}
	if f.groupProtocol == "consumer" {
		// KIP-848: the broker assigns. kgo names its sticky balancer
		// to the broker as the "uniform" assignor, Kafka's default.
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()))
	}
	return opts, nil
}

// requireConsumerProtocol fails when the cluster cannot run KIP-848 groups;
// kgo would otherwise quietly join with the classic protocol instead.
func requireConsumerProtocol(ctx context.Context, adm *kadm.Client) error {
	ok, err := allBrokersSupport(ctx, adm, int16(kmsg.ConsumerGroupHeartbeat), 1)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the cluster does not support the consumer group protocol (KIP-848): use --group-protocol classic")
	}
	return nil
}

// printRecords prints records until --max-messages, --timeout-ms or an
// interrupt, and returns how many it printed.
func (f *consumeFlags) printRecords(ctx context.Context, s *streams, cl *kgo.Client) (int64, error) {
	w := bufio.NewWriterSize(s.out, 64<<10)
	var (
		n        int64
		line     []byte        // reused for every record
		printed  []*kgo.Record // this poll's records, to mark once flushed
		timeout  = time.Duration(f.timeoutMs) * time.Millisecond
		lastRecv = time.Now()
		grouped  = f.group != ""
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

		printed = printed[:0]
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			line = f.format.appendRecord(line[:0], r)
			if _, err := w.Write(line); err != nil {
				return n, fmt.Errorf("write stdout: %w", err)
			}
			n++
			if grouped {
				printed = append(printed, r)
			}
		}
		// Keep the buffers from pinning one huge poll's worth.
		if cap(line) > 1<<20 {
			line = nil
		}
		if err := w.Flush(); err != nil {
			return n, fmt.Errorf("write stdout: %w", err)
		}
		if len(printed) > 0 {
			cl.MarkCommitRecords(printed...)
		}
		if cap(printed) > 1<<16 {
			printed = nil
		}
		cl.AllowRebalance()
		if fetches.NumRecords() > 0 {
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
