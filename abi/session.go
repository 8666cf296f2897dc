package abi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Task is what the host knows about the task a session serves.
type Task struct {
	Info           TaskInfo
	ExecutorConfig any            // JSON-compatible
	Params         any            // JSON-compatible
	Upstream       map[string]any // JSON-compatible outputs of the upstream tasks
	// Capabilities serve http.request, secret.get and sql.*; nil grants none.
	Capabilities Capabilities
}

// Capabilities are what ork.yaml grants a task beyond its sandbox. Their
// errors reach the guest as recoverable errors, with their messages.
type Capabilities interface {
	HTTP(ctx context.Context, req HTTPRequest) (*HTTPResponse, error)
	Secret(name string) (string, error)
	SQLExecute(ctx context.Context, req SQLRequest) (*SQLExecuteResult, error)
	SQLQuery(ctx context.Context, req SQLRequest) (*SQLQueryResult, error)
}

// Sink receives what a guest emits while it runs. Implementations must be safe
// for concurrent use by different sessions.
type Sink interface {
	Log(task string, rec LogRecord)
}

// TrapError is returned by Dispatch when the guest misused the ABI. The
// transport turns it into a trap: the guest stops and the task fails.
type TrapError struct {
	Op  string
	Msg string
}

func (e *TrapError) Error() string {
	if e.Op == "" {
		return "host ABI misuse: " + e.Msg
	}
	return fmt.Sprintf("host ABI misuse in %q: %s", e.Op, e.Msg)
}

// Trapf builds a TrapError.
func Trapf(op, format string, args ...any) *TrapError {
	return &TrapError{Op: op, Msg: fmt.Sprintf(format, args...)}
}

// OpError is an operation failure the guest may handle; it is returned to the
// guest as {"error": ...} with a negative result.
type OpError struct{ Msg string }

func (e *OpError) Error() string { return e.Msg }

// Session is the host side of one task's ABI conversation. Every transport
// (wasm imports, the Python gate) decodes its bytes and calls Dispatch.
type Session struct {
	task   Task
	host   string
	sink   Sink
	mu     sync.Mutex
	hello  bool
	closed bool

	output    json.RawMessage
	outputSet bool
	report    *ErrorReport
	metrics   []Metric
	// pending response, until the transport's guest side fetches it
	pending    []byte
	pendingErr bool
}

// NewSession starts the host side of a task's conversation. host is the
// host's version string reported by abi.hello (e.g. "ork/0.1.0").
func NewSession(task Task, host string, sink Sink) *Session {
	if task.Upstream == nil {
		task.Upstream = map[string]any{}
	}
	if task.Info.WorkflowParams == nil {
		task.Info.WorkflowParams = map[string]any{}
	}
	return &Session{task: task, host: host, sink: sink}
}

// Close ends the conversation; any later call traps.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
}

// Output returns the output the guest set (nil when none) and whether it set one.
func (s *Session) Output() (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output, s.outputSet
}

// Reported returns the error the guest reported, if any.
func (s *Session) Reported() *ErrorReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report
}

// Metrics returns the metric points recorded so far.
func (s *Session) Metrics() []Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Metric(nil), s.metrics...)
}

// HelloDone reports whether the guest introduced itself.
func (s *Session) HelloDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hello
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Dispatch performs one operation. It returns the JSON response, an *OpError
// the guest may handle, or a *TrapError for misuse. It never panics on guest
// input.
func (s *Session) Dispatch(op string, req []byte) ([]byte, error) {
	return s.DispatchContext(context.Background(), op, req)
}

