package project

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Names and patterns of the formats.
var (
	nameRe         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`) // task and executor names
	workflowNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	identRe        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) // env var names, python functions
	pyClassRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$`)
)

// Keys accepted in ork.yaml.
var (
	projectKeys  = []string{"executors", "python", "telemetry", "secrets", "connections", "engine"}
	pythonKeys   = []string{"path"}
	executorKeys = []string{"type", "config", "sandbox", "retries", "engine"}
	sandboxKeys  = []string{"memory", "timeout", "mounts", "env", "max_concurrency", "allowed_hosts", "secrets", "connections", "cpu"}
	mountKeys    = []string{"host", "guest"}
)

// Sandbox memory limits.
const (
	MinMemory uint64 = 1 << 20 // 1MiB
	MaxMemory uint64 = 4 << 30 // 4GiB
)

// reservedGuestPaths are used by the sandbox itself (scratch and output).
var reservedGuestPaths = []string{"/tmp", "/output", "/.ork-sdk"}

const typeForms = `rust, python, module.path:ClassName, path/to/executor.wasm or path/to/crate (a directory holding Cargo.toml)`

// FindRoot returns the nearest directory, start itself or one of its
// parents, that holds an ork.yaml.
func FindRoot(start string) (string, error) {
	abs, err := filepath.Abs(start)
	if err != nil {
		return "", &Error{Msg: fmt.Sprintf("cannot resolve %s: %v; pass --project with the project directory", start, err)}
	}
	for dir := abs; ; {
		if fi, err := os.Stat(filepath.Join(dir, ConfigFileName)); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", &Error{Msg: fmt.Sprintf("no %s found in %s or any parent; run `ork init` or pass --project", ConfigFileName, abs)}
}

// Load reads ork.yaml in root. The built-in executors "rust" and "python"
// are added unless ork.yaml defines executors with those names.
func Load(root string) (*Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot resolve project directory %s: %v", root, err)}
	}
	p := &Project{Root: abs, File: filepath.Join(abs, ConfigFileName), Executors: map[string]*Executor{},
		Secrets: map[string]*Secret{}, Connections: map[string]*Connection{}}
	data, err := os.ReadFile(p.File)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Msg: fmt.Sprintf("%s does not exist; run `ork init` to create it or pass --project with the project directory", p.File)}
		}
		return nil, &Error{Pos: Pos{File: p.File}, Msg: fmt.Sprintf("cannot read the project file: %v", errors.Unwrap(err))}
	}
	rel := p.Rel(p.File)
	node, err := parseYAML(rel, data)
	if err != nil {
		return nil, err
	}
	c := newCollector(rel)
	d := &fileDecoder{file: rel, c: c}
	if node != nil && d.mapping(node, "ork.yaml", "a mapping with the key executors", false) {
		kvs, _ := d.fields(node, "at the top level of ork.yaml", projectKeys)
		for _, f := range kvs {
			switch f.Name {
			case "executors":
				p.decodeExecutors(d, f.Value)
			case "python":
				p.decodePython(d, f.Value)
			case "telemetry":
				p.decodeTelemetry(d, f.Value)
			case "secrets":
				p.decodeSecrets(d, f.Value)
			case "connections":
				p.decodeConnections(d, f.Value)
			case "engine":
				p.Engine, _ = d.engine(f.Value, "engine", "in ork.yaml")
			}
		}
	}
	for _, x := range p.Executors {
		x.projectEngine = p.Engine
	}
	p.checkEngines(d)
	for _, check := range d.later {
		check()
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		kind ExecutorKind
	}{{"rust", KindBuiltinRust}, {"python", KindBuiltinPython}} {
		if _, ok := p.Executors[b.name]; !ok {
			p.Executors[b.name] = &Executor{Name: b.name, Type: b.name, Kind: b.kind, projectEngine: p.Engine}
			p.Order = append(p.Order, b.name)
		}
	}
	return p, nil
}

