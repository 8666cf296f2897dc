// Package telemetry exports the metrics that ork's tasks record: as a
// Prometheus text exposition of a run (WritePrometheus), and pushed over
// OTLP/HTTP to an OpenTelemetry collector at the end of each task (Exporter).
package telemetry

import (
	"time"

	"github.com/orkrun/ork/abi"
)

// Point is one metric point recorded by a task attempt.
type Point struct {
	Task    string
	Attempt int
	Name    string
	Value   float64
	Labels  map[string]string
	Time    time.Time
}

// Labels ork adds to every exported task metric, unless the task set a
// (non-empty) label of the same name itself.
const (
	LabelRunID    = "run_id"
	LabelWorkflow = "workflow"
	LabelTask     = "task"
	LabelAttempt  = "attempt" // OTLP only
)

// Points turns the metrics a task attempt recorded into Points stamped with
// task, attempt and time.
func Points(task string, attempt int, at time.Time, ms []abi.Metric) []Point {
	ps := make([]Point, 0, len(ms))
	for _, m := range ms {
		ps = append(ps, Point{Task: task, Attempt: attempt, Name: m.Name, Value: m.Value, Labels: m.Labels, Time: at})
	}
	return ps
}
