// Command benchtable turns the output of `go test -bench` over ork's
// benchmark packages (internal/bench, internal/pysnap) into one side-by-side
// table: each measurement beside its baseline and the target it is held to.
// `make bench` pipes its benchmark run through it.
//
//	go test -run '^$' -bench . ./internal/bench/ | go run ./internal/tools/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// results maps a benchmark name (without the -GOMAXPROCS suffix) to its
// metrics by unit.
type results map[string]map[string]float64

var benchLine = regexp.MustCompile(`^(Benchmark[^\s]+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader) (results, []string, error) {
	res := results{}
	var passthrough []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			if strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL") {
				passthrough = append(passthrough, line)
			}
			continue
		}
		fields := strings.Fields(m[2])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: metric %q is not a number", m[1], fields[i])
			}
			metrics[fields[i+1]] = v
		}
		res[m[1]] = metrics
	}
	return res, passthrough, sc.Err()
}

// value formats one metric, or "—" when the benchmark did not run.
func (r results) value(bench, unit string) (float64, bool) {
	m, ok := r[bench]
	if !ok {
		return 0, false
	}
	v, ok := m[unit]
	return v, ok
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func (r results) show(bench, unit, suffix string) string {
	v, ok := r.value(bench, unit)
	if !ok {
		return "—"
	}
	return num(v) + suffix
}

// verdict says whether bench's unit is at most limit.
func (r results) verdict(bench, unit string, limit float64) string {
	v, ok := r.value(bench, unit)
	switch {
	case !ok:
		return "not run"
	case v <= limit:
		return "met"
	default:
		return fmt.Sprintf("missed (%.1fx)", v/limit)
	}
}

type row struct{ measurement, ork, baseline, target, verdict string }

func table(r results) []row {
	wf := func(lang, shape string) string { return "BenchmarkWorkflow" + lang + shape }
	flow := func(bench string) string {
		if _, ok := r[bench]; !ok {
			return "—"
		}
		return fmt.Sprintf("%s (%s tasks/s; p50 %s, p99 %s)", r.show(bench, "s/run", " s"), r.show(bench, "tasks/s", ""),
			r.show(bench, "p50-ms", " ms"), r.show(bench, "p99-ms", " ms"))
	}
	native := r.show("BenchmarkBaselineNativePythonProcess", "ms/task", " ms")
	return []row{
		{"1. trivial Python task (snapshot)", r.show("BenchmarkPythonTrivialTask", "ms/task", " ms"),
			"cold: " + r.show("BenchmarkPythonTrivialTaskCold", "ms/task", " ms") + "; native process: " + native,
			"≤ 3 ms", r.verdict("BenchmarkPythonTrivialTask", "ms/task", 3)},
		{"2. example Python executor (snapshot)", r.show("BenchmarkPythonExampleExecutor", "ms/task", " ms"),
			"cold: " + r.show("BenchmarkPythonExampleExecutorCold", "ms/task", " ms"),
			"≤ 15 ms", r.verdict("BenchmarkPythonExampleExecutor", "ms/task", 15)},
		{"3. trivial Rust task", r.show("BenchmarkRustTrivialTask", "ms/task", " ms"), "native process: " + native,
			"≤ 1 ms", r.verdict("BenchmarkRustTrivialTask", "ms/task", 1)},
		{"4. native `python3 -c` per task (baseline)", native, "", "", ""},
		{"5. 1,000 independent Python tasks", flow(wf("Python", "Independent")), "", "≤ 5 s", r.verdict(wf("Python", "Independent"), "s/run", 5)},
		{"5. 1,000-task Python chain", flow(wf("Python", "Chain")), "", "", ""},
		{"5. 1,000 independent Rust tasks", flow(wf("Rust", "Independent")), "", "≤ 2 s", r.verdict(wf("Rust", "Independent"), "s/run", 2)},
		{"5. 1,000-task Rust chain", flow(wf("Rust", "Chain")), "", "", ""},
		{"6. RSS per live Python sandbox (50 live)", r.show("BenchmarkMemoryPythonSandboxes", "MiB/sandbox", " MiB"),
			"idle " + r.show("BenchmarkMemoryPythonSandboxes", "idle-MiB", " MiB") + ", 50 live " + r.show("BenchmarkMemoryPythonSandboxes", "live50-MiB", " MiB"),
			"≤ 16 MiB", r.verdict("BenchmarkMemoryPythonSandboxes", "MiB/sandbox", 16)},
	}
}

func render(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| measurement | ork | beside it | target | verdict |")
	fmt.Fprintln(w, "|---|---:|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.measurement, r.ork, r.baseline, r.target, r.verdict)
	}
}

func main() {
	res, passthrough, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	for _, l := range passthrough {
		fmt.Println(l)
	}
	fmt.Println()
	render(os.Stdout, table(res))
	for _, l := range passthrough {
		if strings.HasPrefix(l, "FAIL") || strings.HasPrefix(l, "--- FAIL") {
			os.Exit(1)
		}
	}
}
