"""Context facts, metrics and logging, through the mock host."""

import logging

import pytest

from ork import Context, HostError, Metrics, executor
from ork.testing import LogRecord, MetricPoint, MockHost


def test_context_facts():
    seen = {}

    def task(ctx, upstream, **params):
        seen.update(
            task=ctx.task_name,
            workflow=ctx.workflow_name,
            run_id=ctx.run_id,
            attempt=ctx.attempt,
            executor=ctx.executor_name,
            config_file=ctx.config_file,
            scratch=ctx.scratch_dir,
            output=ctx.output_dir,
            params=ctx.params,
            repr=repr(ctx),
        )
        assert isinstance(ctx, Context)
        assert isinstance(ctx.metrics, Metrics)
        assert isinstance(ctx.log, logging.Logger) and ctx.log.name == "ork.task"

    host = MockHost(
        task="load",
        workflow="sales",
        run_id="r-42",
        attempt=3,
        executor="py",
        config_file="tasks/load.yaml",
        scratch_dir="/tmp/s",
        output_dir="/tmp/o",
        params={"days": 7},
    )
    assert host.run_task(task).succeeded
    assert seen == {
        "task": "load",
        "workflow": "sales",
        "run_id": "r-42",
        "attempt": 3,
        "executor": "py",
        "config_file": "tasks/load.yaml",
        "scratch": "/tmp/s",
        "output": "/tmp/o",
        "params": {"days": 7},
        "repr": "<ork.Context task='load' workflow='sales' run_id='r-42' attempt=3>",
    }


def test_defaults():
    seen = {}

    @executor
    class Runner:
        def __init__(self, config):
            self.config = config

        def run(self, config_file, ctx, upstream={}):
            seen.update(config_file=ctx.config_file, arg=config_file, params=ctx.params, executor=ctx.executor_name)

    assert MockHost().run_executor(Runner).succeeded
    assert seen == {"config_file": None, "arg": "", "params": {}, "executor": "runner"}


def test_metrics_record():
    def task(ctx, upstream):
        ctx.metrics.record("rows", 42, labels={"task": ctx.task_name, "n": 3, "ok": True, "f": 1.5})
        ctx.metrics.record("ratio", 0.25)
        ctx.metrics.record("big", 2**60)

    outcome = MockHost(task="load").run_task(task)
    assert outcome.succeeded, outcome.error
    assert outcome.metrics == [
        MetricPoint("rows", 42.0, {"task": "load", "n": "3", "ok": "True", "f": "1.5"}),
        MetricPoint("ratio", 0.25, {}),
        MetricPoint("big", float(2**60), {}),
    ]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.record(1, 2), TypeError, "metric name must be a str"),
        (lambda m: m.record("x", "2"), TypeError, "value must be an int or float, not str"),
        (lambda m: m.record("x", True), TypeError, "not bool"),
        (lambda m: m.record("x", float("nan")), ValueError, "not a finite number"),
        (lambda m: m.record("x", float("inf")), ValueError, "not a finite number"),
        (lambda m: m.record("x", 10**400), ValueError, "too large"),
        (lambda m: m.record("x", 1, labels=["a"]), TypeError, "labels must be a dict"),
        (lambda m: m.record("x", 1, labels={1: "a"}), TypeError, "label names must be str"),
        (lambda m: m.record("x", 1, labels={"a": None}), TypeError, "label 'a' must be a str"),
    ],
)
def test_metrics_checked_before_sending(call, error, message):
    def task(ctx, upstream):
        with pytest.raises(error, match=message):
            call(ctx.metrics)

    outcome = MockHost().run_task(task)
    assert outcome.succeeded, outcome.error
    assert "metrics.record" not in outcome.calls


@pytest.mark.parametrize(
    "name, labels, message",
    [
        ("1rows", None, 'metric name "1rows" must match|metric name \'1rows\' must match'),
        ("rows", {"bad-label": "x"}, "label name 'bad-label' must match"),
    ],
)
def test_metrics_refused_by_the_host(name, labels, message):
    def task(ctx, upstream):
        with pytest.raises(HostError, match=message) as info:
            ctx.metrics.record(name, 1, labels=labels)
        assert info.value.op == "metrics.record"
        return "done"

    outcome = MockHost().run_task(task)
    assert outcome.output == "done"
    assert outcome.metrics == []


