package metadata

// CreateTopic asks the controller for a new topic. NumPartitions and
// ReplicationFactor of -1 mean the broker defaults (num.partitions,
// default.replication.factor). Assignment, when non-empty, gives the
// replicas of each partition explicitly.
type CreateTopic struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	Assignment        [][]int32
	Configs           map[string]*string
}

// CreatePartitions grows a topic to Count partitions.
type CreatePartitions struct {
	Topic      string
	Count      int32
	Assignment [][]int32 // optional, for the new partitions only
}

// ConfigOpType is IncrementalAlterConfigs' operation.
type ConfigOpType int8

const (
	ConfigSet      ConfigOpType = 0
	ConfigDelete   ConfigOpType = 1
	ConfigAppend   ConfigOpType = 2
	ConfigSubtract ConfigOpType = 3
)

// ConfigOp changes one topic config.
type ConfigOp struct {
	Name  string
	Op    ConfigOpType
	Value *string
}

// ConfigSource says where an effective config value comes from, with
// Kafka's DescribeConfigs source codes.
type ConfigSource int8

const (
	SourceTopic        ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceStaticBroker ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefault      ConfigSource = 5 // DEFAULT_CONFIG
)

// ConfigValue is one effective topic config.
type ConfigValue struct {
	Name      string
	Value     string
	Source    ConfigSource
	Sensitive bool
	ReadOnly  bool
	Type      ConfigType
	Doc       string
	// Synonyms lists the broker-level key the topic config falls back to.
	BrokerKey string
}
