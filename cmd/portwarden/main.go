// Command portwarden keeps containers off privileged host ports, as DISA
// STIG rules V-260924 and V-260929 ask of every Docker Engine and MKE node.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
