//! Capabilities (http.request, secret.get, sql.execute, sql.query) through
//! the mock host: what the SDK sends, how it reads the answers, refusals, and
//! the mock's stubs and records.

use std::collections::BTreeMap;
use std::time::Duration;

use ork::serde_json::{json, Value};
use ork::testing::{Exit, HttpCall, MockHost, MockResponse, SqlCall, SqlStub};
use ork::{Context, HostError, HttpRequest, QueryResult, Result};
use serde::Deserialize;

/// Runs `f` as a task on `host` and returns its output, failing the test
/// with the task's error otherwise.
fn output<F>(host: MockHost, f: F) -> Value
where
    F: FnOnce(&Context) -> Result<Value>,
{
    let out = host.run_task(move |ctx: &Context, _: &Value, _: ()| f(ctx));
    assert!(
        out.succeeded(),
        "task failed: {:?} {:?}",
        out.exit(),
        out.error()
    );
    out.output().cloned().unwrap_or(Value::Null)
}

/// The host's message and op of a failed call.
fn refusal<T: std::fmt::Debug>(r: Result<T>) -> Value {
    let e = r.unwrap_err();
    let host = e
        .downcast_ref::<HostError>()
        .unwrap_or_else(|| panic!("not a HostError: {}", e));
    assert_eq!(e.to_string(), host.message());
    json!({ "op": host.op(), "message": host.message() })
}

#[test]
fn http_get_and_response_accessors() {
    let host = MockHost::new().http(
        "GET https://api.example.com/jobs",
        MockResponse::json(json!({ "jobs": [1, 2] })).with_header("ETag", "v1"),
    );
    let out = host.run_task(|ctx: &Context, _: &Value, _: ()| -> Result<Value> {
        let r = ctx.http().get("https://api.example.com/jobs?page=2")?;
        let jobs: Value = r.json()?;
        Ok(json!({
            "status": r.status(), "ok": r.is_success(), "url": r.url(), "method": r.method(),
            "etag": r.header("etag"), "ct": r.header("CONTENT-TYPE"), "headers": r.headers(),
            "text": r.text(), "len": r.bytes().len(), "jobs": jobs,
        }))
    });
    assert!(out.succeeded(), "{:?}", out.error());
    assert_eq!(
        out.output(),
        Some(&json!({
            "status": 200, "ok": true, "url": "https://api.example.com/jobs?page=2", "method": "GET",
            "etag": "v1", "ct": "application/json",
            "headers": { "Content-Type": "application/json", "ETag": "v1" },
            "text": "{\"jobs\":[1,2]}", "len": 14, "jobs": { "jobs": [1, 2] },
        }))
    );
    assert_eq!(out.calls()[4..], ["http.request", "output.set"]);
    let call = &out.http_requests()[0];
    assert_eq!(
        call,
        &HttpCall {
            method: "GET".into(),
            url: "https://api.example.com/jobs?page=2".into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_ms: None,
        }
    );
}

#[test]
fn http_request_builder_is_recorded_as_sent() {
    let out = MockHost::new()
        .http("https://a.example.com/x", MockResponse::new(204))
        .run_task(|ctx: &Context, _: &Value, _: ()| -> Result<()> {
            ctx.http().request(
                HttpRequest::new("post", "https://a.example.com/x")
                    .header("X-Key", "k")
                    .json(&json!({ "n": 1 }))
                    .timeout(Duration::from_millis(2500)),
            )?;
            ctx.http()
                .request(HttpRequest::put("https://a.example.com/x").body(vec![0u8, 0xff]))?;
            ctx.http()
                .request(HttpRequest::patch("https://a.example.com/x").body("é"))?;
            ctx.http().post_json("https://a.example.com/x", &[1, 2])?;
            Ok(())
        });
    assert!(out.succeeded(), "{:?}", out.error());
    let calls = out.http_requests();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].header("x-key"), Some("k"));
    assert_eq!(calls[0].header("content-type"), Some("application/json"));
    assert_eq!(calls[0].json(), json!({ "n": 1 }));
    assert_eq!(calls[0].timeout_ms, Some(2500));
    assert_eq!(calls[1].body.as_deref(), Some(&[0u8, 0xff][..]));
    assert_eq!(calls[2].text(), "é");
    assert_eq!(calls[3].json(), json!([1, 2]));
}

