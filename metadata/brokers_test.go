package metadata

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestRegisterBrokerValidation(t *testing.T) {
	tc := newTestCluster(t, Defaults{}, 1)
	good := tc.registration(2)
	good.Incarnation = incarnation(2, 1)
	for _, tt := range []struct {
		name string
		edit func(*BrokerRegistration)
		want *kerr.Error
	}{
		{"other cluster", func(r *BrokerRegistration) { r.ClusterID = "other" }, kerr.InconsistentClusterID},
		{"negative id", func(r *BrokerRegistration) { r.ID = -1 }, kerr.InvalidRequest},
		{"no incarnation", func(r *BrokerRegistration) { r.Incarnation = IncarnationID{} }, kerr.InvalidRequest},
		{"no host", func(r *BrokerRegistration) { r.Host = "" }, kerr.InvalidRequest},
		{"port 0", func(r *BrokerRegistration) { r.Port = 0 }, kerr.InvalidRequest},
		{"port too big", func(r *BrokerRegistration) { r.Port = 70000 }, kerr.InvalidRequest},
		{"cluster id optional", func(r *BrokerRegistration) { r.ClusterID = "" }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			_, err := tc.c.RegisterBrokerIncarnation(r, 0)
			wantErr(t, "register", err, tt.want)
		})
	}
}

