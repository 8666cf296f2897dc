package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

// snapshotFixture is a snapshot built for f's host (on wazero whatever the
// host's engine: see runtime/snapshot.go), once per engine and process,
// with a read-only project at "/" and a writable scratch at "/tmp".
type snapshotFixture struct {
	py   *runtime.Module
	snap *pysnap.Snapshot
}

var (
	snapMu    sync.Mutex
	snapFixes = map[string]*snapshotFixture{}
)

var snapshotLayout = []pysnap.Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}}

func (f *fixture) snapshot(t testing.TB) *snapshotFixture {
	t.Helper()
	bin, err := pyruntime.Wasm()
	if err != nil {
		t.Skip(err)
	}
	snapMu.Lock()
	defer snapMu.Unlock()
	if s, ok := snapFixes[f.engine]; ok {
		return s
	}
	ctx := context.Background()
	py, err := f.host.LoadInterpreter(ctx, "python.wasm", bin)
	require.NoError(t, err)
	p, err := pysnap.Prepare(bin)
	require.NoError(t, err)
	eng, err := f.host.SnapshotEngine(ctx, runtime.Policy{})
	require.NoError(t, err)
	// Cached across test processes, so that the baked module of wasmtime
	// is too.
	snap, err := pysnap.Build(ctx, eng, p, pysnap.BootSpec{Mounts: snapshotLayout,
		CacheDir: filepath.Join(testguests.CacheDir(), "runtime-pysnap")})
	require.NoError(t, err)
	s := &snapshotFixture{py: py, snap: snap}
	snapFixes[f.engine] = s
	return s
}

type snapRun struct {
	res    *runtime.Result
	sess   *abi.Session
	stdout string
	stderr string
}

// runSnapshot runs code from the fixture's snapshot with a fresh project
// and scratch; argv is sys.argv.
func (f *fixture) runSnapshot(t testing.TB, ctx context.Context, policy runtime.Policy, code string, argv ...string) snapRun {
	t.Helper()
	s := f.snapshot(t)
	if policy.Mounts == nil {
		policy.Mounts = []runtime.Mount{{HostPath: f.project, GuestPath: "/"}, {HostPath: t.TempDir(), GuestPath: "/tmp", Writable: true}}
	}
	sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "snap", Workflow: "wf", RunID: "r"}}, "ork/test", nil)
	var stdout, stderr bytes.Buffer
	res, err := f.host.RunSnapshot(ctx, s.snap, runtime.Task{
		Module: s.py, Session: sess, Stdout: &stdout, Stderr: &stderr, Policy: policy,
	}, code, append([]string{"-c"}, argv...))
	require.NoError(t, err)
	return snapRun{res, sess, stdout.String(), stderr.String()}
}

