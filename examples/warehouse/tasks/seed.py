"""Loads the project's CSV files into source tables (replacing them)."""
import csv
from pathlib import Path


def seed(ctx, upstream, tables):
    conn = ctx.workflow_params.get("connection", "warehouse")
    db = ctx.sql(conn)
    loaded = {}
    for table, path in tables.items():
        with Path(path).open(newline="") as f:
            rows = list(csv.DictReader(f))
        columns = list(rows[0])
        db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"CREATE TABLE {table} ({', '.join(c + ' TEXT' for c in columns)})")
        marks = ", ".join(placeholder(conn, i) for i in range(1, len(columns) + 1))
        for row in rows:
            db.execute(f"INSERT INTO {table} VALUES ({marks})", [row[c] for c in columns])
        loaded[table] = len(rows)
        ctx.log.info("loaded %s rows into %s", len(rows), table)
    return {"connection": conn, "loaded": loaded}


def placeholder(conn, i):
    return f"${i}" if conn.endswith("_pg") else "?"
