package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(apiVersionsKey, 0, 4, handleApiVersions) }

// handleApiVersions advertises every API that has a handler, at the
// versions it handles. v3+ carries tagged feature fields, which stay
// empty: Troupe negotiates no features.
func handleApiVersions(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.ApiVersionsRequest)
	resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	// KIP-511: v3+ names the client software; Kafka rejects names that
	// do not match its pattern, and so do we, so that a misbehaving
	// client fails the same way against both.
	if req.version >= 3 && (!validSoftwareField(kreq.ClientSoftwareName) || !validSoftwareField(kreq.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return respond(resp)
	}
	resp.ApiKeys = s.apiKeys
	return respond(resp)
}

// apiVersionsUnsupported is the answer to an ApiVersions request above
// our highest version, in the v0 format (KIP-511): UNSUPPORTED_VERSION
// with the full table, from which the client picks the version to retry
// with.
func (s *Server) apiVersionsUnsupported() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiKeys
	return resp
}

// validSoftwareField reports whether v matches Kafka's pattern for
// ClientSoftwareName/Version: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareField(v string) bool {
	if v == "" {
		return false
	}
	alnum := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if !alnum(v[0]) || !alnum(v[len(v)-1]) {
		return false
	}
	for i := 1; i < len(v)-1; i++ {
		if c := v[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
