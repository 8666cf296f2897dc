// Package runner executes a workflow of a project: it resolves and builds each
// task's module, schedules the DAG and runs every task in its own sandbox,
// handing outputs downstream, and reports what happened.
package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/capability"
	"github.com/orkrun/ork/internal/cargo"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/pysandbox"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/redact"
	"github.com/orkrun/ork/internal/scheduler"
	"github.com/orkrun/ork/internal/store"
	"github.com/orkrun/ork/runtime"
	pysdk "github.com/orkrun/ork/sdk/python"
)

// Run statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusRunning is recorded while an ork process runs the run.
	StatusRunning = "running"
	// StatusInterrupted is shown, never recorded, for a run whose ork
	// process died while it was running.
	StatusInterrupted = "interrupted"
)

// Summary is the machine-readable result of a run (`ork run --json`).
type Summary struct {
	RunID    string                 `json:"run_id"`
	Workflow string                 `json:"workflow"`
	Status   string                 `json:"status"`
	Tasks    map[string]*TaskResult `json:"tasks"`
}

// TaskResult is one task's entry in a Summary.
type TaskResult struct {
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	DurationMS float64         `json:"duration_ms"`
	Output     json.RawMessage `json:"output"`
	Error      *string         `json:"error"`
	Metrics    []abi.Metric    `json:"metrics"`
	// Reason says why the task did not succeed: exit, trap, abi, memory,
	// timeout, cpu, cancelled, interrupted or host; "" otherwise.
	Reason string `json:"reason,omitempty"`
	// Engine is the WebAssembly engine that ran the task (wazero or
	// wasmtime); "" for a task that did not run.
	Engine string `json:"engine,omitempty"`
}

// LogLine is one line of a task's log.
type LogLine struct {
	Time    time.Time
	Level   string // debug, info, warn, error
	Source  string // "stdout", "stderr" or "log" (the ABI)
	Message string
	Fields  map[string]any
}

// Observer is told what happens during a run. Calls may come from several
// goroutines; implementations serialise as they need.
type Observer interface {
	TaskStarted(task string)
	TaskFinished(task string, r *TaskResult)
	TaskSkipped(task, reason string)
	TaskLog(task string, line LogLine)
}

// Options configure a run.
type Options struct {
	Concurrency int            // parallel tasks; <1 means 1
	RunID       string         // "" generates one
	Version     string         // ork's version, reported to guests
	Params      map[string]any // workflow parameters (--param), visible to every task
	Store       *store.Store   // where the run is recorded; nil records nothing
	Resume      bool           // continue run RunID from the store: reuse what succeeded
	Telemetry   TaskPusher     // receives each task's metrics when set
	Warn        func(string)   // non-fatal problems (telemetry); nil ignores them
	NoSnapshot  bool           // start every Python task cold (no interpreter snapshot)
}

// TaskPusher exports a finished attempt's metrics (OTLP).
type TaskPusher interface {
	PushTask(ctx context.Context, r TaskReport) error
}

// TaskReport is what a TaskPusher receives.
type TaskReport struct {
	Task     string
	Attempt  int
	Status   string
	Reason   string
	Duration time.Duration
	Metrics  []abi.Metric
}

// Runner runs workflows of one project.
type Runner struct {
	// Engine, when set (ork run --engine), runs every task on that engine
	// whatever ork.yaml says. Set it before Prepare.
	Engine string

	caps     *capability.Registry
	proj     *project.Project
	hosts    *runtime.Hosts
	builder  *cargo.Builder
	cacheDir string
	pySDK    string // host directory of the Python SDK, once needed
	pySource string // digest of the project's Python sources, once needed

	mu      sync.Mutex
	modules map[string]*runtime.Module // by absolute path of the crate or .wasm

	snapMu    sync.Mutex
	prepared  *pysnap.Prepared
	snaps     map[string]*pysnap.Snapshot // by mount layout and memory limit; nil: unavailable
	snapWarn  sync.Once
	snapBroke bool // preparing the interpreter failed: every task starts cold
}

// New returns a Runner for proj, running tasks on hosts (one per engine),
// building crates with
// builder and keeping what it extracts (the Python SDK) under cacheDir.
func New(proj *project.Project, hosts *runtime.Hosts, builder *cargo.Builder, cacheDir string) *Runner {
	return &Runner{proj: proj, hosts: hosts, builder: builder, cacheDir: cacheDir, modules: map[string]*runtime.Module{},
		caps: capability.NewRegistry(proj)}
}

// Close releases what the runner holds across runs (database connections,
// Python snapshots).
func (r *Runner) Close() error {
	r.snapMu.Lock()
	for k, s := range r.snaps {
		if s != nil {
			s.Close()
		}
		delete(r.snaps, k)
	}
	r.snapMu.Unlock()
	return r.caps.Close()
}

