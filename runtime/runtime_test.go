package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

type logSink struct {
	mu   sync.Mutex
	recs []abi.LogRecord
}

func (s *logSink) Log(_ string, r abi.LogRecord) {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
}

type fixture struct {
	engine  string
	host    *runtime.Host
	probe   *runtime.Module
	project string
}

var (
	fixMu    sync.Mutex
	fixtures = map[string]*fixture{}
)

// setupEngine is a host on the named engine, with the probe loaded, shared
// by every test of the process.
func setupEngine(t testing.TB, engine string) *fixture {
	t.Helper()
	bin := testguests.Bytes(t, "probe")
	fixMu.Lock()
	defer fixMu.Unlock()
	if f, ok := fixtures[engine]; ok {
		return f
	}
	host, err := runtime.New(runtime.WithCacheDir(testguests.CacheDir()), runtime.WithVersion("test"), runtime.WithEngine(engine))
	require.NoError(t, err)
	require.Equal(t, engine, host.Engine())
	f := &fixture{engine: engine, host: host}
	f.probe, err = host.LoadModule(context.Background(), "probe.wasm", bin)
	require.NoError(t, err)
	f.project, err = os.MkdirTemp("", "ork-runtime-project-")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.project, "data.txt"), []byte("hello from the project\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(f.project, "sub"), 0o755))
	fixtures[engine] = f
	return f
}

// eachEngine runs test once per engine compiled in, as a subtest named after
// the engine, so that the engines must behave alike.
func eachEngine(t *testing.T, test func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, e := range runtime.Engines() {
		t.Run(e, func(t *testing.T) { test(t, setupEngine(t, e)) })
	}
}

type run struct {
	res     *runtime.Result
	sess    *abi.Session
	stdout  string
	stderr  string
	logs    []abi.LogRecord
	output  map[string]any
	elapsed time.Duration
}

func (f *fixture) run(t *testing.T, ctx context.Context, m *runtime.Module, params map[string]any, p runtime.Policy) *run {
	t.Helper()
	scratch := t.TempDir()
	out := t.TempDir()
	if p.Mounts == nil {
		p.Mounts = []runtime.Mount{
			{HostPath: f.project, GuestPath: "/"},
			{HostPath: scratch, GuestPath: abi.ScratchDir, Writable: true},
			{HostPath: out, GuestPath: abi.OutputDir, Writable: true},
		}
	}
	sink := &logSink{}
	cfg := "tasks/probe.yaml"
	sess := abi.NewSession(abi.Task{
		Info:     abi.TaskInfo{Task: "t1", Workflow: "wf", RunID: "run-1", Attempt: 1, Executor: "rust", ConfigFile: &cfg, ScratchDir: abi.ScratchDir, OutputDir: abi.OutputDir},
		Params:   params,
		Upstream: map[string]any{"up": map[string]any{"n": 1}},
	}, "ork/test", sink)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	res, err := f.host.Run(ctx, runtime.Task{Module: m, Policy: p, Session: sess, Stdout: &stdout, Stderr: &stderr})
	require.NoError(t, err)
	r := &run{res: res, sess: sess, stdout: stdout.String(), stderr: stderr.String(), logs: sink.recs, elapsed: time.Since(start)}
	if o, ok := sess.Output(); ok {
		require.NoError(t, json.Unmarshal(o, &r.output))
	}
	return r
}

func (f *fixture) probeRun(t *testing.T, params map[string]any, p runtime.Policy) *run {
	return f.run(t, context.Background(), f.probe, params, p)
}

func TestProbeEchoSeesTaskAndEmitsEverything(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		r := f.probeRun(t, map[string]any{"action": "echo", "x": 1}, runtime.Policy{})
		require.Nil(t, r.res.Failure)
		assert.Equal(t, "t1", r.output["task"])
		assert.Equal(t, "wf", r.output["workflow"])
		assert.Equal(t, "run-1", r.output["run_id"])
		assert.EqualValues(t, 1, r.output["attempt"])
		assert.Equal(t, "tasks/probe.yaml", r.output["config_file"])
		assert.Equal(t, map[string]any{"up": map[string]any{"n": float64(1)}}, r.output["upstream"])
		assert.Equal(t, map[string]any{"action": "echo", "x": float64(1)}, r.output["params"])
		assert.Contains(t, r.stdout, "stdout line")
		assert.Contains(t, r.stderr, "stderr line")
		require.Len(t, r.sess.Metrics(), 1)
		assert.Equal(t, abi.Metric{Name: "probe_calls", Value: 1, Labels: map[string]string{"task": "t1", "kind": "echo"}}, r.sess.Metrics()[0])
		require.NotEmpty(t, r.logs)
		assert.Equal(t, "info", r.logs[0].Level)
		assert.Equal(t, "echo", r.logs[0].Message)
	})
}

