package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/orkrun/ork/internal/cargo"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/runner"
	"github.com/orkrun/ork/internal/telemetry"
	"github.com/orkrun/ork/runtime"
)

// RunOptions are the inputs of `ork run`.
type RunOptions struct {
	IO          *IO
	Project     string
	Workflow    string
	Concurrency int
	JSON        bool
	DB          string
	Params      []string // key=value
	Resume      string   // run id
	Force       bool
	NoSnapshot  bool   // start Python tasks cold (also ORK_NO_SNAPSHOT=1)
	Engine      string // run every task on this engine, whatever ork.yaml says
}

// NewCmdRun builds `ork run`. runF replaces the logic in tests.
func NewCmdRun(ios *IO, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "run WORKFLOW",
		Short: "Run a workflow, every task in its own sandbox",
		Long: `Run a workflow file. Tasks start as soon as their dependencies succeed, up to
--concurrency at a time; a failed task skips everything downstream. Progress
and a summary table are printed; with --json, stdout carries one JSON document
and progress goes to stderr.

Every run is recorded in the project's run store (.ork/ork.db, or --db /
$ORK_DB): tasks, attempts, outputs, logs and metrics, durably before a task is
reported done. --resume RUN_ID reruns the tasks of a failed, cancelled or
interrupted run that did not succeed, reusing the recorded outputs of those
that did, under the same run id.

With --project DIR, a relative WORKFLOW that does not exist relative to the
current directory is taken relative to DIR, so "ork run --project ~/p
workflows/x.yaml" works from anywhere. The closing line names the run's
directory relative to the current directory when that is inside the project,
else as an absolute path.

Exit status: 0 when every task succeeded, 1 otherwise, 2 for invalid input,
130 when interrupted.`,
		Example: "  ork run workflows/hello.yaml\n  ork run workflows/hello.yaml --json --concurrency 4\n  ork run workflows/daily.yaml --param day=2026-11-28 --param limit=100\n  ork run workflows/daily.yaml --resume 20261128T101500-1a2b3c",
		Args:    exactArgs(1, "a workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workflow = args[0]
			if opts.Concurrency < 1 {
				return usageErr(fmt.Errorf("--concurrency must be at least 1, got %d", opts.Concurrency))
			}
			if opts.Engine != "" && !slices.Contains(project.Engines, opts.Engine) {
				return usageErr(fmt.Errorf("unknown --engine %q; use %s", opts.Engine, strings.Join(project.Engines, " or ")))
			}
			if opts.Force && opts.Resume == "" {
				return usageErr(fmt.Errorf("--force only applies with --resume"))
			}
			if opts.Resume != "" && len(opts.Params) > 0 {
				return usageErr(fmt.Errorf("--param cannot be combined with --resume: a resumed run keeps the parameters it was started with"))
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Project, "project", "", "project root (default: the nearest directory above the workflow holding ork.yaml); a relative WORKFLOW not found from the current directory is looked up in it")
	cmd.Flags().IntVarP(&opts.Concurrency, "concurrency", "c", goruntime.NumCPU(), "maximum number of tasks running at once")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a machine-readable summary on stdout")
	cmd.Flags().StringVar(&opts.DB, "db", "", "run store (default: $ORK_DB, else .ork/ork.db in the project)")
	cmd.Flags().StringArrayVarP(&opts.Params, "param", "p", nil, "workflow parameter key=value, the value typed by YAML rules (repeatable)")
	cmd.Flags().StringVar(&opts.Resume, "resume", "", "continue this run: rerun the tasks that did not succeed")
	cmd.Flags().StringVar(&opts.Engine, "engine", "", "run every task on this WebAssembly engine, wazero or wasmtime (default: ork.yaml's engine:, else ork's choice)")
	cmd.Flags().BoolVar(&opts.NoSnapshot, "no-snapshot", false, "start every Python task cold instead of from an interpreter snapshot (also ORK_NO_SNAPSHOT=1)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "with --resume: resume even though the workflow file changed")
	return cmd
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr(fmt.Errorf("%s expects %s; got %d arguments\nUsage: %s", cmd.CommandPath(), what, len(args), cmd.UseLine()))
		}
		return nil
	}
}

// loadWorkflow loads the project around a workflow file and the workflow.
// With a project directory, a relative workflow path that does not exist
// relative to the current directory is taken relative to the project.
func loadWorkflow(projectDir, wfPath string) (*project.Project, *project.Workflow, error) {
	st, err := os.Stat(wfPath)
	if errors.Is(err, fs.ErrNotExist) && projectDir != "" && !filepath.IsAbs(wfPath) {
		inProject := filepath.Join(projectDir, wfPath)
		if pst, perr := os.Stat(inProject); perr == nil {
			wfPath, st, err = inProject, pst, nil
		} else if errors.Is(perr, fs.ErrNotExist) {
			return nil, nil, usageErr(fmt.Errorf("workflow file %s: not found in the current directory nor in the project %s; check the path", wfPath, projectDir))
		}
	}
	if err != nil {
		return nil, nil, usageErr(fmt.Errorf("workflow file %s: %w", wfPath, errors.Unwrap(err)))
	} else if st.IsDir() {
		return nil, nil, usageErr(fmt.Errorf("workflow file %s is a directory; pass a workflow YAML file", wfPath))
	}
	start := wfDir(wfPath)
	p, err := loadProject(projectDir, start)
	if err != nil {
		return nil, nil, err
	}
	wf, err := p.LoadWorkflow(wfPath)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	if err := runner.Check(p, wf); err != nil {
		return nil, nil, usageErr(err)
	}
	return p, wf, nil
}

