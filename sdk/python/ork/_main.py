"""The program ork runs in a Python task's sandbox.

The host starts the interpreter as::

    python -c "import ork._main; ork._main.main()" class MODULE:CLASS
    python -c "import ork._main; ork._main.main()" function FILE FUNC

:func:`main` greets the host, fetches the task's context, config, params and
upstream outputs, runs the user's executor or function, and hands back its
output -- or reports why the task failed, with an error kind (``config``,
``exception``, ``exit``, ``output``, ``abi``, ``internal``) and exit status 1.

:func:`execute` does all of that without exiting, so :mod:`ork.testing` runs
it in-process.
"""

import importlib
import os
import sys
import traceback

from . import _abi
from ._context import Context, install_logging
from ._errors import ConfigError, OrkError, OutputError, a_type
from ._executor import check_executor

#: The module name a python task's file is loaded as.
TASK_MODULE = "__ork_task__"

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))
# importlib's own frames: its package directory, and the path its code was
# compiled under (different in the sandbox's interpreter, whose stdlib is
# embedded).
_IMPORTLIB_DIRS = tuple(
    {
        os.path.dirname(os.path.abspath(importlib.__file__)),
        os.path.dirname(importlib.import_module.__code__.co_filename),
    }
)

PYDANTIC_V2_MESSAGE = (
    "pydantic v2 needs its native core (pydantic-core), which cannot run in the "
    "WebAssembly sandbox; use pydantic 1.10 (`pydantic<2`)"
)
_INSTALL_HINT = (
    "Only pure-Python packages run in the sandbox: add them to the project with "
    "`ork python install` (packages with native extensions cannot be used)."
)

USAGE = (
    'usage: python -c "import ork._main; ork._main.main()" class MODULE:CLASS\n'
    '       python -c "import ork._main; ork._main.main()" function FILE FUNC'
)