def test_an_uncaught_host_error_fails_the_task():
    def task(ctx, upstream):
        ctx.metrics.record("no good", 1)

    outcome = MockHost().run_task(task)
    assert not outcome.succeeded
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith("ork.HostError: metrics.record: metric name 'no good'")
    assert "ctx.metrics.record(\"no good\", 1)" in outcome.error.message
    assert "/ork/" not in outcome.error.message  # SDK frames trimmed


def test_task_logger_levels_and_fields():
    def task(ctx, upstream):
        ctx.log.debug("d")
        ctx.log.info("loaded %d rows", 3, extra={"rows": 3, "table": "users"})
        ctx.log.warning("w")
        ctx.log.error("e")
        ctx.log.critical("c")
        ctx.log.log(5, "below DEBUG: filtered by the logger's level")

    outcome = MockHost().run_task(task)
    assert outcome.logs == [
        LogRecord("debug", "d", {}),
        LogRecord("info", "loaded 3 rows", {"rows": 3, "table": "users"}),
        LogRecord("warn", "w", {}),
        LogRecord("error", "e", {}),
        LogRecord("error", "c", {}),
    ]


def test_root_logger_and_library_loggers():
    def task(ctx, upstream):
        logging.info("plain %s", "info")
        logging.debug("plain debug is below the root's INFO level")
        logging.getLogger("lib.sub").warning("from a library")
        logging.basicConfig(level=logging.DEBUG)  # a no-op: the root already has a handler

    outcome = MockHost().run_task(task)
    assert outcome.logs == [
        LogRecord("info", "plain info", {}),
        LogRecord("warn", "from a library", {"logger": "lib.sub"}),
    ]


def test_each_record_is_sent_once():
    def task(ctx, upstream):
        ctx.log.info("once")
        logging.getLogger("ork.task.child").info("child")
        logging.warning("root")

    outcome = MockHost().run_task(task)
    assert [r.message for r in outcome.logs] == ["once", "child", "root"]


def test_ctx_log_survives_root_reconfiguration(capsys):
    def task(ctx, upstream):
        logging.basicConfig(force=True, level=logging.WARNING)  # replaces the root's handlers
        ctx.log.info("still sent")
        logging.warning("now goes to stderr")
        logging.getLogger().handlers.clear()

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        outcome = MockHost().run_task(task)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [r.message for r in outcome.logs] == ["still sent"]
    assert "WARNING:root:now goes to stderr" in capsys.readouterr().err


def test_exceptions_and_odd_fields():
    class Odd:
        def __str__(self):
            return "odd!"

    def task(ctx, upstream):
        try:
            raise KeyError("k")
        except KeyError:
            ctx.log.exception("failed", extra={"obj": Odd(), "nan": float("nan"), "nested": {"t": (1, 2)}})

    outcome = MockHost().run_task(task)
    (record,) = outcome.logs
    assert record.level == "error"
    assert record.message.startswith("failed\nTraceback (most recent call last):")
    assert "KeyError: 'k'" in record.message
    assert record.fields == {"obj": "odd!", "nan": "nan", "nested": {"t": [1, 2]}}


def test_a_refused_record_goes_to_stderr(capsys, monkeypatch):
    from ork import _context

    monkeypatch.setattr(_context, "level_name", lambda levelno: "verbose")

    def task(ctx, upstream):
        ctx.log.info("hello")
        return "still fine"

    outcome = MockHost().run_task(task)
    assert outcome.output == "still fine"
    assert outcome.logs == []
    assert "ork: log record not sent (log: log level 'verbose'" in capsys.readouterr().err


def test_logging_is_restored_after_a_run():
    root = logging.getLogger()
    task_logger = logging.getLogger("ork.task")
    before = (list(root.handlers), root.level, list(task_logger.handlers), task_logger.level, task_logger.propagate)
    MockHost().run_task(lambda ctx, upstream: ctx.log.info("x"))
    assert (list(root.handlers), root.level, list(task_logger.handlers), task_logger.level, task_logger.propagate) == before


def test_ctx_log_outside_a_run_uses_normal_logging(caplog):
    ctx = Context({"task": "t"})
    with caplog.at_level(logging.INFO):
        ctx.log.info("not sent anywhere special")
    assert "not sent anywhere special" in caplog.text


def test_long_messages_are_cut():
    from ork import _context

    def task(ctx, upstream):
        ctx.log.info("x" * (_context._MAX_LOG_MESSAGE + 10))

    (record,) = MockHost().run_task(task).logs
    assert record.message.endswith(f"... ({_context._MAX_LOG_MESSAGE + 10} characters in all)")
