package project

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullProject is a valid project using every field of every format. The
// project lives in proj/, next to a shared-data directory it mounts.
var fullProject = map[string]string{
	"proj/ork.yaml": `# every field
executors:
  rust:
    type: rust
    sandbox:
      memory: 1073741824
  csv:
    type: executors/csv
    config:
      delimiter: ","
      columns: [id, name]
      nested: {a: {b: [1, 2.5, true, null]}}
      when: 2024-01-01
    sandbox:
      memory: 512MiB
      timeout: 2m
      mounts:
        - host: ../shared-data
          guest: /data
        - host: executors
          guest: /srv/executors
      env: [TZ, LANG]
  hello:
    type: ./build/../build/hello.wasm
  transform:
    type: executors.transform:TransformExecutor
`,
	"proj/executors/csv/Cargo.toml": "[package]\nname = \"csv\"\n",
	"proj/build/hello.wasm":         "\x00asm",
	"proj/crates/load/Cargo.toml":   "[package]\nname = \"load\"\n",
	"proj/tasks/load.yaml":          "crate: crates/load\nparams:\n  table: sales\n  limit: 10\n",
	"proj/tasks/hello.yaml":         "module: build/hello.wasm\n",
	"proj/tasks/report.py":          "def main(ctx):\n    pass\n",
	"proj/tasks/report.yaml":        "file: tasks/report.py\nfunction: main\nparams: [1, two]\n",
	"proj/tasks/quick.yaml":         "file: tasks/report.py\n",
	"proj/tasks/csv.yaml":           "free: [form, {not: decoded\n",
	"proj/workflows/sales.yaml": `name: sales_report
tasks:
  load:
    executor: rust
    config_file: tasks/load.yaml
    timeout: 30s
  parse:
    executor: csv
    config_file: tasks/csv.yaml
    depends_on: [load]
  hello:
    executor: rust
    config_file: tasks/hello.yaml
    depends_on: [load]
  report:
    executor: python
    config_file: ./tasks/report.yaml
    depends_on: [parse, hello]
    timeout: 1h30m
  quick:
    executor: python
    config_file: tasks/quick.yaml
  transform:
    executor: transform
    config_file: tasks/csv.yaml
`,
	"shared-data/": "",
}

