package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// plant writes, as a local user sharing the output folder could, a fetch
// state naming root and logging every file as done, beside files of the
// right sizes full of 'E'. lines makes the log line for file i from the
// planted file's size and mtime.
func plant(t *testing.T, out string, im *Added, lines func(i int, fi os.FileInfo) string) {
	t.Helper()
	sd := filepath.Join(out, fetch.StateDir)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for i, f := range im.M.Files {
		p := filepath.Join(out, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("E", int(f.Size))), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		log.WriteString(lines(i, fi) + "\n")
	}
	if err := os.WriteFile(filepath.Join(sd, "root"), []byte(im.Root.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, "done"), []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Threat 24: a planted fetch state (the target root, every file logged as
// done, files of the right size full of 'E'), even by this same user with
// exact sizes and mtimes, is not trusted: log lines carry a tag only this
// home's key makes. The fetch writes the model's bytes.
func TestPlantedLogNotTrusted(t *testing.T) {
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 4, nil)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	// Old and current formats, the current one with the planted files'
	// exact sizes and mtimes, and a made-up tag: none is this home's.
	plant(t, out, im, func(i int, fi os.FileInfo) string {
		return fmt.Sprintf("f %d\nf %d %d %d\nf %d %d %d 0123456789abcdef0123456789abcdef",
			i, i, fi.Size(), fi.ModTime().UnixNano(), i, fi.Size(), fi.ModTime().UnixNano())
	})
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	rep, err := Verify(ctx, home.Home{}, fetcher.Index, im.M.Root, nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify after the fetch: %+v %v", rep, err)
	}
}

// Threat 24: the same plant in today's log format, with sizes and mtimes
// that match, by another user: refused before anything is trusted (needs
// root to make files owned by someone else). With the state folder gone,
// the files of the plant are hashed and replaced.
func TestPlantedLogOfAnotherUserNotTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant files owned by another user")
	}
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 4, nil)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	plant(t, out, im, func(i int, fi os.FileInfo) string {
		return fmt.Sprintf("f %d %d %d", i, fi.Size(), fi.ModTime().UnixNano())
	})
	const nobody = 65534
	if err := os.Lchown(out, 0, 0); err != nil {
		t.Skipf("cannot chown here (a user namespace?): %v", err)
	}
	err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == out {
			return err
		}
		// Keep the mtimes the log names.
		if err := os.Lchown(p, nobody, nobody); err != nil {
			return err
		}
		return os.Chtimes(p, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fetcher.Get(ctx, im.M.Root, out, GetOptions{Force: true})
	if err == nil || !strings.Contains(err.Error(), "not made by you") {
		t.Fatalf("a fetch state planted by another user: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(out, fetch.StateDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// Threat 24, the careless user: a fetch of model A is interrupted, then
// model B is fetched into the same folder with --force. A's log is
// discarded, not merged: B's bytes land, and verify agrees.
func TestForceOverAnotherRootStartsClean(t *testing.T) {
	ctx := ctxT(t)
	addr, _, _, imA := seeders(t, 1, 24, func(c *home.Config) { c.MaxUpload = "8MB/s" })
	modelB := filepath.Join(t.TempDir(), "modelB")
	if _, err := testmodel.Folder(modelB, 24, 99); err != nil {
		t.Fatal(err)
	}
	seedB := newTestNode(t, addr)
	imB, err := seedB.Add(ctx, modelB, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	cctx, cancel := context.WithCancel(ctx)
	_, err = fetcher.Get(cctx, imA.M.Root, out, GetOptions{Progress: func(p fetch.Progress) {
		if p.Total > 0 && p.Done > p.Total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch of A: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, fetch.StateDir, "done")); err != nil {
		t.Fatalf("the interrupted fetch left no log: the test proves nothing (%v)", err)
	}
	if _, err := fetcher.Get(ctx, imB.M.Root, out, GetOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, home.Home{}, fetcher.Index, imB.M.Root, nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify of B: %+v %v", rep, err)
	}
	for _, f := range imB.M.Files {
		want, _ := os.ReadFile(filepath.Join(modelB, filepath.FromSlash(f.Path)))
		got, _ := os.ReadFile(filepath.Join(out, filepath.FromSlash(f.Path)))
		if string(want) != string(got) {
			t.Fatalf("%s: not B's bytes", f.Path)
		}
	}
}
