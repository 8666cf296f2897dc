package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Names of the metrics ork itself reports for each task.
const (
	MetricTaskDuration = "ork.task.duration" // histogram, seconds; attributes task, status
	MetricTasks        = "ork.tasks"         // counter; attributes task, status, reason (when set)
)

// Resource attributes that identify the run.
const (
	AttrWorkflow = "ork.workflow"
	AttrRunID    = "ork.run_id"
)

// PushTimeout bounds each PushTask and Close.
const PushTimeout = 5 * time.Second

const scopeName = "github.com/orkrun/ork"

// durationBuckets are the ork.task.duration histogram bounds, in seconds:
// from sub-second tasks to hour-long ones.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Resource identifies what an Exporter reports for.
type Resource struct {
	ServiceName    string // "ork" when empty
	ServiceVersion string
	Workflow       string
	RunID          string
}

// TaskReport is what PushTask sends at the end of a task.
type TaskReport struct {
	Task     string
	Attempt  int
	Status   string // succeeded, failed, skipped, cancelled
	Reason   string // why it failed ("" when it did not)
	Duration time.Duration
	Points   []Point
}

// Exporter pushes each finished task's metrics to an OpenTelemetry collector
// over OTLP/HTTP (protobuf).
//
// Each PushTask records the task's metrics with the OpenTelemetry metrics SDK
// and then collects and exports them synchronously, in exactly one OTLP
// request: the Exporter uses a ManualReader, so nothing is exported in the
// background, at a timer or at Close. Temporality per instrument:
//
//   - task metric points are gauges with delta temporality: an export holds
//     the values recorded by the pushed task only, never a stale value of an
//     earlier task. Their attributes are the task's labels plus task and
//     attempt (a label the task set itself to a non-empty value is kept).
//   - ork.task.duration (histogram, "s") and ork.tasks (counter) are
//     cumulative, as Prometheus-style backends expect, unless
//     OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE asks otherwise: each
//     export carries the run's totals so far, so a failed export loses no
//     count, only the failed task's gauge values.
//
// The standard OTEL_EXPORTER_OTLP_* variables for headers, compression and
// the like apply; the endpoint is the one given to NewExporter.
//
// An Exporter is safe for concurrent use; PushTask calls are serialized.
type Exporter struct {
	sem      chan struct{} // held while recording and exporting
	exp      *otlpmetrichttp.Exporter
	reader   *sdkmetric.ManualReader
	provider *sdkmetric.MeterProvider
	meter    metric.Meter
	timeout  time.Duration
	closed   bool

	gauges   map[string]metric.Float64Gauge
	duration metric.Float64Histogram
	tasks    metric.Int64Counter
}

// ErrClosed is returned by PushTask after Close.
var ErrClosed = errors.New("telemetry: exporter is closed")

// NewExporter returns an Exporter that pushes to the OTLP/HTTP collector at
// endpoint: a base URL such as "http://127.0.0.1:4318" (to which
// /v1/metrics is appended), a full metrics URL ending in /v1/metrics, or a
// bare host:port, taken as http. It makes no connection.
func NewExporter(ctx context.Context, endpoint string, res Resource) (*Exporter, error) {
	return newExporter(ctx, endpoint, res, PushTimeout)
}

func newExporter(ctx context.Context, endpoint string, res Resource, timeout time.Duration) (*Exporter, error) {
	u, err := MetricsURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlpmetrichttp.New(ctx,
		otlpmetrichttp.WithEndpointURL(u),
		otlpmetrichttp.WithTimeout(timeout),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{
			Enabled:         true,
			InitialInterval: 250 * time.Millisecond,
			MaxInterval:     time.Second,
			MaxElapsedTime:  timeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", u, err)
	}
	r, err := res.otel()
	if err != nil {
		return nil, err
	}
	reader := sdkmetric.NewManualReader(
		sdkmetric.WithTemporalitySelector(func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindGauge, sdkmetric.InstrumentKindObservableGauge:
				return metricdata.DeltaTemporality
			}
			return exp.Temporality(k)
		}),
		sdkmetric.WithAggregationSelector(exp.Aggregation),
	)
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(r),
		sdkmetric.WithReader(reader),
		// The run bounds what is recorded: at most abi.MaxMetricPoints
		// points per task and a series per task and status.
		sdkmetric.WithCardinalityLimit(0),
	)
	meter := provider.Meter(scopeName, metric.WithInstrumentationVersion(res.ServiceVersion))
	e := &Exporter{
		sem:      make(chan struct{}, 1),
		exp:      exp,
		reader:   reader,
		provider: provider,
		meter:    meter,
		timeout:  timeout,
		gauges:   map[string]metric.Float64Gauge{},
	}
	if e.duration, err = meter.Float64Histogram(MetricTaskDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of an ork task attempt"),
		metric.WithExplicitBucketBoundaries(durationBuckets...),
	); err != nil {
		return nil, errors.Join(err, e.shutdown(ctx))
	}
	if e.tasks, err = meter.Int64Counter(MetricTasks,
		metric.WithUnit("{task}"),
		metric.WithDescription("ork tasks finished, by status"),
	); err != nil {
		return nil, errors.Join(err, e.shutdown(ctx))
	}
	return e, nil
}