// Plan is a workflow whose every task has a module, ready to run.
type Plan struct {
	Workflow *project.Workflow
	tasks    map[string]*planned
}

type planned struct {
	task     *project.Task
	executor *project.Executor
	module   *runtime.Module
	host     *runtime.Host // of the engine the task runs on
	params   any
	python   []string         // interpreter arguments after "-c BOOT" for Python tasks
	caps     *capability.Set  // what ork.yaml grants the executor beyond the sandbox
	red      *redact.Redactor // masks every secret value the project can resolve
	project  []runtime.Mount  // the project as its tasks see it (projectMounts)
}

// UnsupportedError says a feature is not available in this version of ork.
type UnsupportedError struct {
	Pos project.Pos
	Msg string
}

func (e *UnsupportedError) Error() string {
	if e.Pos.File != "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.Pos.File, e.Pos.Line, e.Pos.Column, e.Msg)
	}
	return e.Msg
}

// Check reports what a workflow needs that this ork cannot do, without
// building anything.
func Check(proj *project.Project, wf *project.Workflow) error {
	for _, name := range wf.Order {
		t := wf.Tasks[name]
		ex := proj.Executors[t.Executor]
		if ex == nil {
			continue
		}
		if (ex.Kind == project.KindPythonClass || ex.Kind == project.KindBuiltinPython) && !pyruntime.Available() {
			return &UnsupportedError{Pos: t.Pos, Msg: fmt.Sprintf("task %q uses the Python executor %q, but %s", name, ex.Name, pyruntime.ErrNotEmbedded)}
		}
	}
	return nil
}

// Prepare resolves and builds the module of every task of wf. Build output
// goes to the builder's log.
func (r *Runner) Prepare(ctx context.Context, wf *project.Workflow) (*Plan, error) {
	if err := Check(r.proj, wf); err != nil {
		return nil, err
	}
	// The project as tasks see it, as of now.
	mounts, err := projectMounts(r.proj.Root)
	if err != nil {
		return nil, err
	}
	p := &Plan{Workflow: wf, tasks: map[string]*planned{}}
	sets := map[string]*capability.Set{}
	// Every secret the project can resolve is masked in every task, not only
	// those granted to the task's executor: an executor can read another's
	// secret from a shared database or file and print it.
	red := redact.New(r.caps.RedactValues()...)
	for _, name := range wf.Order {
		t := wf.Tasks[name]
		ex := r.proj.Executors[t.Executor]
		pt := &planned{task: t, executor: ex, project: mounts}
		if sets[ex.Name] == nil {
			set, err := r.caps.For(ex)
			if err != nil {
				return nil, err
			}
			sets[ex.Name] = set
		}
		pt.caps = sets[ex.Name]
		pt.red = red
		var path string
		var isCrate bool
		switch ex.Kind {
		case project.KindCrate:
			path, isCrate = ex.Path, true
		case project.KindModule:
			path = ex.Path
		case project.KindPythonClass:
			pt.python = []string{"class", ex.Type}
		case project.KindBuiltinPython:
			tc, err := r.proj.LoadTaskConfig(t)
			if err != nil {
				return nil, err
			}
			pt.params = tc.Params
			pt.python = []string{"function", tc.File, tc.Func}
		case project.KindBuiltinRust:
			tc, err := r.proj.LoadTaskConfig(t)
			if err != nil {
				return nil, err
			}
			pt.params = tc.Params
			if tc.Crate != "" {
				path, isCrate = tc.Crate, true
			} else {
				path = tc.Module
			}
		default:
			return nil, fmt.Errorf("task %q: executor %q of type %s cannot run in this version of ork", name, ex.Name, ex.Type)
		}
		host, err := r.hosts.Get(ex.EngineFor(r.Engine))
		if err != nil {
			return nil, fmt.Errorf("task %q (executor %q): %w", name, ex.Name, err)
		}
		pt.host = host
		var m *runtime.Module
		if pt.python != nil {
			m, err = r.interpreter(ctx, host)
		} else {
			m, err = r.module(ctx, path, isCrate, host)
		}
		if err != nil {
			return nil, fmt.Errorf("task %q: %w", name, err)
		}
		pt.module = m
		p.tasks[name] = pt
	}
	return p, nil
}

// FuelMetric is the metric a task on a CPU limit (sandbox.cpu) records: the
// fuel it consumed, labelled with its task and workflow.
const FuelMetric = "ork_fuel"

// pythonKey keys the interpreter among the runner's modules.
const pythonKey = "\x00python"

