//! The runners (what `#[task]` and `#[executor]` generate) against the mock
//! host: inputs, outputs, failures and ABI checks.

use std::collections::HashMap;

use ork::serde_json::{json, Value};
use ork::testing::{ErrorReport, Exit, MockHost};
use ork::{Context, Level, Result};
use serde::{Deserialize, Serialize};

fn echo(ctx: &Context, upstream: &Value, params: Value) -> Result<Value> {
    ctx.metrics()
        .record("calls", 1.0, &[("task", ctx.task_name())])?;
    ctx.log(Level::Warn, "echo", json!({ "n": 1 }));
    ctx.debug(format_args!("attempt {}", ctx.attempt()));
    Ok(json!({
        "task": ctx.task_name(),
        "workflow": ctx.workflow_name(),
        "run_id": ctx.run_id(),
        "attempt": ctx.attempt(),
        "executor": ctx.executor_name(),
        "config_file": ctx.config_file(),
        "scratch_dir": ctx.scratch_dir(),
        "output_dir": ctx.output_dir(),
        "upstream": upstream,
        "params": params,
    }))
}

#[test]
fn task_sees_its_context_and_sets_its_output() {
    let out = MockHost::new()
        .task("load")
        .workflow("sales")
        .run_id("r-42")
        .attempt(2)
        .executor("rust")
        .config_file("tasks/load.yaml")
        .scratch_dir("/scratch")
        .output_dir("/output")
        .upstream(json!({ "extract": { "rows": 3 } }))
        .params(json!({ "limit": 5 }))
        .run_task(echo);
    assert_eq!(out.exit(), &Exit::Code(0));
    assert_eq!(
        out.output(),
        Some(&json!({
            "task": "load", "workflow": "sales", "run_id": "r-42", "attempt": 2,
            "executor": "rust", "config_file": "tasks/load.yaml",
            "scratch_dir": "/scratch", "output_dir": "/output",
            "upstream": { "extract": { "rows": 3 } }, "params": { "limit": 5 },
        }))
    );
    assert_eq!(
        out.calls(),
        [
            "abi.hello",
            "task.info",
            "task.params",
            "upstream",
            "metrics.record",
            "log",
            "log",
            "output.set"
        ]
    );
    let m = &out.metrics()[0];
    assert_eq!((m.name.as_str(), m.value), ("calls", 1.0));
    assert_eq!(m.labels.get("task").map(String::as_str), Some("load"));
    assert_eq!(out.logs()[0].level, "warn");
    assert_eq!(out.logs()[0].fields, json!({ "n": 1 }));
    assert_eq!(out.logs()[1].message, "attempt 2");
    assert_eq!(out.logs()[1].fields, json!({}));
    assert!(out.error().is_none());
}

#[test]
fn task_error_is_reported_with_its_chain() {
    let out = MockHost::new().run_task(|_: &Context, _: &Value, _: ()| -> Result<()> {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such table");
        Err(ork::Error::from(io).context("loading sales"))
    });
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(
        out.error(),
        Some(&ErrorReport {
            message: "loading sales: no such table".into(),
            kind: "run".into()
        })
    );
    assert!(out.output().is_none());
}

#[derive(Deserialize, Serialize)]
struct Required {
    action: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct Defaults {
    limit: u32,
    name: String,
}

fn params_of<P: Serialize>(_: &Context, _: &Value, p: P) -> Result<P> {
    Ok(p)
}

#[test]
fn params_null_reads_as_empty_object() {
    let out = MockHost::new().run_task(params_of::<Defaults>);
    assert_eq!(out.output(), Some(&json!({ "limit": 0, "name": "" })));
    let out = MockHost::new().run_task(params_of::<()>);
    assert_eq!(out.output(), Some(&Value::Null));
    let out = MockHost::new().run_task(params_of::<Option<Required>>);
    assert_eq!(out.output(), Some(&Value::Null));
    let out = MockHost::new()
        .params(json!({ "action": "x" }))
        .run_task(params_of::<Required>);
    assert_eq!(out.output(), Some(&json!({ "action": "x" })));
}

#[test]
fn invalid_params_name_the_file() {
    let out = MockHost::new()
        .config_file("tasks/probe.yaml")
        .run_task(params_of::<Required>);
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(
        out.error(),
        Some(&ErrorReport {
            message: "invalid params in tasks/probe.yaml (params): missing field `action`".into(),
            kind: "config".into(),
        })
    );
    // No user code ran, so upstream was never fetched.
    assert_eq!(
        out.calls(),
        ["abi.hello", "task.info", "task.params", "error.report"]
    );

    let out = MockHost::new()
        .task("t")
        .params(json!({ "limit": "ten" }))
        .run_task(params_of::<Defaults>);
    let err = out.error().unwrap();
    assert!(
        err.message
            .starts_with("invalid params for task `t` (params): invalid type: string \"ten\""),
        "{}",
        err.message
    );
}

#[derive(Deserialize)]
struct GreeterConfig {
    greeting: String,
    #[serde(default)]
    fail_new: bool,
}

struct Greeter {
    greeting: String,
}

impl Greeter {
    fn new(config: GreeterConfig) -> Result<Self> {
        if config.fail_new {
            ork::bail!("refusing to start");
        }
        Ok(Greeter {
            greeting: config.greeting,
        })
    }

