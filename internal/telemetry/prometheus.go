package telemetry

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// PrometheusHelp is the HELP text of every family WritePrometheus writes.
const PrometheusHelp = "ork task metric"

// WritePrometheus writes points in the Prometheus text exposition format
// (version 0.0.4), one gauge family per metric name, families sorted by name.
//
// A family is named after the task's metric, sanitized to the Prometheus
// charset [a-zA-Z_:][a-zA-Z0-9_:]* (see PrometheusName). Its samples carry the
// task's labels (names sanitized with PrometheusLabelName) plus run_id,
// workflow and task; a label the task set itself to a non-empty value is kept
// over ork's. A label with an empty value is left out, as Prometheus equates
// it with an absent label.
//
// Points of one family with the same label set collapse into one sample: the
// point of the highest attempt wins, then the latest Time, then the one later
// in points. Samples carry no timestamp: the exposition is a snapshot of the
// run's last values, and explicit timestamps would make Prometheus treat the
// samples as out of order or stale when it (or a Pushgateway, which refuses
// them) ingests the file after the fact.
func WritePrometheus(w io.Writer, runID, workflow string, points []Point) error {
	type sample struct {
		labels []*dto.LabelPair
		key    string
		p      *Point
		index  int
	}
	fams := map[string]map[string]*sample{}
	for i := range points {
		p := &points[i]
		if p.Name == "" {
			return fmt.Errorf("telemetry: metric point %d of task %q has no name", i, p.Task)
		}
		name := PrometheusName(p.Name)
		labels := promLabels(p, runID, workflow)
		key := labelKey(labels)
		fam := fams[name]
		if fam == nil {
			fam = map[string]*sample{}
			fams[name] = fam
		}
		if s := fam[key]; s == nil || !supersedes(s.p, s.index, p, i) {
			fam[key] = &sample{labels: labels, key: key, p: p, index: i}
		}
	}

	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	slices.Sort(names)

	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, name := range names {
		samples := make([]*sample, 0, len(fams[name]))
		for _, s := range fams[name] {
			samples = append(samples, s)
		}
		slices.SortFunc(samples, func(a, b *sample) int { return strings.Compare(a.key, b.key) })
		mf := &dto.MetricFamily{
			Name: new(name),
			Help: new(PrometheusHelp),
			Type: dto.MetricType_GAUGE.Enum(),
		}
		for _, s := range samples {
			mf.Metric = append(mf.Metric, &dto.Metric{
				Label: s.labels,
				Gauge: &dto.Gauge{Value: new(s.p.Value)},
			})
		}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("telemetry: writing metric %s: %w", name, err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

// supersedes reports whether point a (at index i) wins over point b (at
// index j) for the same sample: higher attempt, then later time, then later
// index.
func supersedes(a *Point, i int, b *Point, j int) bool {
	if c := cmp.Compare(a.Attempt, b.Attempt); c != 0 {
		return c > 0
	}
	if c := a.Time.Compare(b.Time); c != 0 {
		return c > 0
	}
	return i > j
}

// promLabels returns p's label pairs, sorted by name: its own labels
// (sanitized, empty values dropped) and ork's run_id, workflow and task where
// the task did not set them.
func promLabels(p *Point, runID, workflow string) []*dto.LabelPair {
	set := make(map[string]string, len(p.Labels)+3)
	// A label whose name needs no sanitizing wins over one that sanitizes to
	// the same name; among those that both need it, the smaller original name.
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	exact := map[string]bool{}
	for _, k := range keys {
		v := p.Labels[k]
		if v == "" {
			continue
		}
		n := PrometheusLabelName(k)
		if _, taken := set[n]; taken && (exact[n] || n != k) {
			continue
		}
		set[n] = v
		exact[n] = n == k
	}
	for _, l := range [...]struct{ name, value string }{
		{LabelRunID, runID}, {LabelWorkflow, workflow}, {LabelTask, p.Task},
	} {
		if _, ok := set[l.name]; !ok && l.value != "" {
			set[l.name] = l.value
		}
	}
	pairs := make([]*dto.LabelPair, 0, len(set))
	for n, v := range set {
		pairs = append(pairs, &dto.LabelPair{Name: new(n), Value: new(strings.ToValidUTF8(v, string(utf8.RuneError)))})
	}
	slices.SortFunc(pairs, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return pairs
}

// labelKey is a canonical form of sorted label pairs.
func labelKey(pairs []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range pairs {
		b.WriteString(l.GetName())
		b.WriteByte(0xff) // never in a valid name or UTF-8 value
		b.WriteString(l.GetValue())
		b.WriteByte(0xff)
	}
	return b.String()
}

// PrometheusName maps a metric name to the Prometheus metric name charset
// [a-zA-Z_:][a-zA-Z0-9_:]*: each other character becomes '_', and a leading
// digit is kept behind a '_' prefix ("1 rows/s" becomes "_1_rows_s"). Names
// ork's ABI accepts are returned unchanged; the empty name becomes "_".
func PrometheusName(s string) string {
	return sanitize(s, func(r rune, first bool) bool {
		return r == '_' || r == ':' || isASCIILetter(r) || (!first && isASCIIDigit(r))
	})
}

// PrometheusLabelName maps a label name to the Prometheus label name charset
// [a-zA-Z_][a-zA-Z0-9_]*, like PrometheusName. Names starting with "__",
// which Prometheus reserves for itself (__name__ would rename the sample), get
// a "label" prefix. The empty name becomes "_".
func PrometheusLabelName(s string) string {
	n := sanitize(s, func(r rune, first bool) bool {
		return r == '_' || isASCIILetter(r) || (!first && isASCIIDigit(r))
	})
	if strings.HasPrefix(n, "__") {
		n = "label" + n
	}
	return n
}

func sanitize(s string, valid func(r rune, first bool) bool) string {
	if s == "" {
		return "_"
	}
	ok := true
	for i, r := range s {
		if !valid(r, i == 0) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case valid(r, i == 0):
			b.WriteRune(r)
		case i == 0 && isASCIIDigit(r):
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isASCIILetter(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }
func isASCIIDigit(r rune) bool  { return '0' <= r && r <= '9' }
