"""The task context handed to user code, its metrics recorder, and the logging
bridge that turns ``logging`` records into the task's structured log."""

import logging
import math
import sys

from . import _abi
from ._errors import SecretError, a_type
from ._http import Http
from ._sql import SqlConnection

#: The logger behind ``Context.log``.
TASK_LOGGER = "ork.task"

# Longest log message sent to the host; longer ones are cut (the host refuses
# requests over 16 MiB, which would end the task).
_MAX_LOG_MESSAGE = 1 << 20


class Metrics:
    """Records the task's metrics; use ``ctx.metrics``."""

    __slots__ = ()

    def record(self, name: str, value: float, labels=None) -> None:
        """Records one point of metric ``name``.

        ``value`` is an int or float and must be finite. ``labels`` maps label
        names to values; values are strings (ints, floats and bools are
        converted with ``str``).

        The host refuses, with :class:`ork.HostError`, a name that does not
        match ``[a-zA-Z_:][a-zA-Z0-9_:]*``, a label name that does not match
        ``[a-zA-Z_][a-zA-Z0-9_]*``, and more than 10,000 points per task.
        """
        if not isinstance(name, str):
            raise TypeError(f"metric name must be a str, not {type(name).__name__}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r}: value must be an int or float, not {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"metric {name!r}: value {value} is too large for a float") from None
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r}: value {value} is not a finite number")
        req: "dict[str, object]" = {
            "name": name,
            "value": value if isinstance(value, int) and abs(value) < 2**53 else number,
        }
        if labels:
            req["labels"] = _labels(name, labels)
        _abi.invoke(_abi.OP_METRICS_RECORD, req)

    def __repr__(self) -> str:
        return "<ork.Metrics>"


def _labels(metric: str, labels) -> "dict[str, str]":
    try:
        items = labels.items()
    except AttributeError:
        raise TypeError(f"metric {metric!r}: labels must be a dict, not {type(labels).__name__}") from None
    out = {}
    for key, value in items:
        if not isinstance(key, str):
            raise TypeError(f"metric {metric!r}: label names must be str, not {type(key).__name__}")
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (int, float, bool)):
            out[key] = str(value)
        else:
            raise TypeError(
                f"metric {metric!r}: label {key!r} must be a str (or int, float, bool), not {type(value).__name__}"
            )
    return out


