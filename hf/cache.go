package hf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shoal-p2p/shoal/content"
)

// The Hugging Face cache layout, as huggingface_hub writes it
// (https://huggingface.co/docs/hub/local-cache):
//
//	<cache>/models--<org>--<name>/
//	    blobs/<etag>                 file bytes; an LFS file's etag is its sha256 hex
//	    snapshots/<commit>/<path>    relative symlink ../../blobs/<etag> (one more ../ a folder)
//	    refs/<ref>                   the commit hash of branch or tag <ref>, no newline
//
// huggingface_hub, offline (local_files_only=True), resolves a revision
// as Snapshot does: a 40-hex revision names snapshots/<rev>; anything else
// is read from refs/<rev>. It reads a ref file whole, without trimming,
// so a ref is written without a newline.

// cacheRepoPrefix starts the folder name of a model repo in the cache.
const cacheRepoPrefix = "models--"

// cacheMaxRepoPart is the longest part of a repo id huggingface_hub
// accepts (validate_repo_id).
const cacheMaxRepoPart = 96

// cacheMaxRef is the most bytes read from a ref file.
const cacheMaxRef = 256

// CacheDir is the Hugging Face hub cache folder named by the environment,
// found as huggingface_hub finds it: HF_HUB_CACHE, then the older
// HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub, then
// $XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub. An
// empty variable counts as unset; a leading ~ is the home folder. The
// folder need not exist.
func CacheDir() (string, error) {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if d := os.Getenv(v); d != "" {
			return cacheExpand(d)
		}
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		home, err := cacheExpand(d)
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "hub"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		xdg, err := cacheExpand(d)
		if err != nil {
			return "", err
		}
		return filepath.Join(xdg, "huggingface", "hub"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("hugging face cache: no HF_HUB_CACHE or HF_HOME, and %w", err)
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), nil
}

// cacheExpand makes a folder from the environment absolute, reading a
// leading ~ as the home folder.
func cacheExpand(d string) (string, error) {
	if d == "~" || strings.HasPrefix(d, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("hugging face cache %s: %w", content.Quote(d), err)
		}
		d = filepath.Join(home, d[1:])
	}
	return filepath.Abs(d)
}

// RepoDir is the cache folder of a model repo: cacheDir/models--org--name
// for the repo id "org/name". The id is checked first, with
// huggingface_hub's rules (validate_repo_id) restricted to
// ASCII: "name" or "namespace/name"; each part of [A-Za-z0-9._-], at
// most 96 bytes, starting and ending with a letter, digit or _; no "--"
// or ".." anywhere (so the folder name maps back to one repo id) and no
// ".git" suffix. A one-part id ("gpt2") is a legacy Hub model the cache
// may hold as models--gpt2.
func RepoDir(cacheDir, repo string) (string, error) {
	if err := cacheCheckRepo(repo); err != nil {
		return "", err
	}
	return filepath.Join(cacheDir, cacheRepoPrefix+strings.ReplaceAll(repo, "/", "--")), nil
}

func cacheCheckRepo(repo string) error {
	bad := func(why string) error {
		return fmt.Errorf("hugging face repo id %s: %s", content.Quote(repo), why)
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return bad(`want "name" or "namespace/name"`)
	}
	for _, p := range parts {
		if !cacheRepoPart(p) {
			return bad("each part is 1 to 96 of A-Z a-z 0-9 . _ -, and starts and ends with a letter, digit or _")
		}
	}
	switch {
	case strings.Contains(repo, "--") || strings.Contains(repo, ".."):
		return bad(`"--" and ".." are not allowed`)
	case strings.HasSuffix(repo, ".git"):
		return bad(`ends in ".git"`)
	}
	return nil
}

func cacheRepoPart(p string) bool {
	if p == "" || len(p) > cacheMaxRepoPart {
		return false
	}
	word := func(c byte) bool {
		return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	}
	for i := range len(p) {
		if c := p[i]; !word(c) && c != '-' && c != '.' {
			return false
		}
	}
	return word(p[0]) && word(p[len(p)-1])
}

// cacheIsCommit reports a git commit hash as the Hub writes it: 40
// lower-case hex digits (huggingface_hub's REGEX_COMMIT_HASH).
func cacheIsCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// cacheCheckRef accepts a branch or tag name, possibly with slashes
// ("refs/pr/1"): a safe relative path (content.CheckPath) with no
// component starting with a dot.
func cacheCheckRef(ref string) error {
	if err := content.CheckPath(ref); err != nil {
		return fmt.Errorf("revision: %w", err)
	}
	for c := range strings.SplitSeq(ref, "/") {
		if strings.HasPrefix(c, ".") {
			return fmt.Errorf("revision %s: a component starts with a dot", content.Quote(ref))
		}
	}
	return nil
}

