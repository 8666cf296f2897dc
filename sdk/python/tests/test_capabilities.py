"""Capabilities (http.request, secret.get, sql.execute, sql.query): what the
SDK sends on the wire, how it reads the answers, its errors, and MockHost's
stubs -- all through the clock-gate mailbox."""

import datetime
import decimal
import json
import sqlite3

import pytest

import ork
from ork import HostError, HttpError, HttpResponse, QueryResult, SecretError, SqlError, _abi
from ork._context import Context
from ork.testing import HttpCall, MockHost, MockResponse, Refuse, SqlCall


# --- the wire: exact requests, through a recording transport -----------------


class Recorder:
    """A transport that records requests and answers from ``answers`` (op ->
    (status, body) or a function of the request)."""

    def __init__(self, answers) -> None:
        self.answers = answers
        self.calls = []

    def call(self, op, req):
        self.calls.append((op, json.loads(req)))
        answer = self.answers[op]
        return answer(json.loads(req)) if callable(answer) else answer

    @property
    def last(self):
        return self.calls[-1][1]


HTTP_OK = (0, b'{"status":200,"headers":{"Content-Type":"text/plain"},"url":"https://a.example.com/x","body":"hi"}')


@pytest.fixture
def wire():
    installed = []

    def install(answers):
        rec = Recorder(answers)
        installed.append(_abi.set_transport(rec))
        return rec

    yield install
    for previous in reversed(installed):
        _abi.set_transport(previous)


CTX = Context({"task": "t", "executor": "e"})


def test_http_request_wire_minimal(wire):
    rec = wire({"http.request": HTTP_OK})
    resp = CTX.http.get("https://a.example.com/x")
    assert rec.calls == [("http.request", {"method": "GET", "url": "https://a.example.com/x"})]
    assert (resp.status, resp.text, resp.url, resp.method) == (200, "hi", "https://a.example.com/x", "GET")


def test_http_request_wire_text_body_headers_timeout(wire):
    rec = wire({"http.request": HTTP_OK})
    CTX.http.request("patch", "https://a.example.com/x", headers={"X-N": 3, "Accept": "text/plain"}, body="é", timeout=1.5)
    assert rec.last == {
        "method": "PATCH",
        "url": "https://a.example.com/x",
        "headers": {"X-N": "3", "Accept": "text/plain"},
        "body": "é",
        "timeout_ms": 1500,
    }
    CTX.http.get("https://a.example.com/x", timeout=datetime.timedelta(minutes=1))
    assert rec.last["timeout_ms"] == 60000
    CTX.http.get("https://a.example.com/x", timeout=0.0001)
    assert rec.last["timeout_ms"] == 1  # rounded up, never 0 (which means "the default")


def test_http_bytes_body_is_base64(wire):
    rec = wire({"http.request": HTTP_OK})
    CTX.http.post("https://a.example.com/x", body=b"\x00\xffok")
    assert rec.last == {"method": "POST", "url": "https://a.example.com/x", "body_base64": "AP9vaw=="}
    CTX.http.post("https://a.example.com/x", body=bytearray(b"abc"))
    assert rec.last["body_base64"] == "YWJj"


def test_http_json_bodies(wire):
    rec = wire({"http.request": HTTP_OK})
    CTX.http.post("https://a.example.com/x", body={"a": [1, "é"]})
    assert rec.last["body"] == '{"a":[1,"é"]}'
    assert rec.last["headers"] == {"Content-Type": "application/json"}
    CTX.http.post("https://a.example.com/x", body=[1, 2], headers={"content-type": "application/vnd.x+json"})
    assert rec.last["headers"] == {"content-type": "application/vnd.x+json"}
    CTX.http.post("https://a.example.com/x", json="just a string")
    assert rec.last["body"] == '"just a string"'
    assert rec.last["headers"] == {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": "", "url": "u"}, TypeError, "non-empty str"),
        ({"method": "GET", "url": b"u"}, TypeError, "url must be a str"),
        ({"method": "GET", "url": "u", "body": 3}, TypeError, "body must be a str, bytes"),
        ({"method": "GET", "url": "u", "body": "x", "json": {}}, TypeError, "body= or json="),
        ({"method": "GET", "url": "u", "headers": ["a"]}, TypeError, "headers must be a dict"),
        ({"method": "GET", "url": "u", "headers": {"a": None}}, TypeError, "header 'a' must be a str"),
        ({"method": "GET", "url": "u", "timeout": 0}, ValueError, "positive"),
        ({"method": "GET", "url": "u", "timeout": float("inf")}, ValueError, "positive"),
        ({"method": "GET", "url": "u", "timeout": "5"}, TypeError, "seconds"),
        ({"method": "GET", "url": "u", "json": float("nan")}, ValueError, "JSON"),
    ],
)
def test_http_arguments_are_checked_before_sending(wire, kwargs, error, match):
    rec = wire({"http.request": HTTP_OK})
    with pytest.raises(error, match=match):
        CTX.http.request(**kwargs)
    assert rec.calls == []


