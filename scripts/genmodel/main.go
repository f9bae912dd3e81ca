// Command genmodel writes a deterministic test model folder (a multi-tensor
// safetensors file, config.json, a nested tokenizer folder, a plain weights
// file) for the end-to-end script and the benchmarks.
//
//	go run ./scripts/genmodel DIR MiB [SEED]
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: genmodel DIR MiB [SEED]")
		os.Exit(2)
	}
	mib, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || mib < 1 {
		fmt.Fprintln(os.Stderr, "genmodel: MiB must be a positive integer")
		os.Exit(2)
	}
	seed := uint64(1)
	if len(os.Args) > 3 {
		if seed, err = strconv.ParseUint(os.Args[3], 10, 64); err != nil {
			fmt.Fprintln(os.Stderr, "genmodel: bad seed")
			os.Exit(2)
		}
	}
	if _, err := testmodel.Folder(os.Args[1], mib, seed); err != nil {
		fmt.Fprintln(os.Stderr, "genmodel:", err)
		os.Exit(1)
	}
}