#[test]
fn http_binary_response_and_redirect_url() {
    let host = MockHost::new().http(
        "https://a.example.com/file",
        MockResponse::bytes(vec![0xffu8, b'h', b'i'])
            .with_status(200)
            .with_url("https://cdn.example.com/file"),
    );
    let out = output(host, |ctx| {
        let r = ctx.http().get("https://a.example.com/file")?;
        Ok(json!({ "bytes": r.bytes(), "text": r.text(), "url": r.url() }))
    });
    assert_eq!(
        out,
        json!({ "bytes": [255, 104, 105], "text": "\u{fffd}hi", "url": "https://cdn.example.com/file" })
    );
}

#[test]
fn http_status_errors() {
    let host = MockHost::new().http(
        "https://a.example.com/x",
        MockResponse::text("bad token").with_status(401),
    );
    let out = host.run_task(|ctx: &Context, _: &Value, _: ()| -> Result<()> {
        let r = ctx.http().get("https://a.example.com/x")?;
        assert!(!r.is_success());
        r.error_for_status()?;
        Ok(())
    });
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(
        out.error().unwrap().message,
        "GET https://a.example.com/x: HTTP 401 Unauthorized: bad token"
    );
}

#[test]
fn http_refusals() {
    let host = MockHost::new()
        .executor("sync")
        .http("https://a.example.com/", MockResponse::new(200))
        .http_refused(
            "https://internal.example.com/",
            "address 10.0.0.1 is private",
        );
    let out = output(host, |ctx| {
        Ok(json!([
            refusal(ctx.http().get("https://evil.example.com/")),
            refusal(ctx.http().get("https://internal.example.com/")),
        ]))
    });
    assert_eq!(
        out,
        json!([
            { "op": "http.request", "message": "executor \"sync\" may not make HTTP requests (to https://evil.example.com/): MockHost has no http stub for GET https://evil.example.com/; add the host to executors.sync.sandbox.allowed_hosts in ork.yaml" },
            { "op": "http.request", "message": "address 10.0.0.1 is private" },
        ])
    );
}

#[test]
fn http_handler_answers_the_rest() {
    let host = MockHost::new()
        .http(
            "GET https://a.example.com/fixed",
            MockResponse::text("fixed"),
        )
        .http_handler(|call| {
            if call.url.contains("refuse") {
                Err("nope".to_string())
            } else {
                Ok(MockResponse::json(
                    json!({ "echo": call.text(), "method": call.method }),
                ))
            }
        });
    let out = output(host, |ctx| {
        let fixed = ctx
            .http()
            .get("https://a.example.com/fixed")?
            .text()
            .into_owned();
        let echo: Value = ctx
            .http()
            .request(HttpRequest::post("https://b.example.com/").body("ping"))?
            .json()?;
        Ok(
            json!({ "fixed": fixed, "echo": echo, "refused": refusal(ctx.http().get("https://b.example.com/refuse")) }),
        )
    });
    assert_eq!(
        out,
        json!({
            "fixed": "fixed",
            "echo": { "echo": "ping", "method": "POST" },
            "refused": { "op": "http.request", "message": "nope" },
        })
    );
}

#[test]
fn http_problems_are_reported_before_sending() {
    let out = MockHost::new().run_task(|ctx: &Context, _: &Value, _: ()| -> Result<()> {
        ctx.http()
            .request(HttpRequest::get("https://a/").timeout(Duration::ZERO))?;
        Ok(())
    });
    assert_eq!(
        out.error().unwrap().message,
        "GET https://a/: the timeout must be positive"
    );
    assert!(out.http_requests().is_empty());
}

#[test]
fn host_side_body_rules() {
    // What a guest that bypasses HttpRequest would get.
    let out = output(MockHost::new().http("u", MockResponse::new(200)), |_ctx| {
        let both = ork::__raw::invoke(
            "http.request",
            &json!({ "method": "GET", "url": "u", "body": "a", "body_base64": "YQ==" }),
        );
        let bad = ork::__raw::invoke(
            "http.request",
            &json!({ "method": "GET", "url": "u", "body_base64": "@@" }),
        );
        Ok(json!([both.unwrap_err(), bad.unwrap_err()]))
    });
    assert_eq!(
        out,
        json!([
            "http.request: give body or body_base64, not both",
            "http.request: body_base64 is not valid base64: illegal base64 data at input byte 0"
        ])
    );
}