def test_http_response_with_binary_body(wire):
    wire({"http.request": (0, b'{"status":200,"headers":{},"url":"u","body":null,"body_base64":"/2hp"}')})
    resp = CTX.http.get("u")
    assert resp.content == b"\xffhi"
    assert resp.text == "\ufffdhi"


def test_http_response_headers_ignore_case(wire):
    wire({"http.request": (0, b'{"status":201,"headers":{"Content-Type":"application/json","ETag":"x"},"url":"u","body":"{\\"a\\":1}"}')})
    resp = CTX.http.get("u")
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers.get("CONTENT-TYPE") == "application/json"
    assert resp.headers.get("missing", "d") == "d"
    assert "etag" in resp.headers and 3 not in resp.headers
    assert list(resp.headers) == ["Content-Type", "ETag"] and len(resp.headers) == 2
    assert resp.headers == {"content-type": "application/json", "etag": "x"}
    assert resp.json() == {"a": 1} and resp.ok and resp.content == b'{"a":1}'
    assert repr(resp) == "<ork.HttpResponse [201] GET u>"


def test_http_response_status_helpers():
    ok = HttpResponse(204, url="https://a/x")
    assert ok.ok and ok.raise_for_status() is ok and ok.text == "" and ok.content == b""
    redirect = HttpResponse(304, url="https://a/x")
    assert not redirect.ok
    bad = HttpResponse(404, {"Content-Type": "application/json"}, "https://a/x", '{"error": "no job"}', method="POST")
    with pytest.raises(HttpError) as info:
        bad.raise_for_status()
    e = info.value
    assert str(e) == 'http.request: POST https://a/x: HTTP 404 Not Found: {"error": "no job"}'
    assert e.response is bad and e.status == 404 and isinstance(e, HostError)
    long = HttpResponse(500, body="x" * 500)
    with pytest.raises(HttpError, match=r"HTTP 500 Internal Server Error: x{200}\.\.\.$"):
        long.raise_for_status()


def test_http_response_json_error_names_the_url():
    with pytest.raises(json.JSONDecodeError, match=r"the response from https://a/x \(HTTP 200\) is not JSON"):
        HttpResponse(200, url="https://a/x", body="<html>").json()


def test_host_refusals_raise_the_capability_errors(wire):
    refusal = (1, b'{"error":"executor \\"e\\" may not make HTTP requests (to https://x); add the host to executors.e.sandbox.allowed_hosts in ork.yaml"}')
    wire({"http.request": refusal, "secret.get": (1, b'{"error":"no secret"}'), "sql.query": (1, b'{"error":"sqlite: no such table: t"}'), "sql.execute": (1, b'{"error":"nope"}')})
    with pytest.raises(HttpError) as info:
        CTX.http.get("https://x")
    assert info.value.op == "http.request"
    assert info.value.message.endswith("add the host to executors.e.sandbox.allowed_hosts in ork.yaml")
    assert info.value.response is None and info.value.status is None
    with pytest.raises(SecretError) as sinfo:
        CTX.secret("API_TOKEN")
    assert (sinfo.value.op, sinfo.value.message, sinfo.value.name) == ("secret.get", "no secret", "API_TOKEN")
    with pytest.raises(SqlError) as qinfo:
        CTX.sql("wh").query("SELECT * FROM t")
    assert str(qinfo.value) == "sql.query: sqlite: no such table: t"
    assert qinfo.value.connection == "wh"
    with pytest.raises(SqlError, match="sql.execute: nope"):
        CTX.sql("wh").execute("DELETE FROM t")


