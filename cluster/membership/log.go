package membership

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLogWriter turns memberlist's log lines ("[WARN] memberlist:
// text") into slog records at debug level. Everything is debug because
// memberlist logs what is routine for a failure detector as warnings and
// errors (a dead peer's refused connection, a refuted suspicion); this
// package logs the member state changes that matter at info.
type memberlistLogWriter struct {
	logger *slog.Logger
}

// newMemberlistLogger returns the *log.Logger memberlist wants, writing
// to logger.
func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(memberlistLogWriter{logger: logger}, "", 0)
}

// Write receives one line per call (log.Logger guarantees it). It checks
// the level first so that a disabled debug level costs no allocation.
func (w memberlistLogWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.logger.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	line := bytes.TrimRight(p, "\n")
	level := ""
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			level = string(line[1:end])
			line = bytes.TrimLeft(line[end+1:], " ")
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if level == "" {
		w.logger.Log(ctx, slog.LevelDebug, string(line), "component", "memberlist")
	} else {
		w.logger.Log(ctx, slog.LevelDebug, string(line), "component", "memberlist", "memberlist_level", level)
	}
	return len(p), nil
}
