package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTopicsCmd(s *streams) *cobra.Command {
	var cf clientFlags
	c := newGroupCmd("topics", "Create, list, describe, alter and delete topics (like kafka-topics.sh)",
		newTopicsCreateCmd(s, &cf),
		newTopicsListCmd(s, &cf),
		newTopicsDescribeCmd(s, &cf),
		newTopicsAlterCmd(s, &cf),
		newTopicsDeleteCmd(s, &cf),
	)
	cf.register(c.PersistentFlags())
	return c
}

// withAdmin connects, runs fn with an admin client under the command's
// deadline, and disconnects.
func withAdmin(ctx context.Context, cf *clientFlags, fn func(context.Context, *kadm.Client) error) error {
	ctx, cancel := cf.deadline(ctx)
	defer cancel()
	cl, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cf.admin(cl))
}

func newTopicsCreateCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		topic             string
		partitions        int32
		replicationFactor int16
		configs           []string
		ifNotExists       bool
	)
	c := &cobra.Command{
		Use:   "create --topic T",
		Short: "Create a topic",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if topic == "" {
				return fmt.Errorf("create topic: %w", errNeedTopic)
			}
			cfgs := make(map[string]*string, len(configs))
			for _, kv := range configs {
				k, v, err := parseKeyValue("config", kv)
				if err != nil {
					return fmt.Errorf("create topic %q: %w", topic, err)
				}
				cfgs[k] = &v
			}
			err := withAdmin(c.Context(), cf, func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.CreateTopic(ctx, partitions, replicationFactor, cfgs, topic)
				return withBrokerMessage(err, resp.ErrMessage)
			})
			switch {
			case ifNotExists && errors.Is(err, kerr.TopicAlreadyExists):
				return nil
			case err != nil:
				return fmt.Errorf("create topic %q: %w", topic, err)
			}
			fmt.Fprintf(s.out, "Created topic %s.\n", topic)
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&topic, "topic", "", "name of the topic to create")
	fs.Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker default)")
	fs.Int16Var(&replicationFactor, "replication-factor", -1, "replicas per partition (-1: the broker default)")
	fs.StringArrayVar(&configs, "config", nil, "topic config override key=value (repeatable)")
	fs.BoolVar(&ifNotExists, "if-not-exists", false, "succeed quietly if the topic already exists")
	return c
}

// hidden reports whether a topic is left out of listings by default:
// internal topics, and by Kafka's convention any name starting with "__".
func hidden(d kadm.TopicDetail) bool {
	return d.IsInternal || strings.HasPrefix(d.Topic, "__")
}

func newTopicsListCmd(s *streams, cf *clientFlags) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List topic names, one per line, sorted",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var topics kadm.TopicDetails
			err := withAdmin(c.Context(), cf, func(ctx context.Context, adm *kadm.Client) (err error) {
				topics, err = adm.ListTopicsWithInternal(ctx)
				return err
			})
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			for _, d := range topics.Sorted() {
				if all || !hidden(d) {
					fmt.Fprintln(s.out, d.Topic)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, `include internal topics and names starting with "__"`)
	return c
}

func newTopicsDescribeCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		topics []string
		all    bool
	)
	c := &cobra.Command{
		Use:   "describe [--topic T]",
		Short: "Describe topics: IDs, partitions, leaders, replicas, configs",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			what := "describe topics"
			if len(topics) == 1 {
				what = fmt.Sprintf("describe topic %q", topics[0])
			}
			err := withAdmin(c.Context(), cf, func(ctx context.Context, adm *kadm.Client) error {
				return describeTopics(ctx, adm, s.out, topics, all)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&topics, "topic", nil, "topic to describe (repeatable or comma-separated; default: all)")
	c.Flags().BoolVar(&all, "all", false, `when describing all topics, include internal ones and names starting with "__"`)
	return c
}

func describeTopics(ctx context.Context, adm *kadm.Client, w io.Writer, names []string, all bool) error {
	details, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return err
	}
	var shown []kadm.TopicDetail
	for _, d := range details.Sorted() {
		switch {
		case errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("topic %q does not exist", d.Topic)
		case d.Err != nil:
			return fmt.Errorf("topic %q: %w", d.Topic, d.Err)
		case len(names) == 0 && !all && hidden(d):
			continue
		}
		shown = append(shown, d)
	}
	for _, name := range names {
		if _, ok := details[name]; !ok {
			return fmt.Errorf("topic %q does not exist", name)
		}
	}
	if len(shown) == 0 {
		return nil
	}

	shownNames := make([]string, len(shown))
	for i, d := range shown {
		shownNames[i] = d.Topic
	}
	configs, err := adm.DescribeTopicConfigs(ctx, shownNames...)
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	reassigning, err := reassignmentsOf(ctx, adm, shown)
	if err != nil {
		return fmt.Errorf("list reassignments: %w", err)
	}
	for _, d := range shown {
		rc, err := configs.On(d.Topic, nil)
		if err == nil {
			err = withBrokerMessage(rc.Err, rc.ErrMessage)
		}
		if err != nil {
			return fmt.Errorf("describe configs of topic %q: %w", d.Topic, err)
		}
		writeTopicReassigning(w, d, rc.Configs, reassigning[d.Topic])
	}
	return nil
}

// reassignmentsOf returns the reassignments in progress among the
// partitions of topics, by topic and partition. A cluster too old to
// list reassignments has none to show, as kafka-topics.sh treats it.
func reassignmentsOf(ctx context.Context, adm *kadm.Client, topics []kadm.TopicDetail) (kadm.ListPartitionReassignmentsResponses, error) {
	var set kadm.TopicsSet
	for _, d := range topics {
		set.Add(d.Topic, d.Partitions.Numbers()...)
	}
	rs, err := adm.ListPartitionReassignments(ctx, set)
	// kgo reports an API the broker does not advertise with an
	// unexported error; its text is all there is to go by.
	if err != nil && (errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old")) {
		return nil, nil
	}
	return rs, err
}

// writeTopic prints d the way kafka-topics.sh --describe does: a summary
// line, then one tab-indented line per partition.
func writeTopic(w io.Writer, d kadm.TopicDetail, configs []kadm.Config) {
	writeTopicReassigning(w, d, configs, nil)
}

// writeTopicReassigning is writeTopic for a topic some of whose
// partitions are being reassigned: their lines also list the replicas
// being added and removed, in kafka-topics.sh's words.
func writeTopicReassigning(w io.Writer, d kadm.TopicDetail, configs []kadm.Config, reassigning map[int32]kadm.ListPartitionReassignmentsResponse) {
	parts := d.Partitions.Sorted()
	rf := 0
	if len(parts) > 0 {
		rf = len(parts[0].Replicas)
	}
	fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
		d.Topic, kafkaUUID(d.ID), len(parts), rf, overriddenConfigs(configs))
	for _, p := range parts {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s",
			d.Topic, p.Partition, leader, joinIDs(p.Replicas), joinIDs(p.ISR))
		if r, ok := reassigning[p.Partition]; ok {
			fmt.Fprintf(w, "\tAdding Replicas: %s\tRemoving Replicas: %s", joinIDs(r.AddingReplicas), joinIDs(r.RemovingReplicas))
		}
		if len(p.OfflineReplicas) > 0 {
			fmt.Fprintf(w, "\tOffline: %s", joinIDs(p.OfflineReplicas))
		}
		if p.Err != nil {
			fmt.Fprintf(w, "\tError: %s", p.Err)
		}
		fmt.Fprintln(w)
	}
}

// kafkaUUID renders a topic ID as Kafka's Uuid.toString does: URL-safe
// base64 without padding.
func kafkaUUID(id kadm.TopicID) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// overriddenConfigs lists, sorted, the configs that are not plain defaults,
// which is what kafka-topics.sh shows (ConfigEntry.isDefault is a test of
// the source).
func overriddenConfigs(configs []kadm.Config) string {
	var kvs []string
	for _, c := range configs {
		if c.Source == kmsg.ConfigSourceDefaultConfig {
			continue
		}
		kvs = append(kvs, c.Key+"="+c.MaybeValue())
	}
	slices.Sort(kvs)
	return strings.Join(kvs, ",")
}

