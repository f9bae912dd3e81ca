package mirror

import "errors"

// Errors of mirror. Errors returned wrap one of these.
var (
	// ErrOverBudget reports a fetch into the store that would take it past
	// its disk budget (storage_max).
	ErrOverBudget = errors.New("over the storage budget")
	// ErrNoStore reports a node without a store (no home) asked to fetch
	// for itself.
	ErrNoStore = errors.New("no store to fetch into")
)
