package perf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrTimeout reports that no record arrived within ConsumeOptions.Timeout
// before the requested number of records was consumed.
var ErrTimeout = errors.New("timed out waiting for records")

// ConsumeOptions configures one consumer run. Zero values mean the defaults
// documented on each field.
type ConsumeOptions struct {
	// Brokers seeds the client. It may be empty when ClientOpts carries
	// kgo.SeedBrokers.
	Brokers []string
	Topic   string

	// Messages is how many records to consume, from the beginning of every
	// partition; must be > 0.
	Messages int64

	FetchMaxBytes int32 // 0: the client default

	// Timeout is the longest we wait for the next record (default
	// DefaultConsumeTimeout), like kafka-consumer-perf-test's --timeout.
	Timeout time.Duration

	// ClientOpts are applied after the options above, so they win.
	ClientOpts []kgo.Opt
}

// ConsumeResult summarises a consumer run. Bytes count keys and values, as
// kafka-consumer-perf-test does.
type ConsumeResult struct {
	Start         time.Time `json:"start_time"`
	End           time.Time `json:"end_time"`
	Records       int64     `json:"records"`
	Bytes         int64     `json:"bytes"`
	MB            float64   `json:"mb"` // MB = 2^20 bytes
	Seconds       float64   `json:"seconds"`
	MBPerSec      float64   `json:"mb_per_sec"`
	RecordsPerSec float64   `json:"records_per_sec"`
}

// ConsumeHeader is the header line matching ConsumeResult.Row, the leading
// columns of kafka-consumer-perf-test's output.
const ConsumeHeader = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"

// kafkaTime formats t as the Java SimpleDateFormat "yyyy-MM-dd HH:mm:ss:SSS"
// that kafka-consumer-perf-test prints. Go layouts only know fractional
// seconds after '.' or ',', so the milliseconds are appended by hand.
func kafkaTime(t time.Time) string {
	return fmt.Sprintf("%s:%03d", t.Format(time.DateTime), t.Nanosecond()/int(time.Millisecond))
}

// Row formats r as the data line under ConsumeHeader.
func (r ConsumeResult) Row() string {
	return fmt.Sprintf("%s, %s, %.4f, %.4f, %d, %.4f",
		kafkaTime(r.Start), kafkaTime(r.End), r.MB, r.MBPerSec, r.Records, r.RecordsPerSec)
}

// RunConsume consumes opts.Messages records from the start of every partition
// of opts.Topic and reports the rate. If the records stop coming for
// opts.Timeout it returns what it measured together with an error wrapping
// ErrTimeout.
func RunConsume(ctx context.Context, opts ConsumeOptions) (ConsumeResult, error) {
	switch {
	case opts.Topic == "":
		return ConsumeResult{}, errors.New("a topic is required")
	case opts.Messages <= 0:
		return ConsumeResult{}, fmt.Errorf("number of messages must be positive, got %d", opts.Messages)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultConsumeTimeout
	}

	kopts := []kgo.Opt{
		kgo.ConsumeTopics(opts.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	if len(opts.Brokers) > 0 {
		kopts = append(kopts, kgo.SeedBrokers(opts.Brokers...))
	}
	if opts.FetchMaxBytes > 0 {
		kopts = append(kopts, kgo.FetchMaxBytes(opts.FetchMaxBytes))
	}
	kopts = append(kopts, opts.ClientOpts...)

	res := ConsumeResult{Start: time.Now()}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("configure client: %w", err)
	}
	defer cl.Close()

	var runErr error
	// countRecord is bound once, outside the loop, so polling does not
	// allocate a closure per fetch.
	countRecord := func(r *kgo.Record) {
		res.Records++
		res.Bytes += int64(len(r.Key) + len(r.Value))
	}
	// The run ends at the last record received, so a run that times out
	// is not charged for the time spent waiting in vain.
	res.End = res.Start
	for res.Records < opts.Messages {
		pollCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
		fetches := cl.PollRecords(pollCtx, int(min(opts.Messages-res.Records, 1<<20)))
		cancel()
		before := res.Records
		fetches.EachRecord(countRecord)
		if res.Records > before {
			res.End = time.Now()
		}
		if err := firstFetchError(fetches); err != nil {
			switch {
			case ctx.Err() != nil:
				runErr = ctx.Err()
			case errors.Is(err, context.DeadlineExceeded):
				runErr = fmt.Errorf("%w: no record within %s", ErrTimeout, opts.Timeout)
			default:
				runErr = err
			}
			break
		}
	}
	res.finish()
	if runErr != nil {
		return res, fmt.Errorf("consumed %d of %d records: %w", res.Records, opts.Messages, runErr)
	}
	return res, nil
}

func (r *ConsumeResult) finish() {
	r.Seconds = r.End.Sub(r.Start).Seconds()
	r.MB = float64(r.Bytes) / bytesPerMB
	if r.Seconds > 0 {
		r.MBPerSec = r.MB / r.Seconds
		r.RecordsPerSec = float64(r.Records) / r.Seconds
	}
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
			return fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		return fe.Err
	}
	return nil
}