// interpreter loads the embedded CPython and writes out the Python SDK.
func (r *Runner) interpreter(ctx context.Context, host *runtime.Host) (*runtime.Module, error) {
	r.mu.Lock()
	m, ok := r.modules[pythonKey]
	r.mu.Unlock()
	if ok {
		return m, nil
	}
	bin, err := pyruntime.Wasm()
	if err != nil {
		return nil, err
	}
	if r.pySDK, err = pysdk.Dir(r.cacheDir); err != nil {
		return nil, err
	}
	m, err = host.LoadInterpreter(ctx, "python.wasm", bin)
	if err != nil {
		return nil, err
	}
	// Bytecode for the SDK, once per SDK version: the mount is read-only at
	// run time, and compiling the SDK on every task would cost ~100 ms.
	if err := pysandbox.CompileDir(ctx, host, "runner", r.pySDK, PythonSDKDir); err != nil {
		return nil, err
	}
	r.compileProject(ctx, host)
	r.mu.Lock()
	r.modules[pythonKey] = m
	r.mu.Unlock()
	return m, nil
}

// snapshot returns the interpreter snapshot for a Python task's policy,
// building it at the first task of each mount layout and memory limit. It
// returns nil, after warning once, when no snapshot can serve the task.
func (r *Runner) snapshot(ctx context.Context, host *runtime.Host, policy runtime.Policy, bootEnv []string, opts Options) *pysnap.Snapshot {
	if opts.NoSnapshot {
		return nil
	}
	mounts := make([]pysnap.Mount, len(policy.Mounts))
	for i, m := range policy.Mounts {
		mounts[i] = pysnap.Mount{GuestPath: m.GuestPath, Writable: m.Writable}
		if !m.Writable {
			// The project (so the boot can import its executor modules),
			// the SDK and the executor's extra mounts; a task's scratch
			// and output directories are its own.
			mounts[i].HostPath = m.HostPath
		}
	}
	eng, err := host.SnapshotEngine(ctx, policy)
	if err != nil {
		r.warnSnapshot(opts, err)
		return nil
	}
	key := fmt.Sprintf("%s/%s/%d", host.Engine(), pysnap.MountHash(mounts), eng.MemoryLimitPages())
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	if s, ok := r.snaps[key]; ok {
		return s
	}
	if r.snaps == nil {
		r.snaps = map[string]*pysnap.Snapshot{}
	}
	s, err := r.buildSnapshot(ctx, eng, mounts, bootEnv)
	if err != nil {
		if ctx.Err() != nil {
			return nil // cancelled: try again next run
		}
		r.warnSnapshot(opts, err)
		s = nil
	}
	r.snaps[key] = s
	return s
}

func (r *Runner) buildSnapshot(ctx context.Context, eng *pysnap.Engine, mounts []pysnap.Mount, bootEnv []string) (*pysnap.Snapshot, error) {
	if r.snapBroke {
		return nil, errors.New("the interpreter could not be prepared")
	}
	if r.prepared == nil {
		bin, err := pyruntime.Wasm()
		if err == nil {
			r.prepared, err = pysnap.Prepare(bin)
		}
		if err != nil {
			r.snapBroke = true
			return nil, err
		}
	}
	cacheDir := ""
	if r.cacheDir != "" {
		cacheDir = filepath.Join(r.cacheDir, "pysnap")
	}
	sources := r.pySource
	if sources == "" {
		var err error
		if sources, err = pythonSourcesDigest(r.proj); err != nil {
			return nil, err
		}
	}
	s, err := pysnap.Build(ctx, eng, r.prepared, pysnap.BootSpec{
		Extra:    warmImports(executorModules(r.proj)),
		Mounts:   mounts,
		CacheKey: "ork-sdk " + pysdk.Digest() + " project " + sources,
		Env:      bootEnv,
		CacheDir: cacheDir,
	})
	if err != nil {
		return nil, err
	}
	if s.Meta.Pages > eng.MemoryLimitPages() {
		s.Close()
		return nil, fmt.Errorf("the memory limit of %s is below the snapshot's %s",
			runtime.FormatBytes(uint64(eng.MemoryLimitPages())*64<<10), runtime.FormatBytes(uint64(s.Meta.Pages)*64<<10))
	}
	return s, nil
}

func (r *Runner) warnSnapshot(opts Options, err error) {
	r.snapWarn.Do(func() {
		if opts.Warn != nil {
			opts.Warn(fmt.Sprintf("Python snapshot unavailable (%v); starting Python tasks cold", err))
		}
	})
}

func (r *Runner) module(ctx context.Context, rel string, isCrate bool, host *runtime.Host) (*runtime.Module, error) {
	abs := filepath.Join(r.proj.Root, filepath.FromSlash(rel))
	r.mu.Lock()
	m, ok := r.modules[abs]
	r.mu.Unlock()
	if ok {
		return m, nil
	}
	file := abs
	if isCrate {
		built, err := r.builder.Build(ctx, abs, rel)
		if err != nil {
			return nil, err
		}
		file = built.Path
	}
	bin, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", rel, err)
	}
	m, err = host.LoadModule(ctx, rel, bin)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.modules[abs] = m
	r.mu.Unlock()
	return m, nil
}