func TestSandboxLimitsAndFailures(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		tests := []struct {
			name     string
			params   map[string]any
			policy   runtime.Policy
			reason   runtime.Reason
			contains string
		}{
			{"memory limit", map[string]any{"action": "alloc", "mb": 200}, runtime.Policy{MemoryBytes: 32 << 20}, runtime.ReasonMemory, "exceeded the memory limit of 32 MiB"},
			{"timeout", map[string]any{"action": "spin"}, runtime.Policy{Timeout: 300 * time.Millisecond}, runtime.ReasonTimeout, "timed out after 300ms"},
			{"trap names the function", map[string]any{"action": "trap"}, runtime.Policy{}, runtime.ReasonTrap, "probe_trap"},
			{"exit status", map[string]any{"action": "exit", "code": 3}, runtime.Policy{}, runtime.ReasonExit, "exited with status 3"},
			{"error returned", map[string]any{"action": "fail", "message": "boom"}, runtime.Policy{}, runtime.ReasonExit, "exited with status 1"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := f.probeRun(t, tc.params, tc.policy)
				require.NotNil(t, r.res.Failure, "stderr: %s", r.stderr)
				assert.Equal(t, tc.reason, r.res.Failure.Reason)
				assert.Contains(t, r.res.Failure.Message, tc.contains)
			})
		}
	})
}

func TestAllocationWithinTheLimitSucceeds(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		r := f.probeRun(t, map[string]any{"action": "alloc", "mb": 16}, runtime.Policy{MemoryBytes: 64 << 20})
		require.Nil(t, r.res.Failure, "%v", r.res.Failure)
		assert.EqualValues(t, 16, r.output["allocated_mb"])
	})
}

func TestReportedErrorsReachTheSession(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		r := f.probeRun(t, map[string]any{"action": "fail", "message": "no such table"}, runtime.Policy{})
		require.NotNil(t, r.sess.Reported())
		assert.Equal(t, "no such table", r.sess.Reported().Message)
		assert.Equal(t, "run", r.sess.Reported().Kind)

		r = f.probeRun(t, map[string]any{"action": "panic"}, runtime.Policy{})
		require.NotNil(t, r.res.Failure)
		require.NotNil(t, r.sess.Reported())
		assert.Equal(t, "panic", r.sess.Reported().Kind)
		assert.Contains(t, r.sess.Reported().Message, "probe panic")
	})
}

func TestNothingIsAmbient(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				accepted <- struct{}{}
				c.Close()
			}
		}()
		t.Setenv("ORK_TEST_SECRET", "s3cret")

		tests := []struct {
			name   string
			params map[string]any
			ok     bool
			check  func(t *testing.T, out map[string]any)
		}{
			{"reads the project by relative path", map[string]any{"action": "read_file", "path": "data.txt"}, true, func(t *testing.T, out map[string]any) {
				assert.Equal(t, "hello from the project\n", out["content"])
			}},
			{"reads the project by absolute path", map[string]any{"action": "read_file", "path": "/data.txt"}, true, nil},
			{"cannot read outside the mounts", map[string]any{"action": "read_file", "path": "/etc/passwd"}, false, nil},
			{"cannot escape with ..", map[string]any{"action": "read_file", "path": "../../../../etc/passwd"}, false, nil},
			{"cannot write the project", map[string]any{"action": "write_file", "path": "new.txt", "content": "x"}, false, nil},
			{"writes scratch", map[string]any{"action": "write_file", "path": "/tmp/x.txt", "content": "x"}, true, nil},
			{"writes output", map[string]any{"action": "write_file", "path": "/output/x.txt", "content": "x"}, true, nil},
			{"sees only the project at /", map[string]any{"action": "list_dir", "path": "/"}, true, func(t *testing.T, out map[string]any) {
				assert.Subset(t, out["entries"], []any{"data.txt", "sub"})
				assert.NotContains(t, out["entries"], "etc")
			}},
			{"no network", map[string]any{"action": "net", "addr": ln.Addr().String()}, false, nil},
			{"no environment", map[string]any{"action": "env"}, true, func(t *testing.T, out map[string]any) {
				assert.Empty(t, out["vars"])
			}},
			{"real wall clock", map[string]any{"action": "time"}, true, func(t *testing.T, out map[string]any) {
				ms, _ := out["unix_ms"].(float64)
				assert.InDelta(t, float64(time.Now().UnixMilli()), ms, 60_000)
			}},
			{"sleeps", map[string]any{"action": "sleep", "ms": 20}, true, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := f.probeRun(t, tc.params, runtime.Policy{})
				require.Nil(t, r.res.Failure, "%v %s", r.res.Failure, r.stderr)
				if v, has := r.output["ok"]; has {
					assert.Equal(t, tc.ok, v, "output: %v", r.output)
				}
				if tc.check != nil {
					tc.check(t, r.output)
				}
			})
		}
		select {
		case <-accepted:
			t.Fatal("the guest reached a TCP listener on the host")
		default:
		}
		_, err = os.Stat(filepath.Join(f.project, "new.txt"))
		assert.True(t, os.IsNotExist(err), "the guest wrote into the read-only project")
	})
}

