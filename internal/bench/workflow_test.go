package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orkrun/ork/internal/cli"
	"github.com/orkrun/ork/internal/runner"
	"github.com/orkrun/ork/internal/store"
	"github.com/orkrun/ork/internal/testguests"
)

// Workflow throughput and memory, through `ork run` itself (the cobra
// command, in process: project loading, the run store, the scheduler, the
// progress output), one 1,000-task workflow per iteration.

const workflowTasks = 1000

// orkRun runs `ork run ARGS --json` in process and returns its summary.
func orkRun(b *testing.B, args ...string) *runner.Summary {
	b.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(append([]string{"run", "--json"}, args...), strings.NewReader(""), &out, &errOut)
	if code != 0 {
		b.Fatalf("ork run %s: exit %d\n%s", strings.Join(args, " "), code, tail(errOut.String(), 4000))
	}
	if strings.Contains(errOut.String(), "warning:") {
		b.Fatalf("ork run %s warned:\n%s", strings.Join(args, " "), tail(errOut.String(), 4000))
	}
	var sum runner.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		b.Fatalf("ork run --json printed no summary: %v", err)
	}
	return &sum
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// throughputProject writes a project whose workflow has workflowTasks tasks
// of the given executor, independent or each depending on the one before.
func throughputProject(b *testing.B, lang string, chain bool) string {
	b.Helper()
	dir := b.TempDir()
	files := map[string]string{"ork.yaml": "executors: {}\n"}
	var wf strings.Builder
	wf.WriteString("name: throughput\ntasks:\n")
	for i := 0; i < workflowTasks; i++ {
		fmt.Fprintf(&wf, "  t%04d:\n    executor: %s\n    config_file: t.yaml\n", i, lang)
		if chain && i > 0 {
			fmt.Fprintf(&wf, "    depends_on: [t%04d]\n", i-1)
		}
	}
	files["wf.yaml"] = wf.String()
	switch lang {
	case "python":
		files["t.yaml"] = "file: t.py\n"
		files["t.py"] = "def run(ctx, upstream):\n    return {'ok': True, 'up': len(upstream)}\n"
	case "rust":
		bin, err := os.ReadFile(testguests.Module(b, "probe"))
		if err != nil {
			b.Fatal(err)
		}
		files["t.yaml"] = "module: probe.wasm\nparams: {action: trivial}\n"
		files["probe.wasm"] = string(bin)
	}
	writeFiles(b, dir, files)
	return dir
}

// benchThroughput runs the workflow b.N times and reports tasks per second
// and the p50/p99 of task latency: from the attempt's start to its end as
// the run store recorded them (sandbox, host calls, recording).
func benchThroughput(b *testing.B, lang string, chain bool) {
	forEngines(b, func(b *testing.B, engine string) { benchThroughputOn(b, engine, lang, chain) })
}

func benchThroughputOn(b *testing.B, engine, lang string, chain bool) {
	testguests.UseDebianToolchain()
	b.Setenv("ORK_CACHE_DIR", testguests.CacheDir())
	dir := throughputProject(b, lang, chain)
	db := filepath.Join(dir, ".ork", "bench.db")
	args := []string{filepath.Join(dir, "wf.yaml"), "--project", dir, "--db", db, "--engine", engine}
	// Warm: compile caches, SDK bytecode, the Python snapshot (one task).
	warm := filepath.Join(dir, "warm.yaml")
	writeFiles(b, dir, map[string]string{"warm.yaml": "name: warm\ntasks:\n  t:\n    executor: " + lang + "\n    config_file: t.yaml\n"})
	orkRun(b, warm, "--project", dir, "--db", db, "--engine", engine)

	var lat []float64
	var wall time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sum := orkRun(b, args...)
		wall += time.Since(start)
		b.StopTimer()
		if sum.Status != runner.StatusSucceeded || len(sum.Tasks) != workflowTasks {
			b.Fatalf("run %s with %d tasks", sum.Status, len(sum.Tasks))
		}
		lat = append(lat, attemptLatencies(b, db, sum.RunID)...)
		os.RemoveAll(runner.RunDir(dir, sum.RunID))
		b.StartTimer()
	}
	b.StopTimer()
	sort.Float64s(lat)
	b.ReportMetric(float64(workflowTasks*b.N)/wall.Seconds(), "tasks/s")
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/run")
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
	b.ReportMetric(0, "ns/op") // runs of 1,000 tasks: ns/op says nothing
}

