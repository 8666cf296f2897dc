"""ork.testing.MockHost itself: the outcome API and the host's checks."""

import sys

import pytest

from ork import _abi
from ork.testing import ErrorReport, MockHost, Outcome


def test_outcome_of_a_success():
    outcome = MockHost().run_task(lambda ctx, upstream: {"ok": True})
    assert isinstance(outcome, Outcome)
    assert outcome.succeeded and outcome.exit_code == 0 and outcome.trap is None
    assert outcome.error is None and outcome.errors == []
    assert outcome.assert_succeeded() == {"ok": True}


def test_outcome_of_a_failure():
    def run(ctx, upstream):
        raise RuntimeError("boom")

    outcome = MockHost().run_task(run)
    assert not outcome.succeeded and outcome.exit_code == 1
    assert isinstance(outcome.error, ErrorReport)
    assert str(outcome.error).startswith("[exception] RuntimeError: boom")
    with pytest.raises(AssertionError, match=r"the task failed: \[exception\] RuntimeError: boom"):
        outcome.assert_succeeded()


def test_tiny_mailbox_exercises_growth_everywhere():
    def run(ctx, upstream):
        ctx.log.info("a log line longer than the mailbox", extra={"pad": "p" * 100})
        ctx.metrics.record("rows", 1)
        return {"upstream": upstream, "task": ctx.task_name}

    host = MockHost(task="a-task-name", upstream={"load": {"rows": list(range(50))}}, mailbox_size=16)
    outcome = host.run_task(run)
    assert outcome.succeeded, outcome.error
    assert outcome.output == {"upstream": {"load": {"rows": list(range(50))}}, "task": "a-task-name"}
    assert outcome.logs[0].fields == {"pad": "p" * 100}


@pytest.mark.parametrize(
    "op, value, trap",
    [
        ("log", {"level": "info"}, "log: request lacks the field 'message'"),
        ("log", {"level": "info", "message": "m", "extra": 1}, "log: unknown field 'extra' in the request"),
        ("metrics.record", {"name": "x", "value": True}, "metrics.record: field 'value' has the wrong type: True"),
        ("metrics.record", {"name": "x", "value": 1, "labels": {"a": 1}}, "metrics.record: label 'a' is not a string"),
        ("error.report", "oops", "error.report: request must be an object, got 'oops'"),
        ("x" * 65, None, "operation name of 65 bytes exceeds the 64-byte limit"),
    ],
)
def test_the_host_traps_malformed_requests(op, value, trap):
    def run(ctx, upstream):
        _abi.invoke(op, value)

    outcome = MockHost().run_task(run)
    assert outcome.trap == trap
    assert outcome.exit_code is None


def test_operations_before_hello_trap():
    from ork.testing import _Session

    session = _Session(MockHost(), "python")
    box = _abi.Mailbox(trigger=session.gate)
    with pytest.raises(_abi.Trap, match="task.info called before abi.hello"):
        box.call("task.info", b"null")
    with pytest.raises(_abi.Trap, match="the task has already ended"):
        box.call("abi.hello", b'{"abi":1}')


def test_wrong_abi_version_traps():
    from ork.testing import _Session

    box = _abi.Mailbox(trigger=_Session(MockHost(), "python").gate)
    with pytest.raises(_abi.Trap, match="built for ork host ABI v2, but this host speaks v1"):
        box.call("abi.hello", b'{"abi":2}')


def test_fetch_without_pending_traps():
    from ork.testing import _Session

    session = _Session(MockHost(), "python")
    box = bytearray(64)
    with pytest.raises(_abi.Trap, match="no pending response"):
        session.gate(box)


def test_upstream_defaults_to_an_empty_object():
    outcome = MockHost().run_task(lambda ctx, upstream: upstream)
    assert outcome.output == {}


def test_executor_spec_needs_a_colon():
    with pytest.raises(ValueError, match="expected MODULE:CLASS"):
        MockHost().run_executor("just.a.module")


def test_state_is_restored(project):
    path = project.write("tasks/x.py", "def run(ctx, upstream):\n    return 1\n")
    saved_path = list(sys.path)
    sentinel = object()
    sys.modules["__ork_task__"] = sentinel
    try:
        assert MockHost().run_task(path).output == 1
        assert sys.modules["__ork_task__"] is sentinel
    finally:
        del sys.modules["__ork_task__"]
    assert sys.path == saved_path


def test_metric_point_limit():
    def run(ctx, upstream):
        for _ in range(10_000):
            ctx.metrics.record("n", 1)
        ctx.metrics.record("n", 1)

    outcome = MockHost().run_task(run)
    assert len(outcome.metrics) == 10_000
    assert outcome.error.message.startswith("ork.HostError: metrics.record: a task may record at most 10000 metric points")