// Rel returns abs relative to the project root, with forward slashes, for
// display. Paths outside the root are returned unchanged.
func (p *Project) Rel(abs string) string {
	if !filepath.IsAbs(abs) {
		return filepath.ToSlash(abs)
	}
	if r, ok := relInside(p.Root, abs); ok {
		return r
	}
	// The root or the path may go through a symlink (e.g. /tmp on macOS).
	root, err1 := filepath.EvalSymlinks(p.Root)
	dir, err2 := filepath.EvalSymlinks(filepath.Dir(abs))
	if err1 == nil && err2 == nil {
		if r, ok := relInside(root, filepath.Join(dir, filepath.Base(abs))); ok {
			return r
		}
	}
	return abs
}

// Within reports whether the absolute path abs is root or below it.
func Within(root, abs string) bool {
	_, ok := relInside(root, abs)
	return ok
}

func relInside(root, abs string) (string, bool) {
	r, err := filepath.Rel(root, abs)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// abs returns the absolute path of a project-relative path.
func (p *Project) abs(rel string) string {
	return filepath.Join(p.Root, filepath.FromSlash(rel))
}

// cleanRel checks a project-relative path as written in a file and returns
// it cleaned, with forward slashes. problem is "" when the path is fine.
func cleanRel(s string) (clean, problem string) {
	if filepath.IsAbs(s) || path.IsAbs(filepath.ToSlash(s)) {
		return "", "is absolute; use a path relative to the project root"
	}
	c := path.Clean(filepath.ToSlash(s))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "points outside the project root; move the file into the project and use a path relative to the project root"
	}
	return c, ""
}

// decodePython reads `python: {path: [dir, ...]}`: project directories put on
// sys.path in every Python sandbox.
func (p *Project) decodePython(d *fileDecoder, n *yaml.Node) {
	if !d.mapping(n, "python in ork.yaml", "a mapping with the key path", true) {
		return
	}
	kvs, _ := d.fields(n, "in python", pythonKeys)
	for _, f := range kvs {
		items, ok := d.sequence(f.Value, "python path", "a list of project directories, e.g. [vendor]")
		if !ok {
			continue
		}
		for _, item := range items {
			s, good := d.str(item, "python path entry", "give a directory relative to the project root")
			if !good {
				continue
			}
			clean, problem := cleanRel(s)
			if problem != "" {
				d.errorf(item, "python path entry %s %s", s, problem)
				continue
			}
			if fi, err := os.Stat(p.abs(clean)); err != nil || !fi.IsDir() {
				d.errorf(item, "python path entry %s is not a directory of the project; create it (e.g. with `ork python install --target %s`) or remove it", s, clean)
				continue
			}
			p.PythonPath = append(p.PythonPath, clean)
		}
	}
}

func (p *Project) decodeExecutors(d *fileDecoder, n *yaml.Node) {
	if !d.mapping(n, "executors in ork.yaml", "a mapping of executor names to executors", true) {
		return
	}
	for _, e := range d.pairs(n, "executor", "in executors") {
		if !nameRe.MatchString(e.Name) {
			d.errorf(e.Key, "invalid executor name %q: use letters, digits, \"_\" and \"-\", starting with a letter or \"_\"", e.Name)
			continue
		}
		if x := p.decodeExecutor(d, e); x != nil {
			p.Executors[x.Name] = x
			p.Order = append(p.Order, x.Name)
		}
	}
}

func (p *Project) decodeExecutor(d *fileDecoder, e pair) *Executor {
	x := &Executor{Name: e.Name, Pos: d.pos(e.Key)}
	missingType := fmt.Sprintf("executor %q has no type; add type: with one of %s", e.Name, typeForms)
	if isNull(e.Value) {
		d.errorf(e.Key, "%s", missingType)
		return nil
	}
	if !d.mapping(e.Value, fmt.Sprintf("executor %q", e.Name), "a mapping with the keys "+strings.Join(executorKeys, ", "), false) {
		return nil
	}
	where := fmt.Sprintf("in executor %q", e.Name)
	ok := true
	kvs, covered := d.fields(e.Value, where, executorKeys)
	for _, f := range kvs {
		switch f.Name {
		case "type":
			t, good := d.str(f.Value, fmt.Sprintf("type of executor %q", e.Name), "use one of "+typeForms)
			if !good || !p.resolveType(d, x, t, f.Value) {
				ok = false
			}
		case "config":
			v, good := d.freeform(f.Value, fmt.Sprintf("config of executor %q", e.Name))
			x.Config = v
			ok = ok && good
		case "sandbox":
			ok = p.decodeSandbox(d, x, f.Value) && ok
		case "retries":
			r, good := d.decodeRetries(f.Value, describeOwner("executor", e.Name))
			x.Retries = r
			ok = ok && good
		case "engine":
			eng, good := d.engine(f.Value, "engine", fmt.Sprintf("of executor %q", e.Name))
			x.Engine = eng
			ok = ok && good
		}
	}
	if !covered["type"] {
		d.errorf(e.Key, "%s", missingType)
	}
	if x.Kind == 0 {
		ok = false // no type, or an invalid one (already reported)
	}
	if !ok {
		return nil
	}
	return x
}

