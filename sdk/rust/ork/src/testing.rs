//! An in-process ork host for unit tests, available on every target except
//! wasm32.
//!
//! On the host target the SDK's two ABI functions are served by this mock
//! instead of being imported, so a test runs a task or executor through the
//! same code as in the sandbox: `abi.hello`, `task.info`, params or config,
//! `upstream`, then `output.set` or `error.report`. The mock checks requests
//! like ork does (metric and label names, log levels, one output per task,
//! `abi.hello` first) and records everything for the test to inspect.
//!
//! ```
//! use ork::serde_json::{json, Value};
//! use ork::testing::MockHost;
//! use ork::{Context, Result};
//!
//! fn count(ctx: &Context, upstream: &Value, params: Value) -> Result<Value> {
//!     let n = upstream["load"]["rows"].as_u64().unwrap_or(0);
//!     ctx.metrics().record("rows", n as f64, &[("task", ctx.task_name())])?;
//!     Ok(json!({ "rows": n, "label": params["label"] }))
//! }
//!
//! let outcome = MockHost::new()
//!     .task("count")
//!     .upstream(json!({ "load": { "rows": 3 } }))
//!     .params(json!({ "label": "eu" }))
//!     .run_task(count);
//! assert!(outcome.succeeded());
//! assert_eq!(outcome.output(), Some(&json!({ "rows": 3, "label": "eu" })));
//! assert_eq!(outcome.metrics()[0].name, "rows");
//! ```
//!
//! Capabilities are stubbed per host: HTTP responses by URL, secrets by name,
//! SQL results by connection and statement. Anything not stubbed is refused
//! with ork's own message, and every request is recorded:
//!
//! ```
//! use ork::serde_json::{json, Value};
//! use ork::testing::{MockHost, MockResponse};
//! use ork::{Context, QueryResult, Result};
//!
//! fn sync(ctx: &Context, _: &Value, _: ()) -> Result<u64> {
//!     let token = ctx.secret("TOKEN")?;
//!     let jobs: Vec<Value> = ctx.http().get(format!("https://api.example.com/jobs?t={}", token))?.json()?;
//!     let db = ctx.sql("warehouse");
//!     let n = db.execute("INSERT INTO jobs VALUES (?)", &[jobs[0]["id"].clone()])?;
//!     let total = db.query("SELECT count(*) FROM jobs", &[])?;
//!     Ok(n + total.scalar().and_then(Value::as_u64).unwrap_or(0))
//! }
//!
//! let outcome = MockHost::new()
//!     .secret("TOKEN", "t0k")
//!     .http("GET https://api.example.com/jobs", MockResponse::json(json!([{ "id": 7 }])))
//!     .sql_execute("warehouse", "INSERT INTO jobs VALUES (?)", 1)
//!     .sql_query("warehouse", "SELECT count(*) FROM jobs", QueryResult::new(["count"], vec![vec![json!(3)]]))
//!     .run_task(sync);
//! assert_eq!(outcome.output(), Some(&json!(4)));
//! assert_eq!(outcome.http_requests()[0].url, "https://api.example.com/jobs?t=t0k");
//! assert_eq!(outcome.sql_statements()[0].params, [json!(7)]);
//! ```
//!
//! Limits: one mock run per thread at a time (Rust's test harness runs each
//! test on its own thread); code that calls `std::process::exit` ends the
//! test process, as it would end the guest.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::abi::{op, ABI_VERSION, MAX_OP_BYTES, MAX_REQUEST_BYTES};
use crate::{base64, runner, Context, QueryResult, Result};

/// Most metric points one task may record.
const MAX_METRIC_POINTS: usize = 10_000;

/// A configurable fake ork host. Build it with the task's facts and inputs,
/// then run a task function or an executor against it.
#[derive(Debug, Clone)]
pub struct MockHost {
    info: Map<String, Value>,
    config: Value,
    params: Value,
    upstream: Value,
    http: BTreeMap<String, std::result::Result<MockResponse, String>>,
    http_handler: Option<Handler<HttpCall, MockResponse>>,
    secrets: BTreeMap<String, std::result::Result<String, String>>,
    connections: BTreeMap<String, MockConnection>,
}

/// The stubs of one SQL connection.
#[derive(Debug, Clone, Default)]
struct MockConnection {
    statements: BTreeMap<String, std::result::Result<SqlStub, String>>,
    handler: Option<Handler<SqlCall, SqlStub>>,
}

