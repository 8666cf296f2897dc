package telemetry

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an in-test OTLP/HTTP metrics receiver.
type collector struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []*colmetricpb.ExportMetricsServiceRequest
	encoding []string // Content-Encoding of each request
}

func newCollector(t *testing.T) *collector {
	c := &collector{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", c.export)
	c.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) export(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	default:
		http.Error(w, "content encoding "+enc, http.StatusUnsupportedMediaType)
		return
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &colmetricpb.ExportMetricsServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.encoding = append(c.encoding, enc)
	c.mu.Unlock()
	resp, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (c *collector) received() []*colmetricpb.ExportMetricsServiceRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*colmetricpb.ExportMetricsServiceRequest(nil), c.requests...)
}

// export is one request, flattened.
type export struct {
	resource map[string]any
	metrics  map[string]*metricpb.Metric
}

func flatten(t *testing.T, req *colmetricpb.ExportMetricsServiceRequest) export {
	t.Helper()
	require.Len(t, req.GetResourceMetrics(), 1)
	rm := req.GetResourceMetrics()[0]
	e := export{resource: attrMap(rm.GetResource().GetAttributes()), metrics: map[string]*metricpb.Metric{}}
	for _, sm := range rm.GetScopeMetrics() {
		assert.Equal(t, "github.com/orkrun/ork", sm.GetScope().GetName())
		for _, m := range sm.GetMetrics() {
			require.NotContains(t, e.metrics, m.GetName(), "metric exported twice")
			e.metrics[m.GetName()] = m
		}
	}
	return e
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}

// gaugePoints maps each data point's attributes (as a comparable string) to
// its value.
func gaugePoints(t *testing.T, m *metricpb.Metric) map[string]float64 {
	t.Helper()
	require.NotNil(t, m, "metric missing")
	g := m.GetGauge()
	require.NotNil(t, g, "%s is not a gauge", m.GetName())
	out := map[string]float64{}
	for _, dp := range g.GetDataPoints() {
		out[attrKey(dp.GetAttributes())] = dp.GetAsDouble()
	}
	return out
}

func attrKey(kvs []*commonpb.KeyValue) string {
	return (&commonpb.KeyValueList{Values: kvs}).String()
}

func kvs(pairs ...any) string {
	var out []*commonpb.KeyValue
	for i := 0; i < len(pairs); i += 2 {
		kv := &commonpb.KeyValue{Key: pairs[i].(string)}
		switch v := pairs[i+1].(type) {
		case string:
			kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
		case int:
			kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(v)}}
		}
		out = append(out, kv)
	}
	return attrKey(out) // the SDK exports attributes sorted by key; so must pairs be
}

type histPoint struct {
	count uint64
	sum   float64
}

func histPoints(t *testing.T, m *metricpb.Metric) map[string]histPoint {
	t.Helper()
	require.NotNil(t, m, "metric missing")
	h := m.GetHistogram()
	require.NotNil(t, h, "%s is not a histogram", m.GetName())
	assert.Equal(t, metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, h.GetAggregationTemporality())
	out := map[string]histPoint{}
	for _, dp := range h.GetDataPoints() {
		assert.Equal(t, durationBuckets, dp.GetExplicitBounds())
		out[attrKey(dp.GetAttributes())] = histPoint{dp.GetCount(), dp.GetSum()}
	}
	return out
}

func sumPoints(t *testing.T, m *metricpb.Metric) map[string]int64 {
	t.Helper()
	require.NotNil(t, m, "metric missing")
	s := m.GetSum()
	require.NotNil(t, s, "%s is not a sum", m.GetName())
	assert.True(t, s.GetIsMonotonic())
	assert.Equal(t, metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, s.GetAggregationTemporality())
	out := map[string]int64{}
	for _, dp := range s.GetDataPoints() {
		out[attrKey(dp.GetAttributes())] = dp.GetAsInt()
	}
	return out
}

