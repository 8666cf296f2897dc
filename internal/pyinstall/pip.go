package pyinstall

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// pip runs the host's pip.
type pip struct {
	cmd []string
	dir string
	log io.Writer
	mu  sync.Mutex // serializes writes to log
}

// Flags of `pip download` for the sandbox: pure wheels for any Python 3.12,
// and CPython 3.12 wheels for Linux x86-64 (a superset: it accepts pure
// wheels too) to resolve sets where some packages have only those.
var (
	pureFlags = []string{
		"--only-binary=:all:", "--platform", "any", "--python-version", PythonVersion,
		"--implementation", "py", "--abi", "none",
	}
	cpythonFlags = []string{
		"--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
		"--python-version", PythonVersion, "--implementation", "cp", "--abi", "cp" + strings.ReplaceAll(PythonVersion, ".", ""),
	}
)

// pipFailed is pip exiting with an error; its output is for diagnosis.
type pipFailed struct {
	args   []string
	out    string
	err    error
	backed bool // stopped because pip started backtracking
}

func (e *pipFailed) Error() string {
	return fmt.Sprintf("pip %s: %v\n%s", strings.Join(e.args, " "), e.err, errorLines(e.out))
}

// backtrackLine is what pip prints when it starts trying older versions.
const backtrackLine = "pip is looking at multiple versions of"

// run runs pip with args and returns its combined output. A pip that exits
// with an error gives a *pipFailed; other errors mean pip could not run.
// With stopOnBacktrack, pip is stopped as soon as it starts backtracking.
func (p *pip) run(ctx context.Context, stopOnBacktrack bool, args ...string) (string, error) {
	args = append(slices.Clone(args), "--disable-pip-version-check", "--no-input")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, p.cmd[0], append(slices.Clone(p.cmd[1:]), args...)...)
	cmd.Dir = p.dir
	killGroupOnCancel(cmd)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PIP_NO_COLOR=1")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p.logf("$ %s %s\n", strings.Join(p.cmd, " "), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		pw.Close()
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("cannot run pip: %s was not found; ork needs a Python 3 with pip on this machine to download packages", p.cmd[0])
		}
		return "", fmt.Errorf("cannot run pip (%s): %w", strings.Join(p.cmd, " "), err)
	}
	var out strings.Builder
	backtracked := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line)
			out.WriteByte('\n')
			p.logf("%s\n", line)
			if stopOnBacktrack && !backtracked && strings.Contains(line, backtrackLine) {
				backtracked = true
				cancel()
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err == nil {
		return out.String(), nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	s := out.String()
	if strings.Contains(s, "No module named pip") {
		return "", fmt.Errorf("%s has no pip; install pip for it (e.g. `apt install python3-pip`) or tell ork which pip to use", strings.Join(p.cmd, " "))
	}
	var ee *exec.ExitError
	if !backtracked && !errors.As(err, &ee) {
		return "", fmt.Errorf("running pip: %w", err)
	}
	return s, &pipFailed{args: args, out: s, err: err, backed: backtracked}
}

func (p *pip) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.log, format, args...)
}

var pipPythonRe = regexp.MustCompile(`\(python (\d+\.\d+)\)`)

// pythonVersion checks that pip runs and returns the version of the Python it
// runs on ("" when its output does not say).
func (p *pip) pythonVersion(ctx context.Context) (string, error) {
	out, err := p.run(ctx, false, "--version")
	if err != nil {
		var pf *pipFailed
		if errors.As(err, &pf) {
			return "", fmt.Errorf("%s does not work:\n%s", strings.Join(p.cmd, " "), errorLines(pf.out))
		}
		return "", err
	}
	if m := pipPythonRe.FindStringSubmatch(out); m != nil {
		return m[1], nil
	}
	return "", nil
}

// resolve downloads the wheels to install for reqs (pip arguments) under
// tmp and returns their paths.
//
// The whole set is first resolved for pure wheels only: the common case, one
// pip run. When that fails, or pip starts backtracking (a dependency without a
// pure wheel makes it try every older version of its dependents), the set is
// resolved for CPython 3.12 on Linux x86-64 instead, and every wheel of that
// resolution that is not pure is replaced by the pure wheel of the same
// version when there is one. What is left is either an optional speed-up or
// refused by the caller.
func (p *pip) resolve(ctx context.Context, tmp string, reqs []string) ([]string, error) {
	pureDir := filepath.Join(tmp, "pure")
	_, err := p.run(ctx, true, append(append([]string{"download", "--progress-bar", "off", "-d", pureDir}, pureFlags...), reqs...)...)
	if err == nil {
		return wheelFiles(pureDir)
	}
	var pf *pipFailed
	if !errors.As(err, &pf) {
		return nil, err
	}
	if unreachable(pf.out) {
		return nil, fmt.Errorf("pip could not reach the package index:\n%s", errorLines(pf.out))
	}
	if pf.backed {
		p.logf("ork: pip started backtracking over pure wheels; resolving for CPython %s instead\n", PythonVersion)
	} else {
		p.logf("ork: not everything has a pure wheel; resolving for CPython %s instead\n", PythonVersion)
	}

	cpDir := filepath.Join(tmp, "cpython")
	out, err := p.run(ctx, false, append(append([]string{"download", "--progress-bar", "off", "-d", cpDir}, cpythonFlags...), reqs...)...)
	if err != nil {
		if !errors.As(err, &pf) {
			return nil, err
		}
		return nil, p.diagnose(ctx, tmp, out)
	}
	files, err := wheelFiles(cpDir)
	if err != nil {
		return nil, err
	}

	// Look for a pure wheel of each compiled one, a few at a time.
	type lookup struct {
		i        int
		req, dir string
		file     string
		err      error
	}
	var lookups []*lookup
	for i, f := range files {
		if isPureTag(f) {
			continue
		}
		name, version, ok := wheelNameVersion(f)
		if !ok {
			continue
		}
		lookups = append(lookups, &lookup{i: i, req: name + "==" + version, dir: filepath.Join(tmp, fmt.Sprintf("pure-%d", i))})
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, l := range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := p.run(ctx, false, append(append([]string{"download", "--no-deps", "--progress-bar", "off", "-d", l.dir}, pureFlags...), l.req)...)
			if err != nil {
				if pf, ok := err.(*pipFailed); ok && noDistribution(pf.out) {
					return // no pure wheel: keep the compiled one
				}
				l.err = err
				return
			}
			pure, err := wheelFiles(l.dir)
			if err == nil && len(pure) == 1 {
				l.file = pure[0]
			}
			l.err = err
		}()
	}
	wg.Wait()
	for _, l := range lookups {
		if l.err != nil {
			return nil, l.err
		}
		if l.file != "" {
			files[l.i] = l.file
		}
	}
	return files, nil
}

