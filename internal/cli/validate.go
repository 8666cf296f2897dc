package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// ValidateOptions are the inputs of `ork validate`.
type ValidateOptions struct {
	IO        *IO
	Project   string
	Workflows []string
}

// NewCmdValidate builds `ork validate`.
func NewCmdValidate(ios *IO, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "validate WORKFLOW...",
		Short: "Check ork.yaml and workflow files without running anything",
		Long: `Check ork.yaml, the workflow files and the task config files of built-in
executors: unknown keys, wrong types, missing fields, unknown executors and
dependencies, cycles. Every problem is reported as FILE:LINE:COL: message,
FILE relative to the project root.

With --project DIR, a relative WORKFLOW that does not exist relative to the
current directory is taken relative to DIR.

Exit status 2 when anything is invalid.`,
		Example: "  ork validate workflows/hello.yaml",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(fmt.Errorf("%s expects at least one workflow file\nUsage: %s", cmd.CommandPath(), cmd.UseLine()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workflows = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return validateRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Project, "project", "", "project root (default: the nearest directory above the workflow holding ork.yaml); a relative WORKFLOW not found from the current directory is looked up in it")
	return cmd
}

func validateRun(opts *ValidateOptions) error {
	for _, wf := range opts.Workflows {
		p, w, err := loadWorkflow(opts.Project, wf)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "%s: workflow %q is valid (%d tasks)\n", p.Rel(w.File), w.Name, len(w.Tasks))
	}
	return nil
}
