package wire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

// handleIncrementalAlterConfigs changes topic configs (set, delete,
// append to or subtract from a list). Brokers take their configs from
// their config file only, so altering a BROKER (or BROKER_LOGGER)
// resource fails with POLICY_VIOLATION and a message saying so: the
// request is well-formed, it is our policy that refuses it, and a client
// must not retry.
func handleIncrementalAlterConfigs(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := kreq.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)

	type resource struct {
		t    kmsg.ConfigResourceType
		name string
	}
	counts := make(map[resource]int, len(kreq.Resources))
	for _, r := range kreq.Resources {
		counts[resource{r.ResourceType, r.ResourceName}]++
	}

	ctx, cancel := adminContext(req, 0)
	defer cancel()
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, 0, len(kreq.Resources))
	for _, r := range kreq.Resources {
		var err error
		switch {
		case counts[resource{r.ResourceType, r.ResourceName}] > 1:
			err = fmt.Errorf("resource %q of type %d appears more than once in the request: %w", r.ResourceName, r.ResourceType, kerr.InvalidRequest)
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			var ops []metadata.ConfigOp
			if ops, err = configOps(r.Configs); err == nil {
				err = s.b.AlterTopicConfigs(ctx, r.ResourceName, ops, kreq.ValidateOnly)
			}
		case r.ResourceType == kmsg.ConfigResourceTypeBroker || r.ResourceType == kmsg.ConfigResourceTypeBrokerLogger:
			err = fmt.Errorf("dynamic broker configs are not supported: set broker configs in the broker's config file and restart it: %w", kerr.PolicyViolation)
		default:
			err = fmt.Errorf("altering configs of resource type %d is not supported; only topics (2) are: %w", r.ResourceType, kerr.InvalidRequest)
		}
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.ErrorCode, rr.ErrorMessage = errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, rr)
	}
	return respond(resp)
}

// configOps converts a resource's config changes, rejecting unknown
// operations and names changed twice (the result would depend on order).
func configOps(cfgs []kmsg.IncrementalAlterConfigsRequestResourceConfig) ([]metadata.ConfigOp, error) {
	ops := make([]metadata.ConfigOp, 0, len(cfgs))
	seen := make(map[string]bool, len(cfgs))
	for _, c := range cfgs {
		if seen[c.Name] {
			return nil, fmt.Errorf("config %q is changed more than once in one resource: %w", c.Name, kerr.InvalidRequest)
		}
		seen[c.Name] = true
		var op metadata.ConfigOpType
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			op = metadata.ConfigSet
		case kmsg.IncrementalAlterConfigOpDelete:
			op = metadata.ConfigDelete
		case kmsg.IncrementalAlterConfigOpAppend:
			op = metadata.ConfigAppend
		case kmsg.IncrementalAlterConfigOpSubtract:
			op = metadata.ConfigSubtract
		default:
			return nil, fmt.Errorf("unknown config operation %d for config %q: %w", c.Op, c.Name, kerr.InvalidRequest)
		}
		if op != metadata.ConfigDelete && c.Value == nil {
			return nil, fmt.Errorf("null value for config %q: %w", c.Name, kerr.InvalidConfig)
		}
		ops = append(ops, metadata.ConfigOp{Name: c.Name, Op: op, Value: c.Value})
	}
	return ops, nil
}
