// Command ork runs workflows whose every task runs in a WebAssembly sandbox.
package main

import (
	"os"

	"github.com/orkrun/ork/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
