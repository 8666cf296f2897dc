package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/runner"
	"github.com/orkrun/ork/internal/store"
	"github.com/orkrun/ork/internal/telemetry"
)

// HistoryOptions are the inputs shared by runs, logs and metrics.
type HistoryOptions struct {
	IO      *IO
	Project string
	DB      string
	JSON    bool
}

func (o *HistoryOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Project, "project", "", "project root (default: the nearest directory above the current one holding ork.yaml)")
	cmd.Flags().StringVar(&o.DB, "db", "", "run store (default: $ORK_DB, else .ork/ork.db in the project)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
}

// open opens the run store without creating one where none exists.
func (o *HistoryOptions) open(ctx context.Context) (*store.Store, error) {
	path := o.DB
	if path == "" {
		path = os.Getenv("ORK_DB")
	}
	if path == "" {
		root := o.Project
		if root == "" {
			r, err := project.FindRoot(".")
			if err != nil {
				return nil, usageErr(err)
			}
			root = r
		}
		path = storePath(&project.Project{Root: root}, "")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, usageErr(fmt.Errorf("no run store at %s: nothing has run in this project yet (or pass --db)", path))
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return nil, failedErr(err)
	}
	return st, nil
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return usageErr(fmt.Errorf("%w; `ork runs list` shows the recorded runs", err))
	}
	return failedErr(err)
}

// NewCmdRuns builds `ork runs`.
func NewCmdRuns(ios *IO) *cobra.Command {
	cmd := &cobra.Command{Use: "runs", Short: "List and inspect recorded runs", Args: cobra.NoArgs}
	cmd.AddCommand(newCmdRunsList(ios), newCmdRunsShow(ios))
	return cmd
}

type runsListOptions struct {
	HistoryOptions
	Workflow, Status string
	Limit            int
}

func newCmdRunsList(ios *IO) *cobra.Command {
	opts := &runsListOptions{HistoryOptions: HistoryOptions{IO: ios}}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List recorded runs, newest first",
		Example: "  ork runs list --workflow sales_report --status failed --limit 5",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 1 {
				return usageErr(fmt.Errorf("--limit must be at least 1, got %d", opts.Limit))
			}
			switch opts.Status {
			case "", "running", "succeeded", "failed", "cancelled", "interrupted":
			default:
				return usageErr(fmt.Errorf("--status %q must be one of running, succeeded, failed, cancelled, interrupted", opts.Status))
			}
			return runsListRun(cmd.Context(), opts)
		},
	}
	opts.flags(cmd)
	cmd.Flags().StringVar(&opts.Workflow, "workflow", "", "only runs of this workflow")
	cmd.Flags().StringVar(&opts.Status, "status", "", "only runs with this status")
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "at most this many runs")
	return cmd
}

// runJSON is a run in `ork runs list --json`.
type runJSON struct {
	RunID        string         `json:"run_id"`
	Workflow     string         `json:"workflow"`
	WorkflowFile string         `json:"workflow_file"`
	Status       string         `json:"status"`
	StartedAt    time.Time      `json:"started_at"`
	EndedAt      *time.Time     `json:"ended_at"`
	Params       map[string]any `json:"params"`
}

