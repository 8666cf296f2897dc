"""The executors page's BigQuery executor, speaking BigQuery's REST API
(jobs.query, then jobs.getQueryResults until the job completes) through
ork's HTTP capability. The OAuth token is attached by the host to requests to
bigquery.googleapis.com; this code never sees it."""
import time
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, Template
from pydantic import BaseModel

from ork import Context, executor

API = "https://bigquery.googleapis.com/bigquery/v2"


class BigQueryConfig(BaseModel):
    project: str
    location: str = "US"
    cost_per_tb: float = 5.0
    api: str = API  # overridable for tests


class TaskConfig(BaseModel):
    file: str
    params: dict[str, str | int | float | bool | list[str]] = {}


class TaskOutput(BaseModel):
    rows_affected: int
    bytes_processed: int
    estimated_cost_usd: float
    job_id: str


@executor
class BigQueryExecutor:
    def __init__(self, config: BigQueryConfig):
        self.config = config

    def run(self, config_file: str, ctx: Context, upstream: dict[str, object] = {}) -> TaskOutput:
        task_config = TaskConfig(**yaml.safe_load(Path(config_file).read_text()))
        sql = Template(Path(task_config.file).read_text(), undefined=StrictUndefined).render(
            **{**task_config.params, **upstream}
        )
        base = f"{self.config.api}/projects/{self.config.project}"
        resp = ctx.http.post(f"{base}/queries", body={
            "query": sql,
            "useLegacySql": False,
            "location": self.config.location,
            "timeoutMs": 10000,
        })
        resp.raise_for_status()
        job = resp.json()
        job_id = job["jobReference"]["jobId"]
        while not job.get("jobComplete"):
            time.sleep(0.2)
            resp = ctx.http.get(f"{base}/queries/{job_id}?location={self.config.location}&timeoutMs=10000")
            resp.raise_for_status()
            job = resp.json()

        bytes_processed = int(job.get("totalBytesProcessed", 0))
        cost = bytes_processed / (1024 ** 4) * self.config.cost_per_tb
        ctx.metrics.record("bytes_processed", bytes_processed, labels={
            "task": ctx.task_name,
            "workflow": ctx.workflow_name,
        })
        return TaskOutput(
            rows_affected=int(job.get("numDmlAffectedRows") or job.get("totalRows") or 0),
            bytes_processed=bytes_processed,
            estimated_cost_usd=round(cost, 4),
            job_id=job_id,
        )