// PythonSDKDir is where Python sandboxes see the ork SDK.
const PythonSDKDir = "/.ork-sdk/python"

var errNotRun = errors.New("not run")

// pythonBoot is the program the interpreter runs; the SDK's runner takes it
// from there (sdk/python/ork/_main.py).
const pythonBoot = "import ork._main; ork._main.main()"

// NewRunID returns a sortable, unique run id.
func NewRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// RunDir is where a run keeps what it produced.
func RunDir(root, runID string) string {
	return filepath.Join(root, ".ork", "runs", runID)
}

// Execute runs a prepared plan. Cancelling ctx stops running sandboxes; their
// tasks are recorded as cancelled. With opts.Resume, tasks that succeeded in
// the recorded run keep their outputs and are not run again.
func (r *Runner) Execute(ctx context.Context, p *Plan, opts Options, obs Observer) (*Summary, error) {
	runID := opts.RunID
	if runID == "" {
		runID = NewRunID()
	}
	runDir := RunDir(r.proj.Root, runID)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	wf := p.Workflow
	sum := &Summary{RunID: runID, Workflow: wf.Name, Tasks: map[string]*TaskResult{}}
	rec := newRecorder(opts.Store, runID)
	prior := map[string]int{} // attempts already recorded, by task
	done := map[string]bool{}
	if opts.Resume {
		// Claim the run first: no other ork process may still be running
		// it, or be resuming it too.
		if err := rec.resumeRun(ctx, wf); err != nil {
			return nil, err
		}
		if err := rec.interrupted(ctx); err != nil {
			return nil, err
		}
		previous, err := LoadSummary(ctx, opts.Store, runID, wf.Order)
		if err != nil {
			return nil, err
		}
		for name, t := range previous.Tasks {
			prior[name] = t.Attempts
			if t.Status == string(scheduler.Succeeded) {
				done[name] = true
				sum.Tasks[name] = t
			}
		}
	} else if err := rec.createRun(ctx, wf, r.proj, opts); err != nil {
		return nil, err
	}

	var mu sync.Mutex // guards sum.Tasks
	nodes := make([]scheduler.Node, 0, len(wf.Order))
	pools := map[string]int{}
	for _, name := range wf.Order {
		t := wf.Tasks[name]
		n := scheduler.Node{Name: name, DependsOn: t.DependsOn, Done: done[name]}
		if ex := r.proj.Executors[t.Executor]; ex.Sandbox.MaxConcurrency > 0 {
			n.Pool = ex.Name
			pools[ex.Name] = ex.Sandbox.MaxConcurrency
		}
		nodes = append(nodes, n)
	}
	run := func(ctx context.Context, name string) scheduler.Status {
		pt := p.tasks[name]
		upstream := map[string]any{}
		mu.Lock()
		for _, d := range pt.task.DependsOn {
			upstream[d] = sum.Tasks[d].Output
		}
		mu.Unlock()
		policy := retryPolicy(pt)
		var res *TaskResult
		for i := 1; ; i++ {
			attempt := prior[name] + i
			obs.TaskStarted(name)
			res = r.runTask(ctx, runID, runDir, wf, pt, upstream, attempt, opts, obs, rec)
			res.Attempts = attempt
			obs.TaskFinished(name, res)
			if res.Status != string(scheduler.Failed) || i >= policy.MaxAttempts || res.Reason == ReasonConfig {
				break
			}
			wait := policy.Delay(i+1, mrand.Float64())
			obs.TaskLog(name, LogLine{Time: time.Now(), Level: "warn", Source: "ork",
				Message: fmt.Sprintf("attempt %d of %d failed; retrying in %s", i, policy.MaxAttempts, wait.Round(time.Millisecond))})
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			if ctx.Err() != nil {
				break
			}
		}
		mu.Lock()
		sum.Tasks[name] = res
		mu.Unlock()
		return scheduler.Status(res.Status)
	}
	skip := func(name, reason string) {
		msg := reason
		res := &TaskResult{Status: string(scheduler.Skipped), Attempts: prior[name], Output: json.RawMessage("null"), Metrics: []abi.Metric{}, Error: &msg}
		mu.Lock()
		sum.Tasks[name] = res
		mu.Unlock()
		if err := rec.skipped(name, prior[name], reason); err != nil && opts.Warn != nil {
			opts.Warn(fmt.Sprintf("task %s: %v", name, err))
		}
		obs.TaskSkipped(name, reason)
	}
	statuses, err := scheduler.Run(ctx, nodes, opts.Concurrency, pools, run, skip)
	if err != nil {
		return nil, err
	}
	sum.Status = StatusSucceeded
	for _, s := range statuses {
		if s != scheduler.Succeeded && sum.Status == StatusSucceeded {
			sum.Status = StatusFailed
		}
	}
	if ctx.Err() != nil {
		sum.Status = StatusCancelled
	}
	if err := rec.finishRun(sum.Status); err != nil {
		return sum, err
	}
	if b, err := json.MarshalIndent(sum, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(runDir, "summary.json"), append(b, '\n'), 0o644)
	}
	return sum, nil
}