func runsListRun(ctx context.Context, opts *runsListOptions) error {
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	filter := store.RunFilter{Workflow: opts.Workflow, Status: opts.Status, Limit: opts.Limit}
	if opts.Status == runner.StatusRunning || opts.Status == runner.StatusInterrupted {
		// Both are recorded as running; which one a run is depends on its
		// process, so read them all and apply the limit after filtering.
		filter.Status, filter.Limit = runner.StatusRunning, -1
	}
	runs, err := st.ListRuns(ctx, filter)
	if err != nil {
		return failedErr(err)
	}
	out := []runJSON{}
	for _, r := range runs {
		s := runner.EffectiveStatus(r)
		if opts.Status != "" && s != opts.Status {
			continue
		}
		if len(out) >= opts.Limit {
			break
		}
		out = append(out, runJSON{RunID: r.ID, Workflow: r.Workflow, WorkflowFile: r.WorkflowFile, Status: s, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Params: r.Params})
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no runs recorded")
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tWORKFLOW\tSTATUS\tSTARTED\tDURATION\tPARAMS")
	for _, r := range out {
		dur := "-"
		if r.EndedAt != nil {
			dur = r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		params := "-"
		if len(r.Params) > 0 {
			b, _ := json.Marshal(r.Params)
			params = string(b)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.Workflow, r.Status, r.StartedAt.Local().Format("2006-01-02 15:04:05"), dur, params)
	}
	return tw.Flush()
}

type runsShowOptions struct {
	HistoryOptions
	Attempts bool
}

func newCmdRunsShow(ios *IO) *cobra.Command {
	opts := &runsShowOptions{HistoryOptions: HistoryOptions{IO: ios}}
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run's tasks, attempts, durations, outputs and errors",
		Long: `Show a recorded run. With --json it prints the same document as ` + "`ork run --json`" + `.
--attempts lists every attempt of every task as well (status, exit reason,
start, duration, error); with --json each task then gets an "attempt_history"
array.`,
		Example: "  ork runs show 20261128T183000-1a2b3c\n  ork runs show 20261128T183000-1a2b3c --attempts --json",
		Args:    exactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runsShowRun(cmd.Context(), opts, args[0])
		},
	}
	opts.flags(cmd)
	cmd.Flags().BoolVar(&opts.Attempts, "attempts", false, "list every attempt of every task")
	return cmd
}