// Snapshot finds the snapshot folder of repo at revision rev and returns
// it with the repo folder, the only place the snapshot's symlinks may
// point into. A 40-hex rev names the snapshot folder; any other rev is a
// branch or tag whose commit is read from refs/<rev>; "" means "main",
// and when refs/main is missing and exactly one snapshot exists, that
// one is taken. Every step stays inside the repo folder: a ref or a snapshot folder
// that is a symlink out of it is refused. A missing repo, ref or
// snapshot is an error wrapping fs.ErrNotExist. The files in the
// snapshot are not looked at (a dangling link is the caller's to skip).
func Snapshot(cacheDir, repo, rev string) (snap, repoDir string, err error) {
	repoDir, err = RepoDir(cacheDir, repo)
	if err != nil {
		return "", "", err
	}
	root, err := os.OpenRoot(repoDir)
	if err != nil {
		return "", "", fmt.Errorf("%s is not in the hugging face cache %s: %w", content.Quote(repo), content.Quote(cacheDir), err)
	}
	defer root.Close()
	commit := rev
	if !cacheIsCommit(rev) {
		ref := rev
		if ref == "" {
			ref = "main"
		}
		if err := cacheCheckRef(ref); err != nil {
			return "", "", err
		}
		commit, err = cacheReadRef(root, ref)
		if errors.Is(err, fs.ErrNotExist) && ref == "main" {
			commit, err = cacheOnlySnapshot(root)
		}
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", content.Quote(repo), err)
		}
	}
	st, err := root.Lstat(filepath.Join("snapshots", commit))
	if err != nil {
		return "", "", fmt.Errorf("%s: no snapshot %s in the cache: %w", content.Quote(repo), commit, err)
	}
	if !st.IsDir() {
		return "", "", fmt.Errorf("%s: snapshots/%s is not a folder (%s)", content.Quote(repo), commit, st.Mode().Type())
	}
	return filepath.Join(repoDir, "snapshots", commit), repoDir, nil
}

// cacheReadRef reads the commit hash in refs/<ref>.
func cacheReadRef(root *os.Root, ref string) (string, error) {
	name := filepath.Join("refs", filepath.FromSlash(ref))
	f, err := root.Open(name)
	if err != nil {
		return "", fmt.Errorf("ref %s: %w", content.Quote(ref), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("ref %s: not a regular file", content.Quote(ref))
	}
	b, err := io.ReadAll(io.LimitReader(f, cacheMaxRef))
	if err != nil {
		return "", fmt.Errorf("ref %s: %w", content.Quote(ref), err)
	}
	commit := strings.TrimSpace(string(b))
	if !cacheIsCommit(commit) {
		return "", fmt.Errorf("ref %s holds %s, not a commit hash", content.Quote(ref), content.Quote(commit))
	}
	return commit, nil
}

// cacheOnlySnapshot returns the commit of the one snapshot folder of a
// repo, or an error when there is none or more than one.
func cacheOnlySnapshot(root *os.Root) (string, error) {
	d, err := root.Open("snapshots")
	if err != nil {
		return "", fmt.Errorf("no refs/main and no snapshots: %w", err)
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return "", fmt.Errorf("snapshots: %w", err)
	}
	var found []string
	for _, e := range ents {
		if e.IsDir() && cacheIsCommit(e.Name()) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no refs/main and no snapshot: %w", fs.ErrNotExist)
	default:
		return "", fmt.Errorf("no refs/main and %d snapshots: name a revision", len(found))
	}
}

// Repos lists the model repos in the cache folder, sorted: the ids of
// the folders models--… whose names map back to a valid repo id.
// Datasets, spaces and anything else are left out; a repo is listed
// whether or not it has a usable snapshot (Snapshot tells).
func Repos(cacheDir string) ([]string, error) {
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("hugging face cache: %w", err)
	}
	var repos []string
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), cacheRepoPrefix)
		if !ok {
			continue
		}
		repo := strings.ReplaceAll(name, "--", "/")
		if cacheCheckRepo(repo) != nil {
			continue
		}
		if st, err := os.Stat(filepath.Join(cacheDir, e.Name())); err != nil || !st.IsDir() {
			continue
		}
		repos = append(repos, repo)
	}
	slices.Sort(repos)
	return repos, nil
}

// StagedFile is a complete, verified file ready to enter the cache:
// where it lies now and what it is in the manifest.
type StagedFile struct {
	Path   string // manifest path, slash-separated
	Abs    string // absolute path of the staged file, inside the repo folder
	SHA256 []byte // whole-file sha256, 32 bytes: the blob's name
}

