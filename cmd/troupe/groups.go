package main

// troupe groups: list, describe, delete and rewind consumer groups, like
// kafka-consumer-groups.sh. Both kinds of consumer group are handled: classic
// groups (JoinGroup/SyncGroup, described with DescribeGroups) and KIP-848
// consumer groups (ConsumerGroupHeartbeat, described with
// ConsumerGroupDescribe).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newGroupsCmd(s *streams) *cobra.Command {
	var cf clientFlags
	c := newGroupCmd("groups", "List, describe, reset and delete consumer groups (like kafka-consumer-groups.sh)",
		newGroupsListCmd(s, &cf),
		newGroupsDescribeCmd(s, &cf),
		newGroupsDeleteCmd(s, &cf),
		newGroupsDeleteOffsetsCmd(s, &cf),
		newGroupsResetOffsetsCmd(s, &cf),
	)
	cf.register(c.PersistentFlags())
	return c
}

// withClients is withAdmin for commands that also send requests kadm does
// not wrap the way they need, and so need the raw client too.
func withClients(ctx context.Context, cf *clientFlags, fn func(context.Context, *kgo.Client, *kadm.Client) error) error {
	ctx, cancel := cf.deadline(ctx)
	defer cancel()
	cl, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl, cf.admin(cl))
}

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// dash stands in for a missing value so that every row has every column,
// as kafka-consumer-groups.sh prints it.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// offsetCell prints an offset, or "-" for none (negative).
func offsetCell(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// ---- list ----

// groupStates are the states a group can report (Kafka's GroupState), in
// the spelling the protocol uses. Classic groups use Empty, Stable,
// PreparingRebalance, CompletingRebalance and Dead; KIP-848 groups add
// Assigning, Reconciling and NotReady.
var groupStates = []string{
	"Empty", "Stable", "PreparingRebalance", "CompletingRebalance",
	"Assigning", "Reconciling", "NotReady", "Dead", "Unknown",
}

// consumerGroupTypes are the types --all-groups covers, as in
// kafka-consumer-groups.sh: share and streams groups have tools of their
// own, and describing them as consumer groups would find nothing.
var consumerGroupTypes = []string{"classic", "consumer"}

// groupTypes are the group types ListGroups v5+ reports (KIP-848, KIP-932,
// KIP-1071).
var groupTypes = []string{"classic", "consumer", "share", "streams"}

// canonical matches each of values case-insensitively against known, as
// Kafka parses states and types, and returns the known spellings: brokers
// compare the filters they receive exactly.
func canonical(flag string, values, known []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, strings.TrimSpace(v)) })
		if i < 0 {
			return nil, fmt.Errorf("--%s %q: want one of %s", flag, v, strings.Join(known, ", "))
		}
		if !slices.Contains(out, known[i]) {
			out = append(out, known[i])
		}
	}
	return out, nil
}

type listedGroup struct {
	name, state, typ, protocolType string
}

func newGroupsListCmd(s *streams, cf *clientFlags) *cobra.Command {
	var states, types []string
	c := &cobra.Command{
		Use:   "list [--state S] [--type T]",
		Short: "List groups with their state, type and protocol type, sorted by name",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			states, err := canonical("state", states, groupStates)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			types, err := canonical("type", types, groupTypes)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			var groups []listedGroup
			err = withClients(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, _ *kadm.Client) (err error) {
				groups, err = listGroups(ctx, cl, states, types)
				return err
			})
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			tw := newTable(s.out)
			fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tPROTOCOL-TYPE")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.name, dash(g.state), dash(g.typ), dash(g.protocolType))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringSliceVar(&states, "state", nil, "only groups in this state, case-insensitive: "+strings.Join(groupStates, ", ")+" (repeatable or comma-separated)")
	c.Flags().StringSliceVar(&types, "type", nil, "only groups of this type: "+strings.Join(groupTypes, ", ")+" (repeatable or comma-separated)")
	return c
}

// listGroups asks every broker for the groups it coordinates. It goes
// through kmsg rather than kadm because kadm drops the group type. The
// filters are applied here too, since brokers older than ListGroups v4 (for
// states) and v5 (for types) ignore them.
func listGroups(ctx context.Context, cl *kgo.Client, states, types []string) ([]listedGroup, error) {
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter = states
	req.TypesFilter = types
	var groups []listedGroup
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("broker %d: %w", shard.Meta.NodeID, shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("broker %d: %w", shard.Meta.NodeID, err)
		}
		for _, g := range resp.Groups {
			typ := g.GroupType
			if typ == "" && resp.GetVersion() < 5 {
				// Before KIP-848 every group was classic.
				typ = "classic"
			}
			if len(states) > 0 && g.GroupState != "" && !slices.Contains(states, g.GroupState) ||
				len(types) > 0 && !slices.Contains(types, typ) {
				continue
			}
			groups = append(groups, listedGroup{name: g.Group, state: g.GroupState, typ: typ, protocolType: g.ProtocolType})
		}
	}
	slices.SortFunc(groups, func(a, b listedGroup) int { return strings.Compare(a.name, b.name) })
	return groups, nil
}