// ReasonConfig marks a failure that retrying cannot fix: the executor's
// config or the task's params do not fit.
const ReasonConfig = "config"

// Reasons taken from what the guest reported (error.report's kind) when it
// then exited non-zero: the user's code raised an exception (Python) or
// returned an error (Rust, kind "run"), or its output could not be
// serialized or stored. A plain non-zero exit stays runtime.ReasonExit.
const (
	ReasonException = "exception"
	ReasonOutput    = "output"
)

// failureReason is the task's reason for a failure: the runtime's, refined
// by the kind the guest reported when the guest itself chose to exit.
func failureReason(f *runtime.Failure, rep *abi.ErrorReport) runtime.Reason {
	if rep == nil {
		return f.Reason
	}
	if rep.Kind == "config" {
		return ReasonConfig
	}
	if f.Reason != runtime.ReasonExit {
		return f.Reason
	}
	switch rep.Kind {
	case "exception", "run":
		return ReasonException
	case "output":
		return ReasonOutput
	}
	return f.Reason
}

// retryPolicy returns the retry policy of a task: its own, else its
// executor's, else a single attempt.
func retryPolicy(pt *planned) project.Retries {
	if pt.task.Retries != nil {
		return *pt.task.Retries
	}
	if pt.executor.Retries != nil {
		return *pt.executor.Retries
	}
	return project.NoRetries
}

// taskPolicy is the sandbox policy of a task of wf run by executor ex:
// ork's defaults (256 MiB of memory, 10 minutes, no environment, no CPU
// limit; a sandbox has no network in any case), changed by the executor's
// sandbox settings and the task's own timeout; the project mounted read-only
// at /, the task's scratch and output directories writable, and the
// executor's extra read-only mounts; the environment variables the executor
// passes through that are set.
func taskPolicy(project []runtime.Mount, wf *project.Workflow, task *project.Task, ex *project.Executor, scratch, outDir string) runtime.Policy {
	sb := ex.Sandbox
	policy := runtime.Policy{MemoryBytes: sb.MemoryBytes, CPU: sb.CPU}
	projectFile := "ork.yaml"
	if ex.Pos.File != "" {
		projectFile = ex.Pos.File
	}
	if policy.MemoryBytes == 0 {
		policy.MemoryBytes = runtime.DefaultMemoryBytes
		policy.MemoryFrom = fmt.Sprintf("the default memory limit; set executors.%s.sandbox.memory in %s to change it", ex.Name, projectFile)
	} else {
		policy.MemoryFrom = fmt.Sprintf("executors.%s.sandbox.memory in %s", ex.Name, projectFile)
	}
	switch {
	case task.Timeout > 0:
		policy.Timeout = task.Timeout
		policy.TimeoutFrom = fmt.Sprintf("the timeout of task %q in %s", task.Name, wf.Rel)
	case sb.Timeout > 0:
		policy.Timeout = sb.Timeout
		policy.TimeoutFrom = fmt.Sprintf("executors.%s.sandbox.timeout in %s", ex.Name, projectFile)
	default:
		policy.Timeout = runtime.DefaultTimeout
		policy.TimeoutFrom = fmt.Sprintf("the default timeout; set timeout on task %q in %s or executors.%s.sandbox.timeout in %s to change it",
			task.Name, wf.Rel, ex.Name, projectFile)
	}
	policy.Mounts = append(policy.Mounts, project...)
	policy.Mounts = append(policy.Mounts,
		runtime.Mount{HostPath: scratch, GuestPath: abi.ScratchDir, Writable: true},
		runtime.Mount{HostPath: outDir, GuestPath: abi.OutputDir, Writable: true},
	)
	for _, m := range sb.Mounts {
		policy.Mounts = append(policy.Mounts, runtime.Mount{HostPath: m.HostPath, GuestPath: m.GuestPath})
	}
	for _, k := range sb.Env {
		if v, ok := os.LookupEnv(k); ok {
			policy.Env = append(policy.Env, k+"="+v)
		}
	}
	return policy
}