var (
	noDistRe    = regexp.MustCompile(`No matching distribution found for (\S+)`)
	dependsOnRe = regexp.MustCompile(`(?m)^\s*\S+ \S+ depends on (\S+)`)
	reqNameRe   = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?`)
)

func noDistribution(out string) bool { return noDistRe.MatchString(out) }

// unreachable reports whether pip's output says it could not reach the index.
func unreachable(out string) bool {
	return strings.Contains(out, "Could not fetch URL") ||
		(strings.Contains(out, "Retrying (Retry(") && strings.Contains(out, "NewConnectionError"))
}

// diagnose explains why the CPython 3.12 resolution failed: the projects pip
// names that publish no usable wheel, or do not exist, become refusals;
// anything else (e.g. conflicting requirements) is pip's own error.
func (p *pip) diagnose(ctx context.Context, tmp string, out string) error {
	if unreachable(out) {
		return fmt.Errorf("pip could not reach the package index:\n%s", errorLines(out))
	}
	var names []string
	seen := map[string]bool{}
	for _, re := range []*regexp.Regexp{noDistRe, dependsOnRe} {
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			name := reqNameRe.FindString(m[1])
			if name == "" || seen[normalize(name)] || strings.HasSuffix(strings.ToLower(name), ".whl") {
				continue
			}
			seen[normalize(name)] = true
			names = append(names, name)
		}
	}
	if len(names) > 5 {
		names = names[:5]
	}
	var refused []Refusal
	for i, name := range names {
		// Does any version of it have a wheel CPython 3.12 can use?
		dir := filepath.Join(tmp, fmt.Sprintf("probe-%d", i))
		_, err := p.run(ctx, false, append(append([]string{"download", "--no-deps", "--progress-bar", "off", "-d", dir}, cpythonFlags...), name)...)
		var pf *pipFailed
		if err == nil {
			continue // it has: the failure is elsewhere
		} else if !errors.As(err, &pf) {
			return err
		} else if !noDistribution(pf.out) {
			continue
		}
		// Is it on the index at all?
		_, err = p.run(ctx, false, "index", "versions", name)
		switch {
		case err == nil:
			refused = append(refused, Refusal{
				Name: name, Reason: NoWheel, Detail: "no wheel for Python " + PythonVersion,
				Message: noWheelMessage(name, strings.Join(p.cmd, " ")),
			})
		case errors.As(err, &pf) && noDistribution(pf.out):
			refused = append(refused, Refusal{
				Name: name, Reason: NotFound, Detail: "not on the package index",
				Message: fmt.Sprintf("%s: no package of that name was found on the package index; check the spelling", name),
			})
		case errors.As(err, &pf):
			// pip index is experimental; without it, say what is known.
			refused = append(refused, Refusal{
				Name: name, Reason: NoWheel, Detail: "no wheel for Python " + PythonVersion,
				Message: noWheelMessage(name, strings.Join(p.cmd, " ")),
			})
		default:
			return err
		}
	}
	if len(refused) > 0 {
		sort.SliceStable(refused, func(i, j int) bool { return refused[i].Reason > refused[j].Reason })
		return &RefusedError{Refusals: refused}
	}
	return fmt.Errorf("pip could not resolve the requirements for Python %s:\n%s", PythonVersion, errorLines(out))
}

func noWheelMessage(name, pipCmd string) string {
	return fmt.Sprintf("%[1]s cannot be installed for the sandbox: it publishes no wheel that Python %[2]s can use "+
		"(only a source distribution, or wheels for other Pythons), and ork installs wheels only. "+
		"Ask the %[1]s maintainers to publish a pure-Python wheel (py3-none-any), or use an alternative package that has one; "+
		"if %[1]s is pure Python, you can build its wheel yourself with `%[3]s wheel --no-deps %[1]s -w wheels` "+
		"and install the .whl file: `ork python install wheels/FILE.whl`",
		name, PythonVersion, pipCmd)
}

// errorLines keeps pip's output from its first error on (or its last lines),
// at most 40 lines.
func errorLines(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	start := len(lines)
	for i, l := range lines {
		if strings.HasPrefix(l, "ERROR:") {
			start = i
			break
		}
	}
	if start == len(lines) {
		start = max(0, len(lines)-10)
	}
	lines = lines[start:]
	if len(lines) > 40 {
		lines = append(lines[:40], "...")
	}
	return strings.Join(lines, "\n")
}

// wheelFiles lists the wheels in dir.
func wheelFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading pip's downloads: %w", err)
	}
	var files []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".whl") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("pip downloaded no wheel into %s", dir)
	}
	return files, nil
}
