"""Executor config validation by the annotation of __init__'s config, and
python task params by the function's annotations."""

import dataclasses
import enum
import sys
from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict

import pytest

from ork import ConfigError, executor
from ork.testing import MockHost


def make_executor(config_type, seen):
    @executor
    class Ex:
        def __init__(self, config: config_type):
            seen.append(config)

        def run(self, config_file, ctx, upstream={}):
            return "ok"

    return Ex


def run_config(config_type, config, name="bq"):
    seen = []
    outcome = MockHost(executor=name, config=config).run_executor(make_executor(config_type, seen))
    return outcome, (seen[0] if seen else None)


def problems(outcome):
    assert not outcome.succeeded
    assert outcome.error.kind == "config", outcome.error
    header, *lines = outcome.error.message.split("\n")
    assert header == "invalid config for executor `bq` in ork.yaml:"
    return [line.strip() for line in lines]


# --- dict / unannotated ---------------------------------------------------------


@pytest.mark.parametrize("config_type", [None, dict, Dict[str, Any], Any])
def test_plain_dict_configs(config_type):
    seen = []

    if config_type is None:

        @executor
        class Ex:
            def __init__(self, config):
                seen.append(config)

            def run(self, config_file, ctx, upstream={}):
                return None

    else:
        Ex = make_executor(config_type, seen)
    assert MockHost(config={"a": [1, {"b": None}]}).run_executor(Ex).succeeded
    assert MockHost(config=None).run_executor(Ex).succeeded
    assert seen == [{"a": [1, {"b": None}]}, {}]


def test_dict_config_must_be_a_mapping():
    outcome, _ = run_config(dict, [1, 2])
    assert problems(outcome) == ["executors.bq.config: expected a mapping, got a list"]


# --- dataclasses ---------------------------------------------------------------


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclasses.dataclass
class Auth:
    user: str
    token: Optional[str] = None


@dataclasses.dataclass
class WarehouseConfig:
    project: str
    location: str = "US"
    cost_per_tb: float = 5.0
    retries: int = 3
    dry_run: bool = False
    tags: List[str] = dataclasses.field(default_factory=list)
    limits: Dict[str, int] = dataclasses.field(default_factory=dict)
    mode: Mode = Mode.SAFE
    tier: Literal["small", "large"] = "small"
    auth: Optional[Auth] = None
    window: Tuple[int, int] = (0, 24)
    anything: Any = None


def test_dataclass_config_is_built():
    outcome, cfg = run_config(
        WarehouseConfig,
        {
            "project": "p",
            "cost_per_tb": 6,
            "tags": ["a", "b"],
            "limits": {"rows": 10},
            "mode": "fast",
            "tier": "large",
            "auth": {"user": "me"},
            "window": [8, 18],
            "anything": {"x": [1]},
        },
    )
    assert outcome.succeeded, outcome.error
    assert cfg == WarehouseConfig(
        project="p",
        cost_per_tb=6.0,
        tags=["a", "b"],
        limits={"rows": 10},
        mode=Mode.FAST,
        tier="large",
        auth=Auth(user="me"),
        window=(8, 18),
        anything={"x": [1]},
    )
    assert isinstance(cfg.cost_per_tb, float)


def test_dataclass_config_problems_are_all_reported():
    outcome, _ = run_config(
        WarehouseConfig,
        {
            "projet": "p",
            "colour": 1,
            "cost_per_tb": "cheap",
            "retries": True,
            "dry_run": "yes",
            "tags": ["a", 2],
            "limits": {"rows": "many"},
            "mode": "slow",
            "tier": "medium",
            "auth": {"token": 5},
            "window": [1],
        },
    )
    assert problems(outcome) == [
        "executors.bq.config.projet: unknown field; did you mean 'project'?",
        "executors.bq.config.colour: unknown field (known fields: project, location, cost_per_tb, retries, dry_run, tags, limits, mode, tier, auth, window, anything)",
        "executors.bq.config.project: required field is missing (expected a string)",
        "executors.bq.config.cost_per_tb: expected a number, got a string ('cheap')",
        "executors.bq.config.retries: expected an integer, got true",
        "executors.bq.config.dry_run: expected a boolean (true/false), got a string ('yes')",
        "executors.bq.config.tags[1]: expected a string, got a number (2)",
        "executors.bq.config.limits.rows: expected an integer, got a string ('many')",
        "executors.bq.config.mode: expected one of 'fast', 'safe', got a string ('slow')",
        "executors.bq.config.tier: expected one of 'small', 'large', got a string ('medium')",
        "executors.bq.config.auth.user: required field is missing (expected a string)",
        "executors.bq.config.auth.token: expected a string, got a number (5)",
        "executors.bq.config.window: expected a list of 2 items, got 1",
    ]


