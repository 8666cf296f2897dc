"""``ctx.sql(connection)``: SQL that the ork host runs on the task's behalf.

The host holds the database connections ork.yaml defines (``connections:``)
and runs statements on those granted to the task's executor
(``sandbox.connections``), with a timeout and a cap on the result's size.
Placeholders are the database's own: ``?`` for SQLite, ``$1, $2, ...`` for
PostgreSQL.
"""

import base64
import functools
import math

from . import _abi
from ._errors import SqlError, a_type


class QueryResult:
    """The result of ``query``: ``columns`` (names, in order) and ``rows``
    (a list of lists of values, in column order).

    Iterating gives each row as a dict keyed by column name (when two
    columns share a name, the last one wins: use ``rows`` for those)::

        for row in db.query("SELECT id, name FROM users"):
            print(row["id"], row["name"])

    Values are JSON's: ``None``, bool, int, float, str, plus ``bytes`` for
    binary values that are not UTF-8 text. Dates and times come as ISO 8601
    strings, PostgreSQL numerics as strings (no precision lost), and json
    columns as their JSON text.
    """

    __slots__ = ("columns", "rows")

    def __init__(self, columns, rows) -> None:
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    @classmethod
    def _from_host(cls, resp, op: str, connection: str) -> "QueryResult":
        columns = resp.get("columns") if isinstance(resp, dict) else None
        rows = resp.get("rows") if isinstance(resp, dict) else None
        if not (
            isinstance(resp, dict)
            and isinstance(columns or [], list)
            and isinstance(rows or [], list)
            and all(isinstance(r, list) and len(r) == len(columns or []) for r in rows or [])
        ):
            raise SqlError(op, f"unexpected response from the host: {resp!r:.200}", connection=connection)
        return cls(columns or [], [[_value(v) for v in row] for row in rows or []])

    def __iter__(self):
        columns = self.columns
        return (dict(zip(columns, row)) for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        """Row ``index`` as a dict (a list of dicts for a slice)."""
        if isinstance(index, slice):
            return [dict(zip(self.columns, row)) for row in self.rows[index]]
        return dict(zip(self.columns, self.rows[index]))

    def first(self):
        """The first row as a dict, or ``None`` when there are no rows."""
        return dict(zip(self.columns, self.rows[0])) if self.rows else None

    def one(self) -> dict:
        """The only row, as a dict; ``ValueError`` unless there is exactly
        one."""
        if len(self.rows) != 1:
            raise ValueError(f"expected exactly one row, got {len(self.rows)}")
        return dict(zip(self.columns, self.rows[0]))

    def scalar(self):
        """The first value of the first row (``SELECT count(*) ...``), or
        ``None`` when there are no rows."""
        if not self.rows or not self.rows[0]:
            return None
        return self.rows[0][0]

    def column(self, name):
        """The values of one column (by name, or by position when an int), as
        a list."""
        if isinstance(name, int) and not isinstance(name, bool):
            i = name
        else:
            try:
                i = len(self.columns) - 1 - self.columns[::-1].index(name)
            except ValueError:
                raise KeyError(f"no column {name!r}; the columns are {', '.join(map(str, self.columns)) or 'none'}") from None
        return [row[i] for row in self.rows]

    def __eq__(self, other):
        if not isinstance(other, QueryResult):
            return NotImplemented
        return self.columns == other.columns and self.rows == other.rows

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<ork.QueryResult columns={self.columns!r} rows={len(self.rows)}>"


class SqlConnection:
    """A database connection of ork.yaml, as granted to the task's executor;
    get it with ``ctx.sql(name)``. Nothing is checked until a statement runs.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"connection name must be a non-empty str, not {name!r:.60}")
        self.name = name

    def execute(self, sql: str, params=None) -> int:
        """Runs a statement that returns no rows (INSERT, UPDATE, DELETE,
        CREATE, ...); returns the number of rows affected.

        ``params`` is a list or tuple with one value per placeholder: None,
        bool, int, float, str, bytes (bound as a BLOB/bytea), date/datetime
        (ISO 8601 text), Decimal/UUID (their text), or a list/dict (its JSON
        text). Raises :class:`ork.SqlError` with the host's or the database's
        message.
        """
        resp = self._run(_abi.OP_SQL_EXECUTE, sql, params)
        n = resp.get("rows_affected") if isinstance(resp, dict) else None
        if not isinstance(n, int) or isinstance(n, bool):
            raise SqlError(_abi.OP_SQL_EXECUTE, f"unexpected response from the host: {resp!r:.200}", connection=self.name)
        return n

    def query(self, sql: str, params=None) -> QueryResult:
        """Runs a statement that returns rows; returns them as a
        :class:`QueryResult`. ``params`` as for :meth:`execute`. The host caps
        how many rows and bytes a result may hold: select what you need, or
        aggregate in SQL."""
        resp = self._run(_abi.OP_SQL_QUERY, sql, params)
        return QueryResult._from_host(resp, _abi.OP_SQL_QUERY, self.name)

    def _run(self, op: str, sql: str, params):
        if not isinstance(sql, str):
            raise TypeError(f"sql must be a str, not {a_type(sql)}")
        req: "dict[str, object]" = {"connection": self.name, "sql": sql}
        values = _params(params)
        if values:
            req["params"] = values
        return _abi.invoke(op, req, error=functools.partial(SqlError, connection=self.name))

    def __repr__(self) -> str:
        return f"<ork.SqlConnection {self.name!r}>"


def _params(params) -> list:
    if params is None:
        return []
    if not isinstance(params, (list, tuple)):
        raise TypeError(
            f"sql params must be a list or tuple with one value per placeholder, not {a_type(params)}"
        )
    return [_param(v, i + 1) for i, v in enumerate(params)]


def _param(value, n: int):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"sql parameter {n} is {value!r}, which JSON cannot carry; bind a string or None instead")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (dict, list, tuple)):
        return value  # bound as its JSON text
    cls = type(value)
    if hasattr(value, "isoformat") and cls.__module__ == "datetime":
        return value.isoformat()
    if (cls.__module__, cls.__name__) in (("decimal", "Decimal"), ("_pydecimal", "Decimal"), ("uuid", "UUID")):
        return str(value)
    raise TypeError(
        f"sql parameter {n} is {a_type(value)}; bind None, bool, int, float, str, bytes, "
        "a date/datetime, a Decimal or a list/dict (bound as JSON text)"
    )


def _value(v):
    """A value of a row: ``{"base64": ...}`` (binary that is not UTF-8)
    becomes bytes."""
    if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("base64"), str):
        try:
            return base64.b64decode(v["base64"])
        except ValueError:
            return v
    return v