func (r *Runner) runTask(ctx context.Context, runID, runDir string, wf *project.Workflow, pt *planned, upstream map[string]any, attempt int, opts Options, obs Observer, rec *recorder) (res *TaskResult) {
	name := pt.task.Name
	res = &TaskResult{Attempts: attempt, Output: json.RawMessage("null"), Metrics: []abi.Metric{}, Engine: pt.host.Engine()}
	started := time.Now()
	// Secret values never leave the task: not in logs, errors, outputs,
	// metrics, the run store or --json.
	red := pt.red
	var tl *taskLog
	taken := false // the attempt number is already recorded
	defer func() {
		if tl != nil {
			tl.close()
		}
		if res.Error != nil {
			msg := red.String(*res.Error)
			res.Error = &msg
		}
		res.Output = red.JSON(res.Output)
		if red.Active() {
			// Names and label names too: a guest may record a secret as a
			// metric name, which the ABI accepts when it fits the charset.
			for i, m := range res.Metrics {
				res.Metrics[i].Name = red.String(m.Name)
				if len(m.Labels) > 0 {
					labels := make(map[string]string, len(m.Labels))
					for k, v := range m.Labels {
						labels[red.String(k)] = red.String(v)
					}
					res.Metrics[i].Labels = labels
				}
			}
		}
		if taken {
			// Another process's attempt of this number: leave it alone.
		} else if err := rec.finishAttempt(name, attempt, started, res); err != nil {
			msg := fmt.Sprintf("recording the task in the run store: %v", err)
			res.Status, res.Reason, res.Error = string(scheduler.Failed), "host", &msg
		}
		if opts.Telemetry != nil {
			err := opts.Telemetry.PushTask(context.WithoutCancel(ctx), TaskReport{Task: name, Attempt: attempt, Status: res.Status, Reason: res.Reason,
				Duration: time.Duration(res.DurationMS * float64(time.Millisecond)), Metrics: res.Metrics})
			if err != nil && opts.Warn != nil {
				opts.Warn(fmt.Sprintf("task %s: pushing metrics to the OTLP endpoint failed: %v", name, err))
			}
		}
	}()
	fail := func(reason runtime.Reason, msg string) *TaskResult {
		res.Status = string(scheduler.Failed)
		if reason == runtime.ReasonCancelled {
			res.Status = string(scheduler.Cancelled)
		}
		res.Reason = string(reason)
		res.Error = &msg
		return res
	}
	if err := rec.startAttempt(ctx, name, attempt, started, res.Engine); err != nil {
		taken = errors.Is(err, store.ErrExists)
		return fail("host", fmt.Sprintf("recording the task in the run store: %v", err))
	}
	taskDir := filepath.Join(runDir, name)
	outDir := filepath.Join(taskDir, "output")
	if attempt > 1 {
		// Keep what earlier attempts produced; the latest is always output/.
		if _, err := os.Stat(outDir); err == nil {
			_ = os.Rename(outDir, filepath.Join(taskDir, fmt.Sprintf("output.attempt-%d", attempt-1)))
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(runtime.ReasonExit, fmt.Sprintf("creating the output directory: %v", err))
	}
	scratch, err := os.MkdirTemp("", "ork-scratch-")
	if err != nil {
		return fail(runtime.ReasonExit, fmt.Sprintf("creating the scratch directory: %v", err))
	}
	defer os.RemoveAll(scratch)

	logFile, err := os.OpenFile(filepath.Join(taskDir, "task.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail(runtime.ReasonExit, fmt.Sprintf("creating the task log: %v", err))
	}
	defer logFile.Close()
	tl = newTaskLog(name, attempt, obs, logFile, rec, red)
	defer func() {
		for _, link := range removeEscapingLinks(outDir) {
			tl.line("warn", "ork", "removed the symbolic link "+link+" the task left in its output directory: it pointed outside it", nil)
		}
	}()

	var cfgFile *string
	if pt.task.ConfigFile != "" {
		c := pt.task.ConfigFile
		cfgFile = &c
	}
	sess := abi.NewSession(abi.Task{
		Info: abi.TaskInfo{
			Task: name, Workflow: wf.Name, RunID: runID, Attempt: attempt,
			WorkflowParams: opts.Params,
			Executor:       pt.executor.Name, ConfigFile: cfgFile,
			ScratchDir: abi.ScratchDir, OutputDir: abi.OutputDir,
		},
		ExecutorConfig: pt.executor.Config,
		Params:         pt.params,
		Upstream:       upstream,
		Capabilities:   pt.caps,
	}, "ork/"+opts.Version, tl)

	policy := taskPolicy(pt.project, wf, pt.task, pt.executor, scratch, outDir)
	args := []string{name}
	var pyEnv []string // the interpreter's own environment (a snapshot boots with it)
	if pt.python != nil {
		policy.Mounts = append(policy.Mounts, runtime.Mount{HostPath: r.pySDK, GuestPath: PythonSDKDir})
		pyPath := []string{PythonSDKDir}
		for _, d := range r.proj.PythonPath {
			pyPath = append(pyPath, "/"+d)
		}
		pyEnv = []string{
			"PYTHONPATH=" + strings.Join(pyPath, ":"),
			"PYTHONDONTWRITEBYTECODE=1",
			"PYTHONUNBUFFERED=1",
		}
		policy.Env = append(policy.Env, pyEnv...)
		args = append([]string{"python", "-c", pythonBoot}, pt.python...)
	}
	stdout := &lineWriter{red: red, emit: func(s string, raw int) { tl.add("info", "stdout", s, nil, raw) }}
	stderr := &lineWriter{red: red, emit: func(s string, raw int) { tl.add("warn", "stderr", s, nil, raw) }}
	task := runtime.Task{
		Module: pt.module, Policy: policy, Session: sess,
		Stdout: stdout, Stderr: stderr, Args: args,
	}
	var out *runtime.Result
	err = errNotRun
	if pt.python != nil {
		if snap := r.snapshot(ctx, pt.host, policy, pyEnv, opts); snap != nil {
			out, err = pt.host.RunSnapshot(ctx, snap, task, pythonBoot, append([]string{"-c"}, pt.python...))
			if err != nil && ctx.Err() == nil {
				r.warnSnapshot(opts, err)
			}
		}
	}
	if err != nil {
		// Not a Python task, no snapshot, or the snapshot could not start
		// it (nothing ran): start it cold.
		out, err = pt.host.Run(ctx, task)
	}
	stdout.Flush()
	stderr.Flush()
	res.Metrics = append(res.Metrics, sess.Metrics()...)
	if out != nil && out.Fuel > 0 {
		// What the task burned, for usage accounting (sandbox.cpu).
		res.Metrics = append(res.Metrics, abi.Metric{Name: FuelMetric, Value: float64(out.Fuel),
			Labels: map[string]string{"task": name, "workflow": wf.Name}})
	}
	if err != nil {
		return fail(runtime.ReasonExit, err.Error())
	}
	res.DurationMS = float64(out.Duration.Microseconds()) / 1000
	if f := out.Failure; f != nil {
		rep := sess.Reported()
		if rep != nil && rep.Kind != "config" && strings.HasPrefix(rep.Message, "MemoryError") {
			// An interpreter turns a refused memory.grow into an exception.
			// (taskPolicy always sets the limit.)
			return fail(runtime.ReasonMemory, fmt.Sprintf("exceeded the memory limit of %s (%s): %s", runtime.FormatBytes(policy.MemoryBytes), policy.MemoryLimitFrom(), rep.Message))
		}
		return fail(failureReason(f, rep), failureMessage(f, rep, stderr.last))
	}
	if o, ok := sess.Output(); ok {
		res.Output = o
	}
	res.Status = string(scheduler.Succeeded)
	return res
}

// failureMessage prefers what the guest said about its failure, unless a
// limit or the host stopped it.
func failureMessage(f *runtime.Failure, rep *abi.ErrorReport, lastStderr []string) string {
	switch f.Reason {
	case runtime.ReasonTimeout, runtime.ReasonMemory, runtime.ReasonCPU, runtime.ReasonCancelled, runtime.ReasonABI:
		return f.Message
	}
	if rep != nil {
		msg := rep.Message
		if rep.Kind == "config" || rep.Kind == "output" {
			return msg
		}
		if f.Reason == runtime.ReasonExit && (rep.Kind == "exception" || rep.Kind == "run") {
			// The error (and Python traceback), then how the guest ended.
			return fmt.Sprintf("%s\nexit status %d", msg, f.ExitCode)
		}
		if f.Reason == runtime.ReasonExit && f.ExitCode == 1 {
			return msg
		}
		return msg + " (" + f.Message + ")"
	}
	if len(lastStderr) > 0 {
		return f.Message + ": " + strings.Join(lastStderr, " | ")
	}
	return f.Message
}

// taskLog is where a task's log lines go: the observer, the task.log file
// and, in batches, the run store.
type taskLog struct {
	task    string
	attempt int
	obs     Observer
	rec     *recorder
	mu      sync.Mutex
	file    io.Writer
	pending []store.LogLine
	red     *redact.Redactor
	stop    chan struct{}
	stopped chan struct{}
	limit   int64 // the bytes of log the attempt may produce
	used    int64 // the bytes logged so far
	full    bool  // limit reached: every further line is dropped
	dropped int64 // the bytes dropped since
}

// MaxTaskLogBytes is how much log (guest stdout and stderr and structured
// log records) one attempt of a task may produce. Beyond it further output
// is dropped, so a task printing without end cannot grow ork's memory or
// the run store; the task is not failed for it, and its log ends with a
// line saying how much was dropped.
const MaxTaskLogBytes = 16 << 20

// logFlushEvery bounds how stale `ork logs --follow` can be.
const logFlushEvery = 250 * time.Millisecond

func newTaskLog(task string, attempt int, obs Observer, file io.Writer, rec *recorder, red *redact.Redactor) *taskLog {
	l := &taskLog{task: task, attempt: attempt, obs: obs, file: file, rec: rec, red: red, stop: make(chan struct{}), stopped: make(chan struct{}), limit: MaxTaskLogBytes}
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(logFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.flush()
			case <-l.stop:
				l.flush()
				return
			}
		}
	}()
	return l
}