class Context:
    """What a running task knows about itself.

    Passed to an executor's ``run`` and to task functions. Its facts come from
    the host once, at start-up; ``metrics`` and ``log`` send to the host
    immediately. ``http``, ``secret`` and ``sql`` reach what ork.yaml grants
    the executor (``sandbox.allowed_hosts``, ``sandbox.secrets``,
    ``sandbox.connections``).
    """

    __slots__ = ("_info", "_params")

    _metrics = Metrics()
    _http = Http()

    def __init__(self, info: dict, params=None) -> None:
        self._info = info
        self._params = params if params is not None else {}

    @property
    def task_name(self) -> str:
        """The task's name in its workflow, e.g. ``stage_users``."""
        return self._info.get("task", "")

    @property
    def workflow_name(self) -> str:
        """The workflow's name, e.g. ``warehouse_refresh``."""
        return self._info.get("workflow", "")

    @property
    def run_id(self) -> str:
        """The id of the workflow run this task belongs to."""
        return self._info.get("run_id", "")

    @property
    def attempt(self) -> int:
        """1 for the first run of the task, 2 for its first retry, ..."""
        return self._info.get("attempt", 1)

    @property
    def workflow_params(self) -> dict:
        """The run's parameters (``ork run --param key=value``), the same
        for every task of the run; ``{}`` when there are none."""
        return dict(self._info.get("workflow_params") or {})

    @property
    def executor_name(self) -> str:
        """The name of the executor running the task, as named in ork.yaml."""
        return self._info.get("executor", "")

    @property
    def config_file(self):
        """The task's ``config_file`` as written in the workflow (a path
        relative to the project, which is the working directory), or
        ``None``."""
        return self._info.get("config_file")

    @property
    def scratch_dir(self) -> str:
        """A writable directory for temporary files, private to this run."""
        return self._info.get("scratch_dir", "/tmp")

    @property
    def output_dir(self) -> str:
        """The directory for files the task produces."""
        return self._info.get("output_dir", "/output")

    @property
    def params(self) -> dict:
        """The ``params:`` of a python task's config file (``{}`` when it has
        none, and for custom executors)."""
        return self._params

    @property
    def metrics(self) -> Metrics:
        """The task's metrics recorder: ``ctx.metrics.record(name, value, labels)``."""
        return self._metrics

    @property
    def http(self) -> Http:
        """HTTP requests, made by the host to the hosts ork.yaml grants the
        executor (``sandbox.allowed_hosts``)::

            resp = ctx.http.get("https://api.example.com/v1/jobs", timeout=10)
            jobs = resp.raise_for_status().json()
            ctx.http.post("https://api.example.com/v1/jobs", body={"name": "load"})

        Refusals raise :class:`ork.HttpError`.
        """
        return self._http

    def secret(self, name: str) -> str:
        """The value of secret ``name``, one of the executor's
        ``sandbox.secrets`` in ork.yaml (defined under the top-level
        ``secrets:``). Raises :class:`ork.SecretError` for a secret that is
        not granted or cannot be read. ork redacts secret values from the
        task's logs, errors and output."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"secret name must be a non-empty str, not {name!r:.60}")
        resp = _abi.invoke(_abi.OP_SECRET_GET, {"name": name}, error=lambda op, msg: SecretError(op, msg, name=name))
        value = resp.get("value") if isinstance(resp, dict) else None
        if not isinstance(value, str):
            raise SecretError(_abi.OP_SECRET_GET, f"unexpected response from the host: {a_type(resp)}", name=name)
        return value

    def sql(self, connection: str) -> SqlConnection:
        """Database connection ``connection``, one of the executor's
        ``sandbox.connections`` in ork.yaml (defined under the top-level
        ``connections:``)::

            db = ctx.sql("warehouse")
            db.execute("INSERT INTO runs (id, rows) VALUES (?, ?)", [ctx.run_id, 42])
            for row in db.query("SELECT id, rows FROM runs WHERE rows > ?", [0]):
                print(row["id"], row["rows"])

        Failures raise :class:`ork.SqlError`.
        """
        return SqlConnection(connection)

    @property
    def log(self) -> logging.Logger:
        """The task's logger (``logging.getLogger("ork.task")``).

        Its records become structured lines of the task's log; keyword
        ``extra={...}`` becomes the line's fields::

            ctx.log.info("loaded", extra={"rows": 42})
        """
        return logging.getLogger(TASK_LOGGER)

    def __repr__(self) -> str:
        return (
            f"<ork.Context task={self.task_name!r} workflow={self.workflow_name!r} "
            f"run_id={self.run_id!r} attempt={self.attempt}>"
        )


# --- logging -----------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from
# ``extra=`` and becomes a field.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def level_name(levelno: int) -> str:
    """The host's level for a ``logging`` level number."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _field(value, depth: int = 0):
    """``value`` as JSON-compatible data, for a log field (lenient: what JSON
    cannot hold becomes its ``str``)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 20:
        if isinstance(value, dict):
            return {str(k): _field(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_field(v, depth + 1) for v in value]
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class HostLogHandler(logging.Handler):
    """Sends log records to the host's ``log`` operation.

    Level mapping: DEBUG and below -> ``debug``, INFO -> ``info``, WARNING ->
    ``warn``, ERROR and CRITICAL -> ``error``. Attributes added with
    ``extra=`` become the record's ``fields``, plus ``logger`` (the logger's
    name) for records from loggers other than the root, ``ork.task`` and a
    python task's own module (``__ork_task__``).
    A record the host refuses goes to stderr instead; logging never fails
    the task.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if len(message) > _MAX_LOG_MESSAGE:
                message = f"{message[:_MAX_LOG_MESSAGE]}... ({len(message)} characters in all)"
            fields = {k: _field(v) for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
            if record.name not in ("root", TASK_LOGGER, "__ork_task__"):
                fields.setdefault("logger", record.name)
            req: "dict[str, object]" = {"level": level_name(record.levelno), "message": message}
            if fields:
                req["fields"] = fields
            _abi.invoke(_abi.OP_LOG, req)
        except _abi.Trap:
            raise
        except Exception as e:
            try:
                sys.stderr.write(f"ork: log record not sent ({e}): {record.levelname} {record.getMessage()}\n")
            except Exception:
                pass


def install_logging():
    """Routes ``logging`` to the host for the duration of a task.

    ``ork.task`` (``ctx.log``) gets its own :class:`HostLogHandler`, level
    DEBUG and no propagation, so its records reach the host however user
    code reconfigures the root logger. The root logger gets a handler too,
    and level INFO, so a plain ``logging.info(...)`` becomes a log line while
    libraries' DEBUG chatter does not. Every record is sent exactly once.
    Returns a function that undoes it all.
    """
    root = logging.getLogger()
    task = logging.getLogger(TASK_LOGGER)
    root_handler, task_handler = HostLogHandler(), HostLogHandler()
    saved = (root.level, task.level, task.propagate)
    root.addHandler(root_handler)
    root.setLevel(logging.INFO)
    task.addHandler(task_handler)
    task.setLevel(logging.DEBUG)
    task.propagate = False

    def undo() -> None:
        root.removeHandler(root_handler)
        task.removeHandler(task_handler)
        root.setLevel(saved[0])
        task.setLevel(saved[1])
        task.propagate = saved[2]

    return undo