func TestBrokerLifecycle(t *testing.T) {
	tc := newTestCluster(t, Defaults{}, 1)
	c := tc.c
	inc := incarnation(2, 1)
	reg := BrokerRegistration{ID: 2, Incarnation: inc, Host: "h2", Port: 9092, ControllerAddr: "h2:9093", Rack: "r2", Roles: RoleBroker | RoleController}
	epoch, err := c.RegisterBrokerIncarnation(reg, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Image().Broker(2)
	if !b.Fenced || b.Epoch != epoch || b.Epoch != c.Image().Offset || b.Incarnation != inc || b.ControllerAddr != "h2:9093" || b.Rack != "r2" || b.Roles != RoleBroker|RoleController {
		t.Fatalf("new registration: %+v (epoch %d)", b, epoch)
	}

	steps := []struct {
		name      string
		inc       IncarnationID
		applied   int64
		wantFence bool
		err       *kerr.Error
		fenced    bool
	}{
		{"behind stays fenced", inc, epoch - 1, false, nil, true},
		{"unknown incarnation", incarnation(2, 9), epoch, false, kerr.StaleBrokerEpoch, true},
		{"caught up but wants fence", inc, epoch, true, nil, true},
		{"caught up unfences", inc, epoch, false, nil, false},
		{"stays unfenced", inc, 0, false, nil, false},
		{"asks to be fenced", inc, epoch, true, nil, true},
		{"unfenced again", inc, epoch + 100, false, nil, false},
	}
	for _, s := range steps {
		fenced, err := c.BrokerHeartbeat(2, s.inc, s.applied, s.wantFence, 20)
		wantErr(t, s.name, err, s.err)
		if err == nil && (fenced != s.fenced || tc.fenced(2) != s.fenced) {
			t.Fatalf("%s: heartbeat says fenced=%v, image %v; want %v", s.name, fenced, tc.fenced(2), s.fenced)
		}
	}
	if _, err := c.BrokerHeartbeat(7, inc, 0, false, 0); !errorIs(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("heartbeat of unregistered broker: %v", err)
	}

	// The same incarnation re-registering (a new listener) keeps its
	// state and epoch; nothing is written when nothing changed.
	before := c.Image().Offset
	if _, err := c.RegisterBrokerIncarnation(reg, 30); err != nil || c.Image().Offset != before {
		t.Fatalf("identical re-registration wrote records (offset %d -> %d): %v", before, c.Image().Offset, err)
	}
	reg.Port = 9094
	if e, err := c.RegisterBrokerIncarnation(reg, 30); err != nil || e != epoch {
		t.Fatalf("re-registration: epoch %d (want %d): %v", e, epoch, err)
	}
	if b, _ := c.Image().Broker(2); b.Fenced || b.Port != 9094 || b.Epoch != epoch {
		t.Fatalf("after re-registration: %+v", b)
	}

	// A new incarnation is fenced at once, with a new epoch; the old one's
	// heartbeats are stale.
	reg.Incarnation = incarnation(2, 2)
	e2, err := c.RegisterBrokerIncarnation(reg, 40)
	if err != nil || e2 <= epoch || !tc.fenced(2) {
		t.Fatalf("restart: epoch %d fenced %v: %v", e2, tc.fenced(2), err)
	}
	if _, err := c.BrokerHeartbeat(2, inc, e2, false, 40); !errorIs(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("old incarnation heartbeat: %v", err)
	}

	// Unregistering removes it.
	wantErr(t, "unregister", c.UnregisterBroker(2), nil)
	if _, ok := c.Image().Broker(2); ok {
		t.Fatal("broker 2 still registered")
	}
	wantErr(t, "unregister again", c.UnregisterBroker(2), kerr.BrokerIDNotRegistered)
	wantErr(t, "report dead unknown", c.ReportDead(2, 0), kerr.BrokerIDNotRegistered)
}

// TestFencing checks where leadership and ISR go when brokers are fenced
// and unfenced: one partition, a sequence of steps, its state after each.
func TestFencing(t *testing.T) {
	type step struct {
		op          string // "dead", "up" (caught-up heartbeat), "restart" (new incarnation)
		id          int32
		leader      int32
		isr         []int32
		leaderEpoch int32
		partEpoch   int32
	}
	for _, tt := range []struct {
		name         string
		replicas     []int32
		topicUnclean string // topic override, "" for none
		brokerDef    string // broker default, "" for none
		steps        []step
	}{
		{"leader fenced: next ISR replica leads", []int32{1, 2, 3}, "", "", []step{
			{"dead", 1, 2, []int32{2, 3}, 1, 1},
		}},
		{"follower fenced leaves the ISR", []int32{1, 2, 3}, "", "", []step{
			{"dead", 2, 1, []int32{1, 3}, 0, 1},
			{"dead", 2, 1, []int32{1, 3}, 0, 1}, // already fenced: nothing
		}},
		{"election follows replica order", []int32{3, 1, 2}, "", "", []step{
			{"dead", 3, 1, []int32{1, 2}, 1, 1},
		}},
		{"fenced replicas are skipped", []int32{1, 2, 3}, "", "", []step{
			{"dead", 2, 1, []int32{1, 3}, 0, 1},
			{"dead", 1, 3, []int32{3}, 1, 2},
		}},
		{"last ISR member stays, partition offline", []int32{1, 2}, "", "", []step{
			{"dead", 2, 1, []int32{1}, 0, 1},
			{"dead", 1, -1, []int32{1}, 1, 2},
			{"up", 2, -1, []int32{1}, 1, 2}, // not in the ISR: no clean election
			{"up", 1, 1, []int32{1}, 2, 3},  // back: leads again
		}},
		{"unclean off: live out-of-sync replica does not lead", []int32{1, 2, 3}, "false", "true", []step{
			{"dead", 2, 1, []int32{1, 3}, 0, 1},
			{"dead", 3, 1, []int32{1}, 0, 2},
			{"up", 2, 1, []int32{1}, 0, 2},
			{"dead", 1, -1, []int32{1}, 1, 3},
		}},
		{"unclean on (topic): first live replica leads alone", []int32{1, 2, 3}, "true", "", []step{
			{"dead", 2, 1, []int32{1, 3}, 0, 1},
			{"dead", 3, 1, []int32{1}, 0, 2},
			{"up", 3, 1, []int32{1}, 0, 2},
			{"up", 2, 1, []int32{1}, 0, 2},
			{"dead", 1, 2, []int32{2}, 1, 3},
		}},
		{"unclean on (broker default)", []int32{1, 2}, "", "true", []step{
			{"dead", 2, 1, []int32{1}, 0, 1},
			{"up", 2, 1, []int32{1}, 0, 1},
			{"dead", 1, 2, []int32{2}, 1, 2},
		}},
		{"unclean on: unfenced replica takes a leaderless partition", []int32{1, 2}, "true", "", []step{
			{"dead", 2, 1, []int32{1}, 0, 1},
			{"dead", 1, -1, []int32{1}, 1, 2},
			{"up", 2, 2, []int32{2}, 2, 3},
		}},
		{"restart of the leader fences it and moves leadership", []int32{1, 2}, "", "", []step{
			{"restart", 1, 2, []int32{2}, 1, 1},
			{"up", 1, 2, []int32{2}, 1, 1}, // back in the ISR only through AlterPartition
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Defaults{}
			if tt.brokerDef != "" {
				d.BrokerConfig = map[string]string{"unclean.leader.election.enable": tt.brokerDef}
			}
			tc := newTestCluster(t, d, 1, 2, 3)
			var cfg map[string]*string
			if tt.topicUnclean != "" {
				cfg = map[string]*string{"unclean.leader.election.enable": strp(tt.topicUnclean)}
			}
			tc.createTopic("t", cfg, tt.replicas)
			for i, s := range tt.steps {
				switch s.op {
				case "dead":
					wantErr(t, "report dead", tc.c.ReportDead(s.id, tc.now), nil)
				case "up":
					if tc.heartbeat(s.id, false) {
						t.Fatalf("step %d: broker %d still fenced", i, s.id)
					}
				case "restart":
					tc.gen[s.id]++
					if _, err := tc.c.RegisterBrokerIncarnation(tc.registration(s.id), tc.now); err != nil {
						t.Fatal(err)
					}
				}
				wantState(t, "step "+s.op, tc.part("t", 0), s.leader, s.isr, s.leaderEpoch, s.partEpoch)
			}
		})
	}
}

func TestTickFencesExpiredSessions(t *testing.T) {
	tc := newTestCluster(t, Defaults{BrokerSessionTimeoutMs: 1000}, 1, 2, 3)
	tc.createTopic("t", nil, []int32{2, 3}, []int32{3, 2})
	c := tc.c
	if c.Defaults().sessionTimeoutMs() != 1000 || (Defaults{}).sessionTimeoutMs() != 9000 {
		t.Fatal("session timeout default")
	}
	// Everyone heartbeated at 0. At exactly the timeout nobody expires.
	if fenced, err := c.Tick(1000); err != nil || len(fenced) != 0 {
		t.Fatalf("tick at the timeout fenced %v: %v", fenced, err)
	}
	tc.now = 900
	tc.heartbeat(1, false)
	tc.heartbeat(3, false)
	fenced, err := c.Tick(1001)
	if err != nil || len(fenced) != 1 || fenced[0] != 2 {
		t.Fatalf("tick fenced %v: %v", fenced, err)
	}
	wantState(t, "p0 after broker 2 expired", tc.part("t", 0), 3, []int32{3}, 1, 1)
	wantState(t, "p1 after broker 2 expired", tc.part("t", 1), 3, []int32{3}, 0, 1)
	fenced, _ = c.Tick(1901)
	if len(fenced) != 2 || fenced[0] != 1 || fenced[1] != 3 {
		t.Fatalf("second tick fenced %v", fenced)
	}
	// A new controller starts every session at its own start.
	tc.heartbeat(1, false)
	tc.heartbeat(3, false)
	c.Resign()
	if fenced, err := c.Tick(1_000_000); fenced != nil || err != nil {
		t.Fatalf("an inactive controller ticked: %v %v", fenced, err)
	}
	if err := c.BecomeActive(5000); err != nil {
		t.Fatal(err)
	}
	if fenced, _ := c.Tick(6000); len(fenced) != 0 {
		t.Fatalf("sessions not restarted on take-over: fenced %v", fenced)
	}
	if fenced, _ := c.Tick(6001); len(fenced) != 2 {
		t.Fatalf("fenced %v after take-over + timeout", fenced)
	}
}
