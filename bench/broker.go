package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// BrokerKind names one broker set-up in the comparison.
type BrokerKind string

// The set-ups we compare. Each is a separate process with its own data
// directory; the kfake ones run bench/kfakebroker.
const (
	TroupeDurable  BrokerKind = "troupe-durable"  // default: fsync before every ack
	TroupeRelaxed  BrokerKind = "troupe-relaxed"  // log.flush.interval.ms=1000
	KfakeSync      BrokerKind = "kfake-sync"      // DataDir + SyncWrites
	KfakeMemory    BrokerKind = "kfake-memory"    // nothing on disk
	KfakeBlackhole BrokerKind = "kfake-blackhole" // stores nothing: the client's ceiling
)

// AllBrokers is every set-up, in report order.
var AllBrokers = []BrokerKind{TroupeDurable, TroupeRelaxed, KfakeSync, KfakeMemory, KfakeBlackhole}

// ParseBrokerKind checks that s names a known set-up.
func ParseBrokerKind(s string) (BrokerKind, error) {
	for _, k := range AllBrokers {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown broker %q (want one of %v)", s, AllBrokers)
}

func (k BrokerKind) isTroupe() bool { return k == TroupeDurable || k == TroupeRelaxed }

// storesRecords reports whether records produced to k can be consumed back.
func (k BrokerKind) storesRecords() bool { return k != KfakeBlackhole }

// brokerSpec is everything needed to (re)start one set-up.
type brokerSpec struct {
	kind    BrokerKind
	addr    string // 127.0.0.1:port, kept across restarts
	dataDir string
	logPath string
	// metricsAddr is troupe.metrics.listener when profiling is wanted.
	metricsAddr string
}

// command returns the argv that starts spec's broker.
func (s *brokerSpec) command(bins Binaries) []string {
	switch s.kind {
	case TroupeDurable, TroupeRelaxed:
		argv := []string{bins.Troupe, "broker", "--log-level", "warn",
			"--override", "listeners=PLAINTEXT://" + s.addr,
			"--override", "log.dirs=" + s.dataDir,
		}
		if s.kind == TroupeRelaxed {
			argv = append(argv, "--override", "log.flush.interval.ms=1000")
		}
		if s.metricsAddr != "" {
			argv = append(argv, "--override", "troupe.metrics.listener="+s.metricsAddr)
		}
		return argv
	case KfakeSync:
		return []string{bins.Kfake, "--addr", s.addr, "--data-dir", s.dataDir, "--sync-writes"}
	case KfakeBlackhole:
		return []string{bins.Kfake, "--addr", s.addr, "--blackhole"}
	default:
		return []string{bins.Kfake, "--addr", s.addr}
	}
}

// process is one running broker.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returns
	err    error         // cmd.Wait's result, valid after exited closes
	log    *os.File
}

// startBroker execs spec's broker and waits until its port accepts TCP
// connections, returning how long that took from just before exec.
func startBroker(ctx context.Context, spec *brokerSpec, bins Binaries, timeout time.Duration) (*process, time.Duration, error) {
	logf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("open broker log: %w", err)
	}
	argv := spec.command(bins)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal reaches us, and we stop
	// the broker ourselves, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	begin := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, fmt.Errorf("start %s: %w", spec.kind, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: logf}
	go func() { p.err = cmd.Wait(); close(p.exited) }()

	elapsed, err := waitListening(ctx, spec.addr, begin, p.exited, timeout)
	if err != nil {
		p.stop(5 * time.Second)
		return nil, 0, fmt.Errorf("%s did not start listening on %s (log %s): %w", spec.kind, spec.addr, spec.logPath, err)
	}
	return p, elapsed, nil
}

// waitListening dials addr until it connects, the process exits, or timeout
// passes, and returns the time from begin to the first connection. Refused
// connections fail at once, so the 1 ms pause bounds the polling error.
func waitListening(ctx context.Context, addr string, begin time.Time, exited <-chan struct{}, timeout time.Duration) (time.Duration, error) {
	deadline := begin.Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			elapsed := time.Since(begin)
			conn.Close()
			return elapsed, nil
		}
		select {
		case <-exited:
			return 0, errors.New("process exited")
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not listening after %s: %w", timeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for a clean exit, killing the process if it
// takes longer than grace. It reports an exit that was not clean.
func (p *process) stop(grace time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.exited:
		return fmt.Errorf("broker had already exited: %v", p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("no clean exit within %s after SIGTERM; killed", grace)
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Binaries are the executables the comparison starts.
type Binaries struct {
	Troupe string // troupe command
	Kfake  string // bench/kfakebroker command
}

// BuildBinaries compiles both commands from the module at repoDir into dir.
func BuildBinaries(ctx context.Context, repoDir, dir string) (Binaries, error) {
	b := Binaries{Troupe: filepath.Join(dir, "troupe"), Kfake: filepath.Join(dir, "kfakebroker")}
	for _, t := range []struct{ out, pkg string }{{b.Troupe, "./cmd/troupe"}, {b.Kfake, "./bench/kfakebroker"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = repoDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}
