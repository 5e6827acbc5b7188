package wire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 2, handleDescribeCluster) }

// Endpoint types of DescribeCluster v1+ (KIP-919).
const (
	endpointBroker     = 1
	endpointController = 2
)

// handleDescribeCluster describes the cluster as its brokers see it.
// Troupe nodes serve clients only on broker endpoints, so asking for the
// controller endpoints is MISMATCHED_ENDPOINT_TYPE and an unknown type is
// UNSUPPORTED_ENDPOINT_TYPE (both INVALID_REQUEST at v0), as Kafka
// answers. Fenced brokers are listed only when v2 asks for them.
func handleDescribeCluster(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.DescribeClusterRequest)
	resp := kreq.ResponseKind().(*kmsg.DescribeClusterResponse)
	fail := func(code *kerr.Error, msg string) reply {
		if req.version == 0 {
			code = kerr.InvalidRequest
		}
		resp.ErrorCode, resp.ErrorMessage = code.Code, stringPtr(msg)
		return respond(resp)
	}
	switch kreq.EndpointType {
	case endpointBroker:
	case endpointController:
		return fail(kerr.MismatchedEndpointType, "the request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
	default:
		return fail(kerr.UnsupportedEndpointType, fmt.Sprintf("unsupported endpoint type %d", kreq.EndpointType))
	}

	img := s.b.Image()
	resp.EndpointType = endpointBroker
	resp.ClusterID = img.ClusterID
	resp.ControllerID = s.controllerID(img)
	if kreq.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAuthorizedOps
	}
	withFenced := req.version >= 2 && kreq.IncludeFencedBrokers
	for _, b := range img.Brokers {
		if b.Fenced && !withFenced {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.IsFenced = b.ID, b.Host, b.Port, b.Fenced
		if b.Rack != "" {
			rb.Rack = stringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return respond(resp)
}