// ---- describing a group, whatever its protocol ----

// groupInfo is what describe needs of a group, from either DescribeGroups
// (classic groups) or ConsumerGroupDescribe (KIP-848 consumer groups).
type groupInfo struct {
	name   string
	exists bool
	// typ is "classic" or "consumer".
	typ          string
	state        string
	protocolType string // classic groups only: "consumer", "connect", ...
	// assignor is the classic group's chosen protocol (the client-side
	// assignor, e.g. "range") or the consumer group's server assignor.
	assignor    string
	coordinator kadm.BrokerDetail
	// epoch and assignmentEpoch are KIP-848 group epochs; -1 for classic
	// groups.
	epoch, assignmentEpoch int32
	members                []groupMember // sorted by member ID
}

type groupMember struct {
	id, instanceID, clientID, host string
	assigned                       kadm.TopicsSet
}

func (m *groupMember) numAssigned() int {
	n := 0
	for _, ps := range m.assigned {
		n += len(ps)
	}
	return n
}

// active reports whether the group has members or is between generations;
// only inactive groups may have their offsets reset.
func (g *groupInfo) active() bool {
	return g.exists && g.state != "Empty" && g.state != "Dead"
}

func (g *groupInfo) rebalancing() bool {
	switch g.state {
	case "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling":
		return true
	}
	return false
}

var errGroupNotFound = errors.New("group does not exist")

// describeGroups describes each named group, in order. Like Kafka's admin
// client it asks ConsumerGroupDescribe first, when the cluster supports it,
// and DescribeGroups for the groups that turn out not to be consumer groups
// (GROUP_ID_NOT_FOUND), so that neither kind is mistaken for missing or
// empty: a broker answers DescribeGroups for a KIP-848 group as if the
// group were dead. A group that is in neither comes back with exists false
// and state Dead.
func describeGroups(ctx context.Context, cl *kgo.Client, adm *kadm.Client, names []string) ([]groupInfo, error) {
	names = dedup(names)
	infos := make(map[string]groupInfo, len(names))
	classic := names
	ok, err := supportsConsumerGroupDescribe(ctx, adm)
	if err != nil {
		return nil, err
	}
	if ok {
		described, rest, err := describeConsumerGroups(ctx, cl, adm, names)
		if err != nil {
			return nil, err
		}
		for _, g := range described {
			infos[g.name] = g
		}
		classic = rest
	}
	if len(classic) > 0 {
		described, err := adm.DescribeGroups(ctx, classic...)
		if err != nil {
			return nil, err
		}
		for _, name := range classic {
			dg, ok := described[name]
			switch {
			case !ok:
				return nil, fmt.Errorf("group %q: the coordinator did not answer for it", name)
			case errors.Is(dg.Err, kerr.GroupIDNotFound) || dg.Err == nil && dg.State == "Dead":
				infos[name] = groupInfo{name: name, state: "Dead", typ: "classic", coordinator: dg.Coordinator, epoch: -1, assignmentEpoch: -1}
				continue
			case dg.Err != nil:
				return nil, fmt.Errorf("group %q: %w", name, withBrokerMessage(dg.Err, dg.ErrMessage))
			}
			infos[name] = classicGroupInfo(&dg)
		}
	}
	out := make([]groupInfo, len(names))
	for i, name := range names {
		out[i] = infos[name]
	}
	return out, nil
}

func dedup(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// supportsConsumerGroupDescribe reports whether every broker that answers
// knows ConsumerGroupDescribe; any of them may coordinate a group.
func supportsConsumerGroupDescribe(ctx context.Context, adm *kadm.Client) (bool, error) {
	return allBrokersSupport(ctx, adm, int16(kmsg.ConsumerGroupDescribe), 0)
}

func allBrokersSupport(ctx context.Context, adm *kadm.Client, key, minVersion int16) (bool, error) {
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return false, fmt.Errorf("api versions: %w", err)
	}
	answered := 0
	for _, v := range versions {
		if v.Err != nil {
			continue
		}
		answered++
		if max, ok := v.KeyMaxVersion(key); !ok || max < minVersion {
			return false, nil
		}
	}
	return answered > 0, nil
}

func classicGroupInfo(dg *kadm.DescribedGroup) groupInfo {
	g := groupInfo{
		name:            dg.Group,
		exists:          true,
		typ:             "classic",
		state:           dg.State,
		protocolType:    dg.ProtocolType,
		assignor:        dg.Protocol,
		coordinator:     dg.Coordinator,
		epoch:           -1,
		assignmentEpoch: -1,
	}
	for _, m := range dg.Members {
		gm := groupMember{id: m.MemberID, clientID: m.ClientID, host: m.ClientHost, assigned: make(kadm.TopicsSet)}
		if m.InstanceID != nil {
			gm.instanceID = *m.InstanceID
		}
		// Only "consumer" protocol assignments can be read; others
		// (connect, custom) count as assigning nothing.
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				gm.assigned.Add(t.Topic, t.Partitions...)
			}
		}
		g.members = append(g.members, gm)
	}
	slices.SortFunc(g.members, func(a, b groupMember) int { return strings.Compare(a.id, b.id) })
	return g
}