// WriteSnapshot enters a model fetched by Shoal into the cache folder of
// its repo: it moves each staged file to blobs/<sha256 hex> (or, when
// that blob is already there, keeps the blob and removes the staged
// copy), makes snapshots/<commit>/<path> a relative symlink to the blob
// (replacing a link or file already there), and writes refs/<ref> =
// commit through a temporary file and a rename.
//
// repoDir must exist and every staged file must lie inside it (the moves
// are renames); commit is 40 lower-case hex digits; ref "" writes no
// ref. A blob already present is kept only when it is a regular file of
// the staged file's size; otherwise the staged file replaces it. Paths
// must pass content.CheckPaths, and every write goes through an os.Root
// on repoDir with no symlink followed on the way to a link: a layout
// tampered with (a folder of the snapshot replaced by a symlink) is an
// error, never a write elsewhere. The ref is written last, so it never
// names a snapshot half made. Calling it again with the same files is a
// no-op, also once the staged files are gone (moved by the first call).
func WriteSnapshot(repoDir, commit, ref string, files []StagedFile) error {
	if !cacheIsCommit(commit) {
		return fmt.Errorf("hugging face cache: commit %s is not 40 lower-case hex digits", content.Quote(commit))
	}
	if ref != "" {
		if err := cacheCheckRef(ref); err != nil {
			return err
		}
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
		if len(f.SHA256) != 32 {
			return fmt.Errorf("hugging face cache: %s: sha256 of %d bytes", content.Quote(f.Path), len(f.SHA256))
		}
	}
	if err := content.CheckPaths(paths); err != nil {
		return fmt.Errorf("hugging face cache: %w", err)
	}
	root, err := os.OpenRoot(repoDir)
	if err != nil {
		return fmt.Errorf("hugging face cache: %w", err)
	}
	defer root.Close()
	snap := path.Join("snapshots", commit)
	made := map[string]bool{}
	dirs := []string{"blobs", snap}
	if ref != "" {
		dirs = append(dirs, path.Dir(path.Join("refs", ref)))
	}
	for _, f := range files {
		dirs = append(dirs, path.Dir(path.Join(snap, f.Path)))
	}
	// Every folder is checked (and made) before a file is moved.
	for _, d := range dirs {
		if err := cacheMkdirs(root, d, made); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := cacheMoveBlob(root, repoDir, f); err != nil {
			return err
		}
	}
	if err := cacheSyncDir(root, "blobs"); err != nil {
		return err
	}
	linkDirs := map[string]bool{snap: true}
	for _, f := range files {
		dir, err := cacheLink(root, snap, f, made)
		if err != nil {
			return err
		}
		linkDirs[dir] = true
	}
	for d := range linkDirs {
		if err := cacheSyncDir(root, d); err != nil {
			return err
		}
	}
	if ref == "" {
		return nil
	}
	return cacheWriteRef(root, ref, commit, made)
}

// cacheMkdirs makes the folder rel (slash-separated) and its parents
// inside root, refusing any component that exists as something other
// than a folder (a symlink included). made remembers folders checked.
func cacheMkdirs(root *os.Root, rel string, made map[string]bool) error {
	at := ""
	for c := range strings.SplitSeq(rel, "/") {
		at = path.Join(at, c)
		if made[at] {
			continue
		}
		name := filepath.FromSlash(at)
		st, err := root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("hugging face cache: %w", err)
			}
			if st, err = root.Lstat(name); err != nil {
				return fmt.Errorf("hugging face cache: %w", err)
			}
		case err != nil:
			return fmt.Errorf("hugging face cache: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("hugging face cache: %s in %s is a %s, not a folder", content.Quote(at), content.Quote(root.Name()), cacheKind(st))
		}
		made[at] = true
	}
	return nil
}

func cacheKind(st fs.FileInfo) string {
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	case st.Mode().IsRegular():
		return "file"
	case st.IsDir():
		return "folder"
	default:
		return st.Mode().Type().String()
	}
}

