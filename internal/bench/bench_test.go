// Package bench measures what a task costs end to end through ork's runner,
// beside the baseline a user would otherwise pick (a fresh native process per
// task). Run with `make bench`; results go to BENCHMARKS.md.
package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/orkrun/ork/internal/cargo"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/runner"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

type nopObserver struct{}

func (nopObserver) TaskStarted(string)                      {}
func (nopObserver) TaskFinished(string, *runner.TaskResult) {}
func (nopObserver) TaskSkipped(string, string)              {}
func (nopObserver) TaskLog(string, runner.LogLine)          {}

func writeFiles(b *testing.B, dir string, files map[string]string) {
	b.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWorkflow runs one workflow per iteration and reports ms per task.
func benchWorkflow(b *testing.B, dir, workflow string) {
	b.Helper()
	benchWorkflowOpts(b, dir, workflow, runner.Options{})
}

// benchWorkflowOpts is benchWorkflow with options (NoSnapshot); a warning
// (e.g. the Python snapshot being unavailable) fails the benchmark.
func benchWorkflowOpts(b *testing.B, dir, workflow string, opts runner.Options) {
	b.Helper()
	benchWorkflowSetup(b, dir, "", workflow, opts)
}

// benchWorkflowSetup is benchWorkflowOpts with a workflow run once first,
// untimed (e.g. to seed a database), when setup is not "". It runs once per
// engine compiled in, as sub-benchmarks named after the engine.
func benchWorkflowSetup(b *testing.B, dir, setup, workflow string, opts runner.Options) {
	b.Helper()
	forEngines(b, func(b *testing.B, engine string) { benchWorkflowOn(b, engine, dir, setup, workflow, opts) })
}

// forEngines runs f as a sub-benchmark per engine compiled into ork.
func forEngines(b *testing.B, f func(b *testing.B, engine string)) {
	b.Helper()
	for _, engine := range runtime.Engines() {
		b.Run(engine, func(b *testing.B) { f(b, engine) })
	}
}

func benchWorkflowOn(b *testing.B, engine, dir, setup, workflow string, opts runner.Options) {
	b.Helper()
	opts.Concurrency, opts.Version = 1, "bench"
	opts.Warn = func(msg string) { b.Error(msg) }
	testguests.UseDebianToolchain()
	cache := testguests.CacheDir()
	ctx := context.Background()
	proj, err := project.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	wf, err := proj.LoadWorkflow(filepath.Join(dir, workflow))
	if err != nil {
		b.Fatal(err)
	}
	var setupWf *project.Workflow
	if setup != "" {
		if setupWf, err = proj.LoadWorkflow(filepath.Join(dir, setup)); err != nil {
			b.Fatal(err)
		}
	}
	hosts := runtime.NewHosts(engine, runtime.WithCacheDir(cache), runtime.WithVersion("bench"))
	defer hosts.Close(ctx)
	r := runner.New(proj, hosts, cargo.New(cache, os.Stderr), cache)
	r.Engine = engine
	defer r.Close()
	run := func(wf *project.Workflow) {
		plan, err := r.Prepare(ctx, wf)
		if err != nil {
			b.Fatal(err)
		}
		sum, err := r.Execute(ctx, plan, opts, nopObserver{})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Status != runner.StatusSucceeded {
			for n, t := range sum.Tasks {
				if t.Error != nil {
					b.Fatalf("task %s: %s", n, *t.Error)
				}
			}
			b.Fatalf("run %s", sum.Status)
		}
		os.RemoveAll(runner.RunDir(dir, sum.RunID))
	}
	if setupWf != nil {
		run(setupWf)
	}
	run(wf) // warm: compile caches, SDK bytecode, the Python snapshot
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(wf)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(len(wf.Tasks)), "ms/task")
}

// BenchmarkPythonTrivialTask: a built-in python task that reads its context,
// records one metric and returns an output, in a fresh sandbox started from
// the interpreter snapshot.
func BenchmarkPythonTrivialTask(b *testing.B) { benchPythonTrivial(b, runner.Options{}) }

// BenchmarkPythonTrivialTaskCold: the same, started cold (--no-snapshot).
func BenchmarkPythonTrivialTaskCold(b *testing.B) {
	benchPythonTrivial(b, runner.Options{NoSnapshot: true})
}

func benchPythonTrivial(b *testing.B, opts runner.Options) {
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{
		"ork.yaml": "executors: {}\n",
		"wf.yaml":  "name: trivial\ntasks:\n  t:\n    executor: python\n    config_file: t.yaml\n",
		"t.yaml":   "file: t.py\n",
		"t.py":     "def run(ctx, upstream):\n    ctx.metrics.record('n', 1, labels={'task': ctx.task_name})\n    return {'ok': True, 'up': len(upstream)}\n",
	})
	benchWorkflowOpts(b, dir, "wf.yaml", opts)
}

// BenchmarkPythonExampleExecutor: one task of examples/warehouse (pydantic
// config, Jinja2 render, SQL on SQLite, a metric) from the snapshot, which
// has the executor's module and its imports loaded. Needs the example's
// vendor directory (`make bench` installs it).
func BenchmarkPythonExampleExecutor(b *testing.B) { benchExampleExecutor(b, runner.Options{}) }

// BenchmarkPythonExampleExecutorCold: the same, started cold.
func BenchmarkPythonExampleExecutorCold(b *testing.B) {
	benchExampleExecutor(b, runner.Options{NoSnapshot: true})
}

func benchExampleExecutor(b *testing.B, opts runner.Options) {
	src := filepath.Join(testguests.RepoRoot(), "examples", "warehouse")
	if _, err := os.Stat(filepath.Join(src, "vendor", "pydantic")); err != nil {
		b.Skip("examples/warehouse/vendor is missing: run `ork python install -r requirements.txt` there (make bench does)")
	}
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
	writeFiles(b, dir, map[string]string{
		"seed.yaml": "name: seed\ntasks:\n  seed:\n    executor: python_sql\n    config_file: tasks/seed.yaml\n",
		"wf.yaml":   "name: one\ntasks:\n  stage_users:\n    executor: sql\n    config_file: sql/staging/users.yaml\n",
	})
	benchWorkflowSetup(b, dir, "seed.yaml", "wf.yaml", opts)
}

// BenchmarkRustTrivialTask: the Rust probe's echo (context, upstream, params,
// a metric, a log record, output) in a fresh sandbox.
func BenchmarkRustTrivialTask(b *testing.B) {
	dir := b.TempDir()
	bin, err := os.ReadFile(testguests.Module(b, "probe"))
	if err != nil {
		b.Fatal(err)
	}
	writeFiles(b, dir, map[string]string{
		"ork.yaml":   "executors: {}\n",
		"wf.yaml":    "name: trivial\ntasks:\n  t:\n    executor: rust\n    config_file: t.yaml\n",
		"t.yaml":     "module: probe.wasm\nparams: {action: echo}\n",
		"probe.wasm": string(bin),
	})
	benchWorkflow(b, dir, "wf.yaml")
}

// BenchmarkBaselineNativePythonProcess: what process-per-task orchestrators
// pay: a fresh native python3 running the same trivial task.
func BenchmarkBaselineNativePythonProcess(b *testing.B) {
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("no python3")
	}
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(py, "-c", "import json, sys; sys.stdout.write(json.dumps({'ok': True}))").Output()
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/task")
}