// resolveType sets x.Type, x.Kind and x.Path from the type string t.
func (p *Project) resolveType(d *fileDecoder, x *Executor, t string, n *yaml.Node) bool {
	x.Type = t
	switch {
	case t == "rust":
		x.Kind = KindBuiltinRust
		return true
	case t == "python":
		x.Kind = KindBuiltinPython
		return true
	case pyClassRe.MatchString(t):
		x.Kind = KindPythonClass
		return true
	}
	rel, problem := cleanRel(t)
	if problem != "" {
		d.errorf(n, "type %q of executor %q %s", t, x.Name, problem)
		return false
	}
	fi, statErr := os.Stat(p.abs(rel))
	if strings.HasSuffix(t, ".wasm") {
		switch {
		case statErr != nil:
			d.errorf(n, "module %s of executor %q does not exist; build it or fix the path (paths are relative to the project root)", rel, x.Name)
			return false
		case fi.IsDir():
			d.errorf(n, "module %s of executor %q is a directory; type must name a .wasm file", rel, x.Name)
			return false
		}
		x.Kind, x.Path = KindModule, rel
		return true
	}
	var reason string
	switch {
	case statErr != nil:
		reason = rel + " does not exist"
		if strings.Contains(t, ":") {
			reason = "it is not a valid module.path:ClassName and " + reason
		} else if s := suggest(t, []string{"rust", "python"}); s != "" {
			reason += fmt.Sprintf("; did you mean %q?", s)
		}
	case !fi.IsDir():
		reason = rel + " is a file without the .wasm extension"
	default:
		if cf, err := os.Stat(filepath.Join(p.abs(rel), "Cargo.toml")); err == nil && !cf.IsDir() {
			x.Kind, x.Path = KindCrate, rel
			return true
		}
		reason = "directory " + rel + " has no Cargo.toml"
	}
	d.errorf(n, "type %q of executor %q is neither a built-in, a module:Class, a .wasm file nor a crate directory (%s); use one of %s", t, x.Name, reason, typeForms)
	return false
}

func (p *Project) decodeSandbox(d *fileDecoder, x *Executor, n *yaml.Node) bool {
	what := fmt.Sprintf("sandbox of executor %q", x.Name)
	if isNull(n) {
		return true
	}
	if !d.mapping(n, what, "a mapping with the keys "+strings.Join(sandboxKeys, ", "), false) {
		return false
	}
	ok := true
	kvs, _ := d.fields(n, "in the "+what, sandboxKeys)
	for _, f := range kvs {
		switch f.Name {
		case "memory":
			ok = d.memory(&x.Sandbox.MemoryBytes, f.Value, "sandbox memory", fmt.Sprintf("for executor %q", x.Name)) && ok
		case "timeout":
			ok = d.duration(&x.Sandbox.Timeout, f.Value, "sandbox timeout", fmt.Sprintf("for executor %q", x.Name)) && ok
		case "mounts":
			ok = p.decodeMounts(d, x, f.Value) && ok
		case "env":
			ok = d.decodeEnv(x, f.Value) && ok
		case "allowed_hosts":
			ok = p.decodeAllowedHosts(d, x, f.Value) && ok
		case "secrets":
			names, good := p.decodeNames(d, x, f.Value, "secrets")
			x.Sandbox.Secrets = names
			ok = ok && good
		case "connections":
			names, good := p.decodeNames(d, x, f.Value, "connections")
			x.Sandbox.Connections = names
			ok = ok && good
		case "max_concurrency":
			v, good := d.integer(f.Value, "sandbox max_concurrency", fmt.Sprintf("for executor %q", x.Name), 1, 1<<20)
			x.Sandbox.MaxConcurrency = v
			ok = ok && good
		case "cpu":
			x.Sandbox.cpuNode = f.Value
			ok = d.cpu(&x.Sandbox.CPU, f.Value, fmt.Sprintf("for executor %q", x.Name)) && ok
		}
	}
	return ok
}

