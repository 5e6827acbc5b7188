package wire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
)

// OffsetsTopic is Kafka's internal topic of committed offsets and group
// metadata; tools that read it (Burrow, say) find it under this name.
const OffsetsTopic = "__consumer_offsets"

// GroupCoordinator is the broker that coordinates groupID in img: the
// leader of the offsets partition the group id hashes to (Java's
// String.hashCode, as Kafka). It fails with COORDINATOR_NOT_AVAILABLE
// while the offsets topic does not exist or that partition has no live
// leader. Backends answer FindCoordinator with it once they made sure the
// offsets topic exists.
func GroupCoordinator(img *metadata.Image, groupID string) (metadata.Broker, error) {
	t := img.Topic(OffsetsTopic)
	if t == nil {
		return metadata.Broker{}, fmt.Errorf("offsets topic not created yet: %w", kerr.CoordinatorNotAvailable)
	}
	p := group.PartitionFor(groupID, int32(len(t.Partitions)))
	leader := t.Partitions[p].Leader
	b, ok := img.Broker(leader)
	if leader < 0 || !ok || b.Fenced {
		return metadata.Broker{}, fmt.Errorf("offsets partition %d has no leader: %w", p, kerr.CoordinatorNotAvailable)
	}
	return b, nil
}
