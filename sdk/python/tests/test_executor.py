"""The @executor decorator's checks."""

import pytest

import ork
from ork import Context, executor


def test_marks_and_returns_the_class():
    class Good:
        def __init__(self, config):
            pass

        def run(self, config_file: str, ctx: Context, upstream: dict = {}):
            return None

    assert executor(Good) is Good
    assert Good.__ork_executor__ is True
    assert getattr(Good, ork.EXECUTOR_MARK) is True


def test_with_parentheses():
    @executor()
    class Good:
        def __init__(self, config):
            pass

        def run(self, config_file, ctx, upstream):
            return None

    assert Good.__ork_executor__


def test_accepts_flexible_signatures():
    @executor
    class Flexible:
        def __init__(self, *args, **kwargs):
            pass

        def run(self, *args):
            return None

    @executor
    class Static:
        def __init__(self, cfg, extra=None):
            pass

        @staticmethod
        def run(config_file, ctx, upstream=None):
            return None


def test_inherited_methods():
    class Base:
        def __init__(self, config):
            self.config = config

        def run(self, config_file, ctx, upstream={}):
            return 1

    @executor
    class Child(Base):
        pass


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: executor(lambda config: None), "decorates a class, not function"),
        (lambda: executor(42), "decorates a class, not an int"),
    ],
)
def test_rejects_non_classes(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_missing_init():
    with pytest.raises(TypeError, match=r"class .*NoInit has no __init__: define `def __init__\(self, config\)`"):

        @executor
        class NoInit:
            def run(self, config_file, ctx, upstream={}):
                pass


def test_init_without_config():
    with pytest.raises(TypeError, match=r"__init__\(self\) must take the executor's config, like `def __init__\(self, config\)`"):

        @executor
        class NoConfig:
            def __init__(self):
                pass

            def run(self, config_file, ctx, upstream={}):
                pass


def test_init_with_too_many_required():
    with pytest.raises(TypeError, match=r"__init__\(self, config, other\)"):

        @executor
        class TooMany:
            def __init__(self, config, other):
                pass

            def run(self, config_file, ctx, upstream={}):
                pass


def test_missing_run():
    with pytest.raises(TypeError, match=r"has no run method: define `def run\(self, config_file: str, ctx: Context, upstream: dict = \{\}\)`"):

        @executor
        class NoRun:
            def __init__(self, config):
                pass


def test_run_not_callable():
    with pytest.raises(TypeError, match="run is an int, not a method"):

        @executor
        class RunIsData:
            run = 3

            def __init__(self, config):
                pass


def test_run_with_wrong_arity():
    with pytest.raises(TypeError, match=r"run\(self, ctx\) must take the task's config file, context and upstream outputs"):

        @executor
        class Short:
            def __init__(self, config):
                pass

            def run(self, ctx):
                pass


def test_run_without_upstream_default_needs_three_positional_arguments():
    @executor
    class NoDefault:
        def __init__(self, config):
            pass

        def run(self, config_file, ctx, upstream):
            pass


def test_async_run():
    with pytest.raises(TypeError, match="run must be a plain `def`"):

        @executor
        class Async:
            def __init__(self, config):
                pass

            async def run(self, config_file, ctx, upstream={}):
                pass


def test_generator_run():
    with pytest.raises(TypeError, match="run must be a plain `def`"):

        @executor
        class Gen:
            def __init__(self, config):
                pass

            def run(self, config_file, ctx, upstream={}):
                yield 1
