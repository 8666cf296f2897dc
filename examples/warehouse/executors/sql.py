"""The BigQuery-shaped executor, on any SQL connection ork grants: renders
the task's SQL template with Jinja2 from its params and the outputs of
upstream tasks, runs it, and records the bytes processed.

``bytes_processed`` is an estimate, not what the database scanned: SQLite
and PostgreSQL do not report that the way BigQuery does. It is the size of
the target table's rows after the statements ran, each row written as JSON
(``len(json.dumps(row))``, summed over the rows of ``SELECT * FROM
target``). ``estimated_cost_usd`` prices that estimate at the executor's
``cost_per_tb`` (bytes / 1024**4 * cost_per_tb), so it is as rough as the
estimate it is based on."""
import json
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, Template
from pydantic import BaseModel

from ork import Context, executor


class SqlConfig(BaseModel):
    connection: str = "warehouse"
    cost_per_tb: float = 5.0


class TaskConfig(BaseModel):
    file: str
    params: dict[str, str | int | float | bool | list[str]] = {}


class TaskOutput(BaseModel):
    target_table: str
    rows_affected: int
    bytes_processed: int
    estimated_cost_usd: float
    lineage: list[str]


def date_sub(dialect):
    def fn(as_of, days):
        if dialect == "sqlite":
            return f"date('{as_of}', '-{int(days)} day')"
        return f"(DATE '{as_of}' - INTERVAL '{int(days)} day')::text"
    return fn


@executor
class SqlExecutor:
    def __init__(self, config: SqlConfig):
        self.config = config

    def run(self, config_file: str, ctx: Context, upstream: dict[str, object] = {}) -> TaskOutput:
        task_config = TaskConfig(**yaml.safe_load(Path(config_file).read_text()))
        connection = ctx.workflow_params.get("connection", self.config.connection)
        dialect = "postgres" if connection.endswith("_pg") else "sqlite"

        template = Template(Path(task_config.file).read_text(), undefined=StrictUndefined)
        context = {**task_config.params, **upstream, "dialect": dialect, "date_sub": date_sub(dialect)}
        sql = template.render(**context)
        Path(ctx.output_dir, ctx.task_name + ".sql").write_text(sql + "\n")

        db = ctx.sql(connection)
        for statement in (s.strip() for s in sql.split(";")):
            if statement and not all(line.startswith("--") for line in statement.splitlines()):
                db.execute(statement)

        target = str(task_config.params["target_table"])
        rows = db.query(f"SELECT * FROM {target}")
        bytes_processed = sum(len(json.dumps(r, default=str)) for r in rows.rows)
        cost = bytes_processed / (1024 ** 4) * self.config.cost_per_tb

        ctx.metrics.record("bytes_processed", bytes_processed, labels={
            "task": ctx.task_name,
            "workflow": ctx.workflow_name,
        })
        ctx.log.info("%s: %d rows in %s on %s", task_config.file, len(rows), target, connection)

        lineage = []
        for up in upstream.values():
            if isinstance(up, dict) and "target_table" in up:
                lineage.extend(up.get("lineage", []))
                lineage.append(up["target_table"])
        return TaskOutput(
            target_table=target,
            rows_affected=len(rows),
            bytes_processed=bytes_processed,
            estimated_cost_usd=round(cost, 12),
            lineage=lineage,
        )
