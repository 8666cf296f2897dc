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
    the host's explanation; ``str(e)`` is ``"op: message"``. Capabilities
    raise the subclasses :class:`HttpError`, :class:`SecretError` and
    :class:`SqlError`.
    """

    def __init__(self, op: str, message: str) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message


class HttpError(HostError):
    """An HTTP request failed: the host refused or could not make it
    (``op`` is ``http.request``; ``response`` and ``status`` are ``None``),
    or :meth:`ork.HttpResponse.raise_for_status` found a status outside
    200-299 (``op`` is ``http.request`` too, and ``response`` is the
    response).

    A host refusal names what to change, e.g. the host missing from the
    executor's ``sandbox.allowed_hosts`` in ork.yaml.
    """

    def __init__(self, op: str, message: str, response=None) -> None:
        super().__init__(op, message)
        self.response = response

    @property
    def status(self):
        """The response's status code, or ``None`` when there was no response."""
        return None if self.response is None else self.response.status


class SecretError(HostError):
    """The host refused ``ctx.secret(name)``: the secret is not granted to the
    executor (``sandbox.secrets`` in ork.yaml), or its value cannot be read.
    ``name`` is the secret asked for."""

    def __init__(self, op: str, message: str, name: str = "") -> None:
        super().__init__(op, message)
        self.name = name


class SqlError(HostError):
    """A SQL statement failed: the connection is not granted to the executor
    (``sandbox.connections`` in ork.yaml), or the database refused the
    statement (the message is the database's own), or it took too long or
    returned too much. ``connection`` is the connection's name."""

    def __init__(self, op: str, message: str, connection: str = "") -> None:
        super().__init__(op, message)
        self.connection = connection


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