/// A stub function: `Ok` answers, `Err` is a refusal with that message.
struct Handler<I, O>(Arc<dyn Fn(&I) -> std::result::Result<O, String> + Send + Sync>);

impl<I, O> Clone for Handler<I, O> {
    fn clone(&self) -> Self {
        Handler(Arc::clone(&self.0))
    }
}

impl<I, O> fmt::Debug for Handler<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<function>")
    }
}

/// A stubbed HTTP response: a status, headers and a body. The final URL the
/// host reports is the request's unless [`with_url`](MockResponse::with_url)
/// sets one (as after a redirect).
#[derive(Debug, Clone, PartialEq)]
pub struct MockResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    url: Option<String>,
}

impl MockResponse {
    /// A response with `status` and no body.
    pub fn new(status: u16) -> Self {
        MockResponse {
            status,
            headers: BTreeMap::new(),
            body: Vec::new(),
            url: None,
        }
    }

    /// A 200 response with `value` as its JSON body and `Content-Type:
    /// application/json`.
    pub fn json(value: Value) -> Self {
        MockResponse::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(serde_json::to_vec(&value).expect("JSON encodes"))
    }

    /// A 200 response with a text body.
    pub fn text<S: Into<String>>(body: S) -> Self {
        MockResponse::new(200).with_body(body.into().into_bytes())
    }

    /// A 200 response with a binary body.
    pub fn bytes<B: Into<Vec<u8>>>(body: B) -> Self {
        MockResponse::new(200).with_body(body)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets a header.
    pub fn with_header<K: Into<String>, V: Into<String>>(mut self, name: K, value: V) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the body.
    pub fn with_body<B: Into<Vec<u8>>>(mut self, body: B) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the final URL the host reports.
    pub fn with_url<U: Into<String>>(mut self, url: U) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The `http.request` response, as the host encodes it.
    fn wire(&self, request_url: &str) -> Value {
        let url = self.url.as_deref().unwrap_or(request_url);
        match std::str::from_utf8(&self.body) {
            Ok(text) => {
                json!({ "status": self.status, "headers": self.headers, "url": url, "body": text })
            }
            Err(_) => json!({
                "status": self.status, "headers": self.headers, "url": url,
                "body": null, "body_base64": base64::encode(&self.body),
            }),
        }
    }
}

/// What a stubbed SQL statement gives.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlStub {
    /// The rows affected, for `execute`.
    RowsAffected(u64),
    /// The rows, for `query`.
    Rows(QueryResult),
}

/// One `http.request` the task made, as the host received it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The headers the task set.
    pub headers: BTreeMap<String, String>,
    /// The body, if the request had one.
    pub body: Option<Vec<u8>>,
    /// The timeout the task asked for, in milliseconds.
    pub timeout_ms: Option<u64>,
}

impl HttpCall {
    /// The value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (`""` when there is none).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body.as_deref().unwrap_or_default()).into_owned()
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null)
    }
}

/// One `sql.execute` or `sql.query` the task made.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCall {
    /// `execute` or `query`.
    pub op: String,
    /// The connection's name.
    pub connection: String,
    /// The statement, as sent.
    pub sql: String,
    /// The parameters, as sent ([`crate::sql::blob`]s as `{"base64": …}`).
    pub params: Vec<Value>,
}

