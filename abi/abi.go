// Package abi is ork's host ABI: the operations through which code running in
// a task's sandbox reaches the host. ABI.md in this directory is the
// specification; this package holds the names, the version, the message
// shapes and the host-side dispatcher, independent of any WebAssembly engine
// or transport.
package abi

// Version is the host ABI version this ork speaks.
const Version = 1

// ImportModule is the wasm import module name compiled guests link against.
// Its suffix carries the ABI version.
const ImportModule = "ork:host/v1"

// ImportModulePrefix is what every versioned import module name starts with.
const ImportModulePrefix = "ork:host/v"

// Functions of ImportModule.
const (
	FuncCall     = "call"
	FuncResponse = "response"
)

// Operation names.
const (
	OpHello          = "abi.hello"
	OpTaskInfo       = "task.info"
	OpExecutorConfig = "executor.config"
	OpTaskParams     = "task.params"
	OpUpstream       = "upstream"
	OpMetricsRecord  = "metrics.record"
	OpLog            = "log"
	OpOutputSet      = "output.set"
	OpErrorReport    = "error.report"
	OpHTTPRequest    = "http.request"
	OpSecretGet      = "secret.get"
	OpSQLExecute     = "sql.execute"
	OpSQLQuery       = "sql.query"
)

// Limits on what a guest may send.
const (
	MaxOpNameLen    = 64
	MaxRequestBytes = 16 << 20
	MaxMetricPoints = 10_000
)

// Guest paths of the per-task directories.
const (
	ScratchDir = "/tmp"
	OutputDir  = "/output"
)

// Hello is the request and response of OpHello.
type Hello struct {
	ABI  int    `json:"abi"`
	SDK  string `json:"sdk,omitempty"`
	Host string `json:"host,omitempty"`
}

// TaskInfo is the response of OpTaskInfo.
type TaskInfo struct {
	Task       string  `json:"task"`
	Workflow   string  `json:"workflow"`
	RunID      string  `json:"run_id"`
	Attempt    int     `json:"attempt"`
	Executor   string  `json:"executor"`
	ConfigFile *string `json:"config_file"`
	ScratchDir string  `json:"scratch_dir"`
	OutputDir  string  `json:"output_dir"`
	// WorkflowParams are the run's parameters (ork run --param), the same
	// for every task; {} when there are none.
	WorkflowParams map[string]any `json:"workflow_params"`
}

// Metric is the request of OpMetricsRecord, and a recorded metric point.
type Metric struct {
	Name   string            `json:"name"`
	Value  float64           `json:"value"`
	Labels map[string]string `json:"labels"`
}

// LogRecord is the request of OpLog.
type LogRecord struct {
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// ErrorReport is the request of OpErrorReport.
type ErrorReport struct {
	Message string `json:"message"`
	Kind    string `json:"kind,omitempty"`
}

// Log levels accepted by OpLog.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// HTTPRequest is the request of OpHTTPRequest. Body is text; BodyBase64
// carries binary bodies instead.
type HTTPRequest struct {
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
	TimeoutMS  int64             `json:"timeout_ms,omitempty"`
}

// HTTPResponse is the response of OpHTTPRequest. Body is the text of the
// body when it is valid UTF-8; otherwise Body is null and BodyBase64 holds it.
type HTTPResponse struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	URL        string            `json:"url"`
	Body       *string           `json:"body"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
}

// SecretRequest is the request of OpSecretGet.
type SecretRequest struct {
	Name string `json:"name"`
}

// SQLRequest is the request of OpSQLExecute and OpSQLQuery.
type SQLRequest struct {
	Connection string `json:"connection"`
	SQL        string `json:"sql"`
	Params     []any  `json:"params,omitempty"`
}

// SQLExecuteResult is the response of OpSQLExecute.
type SQLExecuteResult struct {
	RowsAffected int64 `json:"rows_affected"`
}

// SQLQueryResult is the response of OpSQLQuery.
type SQLQueryResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}
