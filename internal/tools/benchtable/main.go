// Command benchtable turns the output of `go test -bench` over ork's
// benchmark packages (internal/bench, internal/pysnap) into one side-by-side
// table: each measurement on every engine, beside its baseline and the
// target it is held to. `make bench` pipes its benchmark run through it.
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

// engines are the sub-benchmarks of each measurement, in column order.
var engines = []string{"wazero", "wasmtime"}

// results maps a benchmark name (without the -GOMAXPROCS suffix; with its
// sub-benchmark, e.g. BenchmarkX/wasmtime) to its metrics by unit.
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

// best is the lowest value of bench's unit over the engines, and its engine.
func (r results) best(bench, unit string) (float64, string, bool) {
	var v float64
	var eng string
	found := false
	for _, e := range engines {
		if x, ok := r.value(bench+"/"+e, unit); ok && (!found || x < v) {
			v, eng, found = x, e, true
		}
	}
	return v, eng, found
}

// verdict says whether the best engine's value is at most limit.
func (r results) verdict(bench, unit string, limit float64) string {
	v, eng, ok := r.best(bench, unit)
	switch {
	case !ok:
		return "not run"
	case v <= limit:
		return "met (" + eng + ")"
	default:
		return fmt.Sprintf("missed (%s: %.2fx)", eng, v/limit)
	}
}

// measurement is one row: a benchmark run per engine, shown by cell.
type measurement struct {
	name     string
	bench    string
	cell     func(r results, bench string) string
	baseline string
	target   string
	verdict  string
}

type row struct {
	measurement string
	perEngine   []string
	baseline    string
	target      string
	verdict     string
}

func table(r results) []row {
	ms := func(unit string) func(results, string) string {
		return func(r results, b string) string { return r.show(b, unit, " ms") }
	}
	flow := func(r results, b string) string {
		if _, ok := r[b]; !ok {
			return "—"
		}
		return fmt.Sprintf("%s (%s/s; p50 %s, p99 %s)", r.show(b, "s/run", " s"), r.show(b, "tasks/s", ""),
			r.show(b, "p50-ms", " ms"), r.show(b, "p99-ms", " ms"))
	}
	rss := func(r results, b string) string {
		if _, ok := r[b]; !ok {
			return "—"
		}
		return fmt.Sprintf("%s (idle %s, 50 live %s)", r.show(b, "MiB/sandbox", " MiB"), r.show(b, "idle-MiB", ""), r.show(b, "live50-MiB", " MiB"))
	}
	native := r.show("BenchmarkBaselineNativePythonProcess", "ms/task", " ms")
	rows := []measurement{
		{"1. trivial Python task, snapshot", "BenchmarkPythonTrivialTask", ms("ms/task"), "native process: " + native, "≤ 3 ms", r.verdict("BenchmarkPythonTrivialTask", "ms/task", 3)},
		{"1. trivial Python task, cold", "BenchmarkPythonTrivialTaskCold", ms("ms/task"), "native process: " + native, "", ""},
		{"2. example Python executor, snapshot", "BenchmarkPythonExampleExecutor", ms("ms/task"), "", "≤ 15 ms", r.verdict("BenchmarkPythonExampleExecutor", "ms/task", 15)},
		{"2. example Python executor, cold", "BenchmarkPythonExampleExecutorCold", ms("ms/task"), "", "", ""},
		{"3. trivial Rust task", "BenchmarkRustTrivialTask", ms("ms/task"), "native process: " + native, "≤ 1 ms", r.verdict("BenchmarkRustTrivialTask", "ms/task", 1)},
		{"5. 1,000 independent Python tasks", "BenchmarkWorkflowPythonIndependent", flow, "", "≤ 5 s", r.verdict("BenchmarkWorkflowPythonIndependent", "s/run", 5)},
		{"5. 1,000-task Python chain", "BenchmarkWorkflowPythonChain", flow, "", "", ""},
		{"5. 1,000 independent Rust tasks", "BenchmarkWorkflowRustIndependent", flow, "", "≤ 2 s", r.verdict("BenchmarkWorkflowRustIndependent", "s/run", 2)},
		{"5. 1,000-task Rust chain", "BenchmarkWorkflowRustChain", flow, "", "", ""},
		{"6. RSS per live Python sandbox", "BenchmarkMemoryPythonSandboxes", rss, "", "≤ 16 MiB", r.verdict("BenchmarkMemoryPythonSandboxes", "MiB/sandbox", 16)},
	}
	var out []row
	for _, m := range rows {
		rw := row{measurement: m.name, baseline: m.baseline, target: m.target, verdict: m.verdict}
		for _, e := range engines {
			rw.perEngine = append(rw.perEngine, m.cell(r, m.bench+"/"+e))
		}
		out = append(out, rw)
		if strings.HasPrefix(m.name, "3.") {
			out = append(out, row{measurement: "4. native `python3 -c` per task (baseline)", perEngine: []string{native, native}})
		}
	}
	return out
}

func render(w io.Writer, rows []row) {
	fmt.Fprintf(w, "| measurement | %s | beside it | target | verdict |\n", strings.Join(engines, " | "))
	fmt.Fprintf(w, "|---|%s---|---|---|\n", strings.Repeat("---:|", len(engines)))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.measurement, strings.Join(r.perEngine, " | "), r.baseline, r.target, r.verdict)
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
