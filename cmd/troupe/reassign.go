package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionReplicas is one entry of kafka-reassign-partitions.sh's JSON.
// LogDirs is accepted for compatibility; "any" is all Troupe supports.
type partitionReplicas struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

func (p partitionReplicas) tp() topicPartition { return topicPartition{p.Topic, p.Partition} }

// reassignmentDoc is the reassignment JSON: {"version":1,"partitions":[...]}.
type reassignmentDoc struct {
	Version    int                 `json:"version"`
	Partitions []partitionReplicas `json:"partitions"`
}

type reassignFlags struct {
	generate, execute, verify, cancel, list bool

	topicsFile       string
	brokerList       string
	reassignFile     string
	additional       bool
	disableRackAware bool
}

func newReassignPartitionsCmd(s *streams) *cobra.Command {
	var (
		cf clientFlags
		f  reassignFlags
	)
	c := &cobra.Command{
		Use:   "reassign-partitions (--generate | --execute | --verify | --cancel | --list)",
		Short: "Move partition replicas between brokers (like kafka-reassign-partitions.sh)",
		Long: `Move partition replicas between brokers (like kafka-reassign-partitions.sh).

  --generate --topics-to-move-json-file F --broker-list 1,2,3
      print the current assignment of the topics in F
      ({"version":1,"topics":[{"topic":"t"}]}) and a proposal that spreads
      their replicas round-robin over the brokers
  --execute --reassignment-json-file F
      print the current assignment (keep it to roll back), then start the
      reassignment in F; new replicas catch up before the old ones leave
  --verify --reassignment-json-file F
      report, per partition, whether its reassignment has completed
  --cancel --reassignment-json-file F
      cancel the reassignments of F's partitions that are in progress
  --list
      list the reassignments in progress

The reassignment JSON is {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return fmt.Errorf("reassign partitions: %w", err)
			}
			var err error
			switch {
			case f.generate:
				err = f.runGenerate(c.Context(), &cf, s.out)
			case f.execute:
				err = f.runExecute(c.Context(), &cf, s.out)
			case f.verify:
				err = f.runVerify(c.Context(), &cf, s.out)
			case f.cancel:
				err = f.runCancel(c.Context(), &cf, s.out)
			case f.list:
				err = withClient(c.Context(), &cf, func(ctx context.Context, cl *kgo.Client, _ *kadm.Client) error {
					return listReassignments(ctx, cl, s.out)
				})
			}
			if err != nil {
				return fmt.Errorf("reassign partitions: %w", err)
			}
			return nil
		},
	}
	fs := c.Flags()
	cf.register(fs)
	fs.BoolVar(&f.generate, "generate", false, "propose a reassignment of the topics in --topics-to-move-json-file over --broker-list")
	fs.BoolVar(&f.execute, "execute", false, "start the reassignment in --reassignment-json-file")
	fs.BoolVar(&f.verify, "verify", false, "report whether the reassignment in --reassignment-json-file has completed")
	fs.BoolVar(&f.cancel, "cancel", false, "cancel the reassignment in --reassignment-json-file")
	fs.BoolVar(&f.list, "list", false, "list the reassignments in progress")
	fs.StringVar(&f.topicsFile, "topics-to-move-json-file", "", `with --generate: JSON file {"version":1,"topics":[{"topic":"t"}]}`)
	fs.StringVar(&f.brokerList, "broker-list", "", "with --generate: comma-separated broker ids to spread the replicas over")
	fs.StringVar(&f.reassignFile, "reassignment-json-file", "", "with --execute, --verify or --cancel: the reassignment JSON file")
	fs.BoolVar(&f.additional, "additional", false, "with --execute: start even though reassignments of these partitions are in progress (replacing them)")
	fs.BoolVar(&f.disableRackAware, "disable-rack-aware", false, "accepted for compatibility; --generate ignores racks")
	return c
}

// check validates the flag combination, as kafka-reassign-partitions.sh
// does before it connects.
func (f *reassignFlags) check() error {
	n := 0
	for _, set := range []bool{f.generate, f.execute, f.verify, f.cancel, f.list} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of --generate, --execute, --verify, --cancel and --list")
	}
	switch {
	case f.generate && (f.topicsFile == "" || f.brokerList == ""):
		return errors.New("--generate needs --topics-to-move-json-file and --broker-list")
	case (f.execute || f.verify || f.cancel) && f.reassignFile == "":
		return errors.New("--execute, --verify and --cancel need --reassignment-json-file")
	case !f.generate && (f.topicsFile != "" || f.brokerList != ""):
		return errors.New("--topics-to-move-json-file and --broker-list go with --generate only")
	case (f.generate || f.list) && f.reassignFile != "":
		return errors.New("--reassignment-json-file goes with --execute, --verify or --cancel only")
	case f.additional && !f.execute:
		return errors.New("--additional goes with --execute only")
	}
	return nil
}

// readReassignmentFile reads and checks a reassignment JSON file.
func readReassignmentFile(path string) ([]partitionReplicas, error) {
	var doc reassignmentDoc
	if err := readJSONFile(path, &doc); err != nil {
		return nil, err
	}
	if err := checkReassignment(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	slices.SortFunc(doc.Partitions, func(a, b partitionReplicas) int { return compareTP(a.tp(), b.tp()) })
	return doc.Partitions, nil
}

func checkReassignment(doc reassignmentDoc) error {
	if doc.Version != 1 {
		return fmt.Errorf("unsupported version %d: want 1", doc.Version)
	}
	if len(doc.Partitions) == 0 {
		return errors.New("the partition reassignment list cannot be empty")
	}
	seen := make(map[topicPartition]bool, len(doc.Partitions))
	for _, p := range doc.Partitions {
		tp := p.tp()
		switch {
		case p.Topic == "" || p.Partition < 0:
			return fmt.Errorf("invalid partition %s", tp)
		case seen[tp]:
			return fmt.Errorf("partition %s is listed twice", tp)
		case len(p.Replicas) == 0:
			return fmt.Errorf("partition %s has no replicas", tp)
		case p.LogDirs != nil && len(p.LogDirs) != len(p.Replicas):
			return fmt.Errorf("partition %s: %d log_dirs for %d replicas", tp, len(p.LogDirs), len(p.Replicas))
		}
		seen[tp] = true
		for i, r := range p.Replicas {
			if slices.Contains(p.Replicas[:i], r) {
				return fmt.Errorf("partition %s lists replica %d twice", tp, r)
			}
		}
		for _, d := range p.LogDirs {
			if d != "any" {
				return fmt.Errorf("partition %s: log dir %q: only \"any\" is supported", tp, d)
			}
		}
	}
	return nil
}

// formatReassignmentJSON renders parts as Kafka does: compact, version 1,
// every replica's log dir "any".
func formatReassignmentJSON(parts []partitionReplicas) string {
	doc := reassignmentDoc{Version: 1, Partitions: make([]partitionReplicas, len(parts))}
	for i, p := range parts {
		dirs := make([]string, len(p.Replicas))
		for j := range dirs {
			dirs[j] = "any"
		}
		doc.Partitions[i] = partitionReplicas{Topic: p.Topic, Partition: p.Partition, Replicas: p.Replicas, LogDirs: dirs}
	}
	b, _ := json.Marshal(doc) // plain structs of strings and ints cannot fail
	return string(b)
}

// currentAssignment returns the replicas the cluster has now for each
// partition of parts, in parts' order.
func currentAssignment(ctx context.Context, adm *kadm.Client, parts []topicPartition) ([]partitionReplicas, error) {
	var names []string
	for _, tp := range parts {
		if !slices.Contains(names, tp.Topic) {
			names = append(names, tp.Topic)
		}
	}
	details, err := describeTopicsStrict(ctx, adm, names)
	if err != nil {
		return nil, err
	}
	out := make([]partitionReplicas, 0, len(parts))
	for _, tp := range parts {
		p, ok := details[tp.Topic].Partitions[tp.Partition]
		if !ok {
			return nil, fmt.Errorf("partition %s does not exist", tp)
		}
		out = append(out, partitionReplicas{Topic: tp.Topic, Partition: tp.Partition, Replicas: p.Replicas})
	}
	return out, nil
}

// describeTopicsStrict returns the metadata of names, failing for any
// topic that does not exist.
func describeTopicsStrict(ctx context.Context, adm *kadm.Client, names []string) (kadm.TopicDetails, error) {
	details, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		d, ok := details[name]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return nil, fmt.Errorf("topic %q does not exist", name)
		case d.Err != nil:
			return nil, fmt.Errorf("topic %q: %w", name, d.Err)
		}
	}
	return details, nil
}

// tpsOf lists the partitions of parts.
func tpsOf(parts []partitionReplicas) []topicPartition {
	out := make([]topicPartition, len(parts))
	for i, p := range parts {
		out[i] = p.tp()
	}
	return out
}

func topicsSet(tps []topicPartition) kadm.TopicsSet {
	var s kadm.TopicsSet
	for _, tp := range tps {
		s.Add(tp.Topic, tp.Partition)
	}
	return s
}

// ongoingReassignments returns the reassignments in progress among tps.
func ongoingReassignments(ctx context.Context, adm *kadm.Client, tps []topicPartition) (map[topicPartition]kadm.ListPartitionReassignmentsResponse, error) {
	listed, err := adm.ListPartitionReassignments(ctx, topicsSet(tps))
	if err != nil {
		return nil, fmt.Errorf("list reassignments: %w", err)
	}
	out := map[topicPartition]kadm.ListPartitionReassignmentsResponse{}
	listed.Each(func(r kadm.ListPartitionReassignmentsResponse) {
		out[topicPartition{r.Topic, r.Partition}] = r
	})
	return out, nil
}

// parseBrokerList parses --broker-list: distinct, non-negative ids.
func parseBrokerList(s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("--broker-list: %q is not a broker id", f)
		}
		if slices.Contains(ids, int32(id)) {
			return nil, fmt.Errorf("--broker-list names broker %d twice", id)
		}
		ids = append(ids, int32(id))
	}
	if len(ids) == 0 {
		return nil, errors.New("--broker-list is empty")
	}
	return ids, nil
}

func (f *reassignFlags) runGenerate(ctx context.Context, cf *clientFlags, w io.Writer) error {
	var doc struct {
		Version int `json:"version"`
		Topics  []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := readJSONFile(f.topicsFile, &doc); err != nil {
		return err
	}
	var names []string
	for _, t := range doc.Topics {
		if t.Topic == "" {
			return fmt.Errorf("%s: a topic without a name", f.topicsFile)
		}
		if !slices.Contains(names, t.Topic) {
			names = append(names, t.Topic)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("%s lists no topics", f.topicsFile)
	}
	slices.Sort(names)
	brokers, err := parseBrokerList(f.brokerList)
	if err != nil {
		return err
	}
	return withAdmin(ctx, cf, func(ctx context.Context, adm *kadm.Client) error {
		details, err := describeTopicsStrict(ctx, adm, names)
		if err != nil {
			return err
		}
		meta, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("list brokers: %w", err)
		}
		var missing []int32
		for _, id := range brokers {
			if !slices.ContainsFunc(meta.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == id }) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("--broker-list: brokers %s are not available", joinIDs(missing))
		}
		current, proposed, err := proposeAssignment(names, details, brokers)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Current partition replica assignment\n%s\n\n", formatReassignmentJSON(current))
		fmt.Fprintf(w, "Proposed partition reassignment configuration\n%s\n", formatReassignmentJSON(proposed))
		return nil
	})
}

// proposeAssignment spreads the partitions of names round-robin over
// brokers, keeping each partition's replica count: replica j of the k-th
// partition (counting across topics, in order) goes to broker k+j.
func proposeAssignment(names []string, details kadm.TopicDetails, brokers []int32) (current, proposed []partitionReplicas, err error) {
	k := 0
	for _, name := range names {
		for _, p := range details[name].Partitions.Sorted() {
			rf := len(p.Replicas)
			if rf > len(brokers) {
				return nil, nil, fmt.Errorf("partition %s has %d replicas, more than the %d brokers of --broker-list", topicPartition{name, p.Partition}, rf, len(brokers))
			}
			current = append(current, partitionReplicas{Topic: name, Partition: p.Partition, Replicas: p.Replicas})
			replicas := make([]int32, rf)
			for j := range replicas {
				replicas[j] = brokers[(k+j)%len(brokers)]
			}
			proposed = append(proposed, partitionReplicas{Topic: name, Partition: p.Partition, Replicas: replicas})
			k++
		}
	}
	return current, proposed, nil
}

func (f *reassignFlags) runExecute(ctx context.Context, cf *clientFlags, w io.Writer) error {
	parts, err := readReassignmentFile(f.reassignFile)
	if err != nil {
		return err
	}
	tps := tpsOf(parts)
	return withAdmin(ctx, cf, func(ctx context.Context, adm *kadm.Client) error {
		ongoing, err := ongoingReassignments(ctx, adm, tps)
		if err != nil {
			return err
		}
		if len(ongoing) > 0 && !f.additional {
			return errors.New("cannot execute because there is an existing partition assignment; use --additional to replace it")
		}
		current, err := currentAssignment(ctx, adm, tps)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n",
			formatReassignmentJSON(current))

		var req kadm.AlterPartitionAssignmentsReq
		for _, p := range parts {
			req.Assign(p.Topic, p.Partition, p.Replicas)
		}
		if err := alterAssignments(ctx, adm, req, tps, "error reassigning partition(s)"); err != nil {
			return err
		}
		fmt.Fprintf(w, "Successfully started partition reassignment%s for %s\n", plural(len(tps)), joinTPs(tps, ","))
		return nil
	})
}

// partitionErrors gathers the failed partitions of an
// AlterPartitionAssignments answer into one error; a partition the
// broker did not answer counts as failed.
// alterAssignments sends req and fails, naming every partition, if any of
// tps was refused.
func alterAssignments(ctx context.Context, adm *kadm.Client, req kadm.AlterPartitionAssignmentsReq, tps []topicPartition, what string) error {
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return err
	}
	return partitionErrors(what, tps, resps)
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func partitionErrors(what string, tps []topicPartition, resps kadm.AlterPartitionAssignmentsResponses) error {
	var failures []string
	for _, tp := range tps {
		r, ok := resps[tp.Topic][tp.Partition]
		var err error
		switch {
		case !ok:
			err = errors.New("no answer from the cluster")
		default:
			err = withBrokerMessage(r.Err, r.ErrMessage)
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", tp, err))
		}
	}
	if len(failures) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", what, strings.Join(failures, "; "))
}

func (f *reassignFlags) runVerify(ctx context.Context, cf *clientFlags, w io.Writer) error {
	parts, err := readReassignmentFile(f.reassignFile)
	if err != nil {
		return err
	}
	tps := tpsOf(parts)
	return withAdmin(ctx, cf, func(ctx context.Context, adm *kadm.Client) error {
		ongoing, err := ongoingReassignments(ctx, adm, tps)
		if err != nil {
			return err
		}
		current, err := currentAssignment(ctx, adm, tps)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "Status of partition reassignment:")
		for i, p := range parts {
			tp := p.tp()
			switch _, inProgress := ongoing[tp]; {
			case inProgress:
				fmt.Fprintf(w, "Reassignment of partition %s is still in progress.\n", tp)
			case slices.Equal(current[i].Replicas, p.Replicas):
				fmt.Fprintf(w, "Reassignment of partition %s is completed.\n", tp)
			default:
				fmt.Fprintf(w, "There is no active reassignment of partition %s, but replica set is %s rather than %s.\n",
					tp, joinIDs(current[i].Replicas), joinIDs(p.Replicas))
			}
		}
		return nil
	})
}

func (f *reassignFlags) runCancel(ctx context.Context, cf *clientFlags, w io.Writer) error {
	parts, err := readReassignmentFile(f.reassignFile)
	if err != nil {
		return err
	}
	return withAdmin(ctx, cf, func(ctx context.Context, adm *kadm.Client) error {
		ongoing, err := ongoingReassignments(ctx, adm, tpsOf(parts))
		if err != nil {
			return err
		}
		var cancel []topicPartition
		var req kadm.AlterPartitionAssignmentsReq
		for _, p := range parts {
			if _, ok := ongoing[p.tp()]; ok {
				cancel = append(cancel, p.tp())
				req.CancelAssign(p.Topic, p.Partition)
			}
		}
		if len(cancel) == 0 {
			fmt.Fprintln(w, "None of the specified partition reassignments are active.")
			return nil
		}
		if err := alterAssignments(ctx, adm, req, cancel, "error cancelling partition reassignment(s)"); err != nil {
			return err
		}
		fmt.Fprintf(w, "Successfully cancelled partition reassignment%s for: %s\n", plural(len(cancel)), joinTPs(cancel, ","))
		return nil
	})
}

// listReassignments prints every reassignment in progress, as
// kafka-reassign-partitions.sh --list does. kadm lists only named
// partitions, so this asks with null topics (all) itself.
func listReassignments(ctx context.Context, cl *kgo.Client, w io.Writer) error {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		var msg string
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		return withBrokerMessage(err, msg)
	}
	type entry struct {
		tp                         topicPartition
		replicas, adding, removing []int32
	}
	var entries []entry
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			entries = append(entries, entry{topicPartition{t.Topic, p.Partition}, p.Replicas, p.AddingReplicas, p.RemovingReplicas})
		}
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "No partition reassignments found.")
		return nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return compareTP(a.tp, b.tp) })
	fmt.Fprintln(w, "Current partition reassignments:")
	for _, e := range entries {
		fmt.Fprintf(w, "%s: replicas: %s. adding: %s. removing: %s.\n", e.tp, joinIDs(e.replicas), joinIDs(e.adding), joinIDs(e.removing))
	}
	return nil
}