// describeConsumerGroups sends ConsumerGroupDescribe itself rather than
// through kadm because assignments name topics by ID and a broker may leave
// the name empty; kadm would keep the empty name. It returns the consumer
// groups and the names that are not consumer groups.
func describeConsumerGroups(ctx context.Context, cl *kgo.Client, adm *kadm.Client, names []string) ([]groupInfo, []string, error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = names
	var (
		groups    []groupInfo
		notFound  []string
		idToTopic map[[16]byte]string // loaded on first need
	)
	topicName := func(tp kmsg.AssignmentTopicPartition) (string, error) {
		if tp.Topic != "" {
			return tp.Topic, nil
		}
		if idToTopic == nil {
			topics, err := adm.ListTopicsWithInternal(ctx)
			if err != nil {
				return "", fmt.Errorf("resolve topic IDs: %w", err)
			}
			idToTopic = make(map[[16]byte]string, len(topics))
			for _, d := range topics {
				idToTopic[d.ID] = d.Topic
			}
		}
		if name, ok := idToTopic[tp.TopicID]; ok {
			return name, nil
		}
		// A topic deleted since it was assigned: show its ID.
		return kafkaUUID(tp.TopicID), nil
	}
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, nil, fmt.Errorf("describe consumer groups: %w", shard.Err)
		}
		resp := shard.Resp.(*kmsg.ConsumerGroupDescribeResponse)
		for _, rg := range resp.Groups {
			err := kerr.ErrorForCode(rg.ErrorCode)
			switch {
			case errors.Is(err, kerr.GroupIDNotFound):
				notFound = append(notFound, rg.Group)
				continue
			case err != nil:
				msg := ""
				if rg.ErrorMessage != nil {
					msg = *rg.ErrorMessage
				}
				return nil, nil, fmt.Errorf("group %q: %w", rg.Group, withBrokerMessage(err, msg))
			}
			g := groupInfo{
				name:            rg.Group,
				exists:          true,
				typ:             "consumer",
				state:           rg.State,
				protocolType:    "consumer",
				assignor:        rg.AssignorName,
				coordinator:     kadm.BrokerDetail(shard.Meta),
				epoch:           rg.Epoch,
				assignmentEpoch: rg.AssignmentEpoch,
			}
			for _, rm := range rg.Members {
				gm := groupMember{id: rm.MemberID, clientID: rm.ClientID, host: rm.ClientHost, assigned: make(kadm.TopicsSet)}
				if rm.InstanceID != nil {
					gm.instanceID = *rm.InstanceID
				}
				for _, tp := range rm.Assignment.TopicPartitions {
					topic, err := topicName(tp)
					if err != nil {
						return nil, nil, err
					}
					gm.assigned.Add(topic, tp.Partitions...)
				}
				g.members = append(g.members, gm)
			}
			slices.SortFunc(g.members, func(a, b groupMember) int { return strings.Compare(a.id, b.id) })
			groups = append(groups, g)
		}
	}
	// A group the broker left out of its answer is looked up the classic
	// way rather than dropped.
	for _, name := range names {
		if !slices.ContainsFunc(groups, func(g groupInfo) bool { return g.name == name }) && !slices.Contains(notFound, name) {
			notFound = append(notFound, name)
		}
	}
	return groups, notFound, nil
}

// committedOffsets returns the group's committed offsets; a group the
// coordinator does not know has none.
func committedOffsets(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	offsets, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets: %w", err)
	}
	var perr error
	offsets.EachError(func(o kadm.OffsetResponse) {
		if perr == nil {
			perr = fmt.Errorf("fetch committed offset of %s-%d: %w", o.Topic, o.Partition, o.Err)
		}
	})
	return offsets, perr
}

// ---- describe ----

type describeFlags struct {
	groups  []string
	all     bool
	members bool
	state   bool
	verbose bool
}

