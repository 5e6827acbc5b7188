package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	defaultBootstrap      = "127.0.0.1:9092"
	defaultRequestTimeout = 10 * time.Second
	clientID              = "troupe-cli"
)

// clientFlags are the connection flags every client command takes.
type clientFlags struct {
	bootstrap string
	timeout   time.Duration
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.bootstrap, "bootstrap-server", defaultBootstrap,
		"comma-separated host:port list of brokers to bootstrap from")
	fs.DurationVar(&f.timeout, "request-timeout", defaultRequestTimeout,
		"how long to wait for the cluster to answer a request, retries included, before giving up")
}

func (f *clientFlags) seeds() ([]string, error) {
	var seeds []string
	for _, s := range strings.Split(f.bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("--bootstrap-server is empty")
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--request-timeout must be positive, got %s", f.timeout)
	}
	return seeds, nil
}

// options returns the kgo options that point a client at the cluster and
// bound how long its requests may retry, so that no command can hang on an
// unreachable broker.
func (f *clientFlags) options() ([]kgo.Opt, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(clientID),
		kgo.DialTimeout(min(f.timeout, defaultRequestTimeout)),
		// The connection handshake waits only this overhead, not the
		// caller's context, so it must be bounded too: otherwise a
		// port that accepts but never answers holds us for kgo's 10s
		// whatever --request-timeout says.
		kgo.RequestTimeoutOverhead(min(f.timeout, defaultRequestTimeout)),
		kgo.RetryTimeout(f.timeout),
	}, nil
}

// connect returns a client that has proven it can reach the cluster. Ping
// tries each seed once without retrying, so a wrong address fails fast with
// the dial error rather than after a retry loop.
func (f *clientFlags) connect(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("configure client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("cannot reach cluster at %s: no answer within %s", f.bootstrap, f.timeout)
		}
		return nil, fmt.Errorf("cannot reach cluster at %s: %w", f.bootstrap, err)
	}
	return cl, nil
}

// admin wraps cl in an admin client whose broker-side timeouts match ours.
func (f *clientFlags) admin(cl *kgo.Client) *kadm.Client {
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(f.timeout, time.Hour).Milliseconds()))
	return adm
}

// deadline bounds a whole command's requests: a few request timeouts, so a
// command with several round trips is not cut short, yet none runs forever.
func (f *clientFlags) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*f.timeout)
}

// withBrokerMessage appends the broker's free-text error message, when it
// sent one, to err.
func withBrokerMessage(err error, msg string) error {
	if err == nil || msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// errTopicNotFound is returned when a command needs a topic that does not
// exist.
var errTopicNotFound = errors.New("topic does not exist")

// lookupTopic returns the metadata of one topic, or errTopicNotFound.
func lookupTopic(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	topics, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	d, ok := topics[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return kadm.TopicDetail{}, errTopicNotFound
	}
	if d.Err != nil {
		return kadm.TopicDetail{}, d.Err
	}
	return d, nil
}
