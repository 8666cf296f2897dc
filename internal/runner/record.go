package runner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/scheduler"
	"github.com/orkrun/ork/internal/store"
)

// recorder writes a run to the store; with no store it does nothing.
type recorder struct {
	st    *store.Store
	runID string
	owner string // this execution of the run, on every attempt it records
}

func newRecorder(st *store.Store, runID string) *recorder {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &recorder{st: st, runID: runID, owner: fmt.Sprintf("pid %d on host %s, #%x", os.Getpid(), host, b)}
}

// WorkflowDigest identifies a workflow file's content.
func WorkflowDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (r *recorder) createRun(ctx context.Context, wf *project.Workflow, p *project.Project, opts Options) error {
	if r.st == nil {
		return nil
	}
	digest, err := WorkflowDigest(wf.File)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	params := opts.Params
	if params == nil {
		params = map[string]any{}
	}
	return r.st.CreateRun(ctx, store.Run{
		ID: r.runID, Workflow: wf.Name, WorkflowFile: p.Rel(wf.File), WorkflowDigest: digest,
		Params: params, Status: "running", StartedAt: time.Now(), OrkVersion: opts.Version,
		Host: host, PID: os.Getpid(), Proc: ProcessIdentity(os.Getpid()), Tasks: taskOrder(wf),
	})
}

// taskOrder is the workflow's task names in its order, never nil.
func taskOrder(wf *project.Workflow) []string {
	return append([]string{}, wf.Order...)
}

// skipped records that the run skipped a task. A skip that cannot be stored
// only makes `ork runs show` say "did not run"; the run goes on.
func (r *recorder) skipped(task string, afterAttempt int, reason string) error {
	if r.st == nil {
		return nil
	}
	return r.st.SkipTask(context.Background(), store.Skip{RunID: r.runID, Task: task, AfterAttempt: afterAttempt, Reason: reason})
}

// resumeRun makes this process the one running the run, unless another ork
// process still runs it or claims it at the same moment.
func (r *recorder) resumeRun(ctx context.Context, wf *project.Workflow) error {
	if r.st == nil {
		return errors.New("resuming a run needs the run store")
	}
	run, err := r.st.GetRun(ctx, r.runID)
	if err != nil {
		return err
	}
	if RunLiveness(*run) != ProcessGone {
		return liveError(*run)
	}
	host, _ := os.Hostname()
	if err := r.st.ClaimRun(ctx, *run, os.Getpid(), host, ProcessIdentity(os.Getpid()), taskOrder(wf)); err != nil {
		if errors.Is(err, store.ErrClaimed) {
			return fmt.Errorf("run %s was resumed by another ork process at the same moment; `ork runs show %s` shows it", r.runID, r.runID)
		}
		return err
	}
	return nil
}

// finishRun is written even when the run was cancelled.
func (r *recorder) finishRun(status string) error {
	if r.st == nil {
		return nil
	}
	now := time.Now()
	return r.st.UpdateRun(context.Background(), r.runID, status, &now, 0)
}

// interrupted closes attempts left "running" by an ork process that died.
func (r *recorder) interrupted(ctx context.Context) error {
	atts, err := r.st.Attempts(ctx, r.runID)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if a.Status != "running" {
			continue
		}
		now := time.Now()
		msg := "the ork process running this task stopped before it finished"
		a.Status, a.Reason, a.Error, a.EndedAt = string(scheduler.Cancelled), "interrupted", &msg, &now
		if err := r.st.FinishAttempt(ctx, a, nil); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) startAttempt(ctx context.Context, task string, attempt int, started time.Time, engine string) error {
	if r.st == nil {
		return nil
	}
	return r.st.StartAttempt(ctx, store.Attempt{RunID: r.runID, Task: task, Attempt: attempt, Status: "running", StartedAt: started, Engine: engine, Owner: r.owner})
}

// finishAttempt records the outcome durably, with its metrics, before the
// run reports the task as done. It uses a fresh context: a cancelled run
// still records what happened.
func (r *recorder) finishAttempt(task string, attempt int, started time.Time, res *TaskResult) error {
	if r.st == nil {
		return nil
	}
	now := time.Now()
	a := store.Attempt{RunID: r.runID, Task: task, Attempt: attempt, Status: res.Status, Reason: res.Reason,
		Error: res.Error, StartedAt: started, EndedAt: &now, DurationMS: res.DurationMS, Engine: res.Engine, Owner: r.owner}
	if res.Status == string(scheduler.Succeeded) {
		a.Output = res.Output
	}
	ms := make([]store.Metric, 0, len(res.Metrics))
	for _, m := range res.Metrics {
		ms = append(ms, store.Metric{RunID: r.runID, Task: task, Attempt: attempt, Name: m.Name, Value: m.Value, Labels: m.Labels, Time: now})
	}
	return r.st.FinishAttempt(context.Background(), a, ms)
}

