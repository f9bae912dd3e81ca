// Command shoal is a peer-to-peer node for sharing model weights by content
// hash. See README.md; each subcommand lives in its own file here.
package main

import "os"

func main() { os.Exit(run(os.Args[1:])) }