func newGroupsDescribeCmd(s *streams, cf *clientFlags) *cobra.Command {
	var f describeFlags
	c := &cobra.Command{
		Use:   "describe (GROUP... | --all-groups) [--members | --state] [--verbose]",
		Short: "Describe groups: per-partition offsets and lag, or members (--members), or state (--state)",
		RunE: func(c *cobra.Command, args []string) error {
			f.groups = append(f.groups, args...)
			if err := f.validate(); err != nil {
				return fmt.Errorf("describe groups: %w", err)
			}
			what := "describe groups"
			if len(f.groups) == 1 {
				what = fmt.Sprintf("describe group %q", f.groups[0])
			}
			err := withClients(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				return describe(ctx, cl, adm, s, &f)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.StringArrayVar(&f.groups, "group", nil, "group to describe (repeatable; groups may also be given as arguments)")
	fs.BoolVar(&f.all, "all-groups", false, "describe every group")
	fs.BoolVar(&f.members, "members", false, "list the members and how many partitions each is assigned")
	fs.BoolVar(&f.state, "state", false, "show each group's coordinator, assignor, state and member count")
	fs.BoolVar(&f.verbose, "verbose", false, "with --members, each member's assignment; with --state, the group epochs")
	return c
}

func (f *describeFlags) validate() error {
	switch {
	case len(f.groups) == 0 && !f.all:
		return errors.New("give one or more groups, or --all-groups")
	case len(f.groups) > 0 && f.all:
		return errors.New("give groups or --all-groups, not both")
	case f.members && f.state:
		return errors.New("--members and --state cannot be used together")
	case f.verbose && !f.members && !f.state:
		return errors.New("--verbose needs --members or --state")
	}
	return nil
}

// describe prints one table per group, groups separated by a blank line.
// The writers below write to a bytes.Buffer, which cannot fail.
// Notes about a group (no members, rebalancing) go to stderr so that stdout
// stays a table a script can read.
func describe(ctx context.Context, cl *kgo.Client, adm *kadm.Client, s *streams, f *describeFlags) error {
	names := f.groups
	if f.all {
		listed, err := listGroups(ctx, cl, nil, consumerGroupTypes)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		names = names[:0]
		for _, g := range listed {
			names = append(names, g.name)
		}
		if len(names) == 0 {
			return nil
		}
	}
	groups, err := describeGroups(ctx, cl, adm, names)
	if err != nil {
		return err
	}
	// Check every group before printing any, so a typo fails cleanly.
	// With --all-groups, one deleted since it was listed is skipped.
	groups = slices.DeleteFunc(groups, func(g groupInfo) bool { return f.all && !g.exists })
	for _, g := range groups {
		switch {
		case g.exists:
		case len(groups) == 1:
			return errGroupNotFound // the caller names the group
		default:
			return fmt.Errorf("group %q: %w", g.name, errGroupNotFound)
		}
	}

	var offsetTables [][]offsetRow
	if !f.members && !f.state {
		for i := range groups {
			rows, err := offsetRows(ctx, adm, &groups[i])
			if err != nil {
				return fmt.Errorf("group %q: %w", groups[i].name, err)
			}
			offsetTables = append(offsetTables, rows)
		}
	}

	var (
		table   bytes.Buffer // one group's, so that empty ones are skipped
		printed bool
	)
	for i := range groups {
		g := &groups[i]
		switch {
		case g.rebalancing():
			fmt.Fprintf(s.err, "Warning: Consumer group '%s' is rebalancing.\n", g.name)
		case len(g.members) == 0 && !f.state:
			fmt.Fprintf(s.err, "Consumer group '%s' has no active members.\n", g.name)
		}
		table.Reset()
		if printed {
			table.WriteByte('\n')
		}
		mark := table.Len()
		switch {
		case f.state:
			writeGroupState(&table, g, f.verbose)
		case f.members:
			writeGroupMembers(&table, g, f.verbose)
		default:
			writeOffsetRows(&table, g.name, offsetTables[i])
		}
		if table.Len() == mark {
			continue // e.g. --members of a group without any
		}
		if _, err := s.out.Write(table.Bytes()); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		printed = true
	}
	return nil
}

// offsetRow is one partition of describe's default view.
type offsetRow struct {
	topic     string
	partition int32
	committed int64        // -1: nothing committed
	end       int64        // -1: unknown
	member    *groupMember // nil: no member owns the partition
}

// offsetRows lists every partition the group's members own or the group
// has committed for, with the committed offset, the log end offset (the
// high watermark, which a read_uncommitted consumer reads up to) and who
// owns it.
func offsetRows(ctx context.Context, adm *kadm.Client, g *groupInfo) ([]offsetRow, error) {
	committed, err := committedOffsets(ctx, adm, g.name)
	if err != nil {
		return nil, err
	}
	parts := make(kadm.TopicsSet)
	owner := make(map[kadm.Partition]*groupMember)
	for i := range g.members {
		m := &g.members[i]
		m.assigned.Each(func(t string, p int32) {
			parts.Add(t, p)
			owner[kadm.Partition{Topic: t, Partition: p}] = m
		})
	}
	committed.Each(func(o kadm.OffsetResponse) { parts.Add(o.Topic, o.Partition) })
	if len(parts) == 0 {
		return nil, nil
	}

	ends, err := adm.ListEndOffsets(ctx, parts.Topics()...)
	if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
		return nil, fmt.Errorf("list log end offsets: %w", err)
	}
	var rows []offsetRow
	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			row := offsetRow{topic: tp.Topic, partition: p, committed: -1, end: -1,
				member: owner[kadm.Partition{Topic: tp.Topic, Partition: p}]}
			if o, ok := committed.Lookup(tp.Topic, p); ok && o.At >= 0 {
				row.committed = o.At
			}
			// A partition whose end could not be listed (gone, or
			// its leader unreachable) shows "-" rather than failing
			// the whole view.
			if e, ok := ends.Lookup(tp.Topic, p); ok && e.Err == nil {
				row.end = e.Offset
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func writeOffsetRows(w *bytes.Buffer, group string, rows []offsetRow) {
	tw := newTable(w)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	for _, r := range rows {
		lag := "-"
		if r.committed >= 0 && r.end >= 0 {
			lag = strconv.FormatInt(r.end-r.committed, 10)
		}
		id, host, client := "-", "-", "-"
		if r.member != nil {
			id, host, client = dash(r.member.id), dash(r.member.host), dash(r.member.clientID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			group, r.topic, r.partition, offsetCell(r.committed), offsetCell(r.end), lag, id, host, client)
	}
	tw.Flush()
}

func writeGroupMembers(w *bytes.Buffer, g *groupInfo, verbose bool) {
	if len(g.members) == 0 {
		return
	}
	tw := newTable(w)
	header := "GROUP\tCONSUMER-ID\tGROUP-INSTANCE-ID\tHOST\tCLIENT-ID\t#PARTITIONS"
	if verbose {
		header += "\tASSIGNMENT"
	}
	fmt.Fprintln(tw, header)
	for i := range g.members {
		m := &g.members[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d", g.name, dash(m.id), dash(m.instanceID), dash(m.host), dash(m.clientID), m.numAssigned())
		if verbose {
			fmt.Fprintf(tw, "\t%s", formatAssignment(m.assigned))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// formatAssignment prints partitions as kafka-consumer-groups.sh does:
// topic(0,1),other(2); "-" for none.
func formatAssignment(s kadm.TopicsSet) string {
	var b strings.Builder
	for _, tp := range s.Sorted() {
		if len(tp.Partitions) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tp.Topic)
		b.WriteByte('(')
		b.WriteString(joinIDs(tp.Partitions))
		b.WriteByte(')')
	}
	return dash(b.String())
}

func writeGroupState(w *bytes.Buffer, g *groupInfo, verbose bool) {
	tw := newTable(w)
	header := "GROUP\tCOORDINATOR (ID)\tASSIGNMENT-STRATEGY\tSTATE\t#MEMBERS"
	if verbose {
		header += "\tTYPE\tGROUP-EPOCH\tTARGET-ASSIGNMENT-EPOCH"
	}
	fmt.Fprintln(tw, header)
	coordinator := fmt.Sprintf("%s:%d (%d)", g.coordinator.Host, g.coordinator.Port, g.coordinator.NodeID)
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d", g.name, coordinator, dash(g.assignor), g.state, len(g.members))
	if verbose {
		fmt.Fprintf(tw, "\t%s\t%s\t%s", g.typ, offsetCell(int64(g.epoch)), offsetCell(int64(g.assignmentEpoch)))
	}
	fmt.Fprintln(tw)
	tw.Flush()
}

// ---- delete ----

func newGroupsDeleteCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		groups []string
		all    bool
	)
	c := &cobra.Command{
		Use:   "delete (--group G... | --all-groups)",
		Short: "Delete groups that have no members, with their committed offsets",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch {
			case len(groups) == 0 && !all:
				return errors.New("delete groups: --group is required (or --all-groups)")
			case len(groups) > 0 && all:
				return errors.New("delete groups: give --group or --all-groups, not both")
			}
			return withClients(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				return deleteGroups(ctx, cl, adm, s.out, groups, all)
			})
		},
	}
	c.Flags().StringArrayVar(&groups, "group", nil, "group to delete (repeatable)")
	c.Flags().BoolVar(&all, "all-groups", false, "delete every group")
	return c
}

func deleteGroups(ctx context.Context, cl *kgo.Client, adm *kadm.Client, w io.Writer, groups []string, all bool) error {
	if all {
		listed, err := listGroups(ctx, cl, nil, consumerGroupTypes)
		if err != nil {
			return fmt.Errorf("delete groups: list groups: %w", err)
		}
		for _, g := range listed {
			groups = append(groups, g.name)
		}
		if len(groups) == 0 {
			return nil
		}
	}
	groups = dedup(groups)
	what := "delete groups"
	if len(groups) == 1 {
		what = fmt.Sprintf("delete group %q", groups[0])
	}
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		if _, partial := errors.AsType[*kadm.ShardErrors](err); !partial {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	var deleted, failed []string
	for _, name := range groups {
		r, ok := resps[name]
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("%q: no answer from its coordinator", name))
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			failed = append(failed, fmt.Sprintf("%q: %v", name, errGroupNotFound))
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("%q: %v", name, withBrokerMessage(r.Err, r.ErrMessage)))
		default:
			deleted = append(deleted, "'"+name+"'")
		}
	}
	if len(deleted) > 0 {
		fmt.Fprintf(w, "Deletion of requested consumer groups (%s) was successful.\n", strings.Join(deleted, ", "))
	}
	switch {
	case len(failed) == 1 && len(groups) == 1:
		// The group is already named in what.
		_, reason, _ := strings.Cut(failed[0], ": ")
		return fmt.Errorf("%s: %s", what, reason)
	case len(failed) > 0:
		return fmt.Errorf("delete groups: %d of %d failed: %s", len(failed), len(groups), strings.Join(failed, "; "))
	}
	return nil
}

// ---- topic[:partitions] scopes ----

// topicScope is one --topic T or --topic T:P,P argument; nil partitions
// means every partition of the topic.
type topicScope struct {
	topic      string
	partitions []int32
}

// parseTopicScope parses T or T:P,P,... Topic names cannot contain ':'
// (Kafka allows only [a-zA-Z0-9._-]), so the first ':' ends the name.
func parseTopicScope(s string) (topicScope, error) {
	topic, list, hasList := strings.Cut(s, ":")
	if topic == "" {
		return topicScope{}, fmt.Errorf("--topic %q: want TOPIC or TOPIC:PARTITION[,PARTITION]", s)
	}
	sc := topicScope{topic: topic}
	if !hasList {
		return sc, nil
	}
	for _, f := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || p < 0 {
			return topicScope{}, fmt.Errorf("--topic %q: partition %q is not a non-negative number", s, f)
		}
		if !slices.Contains(sc.partitions, int32(p)) {
			sc.partitions = append(sc.partitions, int32(p))
		}
	}
	return sc, nil
}

func parseTopicScopes(args []string) ([]topicScope, error) {
	scopes := make([]topicScope, 0, len(args))
	for _, a := range args {
		sc, err := parseTopicScope(a)
		if err != nil {
			return nil, err
		}
		scopes = append(scopes, sc)
	}
	return scopes, nil
}

// resolveScopes turns scopes into partitions, checking that each topic and
// partition exists: committing or deleting an offset of a partition that
// does not exist would otherwise fail later, less clearly, or not at all.
func resolveScopes(ctx context.Context, adm *kadm.Client, scopes []topicScope) (kadm.TopicsSet, error) {
	set := make(kadm.TopicsSet)
	if len(scopes) == 0 {
		return set, nil
	}
	topics := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		topics = append(topics, sc.topic)
	}
	details, err := adm.ListTopicsWithInternal(ctx, dedup(topics)...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	for _, sc := range scopes {
		d, ok := details[sc.topic]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return nil, fmt.Errorf("topic %q: %w", sc.topic, errTopicNotFound)
		case d.Err != nil:
			return nil, fmt.Errorf("topic %q: %w", sc.topic, d.Err)
		}
		if sc.partitions == nil {
			for p := range d.Partitions {
				set.Add(sc.topic, p)
			}
			continue
		}
		for _, p := range sc.partitions {
			if _, ok := d.Partitions[p]; !ok {
				return nil, fmt.Errorf("partition %d of topic %q does not exist: the topic has %d partitions", p, sc.topic, len(d.Partitions))
			}
			set.Add(sc.topic, p)
		}
	}
	return set, nil
}

