"""The SDK's exception classes (re-exported by :mod:`ork`)."""


def a_type(value) -> str:
    """``"an int"``, ``"a list"``: the type of ``value`` with its article."""
    name = type(value).__name__
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


class OrkError(Exception):
    """Base class of every error the ork SDK raises."""


class HostError(OrkError):
    """The ork host refused an operation, e.g. a metric name it does not accept.

    ``op`` is the operation (``metrics.record``, ``log``, ...) and ``message``
    the host's explanation.
    """

    def __init__(self, op: str, message: str) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message


class ConfigError(OrkError):
    """An executor config or task params do not fit the declared type.

    ``problems`` lists one ``"path: problem"`` string per problem, where the
    path names the setting as written in ork.yaml or the task's config file
    (``executors.bigquery.config.location``). Executor code may raise it too,
    e.g. from ``__init__``: the task then fails as a configuration problem,
    with the message only (no traceback).
    """

    def __init__(self, message: str, problems: "list[str] | None" = None) -> None:
        super().__init__(message)
        self.problems = list(problems or ())


class OutputError(OrkError):
    """A task's return value cannot become its JSON output.

    ``path`` locates the offending value, e.g. ``output["rows"][3]``.
    """

    def __init__(self, message: str, path: str = "output") -> None:
        super().__init__(message)
        self.path = path
