package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/node"
)

// app holds what every command shares: flags and the terminal.
type app struct {
	homeDir   string
	json      bool
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
}

func run(args []string) int { return runWith(args, os.Stdout, os.Stderr) }

// runWith runs the CLI with the given output streams and returns the exit
// code: 0, or 1 with a one-line error on stderr.
func runWith(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		msg := oneLine(err.Error())
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			msg = "interrupted"
			var h resumeHint
			if errors.As(err, &h) {
				msg += "; " + h.hint
			}
		}
		if a.json {
			_ = json.NewEncoder(a.stdout).Encode(map[string]string{"error": msg})
		}
		fmt.Fprintf(a.stderr, "shoal: %s\n", msg)
		return 1
	}
	return 0
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "Share model weights peer to peer, addressed by content hash",
		Long: `Shoal shares machine-learning model weights with no central host.
A model folder is addressed by one CID; peers find each other on a DHT and
move verified chunks directly.

  shoal daemon &             # run a node (serves what you add or fetch)
  shoal add ./my-model       # prints the model's CID; files stay in place
  shoal get <cid> -o ./model # fetch, verify and write a model

The home folder (--home, else $SHOAL_HOME, else ~/.shoal) holds the
identity key, config.toml and the index.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLog()
		},
	}
	root.PersistentFlags().StringVar(&a.homeDir, "home", "", "home folder (default $SHOAL_HOME, else ~/.shoal)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print results as JSON")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "warn", "log level: debug, info, warn, error (the daemon: info unless given)")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line, for log collectors)")
	root.AddCommand(a.initCmd(), a.daemonCmd(), a.idCmd(), a.addCmd(), a.getCmd(), a.inspectCmd(), a.lsCmd(), a.verifyCmd(),
		a.keyCmd(), a.trustCmd(), a.publishCmd(), a.resolveCmd(), a.statusCmd(), a.versionCmd(),
		a.pinCmd(), a.gcCmd(), a.mirrorCmd(), a.scrubCmd())
	// --version prints what `shoal version` does.
	root.Version = currentVersion().Version
	root.SetVersionTemplate(currentVersion().String())
	return root
}

func (a *app) setupLog() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	opt := &slog.HandlerOptions{Level: lvl}
	switch a.logFormat {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(a.stderr, opt)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(a.stderr, opt)))
	default:
		return fmt.Errorf("--log-format %q: want text or json", a.logFormat)
	}
	return nil
}

// suggestion is cobra's "Did you mean this?" block.
var suggestion = regexp.MustCompile(`(?s)\s*Did you mean this\?\s*(.*?)\s*$`)

// oneLine makes an error one readable line: a message of several lines
// (cobra's suggestions, libp2p's list of failed dials) is joined with
// "; ", and what is left that could drive a terminal is escaped.
func oneLine(msg string) string {
	msg = suggestion.ReplaceAllStringFunc(msg, func(m string) string {
		return " (did you mean " + strings.Join(strings.Fields(suggestion.FindStringSubmatch(m)[1]), " or ") + "?)"
	})
	return content.OneLine(msg)
}

// resumeHint is an error with what the user can do about it.
type resumeHint struct {
	error
	hint string
}

func (h resumeHint) Unwrap() error { return h.error }

// home resolves the home folder and creates it if needed.
func (a *app) home() (home.Home, error) {
	dir := a.homeDir
	if dir == "" {
		dir = os.Getenv("SHOAL_HOME")
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return home.Home{}, fmt.Errorf("no home folder: set --home or SHOAL_HOME")
		}
		dir = filepath.Join(h, ".shoal")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return home.Home{}, err
	}
	h := home.Home{Dir: abs}
	if _, err := h.Init(); err != nil {
		return h, fmt.Errorf("home %s: %w", abs, err)
	}
	return h, nil
}

// daemonStartWait is how long a command waits for a daemon that holds the
// home but has not written its API file yet (it is starting).
const daemonStartWait = 5 * time.Second

// connect resolves the home and returns the Service to talk to: the
// client of its daemon (daemon true), or, when none runs, an in-process
// node (*node.Local) over the home's configuration, which the command may
// adjust with its flags. A daemon that is still starting is waited for.
func (a *app) connect(ctx context.Context) (home.Home, api.Service, bool, error) {
	h, err := a.home()
	if err != nil {
		return h, nil, false, err
	}
	deadline := time.Now().Add(daemonStartWait)
	for {
		c, err := node.Dial(ctx, h)
		if err == nil {
			return h, c, true, nil
		}
		if !errors.Is(err, api.ErrNoDaemon) {
			return h, nil, false, err
		}
		if !homeLocked(h) {
			cfg, err := h.Config()
			if err != nil {
				return h, nil, false, err
			}
			return h, &node.Local{Home: h, Config: cfg, Log: slog.Default(),
				Note: func(msg string) { fmt.Fprintf(a.stderr, "note: %s\n", msg) }}, false, nil
		}
		if time.Now().After(deadline) {
			if addr, err := os.ReadFile(h.APIPath()); err == nil {
				return h, nil, false, fmt.Errorf("a daemon holds this home, but its API at %s does not answer (overloaded by connections, or stuck)", strings.TrimSpace(string(addr)))
			}
			return h, nil, false, node.ErrDaemonRunning
		}
		select {
		case <-ctx.Done():
			return h, nil, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// homeLocked reports whether another process holds the home's index.
func homeLocked(h home.Home) bool {
	idx, err := content.OpenIndex(h.IndexPath())
	if err != nil {
		return errors.Is(err, content.ErrLocked)
	}
	idx.Close()
	return false
}

// printJSON prints v as indented JSON, CIDs as plain strings.
func (a *app) printJSON(v any) error {
	b, err := edgeJSON(v)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = a.stdout.Write(out.Bytes())
	return err
}

// printEvent prints one event as a line of JSON (NDJSON), CIDs as plain
// strings.
func (a *app) printEvent(e api.Event) error {
	b, err := edgeJSON(e)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}

// cidLink is a CID as Go's JSON encodes a cid.Cid: a dag-json link.
var cidLink = regexp.MustCompile(`\{"/":"([a-z0-9]+)"\}`)

// edgeJSON encodes v for people and scripts: Go types keep CIDs as
// cid.Cid, whose JSON is the dag-json link {"/":"bafy..."}; at the edge a
// CID is its string, as "shoal get" takes it.
func edgeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return cidLink.ReplaceAll(b, []byte(`"$1"`)), nil
}

// isTerminal reports whether stderr is a terminal (for progress bars).
func (a *app) isTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exampleBlock indents examples for --help.
func exampleBlock(lines ...string) string {
	return "  " + strings.Join(lines, "\n  ")
}
