package telemetry

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
)

// parseProm parses a text exposition with the Prometheus text parser,
// restricted to the legacy (pre-UTF-8) name charset so that a name needing
// sanitizing would fail the parse.
func parseProm(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err, text)
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	ls := map[string]string{}
	for _, l := range m.GetLabel() {
		ls[l.GetName()] = l.GetValue()
	}
	return ls
}

// sampleWith returns the value of the family's sample with exactly labels.
func sampleWith(t *testing.T, mf *dto.MetricFamily, labels map[string]string) float64 {
	t.Helper()
	for _, m := range mf.GetMetric() {
		if assert.ObjectsAreEqual(labels, labelsOf(m)) {
			return m.GetGauge().GetValue()
		}
	}
	var have []map[string]string
	for _, m := range mf.GetMetric() {
		have = append(have, labelsOf(m))
	}
	t.Fatalf("%s: no sample with labels %v; have %v", mf.GetName(), labels, have)
	return 0
}

func TestWritePrometheus(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	nasty := "say \"hi\"\\ to C:\\tmp\nand a second line"
	points := []Point{
		{Task: "load", Attempt: 1, Name: "rows", Value: 10, Labels: map[string]string{"table": "users"}, Time: t0},
		// Same family and labels, later attempt: wins even though earlier in time.
		{Task: "load", Attempt: 2, Name: "rows", Value: 12, Labels: map[string]string{"table": "users"}, Time: t0.Add(-time.Hour)},
		// Same attempt, later time, listed before: wins over the next one.
		{Task: "load", Attempt: 2, Name: "rows", Value: 99, Labels: map[string]string{"table": "orders"}, Time: t0.Add(2 * time.Second)},
		{Task: "load", Attempt: 2, Name: "rows", Value: 98, Labels: map[string]string{"table": "orders"}, Time: t0.Add(time.Second)},
		// Same everything: the later one in the slice wins.
		{Task: "extract", Attempt: 1, Name: "rows", Value: 1, Time: t0},
		{Task: "extract", Attempt: 1, Name: "rows", Value: 2, Time: t0},
		// A user label "task" is kept over ork's; an empty one is not.
		{Task: "extract", Attempt: 1, Name: "bytes_total", Value: 2048, Labels: map[string]string{"task": "mine"}, Time: t0},
		{Task: "extract", Attempt: 1, Name: "bytes_total", Value: 4096, Labels: map[string]string{"task": "", "run_id": "custom"}, Time: t0},
		// Label values that need escaping.
		{Task: "extract", Attempt: 1, Name: "ratio", Value: 0.25, Labels: map[string]string{"note": nasty}, Time: t0},
		// A name and label names that need sanitizing.
		{Task: "report", Attempt: 1, Name: "latency.p99 (ms)", Value: -1.5, Labels: map[string]string{"http.route": "/a", "__name__": "x", "9lives": "y"}, Time: t0},
		{Task: "report", Attempt: 1, Name: "2xx", Value: 7, Time: t0},
	}
	var buf bytes.Buffer
	require.NoError(t, WritePrometheus(&buf, "run-1", "etl", points))
	text := buf.String()
	t.Log("\n" + text)

	fams := parseProm(t, text)
	want := []string{"_2xx", "bytes_total", "latency_p99__ms_", "ratio", "rows"}
	var got []string
	for n := range fams {
		got = append(got, n)
	}
	assert.ElementsMatch(t, want, got)

	// Families come out sorted by name, each with HELP and TYPE gauge.
	var order []string
	for line := range strings.Lines(text) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			assert.True(t, strings.HasSuffix(name, " gauge\n"), line)
			order = append(order, strings.Fields(name)[0])
		}
	}
	assert.Equal(t, want, order)
	for _, mf := range fams {
		assert.Equal(t, dto.MetricType_GAUGE, mf.GetType(), mf.GetName())
		assert.Equal(t, "ork task metric", mf.GetHelp(), mf.GetName())
		for _, m := range mf.GetMetric() {
			assert.Zero(t, m.GetTimestampMs(), "no timestamps")
		}
	}

	rows := fams["rows"]
	assert.Len(t, rows.GetMetric(), 3)
	ork := func(task string, extra ...string) map[string]string {
		ls := map[string]string{"run_id": "run-1", "workflow": "etl", "task": task}
		for i := 0; i < len(extra); i += 2 {
			ls[extra[i]] = extra[i+1]
		}
		return ls
	}
	assert.Equal(t, 12.0, sampleWith(t, rows, ork("load", "table", "users")))
	assert.Equal(t, 99.0, sampleWith(t, rows, ork("load", "table", "orders")))
	assert.Equal(t, 2.0, sampleWith(t, rows, ork("extract")))

	bt := fams["bytes_total"]
	assert.Len(t, bt.GetMetric(), 2)
	assert.Equal(t, 2048.0, sampleWith(t, bt, ork("mine")))
	assert.Equal(t, 4096.0, sampleWith(t, bt, ork("extract", "run_id", "custom")))

	assert.Equal(t, 0.25, sampleWith(t, fams["ratio"], ork("extract", "note", nasty)))
	assert.Contains(t, text, `note="say \"hi\"\\ to C:\\tmp\nand a second line"`)

	assert.Equal(t, -1.5, sampleWith(t, fams["latency_p99__ms_"],
		ork("report", "http_route", "/a", "label__name__", "x", "_9lives", "y")))
	assert.Equal(t, 7.0, sampleWith(t, fams["_2xx"], ork("report")))
}