def test_dataclass_config_absent():
    @dataclasses.dataclass
    class AllDefaults:
        location: str = "US"

    outcome, cfg = run_config(AllDefaults, None)
    assert outcome.succeeded and cfg == AllDefaults()
    outcome, _ = run_config(WarehouseConfig, None)
    assert problems(outcome) == ["executors.bq.config.project: required field is missing (expected a string)"]


def test_dataclass_config_not_a_mapping():
    outcome, _ = run_config(WarehouseConfig, "p")
    assert problems(outcome) == ["executors.bq.config: expected a mapping, got a string ('p')"]


def test_dataclass_post_init_errors_are_config_problems():
    @dataclasses.dataclass
    class Checked:
        percent: int

        def __post_init__(self):
            if not 0 <= self.percent <= 100:
                raise ValueError(f"percent must be between 0 and 100, got {self.percent}")

    outcome, _ = run_config(Checked, {"percent": 120})
    assert problems(outcome) == ["executors.bq.config: percent must be between 0 and 100, got 120"]


def test_integral_floats_are_accepted_for_ints_and_unions():
    @dataclasses.dataclass
    class Numbers:
        count: int
        either: "int | str"
        maybe: Optional[float] = None

    outcome, cfg = run_config(Numbers, {"count": 3.0, "either": "x", "maybe": None})
    assert outcome.succeeded and cfg == Numbers(count=3, either="x")
    outcome, _ = run_config(Numbers, {"count": 3.5, "either": [1]})
    assert problems(outcome) == [
        "executors.bq.config.count: expected an integer, got a number (3.5)",
        "executors.bq.config.either: expected an integer or a string, got a list",
    ]


def test_string_annotations_are_resolved(project):
    project.write(
        "future_cfg.py",
        """
        from __future__ import annotations
        import dataclasses
        from ork import executor

        @dataclasses.dataclass
        class Cfg:
            size: int

        @executor
        class Ex:
            def __init__(self, config: Cfg):
                self.config = config

            def run(self, config_file, ctx, upstream={}):
                return self.config.size
        """,
    )
    host = MockHost(executor="bq", config={"size": "big"})
    outcome = host.run_executor("future_cfg:Ex")
    assert problems(outcome) == ["executors.bq.config.size: expected an integer, got a string ('big')"]
    assert MockHost(config={"size": 2}).run_executor("future_cfg:Ex").output == 2


def test_unresolvable_annotation(project):
    project.write(
        "hidden_cfg.py",
        """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from ork import executor
        if TYPE_CHECKING:
            from somewhere import Cfg

        @executor
        class Ex:
            def __init__(self, config: Cfg):
                pass

            def run(self, config_file, ctx, upstream={}):
                pass
        """,
    )
    outcome = MockHost().run_executor("hidden_cfg:Ex")
    assert outcome.error.kind == "config"
    assert outcome.error.message.startswith("cannot resolve Ex.__init__'s annotation config: 'Cfg' (NameError")


# --- TypedDict -------------------------------------------------------------------


class Inner(TypedDict):
    host: str


class ServiceConfig(TypedDict, total=False):
    url: str
    timeout: float
    inner: Inner


class RequiredConfig(TypedDict):
    url: str
    port: int


def test_typeddict_config():
    outcome, cfg = run_config(ServiceConfig, {"url": "http://x", "timeout": 2, "inner": {"host": "h"}})
    assert outcome.succeeded, outcome.error
    assert cfg == {"url": "http://x", "timeout": 2.0, "inner": {"host": "h"}}
    assert type(cfg) is dict


def test_typeddict_problems():
    outcome, _ = run_config(RequiredConfig, {"url": 1, "prot": 80})
    assert problems(outcome) == [
        "executors.bq.config.url: expected a string, got a number (1)",
        "executors.bq.config.prot: unknown key; did you mean 'port'?",
        "executors.bq.config.port: required key is missing (expected an integer)",
    ]
    outcome, _ = run_config(ServiceConfig, {"inner": {}})
    assert problems(outcome) == ["executors.bq.config.inner.host: required key is missing (expected a string)"]


