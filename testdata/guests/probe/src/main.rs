//! A task whose params choose what it does, for testing the host and its
//! sandbox: `params: {action: echo}`, `{action: alloc, mb: 64}`, …
//! The output reports what happened; failures of the sandbox (a file that
//! cannot be read, a connection refused) are reported in the output, not as
//! task errors.
//!
//! The capability actions report the host's answer the same way, so a
//! cross-language suite can compare them with the Python probe's:
//!
//! * `http` (`method`, `url`, `headers`, `body`, `timeout_ms`) →
//!   `{ok, status, body, error}`; `body` is sent as text (a non-string value
//!   as its JSON), the response body is reported as text;
//! * `secret` (`name`, and `print: true` / `fail: true` to leak the value
//!   to stdout and the log / in the task's error) → `{ok, value, error}`;
//! * `sql_execute` (`connection`, `sql`, `params`) → `{ok, rows_affected, error}`;
//! * `sql_query` (`connection`, `sql`, `params`) → `{ok, columns, rows, error}`.
//!
//! Every key is present; those that do not apply are `null`, and `error` is
//! the host's message exactly.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ork::serde_json::{json, Map, Value};
use ork::{Context, HostError, HttpRequest, Level, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Params {
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_kb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
    /// The SQL parameters (`params.params`).
    #[serde(rename = "params", skip_serializing_if = "Option::is_none")]
    sql_params: Option<Vec<Value>>,
    /// `secret`: also print the value (stdout and the task's log).
    #[serde(skip_serializing_if = "Option::is_none")]
    print: Option<bool>,
    /// `secret`: then fail the task with a message holding the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    fail: Option<bool>,
    /// Anything else, echoed back by `echo`.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[ork::task]
fn probe(ctx: &Context, upstream: &Value, params: Params) -> Result<Value> {
    match params.action.as_str() {
        "echo" => echo(ctx, upstream, &params),
        // What a benchmark's trivial task does: read upstream, answer small.
        "trivial" => Ok(json!({
            "ok": true,
            "up": upstream.as_object().map_or(0, |m| m.len()),
        })),
        "fail" => Err(ork::Error::msg(params.message.as_deref().unwrap_or("boom"))),
        // The executor's `config:` from ork.yaml, as executor.config answers.
        "config" => Ok(json!({
            "config": ork::__raw::invoke(ork::__raw::op::EXECUTOR_CONFIG, &Value::Null)
                .map_err(ork::Error::msg)?,
        })),
        "panic" => panic!("probe panic"),
        "alloc" => alloc(required(params.mb, "mb")?, params.chunk_kb),
        "spin" => spin(),
        "sleep" => {
            let ms = required(params.ms, "ms")?;
            std::thread::sleep(Duration::from_millis(ms));
            Ok(json!({ "slept_ms": ms }))
        }
        "read_file" => Ok(outcome(
            std::fs::read_to_string(required(params.path, "path")?)
                .map(|content| json!({ "content": content })),
        )),
        "write_file" => {
            let path = required(params.path, "path")?;
            let content = params.content.unwrap_or_default();
            Ok(outcome(std::fs::write(path, content).map(|()| json!({}))))
        }
        "list_dir" => Ok(outcome(list_dir(&required(params.path, "path")?))),
        "env" => {
            let vars: BTreeMap<String, String> = std::env::vars().collect();
            Ok(json!({ "vars": vars }))
        }
        "net" => {
            let addr = required(params.addr, "addr")?;
            Ok(outcome(std::net::TcpStream::connect(addr.as_str()).map(|_| json!({}))))
        }
        "exit" => std::process::exit(required(params.code, "code")?),
        "trap" => probe_trap(),
        "time" => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
            Ok(json!({ "unix_ms": now.as_millis() as u64 }))
        }
        "random" => random(),
        "http" => http(ctx, params),
        "secret" => secret(ctx, params),
        "sql_execute" => sql(ctx, params, false),
        "sql_query" => sql(ctx, params, true),
        other => ork::bail!(
            "unknown action {:?}: use echo, fail, panic, alloc, spin, sleep, read_file, write_file, list_dir, env, net, exit, trap, time, random, http, secret, sql_execute or sql_query",
            other
        ),
    }
}

/// `http`: one request through the host.
fn http(ctx: &Context, params: Params) -> Result<Value> {
    let url = required(params.url, "url")?;
    let mut req = HttpRequest::new(params.method.as_deref().unwrap_or("GET"), url);
    for (k, v) in params.headers.unwrap_or_default() {
        req = req.header(k, v);
    }
    match params.body {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => req = req.body(text),
        Some(other) => req = req.body(other.to_string()),
    }
    if let Some(ms) = params.timeout_ms.filter(|&ms| ms > 0) {
        req = req.timeout(Duration::from_millis(ms));
    }
    Ok(capability(
        ctx.http().request(req),
        |resp| json!({ "status": resp.status(), "body": resp.text() }),
        &["status", "body"],
    ))
}

/// `secret`: one secret, printed or leaked in the task's error on request.
fn secret(ctx: &Context, params: Params) -> Result<Value> {
    let name = required(params.name, "name")?;
    let result = ctx.secret(&name);
    if let Ok(value) = &result {
        if params.print == Some(true) {
            println!("secret {} is {}", name, value);
            ctx.info(format!("secret {} is {}", name, value));
        }
        if params.fail == Some(true) {
            ork::bail!("failing with secret {} = {}", name, value);
        }
    }
    Ok(capability(
        result,
        |value| json!({ "value": value }),
        &["value"],
    ))
}

/// `sql_execute` and `sql_query`: one statement through the host.
fn sql(ctx: &Context, params: Params, query: bool) -> Result<Value> {
    let db = ctx.sql(&required(params.connection, "connection")?);
    let sql = required(params.sql, "sql")?;
    let args = params.sql_params.unwrap_or_default();
    Ok(if query {
        capability(
            db.query(&sql, &args),
            |r| json!({ "columns": r.columns(), "rows": r.rows() }),
            &["columns", "rows"],
        )
    } else {
        capability(
            db.execute(&sql, &args),
            |n| json!({ "rows_affected": n }),
            &["rows_affected"],
        )
    })
}

/// `{"ok": true, "error": null, ...fields}` or `{"ok": false, "error":
/// "<the host's message>", <fields>: null}`.
fn capability<T, F: FnOnce(T) -> Value>(result: Result<T>, fields: F, keys: &[&str]) -> Value {
    let mut out = Map::new();
    match result {
        Ok(v) => {
            if let Value::Object(m) = fields(v) {
                out.extend(m);
            }
            out.insert("ok".into(), Value::Bool(true));
            out.insert("error".into(), Value::Null);
        }
        Err(e) => {
            for k in keys {
                out.insert(k.to_string(), Value::Null);
            }
            // The host's message alone, as the Python probe reports it.
            let message = match e.downcast_ref::<HostError>() {
                Some(host) => host.message().to_string(),
                None => e.to_string(),
            };
            out.insert("ok".into(), Value::Bool(false));
            out.insert("error".into(), Value::String(message));
        }
    }
    Value::Object(out)
}

fn required<T>(value: Option<T>, name: &str) -> Result<T> {
    value.ok_or_else(|| ork::Error::msg(format!("this action needs params.{}", name)))
}

/// `{"ok": true, ...fields}` or `{"ok": false, "error": "<io error>"}`.
fn outcome(result: std::io::Result<Value>) -> Value {
    match result {
        Ok(Value::Object(mut m)) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m)
        }
        Ok(other) => json!({ "ok": true, "value": other }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    }
}

