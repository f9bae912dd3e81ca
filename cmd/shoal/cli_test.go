package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/node"
	"github.com/shoal-p2p/shoal/protocol"
)

func shoal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = runWith(args, &o, &e)
	return o.String(), e.String(), code
}

func TestHelpHasExamples(t *testing.T) {
	for _, c := range []string{"init", "daemon", "id", "add", "get", "ls", "verify", "key", "key create", "key list",
		"key export", "key import", "trust", "trust add", "trust rm", "trust list", "publish", "resolve", "status"} {
		out, _, code := shoal(t, append(strings.Fields(c), "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "shoal "+c) {
			t.Errorf("%s --help: code %d, no example:\n%s", c, code, out)
		}
	}
}

func TestBadInputOneLineError(t *testing.T) {
	hdir := t.TempDir()
	for _, args := range [][]string{
		{"get", "not-a-cid", "-o", t.TempDir() + "/x"},
		{"get", "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB", "-o", t.TempDir() + "/x"},
		{"get", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"},
		{"verify", "bafyreigdr7p32actjl2ytbevndqfucb7lgphqphlj2r2ztvqtxarsgypwa"},
		{"add", filepath.Join(t.TempDir(), "missing")},
		{"--log-level", "loud", "ls"},
		{"--log-format", "xml", "ls"},
	} {
		out, errOut, code := shoal(t, append([]string{"--home", hdir}, args...)...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "shoal: ") || out != "" {
			t.Errorf("%q: code %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// add, ls, verify without a daemon; an edited file fails verify; a name
// with a terminal escape is refused and printed escaped (threat 16).
func TestOfflineAddLsVerify(t *testing.T) {
	hdir := t.TempDir()
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, 2, 5); err != nil {
		t.Fatal(err)
	}
	evil := "evil\x1b[2Jname.txt"
	if err := os.WriteFile(filepath.Join(model, evil), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A name with a control character cannot be put in a manifest: add
	// refuses it, and prints the name escaped.
	_, errOut, code := shoal(t, "--home", hdir, "add", model)
	if code != 1 || strings.ContainsRune(errOut, 0x1b) || !strings.Contains(errOut, `evil\x1b[2Jname.txt`) {
		t.Fatalf("add of a name with an escape: %d %q", code, errOut)
	}
	os.Remove(filepath.Join(model, evil))
	out, errOut, code := shoal(t, "--home", hdir, "add", model)
	if code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	root := lines[len(lines)-1]
	if !strings.HasPrefix(root, "bafyrei") || strings.Contains(root, " ") {
		t.Fatalf("last line of add is not the CID: %q", out)
	}
	q, _, _ := shoal(t, "--home", hdir, "add", "--quiet", model)
	if strings.TrimSpace(q) != root {
		t.Fatalf("add --quiet = %q, want %q", q, root)
	}
	var roots []map[string]any
	js, _, _ := shoal(t, "--home", hdir, "--json", "ls")
	if err := json.Unmarshal([]byte(js), &roots); err != nil || len(roots) != 1 || roots[0]["root"] != root {
		t.Fatalf("ls --json: %v %s", err, js)
	}
	files, _, _ := shoal(t, "--home", hdir, "ls", root)
	if !strings.Contains(files, "pickle") {
		t.Fatalf("pickle file not marked:\n%s", files)
	}
	if out, errOut, code := shoal(t, "--home", hdir, "verify", root); code != 0 {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	p := filepath.Join(model, "config.json")
	if err := os.WriteFile(p, []byte(`{"edited":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, time.Now(), time.Now().Add(2*time.Second))
	out, errOut, code = shoal(t, "--home", hdir, "verify", root)
	if code != 1 || !strings.Contains(out, "config.json") || !strings.Contains(errOut, "verification failed") {
		t.Fatalf("verify after edit: %d\n%s\n%s", code, out, errOut)
	}
}

// A command that finds the home locked by a daemon still starting waits
// for its API instead of failing with "another shoal process".
func TestCommandWaitsForStartingDaemon(t *testing.T) {
	h := home.Home{Dir: t.TempDir()}
	if _, err := h.Init(); err != nil {
		t.Fatal(err)
	}
	// The daemon's first step, opening the index, stands in for a daemon
	// that is starting.
	idx, err := content.OpenIndex(h.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		idx.Close()
		cfg := home.DefaultConfig()
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.MDNS, cfg.PortMapping = false, false
		done <- node.RunDaemon(ctx, h, cfg, nil, nil)
	}()
	out, errOut, code := shoal(t, "--home", h.Dir, "id", "--json")
	if code != 0 || !strings.Contains(out, `"daemon_running": true`) {
		t.Fatalf("id during daemon start: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A symlink out of an added folder is skipped and named on stderr, and
// added with --follow-external-links (threat 26).
func TestAddSkipsLinkOutside(t *testing.T) {
	hdir := t.TempDir()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if _, err := testmodel.Folder(model, 1, 5); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "shadow")
	if err := os.WriteFile(secret, []byte("root:secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(model, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	secret, _ = filepath.EvalSymlinks(secret) // as add names it
	out, errOut, code := shoal(t, "--home", hdir, "add", model)
	if code != 0 || !strings.Contains(errOut, "skipped tokenizer.json: symlink to "+secret+", outside the folder") {
		t.Fatalf("add: %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if files, _, _ := shoal(t, "--home", hdir, "ls", lines[len(lines)-1]); strings.Contains(files, "\ntokenizer.json ") {
		t.Fatalf("the link outside was added:\n%s", files)
	}
	out, errOut, code = shoal(t, "--home", hdir, "add", "--follow-external-links", model)
	if code != 0 || strings.Contains(errOut, "tokenizer.json") {
		t.Fatalf("add --follow-external-links: %d\n%s\n%s", code, out, errOut)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if files, _, _ := shoal(t, "--home", hdir, "ls", lines[len(lines)-1]); !strings.Contains(files, "\ntokenizer.json ") {
		t.Fatalf("the link outside was not added with --follow-external-links:\n%s", files)
	}
}

// trust add over an existing petname refuses to re-point it without
// --force; adding the same binding again is fine.
func TestTrustAddNeedsForceToRepoint(t *testing.T) {
	hdir := t.TempDir()
	const k1, k2 = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	if _, errOut, code := shoal(t, "--home", hdir, "trust", "add", "alice", k1); code != 0 {
		t.Fatalf("trust add: %d %s", code, errOut)
	}
	if _, errOut, code := shoal(t, "--home", hdir, "trust", "add", "alice", k1); code != 0 {
		t.Fatalf("trust add of the same binding again: %d %s", code, errOut)
	}
	_, errOut, code := shoal(t, "--home", hdir, "trust", "add", "alice", k2)
	if code != 1 || !strings.Contains(errOut, "--force") || !strings.Contains(errOut, k1) {
		t.Errorf("re-pointing alice without --force: code %d, stderr %q", code, errOut)
	}
	if got := (home.Home{Dir: hdir}).Trusted()["alice"]; got != k1 {
		t.Fatalf("alice now names %s, want %s", got, k1)
	}
	if _, errOut, code := shoal(t, "--home", hdir, "trust", "add", "--force", "alice", k2); code != 0 {
		t.Fatalf("trust add --force: %d %s", code, errOut)
	}
	if got := (home.Home{Dir: hdir}).Trusted()["alice"]; got != k2 {
		t.Fatalf("after --force alice names %s, want %s", got, k2)
	}
}

// publish --ttl refuses a negative TTL (it made a record that never
// expires) and one under a minute, before anything is signed.
func TestPublishTTLRefused(t *testing.T) {
	hdir := t.TempDir()
	const root = "bafyreigdr7p32actjl2ytbevndqfucb7lgphqphlj2r2ztvqtxarsgypwa"
	for _, ttl := range []string{"-1h", "-1ns", "30s", "59s"} {
		out, errOut, code := shoal(t, "--home", hdir, "publish", "--ttl="+ttl, "llama", root)
		if code != 1 || out != "" || !strings.Contains(errOut, "--ttl") || !strings.Contains(errOut, "at least 1m") {
			t.Errorf("--ttl=%s: code %d, stdout %q, stderr %q", ttl, code, out, errOut)
		}
	}
}

// get of a raw chunk CID is refused before any node starts, with the
// node's own message.
func TestGetRawChunkCIDRefusedFirst(t *testing.T) {
	hdir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	const chunk = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	stdout, errOut, code := shoal(t, "--home", hdir, "get", chunk, "-o", out,
		"--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--timeout", "1s")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := "shoal: " + chunk + ": not a model root: it is a chunk (want a dag-cbor CID)"
	if code != 1 || stdout != "" || len(lines) != 1 || lines[0] != want {
		t.Fatalf("get of a chunk CID: code %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("output folder touched: %v", err)
	}
}

// verify tells the truth for every mix of ok, missing, changed and
// corrupt files: non-zero unless all are ok, each verdict printed, and
// never "the bytes match the CID" unless they do (a held root whose folder
// was deleted said so).
func TestVerifyVerdicts(t *testing.T) {
	hdir := t.TempDir()
	model := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"ok.bin", "missing.bin", "changed.bin", "corrupt.bin"} {
		if err := os.WriteFile(filepath.Join(model, name), bytes.Repeat([]byte{byte('a' + i)}, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := shoal(t, "--home", hdir, "add", "--quiet", model)
	if code != 0 {
		t.Fatalf("add: %s", errOut)
	}
	root := strings.TrimSpace(out)
	if out, _, code := shoal(t, "--home", hdir, "verify", root); code != 0 || !strings.Contains(out, "the bytes match") {
		t.Fatalf("verify of an intact model: %d\n%s", code, out)
	}
	os.Remove(filepath.Join(model, "missing.bin"))
	later := time.Now().Add(3 * time.Second)
	os.Chtimes(filepath.Join(model, "changed.bin"), later, later)
	if err := os.WriteFile(filepath.Join(model, "corrupt.bin"), bytes.Repeat([]byte{'E'}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = shoal(t, "--home", hdir, "verify", root)
	for _, want := range []string{"ok       ok.bin", "missing  missing.bin", "changed  changed.bin", "corrupt  corrupt.bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if code == 0 || strings.Contains(out, "match the CID") || !strings.Contains(errOut, "not held intact") {
		t.Fatalf("verify of a damaged model: exit %d\n%s\n%s", code, out, errOut)
	}
	// The whole folder gone.
	os.RemoveAll(model)
	out, errOut, code = shoal(t, "--home", hdir, "verify", root)
	if code == 0 || strings.Contains(out, "match the CID") || !strings.Contains(errOut, "4 missing") {
		t.Fatalf("verify of a deleted folder: exit %d\n%s\n%s", code, out, errOut)
	}
}

// version and --version say what was built: version, Go, the protocols
// and the chunking rules.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := shoal(t, args...)
		if code != 0 || !strings.HasPrefix(out, "shoal ") || !strings.Contains(out, runtime.Version()) ||
			!strings.Contains(out, protocol.ID) || !strings.Contains(out, fmt.Sprintf("chunker %d", content.ChunkerVersion)) {
			t.Errorf("%v: %d\n%s%s", args, code, out, errOut)
		}
	}
	out, _, _ := shoal(t, "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["go"] != runtime.Version() {
		t.Errorf("version --json: %v %s", err, out)
	}
}

// Without a terminal, get prints a plain progress line every few seconds;
// with --quiet nothing; with --json events.
func TestGetProgressWithoutTerminal(t *testing.T) {
	var errb, outb bytes.Buffer
	a := &app{stdout: &outb, stderr: &errb}
	p := a.getProgress(false)
	p.last = time.Now().Add(-progressEvery)
	p.update(api.Progress{Phase: "fetching", Done: 1 << 20, Total: 4 << 20, Peers: 2})
	p.update(api.Progress{Phase: "fetching", Done: 2 << 20, Total: 4 << 20, Peers: 2}) // too soon: not printed
	if got := errb.String(); got != "fetching: 1.0 MiB of 4.0 MiB (25%) from 2 peers\n" {
		t.Errorf("progress line: %q", got)
	}
	errb.Reset()
	q := a.getProgress(true)
	q.last = time.Now().Add(-progressEvery)
	q.update(api.Progress{Phase: "fetching", Done: 1, Total: 4})
	if errb.Len() != 0 || outb.Len() != 0 {
		t.Errorf("--quiet printed %q %q", errb.String(), outb.String())
	}
}

// publish that reaches no DHT peer says where the record is and is not,
// and fails; trust add confirms what it stored; a mistyped command is one
// line with the suggestion.
func TestPublishAloneFailsAndTrustConfirms(t *testing.T) {
	hdir := t.TempDir()
	const root = "bafyreigdr7p32actjl2ytbevndqfucb7lgphqphlj2r2ztvqtxarsgypwa"
	out, errOut, code := shoal(t, "--home", hdir, "publish", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "llama", root)
	if code != 1 || !strings.HasPrefix(out, "signed ") || !strings.Contains(errOut, "not on the DHT yet") || !strings.Contains(errOut, "kept in this home") {
		t.Errorf("publish with no peers: code %d\n%s%s", code, out, errOut)
	}
	const key = "12D3KooWSFQTvwAFXejYJ3R2yTXvjYg6cda9VkB6h3hKhrHSx2hB"
	out, errOut, code = shoal(t, "--home", hdir, "trust", "add", "alice", key)
	if code != 0 || !strings.Contains(out, "trusted "+key+" as alice") {
		t.Errorf("trust add: %d %q %q", code, out, errOut)
	}
	_, errOut, code = shoal(t, "gte")
	if code != 1 || errOut != "shoal: unknown command \"gte\" for \"shoal\" (did you mean get or gc?)\n" {
		t.Errorf("mistyped command: %d %q", code, errOut)
	}
}

// A file that grew is corrupt (another size), not "changed, bytes still
// match".
func TestVerifyGrownFileIsCorrupt(t *testing.T) {
	hdir := t.TempDir()
	model := filepath.Join(t.TempDir(), "model")
	os.MkdirAll(model, 0o755)
	p := filepath.Join(model, "w.bin")
	if err := os.WriteFile(p, bytes.Repeat([]byte{'w'}, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, _ := shoal(t, "--home", hdir, "add", "--quiet", model)
	root := strings.TrimSpace(out)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("garbage\n")
	f.Close()
	out, _, code := shoal(t, "--home", hdir, "verify", root)
	if code == 0 || !strings.Contains(out, "corrupt  w.bin: 5008 bytes, the model says 5000") {
		t.Fatalf("verify of a grown file: %d\n%s", code, out)
	}
}

// resolve with no daemon and nobody to ask says so, and what to pass.
func TestResolveAloneSaysWhy(t *testing.T) {
	hdir := t.TempDir()
	_, errOut, code := shoal(t, "--home", hdir, "resolve", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0",
		"12D3KooWSFQTvwAFXejYJ3R2yTXvjYg6cda9VkB6h3hKhrHSx2hB/llama")
	if code != 1 || !strings.Contains(errOut, "no record found") || !strings.Contains(errOut, "pass --bootstrap ADDR") {
		t.Fatalf("resolve alone: %d %q", code, errOut)
	}
}

// --log-format json writes each log line as one JSON object, for a log
// collector.
func TestLogFormatJSON(t *testing.T) {
	var errb bytes.Buffer
	a := &app{stdout: io.Discard, stderr: &errb, logLevel: "info", logFormat: "json"}
	if err := a.setupLog(); err != nil {
		t.Fatal(err)
	}
	defer slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	slog.Info("served", "peer", "p", "bytes", 42)
	var line map[string]any
	if err := json.Unmarshal(errb.Bytes(), &line); err != nil || line["msg"] != "served" || line["bytes"] != float64(42) {
		t.Fatalf("log line %q: %v", errb.String(), err)
	}
}
