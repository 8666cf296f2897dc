//! The guest side of the ork host ABI v1 (`abi/ABI.md` in the ork repository).
//!
//! This module is the only place that declares the host's imports and names
//! the ABI's operations. Everything else in the SDK goes through [`invoke`].
//!
//! ```text
//!  guest memory                                   host
//!  ┌──────────────┐ op_ptr  "metrics.record"
//!  │ op bytes     │───────────────┐
//!  ├──────────────┤ req_ptr       ├──► call ──► Session.Dispatch(op, req)
//!  │ request JSON │───────────────┘                 │
//!  ├──────────────┤                                 ▼  response kept by the host
//!  │ (free)       │◄── response(buf_ptr, r) ◄── r = len(response JSON)
//!  └──────────────┘ buf_ptr
//! ```
//!
//! On wasm32 the two functions are imports from `ork:host/v1`. On every other
//! target nothing is imported: the same functions are served by the in-process
//! mock host of [`crate::testing`], so `cargo test` runs the SDK's real code
//! paths, byte for byte, on the developer's machine.

use serde_json::Value;

/// The ABI version this SDK speaks, sent in `abi.hello` and encoded in
/// [`IMPORT_MODULE`].
pub const ABI_VERSION: u32 = 1;

/// The wasm import module of ABI v1. The `#[link]` attribute below needs a
/// literal and repeats it; keep the two equal.
pub const IMPORT_MODULE: &str = "ork:host/v1";

/// How this SDK introduces itself in `abi.hello`.
pub const SDK: &str = concat!("ork-rust/", env!("CARGO_PKG_VERSION"));

/// The largest request the host accepts (16 MiB). Larger requests trap, so
/// [`invoke`] refuses them before calling the host.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The longest operation name the host accepts, in bytes.
pub const MAX_OP_BYTES: usize = 64;

/// Operation names of ABI v1.
pub mod op {
    /// `{"abi": 1, "sdk": "ork-rust/0.1.0"}` → `{"abi": 1, "host": "ork/…"}`. Must be the first call.
    pub const HELLO: &str = "abi.hello";
    /// `null` → task name, workflow, run id, attempt, executor, config file, directories.
    pub const TASK_INFO: &str = "task.info";
    /// `null` → the executor's `config:` from ork.yaml (`null` when absent).
    pub const EXECUTOR_CONFIG: &str = "executor.config";
    /// `null` → the `params:` of the task's config file (`null` when absent).
    pub const TASK_PARAMS: &str = "task.params";
    /// `null` → `{"<upstream task>": <its output>, …}`.
    pub const UPSTREAM: &str = "upstream";
    /// `{"name", "value", "labels"}` → `null`.
    pub const METRICS_RECORD: &str = "metrics.record";
    /// `{"level", "message", "fields"}` → `null`.
    pub const LOG: &str = "log";
    /// any JSON value → `null`; only once per task.
    pub const OUTPUT_SET: &str = "output.set";
    /// `{"message", "kind"}` → `null`; the guest then exits non-zero.
    pub const ERROR_REPORT: &str = "error.report";
    /// `{"method", "url", "headers", "body" | "body_base64", "timeout_ms"}` →
    /// `{"status", "headers", "url", "body" | "body_base64"}`; only to hosts
    /// of `sandbox.allowed_hosts`.
    pub const HTTP_REQUEST: &str = "http.request";
    /// `{"name"}` → `{"value"}`; only secrets of `sandbox.secrets`.
    pub const SECRET_GET: &str = "secret.get";
    /// `{"connection", "sql", "params"}` → `{"rows_affected"}`; only
    /// connections of `sandbox.connections`.
    pub const SQL_EXECUTE: &str = "sql.execute";
    /// `{"connection", "sql", "params"}` → `{"columns", "rows"}`.
    pub const SQL_QUERY: &str = "sql.query";

    /// Every operation of ABI v1.
    pub const ALL: [&str; 13] = [
        HELLO,
        TASK_INFO,
        EXECUTOR_CONFIG,
        TASK_PARAMS,
        UPSTREAM,
        METRICS_RECORD,
        LOG,
        OUTPUT_SET,
        ERROR_REPORT,
        HTTP_REQUEST,
        SECRET_GET,
        SQL_EXECUTE,
        SQL_QUERY,
    ];
}

