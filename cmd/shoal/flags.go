package main

import (
	"github.com/spf13/pflag"

	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/node"
)

// netFlags are the network settings a command may override for its run:
// the daemon's, or the in-process node's of a command run without one.
// Each applies once, here, over the home's config.toml.
type netFlags struct {
	boot, listen   []string
	maxUp, maxDown string
	noMDNS         bool
}

// register adds the flags; who says whose node they set ("", or "without
// a daemon: ").
func (f *netFlags) register(fs *pflag.FlagSet, who, listenDefault string) {
	fs.StringArrayVar(&f.boot, "bootstrap", nil, who+"bootstrap peer multiaddr with /p2p/ID (repeatable)")
	fs.StringArrayVar(&f.listen, "listen", nil, who+"multiaddr to listen on (repeatable; default "+listenDefault+")")
	fs.StringVar(&f.maxUp, "max-upload", "", who+"cap on upload rate, e.g. 20MB/s (default from config: none)")
	fs.StringVar(&f.maxDown, "max-download", "", who+"cap on download rate, e.g. 50MB/s (default from config: none)")
	fs.BoolVar(&f.noMDNS, "no-mdns", false, who+"do not look for peers on the local network (mDNS)")
}

// set reports whether any flag was given.
func (f *netFlags) set() bool {
	return len(f.boot) > 0 || len(f.listen) > 0 || f.maxUp != "" || f.maxDown != "" || f.noMDNS
}

// apply overrides cfg with the flags given.
func (f *netFlags) apply(cfg *home.Config) {
	if len(f.listen) > 0 {
		cfg.Listen = f.listen
	}
	if len(f.boot) > 0 {
		cfg.Bootstrap = f.boot
	}
	if f.maxUp != "" {
		cfg.MaxUpload = f.maxUp
	}
	if f.maxDown != "" {
		cfg.MaxDownload = f.maxDown
	}
	if f.noMDNS {
		cfg.MDNS = false
	}
}

// applyLocal sets the flags on an in-process node: its config, and its
// listen addresses (a short-lived node listens on any free port unless
// told otherwise).
func (f *netFlags) applyLocal(l *node.Local) {
	f.apply(&l.Config)
	l.Listen = f.listen
}
