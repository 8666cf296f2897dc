package pysnap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/testguests"
)

type sessionKey struct{}

// testGate is a minimal clock gate (abi/ABI.md) for a session in the call's
// context: what ork's runtime does, without the "too big" path.
func testGate(ctx context.Context, mod api.Module, stack []uint64) {
	id := api.DecodeU32(stack[0])
	if id < 64 {
		clockResGet(ctx, mod, stack)
		return
	}
	s, _ := ctx.Value(sessionKey{}).(*abi.Session)
	if s == nil {
		panic(errors.New("no session"))
	}
	mem := mod.Memory()
	size, _ := mem.ReadUint32Le(id + bytearraySize)
	data, _ := mem.ReadUint32Le(id + bytearrayBytes)
	buf, ok := mem.Read(data, size)
	if !ok || size < mailboxHeader {
		panic(errors.New("bad mailbox"))
	}
	opLen, reqLen := binary.LittleEndian.Uint32(buf), binary.LittleEndian.Uint32(buf[4:])
	op := string(buf[16 : 16+opLen])
	req := buf[16+opLen : 16+opLen+reqLen]
	status := uint32(0)
	resp, err := s.Dispatch(op, req)
	var oe *abi.OpError
	switch {
	case errors.As(err, &oe):
		resp, status = abi.ErrorResponse(oe), 1
	case err != nil:
		panic(err)
	}
	if 16+len(resp) > len(buf) {
		panic(errors.New("response too big for this test gate"))
	}
	copy(buf[16:], resp)
	binary.LittleEndian.PutUint32(buf, status)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(resp)))
	stack[0] = errnoSuccess
}

// A snapshot with the ork SDK imported at boot runs ork's real Python task
// runner, which talks to the host over the clock gate.
func TestSDKRunnerOverTheGate(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	eng, err := NewEngine(ctx, EngineConfig{MemoryLimitPages: testLimitPages, Cache: f.cache, ClockResGet: testGate})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	sdk := filepath.Join(testguests.RepoRoot(), "sdk", "python")
	s, err := Build(ctx, eng, f.prepared, BootSpec{
		Mounts: []Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}, {HostPath: sdk, GuestPath: "/.ork-sdk/python"}},
		Env:    []string{"PYTHONPATH=/.ork-sdk/python"},
		Extra:  "import ork._main",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"first", "second"} {
		m := dirs(t, map[string]string{"task.py": "def run(ctx, upstream):\n    return {'task': ctx.task_name, 'upstream': upstream}\n"})
		m = append(m, Mount{HostPath: sdk, GuestPath: "/.ork-sdk/python"})
		sess := abi.NewSession(abi.Task{
			Info:     abi.TaskInfo{Task: name, Workflow: "wf", RunID: "r", Attempt: 1, Executor: "python"},
			Upstream: map[string]any{"up": name},
		}, "ork/test", nil)
		o := runCtx(t, context.WithValue(ctx, sessionKey{}, sess), s, TaskSpec{
			Mounts: m,
			Argv:   []string{"-c", "function", "/task.py", "run"},
			Env:    []string{"PYTHONPATH=/.ork-sdk/python"},
			Code:   "import ork._main; ork._main.main()",
		})
		mustSucceed(t, o)
		out, ok := sess.Output()
		if want := `{"task":"` + name + `","upstream":{"up":"` + name + `"}}`; !ok || string(out) != want {
			t.Errorf("output %s (set %v), want %s; stderr %s", out, ok, want, o.stderr)
		}
	}
}

// BenchmarkSDKRunner compares ork's Python task runner (ork._main, a
// function task returning its upstream) started cold, as ork does today,
// and from a snapshot with the SDK imported at boot.
func BenchmarkSDKRunner(b *testing.B) {
	f := shared(b)
	ctx := context.Background()
	eng, err := NewEngine(ctx, EngineConfig{MemoryLimitPages: testLimitPages, Cache: f.cache, ClockResGet: testGate})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(ctx)
	full, err := eng.rt.CompileModule(ctx, f.prepared.Full)
	if err != nil {
		b.Fatal(err)
	}
	defer full.Close(ctx)
	// As ork does, the SDK is compiled to bytecode once.
	sdk := b.TempDir()
	if err := os.CopyFS(sdk, os.DirFS(filepath.Join(testguests.RepoRoot(), "sdk", "python"))); err != nil {
		b.Fatal(err)
	}
	compile := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithArgs("python", "-c", "import compileall, py_compile, sys\nsys.exit(not compileall.compile_dir('/sdk', quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))").
		WithFSConfig(wazero.NewFSConfig().WithDirMount(sdk, "/sdk")).WithStderr(os.Stderr)
	if mod, err := eng.rt.InstantiateModule(ctx, full, compile); err != nil {
		b.Fatal(err)
	} else if _, err := mod.ExportedFunction("_start").Call(ctx); err != nil && err.Error() != "module closed with exit_code(0)" {
		b.Fatal(err)
	}
	env := []string{"PYTHONPATH=/.ork-sdk/python", "PYTHONDONTWRITEBYTECODE=1"}
	s, err := Build(ctx, eng, f.prepared, BootSpec{
		Mounts: []Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}, {HostPath: sdk, GuestPath: "/.ork-sdk/python"}},
		Env:    env,
		Extra:  "import ork._main, ork._output",
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m := dirs(b, map[string]string{"task.py": "import json\ndef run(ctx, upstream):\n    return {'n': len(json.dumps(upstream))}\n"})
	m = append(m, Mount{HostPath: sdk, GuestPath: "/.ork-sdk/python"})
	argv := []string{"function", "/task.py", "run"}
	code := "import ork._main; ork._main.main()"
	session := func() (*abi.Session, context.Context) {
		sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "t", Workflow: "wf"}, Upstream: map[string]any{"up": 1}}, "ork/test", nil)
		return sess, context.WithValue(ctx, sessionKey{}, sess)
	}
	check := func(b *testing.B, sess *abi.Session) {
		if out, ok := sess.Output(); !ok || string(out) != `{"n":9}` {
			b.Fatalf("output %s %v", out, ok)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			sess, tctx := session()
			fs := wazero.NewFSConfig().WithReadOnlyDirMount(m[0].HostPath, "/").
				WithDirMount(m[1].HostPath, "/tmp").WithReadOnlyDirMount(sdk, "/.ork-sdk/python")
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
				WithArgs(append([]string{"python", "-c", code}, argv...)...).WithFSConfig(fs).
				WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).WithStderr(os.Stderr)
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				cfg = cfg.WithEnv(k, v)
			}
			mod, err := eng.rt.InstantiateModule(tctx, full, cfg)
			if err != nil {
				b.Fatal(err)
			}
			_, err = mod.ExportedFunction("_start").Call(tctx)
			mod.Close(ctx)
			if err != nil && err.Error() != "module closed with exit_code(0)" {
				b.Fatal(err)
			}
			check(b, sess)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
	})
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			sess, tctx := session()
			res, err := s.Start(tctx, TaskSpec{Mounts: m, Argv: append([]string{"-c"}, argv...), Env: env, Code: code, Stderr: os.Stderr})
			if err != nil || res.ExitCode != 0 {
				b.Fatal(err, res)
			}
			check(b, sess)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
	})
}
