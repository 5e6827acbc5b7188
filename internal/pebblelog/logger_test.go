package pebblelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger{L: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), Owner: "test"}
	l.Infof("routine %d", 1)
	if buf.Len() != 0 {
		t.Fatalf("Infof logged at info level: %q", buf.String())
	}
	l.Errorf("broken %d", 2)
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "broken 2") {
		t.Fatalf("Errorf: %q", buf.String())
	}
	defer func() {
		if r := recover(); r != "test: pebble: fatal 3" {
			t.Fatalf("Fatalf panicked with %v", r)
		}
	}()
	l.Fatalf("fatal %d", 3)
}
