package pysnap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/orkrun/ork/internal/testguests"
)

// The layout of every test snapshot: a read-only project at "/" and a
// writable scratch at "/tmp".
var testLayout = []Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}}

// testLimitPages is the tests' memory limit: 64 MiB.
const testLimitPages = 1024

type fixture struct {
	prepared *Prepared
	cache    wazero.CompilationCache
	eng      *Engine
	snap     *Snapshot // copy-on-write where supported
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func compilationCache() (wazero.CompilationCache, error) {
	return wazero.NewCompilationCacheWithDir(filepath.Join(testguests.CacheDir(), "pysnap-wazero"))
}

// shared returns a snapshot built once per test process.
func shared(t testing.TB) *fixture {
	t.Helper()
	wasm := pythonWasm(t)
	fixOnce.Do(func() {
		ctx := context.Background()
		f := &fixture{}
		if f.prepared, fixErr = Prepare(wasm); fixErr != nil {
			return
		}
		if f.cache, fixErr = compilationCache(); fixErr != nil {
			return
		}
		if f.eng, fixErr = NewEngine(ctx, EngineConfig{MemoryLimitPages: testLimitPages, Cache: f.cache}); fixErr != nil {
			return
		}
		f.snap, fixErr = Build(ctx, f.eng, f.prepared, BootSpec{Mounts: testLayout})
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

type taskOut struct {
	*Result
	stdout, stderr string
}

// dirs is a fresh project and scratch directory.
func dirs(t testing.TB, files map[string]string) []Mount {
	t.Helper()
	proj, tmp := t.TempDir(), t.TempDir()
	for name, content := range files {
		p := filepath.Join(proj, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []Mount{{HostPath: proj, GuestPath: "/"}, {HostPath: tmp, GuestPath: "/tmp", Writable: true}}
}

func run(t testing.TB, s *Snapshot, spec TaskSpec) taskOut {
	t.Helper()
	return runCtx(t, context.Background(), s, spec)
}

func runCtx(t testing.TB, ctx context.Context, s *Snapshot, spec TaskSpec) taskOut {
	t.Helper()
	var stdout, stderr bytes.Buffer
	spec.Stdout, spec.Stderr = &stdout, &stderr
	if spec.Mounts == nil {
		spec.Mounts = dirs(t, nil)
	}
	res, err := s.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return taskOut{res, stdout.String(), stderr.String()}
}

func mustSucceed(t testing.TB, o taskOut) {
	t.Helper()
	if o.Err != nil || o.ExitCode != 0 {
		t.Fatalf("task failed: exit %d, err %v\nstdout: %s\nstderr: %s", o.ExitCode, o.Err, o.stdout, o.stderr)
	}
}

func TestBuildVerifiesLayout(t *testing.T) {
	f := shared(t)
	m := f.snap.Meta
	t.Logf("snapshot: %d pages (%.1f MB non-zero), %d modules, stack pointer %#x, runner %#x, vectorcall slot %d, mailbox data %#x; built in %v, self-test restore %v, total %v; copy-on-write %v",
		m.Pages, float64(m.NonZeroBytes)/1e6, m.Modules, m.StackPointer, m.Runner, m.Vectorcall, m.MailboxData,
		f.snap.BuildTime, f.snap.SelfTest.Restore, f.snap.SelfTest.Total, f.snap.CopyOnWrite())
	if m.Pages < f.prepared.MemoryMinPages || m.StackPointer >= f.prepared.StackPointerInit {
		t.Errorf("implausible snapshot %+v", m)
	}
	if f.snap.CopyOnWrite() != cowSupported {
		t.Errorf("copy-on-write %v on a platform that supports it: %v", f.snap.CopyOnWrite(), cowSupported)
	}
}

func TestTaskOutputAndExitStatus(t *testing.T) {
	s := shared(t).snap
	for _, tc := range []struct {
		name, code     string
		exit           int
		stdout, stderr string
	}{
		{"pass", "pass", 0, "", ""},
		{"print", "print('hi')\nimport sys; print('err', file=sys.stderr)", 0, "hi\n", "err\n"},
		{"sys.exit(5)", "import sys\nprint('before')\nsys.exit(5)", 5, "before\n", ""},
		{"sys.exit(msg)", "raise SystemExit('bye')", 1, "", "bye\n"},
		{"os._exit", "import os\nos._exit(7)", 7, "", ""},
		{"sys.exit(256)", "raise SystemExit(256)", 256, "", ""},
		{"recursion", "def f(n):\n    return f(n + 1)\nf(0)", 1, "", "RecursionError: maximum recursion depth exceeded"},
		{"exception", "def f():\n    raise ValueError('boom')\nf()", 1, "",
			"Traceback (most recent call last):\n  File \"<string>\", line 3, in <module>\n  File \"<string>\", line 2, in f\nValueError: boom\n"},
		{"syntax error", "def (", 1, "", "SyntaxError"},
		{"atexit", "import atexit\natexit.register(lambda: print('bye'))\nprint('hi')", 0, "hi\nbye\n", ""},
		{"__main__", "import sys\nprint(__name__, sys.modules['__main__'].__dict__ is globals(), '_pysnap_run' in globals())", 0, "__main__ True False\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := run(t, s, TaskSpec{Code: tc.code})
			if o.Err != nil || o.ExitCode != tc.exit {
				t.Fatalf("exit %d, err %v, want exit %d\nstderr: %s", o.ExitCode, o.Err, tc.exit, o.stderr)
			}
			if o.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", o.stdout, tc.stdout)
			}
			if !strings.Contains(o.stderr, tc.stderr) || (tc.stderr == "" && o.stderr != "") {
				t.Errorf("stderr %q, want %q", o.stderr, tc.stderr)
			}
			if strings.Contains(o.stderr, "_pysnap") {
				t.Errorf("stderr shows the runner: %q", o.stderr)
			}
		})
	}
}

func TestTaskRequest(t *testing.T) {
	s := shared(t).snap
	o := run(t, s, TaskSpec{
		Argv: []string{"-c", "a", "b c"},
		Env:  []string{"ONE=1", "TWO=x=y"},
		Path: []string{"/lib", "/"},
		Code: `import json, os, sys
print(json.dumps({"argv": sys.argv, "orig": sys.orig_argv[3:], "env": dict(os.environ), "path": sys.path, "getenv": os.getenv("TWO")}))`,
	})
	mustSucceed(t, o)
	var got struct {
		Argv   []string
		Orig   []string
		Env    map[string]string
		Path   []string
		Getenv string
	}
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil {
		t.Fatal(err, o.stdout)
	}
	if strings.Join(got.Argv, "|") != "-c|a|b c" || strings.Join(got.Orig, "|") != "a|b c" || len(got.Env) != 2 || got.Env["TWO"] != "x=y" ||
		strings.Join(got.Path, "|") != "/lib|/" || got.Getenv != "x=y" {
		t.Errorf("got %+v", got)
	}
}

func TestLargeRequestTravelsOnStdin(t *testing.T) {
	s := shared(t).snap
	big := strings.Repeat("x", int(s.Meta.MailboxSize)*2)
	o := run(t, s, TaskSpec{Code: fmt.Sprintf("s = %q\nprint(len(s))", big)})
	mustSucceed(t, o)
	if strings.TrimSpace(o.stdout) != fmt.Sprint(len(big)) {
		t.Errorf("stdout %q", o.stdout)
	}
}

func TestMountsArePerTask(t *testing.T) {
	s := shared(t).snap
	code := `import helper, os
print(open("/data.txt").read(), helper.NAME)
with open("/tmp/out.txt", "w") as f:
    f.write("written by " + helper.NAME)
try:
    open("/new.txt", "w")
except OSError as e:
    print("read-only")
`
	for _, name := range []string{"first", "second"} {
		m := dirs(t, map[string]string{"data.txt": "data of " + name, "helper.py": fmt.Sprintf("NAME = %q\n", name)})
		o := run(t, s, TaskSpec{Mounts: m, Code: code})
		mustSucceed(t, o)
		if o.stdout != fmt.Sprintf("data of %s %s\nread-only\n", name, name) {
			t.Errorf("%s: stdout %q", name, o.stdout)
		}
		b, err := os.ReadFile(filepath.Join(m[1].HostPath, "out.txt"))
		if err != nil || string(b) != "written by "+name {
			t.Errorf("%s: scratch holds %q, %v", name, b, err)
		}
	}
}

func TestOpenFilesAreFlushedAtExit(t *testing.T) {
	s := shared(t).snap
	m := dirs(t, nil)
	o := run(t, s, TaskSpec{Mounts: m, Code: `import sys
f = open("/tmp/text.txt", "w")
f.write("text")
class Keep:
    pass
Keep.b = open("/tmp/binary.bin", "wb")
Keep.b.write(b"binary")
sys.exit(0)
`})
	mustSucceed(t, o)
	for name, want := range map[string]string{"text.txt": "text", "binary.bin": "binary"} {
		if b, err := os.ReadFile(filepath.Join(m[1].HostPath, name)); err != nil || string(b) != want {
			t.Errorf("%s holds %q, %v; want %q", name, b, err, want)
		}
	}
}

func TestMountLayoutMismatchIsRefused(t *testing.T) {
	s := shared(t).snap
	m := dirs(t, nil)
	for name, mounts := range map[string][]Mount{
		"swapped":   {m[1], m[0]},
		"missing":   {m[0]},
		"extra":     {m[0], m[1], {HostPath: t.TempDir(), GuestPath: "/out", Writable: true}},
		"read-only": {m[0], {HostPath: m[1].HostPath, GuestPath: "/tmp"}},
	} {
		if _, err := s.Start(context.Background(), TaskSpec{Mounts: mounts, Code: "pass"}); !errors.Is(err, ErrMountMismatch) {
			t.Errorf("%s: %v, want ErrMountMismatch", name, err)
		}
	}
}

// mutate changes every kind of state a task could leave behind; check
// prints what a fresh task must see.
const (
	mutate = `import json, os, random, sys, re, builtins, datetime, logging
json.dumps = lambda *a, **k: "hijacked"
json.MARK = "leaked"
sys.path.insert(0, "/leaked")
sys.modules["leaked_module"] = type(sys)("leaked_module")
os.environ["LEAKED"] = "1"
builtins.LEAKED = True
re.compile("leaked-pattern")
logging.getLogger("leak").setLevel(logging.DEBUG)
sys.setrecursionlimit(123)
random.seed(42)
print(random.random())
`
	check = `import json, os, random, sys, builtins, logging
print(json.dumps({
    "json_dumps": json.dumps([1]),
    "json_mark": hasattr(json, "MARK"),
    "path": "/leaked" in sys.path,
    "module": "leaked_module" in sys.modules,
    "env": "LEAKED" in os.environ,
    "builtins": hasattr(builtins, "LEAKED"),
    "logger": logging.getLogger("leak").level,
    "recursion": sys.getrecursionlimit(),
    "random": random.random(),
}))
`
)

type checked struct {
	JSONDumps string  `json:"json_dumps"`
	JSONMark  bool    `json:"json_mark"`
	Path      bool    `json:"path"`
	Module    bool    `json:"module"`
	Env       bool    `json:"env"`
	Builtins  bool    `json:"builtins"`
	Logger    int     `json:"logger"`
	Recursion int     `json:"recursion"`
	Random    float64 `json:"random"`
}

func parseCheck(t testing.TB, o taskOut) checked {
	t.Helper()
	mustSucceed(t, o)
	var c checked
	if err := json.Unmarshal([]byte(o.stdout), &c); err != nil {
		t.Fatalf("%v: %q", err, o.stdout)
	}
	if c.JSONDumps != "[1]" || c.JSONMark || c.Path || c.Module || c.Env || c.Builtins || c.Logger != 0 || c.Recursion == 123 {
		t.Errorf("state leaked between tasks: %+v", c)
	}
	return c
}

func testIsolation(t *testing.T, s *Snapshot) {
	t.Run("consecutive", func(t *testing.T) {
		seen := map[float64]bool{}
		for i := 0; i < 3; i++ {
			mustSucceed(t, run(t, s, TaskSpec{Code: mutate}))
			c := parseCheck(t, run(t, s, TaskSpec{Code: check}))
			if seen[c.Random] {
				t.Errorf("random was not reseeded: %v again", c.Random)
			}
			seen[c.Random] = true
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		outs := make([]taskOut, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// Each task checks the pristine state, leaves its own
				// mark everywhere, then checks the marks are still its.
				code := check + fmt.Sprintf(`
me = %d
json.MARK = me
os.environ["MARK"] = str(me)
sys.path.append("/mark/%%d" %% me)
for _ in range(3):
    sum(range(100000))
    assert json.MARK == me and os.environ["MARK"] == str(me) and sys.path[-1] == "/mark/%%d" %% me
`, i)
				var stdout, stderr bytes.Buffer
				res, err := s.Start(context.Background(), TaskSpec{Mounts: dirs(t, nil), Code: code, Stdout: &stdout, Stderr: &stderr})
				if err != nil {
					t.Error(err)
					return
				}
				outs[i] = taskOut{res, stdout.String(), stderr.String()}
			}(i)
		}
		wg.Wait()
		seen := map[float64]bool{}
		for _, o := range outs {
			if o.Result == nil {
				continue
			}
			c := parseCheck(t, o)
			if seen[c.Random] {
				t.Errorf("two tasks drew the same random number %v", c.Random)
			}
			seen[c.Random] = true
		}
	})
}

func TestIsolation(t *testing.T) { testIsolation(t, shared(t).snap) }

func TestCopyFallback(t *testing.T) {
	f := shared(t)
	s, err := Build(context.Background(), f.eng, f.prepared, BootSpec{Mounts: testLayout, NoCoW: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.CopyOnWrite() {
		t.Fatal("NoCoW snapshot maps its image")
	}
	testIsolation(t, s)
	o := run(t, s, TaskSpec{Code: "b = bytearray(16 << 20); print(len(b))"})
	mustSucceed(t, o)
	s.Close()
	if _, err := s.Start(context.Background(), TaskSpec{Mounts: dirs(t, nil), Code: "pass"}); err == nil {
		t.Error("a closed snapshot started a task")
	}
}

func TestTimeoutStopsASpinningTask(t *testing.T) {
	s := shared(t).snap
	start := time.Now()
	o := run(t, s, TaskSpec{Code: "while True:\n    pass", Timeout: 300 * time.Millisecond})
	if !o.TimedOut() {
		t.Fatalf("not stopped by its timeout: exit %d, err %v", o.ExitCode, o.Err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	// The snapshot still works.
	mustSucceed(t, run(t, s, TaskSpec{Code: "pass"}))
}

func TestMemoryLimitHolds(t *testing.T) {
	f := shared(t)
	s := f.snap
	// 64 MiB limit: a 100 MiB buffer cannot be had.
	o := run(t, s, TaskSpec{Code: "b = bytearray(100 << 20)"})
	if o.Err != nil || o.ExitCode != 1 || !strings.Contains(o.stderr, "MemoryError") {
		t.Fatalf("exit %d, err %v, stderr %q; want a MemoryError", o.ExitCode, o.Err, o.stderr)
	}
	if o.MemoryBytes > testLimitPages*pageSize {
		t.Errorf("memory %d above the limit", o.MemoryBytes)
	}
	// Growing up to the limit works, and leaves the next task unaffected.
	o = run(t, s, TaskSpec{Code: "b = bytearray(40 << 20); print(len(b))"})
	mustSucceed(t, o)
	if o.MemoryBytes < 40<<20 {
		t.Errorf("memory %d after allocating 40 MiB", o.MemoryBytes)
	}
	mustSucceed(t, run(t, s, TaskSpec{Code: "pass"}))

	// A task engine with a smaller limit than the image is refused; a
	// larger one works.
	ctx := context.Background()
	small, err := NewEngine(ctx, EngineConfig{MemoryLimitPages: s.Meta.Pages - 1, Cache: f.cache})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(ctx)
	if _, err := s.Start(ctx, TaskSpec{Engine: small, Mounts: dirs(t, nil), Code: "pass"}); err == nil {
		t.Error("started on an engine whose limit is below the snapshot")
	}
	big, err := NewEngine(ctx, EngineConfig{MemoryLimitPages: 4096, Cache: f.cache})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close(ctx)
	o = run(t, s, TaskSpec{Engine: big, Code: "b = bytearray(100 << 20); print(len(b))"})
	mustSucceed(t, o)
}

func TestDiskCache(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	dir := t.TempDir()
	spec := BootSpec{Mounts: testLayout, CacheDir: dir, WarmModules: []string{"json"}}
	first, err := Build(ctx, f.eng, f.prepared, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.FromCache {
		t.Fatal("first build came from an empty cache")
	}
	second, err := Build(ctx, f.eng, f.prepared, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if !second.FromCache || second.Meta != first.Meta {
		t.Fatalf("second build: from cache %v, meta %+v", second.FromCache, second.Meta)
	}
	t.Logf("boot %v, load from cache %v", first.BuildTime, second.BuildTime)
	mustSucceed(t, run(t, second, TaskSpec{Code: "import json; print(json.dumps(1))"}))

	// A different layout is a different snapshot.
	other := spec
	other.Mounts = []Mount{{GuestPath: "/tmp", Writable: true}, {GuestPath: "/"}}
	third, err := Build(ctx, f.eng, f.prepared, other)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.FromCache || third.Meta.Key == first.Meta.Key {
		t.Error("a different mount layout reused the image")
	}
	if _, err := third.Start(ctx, TaskSpec{Mounts: dirs(t, nil), Code: "pass"}); !errors.Is(err, ErrMountMismatch) {
		t.Errorf("layout of another snapshot accepted: %v", err)
	}

	// A corrupt image is rebuilt.
	img, _ := cachePaths(dir, first.Meta.Key)
	if err := os.WriteFile(img, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	fourth, err := Build(ctx, f.eng, f.prepared, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	if fourth.FromCache {
		t.Error("a corrupt image was used")
	}
	mustSucceed(t, run(t, fourth, TaskSpec{Code: "pass"}))
	fourth.Close()
	if _, err := fourth.Start(ctx, TaskSpec{Mounts: dirs(t, nil), Code: "pass"}); err == nil {
		t.Error("a closed snapshot started a task")
	}
}

func TestBuildFailuresAreErrors(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	for name, spec := range map[string]BootSpec{
		"missing warm module": {Mounts: testLayout, WarmModules: []string{"no_such_module"}},
		"extra raises":        {Mounts: testLayout, Extra: "raise RuntimeError('no')"},
		"extra exits":         {Mounts: testLayout, Extra: "import os; os._exit(0)"},
		"tiny mailbox":        {Mounts: testLayout, MailboxSize: 8},
		"boot hangs":          {Mounts: testLayout, Extra: "while True: pass", Timeout: time.Second},
	} {
		if s, err := Build(ctx, f.eng, f.prepared, spec); err == nil {
			s.Close()
			t.Errorf("%s: Build succeeded", name)
		} else {
			t.Logf("%s: %v", name, firstLine(err.Error()))
		}
	}
}

func TestTriggerOutsideABuildIsAnOrdinaryClock(t *testing.T) {
	s := shared(t).snap
	o := run(t, s, TaskSpec{Code: `import struct, time
k = struct.pack("<I", 0x5a5a)
try:
    time.clock_getres(id(k) + 16)
except OSError as e:
    print("refused", e.errno)
print(time.clock_getres(time.CLOCK_MONOTONIC) > 0)
`})
	mustSucceed(t, o)
	if o.stdout != "refused 28\nTrue\n" {
		t.Errorf("stdout %q", o.stdout)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// The ork SDK can be imported at boot from a host directory mounted at its
// guest path; tasks then find it imported, each with its own state.
func TestBootImportsFromAHostDirectory(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	sdk := filepath.Join(testguests.RepoRoot(), "sdk", "python")
	layout := []Mount{{GuestPath: "/"}, {GuestPath: "/tmp", Writable: true}, {HostPath: sdk, GuestPath: "/.ork-sdk/python"}}
	s, err := Build(ctx, f.eng, f.prepared, BootSpec{
		Mounts: layout,
		Env:    []string{"PYTHONPATH=/.ork-sdk/python", "PYTHONDONTWRITEBYTECODE=1"},
		Extra:  "import ork._main",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("with the SDK: %d modules, built in %v", s.Meta.Modules, s.BuildTime)
	code := `import sys
print("ork._main" in sys.modules, sys.modules["ork._main"].__file__)
import ork._main
print(hasattr(ork._main, "LEAK"))
ork._main.LEAK = 1
`
	for i := 0; i < 2; i++ {
		m := dirs(t, nil)
		m = append(m, Mount{HostPath: sdk, GuestPath: "/.ork-sdk/python"})
		o := run(t, s, TaskSpec{Mounts: m, Code: code})
		mustSucceed(t, o)
		if o.stdout != "True /.ork-sdk/python/ork/_main.py\nFalse\n" {
			t.Errorf("stdout %q", o.stdout)
		}
	}
}

// TestCacheRotation: a cache directory keeps the most recently used images
// and removes the others when a new one is stored; a task running from a
// removed image is not disturbed.
func TestCacheRotation(t *testing.T) {
	f := shared(t)
	ctx := context.Background()
	dir := t.TempDir()
	build := func(key string) *Snapshot {
		t.Helper()
		s, err := Build(ctx, f.eng, f.prepared, BootSpec{Mounts: testLayout, CacheDir: dir, WarmModules: []string{"json"}, CacheKey: key, Keep: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cached := func() int {
		imgs, _ := filepath.Glob(filepath.Join(dir, "python-*.img"))
		metas, _ := filepath.Glob(filepath.Join(dir, "python-*.json"))
		if len(imgs) != len(metas) {
			t.Fatalf("%d images but %d metadata files", len(imgs), len(metas))
		}
		return len(imgs)
	}
	a := build("a")
	defer a.Close()
	time.Sleep(10 * time.Millisecond) // distinct modification times
	b := build("b")
	defer b.Close()
	time.Sleep(10 * time.Millisecond)
	a2 := build("a") // a is used again: b is now the least recently used
	defer a2.Close()
	if !a2.FromCache {
		t.Fatal("a was not loaded from the cache")
	}
	time.Sleep(10 * time.Millisecond)
	c := build("c")
	defer c.Close()
	if n := cached(); n != 2 {
		t.Fatalf("the cache holds %d images, want 2", n)
	}
	img, _ := cachePaths(dir, b.Meta.Key)
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("the least recently used image (b) is still there: %v", err)
	}
	for _, s := range []*Snapshot{a, c} {
		img, _ := cachePaths(dir, s.Meta.Key)
		if _, err := os.Stat(img); err != nil {
			t.Errorf("a recently used image was removed: %v", err)
		}
	}
	// b's image is gone from the directory, but b still starts tasks.
	mustSucceed(t, run(t, b, TaskSpec{Code: "import json; print(json.dumps(2))"}))
}