fn normalize_sql(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

impl MockHost {
    /// A host for task `task` of workflow `workflow`, run `run-1`, attempt 1,
    /// executor `rust`, no config file, the system's temporary directory as
    /// scratch and output directory, and `null` config, params and upstream.
    pub fn new() -> Self {
        let tmp = std::env::temp_dir().to_string_lossy().into_owned();
        let info = json!({
            "task": "task",
            "workflow": "workflow",
            "run_id": "run-1",
            "attempt": 1,
            "executor": "rust",
            "config_file": null,
            "scratch_dir": tmp,
            "output_dir": tmp,
        });
        MockHost {
            info: match info {
                Value::Object(m) => m,
                _ => unreachable!(),
            },
            config: Value::Null,
            params: Value::Null,
            upstream: Value::Null,
            http: BTreeMap::new(),
            http_handler: None,
            secrets: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.info.insert(key.to_string(), value);
        self
    }

    /// Sets the task's name.
    pub fn task(self, name: &str) -> Self {
        self.set("task", name.into())
    }

    /// Sets the workflow's name.
    pub fn workflow(self, name: &str) -> Self {
        self.set("workflow", name.into())
    }

    /// Sets the run id.
    pub fn run_id(self, id: &str) -> Self {
        self.set("run_id", id.into())
    }

    /// Sets the attempt number.
    pub fn attempt(self, attempt: u32) -> Self {
        self.set("attempt", attempt.into())
    }

    /// Sets the executor's name.
    pub fn executor(self, name: &str) -> Self {
        self.set("executor", name.into())
    }

    /// Sets the task's config file path.
    pub fn config_file(self, path: &str) -> Self {
        self.set("config_file", path.into())
    }

    /// Sets the scratch directory.
    pub fn scratch_dir<P: Into<PathBuf>>(self, dir: P) -> Self {
        let dir = dir.into().to_string_lossy().into_owned();
        self.set("scratch_dir", dir.into())
    }

    /// Sets the output directory.
    pub fn output_dir<P: Into<PathBuf>>(self, dir: P) -> Self {
        let dir = dir.into().to_string_lossy().into_owned();
        self.set("output_dir", dir.into())
    }

    /// Sets the executor's config (`executor.config`).
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// Sets the task's params (`task.params`).
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Sets the outputs of the upstream tasks (`upstream`), an object keyed
    /// by task name.
    pub fn upstream(mut self, upstream: Value) -> Self {
        self.upstream = upstream;
        self
    }

    /// Answers requests matching `pattern` with `response`. The pattern is
    /// `"URL"` or `"METHOD URL"`; a request matches `"METHOD URL"`, then
    /// `"URL"`, then both without the query string. Requests nothing matches
    /// go to the [`http_handler`](MockHost::http_handler), if any, or are
    /// refused as ork refuses a host not in `sandbox.allowed_hosts`.
    pub fn http(mut self, pattern: &str, response: MockResponse) -> Self {
        self.http.insert(pattern.to_string(), Ok(response));
        self
    }

    /// Refuses requests matching `pattern` (see [`http`](MockHost::http))
    /// with `message`, as the host does for a request it cannot make.
    pub fn http_refused(mut self, pattern: &str, message: &str) -> Self {
        self.http
            .insert(pattern.to_string(), Err(message.to_string()));
        self
    }

    /// Answers the requests no [`http`](MockHost::http) stub matches with
    /// `handler`: `Ok` is the response, `Err` a refusal with that message.
    pub fn http_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&HttpCall) -> std::result::Result<MockResponse, String> + Send + Sync + 'static,
    {
        self.http_handler = Some(Handler(Arc::new(handler)));
        self
    }

    /// Grants secret `name` with `value`. Other secrets are refused as ork
    /// refuses one not in `sandbox.secrets`.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.to_string(), Ok(value.to_string()));
        self
    }

    /// Grants secret `name`, whose value cannot be read: reading it fails
    /// with `message`.
    pub fn secret_refused(mut self, name: &str, message: &str) -> Self {
        self.secrets
            .insert(name.to_string(), Err(message.to_string()));
        self
    }

    /// Grants connection `name` without stubbing any statement (every
    /// statement is refused as unknown to the mock until stubbed). Stubbing
    /// a statement grants its connection too; connections never granted are
    /// refused as ork refuses one not in `sandbox.connections`.
    pub fn connection(mut self, name: &str) -> Self {
        self.connections.entry(name.to_string()).or_default();
        self
    }

    /// Answers `sql.execute` of `sql` (whitespace is normalized) on
    /// `connection` with `rows_affected`.
    pub fn sql_execute(self, connection: &str, sql: &str, rows_affected: u64) -> Self {
        self.sql_stub(connection, sql, Ok(SqlStub::RowsAffected(rows_affected)))
    }

    /// Answers `sql.query` of `sql` (whitespace is normalized) on
    /// `connection` with `result`.
    pub fn sql_query(self, connection: &str, sql: &str, result: QueryResult) -> Self {
        self.sql_stub(connection, sql, Ok(SqlStub::Rows(result)))
    }

    /// Refuses `sql` on `connection` with `message`, as the database would
    /// (`sqlite: no such table: t`).
    pub fn sql_refused(self, connection: &str, sql: &str, message: &str) -> Self {
        self.sql_stub(connection, sql, Err(message.to_string()))
    }

    /// Answers the statements on `connection` that no stub matches with
    /// `handler`: `Ok` is the result, `Err` a refusal with that message.
    pub fn sql_handler<F>(mut self, connection: &str, handler: F) -> Self
    where
        F: Fn(&SqlCall) -> std::result::Result<SqlStub, String> + Send + Sync + 'static,
    {
        self.connections
            .entry(connection.to_string())
            .or_default()
            .handler = Some(Handler(Arc::new(handler)));
        self
    }

    fn sql_stub(
        mut self,
        connection: &str,
        sql: &str,
        stub: std::result::Result<SqlStub, String>,
    ) -> Self {
        self.connections
            .entry(connection.to_string())
            .or_default()
            .statements
            .insert(normalize_sql(sql), stub);
        self
    }

    /// Runs a task function, as `#[ork::task]` would, and returns what it
    /// did.
    pub fn run_task<P, O, F>(self, task: F) -> Outcome
    where
        P: DeserializeOwned,
        O: Serialize,
        F: FnOnce(&Context, &Value, P) -> Result<O>,
    {
        self.run(move || runner::task_main(task))
    }

    /// Runs an executor's `new` and `run`, as `#[ork::executor]` would, and
    /// returns what they did: `run_executor(MyExecutor::new, MyExecutor::run)`.
    pub fn run_executor<X, C, O, N, R>(self, new: N, run: R) -> Outcome
    where
        C: DeserializeOwned,
        O: Serialize,
        N: FnOnce(C) -> Result<X>,
        R: FnOnce(&X, &str, &Context, &Value) -> Result<O>,
    {
        self.run(move || runner::executor_main(new, run))
    }

    fn run<F: FnOnce() -> i32>(self, program: F) -> Outcome {
        runner::install_panic_hook();
        ACTIVE.with(|active| {
            let mut active = active.borrow_mut();
            assert!(
                active.is_none(),
                "a MockHost is already running on this thread"
            );
            *active = Some(State::new(self));
        });
        let result = panic::catch_unwind(AssertUnwindSafe(program));
        let state = ACTIVE
            .with(|active| active.borrow_mut().take())
            .expect("the mock host's state disappeared");
        let exit = match (result, state.trap) {
            (_, Some(trap)) => Exit::Trap(trap),
            (Ok(code), None) => Exit::Code(code),
            (Err(payload), None) => Exit::Trap(format!(
                "unreachable: the guest panicked: {}",
                runner::panic_message(&*payload)
            )),
        };
        Outcome {
            exit,
            output: state.output,
            errors: state.errors,
            metrics: state.metrics,
            logs: state.logs,
            calls: state.calls,
            http_requests: state.http_requests,
            sql_statements: state.sql_statements,
            secrets_read: state.secrets_read,
        }
    }
}

