package api

import (
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// Progress is a snapshot of a long operation (add, get, verify).
type Progress struct {
	Phase string `json:"phase"` // "hashing", "finding", "manifest", "resuming", "fetching", "verifying", "done"
	Done  int64  `json:"done"`  // bytes hashed, or verified and written
	Total int64  `json:"total"` // bytes in all (0: not known yet)
	Peers int    `json:"peers"` // sources in use now (get)
	Files int    `json:"files"` // files in the model (get)
	// Held and Shares (get, phase "plan"): the bytes of the model this
	// node already holds under other roots (copied, not fetched), and
	// which roots they are in.
	Held   int64           `json:"held,omitempty"`
	Shares []content.Share `json:"shares,omitempty"`
}

// IDInfo is a node's identity and the addresses to give others, best
// first.
type IDInfo struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	// Daemon: the answer comes from a running daemon (else from the home,
	// and Addrs is empty).
	Daemon bool `json:"daemon_running"`
}

// AddRequest asks to import a file or folder in place.
type AddRequest struct {
	Path string `json:"path"` // absolute
	// FollowExternalLinks adds what symlinks point at outside the folder.
	FollowExternalLinks bool `json:"follow_external_links,omitempty"`
	// LinksWithin (absolute) is a folder outside Path that symlinks may
	// point into: a Hugging Face cache repo, whose snapshots link into
	// its blobs.
	LinksWithin string `json:"links_within,omitempty"`
	// Name, if set, is recorded instead of the folder's name (a Hugging
	// Face repo id for a snapshot folder named by its commit).
	Name string `json:"name,omitempty"`
}

// AddResult reports an import.
type AddResult struct {
	Root      cid.Cid           `json:"root"`
	Name      string            `json:"name"`
	Files     int               `json:"files"`
	Size      int64             `json:"size"`
	Skipped   []content.Skipped `json:"skipped,omitempty"`
	Warnings  []content.Skipped `json:"warnings,omitempty"`
	Pickle    []content.Pickle  `json:"pickle,omitempty"` // files that may run code when loaded
	Announced bool              `json:"announced"`
}

// GetRequest asks to fetch a model by root or by name into a folder.
type GetRequest struct {
	Root cid.Cid `json:"root,omitzero"`
	// Name is KEYID/NAME, instead of Root: resolved to the newest valid
	// record, whose publisher must then have signed the root.
	Name  string `json:"name,omitempty"`
	Dir   string `json:"dir"` // absolute
	Force bool   `json:"force"`
	// Publisher is a key ID that must have signed a record naming the
	// root; nothing moves otherwise.
	Publisher string `json:"publisher,omitempty"`
	// Include, Exclude and Tensors fetch part of the model: the files
	// matching Include (all when empty) and no Exclude pattern, and of
	// safetensors and GGUF files only the tensors matching Tensors
	// (rewritten as valid files holding exactly those).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	Tensors []string `json:"tensors,omitempty"`
	// HFRepo (absolute), instead of Dir, writes the model into a Hugging
	// Face cache repo folder (models--org--name): blobs named by sha256,
	// a snapshot of links, refs/main. Blobs already there are reused.
	HFRepo string `json:"hf_repo,omitempty"`
}

// HFSnapshot says where a fetch into a Hugging Face cache went.
type HFSnapshot struct {
	Repo     string `json:"repo"`     // the repo folder
	Commit   string `json:"commit"`   // the snapshot's name, derived from the root
	Snapshot string `json:"snapshot"` // the snapshot folder
	Reused   int    `json:"reused"`   // blobs already there, not fetched
}

// InspectRequest names a model to describe: a root, or KEYID/NAME.
type InspectRequest struct {
	Root cid.Cid `json:"root,omitzero"`
	Name string  `json:"name,omitempty"`
}

// SourceStat is what one source delivered to a fetch.
type SourceStat struct {
	Peer   string `json:"peer"` // peer ID, or "local"
	Bytes  int64  `json:"bytes"`
	Chunks int64  `json:"chunks"`
	// Relayed: the chunks came through a relay (no hole could be punched).
	Relayed bool `json:"relayed"`
}

// GetResult describes a finished fetch.
type GetResult struct {
	Root    cid.Cid       `json:"root"`
	Dir     string        `json:"dir"`
	Files   int           `json:"files"`
	Size    int64         `json:"size"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Peers   int           `json:"peers"`     // peers that sent chunks
	Chunks  int64         `json:"chunks"`    // chunks moved by this run
	Resumed int64         `json:"resumed"`   // chunks an earlier run had already fetched
	Refetch int           `json:"refetched"` // chunks asked again after a failure
	Local   int64         `json:"local"`     // bytes copied from what this node already held
	Sources []SourceStat  `json:"sources"`
	// Held: the root was already held in this folder, unchanged; nothing
	// was fetched.
	Held bool `json:"held,omitempty"`
	// Partial: only the files and tensors asked for were written.
	Partial bool `json:"partial,omitempty"`
	// Shares: what of the model this node held under other roots before
	// the fetch (copied, not fetched: Local).
	Shares  []content.Share  `json:"shares,omitempty"`
	HF      *HFSnapshot      `json:"hf,omitempty"`
	Signers []Signer         `json:"signers"`          // valid records naming the root
	Pickle  []content.Pickle `json:"pickle,omitempty"` // files that may run code when loaded
}

// Signer describes a valid signed record naming a root.
type Signer struct {
	Key     string    `json:"key"`               // publisher key ID
	Petname string    `json:"petname,omitempty"` // local name, if trusted
	Name    string    `json:"name"`
	Root    cid.Cid   `json:"root"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Expires time.Time `json:"expires,omitzero"`
}

