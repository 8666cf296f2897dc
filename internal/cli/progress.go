package cli

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/runner"
)

// progress prints a line per task event and a summary table.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	start time.Time
	order []string
}

func newProgress(w io.Writer, wf *project.Workflow) *progress {
	p := &progress{w: w, start: time.Now(), order: wf.Order}
	for _, n := range wf.Order {
		if len(n) > p.width {
			p.width = len(n)
		}
	}
	return p
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *progress) TaskStarted(task string) {
	p.printf("%-*s  started\n", p.width, task)
}

func (p *progress) TaskFinished(task string, r *runner.TaskResult) {
	d := formatMS(r.DurationMS)
	if r.Error != nil {
		p.printf("%-*s  %s after %s: %s\n", p.width, task, r.Status, d, *r.Error)
		return
	}
	p.printf("%-*s  %s in %s\n", p.width, task, r.Status, d)
}

func (p *progress) TaskSkipped(task, reason string) {
	p.printf("%-*s  skipped: %s\n", p.width, task, reason)
}

func (p *progress) TaskLog(task string, l runner.LogLine) {
	level := ""
	if l.Source == "log" || l.Level == "error" {
		level = strings.ToUpper(l.Level) + " "
	}
	p.printf("%-*s | %s%s%s\n", p.width, task, level, l.Message, runner.FormatFields(l.Fields))
}

func (p *progress) summary(s *runner.Summary, runDir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tDURATION\tMETRICS")
	counts := map[string]int{}
	for _, name := range p.order {
		r := s.Tasks[name]
		if r == nil {
			continue
		}
		counts[r.Status]++
		ms := formatMetrics(r.Metrics)
		if len(ms) == 0 {
			ms = []string{"-"}
		}
		dur := "-"
		if r.Status != "skipped" {
			dur = formatMS(r.DurationMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, r.Status, dur, ms[0])
		for _, m := range ms[1:] {
			fmt.Fprintf(tw, "\t\t\t%s\n", m)
		}
	}
	tw.Flush()
	var parts []string
	for _, st := range []string{"succeeded", "failed", "cancelled", "skipped"} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	fmt.Fprintf(p.w, "\nrun %s %s in %s (%s); outputs and logs in %s\n",
		s.RunID, s.Status, time.Since(p.start).Round(time.Millisecond), strings.Join(parts, ", "), runDir)
}

func formatMS(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return (time.Duration(ms * float64(time.Millisecond))).Round(10 * time.Millisecond).String()
	}
}

// formatMetrics renders each metric point as name{k=v,...} value.
func formatMetrics(ms []abi.Metric) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, formatSeries(m.Name, m.Labels)+" "+formatValue(m.Value))
	}
	return out
}

// formatSeries renders name{k=v,...} with labels in key order.
func formatSeries(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	if len(keys) > 0 {
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%s=%s", k, labels[k])
		}
		b.WriteString("}")
	}
	return b.String()
}

// formatValue prints integral values without an exponent.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