// DispatchContext is Dispatch with the context of the guest's call, which
// bounds capability operations (a timed-out task stops waiting on them).
func (s *Session) DispatchContext(ctx context.Context, op string, req []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, Trapf(op, "the task has already ended")
	}
	if len(op) > MaxOpNameLen {
		return nil, Trapf("", "operation name of %d bytes exceeds the %d-byte limit", len(op), MaxOpNameLen)
	}
	if !utf8.ValidString(op) {
		return nil, Trapf("", "operation name is not valid UTF-8")
	}
	if len(req) > MaxRequestBytes {
		return nil, Trapf(op, "request of %d bytes exceeds the %d MiB limit", len(req), MaxRequestBytes>>20)
	}
	req = bytes.TrimSpace(req)
	if len(req) == 0 {
		req = []byte("null")
	}
	if !json.Valid(req) {
		return nil, Trapf(op, "request is not valid JSON: %s", preview(req))
	}
	if op != OpHello && !s.hello {
		if !isKnownOp(op) {
			return nil, Trapf(op, "unknown operation")
		}
		return nil, Trapf(op, "called before %q: the guest must introduce itself first (is it built with an ork SDK?)", OpHello)
	}
	switch op {
	case OpHello:
		var h Hello
		if err := strictUnmarshal(req, &h); err != nil {
			return nil, Trapf(op, "request must be {\"abi\": %d, \"sdk\": \"...\"}: %v", Version, err)
		}
		if h.ABI != Version {
			return nil, Trapf(op, "%s", VersionMismatch(fmt.Sprintf("guest (%s)", orUnknown(h.SDK)), h.ABI))
		}
		s.hello = true
		return json.Marshal(Hello{ABI: Version, Host: s.host})
	case OpTaskInfo:
		return json.Marshal(s.task.Info)
	case OpExecutorConfig:
		return json.Marshal(s.task.ExecutorConfig)
	case OpTaskParams:
		return json.Marshal(s.task.Params)
	case OpUpstream:
		return json.Marshal(s.task.Upstream)
	case OpMetricsRecord:
		var m Metric
		if err := strictUnmarshal(req, &m); err != nil {
			return nil, Trapf(op, "request must be {\"name\": str, \"value\": number, \"labels\": {str: str}}: %v", err)
		}
		if err := validMetric(m); err != nil {
			return nil, err
		}
		if len(s.metrics) >= MaxMetricPoints {
			return nil, &OpError{fmt.Sprintf("a task may record at most %d metric points", MaxMetricPoints)}
		}
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		s.metrics = append(s.metrics, m)
		return []byte("null"), nil
	case OpLog:
		var rec LogRecord
		if err := strictUnmarshal(req, &rec); err != nil {
			return nil, Trapf(op, "request must be {\"level\": str, \"message\": str, \"fields\": {...}}: %v", err)
		}
		switch rec.Level {
		case LevelDebug, LevelInfo, LevelWarn, LevelError:
		default:
			return nil, &OpError{fmt.Sprintf("log level %q must be one of debug, info, warn, error", rec.Level)}
		}
		if s.sink != nil {
			s.sink.Log(s.task.Info.Task, rec)
		}
		return []byte("null"), nil
	case OpOutputSet:
		if s.outputSet {
			return nil, &OpError{"the task output was already set; a task has one output"}
		}
		s.output = append(json.RawMessage(nil), req...)
		s.outputSet = true
		return []byte("null"), nil
	case OpErrorReport:
		var r ErrorReport
		if err := strictUnmarshal(req, &r); err != nil {
			return nil, Trapf(op, "request must be {\"message\": str, \"kind\": str}: %v", err)
		}
		s.report = &r
		return []byte("null"), nil
	case OpHTTPRequest, OpSecretGet, OpSQLExecute, OpSQLQuery:
		return s.capability(ctx, op, req)
	default:
		return nil, Trapf(op, "unknown operation (this ork speaks host ABI v%d)", Version)
	}
}

var grantHint = map[string]string{
	OpHTTPRequest: "grant hosts with sandbox.allowed_hosts in ork.yaml",
	OpSecretGet:   "grant secrets with sandbox.secrets in ork.yaml",
	OpSQLExecute:  "grant connections with sandbox.connections in ork.yaml",
	OpSQLQuery:    "grant connections with sandbox.connections in ork.yaml",
}