def test_typeddict_absent_config():
    outcome, cfg = run_config(ServiceConfig, None)
    assert outcome.succeeded and cfg == {}


# --- Optional config -----------------------------------------------------------------


def test_optional_config_may_be_absent():
    outcome, cfg = run_config(Optional[Auth], None)
    assert outcome.succeeded and cfg is None
    outcome, cfg = run_config(Optional[Auth], {"user": "u"})
    assert outcome.succeeded and cfg == Auth("u")


# --- pydantic ------------------------------------------------------------------------


def test_pydantic_v1_config(pydantic_v1):
    class Location(pydantic_v1.BaseModel):
        region: str
        zone: int = 1

    class BigQueryConfig(pydantic_v1.BaseModel):
        project: str
        location: str = "US"
        cost_per_tb: float = 5.0
        nested: Location = Location(region="eu")
        items: List[int] = []

    outcome, cfg = run_config(BigQueryConfig, {"project": "p", "cost_per_tb": "6.5", "nested": {"region": "us"}})
    assert outcome.succeeded, outcome.error
    assert isinstance(cfg, BigQueryConfig)
    assert cfg.cost_per_tb == 6.5 and cfg.nested.region == "us"

    outcome, _ = run_config(BigQueryConfig, {"cost_per_tb": "cheap", "nested": {"zone": "x"}, "items": [1, "two"]})
    assert problems(outcome) == [
        "executors.bq.config.project: field required",
        "executors.bq.config.cost_per_tb: value is not a valid float",
        "executors.bq.config.nested.region: field required",
        "executors.bq.config.nested.zone: value is not a valid integer",
        "executors.bq.config.items[1]: value is not a valid integer",
    ]


def test_pydantic_v1_absent_config_and_root_errors(pydantic_v1):
    class Defaults(pydantic_v1.BaseModel):
        location: str = "US"

    outcome, cfg = run_config(Defaults, None)
    assert outcome.succeeded and cfg.location == "US"

    class Both(pydantic_v1.BaseModel):
        a: int = 0
        b: int = 0

        @pydantic_v1.root_validator
        def check(cls, values):
            if values["a"] > values["b"]:
                raise ValueError("a must not exceed b")
            return values

    outcome, _ = run_config(Both, {"a": 2, "b": 1})
    assert problems(outcome) == ["executors.bq.config: a must not exceed b"]
    outcome, _ = run_config(Both, [1])
    assert problems(outcome)[0].startswith("executors.bq.config: ")


def test_pydantic_v1_extra_forbid(pydantic_v1):
    class Strict(pydantic_v1.BaseModel):
        project: str

        class Config:
            extra = "forbid"

    outcome, _ = run_config(Strict, {"project": "p", "projcet": "q"})
    assert problems(outcome) == ["executors.bq.config.projcet: extra fields not permitted"]


def test_pydantic_v1_model_in_a_dataclass(pydantic_v1):
    class Creds(pydantic_v1.BaseModel):
        key: str

    @dataclasses.dataclass
    class Outer:
        creds: Creds

    outcome, cfg = run_config(Outer, {"creds": {"key": "k"}})
    assert outcome.succeeded and cfg.creds.key == "k"
    outcome, _ = run_config(Outer, {"creds": {}})
    assert problems(outcome) == ["executors.bq.config.creds.key: field required"]


def test_pydantic_v1_in_a_module_with_the_spec_example(project, pydantic_v1):
    project.write(
        "executors/bigquery.py",
        """
        from ork import executor, Context
        from pydantic import BaseModel

        class BigQueryConfig(BaseModel):
            project: str
            location: str = "US"
            cost_per_tb: float = 5.0

        class TaskOutput(BaseModel):
            rows_affected: int
            estimated_cost_usd: float

        @executor
        class BigQueryExecutor:
            def __init__(self, config: BigQueryConfig):
                self.cost_per_tb = config.cost_per_tb

            def run(self, config_file: str, ctx: Context, upstream: dict[str, object] = {}) -> TaskOutput:
                ctx.metrics.record("bytes_processed", 2**40, labels={"task": ctx.task_name, "workflow": ctx.workflow_name})
                return TaskOutput(rows_affected=len(upstream), estimated_cost_usd=round(self.cost_per_tb, 4))
        """,
    )
    host = MockHost(task="stage_users", workflow="warehouse_refresh", executor="bigquery",
                    config={"project": "my-gcp-project", "location": "US", "cost_per_tb": 5.0},
                    config_file="sql/staging/users.yaml", upstream={"a": 1, "b": 2})
    outcome = host.run_executor("executors.bigquery:BigQueryExecutor")
    assert outcome.succeeded, outcome.error
    assert outcome.output == {"rows_affected": 2, "estimated_cost_usd": 5.0}
    assert outcome.metrics[0].labels == {"task": "stage_users", "workflow": "warehouse_refresh"}