func joinIDs(ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	return b.String()
}

func newTopicsAlterCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		topic         string
		partitions    int
		configs       []string
		deleteConfigs []string
	)
	c := &cobra.Command{
		Use:   "alter --topic T",
		Short: "Add partitions to a topic or change its configs",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if topic == "" {
				return fmt.Errorf("alter topic: %w", errNeedTopic)
			}
			if partitions < 0 && len(configs) == 0 && len(deleteConfigs) == 0 {
				return fmt.Errorf("alter topic %q: nothing to do: give --partitions, --config or --delete-config", topic)
			}
			alters := make([]kadm.AlterConfig, 0, len(configs)+len(deleteConfigs))
			for _, kv := range configs {
				k, v, err := parseKeyValue("config", kv)
				if err != nil {
					return fmt.Errorf("alter topic %q: %w", topic, err)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			for _, k := range deleteConfigs {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			return withAdmin(c.Context(), cf, func(ctx context.Context, adm *kadm.Client) error {
				if partitions >= 0 {
					if err := setPartitions(ctx, adm, topic, partitions); err != nil {
						return fmt.Errorf("alter partitions of topic %q: %w", topic, err)
					}
					fmt.Fprintf(s.out, "Increased partition count of topic %s to %d.\n", topic, partitions)
				}
				if len(alters) > 0 {
					if err := alterConfigs(ctx, adm, topic, alters); err != nil {
						return fmt.Errorf("alter configs of topic %q: %w", topic, err)
					}
					fmt.Fprintf(s.out, "Completed updating config for topic %s.\n", topic)
				}
				return nil
			})
		},
	}
	fs := c.Flags()
	fs.StringVar(&topic, "topic", "", "name of the topic to alter")
	fs.IntVar(&partitions, "partitions", -1, "new total number of partitions; must exceed the current count")
	fs.StringArrayVar(&configs, "config", nil, "config to set, key=value (repeatable)")
	fs.StringArrayVar(&deleteConfigs, "delete-config", nil, "config key to reset to its default (repeatable)")
	return c
}

func setPartitions(ctx context.Context, adm *kadm.Client, topic string, n int) error {
	// Check first, as kafka-topics.sh does: brokers word this case
	// differently, and not all of them clearly.
	d, err := lookupTopic(ctx, adm, topic)
	if err != nil {
		return err
	}
	if have := len(d.Partitions); n <= have {
		return fmt.Errorf("the topic has %d partitions and the count can only be increased", have)
	}
	resps, err := adm.UpdatePartitions(ctx, n, topic)
	if err != nil {
		return err
	}
	r, ok := resps[topic]
	if !ok {
		return errors.New("the broker did not answer for the topic")
	}
	return withBrokerMessage(r.Err, r.ErrMessage)
}

func alterConfigs(ctx context.Context, adm *kadm.Client, topic string, alters []kadm.AlterConfig) error {
	resps, err := adm.AlterTopicConfigs(ctx, alters, topic)
	if err != nil {
		return err
	}
	r, err := resps.On(topic, nil)
	if err != nil {
		return errors.New("the broker did not answer for the topic")
	}
	return withBrokerMessage(r.Err, r.ErrMessage)
}

func newTopicsDeleteCmd(s *streams, cf *clientFlags) *cobra.Command {
	var topic string
	c := &cobra.Command{
		Use:   "delete --topic T",
		Short: "Delete a topic",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if topic == "" {
				return fmt.Errorf("delete topic: %w", errNeedTopic)
			}
			err := withAdmin(c.Context(), cf, func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.DeleteTopic(ctx, topic)
				return withBrokerMessage(err, resp.ErrMessage)
			})
			if err != nil {
				return fmt.Errorf("delete topic %q: %w", topic, err)
			}
			fmt.Fprintf(s.out, "Deleted topic %s.\n", topic)
			return nil
		},
	}
	c.Flags().StringVar(&topic, "topic", "", "name of the topic to delete")
	return c
}