// attemptJSON is one attempt in `ork runs show --attempts --json`.
type attemptJSON struct {
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	Error      *string    `json:"error"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	DurationMS float64    `json:"duration_ms"`
	Engine     string     `json:"engine,omitempty"`
}

// taskWithAttempts is a task of `ork runs show --attempts --json`: the task
// of `ork run --json` and its attempts.
type taskWithAttempts struct {
	*runner.TaskResult
	AttemptHistory []attemptJSON `json:"attempt_history"`
}

// summaryWithAttempts is `ork runs show --attempts --json`.
type summaryWithAttempts struct {
	*runner.Summary
	Tasks map[string]taskWithAttempts `json:"tasks"`
}

func runsShowRun(ctx context.Context, opts *runsShowOptions, id string) error {
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := st.GetRun(ctx, id)
	if err != nil {
		return notFound(err)
	}
	sum, err := runner.LoadSummary(ctx, st, id, nil)
	if err != nil {
		return failedErr(err)
	}
	sum.Status = runner.EffectiveStatus(*run)
	var atts []store.Attempt
	if opts.Attempts {
		if atts, err = st.Attempts(ctx, id); err != nil {
			return failedErr(err)
		}
	}
	if opts.JSON {
		if !opts.Attempts {
			return writeJSON(opts.IO.Out, sum)
		}
		out := summaryWithAttempts{Summary: sum, Tasks: map[string]taskWithAttempts{}}
		for name, t := range sum.Tasks {
			out.Tasks[name] = taskWithAttempts{TaskResult: t, AttemptHistory: []attemptJSON{}}
		}
		for _, a := range atts {
			t, ok := out.Tasks[a.Task]
			if !ok {
				continue
			}
			t.AttemptHistory = append(t.AttemptHistory, attemptJSON{Attempt: a.Attempt, Status: a.Status, Reason: a.Reason, Error: a.Error,
				StartedAt: a.StartedAt, EndedAt: a.EndedAt, DurationMS: a.DurationMS, Engine: a.Engine})
			out.Tasks[a.Task] = t
		}
		return writeJSON(opts.IO.Out, out)
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "run %s of %s (%s): %s\n", run.ID, run.Workflow, run.WorkflowFile, sum.Status)
	fmt.Fprintf(w, "started %s", run.StartedAt.Local().Format(time.RFC3339))
	if run.EndedAt != nil {
		fmt.Fprintf(w, ", ended %s (%s)", run.EndedAt.Local().Format(time.RFC3339), run.EndedAt.Sub(run.StartedAt).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if len(run.Params) > 0 {
		b, _ := json.Marshal(run.Params)
		fmt.Fprintf(w, "params %s\n", b)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tATTEMPTS\tDURATION\tENGINE\tOUTPUT / ERROR")
	order := runner.SortedTasks(sum, run.Tasks)
	for _, name := range order {
		t := sum.Tasks[name]
		detail := oneLine(string(t.Output), 80)
		if t.Error != nil {
			detail = oneLine(*t.Error, 80)
			if t.Reason != "" {
				detail = t.Reason + ": " + detail
			}
		}
		engine := t.Engine
		if engine == "" {
			engine = "-"
		}
		dur := formatMS(t.DurationMS)
		if t.Status == "skipped" {
			dur = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", name, t.Status, t.Attempts, dur, engine, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !opts.Attempts {
		return nil
	}
	fmt.Fprintln(w)
	if len(atts) == 0 {
		fmt.Fprintln(w, "no attempts recorded")
		return nil
	}
	rank := map[string]int{}
	for i, name := range order {
		rank[name] = i
	}
	sort.SliceStable(atts, func(i, j int) bool { return rank[atts[i].Task] < rank[atts[j].Task] })
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tATTEMPT\tSTATUS\tREASON\tSTARTED\tDURATION\tERROR")
	for _, a := range atts {
		reason, dur, errText := a.Reason, "-", "-"
		if reason == "" {
			reason = "-"
		}
		if a.EndedAt != nil {
			dur = formatMS(a.DurationMS)
		}
		if a.Error != nil && *a.Error != "" {
			errText = oneLine(*a.Error, 80)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", a.Task, a.Attempt, a.Status, reason,
			a.StartedAt.Local().Format("2006-01-02 15:04:05.000"), dur, errText)
	}
	return tw.Flush()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > max {
		return string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return failedErr(err)
	}
	return nil
}

type logsOptions struct {
	HistoryOptions
	Follow bool
}

// NewCmdLogs builds `ork logs`.
func NewCmdLogs(ios *IO) *cobra.Command {
	opts := &logsOptions{HistoryOptions: HistoryOptions{IO: ios}}
	cmd := &cobra.Command{
		Use:     "logs RUN_ID [TASK]",
		Short:   "Print a run's task logs",
		Long:    "Print the log lines of a run, or of one task, from the run store. --follow keeps printing while the run goes on. With --json, one JSON object per line.",
		Example: "  ork logs 20261128T183000-1a2b3c load --follow",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr(fmt.Errorf("%s expects a run id and optionally a task\nUsage: %s", cmd.CommandPath(), cmd.UseLine()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			task := ""
			if len(args) == 2 {
				task = args[1]
			}
			return logsRun(cmd.Context(), opts, args[0], task)
		},
	}
	opts.flags(cmd)
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until the run ends")
	return cmd
}

// logJSON is a line of `ork logs --json`.
type logJSON struct {
	Task    string         `json:"task"`
	Attempt int            `json:"attempt"`
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Source  string         `json:"source"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

func logsRun(ctx context.Context, opts *logsOptions, id, task string) error {
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.GetRun(ctx, id); err != nil {
		return notFound(err)
	}
	if task != "" {
		atts, err := st.Attempts(ctx, id)
		if err != nil {
			return failedErr(err)
		}
		known := false
		for _, a := range atts {
			known = known || a.Task == task
		}
		if !known && !opts.Follow {
			return usageErr(fmt.Errorf("run %s has no task %q; `ork runs show %s` lists its tasks", id, task, id))
		}
	}
	enc := json.NewEncoder(opts.IO.Out)
	var after int64
	for {
		lines, err := st.Logs(ctx, id, task, after, 1000)
		if err != nil {
			return failedErr(err)
		}
		for _, l := range lines {
			after = l.Seq
			if opts.JSON {
				if err := enc.Encode(logJSON{Task: l.Task, Attempt: l.Attempt, Time: l.Time, Level: l.Level, Source: l.Source, Message: l.Message, Fields: l.Fields}); err != nil {
					return failedErr(err)
				}
				continue
			}
			level := ""
			if l.Source == "log" || l.Level == "error" {
				level = strings.ToUpper(l.Level) + " "
			}
			fmt.Fprintf(opts.IO.Out, "%s %s[%d] | %s%s%s\n", l.Time.Local().Format("15:04:05.000"), l.Task, l.Attempt, level, l.Message, runner.FormatFields(l.Fields))
		}
		if len(lines) == 1000 {
			continue
		}
		if !opts.Follow {
			return nil
		}
		run, err := st.GetRun(ctx, id)
		if err != nil {
			return failedErr(err)
		}
		if s := runner.EffectiveStatus(*run); s != "running" {
			// One more read: lines stored just before the run ended.
			if rest, err := st.Logs(ctx, id, task, after, 1); err == nil && len(rest) > 0 {
				continue
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type metricsOptions struct {
	HistoryOptions
	Format string
}

// NewCmdMetrics builds `ork metrics`.
func NewCmdMetrics(ios *IO) *cobra.Command {
	opts := &metricsOptions{HistoryOptions: HistoryOptions{IO: ios}}
	cmd := &cobra.Command{
		Use:     "metrics RUN_ID",
		Short:   "Print the metrics a run's tasks recorded",
		Example: "  ork metrics 20261128T183000-1a2b3c --format prometheus",
		Args:    exactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.JSON {
				if cmd.Flags().Changed("format") && opts.Format != "json" {
					return usageErr(fmt.Errorf("--json and --format %s ask for two different outputs; pass one of them: --format %s, or --json (the same as --format json)", opts.Format, opts.Format))
				}
				opts.Format = "json"
			}
			switch opts.Format {
			case "table", "json", "prometheus":
			default:
				return usageErr(fmt.Errorf("--format %q must be table, json or prometheus", opts.Format))
			}
			return metricsRun(cmd.Context(), opts, args[0])
		},
	}
	opts.flags(cmd)
	cmd.Flags().StringVar(&opts.Format, "format", "table", "table, json or prometheus (text exposition)")
	return cmd
}

// metricJSON is a point of `ork metrics --format json`.
type metricJSON struct {
	Task    string            `json:"task"`
	Attempt int               `json:"attempt"`
	Name    string            `json:"name"`
	Value   float64           `json:"value"`
	Labels  map[string]string `json:"labels"`
	Time    time.Time         `json:"time"`
}

func metricsRun(ctx context.Context, opts *metricsOptions, id string) error {
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := st.GetRun(ctx, id)
	if err != nil {
		return notFound(err)
	}
	ms, err := st.Metrics(ctx, id)
	if err != nil {
		return failedErr(err)
	}
	switch opts.Format {
	case "json":
		out := []metricJSON{}
		for _, m := range ms {
			labels := m.Labels
			if labels == nil {
				labels = map[string]string{}
			}
			out = append(out, metricJSON{Task: m.Task, Attempt: m.Attempt, Name: m.Name, Value: m.Value, Labels: labels, Time: m.Time})
		}
		return writeJSON(opts.IO.Out, out)
	case "prometheus":
		points := make([]telemetry.Point, 0, len(ms))
		for _, m := range ms {
			points = append(points, telemetry.Point{Task: m.Task, Attempt: m.Attempt, Name: m.Name, Value: m.Value, Labels: m.Labels, Time: m.Time})
		}
		if err := telemetry.WritePrometheus(opts.IO.Out, run.ID, run.Workflow, points); err != nil {
			return failedErr(err)
		}
		return nil
	}
	if len(ms) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "run %s recorded no metrics\n", id)
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tATTEMPT\tMETRIC\tVALUE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", m.Task, m.Attempt, formatSeries(m.Name, m.Labels), formatValue(m.Value))
	}
	return tw.Flush()
}