const memoryHint = `write an integer with one of the units B, KiB, MiB, GiB, KB, MB, GB, e.g. "512MiB"`

// memory decodes a size in bytes (a string with a unit, or an integer)
// within [MinMemory, MaxMemory]. field and owner name the value in
// messages ("sandbox memory", "for executor \"csv\"").
func (d *fileDecoder) memory(dst *uint64, n *yaml.Node, field, owner string) bool {
	nd := deref(n)
	var b uint64
	switch {
	case isNull(nd):
		d.errorf(n, "missing value for %s %s; %s", field, owner, memoryHint)
		return false
	case nd.Kind == yaml.ScalarNode && nd.Tag == "!!int":
		v, err := strconv.ParseUint(nd.Value, 10, 64)
		if err != nil {
			d.errorf(n, "invalid %s %s %s; write a positive number of bytes or a size such as \"512MiB\"", field, nd.Value, owner)
			return false
		}
		b = v
	case nd.Kind == yaml.ScalarNode && nd.Tag == "!!str":
		v, err := ParseBytes(nd.Value)
		if err != nil {
			d.errorf(n, "invalid %s %q %s; %s", field, nd.Value, owner, memoryHint)
			return false
		}
		b = v
	default:
		d.errorf(n, "invalid %s %s: expected a size such as \"512MiB\", got %s", field, owner, describe(nd))
		return false
	}
	if b < MinMemory || b > MaxMemory {
		d.errorf(n, "%s %s %s is outside the allowed range; use a size between 1MiB and 4GiB", field, nd.Value, owner)
		return false
	}
	*dst = b
	return true
}

// duration decodes a Go duration string that must be positive.
func (d *fileDecoder) duration(dst *time.Duration, n *yaml.Node, field, owner string) bool {
	const hint = `write a duration with a unit, e.g. "30s", "2m" or "1h30m"`
	nd := deref(n)
	switch {
	case isNull(nd):
		d.errorf(n, "missing value for %s %s; %s", field, owner, hint)
		return false
	case nd.Kind == yaml.ScalarNode && nd.Tag == "!!str":
		t, err := time.ParseDuration(nd.Value)
		if err != nil {
			d.errorf(n, "invalid %s %q %s; %s", field, nd.Value, owner, hint)
			return false
		}
		if t <= 0 {
			d.errorf(n, "%s %q %s is not positive; %s", field, nd.Value, owner, hint)
			return false
		}
		*dst = t
		return true
	case nd.Kind == yaml.ScalarNode && (nd.Tag == "!!int" || nd.Tag == "!!float"):
		d.errorf(n, "invalid %s %s: expected a duration, got %s without a unit; %s", field, owner, describe(nd), hint)
	default:
		d.errorf(n, "invalid %s %s: expected a duration, got %s; %s", field, owner, describe(nd), hint)
	}
	return false
}

