package actors

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// coreDirs are the deterministic actor cores. They must stay free of
// clocks, goroutines, randomness, sockets and files, so that the daemon
// and the simulator run the same code with the same results.
var coreDirs = []string{"partition", "group"}

// forbiddenImports would give a core a hidden input or side effect.
var forbiddenImports = map[string]string{
	"time":                  "time comes in messages (NowMs), never from a clock",
	"math/rand":             "randomness must be injected and seeded",
	"math/rand/v2":          "randomness must be injected and seeded",
	"crypto/rand":           "randomness must be injected and seeded",
	"net":                   "cores do no network I/O",
	"net/http":              "cores do no network I/O",
	"os":                    "cores do no file I/O",
	"io/ioutil":             "cores do no file I/O",
	"syscall":               "cores do no system calls",
	"golang.org/x/sys/unix": "cores do no system calls",
	"sync":                  "a core is single-threaded; its host serialises inputs",
	"github.com/asynkron/protoactor-go/actor": "the core is hosted by protoactor, not built on it",
	"github.com/troupe-io/troupe/partlog":     "storage is reached through Ready, not called",
	"log/slog":                                "cores report through their outputs",
}

// lintCore returns what makes the parsed file unfit for a deterministic
// core, one finding per violation.
func lintCore(fset *token.FileSet, f *ast.File) []string {
	var found []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if why, bad := forbiddenImports[path]; bad {
			found = append(found, fset.Position(imp.Pos()).String()+": imports "+strconv.Quote(path)+": "+why)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			found = append(found, fset.Position(n.Pos()).String()+": go statement in a deterministic core")
		case *ast.SelectStmt:
			found = append(found, fset.Position(n.Pos()).String()+": select in a deterministic core (scheduling order is not deterministic)")
		case *ast.SendStmt:
			found = append(found, fset.Position(n.Pos()).String()+": channel send in a deterministic core; emit it in Ready instead")
		case *ast.RangeStmt:
			// Map iteration order is random: a core must sort before
			// anything it iterates becomes output. The producers map may
			// only be ranged over to change the core's own state.
			if sel, ok := n.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "producers" && !rangeOnlyMutates(n) {
				found = append(found, fset.Position(n.Pos()).String()+": range over the producers map must not produce output")
			}
		}
		return true
	})
	return found
}

// rangeOnlyMutates reports whether a range body avoids the core's Ready
// (the only way iteration order could leak into output).
func rangeOnlyMutates(r *ast.RangeStmt) bool {
	ok := true
	ast.Inspect(r.Body, func(n ast.Node) bool {
		if sel, isSel := n.(*ast.SelectorExpr); isSel && sel.Sel.Name == "ready" {
			ok = false
		}
		return true
	})
	return ok
}

func TestCoresAreDeterministic(t *testing.T) {
	for _, dir := range coreDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in core %s: %v", dir, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range lintCore(fset, f) {
				t.Error(v)
			}
		}
	}
}

// TestLintCatchesViolations proves the lint can fail: the same lintCore
// must report each kind of violation in a deliberately bad core.
func TestLintCatchesViolations(t *testing.T) {
	src := `package bad
import "time"
type core struct{ producers map[int]int; ready []int }
func (c *core) f(ch chan int) {
	go func(){}()
	_ = time.Now()
	ch <- 1
	select {}
	for id := range c.producers { c.ready = append(c.ready, id) }
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := strings.Join(lintCore(fset, f), "\n")
	for _, want := range []string{`imports "time"`, "go statement", "channel send", "select", "producers map"} {
		if !strings.Contains(found, want) {
			t.Errorf("lint missed %q; found:\n%s", want, found)
		}
	}
}