def test_pydantic_v2_config_outside_the_sandbox(pydantic_v2):
    class Cfg(pydantic_v2.BaseModel):
        project: str
        cost_per_tb: float = 5.0

    outcome, cfg = run_config(Cfg, {"project": "p"})
    assert outcome.succeeded and cfg.project == "p"
    outcome, _ = run_config(Cfg, {"cost_per_tb": "x"})
    assert problems(outcome) == [
        "executors.bq.config.project: Field required",
        "executors.bq.config.cost_per_tb: Input should be a valid number, unable to parse string as a number",
    ]


def test_pydantic_v2_import_failure_is_explained(project):
    project.write(
        "v2exec.py",
        """
        raise ModuleNotFoundError("No module named 'pydantic_core._pydantic_core'", name="pydantic_core._pydantic_core")
        """,
    )
    outcome = MockHost().run_executor("v2exec:Ex")
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith(
        "pydantic v2 needs its native core (pydantic-core), which cannot run in the WebAssembly sandbox; "
        "use pydantic 1.10 (`pydantic<2`)\n\nModuleNotFoundError: No module named 'pydantic_core._pydantic_core'"
    )


# --- ConfigError raised by user code ---------------------------------------------------


def test_config_error_from_init():
    @executor
    class Picky:
        def __init__(self, config):
            if "dsn" not in config:
                raise ConfigError("executors.db.config.dsn is required: the database to connect to")

        def run(self, config_file, ctx, upstream={}):
            pass

    outcome = MockHost(config={}).run_executor(Picky)
    assert outcome.error.kind == "config"
    assert outcome.error.message == "executors.db.config.dsn is required: the database to connect to"


# --- python task params -------------------------------------------------------------------


def test_params_are_checked_by_annotation():
    @dataclasses.dataclass
    class Window:
        start: int
        end: int

    def run(ctx, upstream, days_back: int = 7, status: str = "active", window: Optional[Window] = None, free=None):
        return {"days_back": days_back, "window": window, "free": free}

    host = MockHost(config_file="tasks/users.yaml", params={"days_back": 3, "window": {"start": 1, "end": 2}, "free": [1]})
    outcome = host.run_task(run)
    assert outcome.output == {"days_back": 3, "window": {"start": 1, "end": 2}, "free": [1]}

    outcome = MockHost(config_file="tasks/users.yaml", params={"days_back": "3", "status": 1, "window": {"start": 1}}).run_task(run)
    assert outcome.error.kind == "config"
    assert outcome.error.message == (
        "invalid params in tasks/users.yaml:\n"
        "  params.days_back: expected an integer, got a string ('3')\n"
        "  params.status: expected a string, got a number (1)\n"
        "  params.window.end: required field is missing (expected an integer)"
    )


def test_params_must_be_a_mapping():
    outcome = MockHost(task="t", params=[1, 2]).run_task(lambda ctx, upstream: None)
    assert outcome.error.kind == "config"
    assert outcome.error.message == "params of task `t` must be a mapping of parameter names to values, got a list"


def test_params_signature_mismatch():
    def run(ctx, upstream, days_back: int):
        return days_back

    outcome = MockHost(config_file="tasks/a.yaml", params={"days": 1}).run_task(run)
    assert outcome.error.kind == "config"
    assert outcome.error.message == (
        "params in tasks/a.yaml do not match run(ctx, upstream, ...) (it is def run(ctx, upstream, days_back: int)): "
        "test_params_signature_mismatch.<locals>.run() got an unexpected keyword argument 'days'"
    )
    outcome = MockHost(config_file="tasks/a.yaml").run_task(run)
    assert "run() missing 1 required positional argument: 'days_back'" in outcome.error.message


def test_type_errors_inside_the_function_are_not_params_problems():
    def run(ctx, upstream):
        return len(5)

    outcome = MockHost().run_task(run)
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith("TypeError: object of type 'int' has no len()")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | Y unions")
def test_pep604_unions():
    @dataclasses.dataclass
    class U:
        a: "int | None" = None

    outcome, cfg = run_config(U, {"a": None})
    assert outcome.succeeded and cfg == U()
