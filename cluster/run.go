package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/troupe-io/troupe/cluster/config"
)

// BrokerArgs are the daemon's command-line inputs.
type BrokerArgs struct {
	ConfigPath string
	Overrides  []string
	Logger     *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown after ctx is done.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the node once it serves.
	Ready func(*Node)
}

// RunBroker runs a broker until ctx is cancelled (SIGTERM/SIGINT in the
// daemon), then shuts it down gracefully.
func RunBroker(ctx context.Context, args BrokerArgs) error {
	cfg, err := config.Load(args.ConfigPath, args.Overrides)
	if err != nil {
		return err
	}
	logger := args.Logger
	if logger == nil {
		logger = slog.Default()
	}
	n, err := Start(cfg, logger)
	if err != nil {
		return err
	}
	if args.Ready != nil {
		args.Ready(n)
	}
	select {
	case <-ctx.Done():
	case err := <-n.serveErr:
		logger.Error("listener failed", "err", err)
		_ = n.Close(context.Background())
		return fmt.Errorf("listener: %w", err)
	}
	timeout := args.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("shutdown complete")
	return nil
}