// ---- delete-offsets ----

func newGroupsDeleteOffsetsCmd(s *streams, cf *clientFlags) *cobra.Command {
	var (
		group  string
		topics []string
	)
	c := &cobra.Command{
		Use:   "delete-offsets --group G --topic T[:P,P...]...",
		Short: "Delete a group's committed offsets for topics or partitions it no longer consumes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if group == "" {
				return errors.New("delete offsets: --group is required")
			}
			what := fmt.Sprintf("delete offsets of group %q", group)
			if len(topics) == 0 {
				return fmt.Errorf("%s: %w", what, errNeedTopic)
			}
			scopes, err := parseTopicScopes(topics)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			err = withClients(c.Context(), cf, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
				return deleteOffsets(ctx, adm, s.out, group, scopes)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&group, "group", "", "group whose offsets to delete")
	c.Flags().StringArrayVar(&topics, "topic", nil, "topic, or topic:partition,partition, whose offsets to delete (repeatable)")
	return c
}

// deleteOffsets prints a status per partition, as kafka-consumer-groups.sh
// does, and fails if any partition's offset could not be deleted; Kafka
// refuses for topics the group is still subscribed to.
func deleteOffsets(ctx context.Context, adm *kadm.Client, w io.Writer, group string, scopes []topicScope) error {
	parts, err := resolveScopes(ctx, adm, scopes)
	if err != nil {
		return err
	}
	resps, err := adm.DeleteOffsets(ctx, group, parts)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return errGroupNotFound
	}
	if err != nil {
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTATUS")
	var (
		total, failed int
		firstErr      error
	)
	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			total++
			perr, ok := resps.Lookup(tp.Topic, p)
			if !ok {
				perr = errors.New("no answer for the partition")
			}
			status := "Successful"
			if perr != nil {
				status = "Error: " + perr.Error()
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("%s-%d: %w", tp.Topic, p, perr)
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", tp.Topic, p, status)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d partitions failed: %w", failed, total, firstErr)
	}
	return nil
}

