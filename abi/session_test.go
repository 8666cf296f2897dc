package abi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
)

type sink struct{ recs []abi.LogRecord }

func (s *sink) Log(_ string, r abi.LogRecord) { s.recs = append(s.recs, r) }

func newSession(t *testing.T) (*abi.Session, *sink) {
	t.Helper()
	cfg := "tasks/a.yaml"
	sk := &sink{}
	s := abi.NewSession(abi.Task{
		Info:           abi.TaskInfo{Task: "a", Workflow: "w", RunID: "r", Attempt: 1, Executor: "e", ConfigFile: &cfg, ScratchDir: abi.ScratchDir, OutputDir: abi.OutputDir},
		ExecutorConfig: map[string]any{"k": "v"},
		Params:         []any{1.0, "two"},
		Upstream:       map[string]any{"b": json.RawMessage(`{"rows":3}`)},
	}, "ork/test", sk)
	return s, sk
}

func hello(t *testing.T, s *abi.Session) {
	t.Helper()
	resp, err := s.Dispatch(abi.OpHello, []byte(`{"abi":1,"sdk":"test/0"}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"abi":1,"host":"ork/test"}`, string(resp))
}

func TestEveryOperation(t *testing.T) {
	s, sk := newSession(t)
	hello(t, s)
	tests := []struct {
		op, req, resp string
	}{
		{abi.OpTaskInfo, ``, `{"task":"a","workflow":"w","run_id":"r","attempt":1,"executor":"e","config_file":"tasks/a.yaml","scratch_dir":"/tmp","output_dir":"/output","workflow_params":{}}`},
		{abi.OpExecutorConfig, `null`, `{"k":"v"}`},
		{abi.OpTaskParams, ``, `[1,"two"]`},
		{abi.OpUpstream, ``, `{"b":{"rows":3}}`},
		{abi.OpMetricsRecord, `{"name":"rows","value":3,"labels":{"task":"a"}}`, `null`},
		{abi.OpLog, `{"level":"warn","message":"hi","fields":{"n":1}}`, `null`},
		{abi.OpOutputSet, `{"done":true}`, `null`},
		{abi.OpErrorReport, `{"message":"bad","kind":"run"}`, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.op, func(t *testing.T) {
			resp, err := s.Dispatch(tc.op, []byte(tc.req))
			require.NoError(t, err)
			assert.JSONEq(t, tc.resp, string(resp))
		})
	}
	assert.Equal(t, []abi.Metric{{Name: "rows", Value: 3, Labels: map[string]string{"task": "a"}}}, s.Metrics())
	assert.Equal(t, []abi.LogRecord{{Level: "warn", Message: "hi", Fields: map[string]any{"n": 1.0}}}, sk.recs)
	out, ok := s.Output()
	assert.True(t, ok)
	assert.JSONEq(t, `{"done":true}`, string(out))
	assert.Equal(t, &abi.ErrorReport{Message: "bad", Kind: "run"}, s.Reported())
}

func TestMisuseTraps(t *testing.T) {
	tests := []struct {
		name, op, req, want string
		noHello             bool
	}{
		{"before hello", abi.OpTaskInfo, ``, `host ABI misuse in "task.info": called before "abi.hello"`, true},
		{"unknown op before hello", "x.y", ``, `host ABI misuse in "x.y": unknown operation`, true},
		{"unknown op", "x.y", ``, `host ABI misuse in "x.y": unknown operation (this ork speaks host ABI v1)`, false},
		{"bad json", abi.OpLog, `{"level":`, `host ABI misuse in "log": request is not valid JSON`, false},
		{"wrong shape", abi.OpMetricsRecord, `{"name":"x","value":"high"}`, `host ABI misuse in "metrics.record": request must be`, false},
		{"unknown field", abi.OpLog, `{"level":"info","message":"m","extra":1}`, `unknown field "extra"`, false},
		{"newer guest", abi.OpHello, `{"abi":2,"sdk":"ork-rust/9"}`, `guest (ork-rust/9) was built for ork host ABI v2, but this ork speaks v1: upgrade ork, or rebuild it with an ork SDK for ABI v1`, true},
		{"older guest", abi.OpHello, `{"abi":0}`, `guest (unknown SDK) was built for ork host ABI v0, but this ork speaks v1: rebuild it with an ork SDK for ABI v1`, true},
		{"long op", strings.Repeat("x", 65), ``, `operation name of 65 bytes exceeds the 64-byte limit`, false},
		{"oversized", abi.OpLog, `"` + strings.Repeat("x", abi.MaxRequestBytes) + `"`, `exceeds the 16 MiB limit`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSession(t)
			if !tc.noHello {
				hello(t, s)
			}
			_, err := s.Dispatch(tc.op, []byte(tc.req))
			var te *abi.TrapError
			require.True(t, errors.As(err, &te), "got %v", err)
			assert.Contains(t, te.Error(), tc.want)
		})
	}
}

func TestCallsAfterTheTaskEndedTrap(t *testing.T) {
	s, _ := newSession(t)
	hello(t, s)
	s.SetPending([]byte("null"), false)
	s.Close()
	_, err := s.Dispatch(abi.OpTaskInfo, nil)
	assert.EqualError(t, err, `host ABI misuse in "task.info": the task has already ended`)
	_, _, err = s.TakePending(abi.FuncResponse, 100)
	assert.EqualError(t, err, `host ABI misuse in "response": the task has already ended`)
}