func (l *taskLog) Log(_ string, rec abi.LogRecord) {
	l.line(rec.Level, "log", rec.Message, rec.Fields)
}

func (l *taskLog) line(level, source, msg string, fields map[string]any) {
	l.add(level, source, msg, fields, -1)
}

// add logs a line unless the attempt's log is full; raw is what the line
// stands for in the guest's output (-1: the line itself), counted as
// dropped when it is.
func (l *taskLog) add(level, source, msg string, fields map[string]any, raw int) {
	msg, fields = l.red.String(msg), l.red.Fields(fields)
	ff := FormatFields(fields)
	size := int64(len(msg) + len(ff) + 1)
	if raw < 0 {
		raw = int(size)
	}
	l.mu.Lock()
	if l.full || l.used+size > l.limit {
		l.full = true
		l.dropped += int64(raw)
		l.mu.Unlock()
		return
	}
	l.used += size
	l.mu.Unlock()
	l.write(level, source, msg, fields, ff)
}

func (l *taskLog) write(level, source, msg string, fields map[string]any, ff string) {
	ln := LogLine{Time: time.Now(), Level: level, Source: source, Message: msg, Fields: fields}
	l.mu.Lock()
	fmt.Fprintf(l.file, "%s %-5s %s%s\n", ln.Time.Format(time.RFC3339Nano), level, msg, ff)
	if l.rec.st != nil {
		l.pending = append(l.pending, store.LogLine{RunID: l.rec.runID, Task: l.task, Attempt: l.attempt, Time: ln.Time,
			Level: level, Source: source, Message: msg, Fields: fields})
	}
	l.mu.Unlock()
	l.obs.TaskLog(l.task, ln)
}

