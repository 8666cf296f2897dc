"""ork's Python SDK: write custom executors and tasks for ork workflows.

A custom executor is a class registered in ork.yaml
(``type: executors.transform:TransformExecutor``)::

    from ork import executor, Context

    @executor
    class TransformExecutor:
        def __init__(self, config: TransformConfig):
            self.config = config

        def run(self, config_file: str, ctx: Context, upstream: dict = {}) -> dict:
            ctx.metrics.record("rows", 42, labels={"task": ctx.task_name})
            return {"rows": 42}

Beyond its sandbox, a task reaches only what ork.yaml grants its executor:
``ctx.http`` (``sandbox.allowed_hosts``), ``ctx.secret(name)``
(``sandbox.secrets``) and ``ctx.sql(connection)`` (``sandbox.connections``).

A python task is a function ``run(ctx, upstream, **params)`` in a .py file
named by the task's config file.

Both run inside ork's sandbox (CPython for WebAssembly), where this module
talks to the ork host; to unit-test them on a normal Python, use
:class:`ork.testing.MockHost`.
"""

from ._context import Context, Metrics
from ._errors import ConfigError, HostError, HttpError, OrkError, OutputError, SecretError, SqlError
from ._executor import EXECUTOR_MARK, executor
from ._http import Http, HttpResponse
from ._sql import QueryResult, SqlConnection

__all__ = [
    "Context",
    "ConfigError",
    "HostError",
    "Http",
    "HttpError",
    "HttpResponse",
    "Metrics",
    "OrkError",
    "OutputError",
    "QueryResult",
    "SecretError",
    "SqlConnection",
    "SqlError",
    "executor",
]

__version__ = "0.1.0"

# Show the public classes as ork.X (in reprs and tracebacks), where users
# import them from.
for _obj in (
    Context,
    Metrics,
    Http,
    HttpResponse,
    SqlConnection,
    QueryResult,
    OrkError,
    HostError,
    HttpError,
    SecretError,
    SqlError,
    ConfigError,
    OutputError,
    executor,
):
    _obj.__module__ = __name__
del _obj