    fn run(&self, config_file: &str, ctx: &Context, upstream: &Value) -> Result<Value> {
        Ok(json!({
            "text": format!("{}, {}", self.greeting, ctx.task_name()),
            "config_file": config_file,
            "upstream_keys": upstream.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        }))
    }
}

#[test]
fn executor_runs_with_its_config() {
    let out = MockHost::new()
        .task("hi")
        .config(json!({ "greeting": "hello" }))
        .upstream(json!({ "a": 1, "b": 2 }))
        .run_executor(Greeter::new, Greeter::run);
    assert!(out.succeeded(), "{:?}", out);
    assert_eq!(
        out.output(),
        Some(&json!({ "text": "hello, hi", "config_file": "", "upstream_keys": ["a", "b"] }))
    );
    assert_eq!(
        out.calls(),
        [
            "abi.hello",
            "task.info",
            "executor.config",
            "upstream",
            "output.set"
        ]
    );
}

#[test]
fn executor_config_and_new_failures() {
    let out = MockHost::new()
        .executor("greeter")
        .run_executor(Greeter::new, Greeter::run);
    assert_eq!(
        out.error(),
        Some(&ErrorReport {
            message: "invalid executor config for executor `greeter` (ork.yaml executors.greeter.config): missing field `greeting`".into(),
            kind: "config".into(),
        })
    );
    let out = MockHost::new()
        .config(json!({ "greeting": "x", "fail_new": true }))
        .run_executor(Greeter::new, Greeter::run);
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(
        out.error(),
        Some(&ErrorReport {
            message: "refusing to start".into(),
            kind: "run".into()
        })
    );
}

#[test]
fn panic_is_reported_then_aborts() {
    let out = MockHost::new().run_task(|_: &Context, _: &Value, _: ()| -> Result<()> {
        panic!("probe {}", "panic");
    });
    assert!(
        matches!(out.exit(), Exit::Trap(m) if m.contains("probe panic")),
        "{:?}",
        out.exit()
    );
    let err = out.error().unwrap();
    assert_eq!(err.kind, "panic");
    // The path is relative to the workspace root (here `ork/tests/…`).
    assert!(err.message.starts_with("panicked at "), "{}", err.message);
    assert!(
        err.message.contains("tests/mock_host.rs:"),
        "{}",
        err.message
    );
    assert!(err.message.ends_with(": probe panic"), "{}", err.message);
}

#[test]
fn metrics_rejected_by_the_host_are_errors() {
    let out = MockHost::new().run_task(|ctx: &Context, _: &Value, _: ()| -> Result<Vec<String>> {
        let m = ctx.metrics();
        Ok(vec![
            m.record("1bad", 1.0, &[]).unwrap_err().to_string(),
            m.record("ok", 1.0, &[("bad-label", "x")])
                .unwrap_err()
                .to_string(),
            m.record("nan", f64::NAN, &[]).unwrap_err().to_string(),
        ])
    });
    assert_eq!(
        out.output(),
        Some(&json!([
            "metric name \"1bad\" must match [a-zA-Z_:][a-zA-Z0-9_:]*",
            "metric \"ok\": label name \"bad-label\" must match [a-zA-Z_][a-zA-Z0-9_]*",
            "metric \"nan\": value NaN is not a finite number",
        ]))
    );
    assert!(out.metrics().is_empty());
}

#[test]
fn unserializable_output_fails_the_task() {
    let out = MockHost::new().run_task(
        |_: &Context, _: &Value, _: ()| -> Result<HashMap<(u8, u8), u8>> {
            Ok(vec![((1, 2), 3)].into_iter().collect())
        },
    );
    assert_eq!(out.exit(), &Exit::Code(1));
    let err = out.error().unwrap();
    assert_eq!(err.kind, "output");
    assert!(
        err.message
            .starts_with("cannot serialize the task's output: "),
        "{}",
        err.message
    );
}

#[test]
fn abi_misuse_traps() {
    let out = MockHost::new().run_task(|_: &Context, _: &Value, _: ()| -> Result<()> {
        let _ = ork::__raw::invoke("no.such.op", &Value::Null);
        unreachable!("the host traps");
    });
    assert_eq!(
        out.exit(),
        &Exit::Trap("unknown operation \"no.such.op\"".into())
    );
    assert!(
        out.error().is_none(),
        "a trap is not a reported error: {:?}",
        out.errors()
    );

    let out = MockHost::new().run_task(|_: &Context, _: &Value, _: ()| -> Result<()> {
        let mut buf = [0u8; 8];
        // SAFETY: buf is valid for 8 bytes.
        unsafe { ork::__raw::response(buf.as_mut_ptr(), buf.len()) };
        Ok(())
    });
    assert_eq!(
        out.exit(),
        &Exit::Trap("response called with no pending response".into())
    );

    let out = MockHost::new().run_task(|_: &Context, _: &Value, _: ()| -> Result<()> {
        ork::__raw::invoke("output.set", &json!(1)).unwrap();
        Ok(())
    });
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(out.output(), Some(&json!(1)));
    assert_eq!(
        out.error().map(|e| e.message.as_str()),
        Some("cannot store the task's output: the task output was already set; a task has one output")
    );
}

#[test]
fn oversized_requests_are_refused_before_the_host() {
    let out = MockHost::new().run_task(|ctx: &Context, _: &Value, _: ()| -> Result<()> {
        ctx.info("x".repeat(ork::__raw::MAX_REQUEST_BYTES));
        Ok(())
    });
    assert!(out.succeeded());
    assert!(out.logs().is_empty());
    assert!(!out.calls().contains(&"log".to_string()));
}
