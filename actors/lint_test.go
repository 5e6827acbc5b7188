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
var coreDirs = []string{"partition"}

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
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if why, bad := forbiddenImports[path]; bad {
					t.Errorf("%s imports %q: %s", fset.Position(imp.Pos()), path, why)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: go statement in a deterministic core", fset.Position(n.Pos()))
				case *ast.SelectStmt:
					t.Errorf("%s: select in a deterministic core (scheduling order is not deterministic)", fset.Position(n.Pos()))
				case *ast.SendStmt:
					t.Errorf("%s: channel send in a deterministic core; emit it in Ready instead", fset.Position(n.Pos()))
				case *ast.RangeStmt:
					// Map iteration order is random: a core must sort before
					// anything it iterates becomes output. Flag ranges over
					// map-typed fields we know of by name.
					if id, ok := n.X.(*ast.SelectorExpr); ok && id.Sel.Name == "producers" {
						if !rangeOnlyMutates(n) {
							t.Errorf("%s: range over the producers map must not produce output", fset.Position(n.Pos()))
						}
					}
				}
				return true
			})
		}
	}
}

// rangeOnlyMutates reports whether a range body avoids appending to the
// core's Ready (the only way iteration order could leak into output).
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

// TestLintCatchesViolations proves the lint test can fail: a core file
// with a clock read and a goroutine must be reported.
func TestLintCatchesViolations(t *testing.T) {
	src := `package bad
import "time"
func f() { go func(){}(); _ = time.Now() }`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if _, bad := forbiddenImports[path]; bad {
			found = append(found, path)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if _, ok := n.(*ast.GoStmt); ok {
			found = append(found, "go")
		}
		return true
	})
	if len(found) != 2 {
		t.Fatalf("lint found %v, want the time import and the go statement", found)
	}
}