func TestRecoverableErrors(t *testing.T) {
	tests := []struct{ op, req, want string }{
		{abi.OpMetricsRecord, `{"name":"1x","value":1}`, `metric name "1x" must match [a-zA-Z_:][a-zA-Z0-9_:]*`},
		{abi.OpMetricsRecord, `{"name":"x","value":1,"labels":{"a-b":"c"}}`, `metric "x": label name "a-b" must match [a-zA-Z_][a-zA-Z0-9_]*`},
		{abi.OpLog, `{"level":"loud","message":"m"}`, `log level "loud" must be one of debug, info, warn, error`},
	}
	for _, tc := range tests {
		s, _ := newSession(t)
		hello(t, s)
		_, err := s.Dispatch(tc.op, []byte(tc.req))
		var oe *abi.OpError
		require.True(t, errors.As(err, &oe), "got %v", err)
		assert.Equal(t, tc.want, oe.Msg)
		assert.JSONEq(t, `{"error":`+mustJSON(tc.want)+`}`, string(abi.ErrorResponse(oe)))
	}
	s, _ := newSession(t)
	hello(t, s)
	_, err := s.Dispatch(abi.OpOutputSet, []byte(`1`))
	require.NoError(t, err)
	_, err = s.Dispatch(abi.OpOutputSet, []byte(`2`))
	assert.EqualError(t, err, "the task output was already set; a task has one output")
}

func TestMetricPointLimit(t *testing.T) {
	s, _ := newSession(t)
	hello(t, s)
	for i := 0; i < abi.MaxMetricPoints; i++ {
		_, err := s.Dispatch(abi.OpMetricsRecord, []byte(`{"name":"x","value":1}`))
		require.NoError(t, err)
	}
	_, err := s.Dispatch(abi.OpMetricsRecord, []byte(`{"name":"x","value":1}`))
	assert.EqualError(t, err, "a task may record at most 10000 metric points")
}

func TestPendingResponse(t *testing.T) {
	s, _ := newSession(t)
	_, _, err := s.TakePending(abi.FuncResponse, 10)
	assert.ErrorContains(t, err, "no pending response")
	s.SetPending([]byte(`{"a":1}`), true)
	_, _, err = s.TakePending(abi.FuncResponse, 3)
	assert.ErrorContains(t, err, "buffer of 3 bytes is too small for the 7-byte response")
	b, isErr, err := s.TakePending(abi.FuncResponse, 7)
	require.NoError(t, err)
	assert.True(t, isErr)
	assert.Equal(t, `{"a":1}`, string(b))
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type fakeCaps struct{}

func (fakeCaps) HTTP(_ context.Context, r abi.HTTPRequest) (*abi.HTTPResponse, error) {
	if r.URL == "https://refused.example" {
		return nil, errors.New("host refused.example is not allowed for this executor; add it to sandbox.allowed_hosts in ork.yaml")
	}
	body := r.Method + " " + r.URL
	return &abi.HTTPResponse{Status: 200, Headers: map[string]string{"X": "1"}, URL: r.URL, Body: &body}, nil
}
func (fakeCaps) Secret(name string) (string, error) { return "s-" + name, nil }
func (fakeCaps) SQLExecute(_ context.Context, r abi.SQLRequest) (*abi.SQLExecuteResult, error) {
	return &abi.SQLExecuteResult{RowsAffected: int64(len(r.Params))}, nil
}
func (fakeCaps) SQLQuery(_ context.Context, r abi.SQLRequest) (*abi.SQLQueryResult, error) {
	return &abi.SQLQueryResult{Columns: []string{"p"}, Rows: [][]any{r.Params}}, nil
}

func TestCapabilityOperations(t *testing.T) {
	s := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "a", Executor: "e"}, Capabilities: fakeCaps{}}, "ork/test", nil)
	hello(t, s)
	resp, err := s.Dispatch(abi.OpHTTPRequest, []byte(`{"method":"GET","url":"https://a.example"}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":200,"headers":{"X":"1"},"url":"https://a.example","body":"GET https://a.example"}`, string(resp))
	_, err = s.Dispatch(abi.OpHTTPRequest, []byte(`{"method":"GET","url":"https://refused.example"}`))
	var oe *abi.OpError
	require.True(t, errors.As(err, &oe))
	assert.Contains(t, oe.Msg, "sandbox.allowed_hosts")
	resp, err = s.Dispatch(abi.OpSecretGet, []byte(`{"name":"TOKEN"}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"value":"s-TOKEN"}`, string(resp))
	resp, err = s.Dispatch(abi.OpSQLQuery, []byte(`{"connection":"w","sql":"select ?","params":[1,2.5,"x",null]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"columns":["p"],"rows":[[1,2.5,"x",null]]}`, string(resp))
	resp, err = s.Dispatch(abi.OpSQLExecute, []byte(`{"connection":"w","sql":"x","params":[1]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"rows_affected":1}`, string(resp))
	_, err = s.Dispatch(abi.OpSQLQuery, []byte(`{"sql":"x"}`))
	var te *abi.TrapError
	assert.True(t, errors.As(err, &te), "a request without a connection is malformed: %v", err)

	none, _ := newSession(t)
	hello(t, none)
	_, err = none.Dispatch(abi.OpSecretGet, []byte(`{"name":"X"}`))
	require.True(t, errors.As(err, &oe))
	assert.Equal(t, `executor "e" has no capabilities: grant secrets with sandbox.secrets in ork.yaml`, oe.Msg)
}
