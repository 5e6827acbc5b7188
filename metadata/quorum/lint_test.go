package quorum

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// coreFiles make up Core. Like the actor cores (actors/lint_test.go) they
// must stay free of clocks, goroutines, randomness and I/O so that the
// simulator runs them deterministically.
var coreFiles = []string{"core.go", "entry.go", "errors.go"}

var forbiddenInCore = map[string]bool{
	"time": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true,
	"os": true, "net": true, "sync": true, "sync/atomic": true, "log/slog": true,
	"github.com/troupe-io/troupe/raftlog":           true,
	"github.com/troupe-io/troupe/cluster/transport": true,
}

func TestCoreFilesAreDeterministic(t *testing.T) {
	for _, file := range coreFiles {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); forbiddenInCore[path] {
				t.Errorf("%s imports %s", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n.(type) {
			case *ast.GoStmt, *ast.SelectStmt, *ast.SendStmt:
				t.Errorf("%s: goroutine or channel operation in the core", fset.Position(n.Pos()))
			}
			return true
		})
	}
}