class Failure(Exception):
    """Ends the task with ``error.report {message, kind}`` and exit status 1."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _CleanExit(Exception):
    """User code called ``sys.exit(0)``: the task ends successfully, with the
    output set so far (none)."""


def main(argv=None):
    """Runs the task the host asked for (``sys.argv[1:]`` by default) and
    exits with its status: 0 on success, 1 on failure."""
    code = run(sys.argv[1:] if argv is None else argv)
    _flush()
    # sys.exit, not os._exit: the interpreter's shutdown still flushes and
    # closes files user code left open.
    sys.exit(code)


def run(argv) -> int:
    """Runs the task described by ``argv`` (``["class", "MODULE:CLASS"]`` or
    ``["function", FILE, FUNC]``); returns the exit status."""
    argv = list(argv)
    target: "ClassTarget | FunctionTarget | _BadArgs"
    if len(argv) == 2 and argv[0] == "class" and ":" in argv[1]:
        target = ClassTarget(spec=argv[1])
    elif len(argv) == 3 and argv[0] == "function":
        target = FunctionTarget(file=argv[1], name=argv[2])
    else:
        target = _BadArgs(argv)
    return execute(target)


def execute(target) -> int:
    """Greets the host, gathers the task's inputs, runs ``target`` and stores
    its output; returns the exit status. Never raises, except
    :class:`ork._abi.Trap` from an in-process host."""
    try:
        _abi.hello()
    except _abi.Trap:
        raise
    except Exception as e:
        # Nothing but abi.hello may be called before it succeeds: say it on
        # stderr, which becomes the task's log.
        _stderr(f"ork: cannot start the task: abi.hello failed: {e}")
        return 1
    undo_logging = None
    try:
        try:
            info = _abi.invoke(_abi.OP_TASK_INFO)
            config = _abi.invoke(_abi.OP_EXECUTOR_CONFIG)
            params = _abi.invoke(_abi.OP_TASK_PARAMS)
            upstream = _abi.invoke(_abi.OP_UPSTREAM)
        except OrkError as e:
            raise Failure("abi", f"cannot fetch the task's inputs from the host: {e}") from None
        if not isinstance(info, dict):
            raise Failure("abi", f"task.info: unexpected response from the host: {info!r:.200}")
        ctx = Context(info, params if isinstance(params, dict) else None)
        undo_logging = install_logging()
        try:
            output = target.run(ctx, config, params, {} if upstream is None else upstream)
        except _CleanExit:
            return 0
        _store_output(output)
        return 0
    except _abi.Trap:
        raise
    except Failure as f:
        return _report(f.kind, f.message)
    except BaseException as e:  # a bug in the SDK itself
        return _report("internal", "ork SDK internal error: " + "".join(traceback.format_exception(e)).rstrip())
    finally:
        if undo_logging is not None:
            undo_logging()


def _store_output(output) -> None:
    from ._output import to_json

    try:
        data = to_json(output)
    except OutputError as e:
        raise Failure("output", str(e)) from None
    req = _abi.encode(data)
    if len(req) > _abi.MAX_REQUEST_BYTES:
        raise Failure(
            "output",
            f"task output is {len(req)} bytes of JSON, more than the {_abi.MAX_REQUEST_BYTES >> 20} MiB "
            "the host accepts; write large results to files in ctx.output_dir and return their paths",
        )
    try:
        _abi.call(_abi.OP_OUTPUT_SET, req)
    except OrkError as e:
        raise Failure("output", f"cannot store the task's output: {e}") from None


def _report(kind: str, message: str) -> int:
    try:
        _abi.invoke(_abi.OP_ERROR_REPORT, {"message": message, "kind": kind})
    except _abi.Trap:
        raise
    except Exception as e:
        _stderr(f"ork: {kind} error: {message}\n(error.report failed: {e})")
    return 1


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# --- targets -----------------------------------------------------------------


class _BadArgs:
    def __init__(self, argv) -> None:
        self.argv = argv

    def run(self, ctx, config, params, upstream):
        raise Failure("internal", f"the ork host started the Python runner with unexpected arguments {self.argv!r}\n{USAGE}")


class ClassTarget:
    """A custom executor: ``spec`` (``MODULE:CLASS``, imported like ork does)
    or ``cls`` (a class object, for tests)."""

    def __init__(self, spec: "str | None" = None, cls=None) -> None:
        self.spec = spec
        self.cls = cls

    def run(self, ctx, config, params, upstream):
        name = ctx.executor_name
        cls = self.cls if self.cls is not None else self._load(name)
        try:
            check_executor(cls)
        except TypeError as e:
            where = f" ({self.spec})" if self.spec else ""
            raise Failure("config", f"executor `{name}`{where}: {e}") from None
        config_type = _config_type(cls)
        from ._convert import config_value, convert

        try:
            value = convert(
                config_value(config, config_type),
                config_type,
                f"executors.{name}.config",
                f"invalid config for executor `{name}` in ork.yaml:",
            )
        except ConfigError as e:
            raise Failure("config", str(e)) from None
        instance = call_user(cls, (value,))
        config_file = ctx.config_file
        return call_user(instance.run, ("" if config_file is None else config_file, ctx, upstream))

    def _load(self, name: str):
        assert self.spec is not None
        module_name, _, class_path = self.spec.partition(":")
        where = f"ork.yaml executors.{name}.type: {self.spec}"
        try:
            module = call_user(importlib.import_module, (module_name,), importing=True)
        except Failure as f:
            cause = f.__cause__
            if isinstance(cause, ModuleNotFoundError) and _is_module_or_parent(cause.name, module_name):
                raise Failure(
                    "config",
                    f"executor `{name}`: no module named {cause.name!r} ({where}); modules are found "
                    f"in the project directory and the directories of python.path in ork.yaml",
                ) from None
            raise
        obj = module
        for part in class_path.split("."):
            found = getattr(obj, part, None)
            if found is None:
                classes = [k for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__]
                raise Failure(
                    "config",
                    f"executor `{name}`: module {module_name!r} has no class {class_path!r} ({where})"
                    + _did_you_mean(part, classes),
                )
            obj = found
        return obj


def _is_module_or_parent(missing, module_name: str) -> bool:
    return bool(missing) and (module_name == missing or module_name.startswith(missing + "."))


def _did_you_mean(word: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if choices:
        return f"; it defines {', '.join(sorted(choices))}"
    return ""


def _config_type(cls):
    """The annotation of ``__init__``'s config parameter (``None`` when it has
    none)."""
    import inspect

    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())
    except (TypeError, ValueError):
        return None
    if len(parameters) < 2 or parameters[1].annotation is inspect.Parameter.empty:
        return None
    param = parameters[1]
    import typing

    try:
        return typing.get_type_hints(inspect.unwrap(cls.__init__)).get(param.name, param.annotation)
    except Exception as e:
        if not isinstance(param.annotation, str):
            return param.annotation
        raise Failure(
            "config",
            f"cannot resolve {cls.__qualname__}.__init__'s annotation {param.name}: {param.annotation!r} "
            f"({type(e).__name__}: {e}); import the config type at module level",
        ) from None


class FunctionTarget:
    """A python task: function ``name`` of ``file`` (loaded like ork does), or
    ``func`` (a function object, for tests)."""

    def __init__(self, file: "str | None" = None, name: "str | None" = None, func=None) -> None:
        self.file = file
        self.name = name
        self.func = func

    def run(self, ctx, config, params, upstream):
        func = self.func if self.func is not None else self._load(ctx)
        name = getattr(func, "__name__", self.name or "run")
        if params is None:
            params = {}
        where = f"in {ctx.config_file}" if ctx.config_file else f"of task `{ctx.task_name}`"
        if not isinstance(params, dict):
            raise Failure("config", f"params {where} must be a mapping of parameter names to values, got {a_type(params)}")
        params = _convert_params(func, params, ctx, where)

        def explain(e: TypeError) -> Failure:
            return Failure(
                "config",
                f"params {where} do not match {name}(ctx, upstream, ...){_signature(func)}: {e}",
            )

        return call_user(func, (ctx, upstream), params, on_bind_error=explain)

    def _load(self, ctx):
        import importlib.util

        path = self.file
        where = f" (file: in {ctx.config_file})" if ctx.config_file else ""
        if not os.path.isfile(path):
            raise Failure("config", f"python task file {path} does not exist{where}")
        spec = importlib.util.spec_from_file_location(TASK_MODULE, path)
        if spec is None or spec.loader is None:
            raise Failure("config", f"python task file {path} cannot be loaded as a Python module{where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[TASK_MODULE] = module
        # Like `python tasks/load.py`: modules next to the file are importable.
        folder = os.path.dirname(path) or "."
        if folder not in sys.path:
            sys.path.insert(0, folder)
        call_user(spec.loader.exec_module, (module,), importing=True)
        func = getattr(module, self.name, None)
        fwhere = f" (function: in {ctx.config_file})" if ctx.config_file else ""
        if func is None:
            functions = [
                k for k, v in vars(module).items()
                if type(v).__name__ == "function" and getattr(v, "__module__", None) == TASK_MODULE
            ]
            raise Failure(
                "config",
                f"python task file {path} has no function {self.name!r}{fwhere}" + _did_you_mean(self.name, functions),
            )
        if not callable(func) or isinstance(func, type):
            raise Failure("config", f"{path}: {self.name} is {a_type(func)}, not a function{fwhere}")
        if _is_generator_or_async(func):
            raise Failure(
                "config",
                f"{path}: {self.name} must be a plain `def` that returns the output (tasks run synchronously)",
            )
        return func


# CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR (what inspect checks,
# without importing it).
_LAZY_CODE_FLAGS = 0x20 | 0x80 | 0x200


def _is_generator_or_async(func) -> bool:
    code = getattr(func, "__code__", None)
    return code is not None and bool(code.co_flags & _LAZY_CODE_FLAGS)


def _signature(func) -> str:
    import inspect

    try:
        return f" (it is def {getattr(func, '__name__', 'run')}{inspect.signature(func)})"
    except (TypeError, ValueError):
        return ""


def _convert_params(func, params: dict, ctx, where: str) -> dict:
    """Checks and converts params whose parameters are annotated."""
    annotations = getattr(func, "__annotations__", None)
    if not annotations or not any(k in annotations for k in params):
        return params
    import typing

    from ._convert import Converter, _MISSING

    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {k: v for k, v in annotations.items() if not isinstance(v, str)}
    converter = Converter()
    out = dict(params)
    for key, value in params.items():
        if key in hints and key not in ("ctx", "upstream", "return"):
            converted = converter.convert(value, hints[key], f"params.{key}")
            if converted is not _MISSING:
                out[key] = converted
    if converter.problems:
        raise Failure("config", f"invalid params {where}:\n" + "\n".join("  " + p for p in converter.problems))
    return out


# --- calling user code ---------------------------------------------------------


def call_user(func, args=(), kwargs=None, on_bind_error=None, importing=False):
    """Calls user code, turning what it raises into a :class:`Failure`.

    ``on_bind_error`` explains a ``TypeError`` raised while binding the
    arguments (before any user code ran). ``importing`` adds hints for
    missing modules.
    """
    try:
        return func(*args, **(kwargs or {}))
    except _abi.Trap:
        raise
    except SystemExit as e:
        code = e.code
        if code is None or code == 0:
            raise _CleanExit() from None
        if isinstance(code, int):
            message = f"the task exited with status {code} (sys.exit({code}))"
        else:
            message = f"the task exited: {code}"
        trace = format_traceback(e)
        raise Failure("exit", message + ("\n" + trace if trace else "")) from None
    except ConfigError as e:
        raise Failure("config", str(e)) from None
    except TypeError as e:
        if on_bind_error is not None and e.__traceback__ is not None and e.__traceback__.tb_next is None:
            raise on_bind_error(e) from None
        raise Failure("exception", format_exception(e, importing)) from e
    except BaseException as e:
        raise Failure("exception", format_exception(e, importing)) from e


def _keep(frame) -> bool:
    name = frame.filename
    if name.startswith("<frozen importlib"):
        return False
    if name.startswith("<"):
        return True
    path = os.path.abspath(name)
    return not any(path.startswith(d + os.sep) for d in (_SDK_DIR,) + _IMPORTLIB_DIRS)


def _trim(te, seen) -> None:
    if te is None or id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if _keep(f)])
    _trim(te.__cause__, seen)
    _trim(te.__context__, seen)
    for sub in getattr(te, "exceptions", None) or ():
        _trim(sub, seen)


def _tidy(text: str) -> str:
    return text.replace(TASK_MODULE + ".", "")


def _mentions_pydantic_core(e) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ImportError) and ("pydantic_core" in str(e) or "pydantic_core" in (e.name or "")):
            return True
        e = e.__cause__ or e.__context__
    return False


def format_traceback(e: BaseException) -> str:
    """The traceback of ``e`` through user code only (SDK and importlib frames
    dropped), without the final exception line; ``""`` when nothing is left."""
    te = traceback.TracebackException(type(e), e, e.__traceback__, compact=True)
    _trim(te, set())
    if not te.stack:
        return ""
    lines = ["Traceback (most recent call last):\n"] + list(te.stack.format())
    return _tidy("".join(lines)).rstrip()


def format_exception(e: BaseException, importing: bool = False) -> str:
    """``ExceptionType: message``, then the Python traceback through user code
    only (SDK and importlib frames dropped, chained exceptions kept)."""
    te = traceback.TracebackException(type(e), e, e.__traceback__, compact=True)
    _trim(te, set())
    head = _tidy("".join(te.format_exception_only())).rstrip()
    body = _tidy("".join(te.format())).rstrip()
    message = head if body == head else f"{head}\n{body}"
    if _mentions_pydantic_core(e):
        return f"{PYDANTIC_V2_MESSAGE}\n\n{message}"
    if importing and isinstance(e, ModuleNotFoundError):
        return f"{message}\n\n{_INSTALL_HINT}"
    return message