def test_malformed_capability_responses(wire):
    wire({"http.request": (0, b'{"status":"200"}'), "secret.get": (0, b"{}"), "sql.execute": (0, b"{}"), "sql.query": (0, b'{"columns":["a"],"rows":[[1,2]]}')})
    with pytest.raises(HttpError, match="unexpected response"):
        CTX.http.get("u")
    with pytest.raises(SecretError, match="unexpected response"):
        CTX.secret("x")
    with pytest.raises(SqlError, match="unexpected response"):
        CTX.sql("c").execute("x")
    with pytest.raises(SqlError, match="unexpected response"):
        CTX.sql("c").query("x")


def test_secret_wire(wire):
    rec = wire({"secret.get": (0, b'{"value":"s3cr3t"}')})
    assert CTX.secret("API_TOKEN") == "s3cr3t"
    assert rec.calls == [("secret.get", {"name": "API_TOKEN"})]
    with pytest.raises(TypeError):
        CTX.secret("")


def test_sql_wire(wire):
    rec = wire({"sql.execute": (0, b'{"rows_affected":2}'), "sql.query": (0, b'{"columns":["id"],"rows":[[1],[2]]}')})
    db = CTX.sql("warehouse")
    assert repr(db) == "<ork.SqlConnection 'warehouse'>"
    assert db.execute("DELETE FROM t") == 2
    assert rec.last == {"connection": "warehouse", "sql": "DELETE FROM t"}  # no params: none sent
    when = datetime.datetime(2026, 11, 28, 12, 30)
    params = (1, 2.5, "a", None, True, b"\xff", when, datetime.date(2026, 1, 2), decimal.Decimal("1.10"), [1, 2], {"k": "v"})
    db.execute("INSERT INTO t VALUES (?)", params)
    assert rec.last["params"] == [
        1, 2.5, "a", None, True, {"base64": "/w=="}, "2026-11-28T12:30:00", "2026-01-02", "1.10", [1, 2], {"k": "v"},
    ]
    result = db.query("SELECT id FROM t WHERE id > $1", [0])
    assert rec.last == {"connection": "warehouse", "sql": "SELECT id FROM t WHERE id > $1", "params": [0]}
    assert result.columns == ["id"] and result.rows == [[1], [2]]


@pytest.mark.parametrize(
    "params, error, match",
    [
        ("abc", TypeError, "list or tuple"),
        ({"a": 1}, TypeError, "list or tuple"),
        (5, TypeError, "list or tuple"),
        ([object()], TypeError, "sql parameter 1 is an object"),
        ([1, float("nan")], ValueError, "sql parameter 2 is nan"),
    ],
)
def test_sql_params_are_checked(wire, params, error, match):
    rec = wire({"sql.execute": (0, b'{"rows_affected":0}')})
    with pytest.raises(error, match=match):
        CTX.sql("c").execute("x", params)
    assert rec.calls == []


def test_sql_arguments_are_checked():
    with pytest.raises(TypeError, match="connection name"):
        CTX.sql("")
    with pytest.raises(TypeError, match="sql must be a str"):
        CTX.sql("c").query(b"SELECT 1")


# --- QueryResult ---------------------------------------------------------------


def test_query_result():
    r = QueryResult(["id", "name"], [[1, "a"], [2, "b"]])
    assert [row["name"] for row in r] == ["a", "b"]
    assert len(r) == 2 and bool(r)
    assert r[1] == {"id": 2, "name": "b"} and r[-1] == r[1]
    assert r[:1] == [{"id": 1, "name": "a"}]
    assert r.first() == {"id": 1, "name": "a"}
    assert r.scalar() == 1
    assert r.column("name") == ["a", "b"] and r.column(0) == [1, 2]
    with pytest.raises(KeyError, match="no column 'x'; the columns are id, name"):
        r.column("x")
    with pytest.raises(ValueError, match="exactly one row, got 2"):
        r.one()
    assert QueryResult(["n"], [[7]]).one() == {"n": 7}
    empty = QueryResult(["n"], [])
    assert not empty and empty.first() is None and empty.scalar() is None and list(empty) == []
    assert repr(r) == "<ork.QueryResult columns=['id', 'name'] rows=2>"
    assert r == QueryResult(("id", "name"), ([1, "a"], [2, "b"]))


