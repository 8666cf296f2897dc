package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

func TestEngines(t *testing.T) {
	engines := runtime.Engines()
	require.NotEmpty(t, engines)
	assert.Equal(t, runtime.DefaultEngine, engines[0], "Engines lists the default first")
	want := "wazero"
	if len(engines) > 1 {
		want = "wasmtime" // where it is compiled in
	}
	assert.Equal(t, want, runtime.DefaultEngine)

	h, err := runtime.New()
	require.NoError(t, err)
	assert.Equal(t, want, h.Engine())
	require.NoError(t, h.Close(context.Background()))

	_, err = runtime.New(runtime.WithEngine("v8"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown engine "v8"`)

	for _, e := range engines {
		h, err := runtime.New(runtime.WithEngine(e))
		require.NoError(t, err, e)
		assert.Equal(t, e, h.Engine())
		require.NoError(t, h.Close(context.Background()))
		require.NoError(t, h.Close(context.Background()), "closing twice")
	}
}

// TestEnginesAgree runs the same tasks on every engine and requires the same
// outcome from each, to the letter: failures (reason, exit status, function,
// message), outputs, stdout and stderr.
func TestEnginesAgree(t *testing.T) {
	engines := runtime.Engines()
	if len(engines) < 2 {
		t.Skip("this binary has one engine:", engines)
	}
	type outcome struct {
		Failure *runtime.Failure
		Output  map[string]any
		Stdout  string
		Stderr  string
	}
	same := func(t *testing.T, run func(f *fixture) outcome) {
		t.Helper()
		want := run(setupEngine(t, engines[0]))
		for _, e := range engines[1:] {
			assert.Equal(t, want, run(setupEngine(t, e)), "%s and %s disagree", engines[0], e)
		}
	}
	probe := []struct {
		name   string
		params map[string]any
		policy runtime.Policy
	}{
		{"echo", map[string]any{"action": "echo"}, runtime.Policy{}},
		{"memory limit at once", map[string]any{"action": "alloc", "mb": 200}, runtime.Policy{MemoryBytes: 32 << 20}},
		{"memory limit gradually", map[string]any{"action": "alloc", "mb": 200, "chunk_kb": 64}, runtime.Policy{MemoryBytes: 32 << 20}},
		{"trap", map[string]any{"action": "trap"}, runtime.Policy{}},
		{"panic", map[string]any{"action": "panic"}, runtime.Policy{}},
		{"exit 0", map[string]any{"action": "exit", "code": 0}, runtime.Policy{}},
		{"exit 3", map[string]any{"action": "exit", "code": 3}, runtime.Policy{}},
		{"exit 200", map[string]any{"action": "exit", "code": 200}, runtime.Policy{}},
		{"exit -1", map[string]any{"action": "exit", "code": -1}, runtime.Policy{}},
		{"fail", map[string]any{"action": "fail", "message": "boom"}, runtime.Policy{}},
		{"timeout", map[string]any{"action": "spin"}, runtime.Policy{Timeout: 100 * time.Millisecond}},
		{"env", map[string]any{"action": "env"}, runtime.Policy{Env: []string{"A=1", "B=", "C=x=y"}}},
		{"outside the mounts", map[string]any{"action": "read_file", "path": "/etc/passwd"}, runtime.Policy{}},
		{"escape", map[string]any{"action": "read_file", "path": "../../../../etc/passwd"}, runtime.Policy{}},
		{"list /", map[string]any{"action": "list_dir", "path": "/"}, runtime.Policy{}},
		{"no network", map[string]any{"action": "net", "addr": "127.0.0.1:1"}, runtime.Policy{}},
	}
	for _, tc := range probe {
		t.Run(tc.name, func(t *testing.T) {
			same(t, func(f *fixture) outcome {
				r := f.probeRun(t, tc.params, tc.policy)
				return outcome{engineNeutral(r.res.Failure), r.output, r.stdout, r.stderr}
			})
		})
	}
	python := []struct{ name, script string }{
		{"exit 3", "import sys; sys.exit(3)"},
		{"exit 200", "import sys; sys.exit(200)"},
		{"exception", "raise ValueError('x')"},
		{"MemoryError", "b = bytearray(300 << 20)"},
		{"listdir", "import os; print(os.listdir('/'))"},
		{"outside the mounts", "open('/etc/passwd')"},
		{"environment", "import os; print(dict(os.environ))"},
		{"argv", "import sys; print(sys.argv)"},
		{"stdin is empty", "import sys; print(repr(sys.stdin.read()))"},
		{"clocks", "import time; print(time.time() > 1.7e9, time.get_clock_info('monotonic').resolution)"},
		{"urandom", "import os; print(len(os.urandom(16)), os.urandom(16) != os.urandom(16))"},
		{"sleep", "import time; t = time.monotonic(); time.sleep(0.01); print(time.monotonic() - t >= 0.01)"},
		{"timeout", "while True: pass"},
	}
	for _, tc := range python {
		t.Run("python "+tc.name, func(t *testing.T) {
			same(t, func(f *fixture) outcome {
				m := f.python(t)
				var stdout, stderr bytes.Buffer
				// Only the runaway case may hit the limit: a cold CPython
				// start takes up to ~0.5 s on a loaded machine.
				timeout := time.Minute
				if tc.name == "timeout" {
					timeout = 300 * time.Millisecond
				}
				res, err := f.host.Run(context.Background(), runtime.Task{
					Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil), Stdout: &stdout, Stderr: &stderr,
					Policy: runtime.Policy{MemoryBytes: 64 << 20, Timeout: timeout, Env: []string{"X=1"},
						Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/"}}},
					Args: []string{"python", "-c", tc.script, "arg"},
				})
				require.NoError(t, err)
				return outcome{Failure: engineNeutral(res.Failure), Stdout: stdout.String(), Stderr: stderr.String()}
			})
		})
	}
}

// engineNeutral drops what only some engines know from a failure: where a
// timeout stopped the guest (wasmtime tells, wazero does not).
func engineNeutral(f *runtime.Failure) *runtime.Failure {
	if f == nil || f.Reason != runtime.ReasonTimeout || f.Function == "" {
		return f
	}
	c := *f
	c.Message = strings.Replace(c.Message, " in "+c.Function, "", 1)
	c.Function = ""
	return &c
}

// Writing into a read-only mount fails on every engine, but not with the
// same errno: wazero answers ENOSYS (52), wasmtime EPERM (63).
func TestReadOnlyMountsRefuseWrites(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		r := f.probeRun(t, map[string]any{"action": "write_file", "path": "new.txt", "content": "x"}, runtime.Policy{})
		require.Nil(t, r.res.Failure)
		assert.Equal(t, false, r.output["ok"])
		want := map[string]string{
			"wazero":   "Function not implemented (os error 52)",
			"wasmtime": "Operation not permitted (os error 63)",
		}[f.engine]
		assert.Equal(t, want, r.output["error"])
		_, err := os.Stat(filepath.Join(f.project, "new.txt"))
		assert.True(t, os.IsNotExist(err))
	})
}

// A guest follows symbolic links only where they stay inside the mount, on
// every engine: links in the project that lead out, and links the guest
// makes in its writable scratch, never reach a host file. (wasmtime lets the
// guest create a link that leads out but not follow it; ork's wazero mounts
// refuse to create it.)
func TestSymlinksStayInsideTheirMounts(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		base := t.TempDir()
		project, scratch, outside := filepath.Join(base, "project"), filepath.Join(base, "scratch"), filepath.Join(base, "outside")
		for _, d := range []string{project, scratch, outside} {
			require.NoError(t, os.Mkdir(d, 0o755))
		}
		require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("host secret"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(project, "data.txt"), []byte("data"), 0o644))
		require.NoError(t, os.Symlink("data.txt", filepath.Join(project, "alias.txt")))
		require.NoError(t, os.Symlink("../outside/secret.txt", filepath.Join(project, "up.txt")))
		require.NoError(t, os.Symlink("../outside", filepath.Join(project, "outdir")))
		var stdout, stderr bytes.Buffer
		res, err := f.host.Run(context.Background(), runtime.Task{
			Module: f.python(t), Session: abi.NewSession(abi.Task{}, "ork/test", nil), Stdout: &stdout, Stderr: &stderr,
			Policy: runtime.Policy{Timeout: time.Minute, Mounts: []runtime.Mount{
				{HostPath: project, GuestPath: "/"}, {HostPath: scratch, GuestPath: "/tmp", Writable: true}}},
			Args: []string{"python", "-c", `
import json, os
out = {}
def attempt(name, f):
    try:
        out[name] = f()
    except OSError as e:
        out[name] = type(e).__name__
attempt("alias", lambda: open("/alias.txt").read())
attempt("project link out", lambda: open("/up.txt").read())
attempt("project dir link out", lambda: open("/outdir/secret.txt").read())
attempt("write through dir link", lambda: open("/outdir/new.txt", "w").write("x"))
attempt("make link out", lambda: os.symlink("../../../../../../../../../../../..` + outside + `/secret.txt", "/tmp/e"))
attempt("read made link", lambda: open("/tmp/e").read())
attempt("make link in", lambda: os.symlink("f.txt", "/tmp/in"))
attempt("write made link in", lambda: open("/tmp/in", "w").write("in"))
attempt("read made link in", lambda: open("/tmp/f.txt").read())
print(json.dumps(out))
`},
		})
		require.NoError(t, err)
		require.Nil(t, res.Failure, "%v\n%s", res.Failure, stderr.String())
		var out map[string]any
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
		assert.Equal(t, "data", out["alias"])
		assert.Equal(t, "PermissionError", out["project link out"])
		assert.Equal(t, "PermissionError", out["project dir link out"])
		assert.Equal(t, "PermissionError", out["write through dir link"])
		if f.engine == "wazero" {
			assert.Equal(t, "PermissionError", out["make link out"])
		}
		assert.Contains(t, []any{"PermissionError", "FileNotFoundError"}, out["read made link"])
		assert.Equal(t, float64(2), out["write made link in"])
		assert.Equal(t, "in", out["read made link in"])
		entries, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "nothing was written outside")
	})
}

// signalWriter calls fn once with the first write that contains line.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line string
	fn   func()
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.line)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.line) {
		w.fn()
	}
	return len(p), nil
}

// TestOutputIsStreamedWhileTheTaskRuns: the guest waits for a file that the
// host creates only once it has seen the guest's line, on stdout and stderr.
// Without streaming the guest would wait until its timeout.
func TestOutputIsStreamedWhileTheTaskRuns(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		m := f.python(t)
		dir := t.TempDir()
		flag := func(name string) func() {
			return func() { _ = os.WriteFile(filepath.Join(dir, name), nil, 0o644) }
		}
		stdout := &signalWriter{line: "ready on stdout\n", fn: flag("stdout-seen")}
		stderr := &signalWriter{line: "ready on stderr\n", fn: flag("stderr-seen")}
		res, err := f.host.Run(context.Background(), runtime.Task{
			Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil), Stdout: stdout, Stderr: stderr,
			Policy: runtime.Policy{Timeout: time.Minute, Mounts: []runtime.Mount{{HostPath: dir, GuestPath: "/"}}},
			Args: []string{"python", "-c", `
import os, sys, time
for stream, name in ((sys.stdout, "stdout"), (sys.stderr, "stderr")):
    print("ready on " + name, file=stream, flush=True)
    while not os.path.exists("/" + name + "-seen"):
        time.sleep(0.005)
print("done")
`},
		})
		require.NoError(t, err)
		require.Nil(t, res.Failure, "%v\n%s", res.Failure, stderr.buf.String())
		assert.Equal(t, "ready on stdout\ndone\n", stdout.buf.String())
		assert.Equal(t, "ready on stderr\n", stderr.buf.String())
	})
}

// TestManyTasksAtOnce runs tasks concurrently on one host; every one gets
// its own sandbox and session.
func TestManyTasksAtOnce(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		var wg sync.WaitGroup
		runs := make([]*run, 8)
		for i := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				action := map[bool]string{true: "echo", false: "trap"}[i%2 == 0]
				runs[i] = f.probeRun(t, map[string]any{"action": action, "i": i}, runtime.Policy{})
			}()
		}
		wg.Wait()
		for i, r := range runs {
			if i%2 == 0 {
				require.Nil(t, r.res.Failure)
				assert.EqualValues(t, i, r.output["params"].(map[string]any)["i"])
			} else {
				require.NotNil(t, r.res.Failure)
				assert.Equal(t, "probe::probe_trap", r.res.Failure.Function)
			}
		}
	})
}

// TestClosingAHostStopsItsTasks: on wasmtime, Close stops the running
// tasks (they end cancelled) and waits for them; on every engine the host
// refuses work afterwards.
func TestClosingAHostStopsItsTasks(t *testing.T) {
	for _, e := range runtime.Engines() {
		t.Run(e, func(t *testing.T) {
			h, err := runtime.New(runtime.WithEngine(e), runtime.WithCacheDir(testguests.CacheDir()))
			require.NoError(t, err)
			m, err := h.LoadModule(context.Background(), "probe.wasm", testguests.Bytes(t, "probe"))
			require.NoError(t, err)
			if e == "wasmtime" {
				bin, err := pyruntime.Wasm()
				if err != nil {
					t.Skip(err)
				}
				py, err := h.LoadInterpreter(context.Background(), "python.wasm", bin)
				require.NoError(t, err)
				running := make(chan struct{})
				done := make(chan *runtime.Result, 1)
				go func() {
					res, err := h.Run(context.Background(), runtime.Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
						Stdout: &signalWriter{line: "spinning\n", fn: func() { close(running) }},
						Args:   []string{"python", "-c", "print('spinning', flush=True)\nwhile True: pass"}})
					assert.NoError(t, err)
					done <- res
				}()
				<-running
				require.NoError(t, h.Close(context.Background()))
				res := <-done
				require.NotNil(t, res.Failure)
				assert.Equal(t, runtime.ReasonCancelled, res.Failure.Reason)
			} else {
				// wazero's Close does not wait for running guests.
				require.NoError(t, h.Close(context.Background()))
			}
			_, err = h.Run(context.Background(), runtime.Task{Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "closed")
		})
	}
}

// TestASleepingGuestStops: a guest asleep in poll_oneoff ends at its
// timeout, or when cancelled, not when it wakes up an hour later.
func TestASleepingGuestStops(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		hour := map[string]any{"action": "sleep", "ms": 3_600_000}
		r := f.probeRun(t, hour, runtime.Policy{Timeout: 200 * time.Millisecond})
		require.NotNil(t, r.res.Failure)
		assert.Equal(t, runtime.ReasonTimeout, r.res.Failure.Reason)

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		r = f.run(t, ctx, f.probe, hour, runtime.Policy{})
		require.NotNil(t, r.res.Failure)
		assert.Equal(t, runtime.ReasonCancelled, r.res.Failure.Reason)
	})
}