#[test]
fn malformed_capability_requests_trap() {
    for (op, req) in [
        ("http.request", json!({ "method": "GET" })),
        (
            "http.request",
            json!({ "method": "GET", "url": "u", "timeout": 1 }),
        ),
        (
            "http.request",
            json!({ "method": "GET", "url": "u", "headers": { "a": 1 } }),
        ),
        ("secret.get", json!({ "names": "x" })),
        ("sql.query", json!({ "connection": "", "sql": "x" })),
        (
            "sql.execute",
            json!({ "connection": "c", "sql": "x", "params": {} }),
        ),
    ] {
        let out = MockHost::new().run_task(move |_: &Context, _: &Value, _: ()| -> Result<()> {
            let _ = ork::__raw::invoke(op, &req);
            Ok(())
        });
        match out.exit() {
            Exit::Trap(m) => assert!(m.starts_with(op), "{}", m),
            other => panic!("{} did not trap: {:?}", op, other),
        }
    }
}

#[test]
fn secrets() {
    let host = MockHost::new()
        .executor("sync")
        .secret("API_TOKEN", "t0k")
        .secret_refused(
            "BROKEN",
            "secret BROKEN: the environment variable X is not set",
        );
    let out = host.run_task(|ctx: &Context, _: &Value, _: ()| -> Result<Value> {
        Ok(json!({
            "token": ctx.secret("API_TOKEN")?,
            "missing": refusal(ctx.secret("MISSING")),
            "broken": refusal(ctx.secret("BROKEN")),
        }))
    });
    assert!(out.succeeded(), "{:?}", out.error());
    assert_eq!(
        out.output(),
        Some(&json!({
            "token": "t0k",
            "missing": { "op": "secret.get", "message": "secret \"MISSING\" is not granted to executor \"sync\"; add it to executors.sync.sandbox.secrets in ork.yaml" },
            "broken": { "op": "secret.get", "message": "secret BROKEN: the environment variable X is not set" },
        }))
    );
    assert_eq!(out.secrets_read(), ["API_TOKEN", "MISSING", "BROKEN"]);
}

#[test]
fn an_unhandled_refusal_fails_the_task_with_the_hosts_message() {
    let out = MockHost::new()
        .executor("etl")
        .run_task(|ctx: &Context, _: &Value, _: ()| -> Result<String> { ctx.secret("X") });
    assert_eq!(out.exit(), &Exit::Code(1));
    assert_eq!(
        out.error().unwrap().message,
        "secret \"X\" is not granted to executor \"etl\"; add it to executors.etl.sandbox.secrets in ork.yaml"
    );
}

#[test]
fn sql_execute_and_query() {
    #[derive(Deserialize)]
    struct Job {
        id: i64,
        name: Option<String>,
    }
    let host = MockHost::new()
        .sql_execute("warehouse", "INSERT INTO jobs (id, name) VALUES (?, ?)", 1)
        .sql_query(
            "warehouse",
            "SELECT id, name\n  FROM jobs",
            QueryResult::new(
                ["id", "name"],
                vec![vec![json!(1), json!("load")], vec![json!(2), Value::Null]],
            ),
        );
    let out = host.run_task(|ctx: &Context, _: &Value, _: ()| -> Result<Value> {
        let db = ctx.sql("warehouse");
        assert_eq!(db.name(), "warehouse");
        let n = db.execute(
            "INSERT INTO jobs (id, name) VALUES (?, ?)",
            &[json!(1), json!("load")],
        )?;
        let result = db.query("SELECT   id, name FROM jobs", &[])?;
        let names: Vec<Value> = result.iter().map(|row| row["name"].clone()).collect();
        let jobs: Vec<Job> = result.rows_as()?;
        Ok(json!({
            "n": n,
            "columns": result.columns(),
            "rows": result.rows(),
            "names": names,
            "ids": jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            "named": jobs.iter().filter(|j| j.name.is_some()).count(),
        }))
    });
    assert!(out.succeeded(), "{:?}", out.error());
    assert_eq!(
        out.output(),
        Some(&json!({
            "n": 1, "columns": ["id", "name"], "rows": [[1, "load"], [2, null]],
            "names": ["load", null], "ids": [1, 2], "named": 1,
        }))
    );
    assert_eq!(
        out.sql_statements(),
        [
            SqlCall {
                op: "execute".into(),
                connection: "warehouse".into(),
                sql: "INSERT INTO jobs (id, name) VALUES (?, ?)".into(),
                params: vec![json!(1), json!("load")],
            },
            SqlCall {
                op: "query".into(),
                connection: "warehouse".into(),
                sql: "SELECT   id, name FROM jobs".into(),
                params: vec![],
            },
        ]
    );
}

