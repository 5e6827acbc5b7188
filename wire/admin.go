package wire

import (
	"context"
	"time"

	"github.com/troupe-io/troupe/metadata"
)

// Helpers shared by the administrative handlers.

// defaultAdminTimeout bounds a Backend call whose request carries no
// timeout (or a non-positive one): our admin operations are synchronous,
// so there is no "fire and forget" mode to honour.
const defaultAdminTimeout = 30 * time.Second

// adminContext bounds a Backend call by the request's timeout and by the
// connection's life.
func adminContext(req *request, timeoutMillis int32) (context.Context, context.CancelFunc) {
	parent := req.ctx
	if parent == nil {
		parent = context.Background()
	}
	d := defaultAdminTimeout
	if timeoutMillis > 0 {
		d = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(parent, d)
}

// AclOperation codes, for the authorized-operations bit fields that
// Metadata and DescribeCluster return on request. Troupe has no
// authorizer, so, like Kafka without one, every operation a resource
// type supports is allowed.
const (
	aclRead            = 3
	aclWrite           = 4
	aclCreate          = 5
	aclDelete          = 6
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12

	topicAuthorizedOps = 1<<aclRead | 1<<aclWrite | 1<<aclCreate | 1<<aclDelete | 1<<aclAlter |
		1<<aclDescribe | 1<<aclDescribeConfigs | 1<<aclAlterConfigs
	clusterAuthorizedOps = 1<<aclCreate | 1<<aclClusterAction | 1<<aclDescribeConfigs |
		1<<aclAlterConfigs | 1<<aclIdempotentWrite | 1<<aclAlter | 1<<aclDescribe

	// authorizedOpsOmitted is the schema default: "not requested".
	authorizedOpsOmitted = -2147483648
)

// liveBroker reports whether id is a registered, unfenced broker:
// one clients can be sent to.
func liveBroker(img *metadata.Image, id int32) bool {
	b, ok := img.Broker(id)
	return ok && !b.Fenced
}

// controllerID is the id clients should send controller-bound requests
// (CreateTopics, …) to. Every node forwards admin operations through its
// Backend, so when the active controller is not a live broker — or none
// is known — any live broker will do, and this one is live. Kafka's KRaft
// brokers likewise answer with an alive broker rather than the quorum
// controller clients cannot reach.
func (s *Server) controllerID(img *metadata.Image) int32 {
	if liveBroker(img, img.ControllerID) {
		return img.ControllerID
	}
	return s.b.NodeID()
}

// staticBrokerConfig maps the broker configs that are explicitly set to
// their values, as metadata.EffectiveTopicConfigs takes them.
func staticBrokerConfig(cfgs []metadata.ConfigValue) map[string]string {
	m := make(map[string]string, len(cfgs))
	for _, c := range cfgs {
		if c.Source != metadata.SourceDefault {
			m[c.Name] = c.Value
		}
	}
	return m
}

// stringPtr is for nullable string fields.
func stringPtr(s string) *string { return &s }