// ---- reset-offsets ----

type resetKind int

const (
	resetNone resetKind = iota
	resetEarliest
	resetLatest
	resetToOffset
	resetToDatetime
	resetShiftBy
)

// resetSpec is where reset-offsets moves each partition.
type resetSpec struct {
	kind   resetKind
	n      int64 // --to-offset's offset or --shift-by's shift
	millis int64 // --to-datetime, as Unix milliseconds
}

type resetFlags struct {
	group     string
	topics    []string
	allTopics bool

	toEarliest, toLatest bool
	toOffset, shiftBy    int64
	toDatetime           string

	dryRun, execute bool
}

func newGroupsResetOffsetsCmd(s *streams, cf *clientFlags) *cobra.Command {
	var f resetFlags
	c := &cobra.Command{
		Use: "reset-offsets --group G (--topic T[:P,P...]... | --all-topics) " +
			"(--to-earliest | --to-latest | --to-offset N | --to-datetime D | --shift-by N) (--dry-run | --execute)",
		Short: "Move an inactive group's committed offsets; prints the plan, and commits it with --execute",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			spec, scopes, err := f.parse(c)
			if err != nil {
				return fmt.Errorf("reset offsets: %w", err)
			}
			if !f.dryRun && !f.execute {
				// What Kafka does, so that scripts written for it
				// keep their meaning.
				fmt.Fprintln(s.err, "WARN: No action will be performed as the --execute option is missing. Add --dry-run to keep this behaviour without the warning.")
			}
			err = withClients(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				return resetOffsets(ctx, cl, adm, s, f.group, scopes, f.allTopics, spec, f.execute)
			})
			if err != nil {
				return fmt.Errorf("reset offsets: %w", err)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.group, "group", "", "group whose offsets to reset")
	fs.StringArrayVar(&f.topics, "topic", nil, "topic, or topic:partition,partition, to reset (repeatable)")
	fs.BoolVar(&f.allTopics, "all-topics", false, "reset every partition the group has committed offsets for")
	fs.BoolVar(&f.toEarliest, "to-earliest", false, "reset to the earliest offset (the log start)")
	fs.BoolVar(&f.toLatest, "to-latest", false, "reset to the latest offset (the log end)")
	fs.Int64Var(&f.toOffset, "to-offset", 0, "reset to this offset, kept within [earliest, latest]")
	fs.StringVar(&f.toDatetime, "to-datetime", "", "reset to the first offset at or after this time, YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm] (no zone: local time)")
	fs.Int64Var(&f.shiftBy, "shift-by", 0, "move each committed offset by N (negative: back), kept within [earliest, latest]")
	fs.BoolVar(&f.dryRun, "dry-run", false, "only print the new offsets (the default)")
	fs.BoolVar(&f.execute, "execute", false, "commit the new offsets")
	return c
}

