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

Runs change process-wide state while they last (the transport and the
``logging`` configuration; a python task's file is loaded as module
``__ork_task__`` and its directory put on ``sys.path``) and restore it
afterwards; run one at a time.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

from . import _abi, _main

__all__ = ["MockHost", "Outcome", "MetricPoint", "LogRecord", "ErrorReport"]

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


class _Refusal:
    """An operation the host refuses (status 1), e.g. an invalid metric name."""

    def __init__(self, message: str) -> None:
        self.message = message


def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)