func TestExporterPushesEachTask(t *testing.T) {
	col := newCollector(t)
	ctx := context.Background()
	e, err := NewExporter(ctx, col.srv.URL, Resource{ServiceVersion: "1.2.3", Workflow: "etl", RunID: "run-42"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(ctx) })

	t0 := time.Now()
	require.NoError(t, e.PushTask(ctx, TaskReport{
		Task: "extract", Attempt: 1, Status: "succeeded", Duration: 1500 * time.Millisecond,
		Points: []Point{
			{Task: "extract", Attempt: 1, Name: "rows", Value: 42, Labels: map[string]string{"table": "users"}, Time: t0},
			// Same gauge and attributes, later: this value is exported.
			{Task: "extract", Attempt: 1, Name: "ratio", Value: 0.75, Time: t0.Add(time.Second)},
			{Task: "extract", Attempt: 1, Name: "ratio", Value: 0.5, Time: t0},
			// The task's own "task" label is kept.
			{Task: "extract", Attempt: 1, Name: "rows", Value: 5, Labels: map[string]string{"task": "mine"}, Time: t0},
		},
	}))
	reqs := col.received()
	require.Len(t, reqs, 1, "one export per PushTask, sent before it returns")
	first := flatten(t, reqs[0])
	assert.Equal(t, "ork", first.resource["service.name"])
	assert.Equal(t, "1.2.3", first.resource["service.version"])
	assert.Equal(t, "etl", first.resource["ork.workflow"])
	assert.Equal(t, "run-42", first.resource["ork.run_id"])
	assert.Equal(t, "go", first.resource["telemetry.sdk.language"])

	assert.ElementsMatch(t, []string{"rows", "ratio", "ork.task.duration", "ork.tasks"}, keys(first.metrics))
	assert.Equal(t, map[string]float64{
		kvs("attempt", 1, "table", "users", "task", "extract"): 42,
		kvs("attempt", 1, "task", "mine"):                      5,
	}, gaugePoints(t, first.metrics["rows"]))
	assert.Equal(t, map[string]float64{kvs("attempt", 1, "task", "extract"): 0.75}, gaugePoints(t, first.metrics["ratio"]))
	assert.Equal(t, "s", first.metrics["ork.task.duration"].GetUnit())
	assert.Equal(t, map[string]histPoint{kvs("status", "succeeded", "task", "extract"): {1, 1.5}},
		histPoints(t, first.metrics["ork.task.duration"]))
	assert.Equal(t, map[string]int64{kvs("status", "succeeded", "task", "extract"): 1},
		sumPoints(t, first.metrics["ork.tasks"]))

	// A second task records the same gauge with the same labels: only its
	// value goes out; the counter and histogram carry the run's totals.
	require.NoError(t, e.PushTask(ctx, TaskReport{
		Task: "load", Attempt: 2, Status: "failed", Reason: "exit", Duration: 250 * time.Millisecond,
		Points: []Point{
			{Task: "load", Attempt: 2, Name: "rows", Value: 7, Labels: map[string]string{"table": "users"}, Time: time.Now()},
		},
	}))
	reqs = col.received()
	require.Len(t, reqs, 2)
	second := flatten(t, reqs[1])
	assert.Equal(t, first.resource, second.resource)
	assert.ElementsMatch(t, []string{"rows", "ork.task.duration", "ork.tasks"}, keys(second.metrics), "no stale ratio gauge")
	assert.Equal(t, map[string]float64{kvs("attempt", 2, "table", "users", "task", "load"): 7},
		gaugePoints(t, second.metrics["rows"]))
	assert.Equal(t, map[string]histPoint{
		kvs("status", "succeeded", "task", "extract"): {1, 1.5},
		kvs("status", "failed", "task", "load"):       {1, 0.25},
	}, histPoints(t, second.metrics["ork.task.duration"]))
	assert.Equal(t, map[string]int64{
		kvs("status", "succeeded", "task", "extract"):             1,
		kvs("reason", "exit", "status", "failed", "task", "load"): 1,
	}, sumPoints(t, second.metrics["ork.tasks"]))

	// A third push of the same task and status adds to the counter.
	require.NoError(t, e.PushTask(ctx, TaskReport{Task: "load", Attempt: 3, Status: "failed", Reason: "exit", Duration: time.Second}))
	reqs = col.received()
	require.Len(t, reqs, 3)
	third := flatten(t, reqs[2])
	assert.NotContains(t, third.metrics, "rows")
	assert.Equal(t, int64(2), sumPoints(t, third.metrics["ork.tasks"])[kvs("reason", "exit", "status", "failed", "task", "load")])
	assert.Equal(t, histPoint{2, 1.25}, histPoints(t, third.metrics["ork.task.duration"])[kvs("status", "failed", "task", "load")])

	require.NoError(t, e.Close(ctx))
	require.NoError(t, e.Close(ctx), "Close twice")
	assert.Len(t, col.received(), 3, "Close sends nothing")
	assert.ErrorIs(t, e.PushTask(ctx, TaskReport{Task: "late"}), ErrClosed)
}