/// The raw host functions. On wasm32 they are the host's imports; elsewhere
/// they are served by the mock host. Calling them is `unsafe` because the host
/// reads and writes guest memory through the pointers given.
pub mod sys {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "ork:host/v1")]
    extern "C" {
        /// Runs operation `op` (UTF-8, at most 64 bytes) with the JSON request
        /// `req` (`req_len == 0` means `null`). Returns the length of the
        /// pending response: `r >= 0` on success, `-r` bytes of
        /// `{"error": "…"}` when `r < 0`. Invalid input traps.
        pub fn call(op_ptr: *const u8, op_len: usize, req_ptr: *const u8, req_len: usize) -> i32;

        /// Copies the pending response into `[buf_ptr, buf_ptr+buf_len)`,
        /// clears it and returns the number of bytes written. Traps if there is
        /// no pending response or the buffer is too small.
        pub fn response(buf_ptr: *mut u8, buf_len: usize) -> i32;
    }

    /// Mock-host version of the `call` import (non-wasm32 targets only).
    ///
    /// # Safety
    /// `op_ptr`/`req_ptr` must be valid for `op_len`/`req_len` bytes of reads.
    #[cfg(not(target_arch = "wasm32"))]
    pub unsafe fn call(
        op_ptr: *const u8,
        op_len: usize,
        req_ptr: *const u8,
        req_len: usize,
    ) -> i32 {
        let op = raw_slice(op_ptr, op_len);
        let req = raw_slice(req_ptr, req_len);
        crate::testing::host_call(op, req)
    }

    /// Mock-host version of the `response` import (non-wasm32 targets only).
    ///
    /// # Safety
    /// `buf_ptr` must be valid for `buf_len` bytes of writes.
    #[cfg(not(target_arch = "wasm32"))]
    pub unsafe fn response(buf_ptr: *mut u8, buf_len: usize) -> i32 {
        crate::testing::host_response(
            |pending| {
                let n = pending.len().min(buf_len);
                if n > 0 {
                    std::ptr::copy_nonoverlapping(pending.as_ptr(), buf_ptr, n);
                }
                n
            },
            buf_len,
        )
    }

    #[cfg(not(target_arch = "wasm32"))]
    unsafe fn raw_slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ptr, len)
        }
    }
}

/// Calls operation `op` with a request given as raw bytes and returns the raw
/// response: `Ok` for `r >= 0`, `Err` (the `{"error": …}` document) for
/// `r < 0`. Checks nothing; used by [`invoke`] and by ABI tests.
pub fn invoke_bytes(op: &str, req: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    // SAFETY: both slices are valid for their lengths during the call; the
    // host copies them before returning.
    let r = unsafe { sys::call(op.as_ptr(), op.len(), req.as_ptr(), req.len()) };
    let len = r.unsigned_abs() as usize;
    let mut buf = vec![0u8; len];
    if len > 0 {
        // SAFETY: `buf` is valid for `len` bytes of writes.
        let n = unsafe { sys::response(buf.as_mut_ptr(), len) };
        buf.truncate(n.max(0) as usize);
    }
    if r < 0 {
        Err(buf)
    } else {
        Ok(buf)
    }
}

/// Calls operation `op` of the host with the JSON request `req` and returns
/// its JSON response.
///
/// `Err` carries the host's message when the operation failed with a negative
/// result (`{"error": "…"}`), or a message of the SDK's own when the request
/// cannot be sent (it is larger than 16 MiB) or the response is not JSON.
pub fn invoke(op: &str, req: &Value) -> Result<Value, String> {
    let body = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(req).map_err(|e| format!("{}: cannot encode request: {}", op, e))?
    };
    if body.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "{}: request of {} bytes exceeds the 16 MiB limit",
            op,
            body.len()
        ));
    }
    match invoke_bytes(op, &body) {
        Ok(resp) => parse(op, &resp),
        Err(resp) => Err(error_message(op, &resp)),
    }
}

fn parse(op: &str, resp: &[u8]) -> Result<Value, String> {
    if resp.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(resp)
        .map_err(|e| format!("{}: the host's response is not JSON: {}", op, e))
}

/// The message of a `{"error": "…"}` response, or a description of a
/// malformed one.
fn error_message(op: &str, resp: &[u8]) -> String {
    match serde_json::from_slice::<Value>(resp) {
        Ok(Value::Object(mut m)) => match m.remove("error") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => format!("{}: failed: {}", op, Value::Object(m)),
        },
        _ => format!("{}: failed: {}", op, String::from_utf8_lossy(resp)),
    }
}

/// Like [`invoke`], with the host's refusal as a [`crate::HostError`] of
/// `op` inside a [`crate::Error`].
pub(crate) fn call(op: &str, req: &Value) -> crate::Result<Value> {
    invoke(op, req).map_err(|message| crate::Error::new(crate::HostError::new(op, message)))
}

/// Sends `abi.hello` declaring [`ABI_VERSION`] and this SDK. Must be the
/// guest's first call; the runners do it once at start-up.
pub fn hello() -> Result<Value, String> {
    invoke(
        op::HELLO,
        &serde_json::json!({ "abi": ABI_VERSION, "sdk": SDK }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_names_crate_version() {
        assert_eq!(SDK, "ork-rust/0.1.0");
        assert!(IMPORT_MODULE.ends_with(&format!("/v{}", ABI_VERSION)));
        assert!(op::ALL.iter().all(|o| o.len() <= MAX_OP_BYTES));
    }

    #[test]
    fn error_message_forms() {
        assert_eq!(error_message("x", br#"{"error":"bad name"}"#), "bad name");
        assert_eq!(error_message("x", b"{}"), "x: failed: {}");
        assert_eq!(error_message("x", b"nope"), "x: failed: nope");
    }
}
