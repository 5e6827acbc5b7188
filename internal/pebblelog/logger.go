package pebblelog

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger is a Pebble logger (pebble.Logger) writing to an slog.Logger.
// Owner names the database's user in fatal panics ("partlog", "raftlog").
type Logger struct {
	L     *slog.Logger
	Owner string
}

func (p Logger) Infof(format string, args ...any) {
	if p.L.Enabled(context.Background(), slog.LevelDebug) {
		p.L.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p Logger) Errorf(format string, args ...any) {
	p.L.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is Pebble reporting a broken invariant of its own; it expects not
// to return, so panic rather than exiting the process from a library.
func (p Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.L.Error(msg, "component", "pebble")
	panic(p.Owner + ": pebble: " + msg)
}
