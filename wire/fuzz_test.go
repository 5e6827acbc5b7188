package wire

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// fuzzSeeds are valid requests of several keys and versions.
func fuzzSeeds() []kmsg.Request {
	var out []kmsg.Request
	add := func(r kmsg.Request, versions ...int16) {
		for _, v := range versions {
			// Each version gets its own copy: SetVersion mutates.
			c := kmsg.RequestForKey(r.Key())
			c.SetVersion(v)
			r.SetVersion(v)
			if err := c.ReadFrom(r.AppendTo(nil)); err != nil {
				panic(err)
			}
			out = append(out, c)
		}
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "kgo", "v1.22.2"
	add(av, 0, 3, 4)

	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: ptrTo("fuzz")}, {Topic: ptrTo("auto")}}
	md.AllowAutoTopicCreation = true
	md.IncludeTopicAuthorizedOperations = true
	add(md, 0, 1, 4, 8, 9, 12, 13)
	mdID := kmsg.NewPtrMetadataRequest()
	mdID.Topics = []kmsg.MetadataRequestTopic{{TopicID: [16]byte{1}}}
	add(mdID, 12)

	ct := kmsg.NewPtrCreateTopicsRequest()
	t1 := kmsg.NewCreateTopicsRequestTopic()
	t1.Topic, t1.NumPartitions, t1.ReplicationFactor = "new", 2, 1
	t1.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: ptrTo("1000")}}
	t2 := kmsg.NewCreateTopicsRequestTopic()
	t2.Topic, t2.NumPartitions, t2.ReplicationFactor = "manual", -1, -1
	t2.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	ct.Topics = []kmsg.CreateTopicsRequestTopic{t1, t2}
	add(ct, 0, 4, 5, 7)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"fuzz"}
	add(dt, 0, 5)
	dt6 := kmsg.NewPtrDeleteTopicsRequest()
	dt6.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: ptrTo("fuzz")}, {TopicID: [16]byte{2}}}
	add(dt6, 6)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "fuzz", Count: 3}}
	add(cp, 0, 3)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.IncludeSynonyms, dc.IncludeDocumentation = true, true
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", ConfigNames: []string{"num.partitions"}},
	}
	add(dc, 0, 1, 4)

	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: ptrTo("compact")}}}}
	add(ia, 0, 1)

	add(kmsg.NewPtrDescribeClusterRequest(), 0, 1, 2)

	ip := kmsg.NewPtrInitProducerIDRequest()
	add(ip, 0, 4)
	ipTxn := kmsg.NewPtrInitProducerIDRequest()
	ipTxn.TransactionalID = ptrTo("txn")
	add(ipTxn, 5)

	// Data-path requests, so the fuzzer reaches those handlers too.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "fuzz", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
	add(lo, 1, 7)
	fe := kmsg.NewPtrFetchRequest()
	fe.MaxWaitMillis, fe.MaxBytes = 10, 1<<20
	fe.Topics = []kmsg.FetchRequestTopic{{Topic: "fuzz", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	add(fe, 4, 11)
	return out
}

// FuzzServeRequest feeds arbitrary bytes as one request frame to the
// decode and dispatch path, over the fake backend. Whatever the input, the
// server must not panic, and every reply it writes must be a well-formed
// response frame of the request's API and version.
func FuzzServeRequest(f *testing.F) {
	for i, req := range fuzzSeeds() {
		f.Add(requestFrame(req, int32(i), &testClientID, nil))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		fb := newFakeBackend()
		fb.registerBroker("127.0.0.1", 9092)
		fb.setLimits(func(l *Limits) { l.AutoCreateTopics = true })
		if errs := fb.CreateTopics(context.Background(), []metadata.CreateTopic{{Name: "fuzz", NumPartitions: 2, ReplicationFactor: 1}}, false); errs[0] != nil {
			t.Fatal(errs[0])
		}
		s := NewServer(fb, Options{Logger: testLogger()})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &conn{s: s, remote: "fuzz", ctx: ctx, cancel: cancel}

		p, ok := c.handleFrame(frame)
		if !ok {
			return
		}
		// Settle the reply; an await must finish once the connection's
		// context is done.
		settled := make(chan reply, 1)
		go func() { settled <- c.settle(p.r) }()
		var r reply
		select {
		case r = <-settled:
		case <-time.After(50 * time.Millisecond):
			cancel()
			select {
			case r = <-settled:
			case <-time.After(5 * time.Second):
				t.Fatal("await did not return after its context was cancelled")
			}
		}
		if r.fetch != nil {
			r.fetch.release()
			return
		}
		if r.resp == nil {
			return
		}
		r.resp.SetVersion(p.version)
		out := appendResponse(nil, p.corr, r.resp)
		if size := binary.BigEndian.Uint32(out); int(size) != len(out)-4 {
			t.Fatalf("frame size %d for %d bytes", size, len(out)-4)
		}
		if corr := int32(binary.BigEndian.Uint32(out[4:])); corr != p.corr {
			t.Fatalf("correlation id %d, want %d", corr, p.corr)
		}
		body := out[8:]
		resp := kmsg.ResponseForKey(p.key)
		resp.SetVersion(p.version)
		if resp.IsFlexible() && p.key != apiVersionsKey {
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("%s v%d response does not decode: %v", kmsg.NameForKey(p.key), p.version, err)
		}
	})
}
