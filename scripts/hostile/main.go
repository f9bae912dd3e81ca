// Command hostile is a hostile peer for the end-to-end script: it joins the
// DHT, provides a manifest whose file paths are unsafe (../ by default),
// prints the root CID and serves the manifest until killed.
//
//	go run ./scripts/hostile --bootstrap ADDR [--path ../../evil.txt]...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/hostile"
	"github.com/shoal-p2p/shoal/node"
	"github.com/shoal-p2p/shoal/protocol"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var paths list
	boot := flag.String("bootstrap", "", "bootstrap multiaddr")
	flag.Var(&paths, "path", "unsafe path to put in the manifest (repeatable)")
	stall := flag.String("stall", "", "instead: claim this root in have-maps, announce it, and never send a byte of it")
	flag.Parse()
	if len(paths) == 0 {
		paths = list{"../../evil.txt"}
	}
	if err := run(*boot, paths, *stall); err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

func run(boot string, paths []string, stall string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, blocks, err := hostile.Manifest(paths...)
	if err != nil {
		return err
	}
	var store protocol.Store = hostile.Blocks(blocks)
	if stall != "" {
		if root, err = content.ParseCID(stall); err != nil {
			return err
		}
		store = hostile.Staller{Root: root}
	}
	dir, err := os.MkdirTemp("", "hostile")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	idx, err := content.OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		return err
	}
	defer idx.Close()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return err
	}
	cfg := home.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.DHTMode = "server"
	if boot != "" {
		cfg.Bootstrap = []string{boot}
	}
	n, err := node.New(cfg, key, idx, nil)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Bootstrap(ctx); err != nil {
		return err
	}
	srv := &protocol.Server{Store: store}
	n.Host.SetStreamHandler(protocol.ID, srv.Handle)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.DHT.Provide(pctx, root, true); err != nil {
		return err
	}
	fmt.Println(root)
	<-ctx.Done()
	return nil
}