// TestRunSnapshot starts tasks from a snapshot on every engine: the clock
// gate reaches the task's session, exit statuses and timeouts are
// classified as for a cold start.
func TestRunSnapshot(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		r := f.runSnapshot(t, ctx, runtime.Policy{Env: []string{"X=1"}}, gatePrelude+`
import os, sys
mb = bytearray(256)
status, n, body = call(mb, "abi.hello", '{"abi":1,"sdk":"raw"}')
status, n, body = call(mb, "task.info", "")
print("task", json.loads(body)["task"], sys.argv, os.environ.get("X"))
print(open("/data.txt").read().strip())
`, "a1")
		require.Nil(t, r.res.Failure, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "task snap ['-c', 'a1'] 1\nhello from the project\n")
		assert.True(t, r.sess.HelloDone())
		assert.Greater(t, r.res.Duration, time.Duration(0))

		r = f.runSnapshot(t, ctx, runtime.Policy{}, "import sys; sys.exit(3)")
		require.NotNil(t, r.res.Failure, r.stderr)
		assert.Equal(t, runtime.ReasonExit, r.res.Failure.Reason)
		assert.Equal(t, 3, r.res.Failure.ExitCode)

		r = f.runSnapshot(t, ctx, runtime.Policy{}, gatePrelude+`mb = bytearray(256); call(mb, "task.info", "")`)
		require.NotNil(t, r.res.Failure, r.stderr)
		assert.Equal(t, runtime.ReasonABI, r.res.Failure.Reason, r.res.Failure.Message)

		r = f.runSnapshot(t, ctx, runtime.Policy{Timeout: 200 * time.Millisecond}, "while True: pass")
		require.NotNil(t, r.res.Failure, r.stderr)
		assert.Equal(t, runtime.ReasonTimeout, r.res.Failure.Reason, r.res.Failure.Message)

		r = f.runSnapshot(t, ctx, runtime.Policy{Timeout: 200 * time.Millisecond}, "import time; time.sleep(3600)")
		require.NotNil(t, r.res.Failure, r.stderr)
		assert.Equal(t, runtime.ReasonTimeout, r.res.Failure.Reason, r.res.Failure.Message)

		// Cancelled once the task has said it runs (no timing involved).
		cctx, cancel := context.WithCancel(ctx)
		s := f.snapshot(t)
		res, err := f.host.RunSnapshot(cctx, s.snap, runtime.Task{Module: s.py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
			Stdout: &signalWriter{line: "spinning\n", fn: cancel},
			Policy: runtime.Policy{Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/"}, {HostPath: t.TempDir(), GuestPath: "/tmp", Writable: true}}}},
			"print('spinning', flush=True)\nwhile True: pass", nil)
		require.NoError(t, err)
		require.NotNil(t, res.Failure)
		assert.Equal(t, runtime.ReasonCancelled, res.Failure.Reason)

		// A different layout is a host-side error: the caller starts it cold.
		_, err = f.host.RunSnapshot(ctx, s.snap, runtime.Task{Module: s.py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
			Policy: runtime.Policy{Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/", Writable: true}, {HostPath: t.TempDir(), GuestPath: "/tmp", Writable: true}}}}, "pass", nil)
		assert.ErrorIs(t, err, pysnap.ErrMountMismatch)
		// So is a memory limit below the image.
		_, err = f.host.RunSnapshot(ctx, s.snap, runtime.Task{Module: s.py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
			Policy: runtime.Policy{MemoryBytes: uint64(s.snap.Meta.Pages-1) << 16,
				Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/"}, {HostPath: t.TempDir(), GuestPath: "/tmp", Writable: true}}}}, "pass", nil)
		assert.Error(t, err)
	})
}

// TestSnapshotEnginesAgree: the same tasks from a snapshot end alike on
// every engine, to the letter.
func TestSnapshotEnginesAgree(t *testing.T) {
	engines := runtime.Engines()
	if len(engines) < 2 {
		t.Skip("this binary has one engine:", engines)
	}
	for _, tc := range []struct{ name, code string }{
		{"pass", "pass"},
		{"exit 3", "import sys; sys.exit(3)"},
		{"exit 200", "import sys; sys.exit(200)"},
		{"os._exit", "import os; print('x', flush=True); os._exit(5)"},
		{"exception", "raise ValueError('x')"},
		{"MemoryError", "b = bytearray(300 << 20)"},
		{"listdir", "import os; print(sorted(os.listdir('/')))"},
		{"write scratch", "open('/tmp/f', 'w').write('x'); print(open('/tmp/f').read())"},
		{"outside the mounts", "open('/etc/passwd')"},
		{"environment", "import os; print(dict(os.environ))"},
		{"argv", "import sys; print(sys.argv, sys.orig_argv)"},
		{"stdin is empty", "import sys; print(repr(sys.stdin.read()))"},
		{"clocks", "import time; print(time.time() > 1.7e9, time.get_clock_info('monotonic').resolution)"},
		{"urandom", "import os; print(len(os.urandom(16)), os.urandom(16) != os.urandom(16))"},
		{"sleep", "import time; t = time.monotonic(); time.sleep(0.01); print(time.monotonic() - t >= 0.01)"},
		{"timeout", "while True: pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want *snapRun
			for _, e := range engines {
				f := setupEngine(t, e)
				r := f.runSnapshot(t, context.Background(), runtime.Policy{MemoryBytes: 64 << 20, Timeout: 300 * time.Millisecond,
					Env: []string{"X=1"}, Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/"}, {HostPath: t.TempDir(), GuestPath: "/tmp", Writable: true}}},
					tc.code, "arg")
				r.res.Duration, r.res.MemoryBytes, r.sess = 0, 0, nil
				r.res.Failure = engineNeutral(r.res.Failure)
				if want == nil {
					want = &r
					continue
				}
				assert.Equal(t, *want, r, "%s and %s disagree", engines[0], e)
			}
		})
	}
}

const isolationCheck = `import json, os, random, sys, builtins, logging
print(json.dumps({
    "json_dumps": json.dumps([1]),
    "json_mark": hasattr(json, "MARK"),
    "path": "/leaked" in sys.path,
    "module": "leaked_module" in sys.modules,
    "env": sorted(os.environ),
    "argv": sys.argv,
    "builtins": hasattr(builtins, "LEAKED"),
    "logger": logging.getLogger("leak").level,
    "recursion": sys.getrecursionlimit(),
    "main": "GLOBAL_LEAK" in globals(),
    "random": random.random(),
    "tmp": sorted(os.listdir("/tmp")),
}))
`

const isolationMutate = `import json, os, sys, builtins, logging, types
json.dumps = lambda *a, **k: "mutated"
json.MARK = 1
sys.path.append("/leaked")
sys.modules["leaked_module"] = types.ModuleType("leaked_module")
os.environ["LEAKED"] = "1"
builtins.LEAKED = True
logging.getLogger("leak").setLevel(logging.ERROR)
sys.setrecursionlimit(123)
GLOBAL_LEAK = 1
open("/tmp/leak", "w").write("x")
sys.argv.append("leaked")
`

type isolated struct {
	JSONDumps string   `json:"json_dumps"`
	JSONMark  bool     `json:"json_mark"`
	Path      bool     `json:"path"`
	Module    bool     `json:"module"`
	Env       []string `json:"env"`
	Argv      []string `json:"argv"`
	Builtins  bool     `json:"builtins"`
	Logger    int      `json:"logger"`
	Recursion int      `json:"recursion"`
	Main      bool     `json:"main"`
	Random    float64  `json:"random"`
	Tmp       []string `json:"tmp"`
}

func parseIsolated(t *testing.T, r snapRun, env []string, argv []string) isolated {
	t.Helper()
	require.Nil(t, r.res.Failure, r.stderr)
	var c isolated
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &c), r.stdout)
	assert.Equal(t, "[1]", c.JSONDumps, "a mutated stdlib module leaked")
	assert.False(t, c.JSONMark || c.Path || c.Module || c.Builtins, "state leaked: %+v", c)
	assert.Equal(t, 0, c.Logger)
	assert.NotEqual(t, 123, c.Recursion)
	assert.Equal(t, env, c.Env)
	assert.Equal(t, append([]string{"-c"}, argv...), c.Argv)
	assert.False(t, c.Main, "module globals leaked")
	assert.Empty(t, c.Tmp)
	return c
}

// TestSnapshotIsolation: tasks of one snapshot, one after the other and at
// the same time, share nothing: module globals, environment, argv, the
// random seed, a mutated stdlib module, sys state, the scratch directory.
func TestSnapshotIsolation(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		t.Run("consecutive", func(t *testing.T) {
			seen := map[float64]bool{}
			for i := range 3 {
				m := f.runSnapshot(t, ctx, runtime.Policy{Env: []string{"SECRET=one"}}, isolationMutate, "first")
				require.Nil(t, m.res.Failure, m.stderr)
				env := []string{fmt.Sprintf("N=%d", i)}
				c := parseIsolated(t, f.runSnapshot(t, ctx, runtime.Policy{Env: env}, isolationCheck, "second", fmt.Sprint(i)), []string{"N"}, []string{"second", fmt.Sprint(i)})
				assert.False(t, seen[c.Random], "random was not reseeded: %v again", c.Random)
				seen[c.Random] = true
			}
		})
		t.Run("concurrent", func(t *testing.T) {
			const n = 12
			var wg sync.WaitGroup
			runs := make([]snapRun, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each task checks the pristine state, leaves its own
					// mark everywhere, then checks the marks are still its.
					code := isolationCheck + fmt.Sprintf(`
me = %d
json.MARK = me
os.environ["MARK"] = str(me)
sys.path.append("/mark/%%d" %% me)
for _ in range(3):
    sum(range(100000))
    assert json.MARK == me and os.environ["MARK"] == str(me) and sys.path[-1] == "/mark/%%d" %% me
`, i)
					runs[i] = f.runSnapshot(t, ctx, runtime.Policy{Env: []string{fmt.Sprintf("TASK%d=1", i)}}, code, fmt.Sprint(i))
				}()
			}
			wg.Wait()
			seen := map[float64]bool{}
			for i, r := range runs {
				c := parseIsolated(t, r, []string{fmt.Sprintf("TASK%d", i)}, []string{fmt.Sprint(i)})
				assert.False(t, seen[c.Random], "two tasks drew the same random number %v", c.Random)
				seen[c.Random] = true
			}
		})
	})
}

// TestSnapshotMemoryLimit: a task cannot grow its memory beyond its limit,
// at once or gradually, above the image; up to the limit it can, and the
// next task starts from the image again.
func TestSnapshotMemoryLimit(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const limit = 64 << 20
		for _, code := range []string{
			"b = bytearray(100 << 20)",
			"l = []\nwhile True: l.append(bytearray(1 << 20))",
		} {
			r := f.runSnapshot(t, ctx, runtime.Policy{MemoryBytes: limit}, code)
			require.NotNil(t, r.res.Failure, code)
			// CPython turns the refused growth into a MemoryError.
			assert.Equal(t, runtime.ReasonExit, r.res.Failure.Reason, r.res.Failure.Message)
			assert.Equal(t, 1, r.res.Failure.ExitCode)
			assert.Contains(t, r.stderr, "MemoryError")
			assert.LessOrEqual(t, r.res.MemoryBytes, uint64(limit))
		}
		r := f.runSnapshot(t, ctx, runtime.Policy{MemoryBytes: limit}, "b = bytearray(40 << 20); print(len(b))")
		require.Nil(t, r.res.Failure, r.stderr)
		assert.Greater(t, r.res.MemoryBytes, uint64(40<<20))
		r = f.runSnapshot(t, ctx, runtime.Policy{MemoryBytes: limit}, "pass")
		require.Nil(t, r.res.Failure, r.stderr)
		assert.Less(t, r.res.MemoryBytes, uint64(40<<20), "the next task does not start from the image")
	})
}

// TestSnapshotLargeRequest: a request too large for the mailbox travels on
// stdin.
func TestSnapshotLargeRequest(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		big := strings.Repeat("x", 100<<10)
		r := f.runSnapshot(t, context.Background(), runtime.Policy{}, "import sys\nS = '"+big+"'\nprint(len(S), sys.argv)", "a")
		require.Nil(t, r.res.Failure, r.stderr)
		assert.Equal(t, "102400 ['-c', 'a']\n", r.stdout)
	})
}