// MetricsURL returns the OTLP/HTTP metrics URL for endpoint (see
// NewExporter).
func MetricsURL(endpoint string) (string, error) {
	s := strings.TrimSpace(endpoint)
	if s == "" {
		return "", errors.New("telemetry: empty OTLP endpoint")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("telemetry: OTLP endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("telemetry: OTLP endpoint %q: scheme must be http or https", endpoint)
	}
	if u.Host == "" {
		return "", fmt.Errorf("telemetry: OTLP endpoint %q has no host", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("telemetry: OTLP endpoint %q: want scheme://host:port[/path] only", endpoint)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if !strings.HasSuffix(u.Path, "/v1/metrics") {
		u.Path += "/v1/metrics"
	}
	return u.String(), nil
}

func (r Resource) otel() (*resource.Resource, error) {
	name := cmp.Or(r.ServiceName, "ork")
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if r.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(r.ServiceVersion))
	}
	if r.Workflow != "" {
		attrs = append(attrs, attribute.String(AttrWorkflow, r.Workflow))
	}
	if r.RunID != "" {
		attrs = append(attrs, attribute.String(AttrRunID, r.RunID))
	}
	// The defaults add telemetry.sdk.* and OTEL_RESOURCE_ATTRIBUTES; ours win.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// PushTask records t and exports it, returning once the collector has
// answered, or with an error after PushTimeout (or when ctx ends). To report
// tasks of a cancelled run, pass context.WithoutCancel(ctx).
func (e *Exporter) PushTask(ctx context.Context, t TaskReport) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("telemetry: pushing task %s: %w", t.Task, context.Cause(ctx))
	}
	defer func() { <-e.sem }()
	if e.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("telemetry: pushing task %s: %w", t.Task, context.Cause(ctx))
	}

	var errs []error
	// Record in time order, so that of two points of one gauge and
	// attribute set the later one is exported.
	points := slices.Clone(t.Points)
	slices.SortStableFunc(points, func(a, b Point) int { return a.Time.Compare(b.Time) })
	for _, p := range points {
		g, err := e.gauge(p.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.Record(ctx, p.Value, metric.WithAttributeSet(pointAttrs(p, t)))
	}

	status := attribute.String("status", t.Status)
	task := attribute.String(LabelTask, t.Task)
	e.duration.Record(ctx, max(t.Duration, 0).Seconds(), metric.WithAttributes(task, status))
	if t.Reason != "" {
		e.tasks.Add(ctx, 1, metric.WithAttributes(task, status, attribute.String("reason", t.Reason)))
	} else {
		e.tasks.Add(ctx, 1, metric.WithAttributes(task, status))
	}

	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(ctx, &rm); err != nil {
		// Drain what was recorded, so that none of this task's gauge
		// values goes out with the next task's export.
		_ = e.reader.Collect(context.WithoutCancel(ctx), &metricdata.ResourceMetrics{})
		return errors.Join(append(errs, fmt.Errorf("telemetry: collecting task %s: %w", t.Task, err))...)
	}
	if err := e.exp.Export(ctx, &rm); err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
			err = fmt.Errorf("%w (%w)", err, c)
		}
		errs = append(errs, fmt.Errorf("telemetry: pushing task %s: %w", t.Task, err))
	}
	return errors.Join(errs...)
}

// gauge returns the gauge for the task metric name.
func (e *Exporter) gauge(name string) (metric.Float64Gauge, error) {
	n := OTelName(name)
	if g, ok := e.gauges[n]; ok {
		return g, nil
	}
	g, err := e.meter.Float64Gauge(n, metric.WithDescription(PrometheusHelp))
	if err != nil {
		return nil, fmt.Errorf("telemetry: metric %q: %w", name, err)
	}
	e.gauges[n] = g
	return g, nil
}

// pointAttrs returns a point's attributes: its labels, then task and attempt
// (those of the report where the point has none) unless set by the task.
func pointAttrs(p Point, t TaskReport) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, len(p.Labels)+2)
	for k, v := range p.Labels {
		if v == "" && (k == LabelTask || k == LabelAttempt) {
			continue // an empty label does not hide ork's
		}
		kvs = append(kvs, attribute.String(k, v))
	}
	if v := p.Labels[LabelTask]; v == "" {
		kvs = append(kvs, attribute.String(LabelTask, cmp.Or(p.Task, t.Task)))
	}
	if v := p.Labels[LabelAttempt]; v == "" {
		kvs = append(kvs, attribute.Int(LabelAttempt, cmp.Or(p.Attempt, t.Attempt)))
	}
	return attribute.NewSet(kvs...)
}

// OTelName maps a task metric name to an OpenTelemetry instrument name,
// [A-Za-z][A-Za-z0-9_.\-/]{0,254}: other characters become '_', a name not
// starting with a letter gets a "metric" prefix, and the names of ork's own
// metrics a "task." prefix. Names valid for both Prometheus and
// OpenTelemetry, such as "rows_loaded", are returned unchanged.
func OTelName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case isASCIILetter(r), isASCIIDigit(r), r == '_', r == '.', r == '-', r == '/':
			if i == 0 && !isASCIILetter(r) {
				b.WriteString("metric")
				if r != '_' {
					b.WriteByte('_')
				}
			}
			b.WriteRune(r)
		default:
			if i == 0 {
				b.WriteString("metric")
			}
			b.WriteByte('_')
		}
	}
	n := cmp.Or(b.String(), "metric")
	if strings.EqualFold(n, MetricTaskDuration) || strings.EqualFold(n, MetricTasks) {
		n = "task." + n
	}
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// Close shuts the Exporter down. It sends nothing: every PushTask has
// already exported what it recorded.
func (e *Exporter) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("telemetry: closing exporter: %w", context.Cause(ctx))
	}
	defer func() { <-e.sem }()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.shutdown(ctx)
}

func (e *Exporter) shutdown(ctx context.Context) error {
	err := e.provider.Shutdown(ctx)
	if xerr := e.exp.Shutdown(ctx); xerr != nil {
		err = errors.Join(err, xerr)
	}
	if err != nil {
		return fmt.Errorf("telemetry: closing exporter: %w", err)
	}
	return nil
}
