# Type stubs for ork's Python SDK. The module only talks to a host inside
# ork's sandbox; these stubs give editors and type checkers its API anywhere.

import datetime
import logging
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar, overload

__version__: str
EXECUTOR_MARK: str

_C = TypeVar("_C", bound=type)

class OrkError(Exception):
    """Base class of every error the ork SDK raises."""

class HostError(OrkError):
    """The ork host refused an operation."""

    op: str
    message: str
    def __init__(self, op: str, message: str) -> None: ...

class HttpError(HostError):
    """An HTTP request was refused or failed, or ``raise_for_status`` found a
    status outside 200-299 (then ``response`` is set)."""

    response: HttpResponse | None
    @property
    def status(self) -> int | None:
        """The response's status code, or ``None`` when there was no response."""
    def __init__(self, op: str, message: str, response: HttpResponse | None = ...) -> None: ...

class SecretError(HostError):
    """A secret is not granted to the executor, or cannot be read."""

    name: str
    def __init__(self, op: str, message: str, name: str = ...) -> None: ...

class SqlError(HostError):
    """A SQL statement was refused or failed (the database's message)."""

    connection: str
    def __init__(self, op: str, message: str, connection: str = ...) -> None: ...

class ConfigError(OrkError):
    """An executor config or task params do not fit the declared type."""

    problems: list[str]
    def __init__(self, message: str, problems: list[str] | None = ...) -> None: ...

class OutputError(OrkError):
    """A task's return value cannot become its JSON output."""

    path: str
    def __init__(self, message: str, path: str = ...) -> None: ...

class Metrics:
    """Records the task's metrics; use ``ctx.metrics``."""

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        """Records one point of metric ``name``.

        ``value`` is an int or float and must be finite. ``labels`` maps label
        names to values; values are strings (ints, floats and bools are
        converted with ``str``).

        The host refuses, with :class:`ork.HostError`, a name that does not
        match ``[a-zA-Z_:][a-zA-Z0-9_:]*``, a label name that does not match
        ``[a-zA-Z_][a-zA-Z0-9_]*``, and more than 10,000 points per task.
        """

_JSON = None | bool | int | float | str | list[Any] | dict[str, Any]
_SqlParam = _JSON | bytes | bytearray | datetime.date | datetime.time | tuple[Any, ...]

class HttpResponse:
    """The response to an HTTP request (any status)."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive."""
    url: str
    method: str
    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        url: str = "",
        body: str | bytes | None = None,
        method: str = "GET",
    ) -> None: ...
    @property
    def content(self) -> bytes:
        """The body, as bytes."""
    @property
    def text(self) -> str:
        """The body, as str: decoded as UTF-8, invalid bytes replaced by
        U+FFFD.
        """
    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (keyword arguments go to ``json.loads``);
        raises ``json.JSONDecodeError`` (a ``ValueError``) naming the URL when
        it is not JSON.
        """
    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
    @property
    def reason(self) -> str:
        """The status's standard phrase (``Not Found``), or ``""``."""
    def raise_for_status(self) -> HttpResponse:
        """Raises :class:`ork.HttpError` (with ``response`` set) unless the
        status is 2xx; returns the response, so calls chain:
        ``ctx.http.get(url).raise_for_status().json()``.
        """

class Http:
    """HTTP requests made by the ork host; use ``ctx.http``."""

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | int | float] | None = None,
        body: str | bytes | bytearray | memoryview | dict[str, Any] | list[Any] | tuple[Any, ...] | None = None,
        timeout: float | datetime.timedelta | None = None,
        *,
        json: Any = ...,
    ) -> HttpResponse:
        """Makes one request and returns its :class:`HttpResponse`, whatever
        its status (see ``raise_for_status``).

        ``headers`` maps names to str values. ``body`` is a str (sent as
        text), bytes (sent as they are), or a dict or list (sent as JSON, with
        ``Content-Type: application/json`` unless ``headers`` has one);
        ``json=`` sends any JSON value that way. ``timeout`` is in seconds
        (a number or a ``datetime.timedelta``); the host caps it, and uses
        its own default when none is given.

        Raises :class:`ork.HttpError` when the host refuses or cannot make
        the request (a host not granted, a refused address, a timeout, a
        body too large); ``TypeError``/``ValueError`` for arguments that
        cannot be sent.
        """
    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("GET", url, **kwargs)``."""
    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("POST", url, **kwargs)``."""
    def put(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("PUT", url, **kwargs)``."""
    def patch(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("PATCH", url, **kwargs)``."""
    def delete(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("DELETE", url, **kwargs)``."""

class QueryResult:
    """Rows returned by ``query``; iterating gives dicts keyed by column."""

    columns: list[str]
    rows: list[list[Any]]
    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int) -> dict[str, Any]:
        """Row ``index`` as a dict (a list of dicts for a slice)."""
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]:
        """Row ``index`` as a dict (a list of dicts for a slice)."""
    def first(self) -> dict[str, Any] | None:
        """The first row as a dict, or ``None`` when there are no rows."""
    def one(self) -> dict[str, Any]:
        """The only row, as a dict; ``ValueError`` unless there is exactly
        one.
        """
    def scalar(self) -> Any:
        """The first value of the first row (``SELECT count(*) ...``), or
        ``None`` when there are no rows.
        """
    def column(self, name: str | int) -> list[Any]:
        """The values of one column (by name, or by position when an int), as
        a list.
        """

class SqlConnection:
    """A database connection granted to the executor; use ``ctx.sql(name)``."""

    name: str
    def __init__(self, name: str) -> None: ...
    def execute(self, sql: str, params: Sequence[_SqlParam] | None = None) -> int:
        """Runs a statement that returns no rows (INSERT, UPDATE, DELETE,
        CREATE, ...); returns the number of rows affected.

        ``params`` is a list or tuple with one value per placeholder: None,
        bool, int, float, str, bytes (bound as a BLOB/bytea), date/datetime
        (ISO 8601 text), Decimal/UUID (their text), or a list/dict (its JSON
        text). Raises :class:`ork.SqlError` with the host's or the database's
        message.
        """
    def query(self, sql: str, params: Sequence[_SqlParam] | None = None) -> QueryResult:
        """Runs a statement that returns rows; returns them as a
        :class:`QueryResult`. ``params`` as for :meth:`execute`. The host caps
        how many rows and bytes a result may hold: select what you need, or
        aggregate in SQL.
        """

class Context:
    """What a running task knows about itself."""

    @property
    def task_name(self) -> str:
        """The task's name in its workflow, e.g. ``stage_users``."""
    @property
    def workflow_name(self) -> str:
        """The workflow's name, e.g. ``warehouse_refresh``."""
    @property
    def run_id(self) -> str:
        """The id of the workflow run this task belongs to."""
    @property
    def attempt(self) -> int:
        """1 for the first run of the task, 2 for its first retry, ..."""
    @property
    def workflow_params(self) -> dict[str, object]:
        """The run's parameters (``ork run --param key=value``), the same
        for every task of the run; ``{}`` when there are none.
        """
    @property
    def executor_name(self) -> str:
        """The name of the executor running the task, as named in ork.yaml."""
    @property
    def config_file(self) -> str | None:
        """The task's ``config_file`` as written in the workflow (a path
        relative to the project, which is the working directory), or
        ``None``.
        """
    @property
    def scratch_dir(self) -> str:
        """A writable directory for temporary files, private to this run."""
    @property
    def output_dir(self) -> str:
        """The directory for files the task produces."""
    @property
    def params(self) -> dict[str, Any]:
        """The ``params:`` of a python task's config file (``{}`` when it has
        none, and for custom executors).
        """
    @property
    def metrics(self) -> Metrics:
        """The task's metrics recorder: ``ctx.metrics.record(name, value, labels)``."""
    @property
    def http(self) -> Http:
        """HTTP requests, made by the host to the hosts ork.yaml grants the
        executor (``sandbox.allowed_hosts``)::

            resp = ctx.http.get("https://api.example.com/v1/jobs", timeout=10)
            jobs = resp.raise_for_status().json()
            ctx.http.post("https://api.example.com/v1/jobs", body={"name": "load"})

        Refusals raise :class:`ork.HttpError`.
        """
    def secret(self, name: str) -> str:
        """The value of secret ``name``, one of the executor's
        ``sandbox.secrets`` in ork.yaml (defined under the top-level
        ``secrets:``). Raises :class:`ork.SecretError` for a secret that is
        not granted or cannot be read. ork redacts secret values from the
        task's logs, errors and output.
        """
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
    @property
    def log(self) -> logging.Logger:
        """The task's logger (``logging.getLogger("ork.task")``).

        Its records become structured lines of the task's log; keyword
        ``extra={...}`` becomes the line's fields::

            ctx.log.info("loaded", extra={"rows": 42})
        """

@overload
def executor(cls: _C) -> _C:
    """Marks a class as an ork executor, checking its shape when the class is
    defined.

    The class needs ``__init__(self, config)``, which receives the
    executor's ``config:`` from ork.yaml -- converted to the type
    ``config`` is annotated with (a pydantic model, a dataclass, a TypedDict,
    or a plain dict) -- and ``run(self, config_file, ctx, upstream={})``,
    whose return value becomes the task's output. A class that does not fit
    raises ``TypeError`` at once. Works as ``@executor`` and ``@executor()``.
    The class itself is returned unchanged, apart from the mark.
    """
@overload
def executor(cls: None = None) -> Callable[[_C], _C]:
    """Marks a class as an ork executor, checking its shape when the class is
    defined.

    The class needs ``__init__(self, config)``, which receives the
    executor's ``config:`` from ork.yaml -- converted to the type
    ``config`` is annotated with (a pydantic model, a dataclass, a TypedDict,
    or a plain dict) -- and ``run(self, config_file, ctx, upstream={})``,
    whose return value becomes the task's output. A class that does not fit
    raises ``TypeError`` at once. Works as ``@executor`` and ``@executor()``.
    The class itself is returned unchanged, apart from the mark.
    """
