# Type stubs for ork's Python SDK. The module only talks to a host inside
# ork's sandbox; these stubs give editors and type checkers its API anywhere.

import logging
from typing import Any, Callable, Mapping, TypeVar, overload

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
    def log(self) -> logging.Logger: ...

@overload
def executor(cls: _C) -> _C: ...
@overload
def executor(cls: None = None) -> Callable[[_C], _C]: ...
