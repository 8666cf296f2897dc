package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

// BenchmarkEngines compares the engines end to end, a fresh instance per
// task: the Rust probe's echo (abi.hello, task.info, params, a metric, a
// log line, stdout and stderr, the output), and CPython's `-c pass`, cold.
// wasmtime runs them twice: as is, and with a CPU limit (wasmtime+fuel),
// which runs them on its fuel-metered configuration; fuel/op is the fuel a
// task consumed. Modules are compiled (and cached) before the timer starts.
//
//	go test -run '^$' -bench Engines ./runtime/
func BenchmarkEngines(b *testing.B) {
	ctx := context.Background()
	type variant struct {
		name, engine string
		policy       runtime.Policy
	}
	var variants []variant
	for _, e := range runtime.Engines() {
		variants = append(variants, variant{e, e, runtime.Policy{}})
		if e == "wasmtime" {
			variants = append(variants, variant{e + "+fuel", e, runtime.Policy{CPU: 1e12}})
		}
	}
	// bench runs task in a loop, after one run outside the timer (the fuel
	// configuration compiles its modules, or loads them, on first use).
	bench := func(b *testing.B, h *runtime.Host, task func() runtime.Task) {
		run := func() *runtime.Result {
			res, err := h.Run(ctx, task())
			if err != nil || res.Failure != nil {
				b.Fatal(err, res.Failure)
			}
			return res
		}
		run()
		b.ReportAllocs()
		var fuel, n uint64
		for b.Loop() {
			fuel += run().Fuel
			n++
		}
		if fuel > 0 {
			b.ReportMetric(float64(fuel)/float64(n), "fuel/op")
		}
	}
	for _, v := range variants {
		b.Run("probe-echo/"+v.name, func(b *testing.B) {
			f := setupEngine(b, v.engine)
			bench(b, f.host, func() runtime.Task {
				sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/bench", nil)
				return runtime.Task{Module: f.probe, Policy: v.policy, Session: sess}
			})
		})
	}
	for _, v := range variants {
		b.Run("python-pass/"+v.name, func(b *testing.B) {
			f := setupEngine(b, v.engine)
			m := f.python(b)
			bench(b, f.host, func() runtime.Task {
				return runtime.Task{Module: m, Policy: v.policy, Session: abi.NewSession(abi.Task{}, "ork/bench", nil),
					Args: []string{"python", "-c", "pass"}}
			})
		})
	}
}

// BenchmarkSnapshotEngines compares the engines on Python tasks started
// from a snapshot (booted once, on wazero, before the timer starts; on
// wasmtime also baked and compiled, or loaded from the cache): `pass`, and
// ork's SDK task runner (ork._main running a function task that returns a
// value computed from its upstream, over the clock gate), as the runner
// starts it. Per task: RunSnapshot, from request to result.
//
//	go test -run '^$' -bench SnapshotEngines ./runtime/
func BenchmarkSnapshotEngines(b *testing.B) {
	ctx := context.Background()
	// As ork does, the SDK is compiled to bytecode once.
	sdk := b.TempDir()
	if err := os.CopyFS(sdk, os.DirFS(filepath.Join(testguests.RepoRoot(), "sdk", "python"))); err != nil {
		b.Fatal(err)
	}
	{
		f := setupEngine(b, runtime.DefaultEngine)
		res, err := f.host.Run(ctx, runtime.Task{Module: f.python(b), Session: abi.NewSession(abi.Task{}, "ork/bench", nil), Stderr: os.Stderr,
			Policy: runtime.Policy{Mounts: []runtime.Mount{{HostPath: sdk, GuestPath: "/sdk", Writable: true}}},
			Args:   []string{"python", "-c", "import compileall, py_compile, sys\nsys.exit(not compileall.compile_dir('/sdk', quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))"}})
		if err != nil || res.Failure != nil {
			b.Fatal(err, res.Failure)
		}
	}
	project := b.TempDir()
	if err := os.WriteFile(filepath.Join(project, "task.py"), []byte("import json\ndef run(ctx, upstream):\n    return {'n': len(json.dumps(upstream))}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	const sdkDir = "/.ork-sdk/python"
	env := []string{"PYTHONPATH=" + sdkDir, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"}
	for _, e := range runtime.Engines() {
		f := setupEngine(b, e)
		py := f.python(b)
		bin, err := pyruntime.Wasm()
		if err != nil {
			b.Skip(err)
		}
		p, err := pysnap.Prepare(bin)
		if err != nil {
			b.Fatal(err)
		}
		eng, err := f.host.SnapshotEngine(ctx, runtime.Policy{})
		if err != nil {
			b.Fatal(err)
		}
		snap, err := pysnap.Build(ctx, eng, p, pysnap.BootSpec{
			Mounts:   []pysnap.Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}, {HostPath: sdk, GuestPath: sdkDir}},
			Env:      env,
			Extra:    "import ork._main, ork._output",
			CacheKey: "bench sdk",
		})
		if err != nil {
			b.Fatal(err)
		}
		policy := runtime.Policy{Env: env, Mounts: []runtime.Mount{{HostPath: project, GuestPath: "/"},
			{HostPath: b.TempDir(), GuestPath: "/tmp", Writable: true}, {HostPath: sdk, GuestPath: sdkDir}}}
		// The first task bakes the module on wasmtime: not timed.
		if res, err := f.host.RunSnapshot(ctx, snap, runtime.Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/bench", nil), Policy: policy}, "pass", nil); err != nil || res.Failure != nil {
			b.Fatal(err, res.Failure)
		}
		b.Run("snapshot-pass/"+e, func(b *testing.B) {
			for b.Loop() {
				res, err := f.host.RunSnapshot(ctx, snap, runtime.Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/bench", nil), Policy: policy}, "pass", nil)
				if err != nil || res.Failure != nil {
					b.Fatal(err, res.Failure)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
		})
		b.Run("sdk-runner/"+e, func(b *testing.B) {
			for b.Loop() {
				sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "t", Workflow: "wf"}, Upstream: map[string]any{"up": 1}}, "ork/bench", nil)
				res, err := f.host.RunSnapshot(ctx, snap, runtime.Task{Module: py, Session: sess, Policy: policy, Stderr: os.Stderr},
					"import ork._main; ork._main.main()", []string{"-c", "function", "/task.py", "run"})
				if err != nil || res.Failure != nil {
					b.Fatal(err, res.Failure)
				}
				if out, ok := sess.Output(); !ok || string(out) != `{"n":9}` {
					b.Fatalf("output %s %v", out, ok)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
		})
		snap.Close()
	}
}
