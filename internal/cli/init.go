package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orkrun/ork/internal/scaffold"
)

// InitOptions are the inputs of `ork init`.
type InitOptions struct {
	IO  *IO
	Dir string
}

// NewCmdInit builds `ork init`.
func NewCmdInit(ios *IO, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: ios}
	return &cobra.Command{
		Use:     "init DIR",
		Short:   "Create a new project: ork.yaml, a workflow, a Rust executor and a Rust task",
		Example: "  ork init demo && cd demo\n  ork run workflows/hello.yaml",
		Args:    exactArgs(1, "the directory to create"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return initRun(opts)
		},
	}
}

func initRun(opts *InitOptions) error {
	files, err := scaffold.Write(opts.Dir)
	if err != nil {
		return usageErr(err)
	}
	fmt.Fprintf(opts.IO.Out, "created %s with %d files:\n", opts.Dir, len(files))
	for _, f := range files {
		if len(f) > len(scaffold.SDKDir) && f[:len(scaffold.SDKDir)] == scaffold.SDKDir {
			continue
		}
		fmt.Fprintf(opts.IO.Out, "  %s\n", f)
	}
	fmt.Fprintf(opts.IO.Out, "  %s/ (the Rust SDK for this ork)\n\nnext:\n  cd %s\n  ork validate workflows/hello.yaml\n  ork run workflows/hello.yaml\n", scaffold.SDKDir, opts.Dir)
	return nil
}
