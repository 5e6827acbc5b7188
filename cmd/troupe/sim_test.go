package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// troupeProcess runs this test binary as the troupe binary (see TestMain)
// in its own process: a simulation takes over crypto/rand for its length,
// which must not touch the other tests of this process.
func troupeProcess(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TROUPE_AS_MAIN=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestSimCommand(t *testing.T) {
	t.Run("a seed passes and prints its report", func(t *testing.T) {
		out, code := troupeProcess(t, "sim", "--seed", "3", "--time", "3s")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"seed 3 ", "faults: ", "acked-lost", "trace hash ", "1 seed(s), 0 failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("same seed, same trace hash", func(t *testing.T) {
		a, _ := troupeProcess(t, "sim", "--seed", "4", "--time", "2s")
		b, _ := troupeProcess(t, "sim", "--seed", "4", "--time", "2s")
		if hashLine(a) == "" || hashLine(a) != hashLine(b) {
			t.Fatalf("trace hashes differ or are missing: %q vs %q", hashLine(a), hashLine(b))
		}
	})
	t.Run("a broken variant fails with a repro command", func(t *testing.T) {
		// The mutation check's bound for hw-before-isr (sim/README.md).
		out, code := troupeProcess(t, "sim", "--seed", "1", "--seeds", "10", "--mutation", "hw-before-isr")
		if code == 0 {
			t.Fatalf("the mutation was not caught in 10 seeds:\n%s", out)
		}
		if !strings.Contains(out, "VIOLATION") || !strings.Contains(out, "--mutation hw-before-isr") ||
			!strings.Contains(out, "reproduce with: troupe sim --seed ") {
			t.Fatalf("no violation or repro command:\n%s", out)
		}
	})
	t.Run("bad flags are one line", func(t *testing.T) {
		assertOneErrorLine(t, troupe(t, "", "sim", "--faults", "bogus"), "unknown fault")
		assertOneErrorLine(t, troupe(t, "", "sim", "--mutation", "nope"), "unknown mutation")
	})
}

func hashLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "trace hash ") {
			return l
		}
	}
	return ""
}
