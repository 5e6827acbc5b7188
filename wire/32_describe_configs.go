package wire

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(32, 0, 4, handleDescribeConfigs) }

// handleDescribeConfigs describes TOPIC resources (their effective
// configs) and this broker's BROKER resource (named by its node id, or ""
// for the broker-wide view). Other resource types are INVALID_REQUEST,
// per resource. ConfigNames, when not null, filters by name; synonyms
// (v1+) list where a value could come from, most specific first, and
// documentation (v3+) is included on request.
func handleDescribeConfigs(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.DescribeConfigsRequest)
	resp := kreq.ResponseKind().(*kmsg.DescribeConfigsResponse)
	v := req.version
	synonyms := v >= 1 && kreq.IncludeSynonyms
	docs := v >= 3 && kreq.IncludeDocumentation

	// The broker's configs are what topic configs fall back to; fetched
	// once, when a resource needs them.
	var (
		brokerCfgs    []metadata.ConfigValue
		haveBrokerCfg bool
	)
	brokerConfigs := func() []metadata.ConfigValue {
		if !haveBrokerCfg {
			brokerCfgs, haveBrokerCfg = s.b.BrokerConfigs(), true
		}
		return brokerCfgs
	}

	resp.Resources = make([]kmsg.DescribeConfigsResponseResource, 0, len(kreq.Resources))
	for _, r := range kreq.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName

		var (
			cfgs []metadata.ConfigValue
			err  error
		)
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err = metadata.ValidTopicName(r.ResourceName); err == nil {
				cfgs, err = s.b.TopicConfigs(r.ResourceName)
			}
		case kmsg.ConfigResourceTypeBroker:
			if err = s.checkBrokerResource(r.ResourceName); err == nil {
				cfgs = brokerConfigs()
			}
		default:
			err = fmt.Errorf("describing configs of resource type %d is not supported; only topics (2) and brokers (4) are: %w", r.ResourceType, kerr.InvalidRequest)
		}
		if err != nil {
			rr.ErrorCode, rr.ErrorMessage = errCode(err), errMessage(err)
			resp.Resources = append(resp.Resources, rr)
			continue
		}

		rr.Configs = make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(cfgs))
		for _, c := range cfgs {
			if r.ConfigNames != nil && !slices.Contains(r.ConfigNames, c.Name) {
				continue
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name = c.Name
			if !c.Sensitive {
				rc.Value = stringPtr(c.Value)
			}
			rc.ReadOnly = c.ReadOnly
			rc.IsDefault = c.Source == metadata.SourceDefault // v0 only
			rc.Source = kmsg.ConfigSource(c.Source)
			rc.IsSensitive = c.Sensitive
			rc.ConfigType = kmsg.ConfigType(c.Type)
			if docs && c.Doc != "" {
				rc.Documentation = stringPtr(c.Doc)
			}
			if synonyms {
				if r.ResourceType == kmsg.ConfigResourceTypeTopic {
					rc.ConfigSynonyms = topicConfigSynonyms(c, brokerConfigs())
				} else {
					rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{synonym(c.Name, rc.Value, c.Source)}
				}
			}
			rr.Configs = append(rr.Configs, rc)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return respond(resp)
}

// checkBrokerResource accepts the names a BROKER resource sent to this
// node may have: its node id, or "" for the broker-wide view. Kafka
// answers INVALID_REQUEST for another broker's id.
func (s *Server) checkBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return fmt.Errorf("broker resource name %q is not a broker id: %w", name, kerr.InvalidRequest)
	}
	if int32(id) != s.b.NodeID() {
		return fmt.Errorf("broker resource names broker %d, but this is broker %d; send it to that broker or use the empty name: %w", id, s.b.NodeID(), kerr.InvalidRequest)
	}
	return nil
}

// topicConfigSynonyms lists, most specific first, the values a topic
// config resolves through: the topic's override, the broker's setting
// of the corresponding broker key, and the built-in default.
func topicConfigSynonyms(c metadata.ConfigValue, brokerCfgs []metadata.ConfigValue) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	value := func(v string) *string {
		if c.Sensitive {
			return nil
		}
		return stringPtr(v)
	}
	if c.Source == metadata.SourceTopic {
		out = append(out, synonym(c.Name, value(c.Value), metadata.SourceTopic))
	}
	if c.BrokerKey == "" {
		if c.Source == metadata.SourceDefault {
			out = append(out, synonym(c.Name, value(c.Value), metadata.SourceDefault))
		}
		return out
	}
	def, hasDef := metadata.TopicConfigDefByName(c.Name)
	i := slices.IndexFunc(brokerCfgs, func(b metadata.ConfigValue) bool { return b.Name == c.BrokerKey })
	if i >= 0 && brokerCfgs[i].Source != metadata.SourceDefault {
		out = append(out, synonym(c.BrokerKey, value(brokerCfgs[i].Value), brokerCfgs[i].Source))
	}
	switch {
	case i >= 0 && brokerCfgs[i].Source == metadata.SourceDefault:
		out = append(out, synonym(c.BrokerKey, value(brokerCfgs[i].Value), metadata.SourceDefault))
	case hasDef:
		out = append(out, synonym(c.BrokerKey, value(def.Default), metadata.SourceDefault))
	}
	return out
}

func synonym(name string, value *string, source metadata.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, value, kmsg.ConfigSource(source)
	return s
}
