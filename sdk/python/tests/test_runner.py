"""The runner: loading executors and task files as ork does, reporting
failures, trimming tracebacks, exits, and the host's entry point."""

import sys

import pytest

from ork import _abi, _main, executor
from ork.testing import MockHost

# --- class mode ------------------------------------------------------------------

TRANSFORM = """
    import logging
    from dataclasses import dataclass
    from ork import Context, executor

    @dataclass
    class TransformConfig:
        column: str
        factor: float = 1.0

    @executor
    class TransformExecutor:
        def __init__(self, config: TransformConfig):
            self.config = config

        def run(self, config_file: str, ctx: Context, upstream: dict = {}) -> dict:
            with open(config_file) as f:
                spec = f.read().strip()
            rows = upstream["load"]["rows"]
            logging.getLogger(__name__).info("scaling", extra={"rows": len(rows)})
            return {"spec": spec, "scaled": [r[self.config.column] * self.config.factor for r in rows]}
    """


def test_class_mode_through_the_entry_point(project):
    project.write("executors/__init__.py", "")
    project.write("executors/transform.py", TRANSFORM)
    project.write("tasks/t.yaml", "scale: all\n")
    host = MockHost(
        executor="transform",
        config={"column": "v", "factor": 2},
        config_file="tasks/t.yaml",
        upstream={"load": {"rows": [{"v": 1}, {"v": 2.5}]}},
    )
    outcome = host.run_main(["class", "executors.transform:TransformExecutor"])
    assert outcome.succeeded, outcome.error
    assert outcome.exit_code == 0
    assert outcome.output == {"spec": "scale: all", "scaled": [2.0, 5.0]}
    assert outcome.logs[0].fields == {"rows": 2, "logger": "executors.transform"}
    assert outcome.calls == [
        "abi.hello", "task.info", "executor.config", "task.params", "upstream", "log", "output.set",
    ]


def test_missing_module(project):
    outcome = MockHost(executor="bq").run_executor("nopkg.nope:X")
    assert outcome.exit_code == 1
    assert outcome.error.kind == "config"
    assert outcome.error.message == (
        "executor `bq`: no module named 'nopkg' (ork.yaml executors.bq.type: nopkg.nope:X); "
        "modules are found in the project directory and the directories of python.path in ork.yaml"
    )


def test_missing_class(project):
    project.write("things.py", TRANSFORM)
    outcome = MockHost(executor="t").run_executor("things:TransformExecuter")
    assert outcome.error.kind == "config"
    assert outcome.error.message == (
        "executor `t`: module 'things' has no class 'TransformExecuter' "
        "(ork.yaml executors.t.type: things:TransformExecuter); did you mean 'TransformExecutor'?"
    )
    outcome = MockHost(executor="t").run_executor("things:Zzz")
    assert outcome.error.message.endswith("; it defines TransformConfig, TransformExecutor")


def test_class_that_is_not_an_executor(project):
    project.write("plain.py", "class Plain:\n    pass\n")
    outcome = MockHost(executor="p").run_executor("plain:Plain")
    assert outcome.error.kind == "config"
    assert outcome.error.message.startswith("executor `p` (plain:Plain): @executor class Plain has no __init__")


def test_undecorated_classes_with_the_right_shape_run(project):
    project.write(
        "undecorated.py",
        """
        class Ex:
            def __init__(self, config):
                self.config = config
            def run(self, config_file, ctx, upstream={}):
                return self.config
        """,
    )
    assert MockHost(config={"a": 1}).run_executor("undecorated:Ex").output == {"a": 1}


def test_third_party_import_error_has_a_hint(project):
    project.write("needs.py", "import not_installed_anywhere\n")
    outcome = MockHost().run_executor("needs:X")
    assert outcome.error.kind == "exception"
    message = outcome.error.message
    assert message.startswith("ModuleNotFoundError: No module named 'not_installed_anywhere'\nTraceback")
    assert 'File "' in message and "needs.py\", line 1, in <module>" in message
    assert "importlib" not in message and "/ork/" not in message
    assert message.endswith("`ork python install` (packages with native extensions cannot be used).")