func (s *Session) capability(ctx context.Context, op string, req []byte) ([]byte, error) {
	caps := s.task.Capabilities
	if caps == nil {
		return nil, &OpError{fmt.Sprintf("executor %q has no capabilities: %s", s.task.Info.Executor, grantHint[op])}
	}
	var out any
	var err error
	switch op {
	case OpHTTPRequest:
		var r HTTPRequest
		if e := strictUnmarshal(req, &r); e != nil {
			return nil, Trapf(op, "request must be {\"method\", \"url\", \"headers\", \"body\" or \"body_base64\", \"timeout_ms\"}: %v", e)
		}
		out, err = caps.HTTP(ctx, r)
	case OpSecretGet:
		var r SecretRequest
		if e := strictUnmarshal(req, &r); e != nil {
			return nil, Trapf(op, "request must be {\"name\": str}: %v", e)
		}
		var v string
		v, err = caps.Secret(r.Name)
		out = map[string]string{"value": v}
	case OpSQLExecute, OpSQLQuery:
		var r SQLRequest
		d := json.NewDecoder(bytes.NewReader(req))
		d.DisallowUnknownFields()
		d.UseNumber()
		if e := jsonProblem(d.Decode(&r)); e != nil || r.Connection == "" {
			return nil, Trapf(op, "request must be {\"connection\": str, \"sql\": str, \"params\": [...]}: %v", e)
		}
		for i, p := range r.Params {
			if n, ok := p.(json.Number); ok {
				if iv, e := n.Int64(); e == nil {
					r.Params[i] = iv
				} else if fv, e := n.Float64(); e == nil {
					r.Params[i] = fv
				}
			}
		}
		if op == OpSQLExecute {
			out, err = caps.SQLExecute(ctx, r)
		} else {
			out, err = caps.SQLQuery(ctx, r)
		}
	}
	if err != nil {
		var oe *OpError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, &OpError{err.Error()}
	}
	return json.Marshal(out)
}

// SetPending keeps a response (isErr: an encoded OpError) until the guest
// fetches it.
func (s *Session) SetPending(b []byte, isErr bool) {
	s.mu.Lock()
	s.pending, s.pendingErr = b, isErr
	s.mu.Unlock()
}

// TakePending returns and clears the pending response, if it fits capacity.
// fn names the guest-facing function for trap messages.
func (s *Session) TakePending(fn string, capacity uint32) (b []byte, isErr bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, Trapf(fn, "the task has already ended")
	}
	if s.pending == nil {
		return nil, false, Trapf(fn, "called with no pending response (call an operation first)")
	}
	if uint32(len(s.pending)) > capacity {
		return nil, false, Trapf(fn, "buffer of %d bytes is too small for the %d-byte response", capacity, len(s.pending))
	}
	b, isErr = s.pending, s.pendingErr
	s.pending, s.pendingErr = nil, false
	return b, isErr, nil
}

// ErrorResponse encodes an OpError as the guest sees it.
func ErrorResponse(err *OpError) []byte {
	b, _ := json.Marshal(map[string]string{"error": err.Msg})
	return b
}

// VersionMismatch explains an ABI version mismatch and its fix.
func VersionMismatch(who string, guest int) string {
	fix := "rebuild it with an ork SDK for ABI v" + fmt.Sprint(Version)
	if guest > Version {
		fix = "upgrade ork, or " + fix
	}
	return fmt.Sprintf("%s was built for ork host ABI v%d, but this ork speaks v%d: %s", who, guest, Version, fix)
}

func validMetric(m Metric) error {
	if !metricName.MatchString(m.Name) {
		return &OpError{fmt.Sprintf("metric name %q must match [a-zA-Z_:][a-zA-Z0-9_:]*", m.Name)}
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return &OpError{fmt.Sprintf("metric %q: value must be a finite number", m.Name)}
	}
	for k := range m.Labels {
		if !labelName.MatchString(k) {
			return &OpError{fmt.Sprintf("metric %q: label name %q must match [a-zA-Z_][a-zA-Z0-9_]*", m.Name, k)}
		}
	}
	return nil
}

func isKnownOp(op string) bool {
	switch op {
	case OpHello, OpTaskInfo, OpExecutorConfig, OpTaskParams, OpUpstream, OpMetricsRecord, OpLog, OpOutputSet, OpErrorReport,
		OpHTTPRequest, OpSecretGet, OpSQLExecute, OpSQLQuery:
		return true
	}
	return false
}

func strictUnmarshal(b []byte, v any) error {
	if bytes.Equal(b, []byte("null")) {
		return errors.New("got null")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return jsonProblem(d.Decode(v))
}

// jsonProblem words a decoding error in the request's terms (JSON fields
// and types) rather than Go's, for guests in any language.
func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "a " + te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Map, reflect.Struct:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "an array"
		}
		if te.Field == "" {
			return fmt.Errorf("got a JSON %s, want %s", te.Value, want)
		}
		return fmt.Errorf("field %q: got a JSON %s, want %s", te.Field, te.Value, want)
	}
	if err != nil && strings.HasPrefix(err.Error(), "json: unknown field ") {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return err
}

func preview(b []byte) string {
	const n = 40
	if len(b) > n {
		return fmt.Sprintf("%q… (%d bytes)", b[:n], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown SDK"
	}
	return s
}
