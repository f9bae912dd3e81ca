package home

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/fsx"
)

// KeysDir holds the publisher keys of a home (the node identity is the key
// named "self").
func (h Home) KeysDir() string { return filepath.Join(h.Dir, "keys") }

// KeyInfo names a publisher key.
type KeyInfo struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// PublisherKey loads a publisher key by name; "self" or "" is the node's
// identity.
func (h Home) PublisherKey(name string) (crypto.PrivKey, error) {
	if name == "" || name == "self" {
		return h.Key()
	}
	if err := content.CheckName(name); err != nil {
		return nil, fmt.Errorf("key name: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(h.KeysDir(), name+".key"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no key named %s (see shoal key list)", content.Quote(name))
	}
	if err != nil {
		return nil, err
	}
	return crypto.UnmarshalPrivateKey(b)
}

// CreateKey makes a new ed25519 publisher key (file mode 0600).
func (h Home) CreateKey(name string) (KeyInfo, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return KeyInfo{}, err
	}
	return h.ImportKey(name, k)
}

// ImportKey stores a publisher key under name; it refuses to replace one.
func (h Home) ImportKey(name string, k crypto.PrivKey) (KeyInfo, error) {
	if name == "self" {
		return KeyInfo{}, errors.New(`"self" is the node identity; choose another key name`)
	}
	if err := content.CheckName(name); err != nil {
		return KeyInfo{}, fmt.Errorf("key name: %w", err)
	}
	if err := os.MkdirAll(h.KeysDir(), 0o700); err != nil {
		return KeyInfo{}, err
	}
	p := filepath.Join(h.KeysDir(), name+".key")
	if _, err := os.Stat(p); err == nil {
		return KeyInfo{}, fmt.Errorf("a key named %s exists already", content.Quote(name))
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := fsx.WriteFileAtomic(p, b, 0o600); err != nil {
		return KeyInfo{}, err
	}
	id, err := peer.IDFromPrivateKey(k)
	return KeyInfo{Name: name, ID: id.String()}, err
}

// Keys lists the publisher keys, the identity ("self") first.
func (h Home) Keys() ([]KeyInfo, error) {
	self, err := h.Key()
	if err != nil {
		return nil, err
	}
	id, _ := peer.IDFromPrivateKey(self)
	out := []KeyInfo{{Name: "self", ID: id.String()}}
	ents, _ := os.ReadDir(h.KeysDir())
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok {
			continue
		}
		k, err := h.PublisherKey(name)
		if err != nil {
			return nil, err
		}
		id, _ := peer.IDFromPrivateKey(k)
		out = append(out, KeyInfo{Name: name, ID: id.String()})
	}
	return out, nil
}