func TestEnvironmentIsOnlyWhatThePolicyLists(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		r := f.probeRun(t, map[string]any{"action": "env"}, runtime.Policy{Env: []string{"TZ=UTC"}})
		require.Nil(t, r.res.Failure)
		assert.Equal(t, map[string]any{"TZ": "UTC"}, r.output["vars"])
	})
}

func TestCancellationStopsARunawayGuestPromptly(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		r := f.run(t, ctx, f.probe, map[string]any{"action": "spin"}, runtime.Policy{})
		require.NotNil(t, r.res.Failure)
		assert.Equal(t, runtime.ReasonCancelled, r.res.Failure.Reason)
		assert.Less(t, r.elapsed, 5*time.Second)
	})
}

func TestARunawayTaskDoesNotDisturbOthers(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		var wg sync.WaitGroup
		wg.Add(1)
		var spin *run
		go func() {
			defer wg.Done()
			spin = f.probeRun(t, map[string]any{"action": "spin"}, runtime.Policy{Timeout: time.Second})
		}()
		for i := 0; i < 5; i++ {
			r := f.probeRun(t, map[string]any{"action": "echo"}, runtime.Policy{})
			require.Nil(t, r.res.Failure)
		}
		wg.Wait()
		assert.Equal(t, runtime.ReasonTimeout, spin.res.Failure.Reason)
	})
}