func (r *recorder) logs(lines []store.LogLine) {
	if r.st == nil {
		return
	}
	// A log line that cannot be stored is still in task.log; the task goes on.
	_ = r.st.AppendLogs(context.Background(), lines)
}

// LoadSummary rebuilds a run's summary from the store: the document of
// `ork run --json`. Each task shows its latest attempt, or its skip if the
// run skipped it since; tasks of order (by default the workflow's task list
// recorded with the run) that never ran are skipped.
func LoadSummary(ctx context.Context, st *store.Store, runID string, order []string) (*Summary, error) {
	if st == nil {
		return nil, errors.New("no run store")
	}
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	atts, err := st.Attempts(ctx, runID)
	if err != nil {
		return nil, err
	}
	metrics, err := st.Metrics(ctx, runID)
	if err != nil {
		return nil, err
	}
	skips, err := st.Skips(ctx, runID)
	if err != nil {
		return nil, err
	}
	if order == nil {
		order = run.Tasks
	}
	sum := &Summary{RunID: run.ID, Workflow: run.Workflow, Status: run.Status, Tasks: map[string]*TaskResult{}}
	latest := map[string]store.Attempt{}
	var names []string
	for _, a := range atts {
		prev, seen := latest[a.Task]
		if !seen {
			names = append(names, a.Task)
		}
		if !seen || a.Attempt > prev.Attempt {
			latest[a.Task] = a
		}
	}
	for _, name := range names {
		a := latest[name]
		if k, ok := skips[name]; ok && k.AfterAttempt >= a.Attempt {
			continue // skipped after its latest attempt: below
		}
		t := &TaskResult{Status: a.Status, Attempts: a.Attempt, DurationMS: a.DurationMS, Output: a.Output, Error: a.Error, Reason: a.Reason, Metrics: []abi.Metric{}, Engine: a.Engine}
		if len(t.Output) == 0 {
			t.Output = json.RawMessage("null")
		}
		for _, m := range metrics {
			if m.Task == name && m.Attempt == a.Attempt {
				labels := m.Labels
				if labels == nil {
					labels = map[string]string{}
				}
				t.Metrics = append(t.Metrics, abi.Metric{Name: m.Name, Value: m.Value, Labels: labels})
			}
		}
		sum.Tasks[name] = t
	}
	skipped := func(name string, k store.Skip) {
		msg := k.Reason
		sum.Tasks[name] = &TaskResult{Status: string(scheduler.Skipped), Attempts: k.AfterAttempt, Output: json.RawMessage("null"), Metrics: []abi.Metric{}, Error: &msg}
	}
	for name, k := range skips {
		if _, ok := sum.Tasks[name]; !ok {
			skipped(name, k)
		}
	}
	for _, name := range order {
		if _, ok := sum.Tasks[name]; !ok {
			skipped(name, store.Skip{Reason: "did not run"})
		}
	}
	return sum, nil
}

// SortedTasks lists a summary's task names: by order first, then the rest.
func SortedTasks(s *Summary, order []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range order {
		if _, ok := s.Tasks[n]; ok {
			out = append(out, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range s.Tasks {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// CheckResumable refuses to resume a run whose ork process is still running
// it, and one whose workflow changed, unless force.
func CheckResumable(ctx context.Context, st *store.Store, runID string, wf *project.Workflow, force bool) (*store.Run, error) {
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	if run.Workflow != wf.Name {
		return nil, fmt.Errorf("run %s is of workflow %q, not %q; pass the workflow file it ran (%s)", runID, run.Workflow, wf.Name, run.WorkflowFile)
	}
	if run.Status == StatusSucceeded {
		return nil, fmt.Errorf("run %s already succeeded; there is nothing to resume", runID)
	}
	if RunLiveness(*run) != ProcessGone {
		return nil, liveError(*run)
	}
	digest, err := WorkflowDigest(wf.File)
	if err != nil {
		return nil, err
	}
	if digest != run.WorkflowDigest && !force {
		return nil, fmt.Errorf("%s changed since run %s started; resuming could mix outputs of two different workflows. Pass --force to resume anyway, or start a new run", run.WorkflowFile, runID)
	}
	return run, nil
}