func TestLoadFullProject(t *testing.T) {
	dir := writeFiles(t, fullProject)
	root := filepath.Join(dir, "proj")
	p := mustLoad(t, root)

	if p.Root != root || p.File != filepath.Join(root, "ork.yaml") {
		t.Errorf("Root, File = %q, %q", p.Root, p.File)
	}
	if want := []string{"rust", "csv", "hello", "transform", "python"}; !reflect.DeepEqual(p.Order, want) {
		t.Errorf("Order = %q, want %q", p.Order, want)
	}
	if len(p.Executors) != 5 {
		t.Errorf("got %d executors, want 5", len(p.Executors))
	}

	rust := p.Executors["rust"]
	if rust.Kind != KindBuiltinRust || rust.Sandbox.MemoryBytes != 1<<30 || rust.Pos != (Pos{File: "ork.yaml", Line: 3, Column: 3}) {
		t.Errorf("rust = %+v", rust)
	}

	csv := p.Executors["csv"]
	wantSandbox := Sandbox{
		MemoryBytes: 512 << 20,
		Timeout:     2 * time.Minute,
		Mounts: []Mount{
			{HostPath: filepath.Join(dir, "shared-data"), GuestPath: "/data"},
			{HostPath: filepath.Join(root, "executors"), GuestPath: "/srv/executors"},
		},
		Env: []string{"TZ", "LANG"},
	}
	if csv.Kind != KindCrate || csv.Type != "executors/csv" || csv.Path != "executors/csv" || csv.Name != "csv" {
		t.Errorf("csv = %+v", csv)
	}
	if !reflect.DeepEqual(csv.Sandbox, wantSandbox) {
		t.Errorf("csv sandbox = %+v\nwant %+v", csv.Sandbox, wantSandbox)
	}
	wantConfig := map[string]any{
		"delimiter": ",",
		"columns":   []any{"id", "name"},
		"nested":    map[string]any{"a": map[string]any{"b": []any{int64(1), 2.5, true, nil}}},
		"when":      "2024-01-01",
	}
	if !reflect.DeepEqual(csv.Config, wantConfig) {
		t.Errorf("csv config = %#v\nwant %#v", csv.Config, wantConfig)
	}

	hello := p.Executors["hello"]
	if hello.Kind != KindModule || hello.Path != "build/hello.wasm" || hello.Type != "./build/../build/hello.wasm" {
		t.Errorf("hello = %+v", hello)
	}
	transform := p.Executors["transform"]
	if transform.Kind != KindPythonClass || transform.Path != "" || transform.Config != nil {
		t.Errorf("transform = %+v", transform)
	}
	python := p.Executors["python"]
	if python.Kind != KindBuiltinPython || python.Type != "python" {
		t.Errorf("python = %+v", python)
	}

	w, err := p.LoadWorkflow(filepath.Join(root, "workflows", "sales.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "sales_report" || w.Rel != "workflows/sales.yaml" || w.File != filepath.Join(root, "workflows", "sales.yaml") {
		t.Errorf("workflow = %q %q %q", w.Name, w.Rel, w.File)
	}
	if want := []string{"load", "parse", "hello", "report", "quick", "transform"}; !reflect.DeepEqual(w.Order, want) {
		t.Errorf("Order = %q, want %q", w.Order, want)
	}
	wantTasks := map[string]*Task{
		"load":      {Name: "load", Executor: "rust", ConfigFile: "tasks/load.yaml", Timeout: 30 * time.Second, Pos: Pos{"workflows/sales.yaml", 3, 3}},
		"parse":     {Name: "parse", Executor: "csv", ConfigFile: "tasks/csv.yaml", DependsOn: []string{"load"}, Pos: Pos{"workflows/sales.yaml", 7, 3}},
		"hello":     {Name: "hello", Executor: "rust", ConfigFile: "tasks/hello.yaml", DependsOn: []string{"load"}, Pos: Pos{"workflows/sales.yaml", 11, 3}},
		"report":    {Name: "report", Executor: "python", ConfigFile: "tasks/report.yaml", DependsOn: []string{"parse", "hello"}, Timeout: 90 * time.Minute, Pos: Pos{"workflows/sales.yaml", 15, 3}},
		"quick":     {Name: "quick", Executor: "python", ConfigFile: "tasks/quick.yaml", Pos: Pos{"workflows/sales.yaml", 20, 3}},
		"transform": {Name: "transform", Executor: "transform", ConfigFile: "tasks/csv.yaml", Pos: Pos{"workflows/sales.yaml", 23, 3}},
	}
	if !reflect.DeepEqual(w.Tasks, wantTasks) {
		for n, want := range wantTasks {
			if !reflect.DeepEqual(w.Tasks[n], want) {
				t.Errorf("task %s = %+v\nwant %+v", n, w.Tasks[n], want)
			}
		}
	}
	if got, want := TopoOrder(w), []string{"load", "parse", "hello", "report", "quick", "transform"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopoOrder = %q, want %q", got, want)
	}

	for _, tc := range []struct {
		task string
		want BuiltinTaskConfig
	}{
		{"load", BuiltinTaskConfig{Crate: "crates/load", Params: map[string]any{"table": "sales", "limit": int64(10)}}},
		{"hello", BuiltinTaskConfig{Module: "build/hello.wasm"}},
		{"report", BuiltinTaskConfig{File: "tasks/report.py", Func: "main", Params: []any{int64(1), "two"}}},
		{"quick", BuiltinTaskConfig{File: "tasks/report.py", Func: "run"}},
	} {
		cfg, err := p.LoadTaskConfig(w.Tasks[tc.task])
		if err != nil {
			t.Errorf("LoadTaskConfig(%s): %v", tc.task, err)
			continue
		}
		if !reflect.DeepEqual(*cfg, tc.want) {
			t.Errorf("LoadTaskConfig(%s) = %+v, want %+v", tc.task, *cfg, tc.want)
		}
	}

	// Custom executors' config files are not decoded by ork.
	_, err = p.LoadTaskConfig(w.Tasks["parse"])
	checkErr(t, err, `workflows/sales.yaml:7:3: task "parse" uses executor "csv", which is not a built-in; its config_file is passed to the executor as is, so do not decode it with ork`)
}

func TestDefaultBuiltins(t *testing.T) {
	for _, ork := range []string{"", "# nothing yet\n", "executors:\n", "executors: {}\n", "---\n"} {
		root := writeFiles(t, map[string]string{"ork.yaml": ork})
		p := mustLoad(t, root)
		if want := []string{"rust", "python"}; !reflect.DeepEqual(p.Order, want) {
			t.Errorf("%q: Order = %q, want %q", ork, p.Order, want)
		}
		want := map[string]*Executor{
			"rust":   {Name: "rust", Type: "rust", Kind: KindBuiltinRust},
			"python": {Name: "python", Type: "python", Kind: KindBuiltinPython},
		}
		if !reflect.DeepEqual(p.Executors, want) {
			t.Errorf("%q: Executors = %+v", ork, p.Executors)
		}
	}
}

func TestRedefinedBuiltin(t *testing.T) {
	// "python" may name another kind of executor; "rust" stays the built-in.
	root := writeFiles(t, map[string]string{
		"ork.yaml":                    "executors:\n  python:\n    type: crates/py\n",
		"crates/py/Cargo.toml":        "",
		"workflows/w.yaml":            "name: w\ntasks:\n  a:\n    executor: python\n    config_file: t.yaml\n",
		"workflows/needs-config.yaml": "name: w\ntasks:\n  a:\n    executor: rust\n",
		"workflows/crate-config.yaml": "name: w\ntasks:\n  a:\n    executor: python\n",
		"t.yaml":                      "",
	})
	p := mustLoad(t, root)
	if p.Executors["python"].Kind != KindCrate || p.Executors["rust"].Kind != KindBuiltinRust {
		t.Errorf("executors = %+v, %+v", p.Executors["python"], p.Executors["rust"])
	}
	if want := []string{"python", "rust"}; !reflect.DeepEqual(p.Order, want) {
		t.Errorf("Order = %q, want %q", p.Order, want)
	}
	// The task of a crate executor needs a config_file too, but one that ork
	// does not decode.
	if _, err := p.LoadWorkflow(filepath.Join(root, "workflows", "w.yaml")); err != nil {
		t.Error(err)
	}
	_, err := p.LoadWorkflow(filepath.Join(root, "workflows", "needs-config.yaml"))
	checkErr(t, err, `workflows/needs-config.yaml:3:3: task "a" has no config_file; tasks of the built-in rust executor need one naming the crate or .wasm module to run`)
	_, err = p.LoadWorkflow(filepath.Join(root, "workflows", "crate-config.yaml"))
	checkErr(t, err, `workflows/crate-config.yaml:3:3: task "a" has no config_file; executor "python" (a Rust executor crate) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root`)
}

func TestConfigJSONRoundTrip(t *testing.T) {
	root := writeFiles(t, map[string]string{"ork.yaml": `executors:
  csv:
    type: rust
    config:
      defaults: &d {retries: 3, verbose: false}
      job:
        <<: *d
        verbose: true
        tags: [a, b]
      both:
        <<: [{x: 1}, {x: 2, y: 2}]
      list: [*d, *d]
      ints: [0x10, 1_000, -7, 9223372036854775807]
      floats: [1.5e3, 0.25, 1e30]
      strings: [!!str 123, "true", 'null', 2024-01-02T03:04:05Z, "ünï"]
      block: |
        line 1
        line 2
      nothing: ~
      empty: {}
      none: []
`})
	p := mustLoad(t, root)
	cfg := p.Executors["csv"].Config
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"block":"line 1\nline 2\n","both":{"x":1,"y":2},"defaults":{"retries":3,"verbose":false},"empty":{},"floats":[1500,0.25,1e+30],"ints":[16,1000,-7,9223372036854775807],"job":{"retries":3,"tags":["a","b"],"verbose":true},"list":[{"retries":3,"verbose":false},{"retries":3,"verbose":false}],"none":[],"nothing":null,"strings":["123","true","null","2024-01-02T03:04:05Z","ünï"]}`
	if string(data) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", data, want)
	}
	// Decoding the JSON back gives the same structure.
	var back any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != want {
		t.Errorf("round trip =\n%s\nwant\n%s", again, want)
	}
	m := cfg.(map[string]any)
	if _, ok := m["ints"].([]any)[0].(int64); !ok {
		t.Errorf("integers decode to %T, want int64", m["ints"].([]any)[0])
	}
	if _, ok := m["floats"].([]any)[0].(float64); !ok {
		t.Errorf("floats decode to %T, want float64", m["floats"].([]any)[0])
	}
}

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"0", 0}, {"1", 1}, {"1048576", 1 << 20}, {"1B", 1}, {"1KiB", 1 << 10}, {"512MiB", 512 << 20},
		{"4GiB", 4 << 30}, {"1KB", 1000}, {"2MB", 2000000}, {"3GB", 3000000000}, {"256 MiB", 256 << 20},
	} {
		got, err := ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "512M", "512mib", "-1", "+1", "1 TiB", " 1MiB", "1MiB ", "1  MiB", "512 ", "99999999999999999999", "17179869184GiB"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
	_, err := ParseBytes("512M")
	if want := `invalid size "512M": expected an integer followed by one of the units B, KiB, MiB, GiB, KB, MB, GB, e.g. "512MiB"`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestSandboxLimits(t *testing.T) {
	for _, tt := range []struct {
		memory, timeout string
		bytes           uint64
		dur             time.Duration
	}{
		{"1MiB", "1ns", 1 << 20, 1},
		{"1048576", "500ms", 1 << 20, 500 * time.Millisecond},
		{"4GiB", "1h30m", 4 << 30, 90 * time.Minute},
		{"4096MiB", "24h", 4 << 30, 24 * time.Hour},
		{"1000 KiB", "2m", 0, 0},
		{"4194305KiB", "2m", 0, 0},
	} {
		root := writeFiles(t, map[string]string{"ork.yaml": "executors:\n  x:\n    type: rust\n    sandbox:\n      memory: " + tt.memory + "\n      timeout: " + tt.timeout + "\n"})
		p, err := Load(root)
		if tt.bytes == 0 {
			checkErr(t, err, `ork.yaml:5:15: sandbox memory `+tt.memory+` for executor "x" is outside the allowed range; use a size between 1MiB and 4GiB`)
			continue
		}
		if err != nil {
			t.Errorf("%s/%s: %v", tt.memory, tt.timeout, err)
			continue
		}
		if sb := p.Executors["x"].Sandbox; sb.MemoryBytes != tt.bytes || sb.Timeout != tt.dur {
			t.Errorf("%s/%s: got %d, %v", tt.memory, tt.timeout, sb.MemoryBytes, sb.Timeout)
		}
	}
}

func TestFileOrderPreserved(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"ork.yaml":     "executors:\n  zeta: {type: rust}\n  alpha: {type: python}\n  mid: {type: a.b:C}\n",
		"t.yaml":       "crate: c\n",
		"c/Cargo.toml": "",
		"w.yaml": "name: w\ntasks:\n  zulu: {executor: mid, config_file: t.yaml}\n  alpha: {executor: mid, config_file: t.yaml, depends_on: [zulu]}\n" +
			"  mike: {executor: mid, config_file: t.yaml}\n  bravo: {executor: zeta, config_file: t.yaml}\n  yankee: {executor: mid, config_file: t.yaml}\n",
	})
	p := mustLoad(t, root)
	if want := []string{"zeta", "alpha", "mid", "rust", "python"}; !reflect.DeepEqual(p.Order, want) {
		t.Errorf("executor Order = %q, want %q", p.Order, want)
	}
	for i := 0; i < 5; i++ { // map iteration must not leak into the result
		w, err := p.LoadWorkflow(filepath.Join(root, "w.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"zulu", "alpha", "mike", "bravo", "yankee"}; !reflect.DeepEqual(w.Order, want) {
			t.Fatalf("task Order = %q, want %q", w.Order, want)
		}
	}
}

func TestTopoOrder(t *testing.T) {
	wf := func(order []string, deps map[string][]string) *Workflow {
		w := &Workflow{Tasks: map[string]*Task{}, Order: order}
		for _, n := range order {
			w.Tasks[n] = &Task{Name: n, DependsOn: deps[n]}
		}
		return w
	}
	for _, tt := range []struct {
		name  string
		order []string
		deps  map[string][]string
		want  []string
	}{
		{"diamond", []string{"a", "b", "c", "d"}, map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}, []string{"a", "b", "c", "d"}},
		{"diamond written backwards", []string{"d", "c", "b", "a"}, map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}, []string{"a", "c", "b", "d"}},
		{"independent tasks keep file order", []string{"z", "y", "x"}, nil, []string{"z", "y", "x"}},
		{"a ready task comes before later independent ones", []string{"b", "x", "a"}, map[string][]string{"b": {"a"}}, []string{"x", "a", "b"}},
		{"chain", []string{"c", "b", "a"}, map[string][]string{"c": {"b"}, "b": {"a"}}, []string{"a", "b", "c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := TopoOrder(wf(tt.order, tt.deps)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TopoOrder = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindRoot(t *testing.T) {
	root := writeFiles(t, map[string]string{"ork.yaml": "", "a/b/c/": "", "a/ork.yaml/": ""})
	for _, start := range []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b", "c")} {
		got, err := FindRoot(start)
		if err != nil || got != root {
			t.Errorf("FindRoot(%s) = %q, %v; want %q", start, got, err, root)
		}
	}
	t.Chdir(filepath.Join(root, "a", "b"))
	if got, err := FindRoot("."); err != nil || got != root {
		t.Errorf("FindRoot(.) = %q, %v; want %q", got, err, root)
	}

	empty := t.TempDir()
	if _, err := os.Stat(filepath.Join(filepath.Dir(empty), "ork.yaml")); err == nil {
		t.Skip("an ork.yaml exists above the temporary directory")
	}
	_, err := FindRoot(empty)
	want := "no ork.yaml found in " + empty + " or any parent; run `ork init` or pass --project"
	var pe *Error
	if err == nil || err.Error() != want || !errors.As(err, &pe) {
		t.Errorf("FindRoot error = %v, want %s", err, want)
	}
}

func TestLoadMissingProjectFile(t *testing.T) {
	root := t.TempDir()
	_, err := Load(root)
	checkErr(t, err, filepath.Join(root, "ork.yaml")+" does not exist; run `ork init` to create it or pass --project with the project directory")
}

func TestLoadWorkflowPaths(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"proj/ork.yaml":      "",
		"proj/flows/w.yaml":  "name: w\ntasks:\n  a: {executor: nope}\n",
		"proj/flows/ok.yaml": "name: ok\ntasks:\n  a: {executor: rust, config_file: t.yaml}\n",
		"proj/t.yaml":        "module: m.wasm\n",
		"proj/m.wasm":        "",
		"outside/w.yaml":     "name: w\ntasks:\n  a: {executor: nope}\n",
	})
	root := filepath.Join(dir, "proj")
	p := mustLoad(t, root)

	// Relative to the working directory; shown relative to the project root.
	t.Chdir(filepath.Join(root, "flows"))
	w, err := p.LoadWorkflow("ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.Rel != "flows/ok.yaml" || w.File != filepath.Join(root, "flows", "ok.yaml") {
		t.Errorf("Rel, File = %q, %q", w.Rel, w.File)
	}
	_, err = p.LoadWorkflow("w.yaml")
	checkErr(t, err, `flows/w.yaml:3:17: unknown executor "nope" in task "a"; defined executors: python, rust (define new ones under executors: in ork.yaml)`)

	// Outside the project: shown as an absolute path.
	out := filepath.Join(dir, "outside", "w.yaml")
	_, err = p.LoadWorkflow(out)
	checkErr(t, err, out+`:3:17: unknown executor "nope" in task "a"; defined executors: python, rust (define new ones under executors: in ork.yaml)`)

	_, err = p.LoadWorkflow("missing.yaml")
	checkErr(t, err, "workflow file missing.yaml does not exist; check the path")

	_, err = p.LoadWorkflow(root)
	checkErr(t, err, ".: is a directory; pass the path of a workflow file")
}

func TestRel(t *testing.T) {
	p := &Project{Root: filepath.FromSlash("/work/proj")}
	for in, want := range map[string]string{
		"/work/proj":                  ".",
		"/work/proj/ork.yaml":         "ork.yaml",
		"/work/proj/workflows/a.yaml": "workflows/a.yaml",
		"/work/other/a.yaml":          "/work/other/a.yaml",
		"/work/proj2/a.yaml":          "/work/proj2/a.yaml",
		"relative/a.yaml":             "relative/a.yaml",
	} {
		if got := p.Rel(filepath.FromSlash(in)); got != filepath.ToSlash(want) && got != filepath.FromSlash(want) {
			t.Errorf("Rel(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestErrorsType(t *testing.T) {
	root := writeFiles(t, map[string]string{"ork.yaml": "executors:\n  b:\n    type: nope\n  a:\n    tpye: rust\n"})
	_, err := Load(root)
	var list Errors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("err = %#v, want Errors with 2 entries", err)
	}
	var first *Error
	if !errors.As(err, &first) || first != list[0] {
		t.Errorf("errors.As(*Error) = %v, want the first entry", first)
	}
	if list[0].Pos != (Pos{File: "ork.yaml", Line: 3, Column: 11}) || list[1].Pos != (Pos{File: "ork.yaml", Line: 5, Column: 5}) {
		t.Errorf("positions = %v, %v", list[0].Pos, list[1].Pos)
	}
	if got := (&Error{Pos: Pos{File: "f.yaml"}, Msg: "m"}).Error(); got != "f.yaml: m" {
		t.Errorf("Error() without line = %q", got)
	}
	if got := (&Error{Msg: "m"}).Error(); got != "m" {
		t.Errorf("Error() without file = %q", got)
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"name: w\ntasks:\n  a:\n    executor: csv\n  b\n  c:\n", "w.yaml:5:3: invalid YAML: could not find expected ':'; check the indentation, quoting and brackets here"},
		{"name: w\ntasks: [a, b\nfoo: 1\n", "w.yaml:2:1: invalid YAML: did not find expected ',' or ']'; check the indentation, quoting and brackets here"},
		{"name: w\ntasks: {a: 1\n", "w.yaml:2:1: invalid YAML: did not find expected ',' or '}'; check the indentation, quoting and brackets here"},
		{"name: w\ntasks:\n  a: 1\n b: 2\n", "w.yaml:4:2: invalid YAML: did not find expected key; check the indentation, quoting and brackets here"},
		{"name: w\n---\nname: x\n", "w.yaml:2:1: a second YAML document starts here; keep everything in one document and remove the extra \"---\""},
		{"name: w\n---\nname: [x\n", "w.yaml:3:1: invalid YAML: did not find expected ',' or ']'; check the indentation, quoting and brackets here"},
		{"name: w\xff\n", "w.yaml:1:8: invalid YAML: invalid leading UTF-8 octet; check the indentation, quoting and brackets here"},
	} {
		root := writeFiles(t, map[string]string{"ork.yaml": "", "w.yaml": tt.yaml})
		_, err := mustLoad(t, root).LoadWorkflow(filepath.Join(root, "w.yaml"))
		checkErr(t, err, tt.want)
	}
}

func TestPythonPath(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"ork.yaml": "python:\n  path: [vendor, lib/py]\n",
		"vendor/":  "",
		"lib/py/":  "",
	})
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.PythonPath, ","); got != "vendor,lib/py" {
		t.Fatalf("PythonPath = %q", got)
	}
}

func TestRetriesConcurrencyTelemetry(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"ork.yaml": "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\nexecutors:\n  e:\n    type: rust\n    retries: {max_attempts: 4, backoff: constant, initial: 2s, max: 5s, jitter: 0.25}\n    sandbox: {max_concurrency: 2}\n",
	})
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Executors["e"]
	want := Retries{MaxAttempts: 4, Backoff: BackoffConstant, Initial: 2 * time.Second, Max: 5 * time.Second, Jitter: 0.25}
	if e.Retries == nil || *e.Retries != want {
		t.Fatalf("retries = %+v", e.Retries)
	}
	if e.Sandbox.MaxConcurrency != 2 || p.Telemetry.OTLPEndpoint != "http://127.0.0.1:4318" {
		t.Fatalf("sandbox %+v telemetry %+v", e.Sandbox, p.Telemetry)
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retries{MaxAttempts: 5, Backoff: BackoffExponential, Initial: time.Second, Max: 5 * time.Second}
	for next, want := range map[int]time.Duration{2: time.Second, 3: 2 * time.Second, 4: 4 * time.Second, 5: 5 * time.Second} {
		if got := r.Delay(next, 0.5); got != want {
			t.Errorf("Delay(%d) = %s, want %s", next, got, want)
		}
	}
	r.Backoff = BackoffConstant
	if got := r.Delay(4, 0.5); got != time.Second {
		t.Errorf("constant Delay = %s", got)
	}
	r.Jitter = 0.5
	if lo, hi := r.Delay(2, 0), r.Delay(2, 0.999999); lo != 500*time.Millisecond || hi < 1499*time.Millisecond {
		t.Errorf("jitter range %s..%s", lo, hi)
	}
	// Jitter never pushes a delay above max, and still spreads below it.
	r = Retries{MaxAttempts: 9, Backoff: BackoffExponential, Initial: time.Second, Max: 5 * time.Second, Jitter: 0.5}
	for next := 2; next <= 9; next++ {
		for _, random := range []float64{0, 0.25, 0.5, 0.75, 0.999999} {
			if got := r.Delay(next, random); got > r.Max {
				t.Errorf("Delay(%d, %v) = %s, above max %s", next, random, got, r.Max)
			}
		}
	}
	if got := r.Delay(9, 0.999999); got != 5*time.Second {
		t.Errorf("capped Delay with jitter up = %s, want 5s", got)
	}
	if got := r.Delay(9, 0); got != 2500*time.Millisecond {
		t.Errorf("capped Delay with jitter down = %s, want 2.5s", got)
	}
	if got := r.Delay(3, 0.999999); got < 2999*time.Millisecond || got > 3*time.Second {
		t.Errorf("Delay(3) with jitter up = %s, want just under 3s", got)
	}
}

func TestCapabilitiesConfig(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"ork.yaml": `secrets:
  BQ_TOKEN: {env: BQ_TOKEN}
  PG_PASSWORD: {file: secrets/pg.txt}
connections:
  warehouse: {type: sqlite, path: .ork/warehouse.db}
  pg: {type: postgres, dsn: "postgres://ork@127.0.0.1:5432/wh?sslmode=disable", password_secret: PG_PASSWORD}
  pg_env: {type: postgres, dsn_env: PG_DSN}
executors:
  bq:
    type: rust
    sandbox:
      allowed_hosts:
        - "*.example.com"
        - 10.1.2.0/24:5432
        - host: bigquery.googleapis.com
          headers: {Authorization: "Bearer {{ secret.BQ_TOKEN }}"}
      secrets: [BQ_TOKEN]
      connections: [warehouse, pg]
`,
	})
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if p.Secrets["BQ_TOKEN"].Env != "BQ_TOKEN" || p.Secrets["PG_PASSWORD"].File != root+"/secrets/pg.txt" {
		t.Fatalf("secrets %+v %+v", p.Secrets["BQ_TOKEN"], p.Secrets["PG_PASSWORD"])
	}
	if c := p.Connections["pg"]; c.Type != ConnPostgres || c.PasswordSecret != "PG_PASSWORD" {
		t.Fatalf("pg %+v", c)
	}
	if c := p.Connections["pg_env"]; c.DSNEnv != "PG_DSN" || c.DSN != "" {
		t.Fatalf("pg_env %+v", c)
	}
	if c := p.Connections["warehouse"]; c.Path != root+"/.ork/warehouse.db" {
		t.Fatalf("warehouse %+v", c)
	}
	sb := p.Executors["bq"].Sandbox
	if len(sb.AllowedHosts) != 3 || sb.AllowedHosts[1].Pattern != "10.1.2.0/24:5432" || sb.AllowedHosts[2].Headers["Authorization"] != "Bearer {{ secret.BQ_TOKEN }}" {
		t.Fatalf("allowed hosts %+v", sb.AllowedHosts)
	}
	got, err := ExpandSecrets(sb.AllowedHosts[2].Headers["Authorization"], func(n string) (string, error) { return "tok-" + n, nil })
	if err != nil || got != "Bearer tok-BQ_TOKEN" {
		t.Fatalf("expand = %q, %v", got, err)
	}
}

func TestCapabilitiesErrors(t *testing.T) {
	tests := []struct{ name, ork, want string }{
		{"undefined secret granted", "executors:\n  e:\n    type: rust\n    sandbox: {secrets: [NOPE]}\n",
			`ork.yaml:4:25: secret "NOPE" in sandbox secrets of executor "e" is not defined under secrets: in ork.yaml; no secrets are defined`},
		{"undefined connection", "connections:\n  a: {type: sqlite, path: a.db}\nexecutors:\n  e:\n    type: rust\n    sandbox: {connections: [b]}\n",
			`ork.yaml:6:29: connection "b" in sandbox connections of executor "e" is not defined under connections: in ork.yaml; defined connections: a`},
		{"header uses undefined secret", "executors:\n  e:\n    type: rust\n    sandbox:\n      allowed_hosts:\n        - {host: a.com, headers: {X-Key: \"{{ secret.K }}\"}}\n",
			`header X-Key of entry 1 of sandbox allowed_hosts of executor "e" uses secret "K", which is not defined under secrets:; no secrets are defined`},
		{"password in dsn", "connections:\n  pg: {type: postgres, dsn: \"postgres://u:pw@h/db\"}\n",
			`the dsn of connection "pg" holds a password; move it to a secret and name it with password_secret:`},
		{"dsn and dsn_env", "connections:\n  pg: {type: postgres, dsn: \"postgres://u@h/db\", dsn_env: PG_DSN}\n",
			`ork.yaml:2:3: connection "pg" sets both dsn and dsn_env; keep one of them`},
		{"postgres without dsn", "connections:\n  pg: {type: postgres}\n",
			`ork.yaml:2:3: connection "pg" of type postgres has no dsn; add dsn: postgres://user@host:5432/db, or dsn_env: VAR to read it from an environment variable when the run starts`},
		{"dsn_env invalid", "connections:\n  pg: {type: postgres, dsn_env: PG-DSN}\n",
			`ork.yaml:2:33: invalid environment variable name "PG-DSN" for dsn_env of connection "pg"`},
		{"dsn_env on sqlite", "connections:\n  db: {type: sqlite, path: a.db, dsn_env: X}\n",
			`ork.yaml:2:3: connection "db" of type sqlite takes only path:`},
		{"secret without source", "secrets:\n  S: {}\n", `ork.yaml:2:3: secret "S" says neither where to read it; add env: VAR or file: path`},
		{"host with scheme", "executors:\n  e:\n    type: rust\n    sandbox: {allowed_hosts: [\"https://a.com\"]}\n",
			`ork.yaml:4:31: invalid allowed host "https://a.com": remove the scheme "https://"; entries name a host with an optional port, e.g. "a.com" (in sandbox allowed_hosts of executor "e")`},
		{"bad wildcard", "executors:\n  e:\n    type: rust\n    sandbox:\n      allowed_hosts:\n        - \"*foo.com\"\n",
			`ork.yaml:6:11: invalid allowed host "*foo.com": a wildcard may only be the whole first label, as in "*.example.com" (in sandbox allowed_hosts of executor "e")`},
		{"port out of range", "executors:\n  e:\n    type: rust\n    sandbox:\n      allowed_hosts:\n        - api.example.com:99999\n",
			`ork.yaml:6:11: invalid allowed host "api.example.com:99999": the port "99999" is not a number between 1 and 65535 (in sandbox allowed_hosts of executor "e")`},
		{"bad host in a mapping", "executors:\n  e:\n    type: rust\n    sandbox:\n      allowed_hosts:\n        - host: 10.1.2.3/24\n          headers: {X-A: b}\n",
			`ork.yaml:6:17: invalid allowed host "10.1.2.3/24": the address block has bits set after its /24 prefix; write 10.1.2.0/24 (in sandbox allowed_hosts of executor "e")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFiles(t, map[string]string{"ork.yaml": tc.ork}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestEngines(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"ork.yaml": `engine: wazero
executors:
  fast:
    type: rust
    engine: wasmtime
  metered:
    type: rust
    engine: wasmtime
    sandbox: {cpu: 20G}
  plain:
    type: python
`,
	})
	p := mustLoad(t, root)
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	check("project engine", p.Engine, "wazero")
	check("executor engine", p.Executors["fast"].EngineFor(""), "wasmtime")
	check("project default", p.Executors["plain"].EngineFor(""), "wazero")
	check("built-in follows the project", p.Executors["rust"].EngineFor(""), "wazero")
	check("--engine overrides ork.yaml", p.Executors["plain"].EngineFor("wasmtime"), "wasmtime")
	if got := p.Executors["metered"].Sandbox.CPU; got != 20e9 {
		t.Errorf("cpu: got %d", got)
	}

	// Without any engine: setting, a CPU limit picks wasmtime and the rest
	// is left to ork's default.
	root = writeFiles(t, map[string]string{
		"ork.yaml": "executors:\n  metered:\n    type: rust\n    sandbox: {cpu: 1500000}\n  plain:\n    type: rust\n",
	})
	p = mustLoad(t, root)
	check("cpu limit", p.Executors["metered"].EngineFor(""), "wasmtime")
	check("ork's default", p.Executors["plain"].EngineFor(""), "")
}

func TestParseFuel(t *testing.T) {
	for in, want := range map[string]uint64{"1": 1, "20G": 20e9, "5k": 5000, "3M": 3e6, "2T": 2e12} {
		got, err := ParseFuel(in)
		if err != nil || got != want {
			t.Errorf("ParseFuel(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1.5G", "G", "9999999999T"} {
		if _, err := ParseFuel(bad); err == nil {
			t.Errorf("ParseFuel(%q) accepted", bad)
		}
	}
}
