"""The ``@executor`` class decorator (re-exported by :mod:`ork`)."""

from ._errors import a_type as _a_type

#: The attribute ``@executor`` sets on the classes it marks.
EXECUTOR_MARK = "__ork_executor__"


def executor(cls=None):
    """Marks a class as an ork executor, checking its shape when the class is
    defined.

    The class needs ``__init__(self, config)``, which receives the
    executor's ``config:`` from ork.yaml -- converted to the type
    ``config`` is annotated with (a pydantic model, a dataclass, a TypedDict,
    or a plain dict) -- and ``run(self, config_file, ctx, upstream={})``,
    whose return value becomes the task's output. A class that does not fit
    raises ``TypeError`` at once. Works as ``@executor`` and ``@executor()``.
    The class itself is returned unchanged, apart from the mark.
    """
    if cls is None:
        return executor
    check_executor(cls)
    setattr(cls, EXECUTOR_MARK, True)
    return cls


def check_executor(cls) -> None:
    """Raises ``TypeError`` explaining why ``cls`` cannot be an executor."""
    import inspect

    if not isinstance(cls, type):
        what = f"function {cls.__qualname__}" if inspect.isfunction(cls) else _a_type(cls)
        raise TypeError(f"@executor decorates a class, not {what}: put it on `class MyExecutor:`")
    name = cls.__qualname__
    init = getattr(cls, "__init__")
    if init is object.__init__:
        raise TypeError(
            f"@executor class {name} has no __init__: define `def __init__(self, config)` "
            "to receive the executor's config from ork.yaml"
        )
    _check_signature(name, "__init__", init, 2, "def __init__(self, config)", "take the executor's config")
    raw = inspect.getattr_static(cls, "run", None)
    if raw is None:
        raise TypeError(
            f"@executor class {name} has no run method: define "
            "`def run(self, config_file: str, ctx: Context, upstream: dict = {})`"
        )
    run = getattr(cls, "run")
    if not callable(run):
        raise TypeError(f"@executor class {name}: run is {_a_type(run)}, not a method")
    func = inspect.unwrap(run.__func__ if inspect.ismethod(run) else run)
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        raise TypeError(
            f"@executor class {name}: run must be a plain `def` that returns the output "
            "(tasks run synchronously, without an event loop)"
        )
    bound = isinstance(raw, (staticmethod, classmethod))
    _check_signature(
        name,
        "run",
        run,
        3 if bound else 4,
        "def run(self, config_file: str, ctx: Context, upstream: dict = {})",
        "take the task's config file, context and upstream outputs",
    )


def _check_signature(cls_name: str, method: str, func, nargs: int, form: str, purpose: str) -> None:
    import inspect

    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return  # a builtin or otherwise opaque callable: nothing to check
    try:
        sig.bind(*([None] * nargs))
    except TypeError:
        raise TypeError(
            f"@executor class {cls_name}: {method}{sig} must {purpose}, like `{form}`"
        ) from None
