package project

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Retries is a retry policy (`retries:` on an executor or a task).
type Retries struct {
	MaxAttempts int           // attempts in all, >= 1 (1 means no retry)
	Backoff     string        // BackoffConstant or BackoffExponential
	Initial     time.Duration // delay before the second attempt
	Max         time.Duration // upper bound of any delay
	Jitter      float64       // each delay varies by up to this fraction, 0..1
}

// Backoff kinds.
const (
	BackoffConstant    = "constant"
	BackoffExponential = "exponential"
)

// Retry defaults, for the keys a policy leaves out.
const (
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = time.Minute
	maxAttemptsLimit    = 100
)

// NoRetries is the policy when neither the task nor its executor has one.
var NoRetries = Retries{MaxAttempts: 1, Backoff: BackoffExponential, Initial: DefaultRetryInitial, Max: DefaultRetryMax}

// Delay is how long to wait before attempt number next (2, 3, ...), given a
// random number in [0, 1) for the jitter. Max bounds the result, jitter
// included.
func (r Retries) Delay(next int, random float64) time.Duration {
	d := r.Initial
	if r.Backoff == BackoffExponential {
		for i := 2; i < next && d < r.Max; i++ {
			d *= 2
		}
	}
	if d > r.Max {
		d = r.Max
	}
	if r.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + r.Jitter*(2*random-1)))
	}
	if d > r.Max {
		d = r.Max
	}
	if d < 0 {
		d = 0
	}
	return d
}

// Telemetry is ork.yaml's `telemetry:`.
type Telemetry struct {
	OTLPEndpoint string // push task metrics here (OTLP/HTTP), e.g. http://127.0.0.1:4318
}

var (
	retryKeys     = []string{"max_attempts", "backoff", "initial", "max", "jitter"}
	telemetryKeys = []string{"otlp_endpoint"}
)

// decodeRetries reads a retries mapping; owner names it in messages
// (`in executor "csv"`, `in task "load"`).
func (d *fileDecoder) decodeRetries(n *yaml.Node, owner string) (*Retries, bool) {
	r := NoRetries
	if !d.mapping(n, "retries "+owner, "a mapping with the keys "+strings.Join(retryKeys, ", "), false) {
		return nil, false
	}
	ok := true
	kvs, covered := d.fields(n, "in retries "+owner, retryKeys)
	for _, f := range kvs {
		switch f.Name {
		case "max_attempts":
			v, good := d.integer(f.Value, "retries max_attempts", owner, 1, maxAttemptsLimit)
			r.MaxAttempts = v
			ok = ok && good
		case "backoff":
			s, good := d.str(f.Value, "retries backoff "+owner, "use constant or exponential")
			if good && s != BackoffConstant && s != BackoffExponential {
				d.errorf(f.Value, "invalid retries backoff %q %s; use constant or exponential", s, owner)
				good = false
			}
			r.Backoff = s
			ok = ok && good
		case "initial":
			ok = d.duration(&r.Initial, f.Value, "retries initial", owner) && ok
		case "max":
			ok = d.duration(&r.Max, f.Value, "retries max", owner) && ok
		case "jitter":
			v, good := d.fraction(f.Value, "retries jitter", owner)
			r.Jitter = v
			ok = ok && good
		}
	}
	if !covered["max_attempts"] {
		d.errorf(n, "retries %s has no max_attempts; add max_attempts: with the number of attempts in all, e.g. 3", owner)
		ok = false
	}
	if ok && r.Max < r.Initial {
		d.errorf(n, "retries %s: max (%s) is shorter than initial (%s); raise max or lower initial", owner, r.Max, r.Initial)
		ok = false
	}
	return &r, ok
}

// integer decodes an integer in [min, max]; field and owner name it.
func (d *fileDecoder) integer(n *yaml.Node, field, owner string, min, max int) (int, bool) {
	nd := deref(n)
	if nd.Kind != yaml.ScalarNode || nd.Tag != "!!int" {
		d.errorf(n, "invalid %s %s: expected an integer, got %s", field, owner, describe(nd))
		return 0, false
	}
	v, err := strconv.Atoi(nd.Value)
	if err != nil || v < min || v > max {
		d.errorf(n, "invalid %s %s %s; use an integer from %d to %d", field, nd.Value, owner, min, max)
		return 0, false
	}
	return v, true
}

// fraction decodes a number in [0, 1]; field and owner name it.
func (d *fileDecoder) fraction(n *yaml.Node, field, owner string) (float64, bool) {
	nd := deref(n)
	if nd.Kind != yaml.ScalarNode || (nd.Tag != "!!int" && nd.Tag != "!!float") {
		d.errorf(n, "invalid %s %s: expected a number from 0 to 1, got %s", field, owner, describe(nd))
		return 0, false
	}
	v, err := strconv.ParseFloat(nd.Value, 64)
	if err != nil || v < 0 || v > 1 {
		d.errorf(n, "invalid %s %s %s; use a number from 0 to 1 (a fraction of each delay)", field, nd.Value, owner)
		return 0, false
	}
	return v, true
}

// decodeTelemetry reads ork.yaml's telemetry mapping.
func (p *Project) decodeTelemetry(d *fileDecoder, n *yaml.Node) {
	if !d.mapping(n, "telemetry in ork.yaml", "a mapping with the key otlp_endpoint", true) {
		return
	}
	kvs, _ := d.fields(n, "in telemetry", telemetryKeys)
	for _, f := range kvs {
		s, good := d.str(f.Value, "telemetry otlp_endpoint", "give the OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318")
		if !good {
			continue
		}
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") && !strings.Contains(s, ":") {
			d.errorf(f.Value, "invalid telemetry otlp_endpoint %q; give the OTLP/HTTP endpoint with its port, e.g. http://127.0.0.1:4318", s)
			continue
		}
		p.Telemetry.OTLPEndpoint = s
	}
}

func describeOwner(kind, name string) string { return fmt.Sprintf("in %s %q", kind, name) }
