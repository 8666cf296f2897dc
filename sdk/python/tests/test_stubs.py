"""The type stubs (ork/__init__.pyi) against the module: what an editor
shows must be what runs in the sandbox."""

import ast
import inspect
from pathlib import Path

import ork

STUB = Path(ork.__file__).with_name("__init__.pyi")

_KINDS = {
    "posonlyargs": inspect.Parameter.POSITIONAL_ONLY,
    "args": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "kwonlyargs": inspect.Parameter.KEYWORD_ONLY,
}


def _stub():
    return ast.parse(STUB.read_text(), str(STUB))


def _is_public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


def _decorators(fn: ast.FunctionDef) -> set[str]:
    return {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}


def _stub_params(fn: ast.FunctionDef):
    """(name, kind, has_default) for each parameter of a stub function."""
    a = fn.args
    out = []
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, default in zip(positional, defaults):
        kind = _KINDS["posonlyargs"] if arg in a.posonlyargs else _KINDS["args"]
        out.append((arg.arg, kind, default is not None))
    if a.vararg:
        out.append((a.vararg.arg, inspect.Parameter.VAR_POSITIONAL, False))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, inspect.Parameter.KEYWORD_ONLY, default is not None))
    if a.kwarg:
        out.append((a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, False))
    return out


def _runtime_params(fn):
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty) for p in inspect.signature(fn).parameters.values()
    ]


def _members(body):
    """Functions of a stub body grouped by name (overloads together)."""
    out: dict[str, list[ast.FunctionDef]] = {}
    for n in body:
        if isinstance(n, ast.FunctionDef):
            out.setdefault(n.name, []).append(n)
    return out


def _check_function(where, defs, runtime_obj, problems):
    if all("property" in _decorators(d) for d in defs):
        if not isinstance(runtime_obj, property):
            problems.append(f"{where} is a property in the stub but not at runtime")
        return
    if isinstance(runtime_obj, property):
        problems.append(f"{where} is a property at runtime but a method in the stub")
        return
    fn = runtime_obj.__func__ if isinstance(runtime_obj, (staticmethod, classmethod)) else runtime_obj
    want = _runtime_params(fn)
    overloaded = len(defs) > 1
    for d in defs:
        got = _stub_params(d)
        if overloaded:
            # An overload may narrow the defaults, not the names or kinds.
            got, cmp = [(n, k) for n, k, _ in got], [(n, k) for n, k, _ in want]
        else:
            cmp = want
        if got != cmp:
            problems.append(f"{where}: the stub has parameters {got}, the module {cmp}")


def test_stub_matches_the_module():
    problems = []
    tree = _stub()
    stub_classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    stub_functions = _members(tree.body)
    stub_public = {n for n in list(stub_classes) + list(stub_functions) if not n.startswith("_")}
    for n in tree.body:
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and not n.target.id.startswith("_"):
            stub_public.add(n.target.id)

    runtime_public = set(ork.__all__) | {"EXECUTOR_MARK"}
    assert stub_public - {"__version__"} == runtime_public, "public names differ between the stub and ork.__all__"

    for name, defs in stub_functions.items():
        if not name.startswith("_"):
            _check_function(name, defs, getattr(ork, name), problems)

    for name, node in stub_classes.items():
        if name.startswith("_"):
            continue
        cls = getattr(ork, name)
        assert inspect.isclass(cls), name
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        assert [c.__name__ for c in cls.__bases__ if c is not object] == bases, f"{name}: bases differ"
        members = _members(node.body)
        for member, defs in members.items():
            if not _is_public(member) and member not in ("__iter__", "__len__", "__getitem__"):
                continue
            runtime_obj = inspect.getattr_static(cls, member, None)
            if runtime_obj is None:
                problems.append(f"{name}.{member} is in the stub but not in the module")
                continue
            if member == "__init__" and runtime_obj is object.__init__:
                problems.append(f"{name}.__init__ is in the stub but the class has none")
                continue
            _check_function(f"{name}.{member}", defs, runtime_obj, problems)
        annotated = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
        # Every public method and property of the class is in the stub.
        for member, value in vars(cls).items():
            if member.startswith("_"):
                continue
            if callable(value) or isinstance(value, (property, staticmethod, classmethod)):
                if member not in members and member not in annotated:
                    problems.append(f"{name}.{member} is in the module but not in the stub")
        # ... and so is __init__, when the class defines one (Context is made
        # by the SDK, not by users: its stub leaves the constructor out).
        if "__init__" in vars(cls) and "__init__" not in members and name != "Context":
            problems.append(f"{name}.__init__ is in the module but not in the stub")
    assert problems == []


def test_every_public_member_of_the_stub_has_a_docstring():
    missing = []
    tree = _stub()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            if not ast.get_docstring(node):
                missing.append(node.name)
            for member, defs in _members(node.body).items():
                if not member.startswith("_") and not any(ast.get_docstring(d) for d in defs):
                    missing.append(f"{node.name}.{member}")
    for name, defs in _members(tree.body).items():
        if not name.startswith("_") and not any(ast.get_docstring(d) for d in defs):
            missing.append(name)
    assert missing == []


def test_stub_docstrings_are_the_modules():
    """The stub's docstrings are copies: kept in step with the code."""
    differ = []
    tree = _stub()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
            continue
        cls = getattr(ork, node.name)
        for member, defs in _members(node.body).items():
            doc = next((ast.get_docstring(d) for d in defs if ast.get_docstring(d)), None)
            if doc is None:
                continue
            obj = inspect.getattr_static(cls, member)
            obj = obj.fget if isinstance(obj, property) else obj
            if inspect.cleandoc(obj.__doc__ or "") != doc:
                differ.append(f"{node.name}.{member}")
    for name, defs in _members(tree.body).items():
        doc = next((ast.get_docstring(d) for d in defs if ast.get_docstring(d)), None)
        if doc is not None and inspect.cleandoc(getattr(ork, name).__doc__ or "") != doc:
            differ.append(name)
    assert differ == [], "copy the docstrings of these from the module into ork/__init__.pyi"