fn echo(ctx: &Context, upstream: &Value, params: &Params) -> Result<Value> {
    ctx.metrics().record(
        "probe_calls",
        1.0,
        &[("task", ctx.task_name()), ("kind", "echo")],
    )?;
    ctx.log(Level::Info, "echo", json!({ "n": 1 }));
    println!("stdout line");
    eprintln!("stderr line");
    Ok(json!({
        "task": ctx.task_name(),
        "workflow": ctx.workflow_name(),
        "run_id": ctx.run_id(),
        "attempt": ctx.attempt(),
        "executor": ctx.executor_name(),
        "config_file": ctx.config_file(),
        "scratch_dir": ctx.scratch_dir(),
        "output_dir": ctx.output_dir(),
        "params": params,
        "upstream": upstream,
    }))
}

/// Allocates `mb` MiB and touches every byte: one `Vec<u8>` filled with 1s,
/// or, with `chunk_kb`, many of that size (memory then grows gradually, as in
/// a program building up data, instead of in one request).
fn alloc(mb: u32, chunk_kb: Option<u32>) -> Result<Value> {
    let bytes = (mb as usize)
        .checked_mul(1 << 20)
        .ok_or_else(|| ork::Error::msg(format!("{} MiB does not fit in memory", mb)))?;
    let chunk = match chunk_kb {
        Some(0) => ork::bail!("params.chunk_kb must be positive"),
        Some(kb) => (kb as usize).saturating_mul(1 << 10).min(bytes.max(1)),
        None => bytes.max(1),
    };
    let mut chunks = Vec::new();
    let mut left = bytes;
    while left > 0 {
        let n = chunk.min(left);
        chunks.push(vec![1u8; n]);
        left -= n;
    }
    // Read one byte per page back, so the memory is not optimised away.
    let mut sum = 0usize;
    for v in &chunks {
        for i in (0..v.len()).step_by(4096) {
            // SAFETY: i < v.len().
            sum += unsafe { core::ptr::read_volatile(v.as_ptr().add(i)) } as usize;
        }
    }
    let pages: usize = chunks.iter().map(|v| (v.len() + 4095) / 4096).sum();
    ork::ensure!(sum == pages, "memory did not hold its value");
    Ok(json!({ "allocated_mb": mb }))
}

/// Busy-loops forever (until the host stops it).
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        // SAFETY: reads and writes a local; volatile so the loop stays.
        unsafe {
            let n = core::ptr::read_volatile(&counter);
            core::ptr::write_volatile(&mut counter, n.wrapping_add(1));
        }
    }
}

fn list_dir(path: &str) -> std::io::Result<Value> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        entries.push(entry?.file_name().to_string_lossy().into_owned());
    }
    entries.sort();
    Ok(json!({ "entries": entries }))
}

/// `random`: 32 bytes from WASI's random_get, straight from the host (not
/// through a library that could seed a generator of its own), as hex.
fn random() -> Result<Value> {
    let mut buf = [0u8; 32];
    #[cfg(target_arch = "wasm32")]
    {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        extern "C" {
            fn random_get(buf: *mut u8, len: usize) -> u16;
        }
        // SAFETY: the host writes exactly buf.len() bytes into buf.
        let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
        if errno != 0 {
            ork::bail!("random_get failed with errno {}", errno);
        }
    }
    let hex: String = buf.iter().map(|b| format!("{:02x}", b)).collect();
    Ok(json!({ "hex": hex }))
}

/// Executes `unreachable`, so the trap names this function.
#[inline(never)]
fn probe_trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