// parse checks the flag combination, as kafka-consumer-groups.sh does:
// one group, one scope, one target.
func (f *resetFlags) parse(c *cobra.Command) (resetSpec, []topicScope, error) {
	var spec resetSpec
	if f.group == "" {
		return spec, nil, errors.New("--group is required")
	}
	switch {
	case len(f.topics) == 0 && !f.allTopics:
		return spec, nil, errors.New("give the partitions to reset: --topic or --all-topics")
	case len(f.topics) > 0 && f.allTopics:
		return spec, nil, errors.New("--topic and --all-topics cannot be used together")
	case f.dryRun && f.execute:
		return spec, nil, errors.New("--dry-run and --execute cannot be used together")
	}
	scopes, err := parseTopicScopes(f.topics)
	if err != nil {
		return spec, nil, err
	}

	changed := c.Flags().Changed
	var chosen []string
	if f.toEarliest {
		chosen, spec.kind = append(chosen, "--to-earliest"), resetEarliest
	}
	if f.toLatest {
		chosen, spec.kind = append(chosen, "--to-latest"), resetLatest
	}
	if changed("to-offset") {
		chosen, spec.kind, spec.n = append(chosen, "--to-offset"), resetToOffset, f.toOffset
	}
	if changed("to-datetime") {
		chosen, spec.kind = append(chosen, "--to-datetime"), resetToDatetime
		t, err := parseDatetime(f.toDatetime)
		if err != nil {
			return spec, nil, err
		}
		spec.millis = t.UnixMilli()
	}
	if changed("shift-by") {
		chosen, spec.kind, spec.n = append(chosen, "--shift-by"), resetShiftBy, f.shiftBy
	}
	switch len(chosen) {
	case 0:
		return spec, nil, errors.New("give where to reset to: --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by")
	case 1:
	default:
		return spec, nil, fmt.Errorf("%s cannot be used together", strings.Join(chosen, " and "))
	}
	if spec.kind == resetToOffset && spec.n < 0 {
		return spec, nil, fmt.Errorf("--to-offset %d: want a non-negative offset", spec.n)
	}
	return spec, scopes, nil
}

// parseDatetime accepts Kafka's --to-datetime format,
// YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +hh:mm, -hh:mm); the
// milliseconds are optional too. Without a zone the time is local, as in
// Kafka.
func parseDatetime(s string) (time.Time, error) {
	// Go parses a fractional second after the seconds even when the
	// layout has none.
	if t, err := time.Parse("2006-01-02T15:04:05Z07:00", s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--to-datetime %q: want YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm]", s)
}

