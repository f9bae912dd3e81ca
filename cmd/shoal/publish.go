package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/node"
)

// errNotPublished reports a record signed and kept but put on no DHT.
var errNotPublished = errors.New("not published")

func (a *app) publishCmd() *cobra.Command {
	var key string
	var ttl time.Duration
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "publish NAME CID",
		Short: "Sign a record binding NAME to CID and put it on the DHT",
		Long: `Sign, with a publisher key (the node identity by default), a record
saying this key publishes CID as NAME, with a sequence number one above
any seen for that name, and store it on the DHT, where every node checks
the signature and keeps the highest sequence. Others fetch it with
"shoal get <your key ID or their petname for it>/NAME".

A signature says the key's holder vouches for exactly these bytes under
this name; it says nothing of what the weights do. --ttl makes the record
expire: after that the name stops resolving (fetching by CID still works)
until you publish again.`,
		Example: exampleBlock("shoal publish llama-3-8b bafyrei...", "shoal publish llama-3-8b bafyrei... --key team --ttl 720h"),
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := content.CheckName(name); err != nil {
				return err
			}
			root, err := content.ParseCID(args[1])
			if err != nil {
				return err
			}
			if err := node.CheckTTL(ttl); err != nil {
				return fmt.Errorf("--ttl: %w", err)
			}
			_, svc, daemon, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if l, ok := svc.(*node.Local); ok {
				nf.applyLocal(l)
			}
			res, err := svc.Publish(cmd.Context(), api.PublishRequest{Key: key, Name: name, Root: root, TTL: ttl})
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else if res.OnDHT {
				fmt.Fprintf(a.stdout, "published %s/%s -> %s (sequence %d)\n", res.Record.Key, res.Record.Name, res.Record.Root, res.Record.Seq)
			} else {
				fmt.Fprintf(a.stdout, "signed %s/%s -> %s (sequence %d)\n", res.Record.Key, res.Record.Name, res.Record.Root, res.Record.Seq)
			}
			if !res.OnDHT && res.Gossiped > 0 {
				// Followers have it; resolving by name waits for the DHT.
				fmt.Fprintf(a.stderr, "note: sent to %s following this publisher; not on the DHT yet (%s): the daemon puts it there once it has DHT peers, until then only followers know it\n",
					plural(res.Gossiped, "peer"), content.OneLine(res.Warning))
				return nil
			}
			if !res.OnDHT {
				// Signed and kept in this home, reached nobody: say where
				// the record is and is not, and fail.
				where := "kept in this home; a daemon started on it puts it on the DHT once it has peers"
				if daemon {
					where = "kept by the daemon, which puts it on the DHT once it has peers (shoal status)"
				}
				return fmt.Errorf("%w: the record is %s; it is not on the DHT yet, so nobody can resolve it (%s)", errNotPublished, where, res.Warning)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "self", "publisher key name (see shoal key list)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "make the record expire after this long, at least 1m (default: never)")
	nf.register(cmd.Flags(), "without a daemon: ", "any free port on every interface")
	return cmd
}

func (a *app) resolveCmd() *cobra.Command {
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "resolve PUBLISHER/NAME",
		Short: "Show the CID a publisher's name points to, and who signed it when",
		Long: `Look up the newest valid signed record of PUBLISHER (a petname from
shoal trust, or a key ID) for NAME on the DHT. A record with a bad
signature, an expired one, or one older than a record this node has seen
before (a rollback, even if every DHT peer serves it) is refused.`,
		Example: exampleBlock("shoal resolve alice/llama-3-8b", "shoal resolve 12D3KooW.../llama-3-8b --json"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, name, ok := home.SplitName(args[0])
			if !ok {
				return fmt.Errorf("want PUBLISHER/NAME, got %s", content.Quote(args[0]))
			}
			if err := content.CheckName(name); err != nil {
				return err
			}
			h, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			keyID, err := h.ResolvePublisher(pub)
			if err != nil {
				return err
			}
			if l, ok := svc.(*node.Local); ok {
				nf.applyLocal(l)
			}
			sg, err := svc.Resolve(cmd.Context(), api.ResolveRequest{Publisher: keyID, Name: name})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(sg)
			}
			who := sg.Key
			if sg.Petname != "" {
				who = sg.Petname + " (" + sg.Key + ")"
			}
			fmt.Fprintf(a.stdout, "%s\nsigned by %s as %s, sequence %d, %s\n", sg.Root, who, sg.Name, sg.Seq, sg.Time.Format(time.RFC3339))
			return nil
		},
	}
	nf.register(cmd.Flags(), "without a daemon: ", "any free port on every interface")
	return cmd
}
