"""A built-in python task: a plain function that gets the context, the
outputs of the tasks it depends on, and its params."""
import json
import logging
from pathlib import Path


def run(ctx, upstream, title):
    facts = upstream["build_facts"]
    summary = {
        "title": title,
        "tables": facts["lineage"] + [facts["target_table"]],
        "bytes_processed": facts["bytes_processed"],
        "estimated_cost_usd": facts["estimated_cost_usd"],
    }
    Path(ctx.output_dir, "summary.json").write_text(json.dumps(summary, indent=2))
    logging.info("summarized %d tables", len(summary["tables"]))
    return summary
