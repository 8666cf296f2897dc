//! Breaks the ork host ABI on purpose, to test that the host traps (or
//! returns an error) instead of misbehaving. The case comes from the
//! environment variable ORK_MISUSE; every case except `no_hello` and
//! `wrong_version` first greets the host properly.
//!
//! | ORK_MISUSE           | what the guest does                            | host must |
//! |----------------------|------------------------------------------------|-----------|
//! | `bad_pointer`        | `call` with `op_ptr = 0xFFFF_FF00`             | trap      |
//! | `bad_len`            | `call` with a valid `req_ptr`, `req_len = 0x7FFF_FFFF` | trap |
//! | `bad_json`           | `log` with the request bytes `{not json`       | trap      |
//! | `oversized`          | `log` with a 17 MiB JSON string                | trap      |
//! | `unknown_op`         | `call` of `no.such.op`                         | trap      |
//! | `wrong_shape`        | `metrics.record` with `"value": "high"` (valid JSON, wrong type) | trap |
//! | `long_op`            | `call` with a 65-byte operation name           | trap      |
//! | `non_utf8_op`        | `call` with the operation name bytes `task.\xff` | trap    |
//! | `no_hello`           | `task.info` before `abi.hello`                 | trap      |
//! | `wrong_version`      | `abi.hello` declaring `"abi": 2`               | trap      |
//! | `response_too_small` | `task.info`, then `response` into 1 byte       | trap      |
//! | `response_none`      | `response` with nothing pending                | trap      |
//! | `bad_metric`         | `metrics.record` named `1bad`                  | fail it: the guest sets the output `{"error": "<host message>"}`, exits 0 |
//! | `output_twice`       | `output.set` twice                             | fail the second: the guest logs the host's message (info), exits 0 |
//!
//! Exit status 3 means the host accepted something it must not; 2 means an
//! unknown case.

use ork::__raw as raw;
use ork::serde_json::{json, Value};

fn main() {
    let case = std::env::var("ORK_MISUSE").unwrap_or_default();
    match case.as_str() {
        "no_hello" => {
            let r = call(raw::op::TASK_INFO, b"");
            unexpected(&case, r);
        }
        "wrong_version" => {
            let req = json!({ "abi": 2, "sdk": raw::SDK }).to_string();
            let r = call(raw::op::HELLO, req.as_bytes());
            unexpected(&case, r);
        }
        _ => {}
    }
    if let Err(e) = raw::hello() {
        eprintln!("misuse: abi.hello failed: {}", e);
        std::process::exit(1);
    }
    match case.as_str() {
        "bad_pointer" => {
            let req = b"null";
            // SAFETY: deliberately not: the host must check the pointer.
            let r = unsafe { raw::call(0xFFFF_FF00usize as *const u8, 9, req.as_ptr(), req.len()) };
            unexpected(&case, r);
        }
        "bad_len" => {
            let op = raw::op::LOG;
            let req = br#"{"level":"info","message":"x"}"#;
            // SAFETY: deliberately not: the host must check the length.
            let r = unsafe { raw::call(op.as_ptr(), op.len(), req.as_ptr(), 0x7FFF_FFFF) };
            unexpected(&case, r);
        }
        "bad_json" => {
            let r = call(raw::op::LOG, b"{not json");
            unexpected(&case, r);
        }
        "oversized" => {
            let len = 17 << 20;
            let mut req = Vec::with_capacity(len + 2);
            req.push(b'"');
            req.resize(len + 1, b'a');
            req.push(b'"');
            let r = call(raw::op::LOG, &req);
            unexpected(&case, r);
        }
        "unknown_op" => {
            let r = call("no.such.op", b"");
            unexpected(&case, r);
        }
        "wrong_shape" => {
            let req = br#"{"name":"x","value":"high","labels":{}}"#;
            let r = call(raw::op::METRICS_RECORD, req);
            unexpected(&case, r);
        }
        "long_op" => {
            let op = "x".repeat(65);
            let r = call(&op, b"");
            unexpected(&case, r);
        }
        "non_utf8_op" => {
            let op = b"task.\xff";
            // SAFETY: both slices are valid for their lengths; the name is
            // deliberately not UTF-8.
            let r = unsafe { raw::call(op.as_ptr(), op.len(), b"".as_ptr(), 0) };
            unexpected(&case, r);
        }
        "response_too_small" => {
            let r = call(raw::op::TASK_INFO, b"");
            if r <= 1 {
                eprintln!("misuse {}: task.info returned {}", case, r);
                std::process::exit(3);
            }
            let mut buf = [0u8; 1];
            // SAFETY: buf is valid for 1 byte; the host must see it is too small.
            let n = unsafe { raw::response(buf.as_mut_ptr(), 1) };
            unexpected(&case, n);
        }
        "response_none" => {
            let mut buf = [0u8; 64];
            // SAFETY: buf is valid for its length; nothing is pending.
            let n = unsafe { raw::response(buf.as_mut_ptr(), buf.len()) };
            unexpected(&case, n);
        }
        "bad_metric" => {
            let req = json!({ "name": "1bad", "value": 1, "labels": {} });
            match raw::invoke(raw::op::METRICS_RECORD, &req) {
                Ok(v) => unexpected_ok(&case, &v),
                Err(msg) => must(raw::invoke(raw::op::OUTPUT_SET, &json!({ "error": msg }))),
            }
        }
        "output_twice" => {
            must(raw::invoke(raw::op::OUTPUT_SET, &json!({ "first": true })));
            match raw::invoke(raw::op::OUTPUT_SET, &json!({ "second": true })) {
                Ok(v) => unexpected_ok(&case, &v),
                Err(msg) => must(raw::invoke(
                    raw::op::LOG,
                    &json!({ "level": "info", "message": msg, "fields": {} }),
                )),
            }
        }
        other => {
            eprintln!("misuse: unknown ORK_MISUSE {:?}", other);
            std::process::exit(2);
        }
    }
}

/// `call` with a well-formed operation name and the request bytes as given.
fn call(op: &str, req: &[u8]) -> i32 {
    // SAFETY: both slices are valid for their lengths.
    unsafe { raw::call(op.as_ptr(), op.len(), req.as_ptr(), req.len()) }
}

/// The host returned instead of trapping.
fn unexpected(case: &str, r: i32) -> ! {
    eprintln!(
        "misuse {}: the host returned {} instead of trapping",
        case, r
    );
    std::process::exit(3);
}

/// The host accepted a call it must refuse.
fn unexpected_ok(case: &str, v: &Value) -> ! {
    eprintln!(
        "misuse {}: the host accepted the call and answered {}",
        case, v
    );
    std::process::exit(3);
}

/// A call that must succeed.
fn must(result: Result<Value, String>) {
    if let Err(e) = result {
        eprintln!("misuse: a well-formed call failed: {}", e);
        std::process::exit(3);
    }
}
