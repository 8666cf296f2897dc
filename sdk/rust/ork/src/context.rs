//! [`Context`]: what a running task knows about itself, and how it reports
//! metrics and logs to ork.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::abi::{self, op};
use crate::http::Http;
use crate::sql::SqlConnection;
use crate::{Error, HostError, Result};

/// The response of `task.info`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskInfo {
    pub(crate) task: String,
    pub(crate) workflow: String,
    pub(crate) run_id: String,
    pub(crate) attempt: u32,
    pub(crate) executor: String,
    #[serde(default)]
    pub(crate) config_file: Option<String>,
    pub(crate) scratch_dir: PathBuf,
    pub(crate) output_dir: PathBuf,
    #[serde(default)]
    pub(crate) workflow_params: Value,
}

/// The execution context of one task run, passed to task functions and to
/// an executor's `run`.
///
/// Its facts come from the host once, at start-up; reading them costs
/// nothing. Metrics and logs go to the host immediately. [`http`](Context::http),
/// [`secret`](Context::secret) and [`sql`](Context::sql) reach what ork.yaml
/// grants the executor (`sandbox.allowed_hosts`, `sandbox.secrets`,
/// `sandbox.connections`).
///
/// ```no_run
/// # fn demo(ctx: &ork::Context) -> ork::Result<()> {
/// ctx.info(format!("loading for {} (attempt {})", ctx.task_name(), ctx.attempt()));
/// ctx.metrics().record("rows", 42.0, &[("task", ctx.task_name())])?;
/// # Ok(()) }
/// ```
pub struct Context {
    info: TaskInfo,
    metrics: Metrics,
    http: Http,
}

impl Context {
    /// Fetches `task.info` from the host.
    pub(crate) fn fetch() -> Result<Context> {
        let v = abi::invoke(op::TASK_INFO, &Value::Null).map_err(Error::msg)?;
        let info = serde_json::from_value(v).map_err(|e| {
            Error::msg(format!(
                "task.info: unexpected response from the host: {}",
                e
            ))
        })?;
        Ok(Context {
            info,
            metrics: Metrics { _private: () },
            http: Http { _private: () },
        })
    }

    /// The task's name in its workflow, e.g. `load`.
    pub fn task_name(&self) -> &str {
        &self.info.task
    }

    /// The workflow's name, e.g. `sales`.
    pub fn workflow_name(&self) -> &str {
        &self.info.workflow
    }

