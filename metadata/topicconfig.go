package metadata

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ConfigType is a config's type as DescribeConfigs v3+ reports it.
type ConfigType int8

const (
	TypeBoolean  ConfigType = 1
	TypeString   ConfigType = 2
	TypeInt      ConfigType = 3
	TypeShort    ConfigType = 4
	TypeLong     ConfigType = 5
	TypeDouble   ConfigType = 6
	TypeList     ConfigType = 7
	TypeClass    ConfigType = 8
	TypePassword ConfigType = 9
)

// TopicConfigDef defines one supported topic-level config: its type, the
// broker key whose value is its default, and how values are checked.
type TopicConfigDef struct {
	Name      string
	BrokerKey string // empty when the default is Default
	Default   string // used when BrokerKey is empty or unset
	Type      ConfigType
	Doc       string
	// Allowed, when set, is the closed set of legal values (for lists,
	// of each element).
	Allowed []string
	// Min is the smallest legal value for numeric types.
	Min int64
}

// TopicConfigDefs are the topic configs Troupe supports, sorted by name.
// Unknown names are rejected with INVALID_CONFIG rather than silently
// stored, so a typo never passes for a setting.
var TopicConfigDefs = []TopicConfigDef{
	{Name: "cleanup.policy", BrokerKey: "log.cleanup.policy", Default: "delete", Type: TypeList, Allowed: []string{"delete", "compact"}, Doc: "delete: retention removes old segments; compact: keep the latest value per key."},
	{Name: "compression.type", BrokerKey: "compression.type", Default: "producer", Type: TypeString, Allowed: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}, Doc: "Batches are stored as the producer compressed them."},
	{Name: "delete.retention.ms", Default: "86400000", Type: TypeLong, Min: 0},
	{Name: "flush.messages", BrokerKey: "log.flush.interval.messages", Default: "", Type: TypeLong, Min: 1, Doc: "Unset: every produce is fsynced before it is acknowledged (group commit)."},
	{Name: "flush.ms", BrokerKey: "log.flush.interval.ms", Default: "", Type: TypeLong, Min: 0, Doc: "Unset: every produce is fsynced before it is acknowledged (group commit)."},
	{Name: "max.message.bytes", BrokerKey: "message.max.bytes", Default: "1048588", Type: TypeInt, Min: 0},
	{Name: "message.timestamp.type", BrokerKey: "log.message.timestamp.type", Default: "CreateTime", Type: TypeString, Allowed: []string{"CreateTime", "LogAppendTime"}},
	{Name: "min.insync.replicas", BrokerKey: "min.insync.replicas", Default: "1", Type: TypeInt, Min: 1},
	{Name: "retention.bytes", BrokerKey: "log.retention.bytes", Default: "-1", Type: TypeLong, Min: -1},
	{Name: "retention.ms", BrokerKey: "log.retention.ms", Default: "604800000", Type: TypeLong, Min: -1},
	{Name: "segment.bytes", BrokerKey: "log.segment.bytes", Default: "1073741824", Type: TypeInt, Min: 14},
	{Name: "segment.ms", BrokerKey: "log.roll.ms", Default: "604800000", Type: TypeLong, Min: 1},
	{Name: "unclean.leader.election.enable", BrokerKey: "unclean.leader.election.enable", Default: "false", Type: TypeBoolean},
}

// TopicConfigDefByName finds a definition.
func TopicConfigDefByName(name string) (TopicConfigDef, bool) {
	for _, d := range TopicConfigDefs {
		if d.Name == name {
			return d, true
		}
	}
	return TopicConfigDef{}, false
}

// ValidateTopicConfig checks one name/value pair. The error wraps
// kerr.InvalidConfig.
func ValidateTopicConfig(name, value string) error {
	d, ok := TopicConfigDefByName(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q: %w", name, kerr.InvalidConfig)
	}
	bad := func(why string) error {
		return fmt.Errorf("invalid value %q for topic config %q: %s: %w", value, name, why, kerr.InvalidConfig)
	}
	switch d.Type {
	case TypeInt, TypeLong, TypeShort:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad("not an integer")
		}
		if n < d.Min {
			return bad(fmt.Sprintf("must be at least %d", d.Min))
		}
		if d.Type == TypeInt && n > 1<<31-1 {
			return bad("out of range for an int")
		}
	case TypeBoolean:
		if value != "true" && value != "false" {
			return bad("must be true or false")
		}
	case TypeList:
		for _, e := range strings.Split(value, ",") {
			if !contains(d.Allowed, strings.TrimSpace(e)) {
				return bad(fmt.Sprintf("allowed values are %s", strings.Join(d.Allowed, ", ")))
			}
		}
	default:
		if len(d.Allowed) > 0 && !contains(d.Allowed, value) {
			return bad(fmt.Sprintf("allowed values are %s", strings.Join(d.Allowed, ", ")))
		}
	}
	return nil
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// EffectiveTopicConfigs resolves every supported config of topic t: the
// topic's override, else the broker's setting of BrokerKey (brokerConfig
// holds the broker's explicitly set keys and their values), else the
// built-in default.
func EffectiveTopicConfigs(t *Topic, brokerConfig map[string]string) []ConfigValue {
	out := make([]ConfigValue, 0, len(TopicConfigDefs))
	for _, d := range TopicConfigDefs {
		cv := ConfigValue{Name: d.Name, Value: d.Default, Source: SourceDefault, Type: d.Type, Doc: d.Doc, BrokerKey: d.BrokerKey}
		if d.BrokerKey != "" {
			if v, ok := brokerConfig[d.BrokerKey]; ok {
				cv.Value, cv.Source = v, SourceStaticBroker
			}
		}
		if t != nil {
			if v, ok := t.Configs[d.Name]; ok {
				cv.Value, cv.Source = v, SourceTopic
			}
		}
		out = append(out, cv)
	}
	return out
}