#[test]
fn sql_blobs_travel_as_base64() {
    let host = MockHost::new().sql_handler("c", |call| {
        Ok(SqlStub::Rows(QueryResult::new(
            ["b"],
            vec![vec![call.params[0].clone()]],
        )))
    });
    let out = output(host, |ctx| {
        let r = ctx
            .sql("c")
            .query("SELECT ?", &[ork::sql::blob(&[0xff, 0])])?;
        Ok(json!({ "raw": r.scalar(), "bytes": ork::sql::as_blob(r.scalar().unwrap()) }))
    });
    assert_eq!(
        out,
        json!({ "raw": { "base64": "/wA=" }, "bytes": [255, 0] })
    );
}

#[test]
fn sql_refusals() {
    let host = MockHost::new()
        .executor("etl")
        .connection("empty")
        .sql_refused("warehouse", "DROP TABLE t", "sqlite: no such table: t")
        .sql_handler("down", |_| Err("postgres: connection refused".to_string()));
    let out = output(host, |ctx| {
        Ok(json!([
            refusal(ctx.sql("other").query("SELECT 1", &[])),
            refusal(ctx.sql("warehouse").execute("DROP TABLE t", &[])),
            refusal(ctx.sql("warehouse").execute("SELECT 2", &[])),
            refusal(ctx.sql("empty").execute("SELECT 3", &[])),
            refusal(ctx.sql("down").query("SELECT 4", &[json!(1)])),
        ]))
    });
    assert_eq!(
        out,
        json!([
            { "op": "sql.query", "message": "connection \"other\" is not granted to executor \"etl\"; add it to executors.etl.sandbox.connections in ork.yaml" },
            { "op": "sql.execute", "message": "sqlite: no such table: t" },
            { "op": "sql.execute", "message": "MockHost has no stub for this statement on connection \"warehouse\": SELECT 2 (stubbed: DROP TABLE t)" },
            { "op": "sql.execute", "message": "MockHost has no stub for this statement on connection \"empty\": SELECT 3 (stubbed: none)" },
            { "op": "sql.query", "message": "postgres: connection refused" },
        ])
    );
}

#[test]
fn sql_stub_of_the_wrong_kind_traps() {
    let out = MockHost::new().sql_execute("c", "SELECT 1", 1).run_task(
        |ctx: &Context, _: &Value, _: ()| -> Result<()> {
            ctx.sql("c").query("SELECT 1", &[])?;
            Ok(())
        },
    );
    match out.exit() {
        Exit::Trap(m) => assert!(m.contains("which does not answer sql.query"), "{}", m),
        other => panic!("no trap: {:?}", other),
    }
}

#[test]
fn sql_query_result_helpers_through_the_host() {
    let host = MockHost::new().sql_query(
        "c",
        "SELECT count(*) AS n",
        QueryResult::new(["n"], vec![vec![json!(42)]]),
    );
    let out = output(host, |ctx| {
        let r = ctx.sql("c").query("SELECT count(*) AS n", &[])?;
        let one = r.one()?;
        Ok(json!({ "scalar": r.scalar(), "one": one.to_map(), "len": r.len(), "n": one.get("n") }))
    });
    assert_eq!(
        out,
        json!({ "scalar": 42, "one": { "n": 42 }, "len": 1, "n": 42 })
    );
}

#[test]
fn metric_refusals_are_host_errors_too() {
    let out = output(MockHost::new(), |ctx| {
        Ok(refusal(ctx.metrics().record("1bad", 1.0, &[])))
    });
    assert_eq!(
        out,
        json!({ "op": "metrics.record", "message": "metric name \"1bad\" must match [a-zA-Z_:][a-zA-Z0-9_:]*" })
    );
}