    /// The id of the workflow run this task belongs to.
    pub fn run_id(&self) -> &str {
        &self.info.run_id
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, …
    pub fn attempt(&self) -> u32 {
        self.info.attempt
    }

    /// The run's parameters (`ork run --param key=value`), the same for every
    /// task of the run: a JSON object, empty when there are none.
    pub fn workflow_params(&self) -> &Value {
        &self.info.workflow_params
    }

    /// The name of the executor running the task, as named in ork.yaml.
    pub fn executor_name(&self) -> &str {
        &self.info.executor
    }

    /// The task's `config_file` as written in the workflow (a path inside the
    /// sandbox), or `None` when the task has none.
    pub fn config_file(&self) -> Option<&str> {
        self.info.config_file.as_deref()
    }

    /// A writable directory for temporary files, private to this task run.
    pub fn scratch_dir(&self) -> &Path {
        &self.info.scratch_dir
    }

    /// The directory where the task writes files it produces.
    pub fn output_dir(&self) -> &Path {
        &self.info.output_dir
    }

    /// The task's metrics recorder.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// HTTP requests, made by the host to the hosts ork.yaml grants the
    /// executor (`sandbox.allowed_hosts`); see [`crate::http`].
    ///
    /// ```no_run
    /// # fn demo(ctx: &ork::Context) -> ork::Result<()> {
    /// let resp = ctx.http().get("https://api.example.com/v1/jobs")?.error_for_status()?;
    /// let jobs: ork::serde_json::Value = resp.json()?;
    /// # Ok(()) }
    /// ```
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The value of secret `name`, one of the executor's `sandbox.secrets`
    /// in ork.yaml (defined under the top-level `secrets:`).
    ///
    /// Fails with a [`HostError`] for a secret that is not granted or cannot
    /// be read. ork redacts secret values from the task's logs, errors and
    /// output. For API tokens, prefer headers attached to an allowed host
    /// (`{{ secret.NAME }}`), which never enter the sandbox.
    pub fn secret(&self, name: &str) -> Result<String> {
        let resp = abi::call(op::SECRET_GET, &json!({ "name": name }))?;
        match resp {
            Value::Object(mut m) => match m.remove("value") {
                Some(Value::String(value)) => Ok(value),
                _ => Err(Error::new(HostError::new(
                    op::SECRET_GET,
                    "unexpected response from the host: no \"value\" string",
                ))),
            },
            _ => Err(Error::new(HostError::new(
                op::SECRET_GET,
                "unexpected response from the host: not an object",
            ))),
        }
    }

    /// Database connection `connection`, one of the executor's
    /// `sandbox.connections` in ork.yaml (defined under the top-level
    /// `connections:`); see [`crate::sql`].
    ///
    /// ```no_run
    /// # use ork::serde_json::json;
    /// # fn demo(ctx: &ork::Context) -> ork::Result<()> {
    /// let db = ctx.sql("warehouse");
    /// db.execute("INSERT INTO runs (id, rows) VALUES (?, ?)", &[json!(ctx.run_id()), json!(42)])?;
    /// let total = db.query("SELECT sum(rows) FROM runs", &[])?;
    /// # Ok(()) }
    /// ```
    pub fn sql(&self, connection: &str) -> SqlConnection {
        SqlConnection::new(connection)
    }

    /// Logs `message` at `level` with structured `fields` (a JSON object, or
    /// `null` for none; any other value is logged as `{"value": …}`).
    ///
    /// Logging never fails the task: if the host rejects the record, the SDK
    /// writes it to stderr instead, which ork also keeps as the task's log.
    pub fn log<M: fmt::Display>(&self, level: Level, message: M, fields: Value) {
        let message = message.to_string();
        let fields = match fields {
            Value::Null => Value::Object(Map::new()),
            Value::Object(m) => Value::Object(m),
            other => json!({ "value": other }),
        };
        let req = json!({ "level": level.as_str(), "message": message, "fields": fields });
        if let Err(e) = abi::invoke(op::LOG, &req) {
            let _ = writeln!(
                std::io::stderr(),
                "ork: log record rejected ({}): {} {}",
                e,
                level.as_str(),
                truncate(&message, MAX_FALLBACK_MESSAGE)
            );
        }
    }

    /// Logs `message` at [`Level::Debug`].
    pub fn debug<M: fmt::Display>(&self, message: M) {
        self.log(Level::Debug, message, Value::Null)
    }

    /// Logs `message` at [`Level::Info`].
    pub fn info<M: fmt::Display>(&self, message: M) {
        self.log(Level::Info, message, Value::Null)
    }

    /// Logs `message` at [`Level::Warn`].
    pub fn warn<M: fmt::Display>(&self, message: M) {
        self.log(Level::Warn, message, Value::Null)
    }

    /// Logs `message` at [`Level::Error`]. This does not fail the task: return
    /// an `Err` for that.
    pub fn error<M: fmt::Display>(&self, message: M) {
        self.log(Level::Error, message, Value::Null)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("task", &self.info.task)
            .field("workflow", &self.info.workflow)
            .field("run_id", &self.info.run_id)
            .field("attempt", &self.info.attempt)
            .field("executor", &self.info.executor)
            .field("config_file", &self.info.config_file)
            .finish_non_exhaustive()
    }
}

/// How much of a rejected log message goes to stderr instead.
const MAX_FALLBACK_MESSAGE: usize = 4096;

/// `s`, cut to at most `max` bytes at a character boundary, saying how much
/// was cut.
fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len()).into()
}

/// Records the task's metrics; get it from [`Context::metrics`].
#[derive(Debug)]
pub struct Metrics {
    _private: (),
}

impl Metrics {
    /// Records one point of metric `name` with the given labels.
    ///
    /// The host rejects (as an `Err`, which the task may ignore) a name that
    /// does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`, a label name that does not
    /// match `[a-zA-Z_][a-zA-Z0-9_]*`, and more than 10,000 points per task.
    /// A value that is not finite is refused here, before it reaches the
    /// host.
    ///
    /// ```no_run
    /// # fn demo(ctx: &ork::Context) -> ork::Result<()> {
    /// ctx.metrics().record("bytes_processed", 1.5e9, &[
    ///     ("task", ctx.task_name()),
    ///     ("workflow", ctx.workflow_name()),
    /// ])?;
    /// # Ok(()) }
    /// ```
    pub fn record(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        if !value.is_finite() {
            return Err(Error::msg(format!(
                "metric {:?}: value {} is not a finite number",
                name, value
            )));
        }
        let labels: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let req = json!({ "name": name, "value": value, "labels": labels });
        abi::call(op::METRICS_RECORD, &req).map(drop)
    }
}

/// The severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Detail useful when debugging a task.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the task could handle.
    Warn,
    /// A failure the task reports but does not fail on.
    Error,
}

impl Level {
    /// The level's name on the wire: `debug`, `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