// displayPath is how a path in project p is shown: relative to the current
// directory when that is inside the project, else absolute.
func displayPath(p *project.Project, abs string) string {
	cwd, err := os.Getwd()
	if err != nil {
		return abs
	}
	root := p.Root
	if !project.Within(root, cwd) {
		// The current directory (resolved by the OS) or the root may go
		// through a symlink.
		r, err1 := filepath.EvalSymlinks(root)
		c, err2 := filepath.EvalSymlinks(cwd)
		if err1 != nil || err2 != nil || !project.Within(r, c) {
			return abs
		}
		root, cwd = r, c
		if rest, err := filepath.Rel(p.Root, abs); err == nil {
			abs = filepath.Join(root, rest)
		}
	}
	rel, err := filepath.Rel(cwd, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(rel)
}

func wfDir(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}

func runRun(ctx context.Context, opts *RunOptions) error {
	p, wf, err := loadWorkflow(opts.Project, opts.Workflow)
	if err != nil {
		return err
	}
	progressOut := opts.IO.Out
	if opts.JSON {
		progressOut = opts.IO.ErrOut
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := cacheDir()
	if err != nil {
		return failedErr(err)
	}
	hosts := runtime.NewHosts("", runtime.WithCacheDir(dir), runtime.WithVersion(Version))
	defer hosts.Close(context.Background())
	// Everything that can refuse the run cheaply comes before building
	// modules and snapshots, which can take minutes.
	params, err := parseParams(opts.Params)
	if err != nil {
		return usageErr(err)
	}
	st, err := openStore(ctx, p, opts.DB)
	if err != nil {
		return failedErr(err)
	}
	defer st.Close()
	ropts := runner.Options{RunID: runner.NewRunID(), Concurrency: opts.Concurrency, Version: Version, Params: params, Store: st,
		Warn:       func(msg string) { fmt.Fprintln(opts.IO.ErrOut, "ork: warning: "+msg) },
		NoSnapshot: opts.NoSnapshot || os.Getenv("ORK_NO_SNAPSHOT") == "1"}
	if opts.Resume != "" {
		run, err := runner.CheckResumable(ctx, st, opts.Resume, wf, opts.Force)
		if err != nil {
			return usageErr(err)
		}
		ropts.RunID, ropts.Resume, ropts.Params = run.ID, true, run.Params
	}
	r := runner.New(p, hosts, cargo.New(dir, progressOut), dir)
	r.Engine = opts.Engine
	defer r.Close()
	plan, err := r.Prepare(ctx, wf)
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitCancelled, Err: errors.New("interrupted while preparing the run")}
		}
		var pe *project.Error
		if errors.As(err, &pe) {
			return usageErr(err)
		}
		return failedErr(err)
	}
	if ep := p.Telemetry.OTLPEndpoint; ep != "" {
		exp, err := newTelemetry(ctx, ep, wf.Name, ropts.RunID)
		if err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "ork: warning: telemetry.otlp_endpoint %s: %v; metrics stay in the run store\n", ep, err)
		} else {
			defer exp.Close(context.Background())
			ropts.Telemetry = exp
		}
	}
	prog := newProgress(progressOut, wf)
	sum, err := r.Execute(ctx, plan, ropts, prog)
	if err != nil {
		return failedErr(err)
	}
	prog.summary(sum, displayPath(p, runner.RunDir(p.Root, sum.RunID)))
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return failedErr(err)
		}
	}
	switch sum.Status {
	case runner.StatusSucceeded:
		return nil
	case runner.StatusCancelled:
		return &ExitError{Code: ExitCancelled}
	default:
		return &ExitError{Code: ExitFailed}
	}
}

// newTelemetry starts the OTLP exporter for a run.
func newTelemetry(ctx context.Context, endpoint, workflow, runID string) (*telemetryPusher, error) {
	exp, err := telemetry.NewExporter(ctx, endpoint, telemetry.Resource{ServiceName: "ork", ServiceVersion: Version, Workflow: workflow, RunID: runID})
	if err != nil {
		return nil, err
	}
	return &telemetryPusher{exp: exp}, nil
}

// telemetryPusher adapts the OTLP exporter to the runner.
type telemetryPusher struct{ exp *telemetry.Exporter }

func (t *telemetryPusher) PushTask(ctx context.Context, r runner.TaskReport) error {
	points := make([]telemetry.Point, 0, len(r.Metrics))
	now := time.Now()
	for _, m := range r.Metrics {
		points = append(points, telemetry.Point{Task: r.Task, Attempt: r.Attempt, Name: m.Name, Value: m.Value, Labels: m.Labels, Time: now})
	}
	return t.exp.PushTask(ctx, telemetry.TaskReport{Task: r.Task, Attempt: r.Attempt, Status: r.Status, Reason: r.Reason, Duration: r.Duration, Points: points})
}

func (t *telemetryPusher) Close(ctx context.Context) error { return t.exp.Close(ctx) }