def test_query_result_duplicate_columns_last_wins():
    r = QueryResult(["id", "id"], [[1, 2]])
    assert r.one() == {"id": 2} and r.rows == [[1, 2]] and r.column("id") == [2]


def test_query_result_null_columns_and_rows(wire):
    wire({"sql.query": (0, b'{"columns":null,"rows":null}')})
    r = CTX.sql("c").query("x")
    assert (r.columns, r.rows) == ([], [])


def test_query_result_binary_values_become_bytes(wire):
    wire({"sql.query": (0, b'{"columns":["b","j"],"rows":[[{"base64":"/wA="},"{\\"base64\\":1}"]]}')})
    r = CTX.sql("c").query("x")
    assert r.rows == [[b"\xff\x00", '{"base64":1}']]


# --- MockHost: http ----------------------------------------------------------------


def test_mock_http_stub_forms_and_matching():
    def task(ctx, upstream):
        out = []
        for method, url in [
            ("GET", "https://a.example.com/json?page=2"),
            ("POST", "https://a.example.com/json"),
            ("GET", "https://a.example.com/text"),
            ("GET", "https://a.example.com/bytes"),
            ("GET", "https://a.example.com/status"),
            ("GET", "https://a.example.com/full"),
        ]:
            r = ctx.http.request(method, url)
            out.append([r.status, r.text, r.headers.get("content-type"), r.url])
        return out

    host = MockHost(
        http={
            "GET https://a.example.com/json": {"page": 1},
            "https://a.example.com/json": MockResponse(201, json=[1]),
            "https://a.example.com/text": "hello",
            "https://a.example.com/bytes": b"\xff",
            "https://a.example.com/status": 503,
            "https://a.example.com/full": MockResponse(
                302, "moved", headers={"Location": "/x", "Content-Type": "text/plain"}, url="https://b.example.com/final"
            ),
        }
    )
    outcome = host.run_task(task)
    assert outcome.assert_succeeded() == [
        [200, '{"page":1}', "application/json", "https://a.example.com/json?page=2"],
        [201, "[1]", "application/json", "https://a.example.com/json"],
        [200, "hello", None, "https://a.example.com/text"],
        [200, "\ufffd", None, "https://a.example.com/bytes"],
        [503, "", None, "https://a.example.com/status"],
        [302, "moved", "text/plain", "https://b.example.com/final"],
    ]
    assert [(c.method, c.url) for c in outcome.http_requests][:2] == [
        ("GET", "https://a.example.com/json?page=2"),
        ("POST", "https://a.example.com/json"),
    ]
    assert outcome.calls.count("http.request") == 6


def test_mock_http_records_requests():
    def task(ctx, upstream):
        ctx.http.post("https://a.example.com/x", body={"n": 1}, headers={"X-Key": "k"}, timeout=2)
        ctx.http.put("https://a.example.com/x", body=b"\x00\x01")
        ctx.http.delete("https://a.example.com/x")

    outcome = MockHost(http={"https://a.example.com/x": 204}).run_task(task)
    assert outcome.succeeded, outcome.error
    post, put, delete = outcome.http_requests
    assert isinstance(post, HttpCall)
    assert post.method == "POST" and post.json() == {"n": 1} and post.text == '{"n":1}'
    assert post.headers["x-key"] == "k" and post.headers["Content-Type"] == "application/json"
    assert post.timeout == 2.0
    assert put.body == b"\x00\x01" and put.timeout is None
    assert delete.body is None and delete.text == ""