func resetOffsets(ctx context.Context, cl *kgo.Client, adm *kadm.Client, s *streams,
	group string, scopes []topicScope, allTopics bool, spec resetSpec, execute bool,
) error {
	described, err := describeGroups(ctx, cl, adm, []string{group})
	if err != nil {
		return err
	}
	if g := described[0]; g.active() {
		return &activeGroupError{group: group, state: g.state}
	}

	var committed kadm.OffsetResponses
	if allTopics || spec.kind == resetShiftBy {
		if committed, err = committedOffsets(ctx, adm, group); err != nil {
			return err
		}
	}
	var parts kadm.TopicsSet
	if allTopics {
		parts = make(kadm.TopicsSet)
		committed.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 {
				parts.Add(o.Topic, o.Partition)
			}
		})
	} else if parts, err = resolveScopes(ctx, adm, scopes); err != nil {
		return err
	}

	plan, err := planReset(ctx, adm, s.err, parts, committed, spec)
	if err != nil {
		return err
	}
	if execute && len(plan) > 0 {
		resps, err := adm.CommitOffsets(ctx, group, plan)
		if err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
	}
	tw := newTable(s.out)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")
	for _, o := range plan.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", group, o.Topic, o.Partition, o.At)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// activeGroupError refuses to reset the offsets of a group with members,
// who would overwrite the reset with their next commit. It is worded as
// kafka-consumer-groups.sh words it, which operators know.
type activeGroupError struct{ group, state string }

func (e *activeGroupError) Error() string {
	return fmt.Sprintf("Assignments can only be reset if the group '%s' is inactive, but the current state is %s.", e.group, e.state)
}

// planReset computes each partition's new offset. Targets given as numbers
// (--to-offset, --shift-by) are kept within the partition's
// [earliest, latest], with a warning, as Kafka does: a committed offset
// outside the log would only make consumers fall back to their reset
// policy.
func planReset(ctx context.Context, adm *kadm.Client, warn io.Writer, parts kadm.TopicsSet,
	committed kadm.OffsetResponses, spec resetSpec,
) (kadm.Offsets, error) {
	plan := make(kadm.Offsets)
	if len(parts) == 0 {
		return plan, nil
	}
	topics := parts.Topics()
	list := func(what string, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		listed, err := fn(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", what, err)
		}
		return listed, nil
	}
	starts, err := list("earliest", adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	ends, err := list("latest", adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	var byTime kadm.ListedOffsets
	if spec.kind == resetToDatetime {
		byTime, err = list("by-time", func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, spec.millis, ts...)
		})
		if err != nil {
			return nil, err
		}
	}
	lookup := func(listed kadm.ListedOffsets, what, t string, p int32) (int64, error) {
		o, ok := listed.Lookup(t, p)
		switch {
		case !ok:
			return 0, fmt.Errorf("list %s offset of %s-%d: no answer for the partition", what, t, p)
		case o.Err != nil:
			return 0, fmt.Errorf("list %s offset of %s-%d: %w", what, t, p, o.Err)
		}
		return o.Offset, nil
	}

	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			t := tp.Topic
			earliest, err := lookup(starts, "earliest", t, p)
			if err != nil {
				return nil, err
			}
			latest, err := lookup(ends, "latest", t, p)
			if err != nil {
				return nil, err
			}
			var at int64
			switch spec.kind {
			case resetEarliest:
				at = earliest
			case resetLatest:
				at = latest
			case resetToDatetime:
				// kadm answers the log end when no record is at
				// or after the time, as Kafka's tool does.
				if at, err = lookup(byTime, "by-time", t, p); err != nil {
					return nil, err
				}
			case resetToOffset:
				at = clampOffset(warn, spec.n, earliest, latest, t, p)
			case resetShiftBy:
				o, ok := committed.Lookup(t, p)
				if !ok || o.At < 0 {
					return nil, fmt.Errorf("cannot shift the offset of %s-%d: the group has no committed offset for it", t, p)
				}
				at = clampOffset(warn, shifted(o.At, spec.n), earliest, latest, t, p)
			}
			plan.Add(kadm.Offset{Topic: t, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	return plan, nil
}

// shifted is at+by without overflowing: an out-of-range result is clamped
// afterwards anyway.
func shifted(at, by int64) int64 {
	switch {
	case by > 0 && at > (1<<63-1)-by:
		return 1<<63 - 1
	case by < 0 && at < (-1<<63)-by:
		return -1 << 63
	}
	return at + by
}

func clampOffset(warn io.Writer, want, earliest, latest int64, t string, p int32) int64 {
	switch {
	case want < earliest:
		fmt.Fprintf(warn, "New offset (%d) is lower than earliest offset for topic partition %s-%d. Value will be set to %d\n", want, t, p, earliest)
		return earliest
	case want > latest:
		fmt.Fprintf(warn, "New offset (%d) is higher than latest offset for topic partition %s-%d. Value will be set to %d\n", want, t, p, latest)
		return latest
	}
	return want
}
