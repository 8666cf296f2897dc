package project

import (
	"container/heap"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Keys accepted in workflow files and built-in task configs.
var (
	workflowKeys     = []string{"name", "tasks"}
	taskKeys         = []string{"executor", "config_file", "depends_on", "timeout", "retries"}
	rustConfigKeys   = []string{"crate", "module", "params"}
	pythonConfigKeys = []string{"file", "function", "params"}
)

// DefaultPythonFunction is the function a built-in python task calls when
// its config does not name one.
const DefaultPythonFunction = "run"

// taskSrc keeps the nodes of a task needed for checks that run once every
// task is known.
type taskSrc struct {
	key        *yaml.Node
	executor   *yaml.Node   // nil when absent or invalid
	configFile *yaml.Node   // nil when absent or invalid
	hasConfig  bool         // config_file is present, valid or not
	deps       []*yaml.Node // parallel to Task.DependsOn
}

// LoadWorkflow reads and checks a workflow file. file is absolute or
// relative to the working directory. Besides the file itself it checks
// that every executor is defined, that config files exist, that the task
// configs of built-in executors decode, that dependencies exist and that
// there is no dependency cycle (only when everything else is fine).
func (p *Project) LoadWorkflow(file string) (*Workflow, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot resolve workflow path %s: %v", file, err)}
	}
	rel := p.Rel(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Msg: fmt.Sprintf("workflow file %s does not exist; check the path", file)}
		}
		if fi, serr := os.Stat(abs); serr == nil && fi.IsDir() {
			return nil, &Error{Pos: Pos{File: rel}, Msg: "is a directory; pass the path of a workflow file"}
		}
		return nil, &Error{Pos: Pos{File: rel}, Msg: fmt.Sprintf("cannot read the workflow file: %v", errors.Unwrap(err))}
	}
	node, err := parseYAML(rel, data)
	if err != nil {
		return nil, err
	}
	if node == nil {
		return nil, &Error{Pos: Pos{File: rel, Line: 1, Column: 1}, Msg: "the workflow file is empty; add name: and tasks:"}
	}
	c := newCollector(rel)
	d := &fileDecoder{file: rel, c: c}
	if !d.mapping(node, "workflow", "a mapping with the keys name, tasks", false) {
		return nil, c.err()
	}
	w := &Workflow{File: abs, Rel: rel, Tasks: map[string]*Task{}}
	srcs := map[string]*taskSrc{}
	kvs, covered := d.fields(node, "at the top level of the workflow", workflowKeys)
	for _, f := range kvs {
		switch f.Name {
		case "name":
			const hint = `use letters, digits, "_", "." and "-"`
			if name, ok := d.str(f.Value, "workflow name", hint); ok {
				if workflowNameRe.MatchString(name) {
					w.Name = name
				} else {
					d.errorf(f.Value, "invalid workflow name %q; %s", name, hint)
				}
			}
		case "tasks":
			p.decodeTasks(d, w, srcs, f)
		}
	}
	if !covered["name"] {
		d.errorf(node, "the workflow has no name; add name: with letters, digits, \"_\", \".\" and \"-\"")
	}
	if !covered["tasks"] {
		d.errorf(node, "the workflow has no tasks; add tasks: with at least one task")
	}
	for _, name := range w.Order {
		p.checkTask(d, w, w.Tasks[name], srcs[name])
	}
	if c.empty() {
		if cycle := findCycle(w); cycle != nil {
			d.errorf(srcs[cycle[0]].key, "dependency cycle: %s (each task depends on the next); remove one of these depends_on entries",
				strings.Join(cycle, " -> "))
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return w, nil
}

func (p *Project) decodeTasks(d *fileDecoder, w *Workflow, srcs map[string]*taskSrc, f pair) {
	const noTasks = "the workflow has no tasks; add at least one task under tasks:"
	if isNull(f.Value) {
		d.errorf(f.Key, noTasks)
		return
	}
	if !d.mapping(f.Value, "tasks", "a mapping of task names to tasks", false) {
		return
	}
	if len(deref(f.Value).Content) == 0 {
		d.errorf(f.Value, noTasks)
		return
	}
	for _, e := range d.pairs(f.Value, "task", "in tasks") {
		if !nameRe.MatchString(e.Name) {
			d.errorf(e.Key, "invalid task name %q: use letters, digits, \"_\" and \"-\", starting with a letter or \"_\"", e.Name)
		}
		t, src := p.decodeTask(d, e)
		w.Tasks[t.Name] = t
		w.Order = append(w.Order, t.Name)
		srcs[t.Name] = src
	}
}

func (p *Project) decodeTask(d *fileDecoder, e pair) (*Task, *taskSrc) {
	t := &Task{Name: e.Name, Pos: d.pos(e.Key)}
	src := &taskSrc{key: e.Key}
	missingExecutor := fmt.Sprintf("task %q has no executor; add executor: with one of %s", e.Name, strings.Join(p.executorNames(), ", "))
	if isNull(e.Value) {
		d.errorf(e.Key, "%s", missingExecutor)
		return t, src
	}
	if !d.mapping(e.Value, fmt.Sprintf("task %q", e.Name), "a mapping with the keys "+strings.Join(taskKeys, ", "), false) {
		return t, src
	}
	kvs, covered := d.fields(e.Value, fmt.Sprintf("in task %q", e.Name), taskKeys)
	for _, f := range kvs {
		switch f.Name {
		case "executor":
			if s, ok := d.str(f.Value, fmt.Sprintf("executor of task %q", e.Name), "use one of "+strings.Join(p.executorNames(), ", ")); ok {
				t.Executor, src.executor = s, f.Value
			}
		case "config_file":
			s, ok := d.str(f.Value, fmt.Sprintf("config_file of task %q", e.Name), "give a file path relative to the project root")
			if !ok {
				continue
			}
			clean, problem := cleanRel(s)
			if problem == "" {
				problem = hiddenFromTasks(clean)
			}
			if problem != "" {
				d.errorf(f.Value, "config_file %q of task %q %s", s, e.Name, problem)
				continue
			}
			t.ConfigFile, src.configFile = clean, f.Value
		case "depends_on":
			what := fmt.Sprintf("depends_on in task %q", e.Name)
			items, ok := d.sequence(f.Value, what, "a list of task names")
			if !ok {
				continue
			}
			seen := map[string]bool{}
			for _, item := range items {
				dep, ok := d.str(item, "entry of "+what, "give the name of a task")
				if !ok {
					continue
				}
				if seen[dep] {
					d.errorf(item, "task %q lists dependency %q twice; remove the duplicate", e.Name, dep)
					continue
				}
				seen[dep] = true
				t.DependsOn = append(t.DependsOn, dep)
				src.deps = append(src.deps, item)
			}
		case "timeout":
			d.duration(&t.Timeout, f.Value, "timeout", fmt.Sprintf("in task %q", e.Name))
		case "retries":
			t.Retries, _ = d.decodeRetries(f.Value, describeOwner("task", e.Name))
		}
	}
	src.hasConfig = covered["config_file"]
	if !covered["executor"] {
		d.errorf(e.Key, "%s", missingExecutor)
	}
	return t, src
}

// hiddenFromTasks says why a task could not read the project file rel (a
// clean, slash-separated relative path), or "" when it can.
func hiddenFromTasks(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	switch top {
	case ".ork":
		return "is inside .ork, which no task can see (ork keeps run records and databases there); keep task files elsewhere in the project"
	case "tmp", "output":
		return fmt.Sprintf("is under %s/, where a task sees its own %s directory (/%s) instead; move the file elsewhere in the project", top, map[string]string{"tmp": "scratch", "output": "output"}[top], top)
	}
	return ""
}

// checkTask runs the checks that need the project or the whole workflow.
func (p *Project) checkTask(d *fileDecoder, w *Workflow, t *Task, src *taskSrc) {
	for i, dep := range t.DependsOn {
		switch _, ok := w.Tasks[dep]; {
		case dep == t.Name:
			d.errorf(src.deps[i], "task %q depends on itself; remove %q from its depends_on", t.Name, dep)
		case !ok:
			d.errorf(src.deps[i], "task %q depends on unknown task %q%sdefined tasks: %s",
				t.Name, dep, suggestSep(dep, w.Order), strings.Join(w.Order, ", "))
		}
	}
	configOK := false
	if src.configFile != nil {
		fi, err := os.Stat(p.abs(t.ConfigFile))
		switch {
		case err != nil:
			d.errorf(src.configFile, "config_file %s of task %q does not exist; create it or fix the path (paths are relative to the project root)", t.ConfigFile, t.Name)
		case fi.IsDir():
			d.errorf(src.configFile, "config_file %s of task %q is a directory; config_file must name a file", t.ConfigFile, t.Name)
		default:
			configOK = true
		}
	}
	if src.executor == nil {
		return // missing or invalid, already reported
	}
	e, ok := p.Executors[t.Executor]
	if !ok {
		d.errorf(src.executor, "unknown executor %q in task %q%sdefined executors: %s (define new ones under executors: in ork.yaml)",
			t.Executor, t.Name, suggestSep(t.Executor, p.executorNames()), strings.Join(p.executorNames(), ", "))
		return
	}
	if !isBuiltin(e) {
		if !src.hasConfig {
			d.errorf(src.key, "task %q has no config_file; executor %q (%s) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root",
				t.Name, e.Name, customKind(e))
		}
		return
	}
	switch {
	case !src.hasConfig:
		d.errorf(src.key, "%s", missingConfigFile(t, e))
	case configOK:
		_, err := p.LoadTaskConfig(t)
		d.c.addErr(err)
	}
}

// customKind names what a custom executor's type makes it.
func customKind(e *Executor) string {
	switch e.Kind {
	case KindPythonClass:
		return "a Python executor class"
	case KindModule:
		return "a .wasm executor module"
	case KindCrate:
		return "a Rust executor crate"
	}
	return "a custom executor"
}

func isBuiltin(e *Executor) bool {
	return e.Kind == KindBuiltinRust || e.Kind == KindBuiltinPython
}

func missingConfigFile(t *Task, e *Executor) string {
	what := "the Python file to run"
	if e.Kind == KindBuiltinRust {
		what = "the crate or .wasm module to run"
	}
	return fmt.Sprintf("task %q has no config_file; tasks of the built-in %s executor need one naming %s", t.Name, builtinName(e), what)
}

func builtinName(e *Executor) string {
	if e.Kind == KindBuiltinRust {
		return "rust"
	}
	return "python"
}

// LoadTaskConfig reads and checks the config file of a task whose executor
// is a built-in (rust or python).
func (p *Project) LoadTaskConfig(t *Task) (*BuiltinTaskConfig, error) {
	e, ok := p.Executors[t.Executor]
	if !ok {
		return nil, &Error{Pos: t.Pos, Msg: fmt.Sprintf("unknown executor %q in task %q; defined executors: %s",
			t.Executor, t.Name, strings.Join(p.executorNames(), ", "))}
	}
	if !isBuiltin(e) {
		return nil, &Error{Pos: t.Pos, Msg: fmt.Sprintf("task %q uses executor %q, which is not a built-in; its config_file is passed to the executor as is, so do not decode it with ork",
			t.Name, t.Executor)}
	}
	if t.ConfigFile == "" {
		return nil, &Error{Pos: t.Pos, Msg: missingConfigFile(t, e)}
	}
	abs := p.abs(t.ConfigFile)
	rel := p.Rel(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Pos: t.Pos, Msg: fmt.Sprintf("config_file %s of task %q does not exist; create it or fix the path (paths are relative to the project root)", t.ConfigFile, t.Name)}
		}
		return nil, &Error{Pos: Pos{File: rel}, Msg: fmt.Sprintf("cannot read the config file of task %q: %v", t.Name, errors.Unwrap(err))}
	}
	node, err := parseYAML(rel, data)
	if err != nil {
		return nil, err
	}
	c := newCollector(rel)
	d := &fileDecoder{file: rel, c: c}
	cfg := &BuiltinTaskConfig{}
	var need string
	if e.Kind == KindBuiltinRust {
		need = "add crate: path/to/crate or module: path/to/task.wasm"
		p.decodeRustConfig(d, node, cfg, need)
	} else {
		need = "add file: path/to/task.py"
		p.decodePythonConfig(d, node, cfg, need)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (p *Project) decodeRustConfig(d *fileDecoder, node *yaml.Node, cfg *BuiltinTaskConfig, need string) {
	const what = "rust task config"
	if node == nil {
		d.errorf(nil, "the %s is empty; %s", what, need)
		return
	}
	if !d.mapping(node, what, "a mapping with the keys "+strings.Join(rustConfigKeys, ", "), false) {
		return
	}
	var crateKey, moduleKey *yaml.Node
	kvs, covered := d.fields(node, "in the "+what, rustConfigKeys)
	for _, f := range kvs {
		switch f.Name {
		case "crate":
			crateKey = f.Key
			if rel, ok := p.configPath(d, f.Value, "crate", what, "give the crate directory relative to the project root"); ok {
				fi, err := os.Stat(p.abs(rel))
				switch {
				case err != nil:
					d.errorf(f.Value, "crate %s of the %s does not exist; create it or fix the path (paths are relative to the project root)", rel, what)
				case !fi.IsDir():
					d.errorf(f.Value, "crate %s of the %s is not a directory; crate must name a directory holding Cargo.toml", rel, what)
				default:
					if cf, err := os.Stat(filepath.Join(p.abs(rel), "Cargo.toml")); err != nil || cf.IsDir() {
						d.errorf(f.Value, "crate directory %s of the %s has no Cargo.toml; point crate at a directory holding Cargo.toml", rel, what)
					} else {
						cfg.Crate = rel
					}
				}
			}
		case "module":
			moduleKey = f.Key
			if rel, ok := p.configPath(d, f.Value, "module", what, "give the .wasm file relative to the project root"); ok {
				if !strings.HasSuffix(rel, ".wasm") {
					d.errorf(f.Value, "module %s of the %s is not a .wasm file; module must name a compiled .wasm file (use crate: for a crate directory)", rel, what)
					continue
				}
				if p.checkFile(d, f.Value, "module", rel, what) {
					cfg.Module = rel
				}
			}
		case "params":
			cfg.Params, _ = d.freeform(f.Value, "params of the "+what)
		}
	}
	switch {
	case crateKey != nil && moduleKey != nil:
		later := moduleKey
		if crateKey.Line > moduleKey.Line || (crateKey.Line == moduleKey.Line && crateKey.Column > moduleKey.Column) {
			later = crateKey
		}
		d.errorf(later, "the %s sets both crate and module; keep only one of them", what)
	case !covered["crate"] && !covered["module"]:
		d.errorf(node, "the %s sets neither crate nor module; %s", what, need)
	}
}

func (p *Project) decodePythonConfig(d *fileDecoder, node *yaml.Node, cfg *BuiltinTaskConfig, need string) {
	const what = "python task config"
	if node == nil {
		d.errorf(nil, "the %s is empty; %s", what, need)
		return
	}
	if !d.mapping(node, what, "a mapping with the keys "+strings.Join(pythonConfigKeys, ", "), false) {
		return
	}
	cfg.Func = DefaultPythonFunction
	kvs, covered := d.fields(node, "in the "+what, pythonConfigKeys)
	for _, f := range kvs {
		switch f.Name {
		case "file":
			if rel, ok := p.configPath(d, f.Value, "file", what, "give the .py file relative to the project root"); ok {
				if p.checkFile(d, f.Value, "file", rel, what) {
					cfg.File = rel
				}
			}
		case "function":
			const hint = "give the name of a Python function, e.g. run"
			if fn, ok := d.str(f.Value, "function of the "+what, hint); ok {
				if identRe.MatchString(fn) {
					cfg.Func = fn
				} else {
					d.errorf(f.Value, "invalid function %q in the %s; %s", fn, what, hint)
				}
			}
		case "params":
			cfg.Params, _ = d.freeform(f.Value, "params of the "+what)
		}
	}
	if !covered["file"] {
		d.errorf(node, "the %s has no file; %s", what, need)
	}
}

// configPath reads a project-relative path from a task config.
func (p *Project) configPath(d *fileDecoder, n *yaml.Node, key, what, hint string) (string, bool) {
	s, ok := d.str(n, key+" of the "+what, hint)
	if !ok {
		return "", false
	}
	rel, problem := cleanRel(s)
	if problem != "" {
		d.errorf(n, "%s %q of the %s %s", key, s, what, problem)
		return "", false
	}
	return rel, true
}

// checkFile reports when rel is missing or not a regular file.
func (p *Project) checkFile(d *fileDecoder, n *yaml.Node, key, rel, what string) bool {
	fi, err := os.Stat(p.abs(rel))
	switch {
	case err != nil:
		d.errorf(n, "%s %s of the %s does not exist; create it or fix the path (paths are relative to the project root)", key, rel, what)
	case fi.IsDir():
		d.errorf(n, "%s %s of the %s is a directory; %s must name a file", key, rel, what, key)
	default:
		return true
	}
	return false
}

// findCycle returns one dependency cycle as task names, starting (and
// ending) with the cycle's task that comes first in the file, or nil.
// It is deterministic: tasks are visited in file order and dependencies
// in depends_on order.
func findCycle(w *Workflow) []string {
	index := make(map[string]int, len(w.Order))
	for i, n := range w.Order {
		index[n] = i
	}
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onStack
		stack = append(stack, n)
		for _, dep := range w.Tasks[n].DependsOn {
			if _, ok := w.Tasks[dep]; !ok {
				continue
			}
			switch state[dep] {
			case onStack:
				for i, s := range stack {
					if s == dep {
						return append([]string(nil), stack[i:]...)
					}
				}
			case unvisited:
				if c := visit(dep); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, n := range w.Order {
		if state[n] != unvisited {
			continue
		}
		if c := visit(n); c != nil {
			first := 0
			for i, s := range c {
				if index[s] < index[c[first]] {
					first = i
				}
			}
			out := append(append([]string(nil), c[first:]...), c[:first]...)
			return append(out, out[0])
		}
	}
	return nil
}

// TopoOrder returns the task names of w so that every task comes after
// its dependencies; among tasks whose dependencies are all placed, the one
// first in the file comes first. w must be acyclic (LoadWorkflow checks
// that); tasks on a cycle are left out.
func TopoOrder(w *Workflow) []string {
	index := make(map[string]int, len(w.Order))
	for i, n := range w.Order {
		index[n] = i
	}
	pending := make([]int, len(w.Order))      // unplaced dependencies per task
	dependents := make([][]int, len(w.Order)) // tasks waiting on each task
	for i, n := range w.Order {
		seen := map[string]bool{}
		for _, dep := range w.Tasks[n].DependsOn {
			j, ok := index[dep]
			if !ok || seen[dep] {
				continue
			}
			seen[dep] = true
			pending[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	ready := &intHeap{}
	for i := range w.Order {
		if pending[i] == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]string, 0, len(w.Order))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, w.Order[i])
		for _, j := range dependents[i] {
			if pending[j]--; pending[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	return out
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
