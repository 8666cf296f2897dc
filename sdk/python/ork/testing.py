"""An in-process ork host for unit tests on a normal Python.

:class:`MockHost` plays the ork host's part: it serves ``task.info``, the
executor config, params and upstream outputs you give it, checks requests
like ork does (``abi.hello`` first, metric and label names, log levels, one
output per task, the shapes of requests), and records everything the task
sends. A run goes through the same code as in the sandbox -- the runner,
config validation, output serialization, even the mailbox encoding of the
clock gate -- so what passes here behaves the same way in ork::

    from ork.testing import MockHost
    from executors.transform import TransformExecutor

    def test_transform():
        host = MockHost(
            task="clean",
            config={"columns": ["a", "b"]},
            config_file="tasks/clean.yaml",
            upstream={"load": {"rows": 3}},
        )
        outcome = host.run_executor(TransformExecutor)
        assert outcome.succeeded, outcome.error
        assert outcome.output == {"rows": 3}
        assert outcome.metrics[0].name == "rows"

Capabilities are stubbed per run: ``http`` maps URLs to responses,
``secrets`` names to values, and ``sql`` connection names to a ``sqlite3``
database, canned results or a function; the outcome records every request::

    host = MockHost(
        http={"https://api.example.com/v1/jobs": {"id": 7}},   # 200, JSON body
        secrets={"API_TOKEN": "t0k"},
        sql={"warehouse": sqlite3.connect(":memory:")},
    )
    outcome = host.run_task(sync_jobs)
    assert outcome.http_requests[0].json() == {"name": "load"}

Runs change process-wide state while they last (the transport and the
``logging`` configuration; a python task's file is loaded as module
``__ork_task__`` and its directory put on ``sys.path``) and restore it
afterwards; run one at a time.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

from . import _abi, _main
from ._http import Headers
from ._sql import QueryResult

__all__ = [
    "MockHost",
    "Outcome",
    "MetricPoint",
    "LogRecord",
    "ErrorReport",
    "MockResponse",
    "Refuse",
    "HttpCall",
    "SqlCall",
]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MAX_METRIC_POINTS = 10_000


@dataclass(frozen=True)
class MetricPoint:
    """One ``metrics.record`` the host accepted."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogRecord:
    """One ``log`` record the host accepted."""

    level: str  # debug, info, warn or error
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorReport:
    """One ``error.report``: why the task failed."""

    message: str
    kind: str  # config, exception, exit, output, abi, internal

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


_UNSET = object()


@dataclass(frozen=True)
class HttpCall:
    """One ``http.request`` the task made, as the host received it."""

    method: str
    url: str
    headers: Headers
    """The request's headers (lookups ignore case)."""
    body: bytes | None
    """The body, or ``None`` when the request had none."""
    timeout: float | None
    """The timeout the task asked for, in seconds, or ``None``."""

    @property
    def text(self) -> str:
        """The body as str (``""`` when there is none)."""
        return (self.body or b"").decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.text)


@dataclass(frozen=True)
class SqlCall:
    """One ``sql.execute`` or ``sql.query`` the task made."""

    op: str
    """``execute`` or ``query``."""
    connection: str
    sql: str
    params: list[Any]
    """The parameters as sent (bytes as ``{"base64": ...}``, dates as text)."""


