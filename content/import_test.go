package content

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// linkedModel makes a model folder beside an outside folder holding a
// secret, with symlinks of every kind (threat 26): to files inside, chains,
// through a link to a folder inside, out of the folder (relative, absolute,
// at the end of a chain), into .git, to a folder outside, and a loop.
func linkedModel(t *testing.T) (model string) {
	t.Helper()
	dir := t.TempDir()
	model = filepath.Join(dir, "model")
	writeFile(t, dir, "outside/secret.txt", []byte("root:secret"))
	writeFile(t, model, "config.json", []byte(`{"a":1}`))
	writeFile(t, model, "sub/vocab.txt", []byte("a b c"))
	writeFile(t, model, ".git/config", []byte("[remote] url = https://user:token@example.com"))
	for _, l := range [][2]string{
		{"inlink.json", "config.json"},
		{"chain.json", "inlink.json"},
		{"subdir", "sub"},
		{"via.txt", "subdir/vocab.txt"},
		{"tokenizer.json", "../outside/secret.txt"},
		{"abs.json", filepath.Join(dir, "outside/secret.txt")},
		{"hop.json", "../outside/secret.txt"},
		{"chainout.json", "hop.json"},
		{"gitcfg.txt", ".git/config"},
		{"outdir", "../outside"},
		{"loop1", "loop2"},
		{"loop2", "loop1"},
	} {
		if err := os.Symlink(l[1], filepath.Join(model, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	return model
}

func relPaths(im *Imported) []string {
	var out []string
	for _, f := range im.Files {
		out = append(out, f.Rel)
	}
	return out
}

func skippedFor(im *Imported) map[string]string {
	out := map[string]string{}
	for _, s := range im.Skipped {
		out[s.Path] = s.Reason
	}
	return out
}

// Symlinks out of an added folder are skipped and named with where they
// point; links that stay inside are followed, loops do not hang.
func TestImportSkipsLinksOutside(t *testing.T) {
	model := linkedModel(t)
	im := importPath(t, model)
	want := []string{"chain.json", "config.json", "inlink.json", "sub/vocab.txt", "via.txt"}
	if got := relPaths(im); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	skipped := skippedFor(im)
	for _, p := range []string{"tokenizer.json", "abs.json", "hop.json", "chainout.json", "outdir"} {
		if r := skipped[p]; !strings.Contains(r, "outside the folder (--follow-external-links adds it)") {
			t.Errorf("%s: skipped for %q, want a link outside the folder", p, r)
		}
	}
	if r := skipped["gitcfg.txt"]; !strings.Contains(r, "inside a folder that is not added") {
		t.Errorf("gitcfg.txt: skipped for %q, want a link into .git", r)
	}
	if r := skipped["tokenizer.json"]; !strings.Contains(r, filepath.Join(filepath.Dir(model), "outside", "secret.txt")) {
		t.Errorf("tokenizer.json: reason %q does not say where the link points", r)
	}
	if r := skipped["subdir"]; r != "symlink to a folder" {
		t.Errorf("subdir: reason %q", r)
	}
	for _, p := range []string{"loop1", "loop2"} {
		if r := skipped[p]; !strings.Contains(r, "broken symlink") {
			t.Errorf("%s: reason %q", p, r)
		}
	}
	for _, f := range im.Files {
		if data, _ := os.ReadFile(f.Path); strings.Contains(string(data), "secret") || strings.Contains(string(data), "token") {
			t.Errorf("%s: imported from %s, outside the folder", f.Rel, f.Path)
		}
	}
}

// With FollowExternalLinks, links out of the folder are added too, read
// from where they point; links to folders and loops are still skipped.
func TestImportFollowExternalLinks(t *testing.T) {
	model := linkedModel(t)
	im, err := Import(t.Context(), model, ImportOptions{FollowExternalLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"abs.json", "chain.json", "chainout.json", "config.json", "gitcfg.txt", "hop.json",
		"inlink.json", "sub/vocab.txt", "tokenizer.json", "via.txt"}
	if got := relPaths(im); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	skipped := skippedFor(im)
	for _, p := range []string{"subdir", "outdir"} {
		if r := skipped[p]; r != "symlink to a folder" {
			t.Errorf("%s: reason %q", p, r)
		}
	}
	for _, f := range im.Files {
		if f.Rel == "tokenizer.json" {
			if data, _ := os.ReadFile(f.Path); string(data) != "root:secret" {
				t.Errorf("tokenizer.json read from %s: %q", f.Path, data)
			}
		}
	}
	if n := ImportSize(model, ImportOptions{}); n != int64(len(`{"a":1}`)*3+len("a b c")*2) {
		t.Errorf("ImportSize without links outside = %d", n)
	}
}

// A folder with nothing to add (empty, or only what is skipped) is
// refused: it would name an empty model.
func TestImportRefusesEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(t.Context(), dir, ImportOptions{}); !errors.Is(err, ErrNothingToAdd) {
		t.Fatalf("empty folder: %v", err)
	}
}