// cacheMoveBlob moves a staged file to blobs/<sha256 hex>, or removes it
// when that blob is already there.
func cacheMoveBlob(root *os.Root, repoDir string, f StagedFile) error {
	blob := filepath.Join("blobs", hex.EncodeToString(f.SHA256))
	rel, err := filepath.Rel(repoDir, f.Abs)
	if err != nil || !filepath.IsAbs(f.Abs) || !filepath.IsLocal(rel) {
		return fmt.Errorf("hugging face cache: staged file %s is not inside %s", content.Quote(f.Abs), content.Quote(repoDir))
	}
	bst, berr := root.Lstat(blob)
	if berr != nil && !errors.Is(berr, fs.ErrNotExist) {
		return fmt.Errorf("hugging face cache: %w", berr)
	}
	haveBlob := berr == nil && bst.Mode().IsRegular()
	sst, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist) && haveBlob:
		return nil // moved by an earlier call
	case err != nil:
		return fmt.Errorf("hugging face cache: staged file for %s: %w", content.Quote(f.Path), err)
	case !sst.Mode().IsRegular():
		return fmt.Errorf("hugging face cache: staged file %s is a %s", content.Quote(f.Abs), cacheKind(sst))
	case rel == blob:
		return nil // staged in place
	case haveBlob && bst.Size() == sst.Size():
		if err := root.Remove(rel); err != nil {
			return fmt.Errorf("hugging face cache: %w", err)
		}
		return nil
	case berr == nil && bst.IsDir():
		return fmt.Errorf("hugging face cache: %s is a folder", content.Quote(blob))
	}
	// No blob, a blob of the wrong size, or a symlink: the staged file
	// takes the name (rename replaces a link, never follows it).
	if err := root.Rename(rel, blob); err != nil {
		return fmt.Errorf("hugging face cache: %w", err)
	}
	return nil
}

// cacheLink makes snap/<f.Path> a relative symlink to f's blob and returns
// the folder it is in.
func cacheLink(root *os.Root, snap string, f StagedFile, made map[string]bool) (string, error) {
	rel := path.Join(snap, f.Path)
	dir := path.Dir(rel)
	if err := cacheMkdirs(root, dir, made); err != nil {
		return "", err
	}
	target := strings.Repeat("../", 2+strings.Count(f.Path, "/")) + "blobs/" + hex.EncodeToString(f.SHA256)
	name := filepath.FromSlash(rel)
	st, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := root.Symlink(target, name); err != nil {
			return "", fmt.Errorf("hugging face cache: %w", err)
		}
		return dir, nil
	case err != nil:
		return "", fmt.Errorf("hugging face cache: %w", err)
	case st.IsDir():
		return "", fmt.Errorf("hugging face cache: %s is a folder", content.Quote(rel))
	case st.Mode()&fs.ModeSymlink != 0:
		if old, err := root.Readlink(name); err == nil && old == target {
			return dir, nil
		}
	}
	// Replace what is there (another link, or a copy) in one step: a
	// new link beside it, renamed over it.
	tmp := filepath.FromSlash(path.Join(dir, "."+path.Base(rel)+"."+rand.Text()+".tmp"))
	if err := root.Symlink(target, tmp); err != nil {
		return "", fmt.Errorf("hugging face cache: %w", err)
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return "", fmt.Errorf("hugging face cache: %w", err)
	}
	return dir, nil
}

// cacheWriteRef writes refs/<ref> = commit (no newline) through a
// temporary file renamed over the old one.
func cacheWriteRef(root *os.Root, ref, commit string, made map[string]bool) error {
	rel := path.Join("refs", ref)
	dir := path.Dir(rel)
	if err := cacheMkdirs(root, dir, made); err != nil {
		return err
	}
	tmp := filepath.FromSlash(path.Join(dir, "."+path.Base(rel)+"."+rand.Text()+".tmp"))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("hugging face cache: %w", err)
	}
	_, err = f.WriteString(commit)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, filepath.FromSlash(rel))
	}
	if err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("hugging face cache: ref %s: %w", content.Quote(ref), err)
	}
	return cacheSyncDir(root, dir)
}

// cacheSyncDir fsyncs a folder inside root, so the names in it are durable.
func cacheSyncDir(root *os.Root, rel string) error {
	d, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		return fmt.Errorf("hugging face cache: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("hugging face cache: sync %s: %w", content.Quote(rel), err)
	}
	return nil
}

// Blob returns the path of blobs/<sha256 hex> in repoDir when it is a
// regular file (not a symlink, not reached through one out of repoDir)
// of the given size. Its bytes are not hashed: a caller verifies them
// before trusting them.
func Blob(repoDir string, sha256 []byte, size int64) (string, bool) {
	if len(sha256) != 32 {
		return "", false
	}
	root, err := os.OpenRoot(repoDir)
	if err != nil {
		return "", false
	}
	defer root.Close()
	name := hex.EncodeToString(sha256)
	st, err := root.Lstat(filepath.Join("blobs", name))
	if err != nil || !st.Mode().IsRegular() || st.Size() != size {
		return "", false
	}
	return filepath.Join(repoDir, "blobs", name), true
}
