package project

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// workflowFiles are present in every workflow test project: executors
// csv (a crate), hello (a module) and the built-ins python and rust.
var workflowFiles = map[string]string{
	"ork.yaml": `executors:
  csv:
    type: executors/csv
  hello:
    type: build/hello.wasm
`,
	"executors/csv/Cargo.toml": "[package]\nname = \"csv\"\n",
	"build/hello.wasm":         "\x00asm",
	"crates/load/Cargo.toml":   "[package]\nname = \"load\"\n",
	"crates/nocargo/":          "",
	"tasks/load.yaml":          "crate: crates/load\n",
	"tasks/report.py":          "def run(ctx):\n    pass\n",
	"tasks/report.yaml":        "file: tasks/report.py\n",
	"tasks/csv.yaml":           "not: [yaml, decoded: by ork\n", // custom executors' configs are not decoded
	"tasks/dir/":               "",
}

func TestWorkflowErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // extra files
		workflow string
		want     string
	}{
		{"empty file", nil, "", "workflows/w.yaml:1:1: the workflow file is empty; add name: and tasks:"},
		{"only comments", nil, "# nothing yet\n", "workflows/w.yaml:1:1: the workflow file is empty; add name: and tasks:"},
		{"syntax error", nil, "name: w\ntasks:\n  a:\n    executor: rust\n   config_file: tasks/load.yaml\n", "workflows/w.yaml:5:4: invalid YAML: did not find expected key; check the indentation, quoting and brackets here"},
		{"unclosed quote", nil, "name: \"w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n", "workflows/w.yaml:1:1: invalid YAML: found unexpected end of stream; check the indentation, quoting and brackets here"},
		{"root is a list", nil, "- name: w\n", "workflows/w.yaml:1:1: invalid workflow: expected a mapping with the keys name, tasks, got a list"},
		{"unknown top-level key", nil, "name: w\ntask:\n  a: {executor: csv, config_file: tasks/csv.yaml}\n", "workflows/w.yaml:2:1: unknown key \"task\" at the top level of the workflow; did you mean \"tasks\"? allowed keys: name, tasks"},
		{"unknown top-level key without suggestion", nil, "name: w\nversion: 2\ntasks:\n  a: {executor: csv, config_file: tasks/csv.yaml}\n", "workflows/w.yaml:2:1: unknown key \"version\" at the top level of the workflow; allowed keys: name, tasks"},
		{"missing name", nil, "tasks:\n  a: {executor: csv, config_file: tasks/csv.yaml}\n", "workflows/w.yaml:1:1: the workflow has no name; add name: with letters, digits, \"_\", \".\" and \"-\""},
		{"invalid name", nil, "name: sales report\ntasks:\n  a: {executor: csv, config_file: tasks/csv.yaml}\n", "workflows/w.yaml:1:7: invalid workflow name \"sales report\"; use letters, digits, \"_\", \".\" and \"-\""},
		{"name is a number", nil, "name: 2024\ntasks:\n  a: {executor: csv, config_file: tasks/csv.yaml}\n", "workflows/w.yaml:1:7: invalid workflow name: expected a string, got an integer (2024); quote it if you mean the text \"2024\""},
		{"missing tasks", nil, "name: w\n", "workflows/w.yaml:1:1: the workflow has no tasks; add tasks: with at least one task"},
		{"tasks is null", nil, "name: w\ntasks:\n", "workflows/w.yaml:2:1: the workflow has no tasks; add at least one task under tasks:"},
		{"tasks is empty", nil, "name: w\ntasks: {}\n", "workflows/w.yaml:2:8: the workflow has no tasks; add at least one task under tasks:"},
		{"tasks is a list", nil, "name: w\ntasks: [a, b]\n", "workflows/w.yaml:2:8: invalid tasks: expected a mapping of task names to tasks, got a list"},
		{"duplicate task", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n  a:\n    executor: hello\n    config_file: tasks/csv.yaml\n", "workflows/w.yaml:6:3: duplicate task \"a\" in tasks; it is already defined at line 3, so remove or rename one of them"},
		{"invalid task name", nil, "name: w\ntasks:\n  1st:\n    executor: csv\n    config_file: tasks/csv.yaml\n", "workflows/w.yaml:3:3: invalid task name \"1st\": use letters, digits, \"_\" and \"-\", starting with a letter or \"_\""},
		{"task is null", nil, "name: w\ntasks:\n  a:\n", "workflows/w.yaml:3:3: task \"a\" has no executor; add executor: with one of csv, hello, python, rust"},
		{"task is a string", nil, "name: w\ntasks:\n  a: csv\n", "workflows/w.yaml:3:6: invalid task \"a\": expected a mapping with the keys executor, config_file, depends_on, timeout, retries, got a string (\"csv\")"},
		{"unknown task key with suggestion", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends: [a]\n", "workflows/w.yaml:9:5: unknown key \"depends\" in task \"b\"; did you mean \"depends_on\"? allowed keys: executor, config_file, depends_on, timeout, retries"},
		{"unknown task key misspelt", nil, "name: w\ntasks:\n  a:\n    executr: csv\n", "workflows/w.yaml:4:5: unknown key \"executr\" in task \"a\"; did you mean \"executor\"? allowed keys: executor, config_file, depends_on, timeout, retries"},
		{"unknown task key", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    priority: 3\n", "workflows/w.yaml:6:5: unknown key \"priority\" in task \"a\"; allowed keys: executor, config_file, depends_on, timeout, retries"},
		{"retries not a mapping", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    retries: 3\n", "workflows/w.yaml:6:14: invalid retries in task \"a\": expected a mapping with the keys max_attempts, backoff, initial, max, jitter, got an integer (3)"},
		{"retries without max_attempts", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    retries: {backoff: constant}\n", "workflows/w.yaml:6:14: retries in task \"a\" has no max_attempts; add max_attempts: with the number of attempts in all, e.g. 3"},
		{"retries bad backoff", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    retries: {max_attempts: 2, backoff: linear}\n", "workflows/w.yaml:6:41: invalid retries backoff \"linear\" in task \"a\"; use constant or exponential"},
		{"retries bad jitter", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    retries: {max_attempts: 2, jitter: 2}\n", "workflows/w.yaml:6:40: invalid retries jitter 2 in task \"a\"; use a number from 0 to 1 (a fraction of each delay)"},
		{"retries zero attempts", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    retries: {max_attempts: 0}\n", "workflows/w.yaml:6:29: invalid retries max_attempts 0 in task \"a\"; use an integer from 1 to 100"},
		{"duplicate task key", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    executor: hello\n", "workflows/w.yaml:6:5: duplicate key \"executor\" in task \"a\"; it is already defined at line 4, so remove or rename one of them"},
		{"missing executor", nil, "name: w\ntasks:\n  a:\n    timeout: 1m\n", "workflows/w.yaml:3:3: task \"a\" has no executor; add executor: with one of csv, hello, python, rust"},
		{"unknown executor with suggestion", nil, "name: w\ntasks:\n  a:\n    executor: cvs\n", "workflows/w.yaml:4:15: unknown executor \"cvs\" in task \"a\"; did you mean \"csv\"? defined executors: csv, hello, python, rust (define new ones under executors: in ork.yaml)"},
		{"unknown executor", nil, "name: w\ntasks:\n  a:\n    executor: spark\n", "workflows/w.yaml:4:15: unknown executor \"spark\" in task \"a\"; defined executors: csv, hello, python, rust (define new ones under executors: in ork.yaml)"},
		{"executor is a list", nil, "name: w\ntasks:\n  a:\n    executor: [csv]\n", "workflows/w.yaml:4:15: invalid executor of task \"a\": expected a string, got a list; use one of csv, hello, python, rust"},
		{"executor is null", nil, "name: w\ntasks:\n  a:\n    executor:\n", "workflows/w.yaml:4:14: missing value for executor of task \"a\"; use one of csv, hello, python, rust"},
		{"depends_on is a string", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: a\n", "workflows/w.yaml:9:17: invalid depends_on in task \"b\": expected a list of task names, got a string (\"a\")"},
		{"depends_on entry is a mapping", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [{b: 1}]\n", "workflows/w.yaml:6:18: invalid entry of depends_on in task \"a\": expected a string, got a mapping; give the name of a task"},
		{"unknown dependency with suggestion", nil, "name: w\ntasks:\n  load:\n    executor: csv\n    config_file: tasks/csv.yaml\n  report:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [laod]\n", "workflows/w.yaml:9:18: task \"report\" depends on unknown task \"laod\"; did you mean \"load\"? defined tasks: load, report"},
		{"unknown dependency", nil, "name: w\ntasks:\n  load:\n    executor: csv\n    config_file: tasks/csv.yaml\n  report:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [extract]\n", "workflows/w.yaml:9:18: task \"report\" depends on unknown task \"extract\"; defined tasks: load, report"},
		{"self dependency", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [a]\n", "workflows/w.yaml:6:18: task \"a\" depends on itself; remove \"a\" from its depends_on"},
		{"duplicate dependency", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [a, a]\n", "workflows/w.yaml:9:21: task \"b\" lists dependency \"a\" twice; remove the duplicate"},
		{"timeout invalid", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    timeout: soon\n", "workflows/w.yaml:6:14: invalid timeout \"soon\" in task \"a\"; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"timeout without unit", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    timeout: 30\n", "workflows/w.yaml:6:14: invalid timeout in task \"a\": expected a duration, got an integer (30) without a unit; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"timeout zero", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    timeout: 0s\n", "workflows/w.yaml:6:14: timeout \"0s\" in task \"a\" is not positive; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"config_file missing", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/nope.yaml\n", "workflows/w.yaml:5:18: config_file tasks/nope.yaml of task \"a\" does not exist; create it or fix the path (paths are relative to the project root)"},
		{"config_file is a directory", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/dir\n", "workflows/w.yaml:5:18: config_file tasks/dir of task \"a\" is a directory; config_file must name a file"},
		{"config_file escapes root", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: ../tasks/load.yaml\n", "workflows/w.yaml:5:18: config_file \"../tasks/load.yaml\" of task \"a\" points outside the project root; move the file into the project and use a path relative to the project root"},
		{"config_file in .ork", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: .ork/load.yaml\n", "workflows/w.yaml:5:18: config_file \".ork/load.yaml\" of task \"a\" is inside .ork, which no task can see (ork keeps run records and databases there); keep task files elsewhere in the project"},
		{"config_file under tmp", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tmp/load.yaml\n", "workflows/w.yaml:5:18: config_file \"tmp/load.yaml\" of task \"a\" is under tmp/, where a task sees its own scratch directory (/tmp) instead; move the file elsewhere in the project"},
		{"config_file under output", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: ./output/x/load.yaml\n", "workflows/w.yaml:5:18: config_file \"./output/x/load.yaml\" of task \"a\" is under output/, where a task sees its own output directory (/output) instead; move the file elsewhere in the project"},
		{"config_file absolute", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: /etc/passwd\n", "workflows/w.yaml:5:18: config_file \"/etc/passwd\" of task \"a\" is absolute; use a path relative to the project root"},
		{"config_file is a number", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: 7\n", "workflows/w.yaml:5:18: invalid config_file of task \"a\": expected a string, got an integer (7); quote it if you mean the text \"7\""},
		{"built-in rust without config_file", nil, "name: w\ntasks:\n  a:\n    executor: rust\n", "workflows/w.yaml:3:3: task \"a\" has no config_file; tasks of the built-in rust executor need one naming the crate or .wasm module to run"},
		{"built-in python without config_file", nil, "name: w\ntasks:\n  a:\n    executor: python\n", "workflows/w.yaml:3:3: task \"a\" has no config_file; tasks of the built-in python executor need one naming the Python file to run"},
		{"crate executor without config_file", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    timeout: 1m\n", "workflows/w.yaml:3:3: task \"a\" has no config_file; executor \"csv\" (a Rust executor crate) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root"},
		{"module executor without config_file", nil, "name: w\ntasks:\n  first: {executor: hello}\n", "workflows/w.yaml:3:3: task \"first\" has no config_file; executor \"hello\" (a .wasm executor module) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root"},
		{"python class executor without config_file", map[string]string{"ork.yaml": "executors:\n  tx:\n    type: etl.steps:Transform\n", "etl/steps.py": "class Transform:\n    pass\n"}, "name: w\ntasks:\n  a:\n    executor: tx\n    config_file: tasks/csv.yaml\n  b:\n    executor: tx\n    depends_on: [a]\n", "workflows/w.yaml:6:3: task \"b\" has no config_file; executor \"tx\" (a Python executor class) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root"},
		{"built-in with misspelt config_file", nil, "name: w\ntasks:\n  a:\n    executor: rust\n    config: tasks/load.yaml\n", "workflows/w.yaml:5:5: unknown key \"config\" in task \"a\"; did you mean \"config_file\"? allowed keys: executor, config_file, depends_on, timeout, retries"},
		{"cycle", nil, "name: w\ntasks:\n  x:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [c]\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [b]\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [c]\n  c:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [a]\n", "workflows/w.yaml:7:3: dependency cycle: a -> b -> c -> a (each task depends on the next); remove one of these depends_on entries"},
		{"two-task cycle", nil, "name: w\ntasks:\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [a]\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [b]\n", "workflows/w.yaml:3:3: dependency cycle: b -> a -> b (each task depends on the next); remove one of these depends_on entries"},
		{"only one of two cycles", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [b]\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [a]\n  c:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [d]\n  d:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [c]\n", "workflows/w.yaml:3:3: dependency cycle: a -> b -> a (each task depends on the next); remove one of these depends_on entries"},
		{"no cycle check while other errors", nil, "name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [b]\n  b:\n    executor: nope\n    depends_on: [a]\n", "workflows/w.yaml:8:15: unknown executor \"nope\" in task \"b\"; defined executors: csv, hello, python, rust (define new ones under executors: in ork.yaml)"},
		{"several errors sorted by position", nil, "name: w w\ntasks:\n  a:\n    executor: nope\n    depends_on: [z]\n  b:\n    timeout: 5\n", "workflows/w.yaml:1:7: invalid workflow name \"w w\"; use letters, digits, \"_\", \".\" and \"-\"\nworkflows/w.yaml:4:15: unknown executor \"nope\" in task \"a\"; defined executors: csv, hello, python, rust (define new ones under executors: in ork.yaml)\nworkflows/w.yaml:5:18: task \"a\" depends on unknown task \"z\"; defined tasks: a, b\nworkflows/w.yaml:6:3: task \"b\" has no executor; add executor: with one of csv, hello, python, rust\nworkflows/w.yaml:7:14: invalid timeout in task \"b\": expected a duration, got an integer (5) without a unit; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		// Task configs of built-in executors.
		{"rust config empty", map[string]string{"tasks/x.yaml": ""}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: the rust task config is empty; add crate: path/to/crate or module: path/to/task.wasm"},
		{"rust config syntax error", map[string]string{"tasks/x.yaml": "crate: [crates/load\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: invalid YAML: did not find expected ',' or ']'; check the indentation, quoting and brackets here"},
		{"rust config is a list", map[string]string{"tasks/x.yaml": "- crates/load\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: invalid rust task config: expected a mapping with the keys crate, module, params, got a list"},
		{"rust config unknown key", map[string]string{"tasks/x.yaml": "crate: crates/load\nfile: x.py\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:2:1: unknown key \"file\" in the rust task config; allowed keys: crate, module, params"},
		{"rust config misspelt key", map[string]string{"tasks/x.yaml": "crates: crates/load\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: unknown key \"crates\" in the rust task config; did you mean \"crate\"? allowed keys: crate, module, params"},
		{"rust config neither crate nor module", map[string]string{"tasks/x.yaml": "params: {a: 1}\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: the rust task config sets neither crate nor module; add crate: path/to/crate or module: path/to/task.wasm"},
		{"rust config both crate and module", map[string]string{"tasks/x.yaml": "crate: crates/load\nmodule: build/hello.wasm\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:2:1: the rust task config sets both crate and module; keep only one of them"},
		{"rust config crate missing", map[string]string{"tasks/x.yaml": "crate: crates/nope\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:8: crate crates/nope of the rust task config does not exist; create it or fix the path (paths are relative to the project root)"},
		{"rust config crate without Cargo.toml", map[string]string{"tasks/x.yaml": "crate: crates/nocargo\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:8: crate directory crates/nocargo of the rust task config has no Cargo.toml; point crate at a directory holding Cargo.toml"},
		{"rust config crate is a file", map[string]string{"tasks/x.yaml": "crate: tasks/load.yaml\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:8: crate tasks/load.yaml of the rust task config is not a directory; crate must name a directory holding Cargo.toml"},
		{"rust config crate escapes root", map[string]string{"tasks/x.yaml": "crate: ../crates/load\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:8: crate \"../crates/load\" of the rust task config points outside the project root; move the file into the project and use a path relative to the project root"},
		{"rust config module not wasm", map[string]string{"tasks/x.yaml": "module: tasks/report.py\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:9: module tasks/report.py of the rust task config is not a .wasm file; module must name a compiled .wasm file (use crate: for a crate directory)"},
		{"rust config module missing", map[string]string{"tasks/x.yaml": "module: build/nope.wasm\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:9: module build/nope.wasm of the rust task config does not exist; create it or fix the path (paths are relative to the project root)"},
		{"rust config params not JSON", map[string]string{"tasks/x.yaml": "crate: crates/load\nparams:\n  ratio: .nan\n  true: yes\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:3:10: .nan in params of the rust task config is not a finite number, which JSON can't hold; quote it if you mean the text \".nan\"\ntasks/x.yaml:4:3: invalid key in params of the rust task config: expected a string, got a boolean (true); JSON objects only have string keys, so quote it: \"true\""},
		{"python config without file", map[string]string{"tasks/x.yaml": "function: main\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:1: the python task config has no file; add file: path/to/task.py"},
		{"python config file missing", map[string]string{"tasks/x.yaml": "file: tasks/nope.py\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:7: file tasks/nope.py of the python task config does not exist; create it or fix the path (paths are relative to the project root)"},
		{"python config file is a directory", map[string]string{"tasks/x.yaml": "file: tasks/dir\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:7: file tasks/dir of the python task config is a directory; file must name a file"},
		{"python config invalid function", map[string]string{"tasks/x.yaml": "file: tasks/report.py\nfunction: run-it\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:2:11: invalid function \"run-it\" in the python task config; give the name of a Python function, e.g. run"},
		{"python config function is a list", map[string]string{"tasks/x.yaml": "file: tasks/report.py\nfunction: [run]\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:2:11: invalid function of the python task config: expected a string, got a list; give the name of a Python function, e.g. run"},
		{"python config unknown key", map[string]string{"tasks/x.yaml": "file: tasks/report.py\nfunc: main\n"}, "name: w\ntasks:\n  a:\n    executor: python\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:2:1: unknown key \"func\" in the python task config; did you mean \"function\"? allowed keys: file, function, params"},
		{"errors in workflow and task config", map[string]string{"tasks/x.yaml": "crate: crates/load\nparam: {}\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n  b:\n    executor: csv\n    config_file: tasks/csv.yaml\n    depends_on: [c]\n", "workflows/w.yaml:9:18: task \"b\" depends on unknown task \"c\"; defined tasks: a, b\ntasks/x.yaml:2:1: unknown key \"param\" in the rust task config; did you mean \"params\"? allowed keys: crate, module, params"},
		{"shared broken task config reported once", map[string]string{"tasks/x.yaml": "crate: crates/nope\n"}, "name: w\ntasks:\n  a:\n    executor: rust\n    config_file: tasks/x.yaml\n  b:\n    executor: rust\n    config_file: tasks/x.yaml\n", "tasks/x.yaml:1:8: crate crates/nope of the rust task config does not exist; create it or fix the path (paths are relative to the project root)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, merge(workflowFiles, tt.files, map[string]string{"workflows/w.yaml": tt.workflow}))
			p := mustLoad(t, root)
			_, err := p.LoadWorkflow(filepath.Join(root, "workflows", "w.yaml"))
			if os.Getenv("ORK_DUMP") != "" {
				t.Logf("DUMP %q", err)
				return
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestWorkflowMergeKeys(t *testing.T) {
	root := writeFiles(t, merge(workflowFiles, map[string]string{"workflows/w.yaml": `name: w
tasks:
  a: &base
    executor: csv
    config_file: tasks/csv.yaml
    timeout: 1m
  b:
    <<: *base
    depends_on: [a]
  c:
    <<: [{config_file: tasks/load.yaml}, *base]
    timeout: 2m
`}))
	p := mustLoad(t, root)
	w, err := p.LoadWorkflow(filepath.Join(root, "workflows", "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, c := w.Tasks["b"], w.Tasks["c"]
	if b.Executor != "csv" || b.Timeout != time.Minute || len(b.DependsOn) != 1 || b.ConfigFile != "tasks/csv.yaml" {
		t.Errorf("b = %+v", b)
	}
	if c.Executor != "csv" || c.Timeout != 2*time.Minute || c.ConfigFile != "tasks/load.yaml" {
		t.Errorf("c = %+v", c)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(w.Order, want) {
		t.Errorf("Order = %q", w.Order)
	}

	for _, tt := range []struct{ workflow, want string }{
		{"name: w\ntasks:\n  a:\n    <<: csv\n", "workflows/w.yaml:3:3: task \"a\" has no executor; add executor: with one of csv, hello, python, rust\nworkflows/w.yaml:4:9: invalid merge (<<) in task \"a\": expected a mapping or a list of mappings, got a string (\"csv\")"},
		{"name: w\ntasks:\n  a: &x\n    executor: csv\n    config_file: tasks/csv.yaml\n    <<: *x\n", "workflows/w.yaml:6:9: merge keys (<<) in task \"a\" are nested too deeply or refer to themselves; write the keys out"},
		{"name: w\ntasks:\n  a:\n    executor: csv\n    config_file: tasks/csv.yaml\n  b:\n    <<: {executor: csv, config_file: tasks/csv.yaml, retry: 1}\n", "workflows/w.yaml:7:54: unknown key \"retry\" in task \"b\"; allowed keys: executor, config_file, depends_on, timeout, retries"},
	} {
		root := writeFiles(t, merge(workflowFiles, map[string]string{"workflows/w.yaml": tt.workflow}))
		_, err := mustLoad(t, root).LoadWorkflow(filepath.Join(root, "workflows", "w.yaml"))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.workflow, err)
			}
			continue
		}
		checkErr(t, err, tt.want)
	}
}

func TestConfigAliasBomb(t *testing.T) {
	y := "executors:\n  x:\n    type: rust\n    config:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i <= 9; i++ {
		y += fmt.Sprintf("      a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	root := writeFiles(t, map[string]string{"ork.yaml": y})
	start := time.Now()
	_, err := Load(root)
	checkErr(t, err, "ork.yaml:5:7: config of executor \"x\" is too large: it expands to more than 1048576 values through aliases; simplify it")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
