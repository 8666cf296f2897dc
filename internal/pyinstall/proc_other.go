//go:build !unix

package pyinstall

import "os/exec"

// killGroupOnCancel: elsewhere, cancelling kills the process only.
func killGroupOnCancel(cmd *exec.Cmd) {}
