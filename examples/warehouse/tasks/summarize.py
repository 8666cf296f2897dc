"""A built-in python task: reads the facts table and writes a summary."""
import json
import logging
from pathlib import Path


def run(ctx, upstream, title):
    facts = upstream["build_facts"]
    conn = ctx.workflow_params.get("connection", "warehouse")
    result = ctx.sql(conn).query(
        f"SELECT country, SUM(orders) AS orders, SUM(revenue) AS revenue FROM {facts['target_table']} "
        "GROUP BY country ORDER BY country"
    )
    by_country = {row["country"]: {"orders": int(row["orders"]), "revenue": round(float(row["revenue"]), 2)} for row in result}
    summary = {
        "title": title,
        "tables": facts["lineage"] + [facts["target_table"]],
        "by_country": by_country,
        "bytes_processed": facts["bytes_processed"],
        "estimated_cost_usd": facts["estimated_cost_usd"],
    }
    Path(ctx.output_dir, "summary.json").write_text(json.dumps(summary, indent=2))
    logging.info("summarized %d countries", len(by_country))
    return summary