// TestABIMisuseTraps is one table of host ABI misuse for both guest
// languages: the Rust misuse guest (testdata/guests/misuse, which picks its
// misuse from ORK_MISUSE) and raw Python speaking the clock-gate transport
// without the SDK (gatePrelude). Each misuse must trap the task with reason
// abi and the same message in both. A row with one language empty is about
// that language's transport only: Rust passes pointers and lengths to
// imported functions, Python passes one mailbox through clock_res_get.
func TestABIMisuseTraps(t *testing.T) {
	tests := []struct {
		name   string
		rust   string // ORK_MISUSE for the misuse guest
		python string // a script after gatePrelude
		want   string // in the failure message; all of it when it starts "host ABI misuse"
	}{
		{"before hello", "no_hello", `call(bytearray(256), "task.info", "")`, `called before "abi.hello"`},
		{"unknown op", "unknown_op", `mb = bytearray(256); call(mb, "abi.hello", '{"abi":1}'); call(mb, "no.such.op", "")`, `"no.such.op": unknown operation`},
		{"bad json", "bad_json", `mb = bytearray(256); call(mb, "abi.hello", '{"abi":1}'); call(mb, "log", "{oops")`, "request is not valid JSON"},
		{"nothing pending", "response_none", `fetch(bytearray(64))`, "no pending response"},
		{"wrong version", "wrong_version", `call(bytearray(256), "abi.hello", '{"abi":2}')`, "was built for ork host ABI v2, but this ork speaks v1"},
		{"wrong shape", "wrong_shape", `mb = bytearray(256); call(mb, "abi.hello", '{"abi":1}'); call(mb, "metrics.record", '{"name":"x","value":"high","labels":{}}')`, `host ABI misuse in "metrics.record": request must be {"name": str, "value": number, "labels": {str: str}}: field "value": got a JSON string, want a number`},
		{"op name too long", "long_op", `mb = bytearray(256); call(mb, "abi.hello", '{"abi":1}'); call(mb, "x" * 65, "")`, "host ABI misuse: operation name of 65 bytes exceeds the 64-byte limit"},
		{"op name not UTF-8", "non_utf8_op", `mb = bytearray(256); call(mb, "abi.hello", '{"abi":1}'); call(mb, b"task.\xff", "")`, "host ABI misuse: operation name is not valid UTF-8"},
		{"oversized request", "oversized", "", "exceeds the 16 MiB limit"},
		{"pointer outside memory", "bad_pointer", "", "out of bounds: op_ptr=0xffffff00"},
		{"length outside memory", "bad_len", "", "request of 2147483647 bytes exceeds the 16 MiB limit"},
		{"response buffer too small", "response_too_small", "", "too small for the"},
		{"mailbox outside memory", "", `k = struct.pack("<I", 0x7ffffff0); time.clock_getres(id(k) + 16)`, "mailbox object at 0x7ffffff0 is outside memory"},
		{"request past the mailbox", "", `mb = bytearray(32); struct.pack_into("<II", mb, 0, 9, 100); time.clock_getres(id(struct.pack("<I", id(mb))) + 16)`, "runs past the end of the 32-byte mailbox"},
	}
	eachEngine(t, func(t *testing.T, f *fixture) {
		m, err := f.host.LoadModule(context.Background(), "misuse.wasm", testguests.Bytes(t, "misuse"))
		require.NoError(t, err)
		for _, tc := range tests {
			if tc.rust != "" {
				t.Run("rust/"+tc.name, func(t *testing.T) {
					r := f.run(t, context.Background(), m, nil, runtime.Policy{Env: []string{"ORK_MISUSE=" + tc.rust}})
					require.NotNil(t, r.res.Failure, "stderr: %s", r.stderr)
					assert.Equal(t, runtime.ReasonABI, r.res.Failure.Reason, r.res.Failure.Message)
					assertTrapMessage(t, tc.want, r.res.Failure.Message)
				})
			}
			if tc.python != "" {
				t.Run("python/"+tc.name, func(t *testing.T) {
					res, _, out := runPython(t, f, tc.python)
					require.NotNil(t, res.Failure, out)
					assert.Equal(t, runtime.ReasonABI, res.Failure.Reason, res.Failure.Message)
					assertTrapMessage(t, tc.want, res.Failure.Message)
				})
			}
		}
	})
}

// assertTrapMessage checks a trap's message: exactly want when want is a
// whole host message (it starts "host ABI misuse"), else that it contains want.
func assertTrapMessage(t *testing.T, want, got string) {
	t.Helper()
	if strings.HasPrefix(want, "host ABI misuse") {
		assert.Equal(t, want, got)
	} else {
		assert.Contains(t, got, want)
	}
}

func TestRecoverableABIErrorsReachTheGuest(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		m, err := f.host.LoadModule(context.Background(), "misuse.wasm", testguests.Bytes(t, "misuse"))
		require.NoError(t, err)
		r := f.run(t, context.Background(), m, nil, runtime.Policy{Env: []string{"ORK_MISUSE=bad_metric"}})
		require.Nil(t, r.res.Failure, "%v %s", r.res.Failure, r.stderr)
		assert.Contains(t, r.output["error"], `metric name "1bad" must match`)

		r = f.run(t, context.Background(), m, nil, runtime.Policy{Env: []string{"ORK_MISUSE=output_twice"}})
		require.Nil(t, r.res.Failure, "%v %s", r.res.Failure, r.stderr)
		var msgs []string
		for _, l := range r.logs {
			msgs = append(msgs, l.Message)
		}
		assert.Contains(t, strings.Join(msgs, "\n"), "already set")
	})
}

func TestModulesBuiltForAnotherABIVersionAreRefused(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		_, err := f.host.LoadModule(context.Background(), "abi-v2.wasm", testguests.Bytes(t, "abi-v2"))
		require.Error(t, err)
		assert.Equal(t, "module abi-v2.wasm was built for ork host ABI v2, but this ork speaks v1: upgrade ork, or rebuild it with an ork SDK for ABI v1", err.Error())
	})
}

func TestNotAModule(t *testing.T) {
	eachEngine(t, func(t *testing.T, f *fixture) {
		_, err := f.host.LoadModule(context.Background(), "junk.wasm", []byte("not wasm"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "module junk.wasm: not a WebAssembly module")
	})
}