def test_exception_in_init_and_run():
    @executor
    class Broken:
        def __init__(self, config):
            if config.get("fail_init"):
                raise ValueError("bad init")

        def run(self, config_file, ctx, upstream={}):
            raise KeyError("missing")

    outcome = MockHost(config={"fail_init": True}).run_executor(Broken)
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith("ValueError: bad init\nTraceback (most recent call last):\n")
    assert 'raise ValueError("bad init")' in outcome.error.message
    outcome = MockHost().run_executor(Broken)
    assert outcome.error.message.startswith("KeyError: 'missing'\nTraceback")


# --- function mode ---------------------------------------------------------------

LOAD = """
    import helpers

    class NoRows(Exception):
        pass

    def run(ctx, upstream, days_back: int = 7):
        return {"days_back": days_back, "double": helpers.double(days_back), "module": __name__}

    def fails(ctx, upstream):
        return step()

    def step():
        try:
            {}["k"]
        except KeyError as e:
            raise NoRows("no rows for region eu") from e

    def exits(ctx, upstream, code=3):
        import sys
        sys.exit(code)

    async def later(ctx, upstream):
        pass

    NOT_A_FUNCTION = 3
    """


@pytest.fixture
def load_task(project):
    project.write("tasks/helpers.py", "def double(n):\n    return 2 * n\n")
    return project.write("tasks/load.py", LOAD)


def test_function_mode(load_task):
    outcome = MockHost(params={"days_back": 3}).run_task(load_task)
    assert outcome.output == {"days_back": 3, "double": 6, "module": "__ork_task__"}
    assert _main.TASK_MODULE not in sys.modules  # the mock host cleans up
    outcome = MockHost().run_main(["function", load_task, "run"])
    assert outcome.output["days_back"] == 7


def test_function_mode_exception_traceback(load_task):
    outcome = MockHost().run_task(load_task, "fails")
    assert outcome.exit_code == 1
    assert outcome.error.kind == "exception"
    message = outcome.error.message
    head, rest = message.split("\n", 1)
    assert head == "NoRows: no rows for region eu"  # no __ork_task__. prefix
    assert "KeyError: 'k'\n\nThe above exception was the direct cause of the following exception:" in rest
    assert 'tasks/load.py", line 11, in fails\n    return step()' in rest
    assert 'tasks/load.py", line 17, in step' in rest
    assert "ork/_main.py" not in message and "call_user" not in message


def test_function_mode_missing_things(load_task):
    host = MockHost(config_file="tasks/load.yaml")
    outcome = host.run_task(load_task, "nope")
    assert outcome.error.kind == "config"
    assert outcome.error.message == (
        "python task file tasks/load.py has no function 'nope' (function: in tasks/load.yaml); "
        "it defines exits, fails, later, run, step"
    )
    outcome = host.run_task(load_task, "NOT_A_FUNCTION")
    assert outcome.error.message == "tasks/load.py: NOT_A_FUNCTION is an int, not a function (function: in tasks/load.yaml)"
    outcome = host.run_task(load_task, "NoRows")
    assert "NoRows is a type, not a function" in outcome.error.message
    outcome = host.run_task(load_task, "later")
    assert outcome.error.message == "tasks/load.py: later must be a plain `def` that returns the output (tasks run synchronously)"
    outcome = host.run_task("tasks/nope.py")
    assert outcome.error.message == "python task file tasks/nope.py does not exist (file: in tasks/load.yaml)"


def test_syntax_error_in_task_file(project):
    path = project.write("tasks/bad.py", "def run(ctx, upstream):\n    return (\n")
    outcome = MockHost().run_task(path)
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith('  File "')
    assert "SyntaxError: '(' was never closed" in outcome.error.message


def test_sys_exit(load_task):
    outcome = MockHost().run_task(load_task, "exits")
    assert outcome.exit_code == 1
    assert outcome.error.kind == "exit"
    assert outcome.error.message.startswith("the task exited with status 3 (sys.exit(3))\nTraceback")
    assert "sys.exit(code)" in outcome.error.message

    outcome = MockHost(params={"code": "stopping early"}).run_task(load_task, "exits")
    assert outcome.error.kind == "exit"
    assert outcome.error.message.startswith("the task exited: stopping early")

    for code in (0, None):
        outcome = MockHost(params={"code": code}).run_task(load_task, "exits")
        assert outcome.succeeded and not outcome.output_set and outcome.errors == []


