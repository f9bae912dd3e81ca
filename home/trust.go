package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/fsx"
)

// Errors of the home.
var (
	// ErrPetnameTaken reports a petname already bound to another key ID.
	ErrPetnameTaken = errors.New("petname already names another key")
	// ErrUnknownPublisher reports a name whose publisher part is neither a
	// trusted petname nor a key ID.
	ErrUnknownPublisher = errors.New("unknown publisher")
	// ErrBadConfig reports a config.toml that does not parse, or has a
	// key Shoal does not know.
	ErrBadConfig = errors.New("bad config")
	// ErrNotLoopback reports an API address that is not on loopback.
	ErrNotLoopback = errors.New("the local API binds only to a loopback address")
)

// TrustPath holds the petnames this home trusts.
func (h Home) TrustPath() string { return filepath.Join(h.Dir, "trust.json") }

// Trusted returns the petnames bound to publisher key IDs.
func (h Home) Trusted() map[string]string {
	m := map[string]string{}
	if h.Dir == "" {
		return m
	}
	if b, err := os.ReadFile(h.TrustPath()); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// Trust binds a petname to a key ID ("" removes it). A petname bound to
// another key ID is re-pointed only with force: a name the user trusts
// never changes what it means by accident.
func (h Home) Trust(pet, keyID string, force bool) error {
	if err := content.CheckName(pet); err != nil {
		return fmt.Errorf("petname: %w", err)
	}
	m := h.Trusted()
	if keyID == "" {
		delete(m, pet)
	} else {
		if _, err := peer.Decode(keyID); err != nil {
			return fmt.Errorf("key ID %s: %w", content.Quote(keyID), err)
		}
		if cur, ok := m[pet]; ok && cur != keyID && !force {
			return fmt.Errorf("%w: %s names %s (use --force to re-point it)", ErrPetnameTaken, content.Quote(pet), cur)
		}
		m[pet] = keyID
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return fsx.WriteFileAtomic(h.TrustPath(), append(b, '\n'), 0o600)
}

// ResolvePublisher turns a petname or a key ID into a key ID.
func (h Home) ResolvePublisher(p string) (string, error) {
	if id, ok := h.Trusted()[p]; ok {
		return id, nil
	}
	if _, err := peer.Decode(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s is neither a trusted petname (shoal trust add) nor a key ID", ErrUnknownPublisher, content.Quote(p))
}

// SplitName splits "publisher/name".
func SplitName(s string) (publisher, name string, ok bool) {
	publisher, name, ok = strings.Cut(s, "/")
	return publisher, name, ok && publisher != "" && name != ""
}
