// Command shoal is a peer-to-peer node for sharing model weights by content
// hash. See README.md; each subcommand lives in its own file here.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	// SHOAL_CPUPROFILE=FILE writes a CPU profile of the whole run (for
	// go tool pprof), e.g. of a daemon and a get side by side.
	if path := os.Getenv("SHOAL_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			code := run(os.Args[1:])
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
		fmt.Fprintf(os.Stderr, "shoal: SHOAL_CPUPROFILE: cannot profile to %s\n", path)
	}
	os.Exit(run(os.Args[1:]))
}