func attemptLatencies(b *testing.B, db, runID string) []float64 {
	b.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	atts, err := st.Attempts(context.Background(), runID)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, 0, len(atts))
	for _, a := range atts {
		if a.EndedAt != nil {
			out = append(out, float64(a.EndedAt.Sub(a.StartedAt).Microseconds())/1000)
		}
	}
	return out
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// BenchmarkWorkflowPythonIndependent: 1,000 independent trivial Python tasks.
func BenchmarkWorkflowPythonIndependent(b *testing.B) { benchThroughput(b, "python", false) }

// BenchmarkWorkflowPythonChain: a chain of 1,000 trivial Python tasks.
func BenchmarkWorkflowPythonChain(b *testing.B) { benchThroughput(b, "python", true) }

// BenchmarkWorkflowRustIndependent: 1,000 independent trivial Rust tasks.
func BenchmarkWorkflowRustIndependent(b *testing.B) { benchThroughput(b, "rust", false) }

// BenchmarkWorkflowRustChain: a chain of 1,000 trivial Rust tasks.
func BenchmarkWorkflowRustChain(b *testing.B) { benchThroughput(b, "rust", true) }

// BenchmarkMemoryPythonSandboxes: the host's resident memory with 50 Python
// sandboxes live at once (each task sleeps, so all 50 overlap), against the
// same process idle after a warm-up run.
func BenchmarkMemoryPythonSandboxes(b *testing.B) {
	forEngines(b, benchMemoryOn)
}

func benchMemoryOn(b *testing.B, engine string) {
	const live = 50
	testguests.UseDebianToolchain()
	b.Setenv("ORK_CACHE_DIR", testguests.CacheDir())
	dir := b.TempDir()
	var wf strings.Builder
	wf.WriteString("name: memory\ntasks:\n")
	for i := 0; i < live; i++ {
		fmt.Fprintf(&wf, "  t%02d:\n    executor: python\n    config_file: t.yaml\n", i)
	}
	writeFiles(b, dir, map[string]string{
		"ork.yaml": "executors: {}\n",
		"wf.yaml":  wf.String(),
		"warm.yaml": "name: warm\ntasks:\n  t:\n    executor: python\n    config_file: t.yaml\n" +
			"    timeout: 1m\n",
		"t.yaml": "file: t.py\n",
		// Each task touches a little memory of its own, then waits.
		"t.py": "import time\ndef run(ctx, upstream):\n    data = [str(i) for i in range(1000)]\n    time.sleep(3)\n    return {'n': len(data)}\n",
	})
	db := filepath.Join(dir, ".ork", "bench.db")
	var idle, peak float64
	for i := 0; i < b.N; i++ {
		orkRun(b, filepath.Join(dir, "warm.yaml"), "--project", dir, "--db", db, "--engine", engine)
		idle = rssMiB(b, "VmRSS")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var max float64
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if v := rssMiB(b, "VmRSS"); v > max {
						max = v
					}
				}
			}
		}()
		sum := orkRun(b, filepath.Join(dir, "wf.yaml"), "--project", dir, "--db", db, "--engine", engine, "--concurrency", strconv.Itoa(live))
		close(stop)
		wg.Wait()
		if sum.Status != runner.StatusSucceeded {
			b.Fatalf("run %s", sum.Status)
		}
		peak = max
	}
	b.ReportMetric(idle, "idle-MiB")
	b.ReportMetric(peak, "live50-MiB")
	b.ReportMetric((peak-idle)/live, "MiB/sandbox")
	b.ReportMetric(0, "ns/op")
}

// rssMiB reads a memory figure of this process from /proc/self/status.
func rssMiB(b *testing.B, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: RSS is measured on Linux only")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