func (p *Project) decodeMounts(d *fileDecoder, x *Executor, n *yaml.Node) bool {
	items, ok := d.sequence(n, fmt.Sprintf("sandbox mounts of executor %q", x.Name), "a list of mappings with the keys host, guest")
	if !ok {
		return false
	}
	guests := map[string]int{}
	for i, item := range items {
		num := i + 1
		what := fmt.Sprintf("mount %d of executor %q", num, x.Name)
		if !d.mapping(item, what, "a mapping with the keys host, guest", false) {
			ok = false
			continue
		}
		var m Mount
		kvs, covered := d.fields(item, "in "+what, mountKeys)
		for _, f := range kvs {
			switch f.Name {
			case "host":
				h, good := d.str(f.Value, "host of "+what, "give a directory, absolute or relative to the project root")
				if !good {
					ok = false
					continue
				}
				abs := filepath.Clean(h)
				if !filepath.IsAbs(abs) {
					abs = filepath.Join(p.Root, abs)
				}
				fi, err := os.Stat(abs)
				switch {
				case err != nil:
					d.errorf(f.Value, "host directory %s of %s does not exist; create it or fix the path (relative paths are relative to the project root)", h, what)
					ok = false
				case !fi.IsDir():
					d.errorf(f.Value, "host path %s of %s is not a directory; mounts must name directories", h, what)
					ok = false
				default:
					m.HostPath = abs
				}
			case "guest":
				g, good := d.str(f.Value, "guest of "+what, "give an absolute path inside the sandbox, e.g. /data")
				if !good {
					ok = false
					continue
				}
				if problem := guestProblem(g); problem != "" {
					d.errorf(f.Value, "guest path %q of %s %s", g, what, problem)
					ok = false
					continue
				}
				if prev, dup := guests[g]; dup {
					d.errorf(f.Value, "guest path %q of %s is already used by mount %d; give each mount its own guest path", g, what, prev)
					ok = false
					continue
				}
				guests[g] = num
				m.GuestPath = g
			}
		}
		for _, missing := range []struct{ key, hint string }{
			{"host", "the host directory to mount"},
			{"guest", "the absolute path it appears at in the sandbox"},
		} {
			if !covered[missing.key] {
				d.errorf(item, "%s has no %s; add %s: with %s", what, missing.key, missing.key, missing.hint)
			}
		}
		if m.HostPath == "" || m.GuestPath == "" {
			ok = false // reported above
			continue
		}
		x.Sandbox.Mounts = append(x.Sandbox.Mounts, m)
	}
	return ok
}

// guestProblem says what is wrong with a guest mount path, or "".
func guestProblem(g string) string {
	switch {
	case !strings.HasPrefix(g, "/"):
		return "is not absolute; use an absolute path such as /data"
	case path.Clean(g) != g:
		return fmt.Sprintf("is not clean; write it as %q", path.Clean(g))
	case g == "/":
		return "would hide the whole sandbox; mount below it, e.g. /data"
	}
	for _, r := range reservedGuestPaths {
		if g == r || strings.HasPrefix(g, r+"/") {
			return fmt.Sprintf("is reserved (the sandbox uses %s); choose another path, e.g. /data", r)
		}
	}
	return ""
}

func (d *fileDecoder) decodeEnv(x *Executor, n *yaml.Node) bool {
	what := fmt.Sprintf("sandbox env of executor %q", x.Name)
	items, ok := d.sequence(n, what, "a list of environment variable names")
	if !ok {
		return false
	}
	seen := map[string]bool{}
	for _, item := range items {
		name, good := d.str(item, "entry of "+what, "give an environment variable name such as TZ")
		if !good {
			ok = false
			continue
		}
		switch {
		case !identRe.MatchString(name):
			d.errorf(item, "invalid environment variable name %q in %s; use letters, digits and \"_\", not starting with a digit", name, what)
			ok = false
		case seen[name]:
			d.errorf(item, "environment variable %q is listed twice in %s; remove the duplicate", name, what)
			ok = false
		default:
			seen[name] = true
			x.Sandbox.Env = append(x.Sandbox.Env, name)
		}
	}
	return ok
}

// byteUnits are the units ParseBytes accepts.
var byteUnits = map[string]uint64{
	"":    1,
	"B":   1,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"KB":  1000,
	"MB":  1000 * 1000,
	"GB":  1000 * 1000 * 1000,
}

// ParseBytes parses a size: a non-negative integer, optionally followed
// (with or without one space) by one of the units B, KiB, MiB, GiB, KB, MB,
// GB. A bare integer is a number of bytes.
func ParseBytes(s string) (uint64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	unit := s[i:]
	spaced := strings.HasPrefix(unit, " ")
	if spaced {
		unit = unit[1:]
	}
	mult, ok := byteUnits[unit]
	if i == 0 || !ok || (spaced && unit == "") {
		return 0, fmt.Errorf("invalid size %q: expected an integer followed by one of the units B, KiB, MiB, GiB, KB, MB, GB, e.g. \"512MiB\"", s)
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// executorNames returns the names of all executors, sorted.
func (p *Project) executorNames() []string {
	names := make([]string, 0, len(p.Executors))
	for n := range p.Executors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
