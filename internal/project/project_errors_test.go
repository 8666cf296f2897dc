package project

import (
	"os"
	"testing"
)

// projectFiles are present in every Load test project.
var projectFiles = map[string]string{
	"executors/csv/Cargo.toml": "[package]\nname = \"csv\"\n",
	"executors/nocargo/":       "",
	"build/hello.wasm":         "\x00asm",
	"build/dir.wasm/":          "",
	"data/":                    "",
	"notes.txt":                "",
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, ork, want string
	}{
		{"syntax error", "executors:\n  csv:\n    type: rust\n   bad: 1\n", "ork.yaml:4:4: invalid YAML: did not find expected key; check the indentation, quoting and brackets here"},
		{"syntax error first line", "executors: a: b\n", "ork.yaml:1:1: invalid YAML: mapping values are not allowed in this context; check the indentation, quoting and brackets here"},
		{"unclosed flow sequence", "executors:\n  csv:\n    type: rust\n    sandbox:\n      env: [TZ,\n", "ork.yaml:5:7: invalid YAML: did not find expected node content; check the indentation, quoting and brackets here"},
		{"tab indentation", "executors:\n\tcsv: {type: rust}\n", "ork.yaml:2:1: invalid YAML: found character that cannot start any token; check the indentation, quoting and brackets here"},
		{"unknown anchor", "executors:\n  csv:\n    type: rust\n    config: *nope\n", "ork.yaml:4:13: invalid YAML: alias *nope refers to an unknown anchor; define it with &nope before using it"},
		{"control character", "executors:\n  csv:\n    type: ru\x01st\n", "ork.yaml:3:13: invalid YAML: control characters are not allowed; check the indentation, quoting and brackets here"},
		{"second document", "executors: {}\n---\nexecutors: {}\n", "ork.yaml:2:1: a second YAML document starts here; keep everything in one document and remove the extra \"---\""},
		{"root is a list", "- executors\n", "ork.yaml:1:1: invalid ork.yaml: expected a mapping with the key executors, got a list"},
		{"python path not a directory", "python:\n  path: [vendor]\n", "ork.yaml:2:10: python path entry vendor is not a directory of the project; create it (e.g. with `ork python install --target vendor`) or remove it"},
		{"python path outside", "python:\n  path: [../x]\n", "ork.yaml:2:10: python path entry ../x points outside the project root; move the file into the project and use a path relative to the project root"},
		{"python unknown key", "python:\n  paths: [data]\n", "ork.yaml:2:3: unknown key \"paths\" in python; did you mean \"path\"? allowed keys: path"},
		{"unknown engine", "engine: v8\n", "ork.yaml:1:9: unknown engine \"v8\" in ork.yaml; use wazero or wasmtime"},
		{"unknown executor engine", "executors:\n  csv:\n    type: rust\n    engine: wasmer\n", "ork.yaml:4:13: unknown engine \"wasmer\" of executor \"csv\"; use wazero or wasmtime"},
		{"engine is a list", "engine: [wazero]\n", "ork.yaml:1:9: invalid engine in ork.yaml: expected a string, got a list; use wazero or wasmtime"},
		{"cpu not a number", "executors:\n  csv:\n    type: rust\n    sandbox: {cpu: lots}\n", "ork.yaml:4:20: invalid sandbox cpu \"lots\" for executor \"csv\"; write a number of fuel units (about one per WebAssembly instruction), optionally with K, M, G or T, e.g. \"20G\""},
		{"cpu zero", "executors:\n  csv:\n    type: rust\n    sandbox: {cpu: 0}\n", "ork.yaml:4:20: invalid sandbox cpu \"0\" for executor \"csv\"; write a number of fuel units (about one per WebAssembly instruction), optionally with K, M, G or T, e.g. \"20G\""},
		{"cpu on wazero", "engine: wazero\nexecutors:\n  csv:\n    type: rust\n    sandbox: {cpu: 5G}\n", "ork.yaml:5:20: sandbox cpu for executor \"csv\" needs the wasmtime engine, but it runs on wazero, which enforces wall time (sandbox.timeout) only; set engine: wasmtime on the executor or remove sandbox.cpu"},
		{"unknown top-level key", "executor:\n  csv: {type: rust}\n", "ork.yaml:1:1: unknown key \"executor\" at the top level of ork.yaml; did you mean \"executors\"? allowed keys: executors, python, telemetry, secrets, connections, engine"},
		{"executors is a list", "executors: [csv]\n", "ork.yaml:1:12: invalid executors in ork.yaml: expected a mapping of executor names to executors, got a list"},
		{"duplicate executor", "executors:\n  csv:\n    type: rust\n  csv:\n    type: python\n", "ork.yaml:4:3: duplicate executor \"csv\" in executors; it is already defined at line 2, so remove or rename one of them"},
		{"invalid executor name", "executors:\n  my exec:\n    type: rust\n", "ork.yaml:2:3: invalid executor name \"my exec\": use letters, digits, \"_\" and \"-\", starting with a letter or \"_\""},
		{"executor is a string", "executors:\n  csv: rust\n", "ork.yaml:2:8: invalid executor \"csv\": expected a mapping with the keys type, config, sandbox, retries, engine, got a string (\"rust\")"},
		{"executor is null", "executors:\n  csv:\n", "ork.yaml:2:3: executor \"csv\" has no type; add type: with one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"missing type", "executors:\n  csv:\n    config: {a: 1}\n", "ork.yaml:2:3: executor \"csv\" has no type; add type: with one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"unknown executor key", "executors:\n  csv:\n    type: rust\n    sandbx: {}\n", "ork.yaml:4:5: unknown key \"sandbx\" in executor \"csv\"; did you mean \"sandbox\"? allowed keys: type, config, sandbox, retries, engine"},
		{"unknown executor key without suggestion", "executors:\n  csv:\n    type: rust\n    image: ubuntu\n", "ork.yaml:4:5: unknown key \"image\" in executor \"csv\"; allowed keys: type, config, sandbox, retries, engine"},
		{"duplicate executor key", "executors:\n  csv:\n    type: rust\n    type: python\n", "ork.yaml:4:5: duplicate key \"type\" in executor \"csv\"; it is already defined at line 3, so remove or rename one of them"},
		{"type is an integer", "executors:\n  csv:\n    type: 3\n", "ork.yaml:3:11: invalid type of executor \"csv\": expected a string, got an integer (3); quote it if you mean the text \"3\""},
		{"type is a list", "executors:\n  csv:\n    type: [rust]\n", "ork.yaml:3:11: invalid type of executor \"csv\": expected a string, got a list; use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type is empty", "executors:\n  csv:\n    type: \"\"\n", "ork.yaml:3:11: empty type of executor \"csv\"; use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type is null", "executors:\n  csv:\n    type:\n", "ork.yaml:3:10: missing value for type of executor \"csv\"; use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type does not exist", "executors:\n  csv:\n    type: executors/nope\n", "ork.yaml:3:11: type \"executors/nope\" of executor \"csv\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (executors/nope does not exist); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type misspelt built-in", "executors:\n  csv:\n    type: rsut\n", "ork.yaml:3:11: type \"rsut\" of executor \"csv\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (rsut does not exist; did you mean \"rust\"?); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type directory without Cargo.toml", "executors:\n  csv:\n    type: executors/nocargo\n", "ork.yaml:3:11: type \"executors/nocargo\" of executor \"csv\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (directory executors/nocargo has no Cargo.toml); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type is a plain file", "executors:\n  csv:\n    type: notes.txt\n", "ork.yaml:3:11: type \"notes.txt\" of executor \"csv\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (notes.txt is a file without the .wasm extension); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type invalid python class", "executors:\n  csv:\n    type: my-mod:Thing\n", "ork.yaml:3:11: type \"my-mod:Thing\" of executor \"csv\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (it is not a valid module.path:ClassName and my-mod:Thing does not exist); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)"},
		{"type module missing", "executors:\n  csv:\n    type: build/nope.wasm\n", "ork.yaml:3:11: module build/nope.wasm of executor \"csv\" does not exist; build it or fix the path (paths are relative to the project root)"},
		{"type module is a directory", "executors:\n  csv:\n    type: build/dir.wasm\n", "ork.yaml:3:11: module build/dir.wasm of executor \"csv\" is a directory; type must name a .wasm file"},
		{"type escapes root", "executors:\n  csv:\n    type: ../other/x.wasm\n", "ork.yaml:3:11: type \"../other/x.wasm\" of executor \"csv\" points outside the project root; move the file into the project and use a path relative to the project root"},
		{"type escapes root after cleaning", "executors:\n  csv:\n    type: executors/../../csv\n", "ork.yaml:3:11: type \"executors/../../csv\" of executor \"csv\" points outside the project root; move the file into the project and use a path relative to the project root"},
		{"type absolute", "executors:\n  csv:\n    type: /opt/csv.wasm\n", "ork.yaml:3:11: type \"/opt/csv.wasm\" of executor \"csv\" is absolute; use a path relative to the project root"},
		{"config with integer key", "executors:\n  csv:\n    type: rust\n    config:\n      1: one\n", "ork.yaml:5:7: invalid key in config of executor \"csv\": expected a string, got an integer (1); JSON objects only have string keys, so quote it: \"1\""},
		{"config with list key", "executors:\n  csv:\n    type: rust\n    config:\n      ? [a]\n      : one\n", "ork.yaml:5:9: invalid key in config of executor \"csv\": expected a string, got a list; JSON objects only have string keys, so use a string key"},
		{"config with infinity", "executors:\n  csv:\n    type: rust\n    config:\n      limit: .inf\n", "ork.yaml:5:14: .inf in config of executor \"csv\" is not a finite number, which JSON can't hold; quote it if you mean the text \".inf\""},
		{"config with NaN in a list", "executors:\n  csv:\n    type: rust\n    config:\n      xs: [1, .nan]\n", "ork.yaml:5:15: .nan in config of executor \"csv\" is not a finite number, which JSON can't hold; quote it if you mean the text \".nan\""},
		{"config with duplicate key", "executors:\n  csv:\n    type: rust\n    config:\n      a: 1\n      b: 2\n      a: 3\n", "ork.yaml:7:7: duplicate key \"a\" in config of executor \"csv\"; it is already defined at line 5, so remove or rename one of them"},
		{"config with custom tag", "executors:\n  csv:\n    type: rust\n    config:\n      a: !secret x\n", "ork.yaml:5:10: unsupported YAML tag !secret in config of executor \"csv\"; remove the tag or quote the value"},
		{"config with binary", "executors:\n  csv:\n    type: rust\n    config:\n      a: !!binary aGVsbG8=\n", "ork.yaml:5:10: binary value in config of executor \"csv\" can't be represented in JSON; remove the !!binary tag to keep the base64 text as a string"},
		{"config with huge integer", "executors:\n  csv:\n    type: rust\n    config:\n      a: 18446744073709551615\n", "ork.yaml:5:10: integer 18446744073709551615 in config of executor \"csv\" is out of range; use a value between -9223372036854775808 and 9223372036854775807 or quote it"},
		{"config with recursive alias", "executors:\n  csv:\n    type: rust\n    config: &c\n      self: *c\n", "ork.yaml:5:13: alias *c in config of executor \"csv\" refers to a value that contains it; JSON can't hold recursive values, so remove the alias"},
		{"sandbox is a list", "executors:\n  csv:\n    type: rust\n    sandbox: [memory]\n", "ork.yaml:4:14: invalid sandbox of executor \"csv\": expected a mapping with the keys memory, timeout, mounts, env, max_concurrency, allowed_hosts, secrets, connections, cpu, got a list"},
		{"unknown sandbox key", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mem: 1GiB\n", "ork.yaml:5:7: unknown key \"mem\" in the sandbox of executor \"csv\"; did you mean \"memory\"? allowed keys: memory, timeout, mounts, env, max_concurrency, allowed_hosts, secrets, connections, cpu"},
		{"memory without known unit", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: 512M\n", "ork.yaml:5:15: invalid sandbox memory \"512M\" for executor \"csv\"; write an integer with one of the units B, KiB, MiB, GiB, KB, MB, GB, e.g. \"512MiB\""},
		{"memory too small", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: 512KiB\n", "ork.yaml:5:15: sandbox memory 512KiB for executor \"csv\" is outside the allowed range; use a size between 1MiB and 4GiB"},
		{"memory too large", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: 5GiB\n", "ork.yaml:5:15: sandbox memory 5GiB for executor \"csv\" is outside the allowed range; use a size between 1MiB and 4GiB"},
		{"memory bare integer too small", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: 1024\n", "ork.yaml:5:15: sandbox memory 1024 for executor \"csv\" is outside the allowed range; use a size between 1MiB and 4GiB"},
		{"memory negative", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: -1\n", "ork.yaml:5:15: invalid sandbox memory -1 for executor \"csv\"; write a positive number of bytes or a size such as \"512MiB\""},
		{"memory is a boolean", "executors:\n  csv:\n    type: rust\n    sandbox:\n      memory: true\n", "ork.yaml:5:15: invalid sandbox memory for executor \"csv\": expected a size such as \"512MiB\", got a boolean (true)"},
		{"timeout without unit", "executors:\n  csv:\n    type: rust\n    sandbox:\n      timeout: 30\n", "ork.yaml:5:16: invalid sandbox timeout for executor \"csv\": expected a duration, got an integer (30) without a unit; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"timeout invalid", "executors:\n  csv:\n    type: rust\n    sandbox:\n      timeout: 2 minutes\n", "ork.yaml:5:16: invalid sandbox timeout \"2 minutes\" for executor \"csv\"; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"timeout zero", "executors:\n  csv:\n    type: rust\n    sandbox:\n      timeout: 0s\n", "ork.yaml:5:16: sandbox timeout \"0s\" for executor \"csv\" is not positive; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"timeout negative", "executors:\n  csv:\n    type: rust\n    sandbox:\n      timeout: -5s\n", "ork.yaml:5:16: sandbox timeout \"-5s\" for executor \"csv\" is not positive; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\""},
		{"mounts is a mapping", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts: {host: data, guest: /data}\n", "ork.yaml:5:15: invalid sandbox mounts of executor \"csv\": expected a list of mappings with the keys host, guest, got a mapping"},
		{"mount is a string", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts: [data]\n", "ork.yaml:5:16: invalid mount 1 of executor \"csv\": expected a mapping with the keys host, guest, got a string (\"data\")"},
		{"mount unknown key", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - hots: data\n          guest: /data\n", "ork.yaml:6:11: unknown key \"hots\" in mount 1 of executor \"csv\"; did you mean \"host\"? allowed keys: host, guest"},
		{"mount missing guest", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n", "ork.yaml:6:11: mount 1 of executor \"csv\" has no guest; add guest: with the absolute path it appears at in the sandbox"},
		{"mount host missing", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: ../nope\n          guest: /data\n", "ork.yaml:6:17: host directory ../nope of mount 1 of executor \"csv\" does not exist; create it or fix the path (relative paths are relative to the project root)"},
		{"mount host is a file", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: notes.txt\n          guest: /data\n", "ork.yaml:6:17: host path notes.txt of mount 1 of executor \"csv\" is not a directory; mounts must name directories"},
		{"mount guest relative", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: data\n", "ork.yaml:7:18: guest path \"data\" of mount 1 of executor \"csv\" is not absolute; use an absolute path such as /data"},
		{"mount guest root", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: /\n", "ork.yaml:7:18: guest path \"/\" of mount 1 of executor \"csv\" would hide the whole sandbox; mount below it, e.g. /data"},
		{"mount guest not clean", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: /data/../x/\n", "ork.yaml:7:18: guest path \"/data/../x/\" of mount 1 of executor \"csv\" is not clean; write it as \"/x\""},
		{"mount guest tmp", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: /tmp\n", "ork.yaml:7:18: guest path \"/tmp\" of mount 1 of executor \"csv\" is reserved (the sandbox uses /tmp); choose another path, e.g. /data"},
		{"mount guest under output", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: /output/data\n", "ork.yaml:7:18: guest path \"/output/data\" of mount 1 of executor \"csv\" is reserved (the sandbox uses /output); choose another path, e.g. /data"},
		{"mount guest duplicate", "executors:\n  csv:\n    type: rust\n    sandbox:\n      mounts:\n        - host: data\n          guest: /data\n        - host: executors\n          guest: /data\n", "ork.yaml:9:18: guest path \"/data\" of mount 2 of executor \"csv\" is already used by mount 1; give each mount its own guest path"},
		{"env is a string", "executors:\n  csv:\n    type: rust\n    sandbox:\n      env: TZ\n", "ork.yaml:5:12: invalid sandbox env of executor \"csv\": expected a list of environment variable names, got a string (\"TZ\")"},
		{"env invalid name", "executors:\n  csv:\n    type: rust\n    sandbox:\n      env: [TZ, 1LANG, MY-VAR]\n", "ork.yaml:5:17: invalid environment variable name \"1LANG\" in sandbox env of executor \"csv\"; use letters, digits and \"_\", not starting with a digit\nork.yaml:5:24: invalid environment variable name \"MY-VAR\" in sandbox env of executor \"csv\"; use letters, digits and \"_\", not starting with a digit"},
		{"env duplicate", "executors:\n  csv:\n    type: rust\n    sandbox:\n      env: [TZ, LANG, TZ]\n", "ork.yaml:5:23: environment variable \"TZ\" is listed twice in sandbox env of executor \"csv\"; remove the duplicate"},
		{"env entry is a number", "executors:\n  csv:\n    type: rust\n    sandbox:\n      env: [1]\n", "ork.yaml:5:13: invalid entry of sandbox env of executor \"csv\": expected a string, got an integer (1); quote it if you mean the text \"1\""},
		{"several errors sorted by position", "executors:\n  b:\n    type: nope\n    sandbox:\n      timeout: 1\n  a:\n    tpye: rust\n", "ork.yaml:3:11: type \"nope\" of executor \"b\" is neither a built-in, a module:Class, a .wasm file nor a crate directory (nope does not exist); use one of rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)\nork.yaml:5:16: invalid sandbox timeout for executor \"b\": expected a duration, got an integer (1) without a unit; write a duration with a unit, e.g. \"30s\", \"2m\" or \"1h30m\"\nork.yaml:7:5: unknown key \"tpye\" in executor \"a\"; did you mean \"type\"? allowed keys: type, config, sandbox, retries, engine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, merge(projectFiles, map[string]string{"ork.yaml": tt.ork}))
			_, err := Load(root)
			if os.Getenv("ORK_DUMP") != "" {
				t.Logf("DUMP %q", err)
				return
			}
			checkErr(t, err, tt.want)
		})
	}
}