def test_mock_http_function_stub_and_refusal():
    def handler(call):
        if "refused" in call.url:
            return Refuse("address 10.0.0.1 of internal.example.com is private; list it in sandbox.allowed_hosts")
        return MockResponse(200, json={"echo": call.method, "body": call.text})

    def task(ctx, upstream):
        echo = ctx.http.post("https://a.example.com/", body="ping").json()
        try:
            ctx.http.get("https://a.example.com/refused")
        except HttpError as e:
            return {"echo": echo, "error": e.message, "op": e.op}

    outcome = MockHost(http=handler).run_task(task)
    assert outcome.assert_succeeded() == {
        "echo": {"echo": "POST", "body": "ping"},
        "error": "address 10.0.0.1 of internal.example.com is private; list it in sandbox.allowed_hosts",
        "op": "http.request",
    }


def test_mock_http_unstubbed_is_refused_like_an_ungranted_host():
    def task(ctx, upstream):
        ctx.http.get("https://evil.example.com/")

    outcome = MockHost(executor="sync", http={"https://a.example.com/": 200}).run_task(task)
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith(
        'ork.HttpError: http.request: executor "sync" may not make HTTP requests (to https://evil.example.com/)'
    )
    assert "add the host to executors.sync.sandbox.allowed_hosts in ork.yaml" in outcome.error.message
    assert len(outcome.http_requests) == 1  # refused requests are recorded too


def test_mock_http_raise_for_status_fails_the_task():
    def task(ctx, upstream):
        ctx.http.get("https://a.example.com/x").raise_for_status()

    outcome = MockHost(http={"https://a.example.com/x": MockResponse(401, "bad token")}).run_task(task)
    assert outcome.error.message.startswith(
        "ork.HttpError: http.request: GET https://a.example.com/x: HTTP 401 Unauthorized: bad token"
    )


def test_mock_http_large_response_through_a_tiny_mailbox():
    big = "x" * 200_000

    def task(ctx, upstream):
        return len(ctx.http.post("https://a.example.com/", body=big).text)

    outcome = MockHost(http={"https://a.example.com/": big}, mailbox_size=16).run_task(task)
    assert outcome.assert_succeeded() == 200_000
    assert outcome.http_requests[0].text == big


def test_mock_http_checks_the_host_side_rules():
    def task(ctx, upstream):
        try:
            _abi.invoke("http.request", {"method": "GET", "url": "u", "body": "a", "body_base64": "YQ=="}, error=HttpError)
        except HttpError as e:
            first = e.message
        try:
            _abi.invoke("http.request", {"method": "GET", "url": "u", "body_base64": "@@"}, error=HttpError)
        except HttpError as e:
            return [first, e.message]

    outcome = MockHost(http={"u": 200}).run_task(task)
    first, second = outcome.assert_succeeded()
    assert first == "http.request: give body or body_base64, not both"
    assert second.startswith("http.request: body_base64 is not valid base64")


@pytest.mark.parametrize(
    "op, value, trap",
    [
        ("http.request", {"method": "GET"}, "http.request: request lacks the field 'url'"),
        ("http.request", {"method": "GET", "url": "u", "timeout": 3}, "http.request: unknown field 'timeout' in the request"),
        ("http.request", {"method": "GET", "url": "u", "headers": {"a": 1}}, "http.request: header 'a' is not a string"),
        ("http.request", {"method": "GET", "url": "u", "timeout_ms": 1.5}, "http.request: field 'timeout_ms' has the wrong type: 1.5"),
        ("secret.get", {"names": "x"}, "secret.get: unknown field 'names' in the request"),
        ("secret.get", None, "secret.get: request must be an object, got None"),
        ("sql.query", {"connection": "", "sql": "x"}, "sql.query: request must be {\"connection\": str, \"sql\": str, \"params\": [...]}: empty connection"),
        ("sql.execute", {"connection": "c", "sql": "x", "params": {}}, "sql.execute: field 'params' has the wrong type: {}"),
    ],
)
def test_mock_traps_malformed_capability_requests(op, value, trap):
    def task(ctx, upstream):
        _abi.invoke(op, value)

    outcome = MockHost().run_task(task)
    assert outcome.trap == trap
    assert outcome.exit_code is None