/// How a mock run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// The program returned or exited with this status (0 = success).
    Code(i32),
    /// The program was stopped: the host trapped it for breaking the ABI, or
    /// it panicked (which aborts a guest).
    Trap(String),
}

/// What a mock run did: how it ended and everything it sent to the host.
#[derive(Debug, Clone)]
pub struct Outcome {
    exit: Exit,
    output: Option<Value>,
    errors: Vec<ErrorReport>,
    metrics: Vec<MetricPoint>,
    logs: Vec<LogRecord>,
    calls: Vec<String>,
    http_requests: Vec<HttpCall>,
    sql_statements: Vec<SqlCall>,
    secrets_read: Vec<String>,
}

impl Outcome {
    /// How the run ended.
    pub fn exit(&self) -> &Exit {
        &self.exit
    }

    /// Whether the run ended with status 0, i.e. the task succeeded.
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// The output set with `output.set`, if any.
    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    /// The last error reported with `error.report`, if any.
    pub fn error(&self) -> Option<&ErrorReport> {
        self.errors.last()
    }

    /// Every error reported, in order.
    pub fn errors(&self) -> &[ErrorReport] {
        &self.errors
    }

    /// The metric points recorded, in order.
    pub fn metrics(&self) -> &[MetricPoint] {
        &self.metrics
    }

    /// The log records, in order.
    pub fn logs(&self) -> &[LogRecord] {
        &self.logs
    }

    /// The names of the operations called, in order (`abi.hello` first).
    pub fn calls(&self) -> &[String] {
        &self.calls
    }

    /// Every `http.request`, in order (refused ones too).
    pub fn http_requests(&self) -> &[HttpCall] {
        &self.http_requests
    }

