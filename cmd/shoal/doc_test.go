package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryPackageHasDoc walks the repository and checks that every
// package has a doc comment in one of its files.
func TestEveryPackageHasDoc(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(p)
		docs[dir] = docs[dir] || f.Doc != nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("found only %d packages under %s", len(docs), root)
	}
	for dir, ok := range docs {
		if !ok {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s has no doc comment", rel)
		}
	}
}

// TestImportsPointDown checks the layout (README "Layout", DESIGN.md):
// each package imports only the Shoal packages below it, so arrows point
// one way and nothing grows back into node/.
func TestImportsPointDown(t *testing.T) {
	allowed := map[string][]string{
		"content":            {},
		"protocol":           {"content"},
		"fetch":              {"content", "protocol", "internal/fsx"},
		"api":                {"content", "internal/httpx"},
		"home":               {"content", "internal/fsx"},
		"mirror":             {"content", "api"},
		"hf":                 {"content", "internal/httpx"},
		"gateway":            {"content", "internal/httpx"},
		"node":               {"content", "protocol", "fetch", "mirror", "api", "home", "hf", "gateway", "internal/fsx", "internal/httpx"},
		"cmd/shoal":          {"api", "node", "home", "content", "hf"},
		"internal/fsx":       {},
		"internal/httpx":     {"content"},
		"internal/leakcheck": {},
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/shoal-p2p/shoal/"
	for pkg, ok := range allowed {
		files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if len(files) == 0 {
			t.Errorf("no package %s", pkg)
		}
		for _, p := range files {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range f.Imports {
				dep, own := strings.CutPrefix(strings.Trim(im.Path.Value, `"`), mod)
				if own && !slices.Contains(ok, dep) {
					t.Errorf("%s imports %s: not below it in the layout", filepath.Join(pkg, filepath.Base(p)), dep)
				}
			}
		}
	}
}