def test_mock_http_stub_types_are_checked():
    with pytest.raises(TypeError, match=r"MockHost http\['u'\]: expected a MockResponse"):
        MockHost(http={"u": 1.5})
    with pytest.raises(TypeError, match="body= or json="):
        MockResponse(body="a", json={})

    outcome = MockHost(http=lambda call: object()).run_task(lambda ctx, up: ctx.http.get("u"))
    assert "the MockHost http function for GET u" in outcome.trap


# --- MockHost: secrets -------------------------------------------------------------


def test_mock_secrets():
    def task(ctx, upstream):
        out = {"token": ctx.secret("API_TOKEN")}
        for name in ("MISSING", "BROKEN"):
            try:
                ctx.secret(name)
            except SecretError as e:
                out[name] = e.message
        return out

    host = MockHost(executor="sync", secrets={"API_TOKEN": "t0k", "BROKEN": Refuse("secret BROKEN: the environment variable X is not set")})
    outcome = host.run_task(task)
    assert outcome.assert_succeeded() == {
        "token": "t0k",
        "MISSING": 'secret "MISSING" is not granted to executor "sync"; add it to executors.sync.sandbox.secrets in ork.yaml',
        "BROKEN": "secret BROKEN: the environment variable X is not set",
    }
    assert outcome.secrets_read == ["API_TOKEN", "MISSING", "BROKEN"]
    with pytest.raises(TypeError, match=r"secrets\['X'\] must be a str"):
        MockHost(secrets={"X": 1})


# --- MockHost: sql ------------------------------------------------------------------


def test_mock_sql_on_sqlite():
    db = sqlite3.connect(":memory:")

    def task(ctx, upstream):
        wh = ctx.sql("warehouse")
        wh.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB, score REAL, doc TEXT)")
        n = wh.execute(
            "INSERT INTO t (name, data, score, doc) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
            ["a", b"\xff\x00", 1.0, {"k": [1]}, "b", b"text", 2.5, None],
        )
        updated = wh.execute("UPDATE t SET score = score * 2")
        rows = [dict(r) for r in wh.query("SELECT id, name, data, score, doc FROM t ORDER BY id")]
        try:
            wh.execute("INSERT INTO nope VALUES (1)")
        except SqlError as e:
            error = (e.message, e.connection)
        return {"n": n, "updated": updated, "rows": [dict(r, data=repr(r["data"])) for r in rows], "error": error}

    outcome = MockHost(sql={"warehouse": db}).run_task(task)
    assert outcome.assert_succeeded() == {
        "n": 2,
        "updated": 2,
        "rows": [
            {"id": 1, "name": "a", "data": "b'\\xff\\x00'", "score": 2.0, "doc": '{"k":[1]}'},
            {"id": 2, "name": "b", "data": "'text'", "score": 5.0, "doc": None},
        ],
        "error": ["sqlite: no such table: nope", "warehouse"],
    }
    # Committed: visible to the test afterwards.
    assert db.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert [s.op for s in outcome.sql_statements] == ["execute", "execute", "execute", "query", "execute"]
    assert outcome.sql_statements[1].params[1] == {"base64": "/wA="}


def test_mock_sql_sqlite_script_without_params():
    db = sqlite3.connect(":memory:")

    def task(ctx, upstream):
        wh = ctx.sql("wh")
        n = wh.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);")
        return [n, wh.query("SELECT count(*) FROM t").scalar()]

    assert MockHost(sql={"wh": db}).run_task(task).assert_succeeded() == [2, 2]