    /// Every `sql.execute` and `sql.query`, in order (refused ones too).
    pub fn sql_statements(&self) -> &[SqlCall] {
        &self.sql_statements
    }

    /// The names of the secrets asked for, in order (refused ones too).
    pub fn secrets_read(&self) -> &[String] {
        &self.secrets_read
    }
}

/// One `metrics.record` accepted by the host.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The metric's name.
    pub name: String,
    /// The recorded value.
    pub value: f64,
    /// The labels, by name.
    pub labels: BTreeMap<String, String>,
}

/// One `log` record accepted by the host.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
    /// The structured fields (an object).
    pub fields: Value,
}

/// One `error.report`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    /// What went wrong.
    pub message: String,
    /// Its kind: `config`, `run`, `panic`, `output`, …
    pub kind: String,
}

thread_local! {
    static ACTIVE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// The mock host's side of one run.
struct State {
    host: MockHost,
    greeted: bool,
    pending: Option<Vec<u8>>,
    trap: Option<String>,
    output: Option<Value>,
    errors: Vec<ErrorReport>,
    metrics: Vec<MetricPoint>,
    logs: Vec<LogRecord>,
    calls: Vec<String>,
    http_requests: Vec<HttpCall>,
    sql_statements: Vec<SqlCall>,
    secrets_read: Vec<String>,
}

/// The host's answer to one call.
enum Reply {
    Ok(Value),
    Err(String),
    Trap(String),
}

impl State {
    fn new(host: MockHost) -> Self {
        State {
            host,
            greeted: false,
            pending: None,
            trap: None,
            output: None,
            errors: Vec::new(),
            metrics: Vec::new(),
            logs: Vec::new(),
            calls: Vec::new(),
            http_requests: Vec::new(),
            sql_statements: Vec::new(),
            secrets_read: Vec::new(),
        }
    }

    /// One `call`: `Ok(r)` is the import's result, `Err` a trap.
    fn dispatch(&mut self, op: &[u8], req: &[u8]) -> std::result::Result<i32, String> {
        if self.trap.is_some() {
            return Ok(respond_error(
                &mut self.pending,
                "the task has ended: the host trapped it",
            ));
        }
        match self.call(op, req) {
            Reply::Ok(v) => {
                let body = serde_json::to_vec(&v).expect("JSON encodes");
                let r = body.len() as i32;
                self.pending = Some(body);
                Ok(r)
            }
            Reply::Err(message) => Ok(respond_error(&mut self.pending, &message)),
            Reply::Trap(message) => Err(message),
        }
    }

    fn call(&mut self, op: &[u8], req: &[u8]) -> Reply {
        self.pending = None;
        let op = match std::str::from_utf8(op) {
            Ok(s) if s.len() <= MAX_OP_BYTES => s,
            _ => {
                return Reply::Trap(format!(
                    "invalid operation name {:?}",
                    String::from_utf8_lossy(op)
                ))
            }
        };
        self.calls.push(op.to_string());
        if !op::ALL.contains(&op) {
            return Reply::Trap(format!("unknown operation {:?}", op));
        }
        if !self.greeted && op != op::HELLO {
            return Reply::Trap(format!("{} called before abi.hello", op));
        }
        if req.len() > MAX_REQUEST_BYTES {
            return Reply::Trap(format!(
                "request of {} bytes exceeds the 16 MiB limit",
                req.len()
            ));
        }
        let req: Value = if req.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(req) {
                Ok(v) => v,
                Err(e) => return Reply::Trap(format!("{}: request is not valid JSON: {}", op, e)),
            }
        };
        match op {
            op::HELLO => self.hello(&req),
            op::TASK_INFO => Reply::Ok(Value::Object(self.host.info.clone())),
            op::EXECUTOR_CONFIG => Reply::Ok(self.host.config.clone()),
            op::TASK_PARAMS => Reply::Ok(self.host.params.clone()),
            op::UPSTREAM => Reply::Ok(if self.host.upstream.is_null() {
                json!({})
            } else {
                self.host.upstream.clone()
            }),
            op::METRICS_RECORD => self.metric(&req),
            op::LOG => self.log(&req),
            op::OUTPUT_SET => {
                if self.output.is_some() {
                    Reply::Err("the task output was already set; a task has one output".to_string())
                } else {
                    self.output = Some(req);
                    Reply::Ok(Value::Null)
                }
            }
            op::ERROR_REPORT => match (req["message"].as_str(), req["kind"].as_str()) {
                (Some(message), Some(kind)) => {
                    self.errors.push(ErrorReport {
                        message: message.to_string(),
                        kind: kind.to_string(),
                    });
                    Reply::Ok(Value::Null)
                }
                _ => Reply::Trap(format!("error.report: bad request {}", req)),
            },
            op::HTTP_REQUEST => self.http(&req),
            op::SECRET_GET => self.secret(&req),
            op::SQL_EXECUTE | op::SQL_QUERY => self.sql(op, &req),
            _ => unreachable!("every op of op::ALL is handled"),
        }
    }

    fn hello(&mut self, req: &Value) -> Reply {
        match req["abi"].as_u64() {
            Some(v) if v == u64::from(ABI_VERSION) => {
                self.greeted = true;
                Reply::Ok(json!({ "abi": ABI_VERSION, "host": "ork-mock/0.1.0" }))
            }
            Some(v) => Reply::Trap(format!(
                "guest was built for ork host ABI v{}, but this host speaks v{}",
                v, ABI_VERSION
            )),
            None => Reply::Trap(format!("abi.hello: bad request {}", req)),
        }
    }

    fn metric(&mut self, req: &Value) -> Reply {
        let (name, value) = match (req["name"].as_str(), req["value"].as_f64()) {
            (Some(n), Some(v)) => (n, v),
            _ => return Reply::Trap(format!("metrics.record: bad request {}", req)),
        };
        let mut labels = BTreeMap::new();
        match &req["labels"] {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(v) => labels.insert(k.clone(), v.to_string()),
                        None => {
                            return Reply::Trap(format!(
                                "metrics.record: label {:?} is not a string",
                                k
                            ))
                        }
                    };
                }
            }
            _ => return Reply::Trap(format!("metrics.record: bad request {}", req)),
        }
        if !valid_name(name, true) {
            return Reply::Err(format!(
                "metric name {:?} must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                name
            ));
        }
        if let Some(k) = labels.keys().find(|k| !valid_name(k, false)) {
            return Reply::Err(format!(
                "metric {:?}: label name {:?} must match [a-zA-Z_][a-zA-Z0-9_]*",
                name, k
            ));
        }
        if self.metrics.len() >= MAX_METRIC_POINTS {
            return Reply::Err(format!(
                "a task may record at most {} metric points",
                MAX_METRIC_POINTS
            ));
        }
        self.metrics.push(MetricPoint {
            name: name.to_string(),
            value,
            labels,
        });
        Reply::Ok(Value::Null)
    }

    fn log(&mut self, req: &Value) -> Reply {
        let (level, message) = match (req["level"].as_str(), req["message"].as_str()) {
            (Some(l), Some(m)) => (l, m),
            _ => return Reply::Trap(format!("log: bad request {}", req)),
        };
        let fields = match &req["fields"] {
            Value::Null => json!({}),
            Value::Object(m) => Value::Object(m.clone()),
            _ => return Reply::Trap(format!("log: bad request {}", req)),
        };
        if !["debug", "info", "warn", "error"].contains(&level) {
            return Reply::Err(format!(
                "log level {:?} must be one of debug, info, warn, error",
                level
            ));
        }
        self.logs.push(LogRecord {
            level: level.to_string(),
            message: message.to_string(),
            fields,
        });
        Reply::Ok(Value::Null)
    }
}