func (l *taskLog) flush() {
	l.mu.Lock()
	lines := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(lines) > 0 {
		l.rec.logs(lines)
	}
}

// close flushes what is left; every line is stored before the attempt is.
func (l *taskLog) close() {
	l.mu.Lock()
	full, dropped := l.full, l.dropped
	l.mu.Unlock()
	if full {
		l.write("warn", "log", fmt.Sprintf("log limit reached: dropped the last %s (%d bytes) of this attempt's output; an attempt may log at most %s",
			runtime.FormatBytes(uint64(dropped)), dropped, runtime.FormatBytes(uint64(l.limit))), nil, "")
	}
	close(l.stop)
	<-l.stopped
}

// FormatFields renders log fields as " k=v" pairs in key order.
func FormatFields(fields map[string]any) string {
	if len(fields) == 0 {
		return ""
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := json.Marshal(fields[k])
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// MaxLogLineBytes is the longest guest output line kept in a task's log;
// the rest of a longer line is dropped and the line ends with a marker
// saying how long it was.
const MaxLogLineBytes = 16 << 10

// lineWriter splits a guest stream into lines, cut at MaxLogLineBytes, and
// keeps the last few. It holds at most one cut line in memory however much
// the guest writes without a newline.
type lineWriter struct {
	emit func(line string, raw int) // raw: the bytes the guest wrote for it
	red  *redact.Redactor           // masks a secret the cut leaves half of
	mu   sync.Mutex
	buf  []byte // the current line, at most MaxLogLineBytes
	over int    // bytes of the current line beyond buf, dropped
	last []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.take(p)
			break
		}
		w.take(p[:i])
		w.end(1)
		p = p[i+1:]
	}
	return n, nil
}

// take adds b to the current line, keeping what fits.
func (w *lineWriter) take(b []byte) {
	if room := MaxLogLineBytes - len(w.buf); room > 0 {
		k := min(room, len(b))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
	}
	w.over += len(b)
}

// end emits the current line; nl is the length of its terminator.
func (w *lineWriter) end(nl int) {
	raw := len(w.buf) + w.over + nl
	var s string
	if w.over == 0 {
		s = strings.TrimRight(string(w.buf), "\r")
	} else {
		kept := w.buf
		// Do not end the kept part in the middle of a UTF-8 sequence.
		for i := len(kept) - 1; i >= 0 && i >= len(kept)-utf8.UTFMax; i-- {
			if utf8.RuneStart(kept[i]) {
				if !utf8.FullRune(kept[i:]) {
					kept = kept[:i]
				}
				break
			}
		}
		s = fmt.Sprintf("%s… [line truncated: %d bytes, the first %d kept]", w.red.CutTail(string(kept)), len(w.buf)+w.over, len(kept))
	}
	w.buf, w.over = w.buf[:0], 0
	w.push(s, raw)
}

func (w *lineWriter) push(s string, raw int) {
	w.last = append(w.last, s)
	if len(w.last) > 3 {
		w.last = w.last[1:]
	}
	w.emit(s, raw)
}

// Flush emits a final unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 || w.over > 0 {
		w.end(0)
	}
}