class Refuse:
    """A stub that makes the host refuse the operation with ``message``, as
    ork does for a host, secret or connection that is not granted or fails:
    the task gets an :class:`ork.HttpError`, :class:`ork.SecretError` or
    :class:`ork.SqlError` carrying ``message``. Usable wherever a stub is
    (an ``http`` URL, a secret, a SQL connection or statement)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Refuse({self.message!r})"


class MockResponse:
    """A stubbed HTTP response: ``status``, ``headers``, and a ``body``
    (str or bytes) or ``json`` (any JSON value, sent with ``Content-Type:
    application/json``). ``url`` is the final URL the host reports (the
    request's by default, i.e. no redirect).

    Plain values work as stubs too: a dict or list is a 200 JSON response, a
    str or bytes a 200 response with that body, an int a response with that
    status and no body.
    """

    def __init__(
        self,
        status: int = 200,
        body: str | bytes | None = None,
        *,
        json: Any = _UNSET,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"MockResponse status must be an int, not {type(status).__name__}")
        headers = dict(headers or {})
        if json is not _UNSET:
            if body is not None:
                raise TypeError("give MockResponse body= or json=, not both")
            body = _json_text(json)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        if body is not None and not isinstance(body, (str, bytes, bytearray)):
            raise TypeError(f"MockResponse body must be a str or bytes, not {type(body).__name__}")
        self.status = status
        self.body = body
        self.headers = headers
        self.url = url

    def _wire(self, request_url: str) -> dict[str, Any]:
        """The ``http.request`` response, as the host encodes it."""
        out: dict[str, Any] = {"status": self.status, "headers": dict(self.headers), "url": self.url or request_url}
        body = self.body if self.body is not None else ""
        if isinstance(body, str):
            out["body"] = body
        else:
            try:
                out["body"] = bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                out["body"] = None
                out["body_base64"] = base64.b64encode(bytes(body)).decode("ascii")
        return out

    def __repr__(self) -> str:
        return f"MockResponse({self.status}, body={self.body!r:.60})"


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _http_stub(value: Any, where: str) -> Any:
    """A static http stub as a MockResponse or Refuse (callables are kept)."""
    if isinstance(value, (MockResponse, Refuse)) or callable(value):
        return value
    if isinstance(value, (dict, list)):
        return MockResponse(json=value)
    if isinstance(value, (str, bytes, bytearray)):
        return MockResponse(body=value)
    if isinstance(value, int) and not isinstance(value, bool):
        return MockResponse(status=value)
    raise TypeError(
        f"{where}: expected a MockResponse, Refuse, dict/list (JSON), str/bytes (body), int (status) "
        f"or a function of the HttpCall, got {type(value).__name__}"
    )


def _normalize_sql(sql: str) -> str:
    return " ".join(sql.split())


@dataclass
class Outcome:
    """What a mock run did: how it ended and everything it sent to the host."""

    exit_code: int | None
    """The exit status (0 = success), or ``None`` when the host trapped the task."""
    trap: str | None
    """Why the host stopped the task for breaking the ABI, if it did."""
    output_set: bool
    """Whether the task stored an output."""
    output: Any
    """The output stored with ``output.set`` (``None`` if none)."""
    errors: list[ErrorReport]
    """Every ``error.report``, in order."""
    metrics: list[MetricPoint]
    """The metric points recorded, in order."""
    logs: list[LogRecord]
    """The log records, in order (stdout and stderr are not captured: use
    pytest's ``capsys``)."""
    calls: list[str]
    """The operations called, in order (``abi.hello`` first)."""
    http_requests: list[HttpCall] = field(default_factory=list)
    """Every ``http.request``, in order (refused ones too)."""
    sql_statements: list[SqlCall] = field(default_factory=list)
    """Every ``sql.execute`` and ``sql.query``, in order (refused ones too)."""
    secrets_read: list[str] = field(default_factory=list)
    """The names of the secrets asked for, in order (refused ones too)."""

    @property
    def succeeded(self) -> bool:
        """Whether the task succeeded (exit status 0, no trap)."""
        return self.exit_code == 0 and self.trap is None

    @property
    def error(self) -> ErrorReport | None:
        """The last error reported, if any."""
        return self.errors[-1] if self.errors else None

    def assert_succeeded(self) -> Any:
        """Returns the output if the task succeeded; raises ``AssertionError``
        with the task's error otherwise."""
        if not self.succeeded:
            if self.trap is not None:
                why = f"trapped: {self.trap}"
            elif self.error is not None:
                why = str(self.error)
            else:
                why = f"exit status {self.exit_code}"
            raise AssertionError(f"the task failed: {why}")
        return self.output


class MockHost:
    """A configurable fake ork host. Give it the task's facts and inputs, then
    run an executor (:meth:`run_executor`) or a python task
    (:meth:`run_task`) against it; each run returns an :class:`Outcome`.

    All arguments are optional: task ``task`` of workflow ``workflow``, run
    ``run-1``, attempt 1, no config file, the system's temporary directory as
    scratch and output directory, and no config, params or upstream outputs.
    ``executor`` defaults to ``python`` for tasks and to the class's name in
    lower case for executors (it appears in config error paths such as
    ``executors.<executor>.config``).

    Capabilities are granted only through their stubs; anything else is
    refused with ork's own message (``... add it to
    executors.NAME.sandbox.secrets in ork.yaml``):

    ``http``
        maps ``"URL"`` or ``"METHOD URL"`` to a stub: a :class:`MockResponse`,
        a dict or list (a 200 JSON response), a str or bytes (a 200 response
        with that body), an int (that status, no body), a :class:`Refuse`, or
        a function of the :class:`HttpCall` returning one of those. A request
        matches ``"METHOD URL"``, then ``"URL"``, then both without the query
        string. ``http`` may also be one function for every request.
    ``secrets``
        maps secret names to values (or :class:`Refuse`).
    ``sql``
        maps connection names to a ``sqlite3.Connection`` (statements really
        run on it), a :class:`Refuse`, a function of the :class:`SqlCall`, or a
        dict from SQL text (whitespace is normalized) to a result. A result is
        an int (rows affected, for ``execute``), a :class:`ork.QueryResult`, a
        ``{"columns": [...], "rows": [[...]]}`` dict or a list of row dicts
        (for ``query``), a :class:`Refuse`, or a function of the
        :class:`SqlCall` returning one of those.
    """

    def __init__(
        self,
        *,
        task: str = "task",
        workflow: str = "workflow",
        run_id: str = "run-1",
        attempt: int = 1,
        executor: str | None = None,
        config_file: str | None = None,
        scratch_dir: str | None = None,
        output_dir: str | None = None,
        config: Any = None,
        params: Any = None,
        upstream: dict[str, Any] | None = None,
        http: Mapping[str, Any] | Callable[[HttpCall], Any] | None = None,
        secrets: Mapping[str, str | Refuse] | None = None,
        sql: Mapping[str, Any] | None = None,
        mailbox_size: int = _abi.INITIAL_MAILBOX_SIZE,
    ) -> None:
        tmp = tempfile.gettempdir()
        self.task = task
        self.workflow = workflow
        self.run_id = run_id
        self.attempt = attempt
        self.executor = executor
        self.config_file = config_file
        self.scratch_dir = scratch_dir or tmp
        self.output_dir = output_dir or tmp
        self.config = config
        self.params = params
        self.upstream = upstream
        if http is None or (callable(http) and not isinstance(http, Mapping)):
            self.http = http
        else:
            self.http = {str(k): _http_stub(v, f"MockHost http[{k!r}]") for k, v in http.items()}
        for name, value in (secrets or {}).items():
            if not isinstance(value, (str, Refuse)):
                raise TypeError(f"MockHost secrets[{name!r}] must be a str or Refuse, not {type(value).__name__}")
        self.secrets = dict(secrets or {})
        self.sql = dict(sql or {})
        self.mailbox_size = mailbox_size

    def run_executor(self, executor: type | str) -> Outcome:
        """Runs a custom executor as ork would: ``executor`` is the class, or
        its ork.yaml ``type`` (``"executors.transform:TransformExecutor"``),
        imported from ``sys.path`` exactly as in the sandbox."""
        if isinstance(executor, str):
            if ":" not in executor:
                raise ValueError(f"expected MODULE:CLASS, got {executor!r}")
            default = executor.rpartition(":")[2].lower()
            return self._run(lambda: _main.run(["class", executor]), self.executor or default)
        target = _main.ClassTarget(cls=executor)
        default = getattr(executor, "__name__", "executor").lower()
        return self._run(lambda: _main.execute(target), self.executor or default)

    def run_task(self, task: Callable[..., Any] | str, function: str = "run") -> Outcome:
        """Runs a python task as ork would: ``task`` is the function (called as
        ``task(ctx, upstream, **params)``), or the path of its .py file
        (relative to the working directory, which plays the project root), in
        which case ``function`` names the function."""
        if callable(task):
            target = _main.FunctionTarget(func=task)
            return self._run(lambda: _main.execute(target), self.executor or "python")
        argv = ["function", str(task), function]
        return self._run(lambda: _main.run(argv), self.executor or "python")

    def run_main(self, argv: list[str]) -> Outcome:
        """Runs the sandbox's entry point with the arguments ork passes
        (``["class", "MODULE:CLASS"]`` or ``["function", FILE, FUNC]``),
        catching its ``SystemExit``."""

        def program() -> int:
            try:
                _main.main(list(argv))
            except SystemExit as e:
                return e.code if isinstance(e.code, int) else 1
            return 0

        return self._run(program, self.executor or "python")

    def _info(self, executor: str) -> dict[str, Any]:
        return {
            "task": self.task,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "executor": executor,
            "config_file": self.config_file,
            "scratch_dir": self.scratch_dir,
            "output_dir": self.output_dir,
        }

    def _run(self, program: Callable[[], int], executor: str) -> Outcome:
        current = getattr(_abi._transport, "_trigger", None)
        if isinstance(getattr(current, "__self__", None), _Session):
            raise RuntimeError("a MockHost run is already in progress; run one at a time")
        session = _Session(self, executor)
        previous = _abi.set_transport(_abi.Mailbox(trigger=session.gate, size=self.mailbox_size))
        saved_path = list(sys.path)
        saved_task_module: Any = sys.modules.get(_main.TASK_MODULE, _UNSET)
        code: int | None = None
        try:
            code = program()
        except _abi.Trap as trap:
            session.trap = session.trap or str(trap)
        finally:
            _abi.set_transport(previous)
            sys.path[:] = saved_path
            if saved_task_module is _UNSET:
                sys.modules.pop(_main.TASK_MODULE, None)
            else:
                sys.modules[_main.TASK_MODULE] = saved_task_module
        return Outcome(
            exit_code=None if session.trap else code,
            trap=session.trap,
            output_set=session.output is not _UNSET,
            output=None if session.output is _UNSET else session.output,
            errors=session.errors,
            metrics=session.metrics,
            logs=session.logs,
            calls=session.calls,
            http_requests=session.http_requests,
            sql_statements=session.sql_statements,
            secrets_read=session.secrets_read,
        )


class _Session:
    """The host's side of one mock run, driven through the clock-gate mailbox."""

    def __init__(self, host: MockHost, executor: str) -> None:
        self.host = host
        self.info = host._info(executor)
        self.greeted = False
        self.pending: tuple[int, bytes] | None = None  # kept after status 2
        self.trap: str | None = None
        self.output: Any = _UNSET
        self.errors: list[ErrorReport] = []
        self.metrics: list[MetricPoint] = []
        self.logs: list[LogRecord] = []
        self.calls: list[str] = []
        self.http_requests: list[HttpCall] = []
        self.sql_statements: list[SqlCall] = []
        self.secrets_read: list[str] = []

    # The host's half of the clock gate (abi/ABI.md), acting on the mailbox.
    def gate(self, mailbox: bytearray) -> None:
        if self.trap:
            self._trap("the task has already ended: the host trapped it")
        if len(mailbox) < _abi.HEADER_SIZE:
            self._trap(f"mailbox of {len(mailbox)} bytes is smaller than its 16-byte header")
        op_len, req_len, _, _ = _abi._HEADER.unpack_from(mailbox, 0)
        if op_len == 0:
            if self.pending is None:
                self._trap("fetch (op_len = 0) with no pending response")
            status, body = self.pending
        else:
            end = _abi.HEADER_SIZE + op_len + req_len
            if end > len(mailbox):
                self._trap(f"out of bounds: op_len={op_len} req_len={req_len}, mailbox is {len(mailbox)} bytes")
            op = bytes(mailbox[_abi.HEADER_SIZE:_abi.HEADER_SIZE + op_len])
            req = bytes(mailbox[_abi.HEADER_SIZE + op_len:end])
            status, body = self.dispatch(op, req)
        self.pending = None
        if _abi.HEADER_SIZE + len(body) > len(mailbox):
            self.pending = (status, body)
            mailbox[0:16] = _abi._HEADER.pack(_abi.STATUS_TOO_BIG, len(body), 0, 0)
            return
        mailbox[0:16] = _abi._HEADER.pack(status, len(body), 0, 0)
        mailbox[16:16 + len(body)] = body

    def _trap(self, message: str) -> NoReturn:
        self.trap = self.trap or message
        raise _abi.Trap(message)

    def dispatch(self, op_bytes: bytes, req_bytes: bytes) -> tuple[int, bytes]:
        try:
            op = op_bytes.decode("utf-8")
        except UnicodeDecodeError:
            self._trap("operation name is not valid UTF-8")
        if len(op_bytes) > _abi.MAX_OP_BYTES:
            self._trap(f"operation name of {len(op_bytes)} bytes exceeds the {_abi.MAX_OP_BYTES}-byte limit")
        self.calls.append(op)
        if op not in _abi.ALL_OPS:
            self._trap(f"unknown operation {op!r}")
        if op != _abi.OP_HELLO and not self.greeted:
            self._trap(f"{op} called before abi.hello")
        if len(req_bytes) > _abi.MAX_REQUEST_BYTES:
            self._trap(f"{op}: request of {len(req_bytes)} bytes exceeds the 16 MiB limit")
        try:
            req = json.loads(req_bytes) if req_bytes.strip() else None
        except ValueError as e:
            self._trap(f"{op}: request is not valid JSON: {e}")
        result = getattr(self, "op_" + op.replace(".", "_"))(req)
        if isinstance(result, _Refusal):
            return _abi.STATUS_ERROR, _abi.encode({"error": result.message})
        return _abi.STATUS_OK, _abi.encode(result)

    def _shape(self, op: str, req: Any, required: dict[str, Any], optional: dict[str, Any] = {}) -> dict[str, Any]:
        """Checks a request object's keys and value types, as the host's
        strict decoding does; traps on a mismatch."""
        if not isinstance(req, dict):
            self._trap(f"{op}: request must be an object, got {req!r:.100}")
        for key, value in req.items():
            types = required.get(key, optional.get(key))
            if types is None:
                self._trap(f"{op}: unknown field {key!r} in the request")
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
                self._trap(f"{op}: field {key!r} has the wrong type: {value!r:.100}")
        for key in required:
            if key not in req:
                self._trap(f"{op}: request lacks the field {key!r}")
        return req

    def op_abi_hello(self, req: Any) -> Any:
        req = self._shape(_abi.OP_HELLO, req, {"abi": int}, {"sdk": str})
        if req["abi"] != _abi.ABI_VERSION:
            self._trap(f"guest was built for ork host ABI v{req['abi']}, but this host speaks v{_abi.ABI_VERSION}")
        self.greeted = True
        return {"abi": _abi.ABI_VERSION, "host": "ork-mock/0.1.0"}

    def op_task_info(self, req: Any) -> Any:
        return self.info

    def op_executor_config(self, req: Any) -> Any:
        return self.host.config

    def op_task_params(self, req: Any) -> Any:
        return self.host.params

    def op_upstream(self, req: Any) -> Any:
        return self.host.upstream if self.host.upstream is not None else {}

    def op_metrics_record(self, req: Any) -> Any:
        req = self._shape(_abi.OP_METRICS_RECORD, req, {"name": str, "value": (int, float)}, {"labels": (dict, type(None))})
        labels = req.get("labels") or {}
        for k, v in labels.items():
            if not isinstance(v, str):
                self._trap(f"metrics.record: label {k!r} is not a string")
        name, value = req["name"], float(req["value"])
        if not _METRIC_NAME.fullmatch(name):
            return _Refusal(f"metric name {name!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        if not math.isfinite(value):
            return _Refusal(f"metric {name!r}: value must be a finite number")
        for k in labels:
            if not _LABEL_NAME.fullmatch(k):
                return _Refusal(f"metric {name!r}: label name {k!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if len(self.metrics) >= _MAX_METRIC_POINTS:
            return _Refusal(f"a task may record at most {_MAX_METRIC_POINTS} metric points")
        self.metrics.append(MetricPoint(name, value, dict(labels)))
        return None

    def op_log(self, req: Any) -> Any:
        req = self._shape(_abi.OP_LOG, req, {"level": str, "message": str}, {"fields": (dict, type(None))})
        if req["level"] not in ("debug", "info", "warn", "error"):
            return _Refusal(f"log level {req['level']!r} must be one of debug, info, warn, error")
        self.logs.append(LogRecord(req["level"], req["message"], req.get("fields") or {}))
        return None

    def op_output_set(self, req: Any) -> Any:
        if self.output is not _UNSET:
            return _Refusal("the task output was already set; a task has one output")
        self.output = req
        return None

    def op_error_report(self, req: Any) -> Any:
        req = self._shape(_abi.OP_ERROR_REPORT, req, {"message": str}, {"kind": str})
        self.errors.append(ErrorReport(req["message"], req.get("kind", "")))
        return None

    # --- capabilities ----------------------------------------------------------

    def op_http_request(self, req: Any) -> Any:
        op = _abi.OP_HTTP_REQUEST
        none = type(None)
        req = self._shape(
            op,
            req,
            {"method": str, "url": str},
            {"headers": (dict, none), "body": (str, none), "body_base64": (str, none), "timeout_ms": int},
        )
        headers = req.get("headers") or {}
        for k, v in headers.items():
            if not isinstance(v, str):
                self._trap(f"{op}: header {k!r} is not a string")
        method, url = req["method"], req["url"]
        body: bytes | None = None
        refusal = None
        if req.get("body") is not None and req.get("body_base64") is not None:
            refusal = _Refusal("http.request: give body or body_base64, not both")
        elif req.get("body") is not None:
            body = req["body"].encode("utf-8")
        elif req.get("body_base64") is not None:
            try:
                body = base64.b64decode(req["body_base64"], validate=True)
            except ValueError as e:
                refusal = _Refusal(f"http.request: body_base64 is not valid base64: {e}")
        timeout_ms = req.get("timeout_ms") or 0
        call = HttpCall(method, url, Headers(headers), body, timeout_ms / 1000 if timeout_ms > 0 else None)
        self.http_requests.append(call)
        if refusal is not None:
            return refusal
        stub = self._find_http_stub(method, url)
        if stub is None:
            return _Refusal(
                f"executor {_q(self.info['executor'])} may not make HTTP requests (to {url}): MockHost has no "
                f"http stub for {method} {url}; add the host to {_sandbox_key(self.info['executor'], 'allowed_hosts')}"
            )
        if callable(stub) and not isinstance(stub, (MockResponse, Refuse)):
            try:
                stub = _http_stub(stub(call), f"the MockHost http function for {method} {url}")
            except TypeError as e:
                self._trap(str(e))
            if callable(stub) and not isinstance(stub, (MockResponse, Refuse)):
                self._trap(f"the MockHost http function for {method} {url} returned a function")
        if isinstance(stub, Refuse):
            return _Refusal(stub.message)
        return stub._wire(url)

    def _find_http_stub(self, method: str, url: str) -> Any:
        stubs = self.host.http
        if stubs is None:
            return None
        if not isinstance(stubs, Mapping):
            return stubs
        base = url.split("#", 1)[0].split("?", 1)[0]
        for key in (f"{method} {url}", url, f"{method} {base}", base):
            if key in stubs:
                return stubs[key]
        return None

    def op_secret_get(self, req: Any) -> Any:
        req = self._shape(_abi.OP_SECRET_GET, req, {"name": str})
        name = req["name"]
        self.secrets_read.append(name)
        value = self.host.secrets.get(name)
        if value is None:
            return _Refusal(
                f"secret {_q(name)} is not granted to executor {_q(self.info['executor'])}; "
                f"add it to {_sandbox_key(self.info['executor'], 'secrets')}"
            )
        if isinstance(value, Refuse):
            return _Refusal(value.message)
        return {"value": value}

    def op_sql_execute(self, req: Any) -> Any:
        return self._sql(_abi.OP_SQL_EXECUTE, "execute", req)

    def op_sql_query(self, req: Any) -> Any:
        return self._sql(_abi.OP_SQL_QUERY, "query", req)

    def _sql(self, op: str, kind: str, req: Any) -> Any:
        req = self._shape(op, req, {"connection": str, "sql": str}, {"params": (list, type(None))})
        if not req["connection"]:
            self._trap(f'{op}: request must be {{"connection": str, "sql": str, "params": [...]}}: empty connection')
        call = SqlCall(kind, req["connection"], req["sql"], list(req.get("params") or []))
        self.sql_statements.append(call)
        if call.connection not in self.host.sql:
            return _Refusal(
                f"connection {_q(call.connection)} is not granted to executor {_q(self.info['executor'])}; "
                f"add it to {_sandbox_key(self.info['executor'], 'connections')}"
            )
        backend = self.host.sql[call.connection]
        where = f"the MockHost sql stub of connection {call.connection!r}"
        if _is_sqlite(backend):
            return _run_sqlite(backend, call)
        if isinstance(backend, Mapping):
            key = _normalize_sql(call.sql)
            stubs = {_normalize_sql(k): v for k, v in backend.items()}
            if key not in stubs:
                return _Refusal(
                    f"MockHost has no stub for this statement on connection {call.connection!r}: {key}"
                    f" (stubbed: {'; '.join(stubs) or 'none'})"
                )
            result = stubs[key]
            where = f"the MockHost sql stub for {key!r}"
        else:
            result = backend
        if callable(result) and not isinstance(result, Refuse):
            result = result(call)
        return self._sql_result(kind, result, where)

    def _sql_result(self, kind: str, result: Any, where: str) -> Any:
        if isinstance(result, Refuse):
            return _Refusal(result.message)
        if kind == "execute":
            if isinstance(result, int) and not isinstance(result, bool):
                return {"rows_affected": result}
            self._trap(f"{where} must give the rows affected (an int) for sql.execute, got {type(result).__name__}")
        if isinstance(result, QueryResult):
            columns, rows = result.columns, result.rows
        elif isinstance(result, Mapping) and "columns" in result:
            columns, rows = list(result["columns"]), [list(r) for r in result.get("rows") or []]
        elif isinstance(result, list) and all(isinstance(r, Mapping) for r in result):
            columns = list(dict.fromkeys(k for r in result for k in r))
            rows = [[r.get(c) for c in columns] for r in result]
        else:
            self._trap(
                f"{where} must give a QueryResult, a {{'columns', 'rows'}} dict or a list of row dicts "
                f"for sql.query, got {type(result).__name__}"
            )
        return {"columns": columns, "rows": [[_sql_value(v) for v in row] for row in rows]}


class _Refusal:
    """An operation the host refuses (status 1), e.g. an invalid metric name."""

    def __init__(self, message: str) -> None:
        self.message = message


def _q(s: str) -> str:
    """``s`` quoted as the host's messages quote names (Go's %q)."""
    return json.dumps(s)


def _sandbox_key(executor: str, key: str) -> str:
    """The ork.yaml key that grants a capability, as the host's refusals name it."""
    return f"executors.{executor}.sandbox.{key} in ork.yaml"


def _is_sqlite(backend: Any) -> bool:
    mod = sys.modules.get("sqlite3")
    return mod is not None and isinstance(backend, mod.Connection)


def _sql_value(v: Any) -> Any:
    """A value read from a database, as the host encodes it."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode("ascii")}
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if hasattr(v, "isoformat") and type(v).__module__ == "datetime":
        return v.isoformat()
    return v


def _bind(v: Any) -> Any:
    """A parameter as the host binds it (JSON in, driver value out)."""
    if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("base64"), str):
        return base64.b64decode(v["base64"])
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return int(v)
    return v


def _run_sqlite(conn: Any, call: SqlCall) -> Any:
    """Runs a statement on a real sqlite3 database, as the host would."""
    import sqlite3

    try:
        before = conn.total_changes
        try:
            cur = conn.execute(call.sql, [_bind(p) for p in call.params])
        except (sqlite3.Warning, sqlite3.ProgrammingError) as e:
            # Several statements: the host runs them as a script, as
            # sqlite3's executescript does.
            if call.op != "execute" or call.params or "one statement" not in str(e):
                raise
            conn.executescript(call.sql)
            return {"rows_affected": conn.total_changes - before}
        if call.op == "execute":
            result: Any = {"rows_affected": max(cur.rowcount, 0)}
        else:
            columns = [d[0] for d in cur.description or ()]
            rows = [[_sql_value(v) for v in row] for row in cur.fetchall()]
            result = {"columns": columns, "rows": rows}
        if conn.in_transaction:
            conn.commit()
        return result
    except (sqlite3.Error, OverflowError, ValueError) as e:
        if conn.in_transaction:
            conn.rollback()
        return _Refusal(f"sqlite: {e}")


def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)