func TestExporterConcurrentPushes(t *testing.T) {
	col := newCollector(t)
	ctx := context.Background()
	e, err := NewExporter(ctx, col.srv.URL, Resource{Workflow: "w", RunID: "r"})
	require.NoError(t, err)
	defer e.Close(ctx)

	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			task := fmt.Sprintf("t%d", i)
			assert.NoError(t, e.PushTask(ctx, TaskReport{Task: task, Attempt: 1, Status: "succeeded",
				Points: []Point{{Name: "rows", Value: float64(i), Labels: map[string]string{"table": "x"}}}}))
		})
	}
	wg.Wait()
	reqs := col.received()
	require.Len(t, reqs, n)
	seen := map[string]bool{}
	for k, req := range reqs {
		got := flatten(t, req)
		// Each export holds its own task's gauge value and nothing else.
		rows := gaugePoints(t, got.metrics["rows"])
		require.Len(t, rows, 1)
		for attrs, v := range rows {
			task := fmt.Sprintf("t%d", int(v))
			assert.Equal(t, kvs("attempt", 1, "table", "x", "task", task), attrs)
			seen[task] = true
		}
		// The counter's total grows by one per export.
		var total int64
		for _, c := range sumPoints(t, got.metrics["ork.tasks"]) {
			total += c
		}
		assert.Equal(t, int64(k+1), total)
	}
	assert.Len(t, seen, n)
}

func TestExporterGzip(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip")
	col := newCollector(t)
	ctx := context.Background()
	// A bare host:port means http.
	e, err := NewExporter(ctx, col.srv.Listener.Addr().String(), Resource{Workflow: "w", RunID: "r"})
	require.NoError(t, err)
	defer e.Close(ctx)
	require.NoError(t, e.PushTask(ctx, TaskReport{Task: "t", Attempt: 1, Status: "succeeded",
		Points: []Point{{Name: "ns:rows", Value: 3}}}))
	require.Len(t, col.received(), 1)
	assert.Equal(t, []string{"gzip"}, col.encoding)
	got := flatten(t, col.received()[0])
	// ':' is not valid in an OpenTelemetry instrument name.
	assert.Equal(t, map[string]float64{kvs("attempt", 1, "task", "t"): 3}, gaugePoints(t, got.metrics["ns_rows"]))
}

func TestExporterUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	ctx := context.Background()
	e, err := NewExporter(ctx, "http://"+addr, Resource{Workflow: "w", RunID: "r"})
	require.NoError(t, err, "NewExporter does not connect")
	defer e.Close(ctx)
	start := time.Now()
	err = e.PushTask(ctx, TaskReport{Task: "t", Attempt: 1, Status: "succeeded", Points: []Point{{Name: "x", Value: 1}}})
	require.Error(t, err)
	assert.Less(t, time.Since(start), PushTimeout)
	assert.Contains(t, err.Error(), "pushing task t")
	t.Log(err)
}

func TestExporterTimeout(t *testing.T) {
	// A collector that accepts the request and never answers.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	e, err := newExporter(ctx, srv.URL, Resource{}, timeout)
	require.NoError(t, err)
	defer e.Close(ctx)
	start := time.Now()
	err = e.PushTask(ctx, TaskReport{Task: "t", Status: "succeeded"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), timeout+2*time.Second)
	t.Log(err)

	// A cancelled context is respected as well.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, e.PushTask(cctx, TaskReport{Task: "t", Status: "succeeded"}), context.Canceled)
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":               "http://127.0.0.1:4318/v1/metrics",
		"http://127.0.0.1:4318/":              "http://127.0.0.1:4318/v1/metrics",
		"127.0.0.1:4318":                      "http://127.0.0.1:4318/v1/metrics",
		"localhost:4318":                      "http://localhost:4318/v1/metrics",
		"https://otel.example:443/v1/metrics": "https://otel.example:443/v1/metrics",
		"https://gw.example/otlp":             "https://gw.example/otlp/v1/metrics",
		"[::1]:4318":                          "http://[::1]:4318/v1/metrics",
	} {
		got, err := MetricsURL(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, bad := range []string{"", "ftp://h:1", "http://", "http://h:1?x=1", "http://u:p@h:1"} {
		_, err := MetricsURL(bad)
		assert.Error(t, err, bad)
	}
	_, err := NewExporter(context.Background(), "ftp://h", Resource{})
	assert.Error(t, err)
}

func TestOTelName(t *testing.T) {
	for in, want := range map[string]string{
		"rows":              "rows",
		"rows_total":        "rows_total",
		"ns:rows":           "ns_rows",
		"_rows":             "metric_rows",
		"1rows":             "metric_1rows",
		":x":                "metric_x",
		"":                  "metric",
		"ork.tasks":         "task.ork.tasks",
		"ORK.task.duration": "task.ORK.task.duration",
	} {
		assert.Equal(t, want, OTelName(in), in)
	}
	long := OTelName(string(make([]byte, 300)))
	assert.Len(t, long, 255)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
