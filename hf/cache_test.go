package hf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCacheDir(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"HF_HUB_CACHE first", map[string]string{"HF_HUB_CACHE": "/c/hub", "HUGGINGFACE_HUB_CACHE": "/old", "HF_HOME": "/h"}, "/c/hub"},
		{"legacy variable", map[string]string{"HUGGINGFACE_HUB_CACHE": "/old", "HF_HOME": "/h"}, "/old"},
		{"HF_HOME", map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/h/hub"},
		{"HF_HOME with ~", map[string]string{"HF_HOME": "~/hf"}, home + "/hf/hub"},
		{"XDG_CACHE_HOME", map[string]string{"XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"},
		{"empty counts as unset", map[string]string{"HF_HUB_CACHE": "", "HF_HOME": "/h"}, "/h/hub"},
		{"default", nil, home + "/.cache/huggingface/hub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
				t.Setenv(v, tc.env[v])
			}
			t.Setenv("HOME", home)
			got, err := CacheDir()
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.FromSlash(tc.want) {
				t.Fatalf("CacheDir() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCacheRepoDir(t *testing.T) {
	for _, tc := range []struct {
		repo string
		want string // folder name; "" for refused
	}{
		{"julien-c/EsperBERTo-small", "models--julien-c--EsperBERTo-small"},
		{"gpt2", "models--gpt2"},
		{"org_/name.v1_", "models--org_--name.v1_"},
		{"Org/Name-2.5", "models--Org--Name-2.5"},
		{"", ""},
		{"org/", ""},
		{"/name", ""},
		{"a/b/c", ""},
		{"org--x/name", ""},
		{"org/na--me", ""},
		{"org/na..me", ""},
		{"..", ""},
		{"../x", ""},
		{"org/.name", ""},
		{"org/name-", ""},
		{"-org/name", ""},
		{"org/name.git", ""},
		{"org/na me", ""},
		{"org/näme", ""},
		{`org\name`, ""},
		{"org/" + strings.Repeat("a", 97), ""},
		{"org/" + strings.Repeat("a", 96), "models--org--" + strings.Repeat("a", 96)},
	} {
		got, err := RepoDir("/cache", tc.repo)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("RepoDir(%q) = %q, want an error", tc.repo, got)
		case tc.want != "" && err != nil:
			t.Errorf("RepoDir(%q): %v", tc.repo, err)
		case tc.want != "" && got != filepath.Join("/cache", tc.want):
			t.Errorf("RepoDir(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
}

// cacheSum is the sha256 of b.
func cacheSum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func cacheWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func cacheSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

const (
	cacheCommitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	cacheCommitB = "bbc77c8132af1cc5cf678da3f1ddf2de43606d48"
)

// cacheTree writes a cache as huggingface_hub leaves it: org/model with
// two snapshots (A and B), refs main → B and v1 → A (with a newline,
// as a hand-edited ref might have), nested paths and a dangling link in
// B; a one-snapshot repo with no refs; a two-snapshot repo with no refs;
// and things that are not model repos.
func cacheTree(t *testing.T) (cache string, blobs map[string][]byte) {
	t.Helper()
	cache = t.TempDir()
	repo := filepath.Join(cache, "models--org--model")
	blobs = map[string][]byte{
		"config.json":                 []byte(`{"hidden_size":64}`),
		"config.json@A":               []byte(`{"hidden_size":32}`),
		"model.safetensors":           bytes.Repeat([]byte{7}, 5000),
		"tokenizer/special/vocab.txt": []byte("hello\nworld\n"),
	}
	blob := func(key string) string {
		name := hex.EncodeToString(cacheSum(blobs[key]))
		cacheWrite(t, filepath.Join(repo, "blobs", name), blobs[key])
		return name
	}
	cacheSymlink(t, "../../blobs/"+blob("config.json@A"), filepath.Join(repo, "snapshots", cacheCommitA, "config.json"))
	cacheSymlink(t, "../../blobs/"+blob("model.safetensors"), filepath.Join(repo, "snapshots", cacheCommitA, "model.safetensors"))
	cacheSymlink(t, "../../blobs/"+blob("config.json"), filepath.Join(repo, "snapshots", cacheCommitB, "config.json"))
	cacheSymlink(t, "../../blobs/"+blob("model.safetensors"), filepath.Join(repo, "snapshots", cacheCommitB, "model.safetensors"))
	cacheSymlink(t, "../../../../blobs/"+blob("tokenizer/special/vocab.txt"),
		filepath.Join(repo, "snapshots", cacheCommitB, "tokenizer", "special", "vocab.txt"))
	cacheSymlink(t, "../../blobs/0000000000000000000000000000000000000000", filepath.Join(repo, "snapshots", cacheCommitB, "dangling.bin"))
	cacheWrite(t, filepath.Join(repo, "refs", "main"), []byte(cacheCommitB))
	cacheWrite(t, filepath.Join(repo, "refs", "v1"), []byte(cacheCommitA+"\n"))
	cacheWrite(t, filepath.Join(repo, "refs", "refs", "pr", "1"), []byte(cacheCommitA))
	cacheWrite(t, filepath.Join(repo, "refs", "junk"), []byte("not a commit"))
	cacheWrite(t, filepath.Join(repo, ".no_exist", cacheCommitB, "optional.json"), nil)

	one := filepath.Join(cache, "models--gpt2")
	cacheSymlink(t, "../../blobs/x", filepath.Join(one, "snapshots", cacheCommitA, "config.json"))
	two := filepath.Join(cache, "models--org--two")
	for _, c := range []string{cacheCommitA, cacheCommitB} {
		if err := os.MkdirAll(filepath.Join(two, "snapshots", c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"datasets--org--data/blobs", ".locks/models--org--model", "models--a--b--c/refs", "models--org--x--/refs"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cacheWrite(t, filepath.Join(cache, "models--org--file"), []byte("a file, not a repo"))
	return cache, blobs
}

func TestCacheSnapshot(t *testing.T) {
	cache, blobs := cacheTree(t)
	repoDir := filepath.Join(cache, "models--org--model")
	for _, tc := range []struct {
		repo, rev string
		want      string // commit; "" for an error
		notExist  bool   // the error wraps fs.ErrNotExist
	}{
		{"org/model", "", cacheCommitB, false},
		{"org/model", "main", cacheCommitB, false},
		{"org/model", "v1", cacheCommitA, false},
		{"org/model", "refs/pr/1", cacheCommitA, false},
		{"org/model", cacheCommitA, cacheCommitA, false},
		{"org/model", cacheCommitB, cacheCommitB, false},
		{"org/model", "cccccccccccccccccccccccccccccccccccccccc", "", true},
		{"org/model", "nobranch", "", true},
		{"org/model", "junk", "", false},
		{"org/model", "../refs/main", "", false},
		{"org/model", "/etc/passwd", "", false},
		{"org/model", ".hidden", "", false},
		{"gpt2", "", cacheCommitA, false}, // no refs/main, one snapshot
		{"gpt2", "main", cacheCommitA, false},
		{"gpt2", "v1", "", true}, // the fallback is for main only
		{"org/two", "", "", false},
		{"org/two", cacheCommitB, cacheCommitB, false},
		{"org/absent", "", "", true},
		{"org/../x", "", "", false},
	} {
		t.Run(tc.repo+"@"+tc.rev, func(t *testing.T) {
			snap, dir, err := Snapshot(cache, tc.repo, tc.rev)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Snapshot = %q, want an error", snap)
				}
				if errors.Is(err, fs.ErrNotExist) != tc.notExist {
					t.Fatalf("error %v: wraps fs.ErrNotExist %v, want %v", err, errors.Is(err, fs.ErrNotExist), tc.notExist)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantDir, _ := RepoDir(cache, tc.repo)
			if dir != wantDir || snap != filepath.Join(wantDir, "snapshots", tc.want) {
				t.Fatalf("Snapshot = %q, %q; want commit %s in %s", snap, dir, tc.want, wantDir)
			}
		})
	}

	// The links of B resolve to the right bytes, nested ones included;
	// the dangling one is there and does not trouble Snapshot.
	snap, _, err := Snapshot(cache, "org/model", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"config.json", "model.safetensors", "tokenizer/special/vocab.txt"} {
		got, err := os.ReadFile(filepath.Join(snap, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, blobs[p]) {
			t.Fatalf("%s: %d bytes, %v", p, len(got), err)
		}
	}
	if _, err := os.Stat(filepath.Join(snap, "dangling.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dangling link: %v", err)
	}

	// A snapshot folder or a ref that is a symlink out of the repo is refused.
	outside := t.TempDir()
	cacheWrite(t, filepath.Join(outside, "ref"), []byte(cacheCommitA))
	if err := os.MkdirAll(filepath.Join(outside, "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	const commitC = "cccccccccccccccccccccccccccccccccccccccc"
	cacheSymlink(t, filepath.Join(outside, "snap"), filepath.Join(repoDir, "snapshots", commitC))
	cacheSymlink(t, filepath.Join(outside, "ref"), filepath.Join(repoDir, "refs", "evil"))
	for _, rev := range []string{commitC, "evil"} {
		if snap, _, err := Snapshot(cache, "org/model", rev); err == nil {
			t.Errorf("Snapshot at %s through a symlink out of the repo = %q, want an error", rev, snap)
		}
	}
}

func TestCacheRepos(t *testing.T) {
	cache, _ := cacheTree(t)
	got, err := Repos(cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gpt2", "org/model", "org/two"}; !slices.Equal(got, want) {
		t.Fatalf("Repos = %q, want %q", got, want)
	}
	if _, err := Repos(filepath.Join(cache, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Repos of a missing folder: %v", err)
	}
}

// cacheStage writes files into repoDir/.staging and returns them staged.
func cacheStage(t *testing.T, repoDir string, files map[string][]byte) []StagedFile {
	t.Helper()
	var out []StagedFile
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range files {
			if !yield(p) {
				return
			}
		}
	}) {
		abs := filepath.Join(repoDir, ".staging", filepath.FromSlash(p)+".part")
		cacheWrite(t, abs, files[p])
		out = append(out, StagedFile{Path: p, Abs: abs, SHA256: cacheSum(files[p])})
	}
	return out
}

// cacheCheckLayout checks that repoDir holds the snapshot of files at
// commit, every path a relative link to its blob, and refs/ref = commit.
func cacheCheckLayout(t *testing.T, repoDir, commit, ref string, files map[string][]byte) {
	t.Helper()
	for p, data := range files {
		link := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(p))
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want := strings.Repeat("../", 2+strings.Count(p, "/")) + "blobs/" + hex.EncodeToString(cacheSum(data))
		if target != want {
			t.Fatalf("%s links to %q, want %q", p, target, want)
		}
		got, err := os.ReadFile(link)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s reads %d bytes (%v), want %d", p, len(got), err, len(data))
		}
		st, err := os.Lstat(filepath.Join(repoDir, "blobs", hex.EncodeToString(cacheSum(data))))
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("blob of %s: %v", p, err)
		}
	}
	if ref != "" {
		b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(ref)))
		if err != nil || string(b) != commit {
			t.Fatalf("refs/%s = %q (%v), want %q with no newline", ref, b, err, commit)
		}
	}
}

func cacheNoStaged(t *testing.T, staged []StagedFile) {
	t.Helper()
	for _, f := range staged {
		if _, err := os.Lstat(f.Abs); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("staged %s still there (%v)", f.Path, err)
		}
	}
}

func TestCacheWriteSnapshot(t *testing.T) {
	cache := t.TempDir()
	repoDir, err := RepoDir(cache, "shoal/test-model")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"config.json":                 []byte(`{"a":1}`),
		"model.safetensors":           bytes.Repeat([]byte{1, 2, 3}, 10000),
		"tokenizer/tokenizer.json":    []byte(`{"t":true}`),
		"tokenizer/special/vocab.txt": []byte("a\nb\n"),
		"same.bin":                    []byte(`{"a":1}`), // same bytes as config.json: one blob
		"empty.txt":                   nil,
	}
	staged := cacheStage(t, repoDir, files)
	if err := WriteSnapshot(repoDir, cacheCommitB, "main", staged); err != nil {
		t.Fatal(err)
	}
	cacheCheckLayout(t, repoDir, cacheCommitB, "main", files)
	cacheNoStaged(t, staged)
	snap, _, err := Snapshot(cache, "shoal/test-model", "")
	if err != nil || snap != filepath.Join(repoDir, "snapshots", cacheCommitB) {
		t.Fatalf("Snapshot after WriteSnapshot = %q, %v", snap, err)
	}
	if p, ok := Blob(repoDir, cacheSum(files["model.safetensors"]), 30000); !ok || p != filepath.Join(repoDir, "blobs", hex.EncodeToString(cacheSum(files["model.safetensors"]))) {
		t.Fatalf("Blob = %q, %v", p, ok)
	}

	t.Run("idempotent", func(t *testing.T) {
		// Again with the staged files gone (moved by the first call).
		if err := WriteSnapshot(repoDir, cacheCommitB, "main", staged); err != nil {
			t.Fatal(err)
		}
		cacheCheckLayout(t, repoDir, cacheCommitB, "main", files)
		// And with fresh staged copies: the blobs are kept, the copies removed.
		blob := filepath.Join(repoDir, "blobs", hex.EncodeToString(cacheSum(files["model.safetensors"])))
		before, err := os.Stat(blob)
		if err != nil {
			t.Fatal(err)
		}
		again := cacheStage(t, repoDir, files)
		if err := WriteSnapshot(repoDir, cacheCommitB, "main", again); err != nil {
			t.Fatal(err)
		}
		cacheCheckLayout(t, repoDir, cacheCommitB, "main", files)
		cacheNoStaged(t, again)
		after, err := os.Stat(blob)
		if err != nil || !os.SameFile(before, after) {
			t.Fatalf("existing blob was replaced (%v)", err)
		}
		ents, err := os.ReadDir(filepath.Join(repoDir, "refs"))
		if err != nil || len(ents) != 1 {
			t.Fatalf("refs holds %d entries (%v): a temporary file left behind?", len(ents), err)
		}
	})

	t.Run("second revision", func(t *testing.T) {
		next := map[string][]byte{
			"config.json":       []byte(`{"a":2}`),
			"model.safetensors": files["model.safetensors"], // unchanged: the same blob
		}
		staged := cacheStage(t, repoDir, next)
		if err := WriteSnapshot(repoDir, cacheCommitA, "main", staged); err != nil {
			t.Fatal(err)
		}
		cacheCheckLayout(t, repoDir, cacheCommitA, "main", next)
		cacheCheckLayout(t, repoDir, cacheCommitB, "", files) // the old snapshot still resolves
		if snap, _, err := Snapshot(cache, "shoal/test-model", cacheCommitB); err != nil || !strings.HasSuffix(snap, cacheCommitB) {
			t.Fatalf("old snapshot: %q, %v", snap, err)
		}
	})

	t.Run("replaces a wrong link, a copy and a bad blob", func(t *testing.T) {
		snapDir := filepath.Join(repoDir, "snapshots", cacheCommitB)
		if err := os.Remove(filepath.Join(snapDir, "config.json")); err != nil {
			t.Fatal(err)
		}
		cacheSymlink(t, "../../blobs/elsewhere", filepath.Join(snapDir, "config.json"))
		if err := os.Remove(filepath.Join(snapDir, "same.bin")); err != nil {
			t.Fatal(err)
		}
		cacheWrite(t, filepath.Join(snapDir, "same.bin"), []byte("a copy"))
		vocab := filepath.Join(repoDir, "blobs", hex.EncodeToString(cacheSum(files["tokenizer/special/vocab.txt"])))
		cacheWrite(t, vocab, []byte("truncated")) // wrong size: replaced
		staged := cacheStage(t, repoDir, files)
		if err := WriteSnapshot(repoDir, cacheCommitB, "refs/pr/1", staged); err != nil {
			t.Fatal(err)
		}
		cacheCheckLayout(t, repoDir, cacheCommitB, "refs/pr/1", files)
		cacheCheckLayout(t, repoDir, cacheCommitA, "main", map[string][]byte{"model.safetensors": files["model.safetensors"]})
	})
}

func TestCacheWriteSnapshotRefuses(t *testing.T) {
	fresh := func(t *testing.T) (cache, repoDir string) {
		cache = t.TempDir()
		repoDir = filepath.Join(cache, "models--org--model")
		if err := os.MkdirAll(repoDir, 0o755); err != nil {
			t.Fatal(err)
		}
		return cache, repoDir
	}
	data := []byte("payload")
	for _, tc := range []struct {
		name         string
		commit, ref  string
		path         string
		wrongSum     bool
		stageOutside bool
	}{
		{name: "dot-dot path", commit: cacheCommitA, path: "../x"},
		{name: "deep dot-dot path", commit: cacheCommitA, path: "a/../../../x"},
		{name: "absolute path", commit: cacheCommitA, path: "/tmp/x"},
		{name: "backslash path", commit: cacheCommitA, path: `..\x`},
		{name: "commit not hex", commit: "../../../../tmp/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", path: "x"},
		{name: "commit upper case", commit: strings.ToUpper(cacheCommitB), path: "x"},
		{name: "ref escapes", commit: cacheCommitA, ref: "../../x", path: "x"},
		{name: "ref hidden", commit: cacheCommitA, ref: ".main", path: "x"},
		{name: "short sha256", commit: cacheCommitA, path: "x", wrongSum: true},
		{name: "staged outside the repo", commit: cacheCommitA, path: "x", stageOutside: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache, repoDir := fresh(t)
			abs := filepath.Join(repoDir, ".staging", "f")
			if tc.stageOutside {
				abs = filepath.Join(cache, "f")
			}
			cacheWrite(t, abs, data)
			f := StagedFile{Path: tc.path, Abs: abs, SHA256: cacheSum(data)}
			if tc.wrongSum {
				f.SHA256 = f.SHA256[:20]
			}
			if err := WriteSnapshot(repoDir, tc.commit, tc.ref, []StagedFile{f}); err == nil {
				t.Fatal("WriteSnapshot succeeded")
			}
			// Nothing landed outside the repo folder, and the staged file
			// is untouched.
			ents, err := os.ReadDir(cache)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name() != "models--org--model" && !(tc.stageOutside && e.Name() == "f") {
					t.Fatalf("%s appeared in the cache folder", e.Name())
				}
			}
			if got, err := os.ReadFile(abs); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("staged file: %q, %v", got, err)
			}
		})
	}

	// A layout tampered with: folders of the snapshot, the refs or the
	// blobs replaced by symlinks out of the repo. Nothing is written there.
	for _, tc := range []struct{ name, link, path, ref string }{
		{"snapshot subfolder", "snapshots/" + cacheCommitA + "/sub", "sub/x.bin", ""},
		{"snapshot folder", "snapshots/" + cacheCommitA, "x.bin", ""},
		{"snapshots", "snapshots", "x.bin", ""},
		{"refs", "refs", "x.bin", "main"},
		{"blobs", "blobs", "x.bin", ""},
	} {
		t.Run("symlinked "+tc.name, func(t *testing.T) {
			_, repoDir := fresh(t)
			outside := t.TempDir()
			cacheSymlink(t, outside, filepath.Join(repoDir, filepath.FromSlash(tc.link)))
			abs := filepath.Join(repoDir, ".staging", "f")
			cacheWrite(t, abs, data)
			err := WriteSnapshot(repoDir, cacheCommitA, tc.ref, []StagedFile{{Path: tc.path, Abs: abs, SHA256: cacheSum(data)}})
			if err == nil {
				t.Fatal("WriteSnapshot succeeded")
			}
			ents, err := os.ReadDir(outside)
			if err != nil || len(ents) != 0 {
				t.Fatalf("%d entries written outside the repo (%v)", len(ents), err)
			}
			// Refused before anything moved.
			if _, err := os.Stat(abs); err != nil {
				t.Fatalf("staged file moved before the refusal: %v", err)
			}
		})
	}
}

