package main

import (
	"fmt"
	"log/slog"

	"github.com/troupe-io/troupe/cluster"
	"github.com/troupe-io/troupe/cluster/config"

	"github.com/spf13/cobra"
)

// brokerFlags are the command-line settings of the broker daemon.
type brokerFlags struct {
	configFile string
	overrides  []string // key=value, applied over the config file in order
	logFormat  string
	logLevel   string
	// printConfig prints the effective configuration and exits.
	printConfig bool
}

// newBrokerCmd returns `troupe broker`, which runs the broker daemon in the
// foreground until interrupted.
func newBrokerCmd(_ *streams) *cobra.Command {
	var f brokerFlags
	c := &cobra.Command{
		Use:   "broker [--config FILE] [--override key=value ...]",
		Short: "Run a Troupe broker in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return fmt.Errorf("broker: %w", err)
			}
			if f.printConfig {
				cfg, err := config.Load(f.configFile, f.overrides)
				if err != nil {
					return err
				}
				return cfg.WriteProperties(c.OutOrStdout())
			}
			level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[f.logLevel]
			hopts := &slog.HandlerOptions{Level: level}
			var h slog.Handler = slog.NewTextHandler(c.ErrOrStderr(), hopts)
			if f.logFormat == "json" {
				h = slog.NewJSONHandler(c.ErrOrStderr(), hopts)
			}
			logger := slog.New(h)
			slog.SetDefault(logger)
			return cluster.RunBroker(c.Context(), cluster.BrokerArgs{
				ConfigPath: f.configFile, Overrides: f.overrides, Logger: logger,
			})
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.configFile, "config", "", "broker configuration file")
	fs.StringArrayVar(&f.overrides, "override", nil, "configuration key=value overriding the file (repeatable)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "minimum log level: debug, info, warn or error")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration (every key, defaults included) and exit")
	return c
}

// validate checks the flags that can be checked without the broker's
// configuration schema, so mistakes surface before anything starts.
func (f *brokerFlags) validate() error {
	switch f.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", f.logFormat)
	}
	switch f.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	for _, kv := range f.overrides {
		if _, _, err := parseKeyValue("override", kv); err != nil {
			return err
		}
	}
	return nil
}