/// The shapes of capability requests, for trap messages.
const HTTP_SHAPE: &str = r#"{"method", "url", "headers", "body" or "body_base64", "timeout_ms"}"#;
const SQL_SHAPE: &str = r#"{"connection": str, "sql": str, "params": [...]}"#;

impl State {
    fn executor(&self) -> String {
        serde_json::to_string(&self.host.info["executor"]).expect("JSON encodes")
    }

    /// The ork.yaml key that grants a capability to this executor, as
    /// ork's refusals name it.
    fn sandbox_key(&self, key: &str) -> String {
        let name = self.host.info["executor"].as_str().unwrap_or("NAME");
        format!("executors.{}.sandbox.{} in ork.yaml", name, key)
    }

    fn http(&mut self, req: &Value) -> Reply {
        let bad = || {
            Reply::Trap(format!(
                "http.request: request must be {}: got {}",
                HTTP_SHAPE, req
            ))
        };
        let m = match req.as_object() {
            Some(m) => m,
            None => return bad(),
        };
        if m.keys().any(|k| {
            ![
                "method",
                "url",
                "headers",
                "body",
                "body_base64",
                "timeout_ms",
            ]
            .contains(&k.as_str())
        }) {
            return bad();
        }
        let (method, url) = match (
            m.get("method").and_then(Value::as_str),
            m.get("url").and_then(Value::as_str),
        ) {
            (Some(method), Some(url)) => (method.to_string(), url.to_string()),
            _ => return bad(),
        };
        let mut headers = BTreeMap::new();
        match m.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    match v.as_str() {
                        Some(v) => headers.insert(k.clone(), v.to_string()),
                        None => return bad(),
                    };
                }
            }
            Some(_) => return bad(),
        }
        let timeout_ms = match m.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(ms) if ms > 0 => Some(ms as u64),
                Some(_) => None,
                None => return bad(),
            },
        };
        let text = |key: &str| match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        };
        let (body, body_base64) = match (text("body"), text("body_base64")) {
            (Ok(b), Ok(b64)) => (b, b64),
            _ => return bad(),
        };
        let mut refusal = None;
        let body = match (body, body_base64) {
            (Some(_), Some(_)) => {
                refusal = Some("http.request: give body or body_base64, not both".to_string());
                None
            }
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(b64)) => match base64::decode(&b64) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    refusal = Some(format!(
                        "http.request: body_base64 is not valid base64: {}",
                        e
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        let call = HttpCall {
            method,
            url,
            headers,
            body,
            timeout_ms,
        };
        self.http_requests.push(call.clone());
        if let Some(message) = refusal {
            return Reply::Err(message);
        }
        let base = call
            .url
            .split('#')
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        let keys = [
            format!("{} {}", call.method, call.url),
            call.url.clone(),
            format!("{} {}", call.method, base),
            base.to_string(),
        ];
        let stub = keys.iter().find_map(|k| self.host.http.get(k)).cloned();
        let answer = match (stub, &self.host.http_handler) {
            (Some(stub), _) => stub,
            (None, Some(handler)) => (handler.0)(&call),
            (None, None) => Err(format!(
                "executor {} may not make HTTP requests (to {}): MockHost has no http stub for {} {}; add the host to {}",
                self.executor(), call.url, call.method, call.url, self.sandbox_key("allowed_hosts")
            )),
        };
        match answer {
            Ok(resp) => Reply::Ok(resp.wire(&call.url)),
            Err(message) => Reply::Err(message),
        }
    }

    fn secret(&mut self, req: &Value) -> Reply {
        let name = match req.as_object() {
            Some(m) if m.len() == 1 => m.get("name").and_then(Value::as_str),
            _ => None,
        };
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                return Reply::Trap(format!(
                    "secret.get: request must be {{\"name\": str}}: got {}",
                    req
                ))
            }
        };
        self.secrets_read.push(name.clone());
        match self.host.secrets.get(&name) {
            Some(Ok(value)) => Reply::Ok(json!({ "value": value })),
            Some(Err(message)) => Reply::Err(message.clone()),
            None => Reply::Err(format!(
                "secret {} is not granted to executor {}; add it to {}",
                Value::String(name),
                self.executor(),
                self.sandbox_key("secrets")
            )),
        }
    }

    fn sql(&mut self, op: &str, req: &Value) -> Reply {
        let bad = || {
            Reply::Trap(format!(
                "{}: request must be {}: got {}",
                op, SQL_SHAPE, req
            ))
        };
        let m = match req.as_object() {
            Some(m) => m,
            None => return bad(),
        };
        if m.keys()
            .any(|k| !["connection", "sql", "params"].contains(&k.as_str()))
        {
            return bad();
        }
        let (connection, sql) = match (
            m.get("connection").and_then(Value::as_str),
            m.get("sql").and_then(Value::as_str),
        ) {
            (Some(c), Some(s)) if !c.is_empty() => (c.to_string(), s.to_string()),
            _ => return bad(),
        };
        let params = match m.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(p)) => p.clone(),
            Some(_) => return bad(),
        };
        let execute = op == op::SQL_EXECUTE;
        let call = SqlCall {
            op: if execute { "execute" } else { "query" }.to_string(),
            connection,
            sql,
            params,
        };
        self.sql_statements.push(call.clone());
        let conn = match self.host.connections.get(&call.connection) {
            Some(conn) => conn,
            None => {
                return Reply::Err(format!(
                    "connection {} is not granted to executor {}; add it to {}",
                    Value::String(call.connection.clone()),
                    self.executor(),
                    self.sandbox_key("connections")
                ))
            }
        };
        let key = normalize_sql(&call.sql);
        let answer =
            match (conn.statements.get(&key), &conn.handler) {
                (Some(stub), _) => stub.clone(),
                (None, Some(handler)) => (handler.0)(&call),
                (None, None) => {
                    let stubbed: Vec<&str> = conn.statements.keys().map(String::as_str).collect();
                    Err(format!(
                    "MockHost has no stub for this statement on connection {:?}: {} (stubbed: {})",
                    call.connection,
                    key,
                    if stubbed.is_empty() { "none".to_string() } else { stubbed.join("; ") }
                ))
                }
            };
        match (answer, execute) {
            (Ok(SqlStub::RowsAffected(n)), true) => Reply::Ok(json!({ "rows_affected": n })),
            (Ok(SqlStub::Rows(r)), false) => {
                Reply::Ok(json!({ "columns": r.columns(), "rows": r.rows() }))
            }
            (Ok(stub), _) => Reply::Trap(format!(
                "the MockHost stub for {:?} on connection {:?} is {:?}, which does not answer {}",
                key, call.connection, stub, op
            )),
            (Err(message), _) => Reply::Err(message),
        }
    }
}