func TestCacheBlob(t *testing.T) {
	_, repoDir := func() (string, string) {
		c := t.TempDir()
		return c, filepath.Join(c, "models--org--model")
	}()
	data := []byte("blob bytes")
	sum := cacheSum(data)
	name := hex.EncodeToString(sum)
	cacheWrite(t, filepath.Join(repoDir, "blobs", name), data)
	if p, ok := Blob(repoDir, sum, int64(len(data))); !ok || p != filepath.Join(repoDir, "blobs", name) {
		t.Fatalf("Blob = %q, %v", p, ok)
	}
	if _, ok := Blob(repoDir, sum, int64(len(data))+1); ok {
		t.Fatal("Blob of the wrong size found")
	}
	if _, ok := Blob(repoDir, sum[:31], int64(len(data))); ok {
		t.Fatal("Blob of a 31-byte digest found")
	}
	if _, ok := Blob(repoDir, cacheSum([]byte("other")), 5); ok {
		t.Fatal("absent Blob found")
	}
	// A blob that is a symlink, or reached through a symlinked blobs
	// folder, is not present.
	other := []byte("other blob")
	outside := t.TempDir()
	cacheWrite(t, filepath.Join(outside, hex.EncodeToString(cacheSum(other))), other)
	cacheSymlink(t, filepath.Join(outside, hex.EncodeToString(cacheSum(other))), filepath.Join(repoDir, "blobs", hex.EncodeToString(cacheSum(other))))
	if _, ok := Blob(repoDir, cacheSum(other), int64(len(other))); ok {
		t.Fatal("symlinked Blob found")
	}
	repo2 := filepath.Join(t.TempDir(), "models--org--two")
	cacheSymlink(t, outside, filepath.Join(repo2, "blobs"))
	if _, ok := Blob(repo2, cacheSum(other), int64(len(other))); ok {
		t.Fatal("Blob through a symlinked blobs folder found")
	}
}
