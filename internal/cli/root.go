// Package cli implements the ork command line. Each command has an Options
// struct, a NewCmdX constructor that takes the run function (so flags can be
// tested without running anything), and an unexported xRun with the logic.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/runtime"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitFailed    = 1   // a task failed, or ork could not do what was asked
	ExitUsage     = 2   // invalid input: flags, arguments, project files
	ExitCancelled = 130 // interrupted
)

// Version is ork's version; set at build time with -ldflags "-X ...".
var Version = "0.1.0-dev"

// IO holds the streams a command uses.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ExitError carries an exit code through cobra. A nil Err prints nothing.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

func usageErr(err error) error  { return &ExitError{Code: ExitUsage, Err: err} }
func failedErr(err error) error { return &ExitError{Code: ExitFailed, Err: err} }

// Main runs the CLI and returns the process exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(errOut, "ork: internal error: %v\nThis is a bug in ork; please report it with the command you ran.\n", r)
			if os.Getenv("ORK_DEBUG") != "" {
				errOut.Write(debug.Stack())
			}
			code = ExitFailed
		}
	}()
	ios := &IO{In: in, Out: out, ErrOut: errOut}
	root := NewCmdRoot(ios)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(errOut, "ork: "+ee.Err.Error())
		}
		return ee.Code
	}
	// cobra's own errors: unknown command or flag, wrong arguments.
	fmt.Fprintf(errOut, "ork: %v\nRun 'ork --help' for usage.\n", err)
	return ExitUsage
}

// NewCmdRoot builds the ork command tree.
func NewCmdRoot(ios *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "ork",
		Short: "Run workflows whose every task runs in its own WebAssembly sandbox",
		Long: `ork runs workflows described in YAML. Every task runs in a fresh WebAssembly
sandbox that sees only what ork.yaml grants it: the project (read-only), a
scratch and an output directory, bounded memory and time, and the host ABI.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetIn(ios.In)
	root.AddCommand(
		NewCmdInit(ios, nil),
		NewCmdValidate(ios, nil),
		NewCmdRun(ios, nil),
		NewCmdBuild(ios, nil),
		NewCmdPython(ios),
		NewCmdRuns(ios),
		NewCmdLogs(ios),
		NewCmdMetrics(ios),
		NewCmdVersion(ios),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(fmt.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath()))
	})
	return root
}

// NewCmdVersion prints the version.
func NewCmdVersion(ios *IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ork's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(ios.Out, "ork %s\n", Version)
			fmt.Fprintf(ios.Out, "engines: %s (default %s)\n", strings.Join(runtime.Engines(), ", "), runtime.DefaultEngine)
			fmt.Fprintf(ios.Out, "host ABI: v%d\n", abi.Version)
			return nil
		},
	}
}

// loadProject finds and loads the project for a command: dir if given, else
// the nearest ancestor of start holding ork.yaml.
func loadProject(dir, start string) (*project.Project, error) {
	root := dir
	if root == "" {
		r, err := project.FindRoot(start)
		if err != nil {
			return nil, usageErr(err)
		}
		root = r
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, usageErr(err)
	}
	p, err := project.Load(abs)
	if err != nil {
		return nil, usageErr(err)
	}
	return p, nil
}

// cacheDir is where ork keeps compiled and built modules.
func cacheDir() (string, error) {
	if d := os.Getenv("ORK_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory (set ORK_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "ork"), nil
}
