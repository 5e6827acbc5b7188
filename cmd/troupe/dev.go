package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// devFlags are the settings of `troupe dev`.
type devFlags struct {
	nodes     int
	dir       string
	basePort  int
	overrides []string
	logLevel  string
	// troupeBin is the binary each node runs (default: this one); tests
	// point it at a test binary that behaves as troupe.
	troupeBin string
}

// devStopTimeout is how long stopping waits for a node's graceful
// shutdown before killing it.
const devStopTimeout = 15 * time.Second

// newDevCmd returns `troupe dev`: a local cluster of N broker processes,
// like running several Kafka brokers on one machine for the failover demo.
func newDevCmd(s *streams) *cobra.Command {
	var f devFlags
	c := &cobra.Command{
		Use:   "dev [--nodes N] [--dir DIR]",
		Short: "Run a local cluster: N troupe processes, each with its own ports and data directory",
		Long: `Run a local Troupe cluster in one command: N broker processes on 127.0.0.1
(process.roles=broker,controller, every node a voter of the metadata quorum),
each with its own ports and data directory under DIR. Each node's log goes to
DIR/node-N/broker.log and its settings to DIR/node-N/server.properties, so a
stopped node can be started again by hand with the printed command. Kill a
node (kill PID) to watch the others take over its partitions; dev restarts
nothing by itself. Ctrl-C or SIGTERM stops every node.

Node i listens for Kafka clients on base-port+i-1 and for the other nodes
(CONTROLLER listener) on base-port+100+i-1. Running dev again on the same
DIR reuses the data and the settings.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := runDev(c.Context(), s, f); err != nil {
				return fmt.Errorf("dev: %w", err)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.IntVar(&f.nodes, "nodes", 3, "number of nodes (1 to 9)")
	fs.StringVar(&f.dir, "dir", "troupe-dev", "directory holding every node's data directory")
	fs.IntVar(&f.basePort, "base-port", 9092, "Kafka port of node 1; node i uses base-port+i-1, its controller listener base-port+100+i-1")
	fs.StringArrayVar(&f.overrides, "override", nil, "configuration key=value for every node (repeatable)")
	fs.StringVar(&f.logLevel, "log-level", "info", "minimum log level of the nodes: debug, info, warn or error")
	fs.StringVar(&f.troupeBin, "troupe-bin", "", "troupe binary the nodes run (default: this one)")
	_ = fs.MarkHidden("troupe-bin")
	return c
}

// devNode is one node process of the dev cluster.
type devNode struct {
	id             int
	dir            string
	kafka, control string // host:port
	config         string
	logPath        string
	cmd            *exec.Cmd
	exited         chan struct{}
	exitErr        error
}

func runDev(ctx context.Context, s *streams, f devFlags) error {
	if f.nodes < 1 || f.nodes > 9 {
		return fmt.Errorf("--nodes must be between 1 and 9, got %d", f.nodes)
	}
	if f.basePort < 1 || f.basePort+100+f.nodes > 65535 {
		return fmt.Errorf("--base-port %d leaves no room for %d nodes", f.basePort, f.nodes)
	}
	bin := f.troupeBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the troupe binary: %w", err)
		}
		bin = exe
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	nodes := make([]*devNode, f.nodes)
	var voters []string
	for i := range nodes {
		id := i + 1
		n := &devNode{
			id: id, dir: filepath.Join(dir, fmt.Sprintf("node-%d", id)),
			kafka:   net.JoinHostPort("127.0.0.1", strconv.Itoa(f.basePort+i)),
			control: net.JoinHostPort("127.0.0.1", strconv.Itoa(f.basePort+100+i)),
		}
		n.config = filepath.Join(n.dir, "server.properties")
		n.logPath = filepath.Join(n.dir, "broker.log")
		nodes[i] = n
		voters = append(voters, fmt.Sprintf("%d@%s", id, n.control))
	}
	for _, n := range nodes {
		if err := n.writeConfig(voters, f.overrides); err != nil {
			return err
		}
		for _, addr := range []string{n.kafka, n.control} {
			if l, err := net.Listen("tcp", addr); err != nil {
				return fmt.Errorf("node %d cannot use %s (%v); stop what uses it or pass --base-port", n.id, addr, err)
			} else {
				l.Close()
			}
		}
	}

	var mu sync.Mutex // serialises lines on stdout
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(s.out, format+"\n", args...)
	}
	started := 0
	defer func() { stopDevNodes(nodes[:started], say) }()
	for _, n := range nodes {
		if err := n.start(bin, f.logLevel); err != nil {
			return fmt.Errorf("start node %d: %w", n.id, err)
		}
		started++
	}
	var bootstrap []string
	for _, n := range nodes {
		bootstrap = append(bootstrap, n.kafka)
		say("node %d  pid %d  kafka %s  data %s", n.id, n.cmd.Process.Pid, n.kafka, n.dir)
	}
	say("bootstrap: %s", strings.Join(bootstrap, ","))
	for _, n := range nodes {
		if err := n.waitListening(ctx, 30*time.Second); err != nil {
			return err
		}
	}
	say("ready; logs in %s/node-*/broker.log; Ctrl-C stops every node", dir)

	// Report nodes that exit on their own (killed for the failover demo,
	// or failed); restart none.
	left := len(nodes)
	exits := make(chan *devNode, len(nodes))
	for _, n := range nodes {
		go func(n *devNode) { <-n.exited; exits <- n }(n)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-exits:
			left--
			say("node %d (pid %d) exited: %v; start it again with: %s broker --config %s", n.id, n.cmd.Process.Pid,
				exitReason(n.exitErr), filepath.Base(bin), n.config)
			if left == 0 {
				return errors.New("every node has exited; see the broker.log files")
			}
		}
	}
}

// writeConfig writes the node's server.properties unless one exists (a
// second run on the same directory keeps its settings and ports).
func (n *devNode) writeConfig(voters, overrides []string) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("node %d: %w", n.id, err)
	}
	if _, err := os.Stat(n.config); err == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by troupe dev for node %d.\n", n.id)
	fmt.Fprintf(&b, "node.id=%d\n", n.id)
	b.WriteString("process.roles=broker,controller\n")
	fmt.Fprintf(&b, "listeners=PLAINTEXT://%s,CONTROLLER://%s\n", n.kafka, n.control)
	b.WriteString("controller.listener.names=CONTROLLER\n")
	fmt.Fprintf(&b, "controller.quorum.voters=%s\n", strings.Join(voters, ","))
	fmt.Fprintf(&b, "log.dirs=%s\n", n.dir)
	for _, o := range overrides {
		b.WriteString(o + "\n")
	}
	if err := os.WriteFile(n.config, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("node %d: %w", n.id, err)
	}
	return nil
}

func (n *devNode) start(bin, logLevel string) error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(bin, "broker", "--config", n.config, "--log-level", logLevel)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C in the terminal reaches dev, which
	// then stops the nodes in order, instead of every process at once.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	n.exited = make(chan struct{})
	go func() {
		n.exitErr = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	return nil
}

// waitListening waits until the node accepts Kafka connections.
func (n *devNode) waitListening(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", n.kafka, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node %d exited at start: %v (see %s)", n.id, exitReason(n.exitErr), n.logPath)
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d does not accept connections on %s after %s (see %s)", n.id, n.kafka, limit, n.logPath)
		}
	}
}

// stopDevNodes stops the running nodes: SIGTERM (graceful shutdown), then
// SIGKILL for any still running after devStopTimeout.
func stopDevNodes(nodes []*devNode, say func(string, ...any)) {
	var running []*devNode
	for _, n := range nodes {
		select {
		case <-n.exited:
		default:
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			running = append(running, n)
		}
	}
	if len(running) == 0 {
		return
	}
	say("stopping %d node(s)", len(running))
	deadline := time.Now().Add(devStopTimeout)
	for _, n := range running {
		select {
		case <-n.exited:
		case <-time.After(time.Until(deadline)):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