func TestWritePrometheusEdges(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WritePrometheus(&buf, "r", "w", nil))
	assert.Empty(t, buf.String())

	// Empty run id and workflow are left out; invalid UTF-8 is replaced.
	buf.Reset()
	require.NoError(t, WritePrometheus(&buf, "", "", []Point{{Task: "t", Name: "x", Value: 1, Labels: map[string]string{"bad": "a\xffb"}}}))
	fams := parseProm(t, buf.String())
	assert.Equal(t, map[string]string{"task": "t", "bad": "a\uFFFDb"}, labelsOf(fams["x"].GetMetric()[0]))

	// Labels that sanitize to one name: the one already valid wins.
	buf.Reset()
	require.NoError(t, WritePrometheus(&buf, "", "", []Point{{Task: "t", Name: "x", Value: 1, Labels: map[string]string{"a-b": "dash", "a_b": "underscore", "a.b": "dot"}}}))
	fams = parseProm(t, buf.String())
	assert.Equal(t, map[string]string{"task": "t", "a_b": "underscore"}, labelsOf(fams["x"].GetMetric()[0]))

	assert.Error(t, WritePrometheus(&buf, "", "", []Point{{Task: "t", Value: 1}}))

	assert.ErrorIs(t, WritePrometheus(failWriter{}, "", "", []Point{{Task: "t", Name: "x", Value: 1}}), errWrite)
}

func TestPrometheusNames(t *testing.T) {
	for in, want := range map[string]string{
		"rows":        "rows",
		"ns:rows_2":   "ns:rows_2",
		"_x":          "_x",
		"http.req-ms": "http_req_ms",
		"9lives":      "_9lives",
		"é":           "_",
		"":            "_",
	} {
		assert.Equal(t, want, PrometheusName(in), in)
		assert.True(t, model.LegacyValidation.IsValidMetricName(PrometheusName(in)), in)
	}
	for in, want := range map[string]string{
		"table":    "table",
		"a:b":      "a_b",
		"__name__": "label__name__",
		"_x":       "_x",
		"1":        "_1",
	} {
		assert.Equal(t, want, PrometheusLabelName(in), in)
		assert.True(t, model.LegacyValidation.IsValidLabelName(PrometheusLabelName(in)), in)
	}
}

func TestPoints(t *testing.T) {
	at := time.Unix(100, 0)
	ps := Points("load", 2, at, []abi.Metric{{Name: "rows", Value: 3, Labels: map[string]string{"k": "v"}}})
	assert.Equal(t, []Point{{Task: "load", Attempt: 2, Name: "rows", Value: 3, Labels: map[string]string{"k": "v"}, Time: at}}, ps)
}

var errWrite = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }
