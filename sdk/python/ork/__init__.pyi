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
    def status(self) -> int | None: ...
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
    ) -> None: ...

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
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self, **kwargs: Any) -> Any: ...
    @property
    def ok(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    def raise_for_status(self) -> HttpResponse: ...

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
    ) -> HttpResponse: ...
    def get(self, url: str, **kwargs: Any) -> HttpResponse: ...
    def post(self, url: str, **kwargs: Any) -> HttpResponse: ...
    def put(self, url: str, **kwargs: Any) -> HttpResponse: ...
    def patch(self, url: str, **kwargs: Any) -> HttpResponse: ...
    def delete(self, url: str, **kwargs: Any) -> HttpResponse: ...

class QueryResult:
    """Rows returned by ``query``; iterating gives dicts keyed by column."""

    columns: list[str]
    rows: list[list[Any]]
    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def first(self) -> dict[str, Any] | None: ...
    def one(self) -> dict[str, Any]: ...
    def scalar(self) -> Any: ...
    def column(self, name: str | int) -> list[Any]: ...

class SqlConnection:
    """A database connection granted to the executor; use ``ctx.sql(name)``."""

    name: str
    def __init__(self, name: str) -> None: ...
    def execute(self, sql: str, params: Sequence[_SqlParam] | None = None) -> int: ...
    def query(self, sql: str, params: Sequence[_SqlParam] | None = None) -> QueryResult: ...

class Context:
    """What a running task knows about itself."""

    @property
    def task_name(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def workflow_params(self) -> dict[str, object]: ...
    @property
    def executor_name(self) -> str: ...
    @property
    def config_file(self) -> str | None: ...
    @property
    def scratch_dir(self) -> str: ...
    @property
    def output_dir(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def http(self) -> Http: ...
    def secret(self, name: str) -> str: ...
    def sql(self, connection: str) -> SqlConnection: ...
    @property
    def log(self) -> logging.Logger: ...

@overload
def executor(cls: _C) -> _C: ...
@overload
def executor(cls: None = None) -> Callable[[_C], _C]: ...
