package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metricsServer serves Prometheus metrics at /metrics, a health check at
// /healthz and the Go profiler at /debug/pprof/ on troupe.metrics.listener.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// nodeCollector reads the node's counters at scrape time, so the hot
// paths only bump atomics and never touch Prometheus.
type nodeCollector struct {
	n                                *Node
	requests, bytesIn, bytesOut      *prometheus.Desc
	protocolErrors, conns, connsOpen *prometheus.Desc
	topics, partitions               *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("troupe_"+name, help, labels, nil)
	}
	return &nodeCollector{
		n:              n,
		requests:       d("requests_total", "Kafka requests decoded, by API.", "api"),
		bytesIn:        d("network_received_bytes_total", "Request bytes read, size prefixes included."),
		bytesOut:       d("network_sent_bytes_total", "Response bytes written, size prefixes included."),
		protocolErrors: d("protocol_errors_total", "Connections closed for malformed or unsupported requests."),
		conns:          d("connections_accepted_total", "Client connections accepted."),
		connsOpen:      d("connections_open", "Client connections open now."),
		topics:         d("topics", "Topics in the metadata."),
		partitions:     d("partitions_led", "Partitions this node leads."),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.bytesIn, c.bytesOut, c.protocolErrors, c.conns, c.connsOpen, c.topics, c.partitions} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.server != nil {
		st := c.n.server.Stats()
		for key, v := range st.Requests {
			name := kmsg.NameForKey(key)
			if name == "" {
				name = strconv.Itoa(int(key))
			}
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(v), name)
		}
		ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(st.BytesIn))
		ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(st.BytesOut))
		ch <- prometheus.MustNewConstMetric(c.protocolErrors, prometheus.CounterValue, float64(st.ProtocolErrors))
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.CounterValue, float64(st.ConnsAccepted))
		ch <- prometheus.MustNewConstMetric(c.connsOpen, prometheus.GaugeValue, float64(st.ConnsOpen))
	}
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(c.n.controller.Image().NumTopics()))
	ch <- prometheus.MustNewConstMetric(c.partitions, prometheus.GaugeValue, float64(len(c.n.host.Partitions())))
}

func startMetrics(n *Node, addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newNodeCollector(n))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// /healthz answers 200 once the node serves Kafka clients, for load
	// balancers and orchestration probes.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.serving.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	m := &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("metrics listener failed", "err", err)
		}
	}()
	return m, nil
}

func (m *metricsServer) close(ctx context.Context) error {
	return m.srv.Shutdown(ctx)
}