def test_mock_sql_canned_results():
    def task(ctx, upstream):
        db = ctx.sql("warehouse")
        return {
            "inserted": db.execute("INSERT INTO t VALUES (?)", [1]),
            "dicts": list(db.query("SELECT id, name FROM t")),
            "table": db.query("SELECT  count(*)\n  FROM t").scalar(),
            "fn": db.query("SELECT ?", ["x"]).rows,
            "qr": [[repr(v) for v in row] for row in db.query("SELECT bin").rows],
        }

    host = MockHost(
        sql={
            "warehouse": {
                "INSERT INTO t VALUES (?)": 1,
                "SELECT id, name FROM t": [{"id": 1, "name": "a"}, {"id": 2, "name": None}],
                "SELECT count(*) FROM t": {"columns": ["count(*)"], "rows": [[2]]},
                "SELECT ?": lambda call: QueryResult(["v"], [[call.params[0] * 2]]),
                "SELECT bin": QueryResult(["b"], [[b"\xff"], [b"ok"]]),
            }
        }
    )
    outcome = host.run_task(task)
    assert outcome.assert_succeeded() == {
        "inserted": 1,
        "dicts": [{"id": 1, "name": "a"}, {"id": 2, "name": None}],
        "table": 2,
        "fn": [["xx"]],
        "qr": [["b'\\xff'"], ["'ok'"]],
    }
    assert outcome.sql_statements[0] == SqlCall("execute", "warehouse", "INSERT INTO t VALUES (?)", [1])


def test_mock_sql_refusals():
    def task(ctx, upstream):
        out = []
        for conn, sql in [("other", "SELECT 1"), ("warehouse", "SELECT 2"), ("warehouse", "DROP TABLE t"), ("down", "SELECT 1")]:
            try:
                ctx.sql(conn).query(sql)
            except SqlError as e:
                out.append(e.message)
        return out

    host = MockHost(
        executor="etl",
        sql={"warehouse": {"DROP TABLE t": Refuse("sqlite: no such table: t")}, "down": Refuse("postgres: connection refused")},
    )
    assert host.run_task(task).assert_succeeded() == [
        'connection "other" is not granted to executor "etl"; add it to executors.etl.sandbox.connections in ork.yaml',
        "MockHost has no stub for this statement on connection 'warehouse': SELECT 2 (stubbed: DROP TABLE t)",
        "sqlite: no such table: t",
        "postgres: connection refused",
    ]


def test_mock_sql_stub_of_the_wrong_kind_traps():
    outcome = MockHost(sql={"c": {"SELECT 1": 1}}).run_task(lambda ctx, up: ctx.sql("c").query("SELECT 1"))
    assert "must give a QueryResult" in outcome.trap
    outcome = MockHost(sql={"c": lambda call: [{"a": 1}]}).run_task(lambda ctx, up: ctx.sql("c").execute("x"))
    assert "must give the rows affected (an int) for sql.execute, got list" in outcome.trap


def test_uncaught_capability_errors_fail_the_task():
    outcome = MockHost(executor="etl").run_task(lambda ctx, up: ctx.sql("warehouse").execute("x"))
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith(
        'ork.SqlError: sql.execute: connection "warehouse" is not granted to executor "etl"'
    )


def test_capabilities_from_an_executor():
    @ork.executor
    class Sync:
        def __init__(self, config: dict):
            self.url = config["url"]

        def run(self, config_file, ctx, upstream={}):
            token = ctx.secret("TOKEN")
            resp = ctx.http.post(self.url, body={"token_len": len(token)})
            ctx.sql("wh").execute("INSERT INTO log VALUES (?)", [resp.status])
            return resp.json()

    host = MockHost(
        config={"url": "https://a.example.com/sync"},
        http={"POST https://a.example.com/sync": MockResponse(202, json={"queued": True})},
        secrets={"TOKEN": "abc"},
        sql={"wh": {"INSERT INTO log VALUES (?)": 1}},
    )
    outcome = host.run_executor(Sync)
    assert outcome.assert_succeeded() == {"queued": True}
    assert outcome.http_requests[0].json() == {"token_len": 3}
    assert outcome.sql_statements[0].params == [202]
    assert outcome.calls[-4:] == ["secret.get", "http.request", "sql.execute", "output.set"]


def test_public_names():
    for name in ("Http", "HttpResponse", "HttpError", "SecretError", "SqlError", "SqlConnection", "QueryResult"):
        assert name in ork.__all__ and getattr(ork, name).__module__ == "ork"
    assert issubclass(HttpError, HostError) and issubclass(SecretError, HostError) and issubclass(SqlError, HostError)
    assert set(_abi.ALL_OPS) >= {"http.request", "secret.get", "sql.execute", "sql.query"}