def test_keyboard_interrupt_is_reported():
    def run(ctx, upstream):
        raise KeyboardInterrupt()

    outcome = MockHost().run_task(run)
    assert outcome.error.kind == "exception"
    assert outcome.error.message.startswith("KeyboardInterrupt")


# --- the entry point ---------------------------------------------------------------


def test_main_exits_with_the_status(load_task):
    assert MockHost().run_main(["function", load_task, "run"]).exit_code == 0
    assert MockHost().run_main(["function", load_task, "fails"]).exit_code == 1


@pytest.mark.parametrize("argv", [[], ["class"], ["class", "nocolon"], ["function", "x.py"], ["bogus", "a", "b"]])
def test_unexpected_arguments(argv):
    outcome = MockHost().run_main(argv)
    assert outcome.exit_code == 1
    assert outcome.error.kind == "internal"
    assert "unexpected arguments" in outcome.error.message and "usage:" in outcome.error.message


def test_main_reads_sys_argv(load_task, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["-c", "function", load_task, "run"])
    outcome = MockHost(params={"days_back": 1}).run_main(sys.argv[1:])
    assert outcome.output["days_back"] == 1


# --- host misbehaviour and traps ----------------------------------------------------------


def test_a_trap_stops_the_task():
    def run(ctx, upstream):
        try:
            _abi.invoke("no.such.op")
        except Exception:  # a trap cannot be caught like an error
            pass
        return "unreachable"

    outcome = MockHost().run_task(run)
    assert outcome.exit_code is None and not outcome.succeeded
    assert outcome.trap == "unknown operation 'no.such.op'"
    assert not outcome.output_set


def test_output_set_twice_is_refused():
    def run(ctx, upstream):
        _abi.invoke("output.set", 1)
        return 2

    outcome = MockHost().run_task(run)
    assert outcome.output == 1
    assert outcome.error.kind == "output"
    assert "the task output was already set" in outcome.error.message


def test_failed_hello_goes_to_stderr(capsys):
    class Refusing:
        def call(self, op, req):
            return 1, b'{"error":"go away"}'

    previous = _abi.set_transport(Refusing())
    try:
        assert _main.execute(_main.FunctionTarget(func=lambda ctx, upstream: None)) == 1
    finally:
        _abi.set_transport(previous)
    assert "ork: cannot start the task: abi.hello failed: abi.hello: go away" in capsys.readouterr().err


def test_report_falls_back_to_stderr(capsys):
    class NoReports:
        def call(self, op, req):
            answers = {
                "abi.hello": b'{"abi":1}',
                "task.info": b'{"task":"t"}',
                "executor.config": b"null",
                "task.params": b"null",
                "upstream": b"{}",
            }
            if op in answers:
                return 0, answers[op]
            return 1, b'{"error":"nope"}'

    previous = _abi.set_transport(NoReports())
    try:
        code = _main.execute(_main.FunctionTarget(func=lambda ctx, upstream: 1 / 0))
    finally:
        _abi.set_transport(previous)
    assert code == 1
    err = capsys.readouterr().err
    assert "ork: exception error: ZeroDivisionError: division by zero" in err
    assert "(error.report failed: error.report: nope)" in err


def test_bad_task_info_is_an_abi_error():
    class Weird:
        def call(self, op, req):
            if op == "abi.hello":
                return 0, b'{"abi":1}'
            if op == "task.info":
                return 0, b"[1]"
            return 0, b"null"

    reports = []

    class Recording(Weird):
        def call(self, op, req):
            if op == "error.report":
                reports.append(req)
            return super().call(op, req)

    previous = _abi.set_transport(Recording())
    try:
        assert _main.execute(_main.FunctionTarget(func=lambda ctx, upstream: None)) == 1
    finally:
        _abi.set_transport(previous)
    assert reports == [b'{"message":"task.info: unexpected response from the host: [1]","kind":"abi"}']


def test_mock_runs_do_not_nest():
    def run(ctx, upstream):
        with pytest.raises(RuntimeError, match="already in progress"):
            MockHost().run_task(lambda c, u: None)
        return "outer"

    assert MockHost().run_task(run).output == "outer"