/// Whether `name` is a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`, `colon`) or
/// a label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    match name.chars().next() {
        Some(first) => !first.is_ascii_digit() && name.chars().all(ok),
        None => false,
    }
}

/// Runs `f` on this thread's mock host state, if a mock run is active (and
/// the state is not already borrowed, or being torn down).
fn with_state<T, F: FnOnce(&mut State) -> T>(f: F) -> Option<T> {
    ACTIVE
        .try_with(|active| match active.try_borrow_mut() {
            Ok(mut guard) => guard.as_mut().map(f),
            Err(_) => None,
        })
        .ok()
        .flatten()
}

thread_local! {
    /// The pending response of a call made while no mock run is active.
    static STRAY_PENDING: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Makes `{"error": message}` the pending response and returns its negative
/// length, as the host does for an operation that failed.
fn respond_error(pending: &mut Option<Vec<u8>>, message: &str) -> i32 {
    let body = serde_json::to_vec(&json!({ "error": message })).expect("a JSON object encodes");
    let r = -(body.len() as i32);
    *pending = Some(body);
    r
}

/// Traps the guest: records why and unwinds out of the program like a wasm
/// trap. On a thread that is already panicking (a call from the panic hook)
/// a second panic would abort the test process, so the call fails instead.
fn trap(message: String) -> i32 {
    let panicking = std::thread::panicking();
    let r = with_state(|state| {
        state.trap.get_or_insert_with(|| message.clone());
        respond_error(&mut state.pending, &message)
    });
    if panicking {
        return r.unwrap_or_else(stray_error);
    }
    panic!("ork mock host: trap: {}", message);
}

/// The answer to a call made while no mock run is active on this thread: an
/// error the SDK handles (never a panic: the panic hook may be calling).
fn stray_error() -> i32 {
    STRAY_PENDING
        .try_with(|p| {
            respond_error(
                &mut p.borrow_mut(),
                "no ork host: run this code inside ork::testing::MockHost",
            )
        })
        .unwrap_or(0)
}

/// Serves the `call` import on non-wasm32 targets.
pub(crate) fn host_call(op: &[u8], req: &[u8]) -> i32 {
    match with_state(|state| state.dispatch(op, req)) {
        Some(Ok(r)) => r,
        Some(Err(message)) => trap(message),
        None => stray_error(),
    }
}

/// Serves the `response` import on non-wasm32 targets: `write` copies the
/// pending response into the guest's buffer of `buf_len` bytes and returns
/// how many it copied.
pub(crate) fn host_response<W: FnOnce(&[u8]) -> usize>(write: W, buf_len: usize) -> i32 {
    let pending = match with_state(|state| state.pending.take()) {
        Some(pending) => pending,
        None => STRAY_PENDING
            .try_with(|p| p.borrow_mut().take())
            .ok()
            .flatten(),
    };
    match pending {
        None => trap("response called with no pending response".to_string()),
        Some(p) if p.len() > buf_len => trap(format!(
            "response buffer of {} bytes is too small for the {}-byte response",
            buf_len,
            p.len()
        )),
        Some(p) => write(&p) as i32,
    }
}
