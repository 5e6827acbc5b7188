package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxJSONFileBytes bounds the JSON files the admin commands read: a
// partition list for a whole cluster fits with room to spare.
const maxJSONFileBytes = 64 << 20

// topicPartition names one partition; it prints as Kafka's
// TopicPartition does, "topic-partition".
type topicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (tp topicPartition) String() string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

func compareTP(a, b topicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

func joinTPs(tps []topicPartition, sep string) string {
	parts := make([]string, len(tps))
	for i, tp := range tps {
		parts[i] = tp.String()
	}
	return strings.Join(parts, sep)
}

// electionTypes maps --election-type to ElectLeaders' values and the name
// kafka-leader-election.sh prints.
var electionTypes = map[string]struct {
	value int8
	name  string
}{
	"preferred": {0, "PREFERRED"},
	"unclean":   {1, "UNCLEAN"},
}

func newLeaderElectionCmd(s *streams) *cobra.Command {
	var (
		cf           clientFlags
		electionType string
		all          bool
		topic        string
		partition    int32
		jsonFile     string
	)
	c := &cobra.Command{
		Use:   "leader-election --election-type preferred|unclean (--all-topic-partitions | --topic T [--partition P] | --path-to-json-file F)",
		Short: "Elect partition leaders: the preferred replica, or any live one (like kafka-leader-election.sh)",
		Long: `Elect partition leaders (like kafka-leader-election.sh).

A preferred election makes each partition's first replica its leader again
if it is in sync; an unclean one gives a partition without a live leader
the first live replica, in sync or not, at the risk of losing records.

The JSON file lists the partitions:
  {"partitions": [{"topic": "orders", "partition": 0}]}

Exits 1 if any partition could not get its leader.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			typ, ok := electionTypes[strings.ToLower(electionType)]
			if !ok {
				return fmt.Errorf("leader election: --election-type %q: want preferred or unclean", electionType)
			}
			given := 0
			for _, set := range []bool{all, topic != "", jsonFile != ""} {
				if set {
					given++
				}
			}
			switch {
			case given != 1:
				return errors.New("leader election: give exactly one of --all-topic-partitions, --topic and --path-to-json-file")
			case c.Flags().Changed("partition") && topic == "":
				return errors.New("leader election: --partition needs --topic")
			case c.Flags().Changed("partition") && partition < 0:
				return fmt.Errorf("leader election: --partition %d: must not be negative", partition)
			}
			var parts []topicPartition // nil: every partition
			if jsonFile != "" {
				var err error
				if parts, err = readElectionFile(jsonFile); err != nil {
					return fmt.Errorf("leader election: %w", err)
				}
			}
			err := withClient(c.Context(), &cf, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				if topic != "" {
					if c.Flags().Changed("partition") {
						parts = []topicPartition{{topic, partition}}
					} else {
						d, err := lookupTopic(ctx, adm, topic)
						if err != nil {
							return fmt.Errorf("topic %q: %w", topic, err)
						}
						for _, p := range d.Partitions.Numbers() {
							parts = append(parts, topicPartition{topic, p})
						}
					}
				}
				results, err := electLeaders(ctx, cl, typ.value, parts)
				if err != nil {
					return err
				}
				return reportElection(s.out, typ.name, results)
			})
			if err != nil {
				return fmt.Errorf("leader election: %w", err)
			}
			return nil
		},
	}
	fs := c.Flags()
	cf.register(fs)
	fs.StringVar(&electionType, "election-type", "", "preferred or unclean")
	fs.BoolVar(&all, "all-topic-partitions", false, "elect leaders of every partition that needs an election")
	fs.StringVar(&topic, "topic", "", "topic whose partitions to elect leaders of")
	fs.Int32Var(&partition, "partition", -1, "the one partition of --topic to elect the leader of (default: all of them)")
	fs.StringVar(&jsonFile, "path-to-json-file", "", `JSON file listing the partitions: {"partitions":[{"topic":"t","partition":0}]}`)
	return c
}

// withClient connects, runs fn with the client and an admin client over
// it under the command's deadline, and disconnects.
func withClient(ctx context.Context, cf *clientFlags, fn func(context.Context, *kgo.Client, *kadm.Client) error) error {
	ctx, cancel := cf.deadline(ctx)
	defer cancel()
	cl, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl, cf.admin(cl))
}

// readJSONFile decodes a JSON file of at most maxJSONFileBytes into v.
func readJSONFile(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSONFileBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxJSONFileBytes {
		return fmt.Errorf("%s is larger than %d bytes", path, maxJSONFileBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// readElectionFile reads kafka-leader-election.sh's partition list.
func readElectionFile(path string) ([]topicPartition, error) {
	var doc struct {
		Partitions []topicPartition `json:"partitions"`
	}
	if err := readJSONFile(path, &doc); err != nil {
		return nil, err
	}
	if len(doc.Partitions) == 0 {
		return nil, fmt.Errorf("%s lists no partitions", path)
	}
	seen := make(map[topicPartition]bool, len(doc.Partitions))
	for _, tp := range doc.Partitions {
		if tp.Topic == "" || tp.Partition < 0 {
			return nil, fmt.Errorf("%s: invalid partition %q", path, tp)
		}
		if seen[tp] {
			return nil, fmt.Errorf("%s lists partition %s twice", path, tp)
		}
		seen[tp] = true
	}
	return doc.Partitions, nil
}

// electionResult is one partition's outcome; err is nil on success.
type electionResult struct {
	tp  topicPartition
	err error
}

// electLeaders sends one ElectLeaders request (to the controller) for
// parts, nil meaning every partition, and returns the per-partition
// results sorted.
func electLeaders(ctx context.Context, cl *kgo.Client, typ int8, parts []topicPartition) ([]electionResult, error) {
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = typ
	if parts != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
		for _, tp := range parts {
			i := slices.IndexFunc(req.Topics, func(t kmsg.ElectLeadersRequestTopic) bool { return t.Topic == tp.Topic })
			if i < 0 {
				i = len(req.Topics)
				rt := kmsg.NewElectLeadersRequestTopic()
				rt.Topic = tp.Topic
				req.Topics = append(req.Topics, rt)
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, tp.Partition)
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if typ != 0 && resp.Version == 0 {
		// v0 knows only preferred elections: the broker ran those.
		return nil, errors.New("the cluster only supports preferred elections")
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	var results []electionResult
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			var msg string
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			results = append(results, electionResult{
				tp:  topicPartition{t.Topic, p.Partition},
				err: withBrokerMessage(kerr.ErrorForCode(p.ErrorCode), msg),
			})
		}
	}
	slices.SortFunc(results, func(a, b electionResult) int { return compareTP(a.tp, b.tp) })
	return results, nil
}

// reportElection prints results as kafka-leader-election.sh does, and
// fails if any partition could not get its leader.
func reportElection(w io.Writer, typ string, results []electionResult) error {
	var done, noop []topicPartition
	var failed []electionResult
	for _, r := range results {
		switch {
		case r.err == nil:
			done = append(done, r.tp)
		case errors.Is(r.err, kerr.ElectionNotNeeded):
			noop = append(noop, r.tp)
		default:
			failed = append(failed, r)
		}
	}
	if len(done) > 0 {
		fmt.Fprintf(w, "Successfully completed leader election (%s) for partitions %s\n", typ, joinTPs(done, ", "))
	}
	if len(noop) > 0 {
		fmt.Fprintf(w, "Valid replica already elected for partitions %s\n", joinTPs(noop, ", "))
	}
	if len(failed) == 0 {
		return nil
	}
	for _, r := range failed {
		fmt.Fprintf(w, "Error completing leader election (%s) for partition: %s: %v\n", typ, r.tp, r.err)
	}
	return fmt.Errorf("%d replica(s) could not be elected", len(failed))
}