// VerifyFile is one file's verdict.
type VerifyFile struct {
	Path   string `json:"path"`
	Status string `json:"status"` // "ok", "missing", "changed", "corrupt"
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is the result of re-hashing a held root.
type VerifyReport struct {
	Root    cid.Cid      `json:"root"`
	OK      bool         `json:"ok"`
	Files   []VerifyFile `json:"files"`
	Signers []Signer     `json:"signers"` // records naming the root whose signatures verify
}

// PublishRequest asks to sign a record binding Name to Root.
type PublishRequest struct {
	Key  string        `json:"key"` // publisher key name ("self" or "")
	Name string        `json:"name"`
	Root cid.Cid       `json:"root"`
	TTL  time.Duration `json:"ttl_ns"` // 0: never expires
}

// PublishResult reports a publish: the record, and whether it reached
// the DHT (else Warning says why; the record is kept and served here).
type PublishResult struct {
	Record  Signer `json:"record"`
	OnDHT   bool   `json:"on_dht"`
	Warning string `json:"warning,omitempty"`
	// Gossiped counts the peers following the publisher's topic that the
	// record was sent to (a daemon's publish).
	Gossiped int `json:"gossiped"`
}

// ResolveRequest asks for the newest valid record of a publisher's name.
type ResolveRequest struct {
	Publisher string `json:"publisher"` // key ID
	Name      string `json:"name"`
}

// Status says where a node stands: how others can reach it, what its DHTs
// know, who it is connected to, and what it announces.
type Status struct {
	PeerID string `json:"peer_id"`
	Uptime string `json:"uptime"`
	// Reachability is what AutoNAT found: "public", "private" or
	// "unknown" (not yet known, or AutoNAT is off).
	Reachability  string        `json:"reachability"`
	ListenAddrs   []string      `json:"listen_addrs"`   // on this machine's interfaces
	ObservedAddrs []string      `json:"observed_addrs"` // as others see this node (NAT, port mapping)
	RelayAddrs    []string      `json:"relay_addrs"`    // reachable through a relay
	Bootstrap     BootStatus    `json:"bootstrap"`
	DHT           DHTsStatus    `json:"dht"`
	Peers         PeerCounts    `json:"peers"`
	MDNS          bool          `json:"mdns"`
	Roots         []RootStatus  `json:"roots"`
	Fetching      []FetchStatus `json:"fetching"`      // fetches in progress (served from as they go)
	BytesServed   int64         `json:"bytes_served"`  // exchange bytes sent since start
	BytesFetched  int64         `json:"bytes_fetched"` // exchange bytes received since start
	Relay         *RelayService `json:"relay,omitempty"`
	ChunksServed  int64         `json:"chunks_served"`   // blocks sent since start
	BadChunks     int64         `json:"bad_chunks"`      // chunks refused from peers since start
	Rotten        int64         `json:"verify_failures"` // held chunks found rotten on disk since start
	ProvideQueue  int           `json:"provide_queue"`   // announces due or running
	LastProvide   time.Time     `json:"last_provide"`    // last successful announce
	StorageUsed   int64         `json:"storage_used"`    // bytes in the node's store
	StorageBudget int64         `json:"storage_budget"`  // storage_max (0: none)
	Pins          int           `json:"pins"`
	Follows       int           `json:"follows"`
	FollowErrors  []string      `json:"follow_errors"`    // followed models whose fetch failed, and why
	Rejected      int64         `json:"records_rejected"` // gossiped records refused
}

// BootStatus is how bootstrapping went.
type BootStatus struct {
	State      string `json:"state"` // "connecting", "done", "failed" (retried by the DHT)
	Tried      int    `json:"tried"` // configured and remembered peers
	Remembered int    `json:"remembered"`
	Reached    int    `json:"reached"`
	Error      string `json:"error,omitempty"`
}

// DHTsStatus describes the LAN and WAN DHTs.
type DHTsStatus struct {
	LAN DHTStatus `json:"lan"`
	WAN DHTStatus `json:"wan"`
}

// DHTStatus describes one DHT.
type DHTStatus struct {
	Mode  string `json:"mode"`  // "server" (answers queries) or "client"
	Why   string `json:"why"`   // what decided the mode
	Peers int    `json:"peers"` // routing-table size
}

// PeerCounts splits the connected peers by how they are reached.
type PeerCounts struct {
	Total   int `json:"total"`
	Direct  int `json:"direct"`  // at least one direct connection
	Relayed int `json:"relayed"` // only through a relay
	LAN     int `json:"lan"`     // directly, over a private or loopback address
	Shoal   int `json:"shoal"`   // speak Shoal's exchange protocol
}

// RootStatus is one held root and its announce.
type RootStatus struct {
	Root cid.Cid   `json:"root"`
	Last time.Time `json:"last_announced,omitzero"` // last complete announce
	Err  string    `json:"error,omitempty"`         // why the last attempt failed
	Next time.Time `json:"next,omitzero"`
}

// FetchStatus is a fetch in progress.
type FetchStatus struct {
	Root  cid.Cid `json:"root"`
	Dir   string  `json:"dir"`
	Done  int64   `json:"done"`  // bytes verified and written
	Total int64   `json:"total"` // bytes in the model
}

// RelayService is what this node's relay service carries.
type RelayService struct {
	Active       bool  `json:"active"` // serving (needs public reachability)
	Data         bool  `json:"data"`   // whole models may cross it (relay_data)
	Bytes        int64 `json:"bytes"`  // relayed since start
	Circuits     int64 `json:"circuits"`
	CircuitsAll  int64 `json:"circuits_total"`
	Reservations int64 `json:"reservations"`
}

// PinRequest asks to keep a root. A root this node does not hold is first
// fetched into the node's own store (within its disk budget).
type PinRequest struct {
	Root cid.Cid `json:"root"`
}

// PinResult reports a pin.
type PinResult struct {
	Pin     content.Pin `json:"pin"`
	Already bool        `json:"already"`           // it was pinned before
	Fetched *GetResult  `json:"fetched,omitempty"` // the fetch into the store, if it was not held
}

// UnpinResult reports an unpin: the root stays held until gc collects it.
type UnpinResult struct {
	Root     cid.Cid `json:"root"`
	Unpinned bool    `json:"unpinned"` // false: it was not pinned
}

// GCRequest asks to collect every root that is neither pinned nor being
// fetched.
type GCRequest struct {
	DryRun bool `json:"dry_run"` // say what would go, touch nothing
}

// GCItem is one place gc collected: files it deleted from the node's
// store, or a folder of the user's it only forgot (no file touched).
type GCItem struct {
	Root   cid.Cid `json:"root"`
	Dir    string  `json:"dir"`
	Source string  `json:"source"` // content.SourceAdded, SourceFetched or SourceStored
	Action string  `json:"action"` // "deleted" or "forgotten"
	Bytes  int64   `json:"bytes"`  // bytes deleted (0 when forgotten)
}

// GCReport is what gc did (or, in a dry run, would do).
type GCReport struct {
	DryRun bool     `json:"dry_run"`
	Items  []GCItem `json:"items"`
	Freed  int64    `json:"freed"`  // bytes deleted
	Kept   int      `json:"kept"`   // roots kept (pinned, or being fetched)
	Used   int64    `json:"used"`   // bytes in the store afterwards
	Budget int64    `json:"budget"` // storage_max (0: none)
}

// FollowRequest names a publisher by key ID or trusted petname.
type FollowRequest struct {
	Publisher string `json:"publisher"`
}

// FollowInfo is a followed publisher and what this node knows it signed.
type FollowInfo struct {
	Key   string         `json:"key"`
	Name  string         `json:"name,omitempty"` // petname it was followed by
	Time  time.Time      `json:"time"`
	Names []FollowedName `json:"names"`
}

// FollowedName is a followed publisher's newest record for one name.
type FollowedName struct {
	Name  string  `json:"name"`
	Seq   uint64  `json:"seq"`
	Root  cid.Cid `json:"root"`
	Held  bool    `json:"held"`            // the root is held here
	Error string  `json:"error,omitempty"` // why its last fetch failed (a daemon retries)
}

// ScrubRequest asks to re-hash held roots (none named: every one).
type ScrubRequest struct {
	Roots []cid.Cid `json:"roots,omitempty"`
}

// ScrubReport is what a scrub found and mended.
type ScrubReport struct {
	OK    bool        `json:"ok"` // every place intact, or healed
	Roots []ScrubRoot `json:"roots"`
}

// ScrubRoot is one root's places after a scrub.
type ScrubRoot struct {
	Root     cid.Cid      `json:"root"`
	Servable bool         `json:"servable"` // some place is intact: announced and served
	Places   []ScrubPlace `json:"places"`
}

// ScrubPlace is one place of a root: the files that did not match, and
// whether they were healed (fetched again from peers: only files Shoal
// fetched) or the place is now marked damaged.
type ScrubPlace struct {
	Dir     string       `json:"dir"`
	Source  string       `json:"source"`
	Bad     []VerifyFile `json:"bad"`
	Healed  bool         `json:"healed,omitempty"`
	Damaged bool         `json:"damaged,omitempty"`
	Error   string       `json:"error,omitempty"` // why healing failed
}
