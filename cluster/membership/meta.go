package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
)

// namePrefix starts every Troupe node's memberlist name; the rest is the
// node id in decimal.
const namePrefix = "troupe-"

func nodeName(id int32) string { return namePrefix + strconv.FormatInt(int64(id), 10) }

// parseNodeName returns the node id in a memberlist name, accepting only
// the exact form nodeName produces, so that one id has one name.
func parseNodeName(name string) (int32, bool) {
	digits, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 32)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != digits {
		return 0, false
	}
	return int32(id), true
}

// metaVersion is the wire version written into node metadata. Decoding
// accepts any version >= 1: JSON lets later versions add fields that
// older nodes ignore, which is what a rolling upgrade needs. A change that
// alters the meaning of an existing field must use a new field name.
const metaVersion = 1

// wireMeta is NodeMeta as gossiped. JSON rather than a packed binary form
// because the metadata is small (limit 512 bytes), decoded only when
// membership changes, and must survive mixed versions.
type wireMeta struct {
	Version        int      `json:"v"`
	NodeID         int32    `json:"id"`
	Incarnation    int64    `json:"inc"`
	KafkaAddr      string   `json:"kafka,omitempty"`
	ControllerAddr string   `json:"ctrl,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	// Leaving is set by Close just before the node leaves, so peers can
	// tell a graceful leave (Left) from a crash (Failed): memberlist's
	// own notification does not say which.
	Leaving bool `json:"leaving,omitempty"`
}

// encodeMeta encodes m; it fails if the result exceeds memberlist's
// limit, on which memberlist would panic.
func encodeMeta(m NodeMeta, leaving bool) ([]byte, error) {
	b, err := json.Marshal(wireMeta{
		Version:        metaVersion,
		NodeID:         m.NodeID,
		Incarnation:    m.Incarnation,
		KafkaAddr:      m.KafkaAddr,
		ControllerAddr: m.ControllerAddr,
		Roles:          m.Roles,
		Leaving:        leaving,
	})
	if err != nil {
		return nil, fmt.Errorf("membership: encode node meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("membership: node meta is %d bytes encoded, limit %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

var errNoMeta = errors.New("membership: node has no metadata")

// decodeMeta decodes metadata received from the network. It never panics
// and checks what the rest of the package relies on.
func decodeMeta(b []byte) (meta NodeMeta, leaving bool, err error) {
	if len(b) == 0 {
		return NodeMeta{}, false, errNoMeta
	}
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return NodeMeta{}, false, fmt.Errorf("membership: decode node meta: %w", err)
	}
	if w.Version < 1 {
		return NodeMeta{}, false, fmt.Errorf("membership: node meta version %d", w.Version)
	}
	meta = NodeMeta{
		NodeID:         w.NodeID,
		Incarnation:    w.Incarnation,
		KafkaAddr:      w.KafkaAddr,
		ControllerAddr: w.ControllerAddr,
		Roles:          w.Roles,
	}
	return meta, w.Leaving, nil
}

// decodeNode checks that n is a Troupe node whose name and metadata agree
// and returns its id and metadata.
func decodeNode(n *memberlist.Node) (int32, NodeMeta, bool, error) {
	id, ok := parseNodeName(n.Name)
	if !ok {
		return 0, NodeMeta{}, false, fmt.Errorf("membership: %q is not a Troupe node name", n.Name)
	}
	meta, leaving, err := decodeMeta(n.Meta)
	if err != nil {
		return 0, NodeMeta{}, false, fmt.Errorf("membership: node %q: %w", n.Name, err)
	}
	if meta.NodeID != id {
		return 0, NodeMeta{}, false, fmt.Errorf("membership: node %q carries node id %d", n.Name, meta.NodeID)
	}
	return id, meta, leaving, nil
}
