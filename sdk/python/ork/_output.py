"""Turning a task's return value into its JSON output."""

import json
import math

from ._errors import OutputError

_HINT = (
    "return JSON-compatible values (dict, list, str, int, float, bool, None), "
    "a dataclass or a pydantic model"
)


def _type_name(value) -> str:
    """The type of ``value``, qualified by its module unless built in."""
    tp = type(value)
    if tp.__module__ in ("builtins", "__main__", "__ork_task__"):
        return tp.__qualname__
    return f"{tp.__module__}.{tp.__qualname__}"


def _a_type_name(value) -> str:
    """``a datetime.datetime``, ``an object``: :func:`_type_name` with its article."""
    name = _type_name(value)
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def _key_path(path: str, key: str) -> str:
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def to_json(value, path: str = "output"):
    """``value`` as plain JSON data: dicts with str keys, lists, str, int,
    finite float, bool and None.

    Pydantic models (v1: through ``.json()``, so dates and the like come out
    as pydantic encodes them; v2: ``model_dump(mode="json")``) and dataclasses
    (field by field) are converted; tuples become lists. Anything else raises
    :class:`OutputError` naming where the offending value is.
    """
    return _walk(value, path, set())


def _walk(value, path: str, active: set):
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise OutputError(
            f"task output is not JSON-serializable: {path} is {value!r}, and JSON has no NaN or infinity",
            path,
        )
    cls = type(value)
    if isinstance(value, (dict, list, tuple)) or hasattr(cls, "__dataclass_fields__") or _is_model(cls):
        if id(value) in active:
            raise OutputError(f"task output is not JSON-serializable: {path} contains itself", path)
        active.add(id(value))
        try:
            return _container(value, cls, path, active)
        finally:
            active.discard(id(value))
    raise OutputError(f"task output is not JSON-serializable: {path} is {_a_type_name(value)}; {_HINT}", path)


def _container(value, cls, path: str, active: set):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k
            elif isinstance(k, int) and not isinstance(k, bool):
                key = str(k)
            else:
                raise OutputError(
                    f"task output is not JSON-serializable: {path} has a key of type {_type_name(k)} ({k!r}); "
                    "JSON object keys are strings",
                    path,
                )
            out[key] = _walk(v, _key_path(path, key), active)
        return out
    if isinstance(value, (list, tuple)):
        return [_walk(v, f"{path}[{i}]", active) for i, v in enumerate(value)]
    if hasattr(cls, "__dataclass_fields__") and not isinstance(value, type):
        import dataclasses

        return {f.name: _walk(getattr(value, f.name), f"{path}.{f.name}", active) for f in dataclasses.fields(value)}
    if _is_model(cls):
        return _model(value, path, active)
    raise OutputError(f"task output is not JSON-serializable: {path} is {_a_type_name(value)}; {_HINT}", path)


def _is_model(cls) -> bool:
    """Whether ``cls`` is a pydantic model class: v2 (``model_dump``) or v1
    (``__fields__``, ``json`` and ``dict``)."""
    if hasattr(cls, "model_dump") and hasattr(cls, "model_fields"):
        return True
    return hasattr(cls, "__fields__") and hasattr(cls, "json") and hasattr(cls, "dict")


def _model(value, path: str, active: set):
    if hasattr(value, "model_dump"):  # pydantic v2
        try:
            data = value.model_dump(mode="json")
        except Exception:
            data = value.model_dump()
        return _walk(data, path, active)
    try:
        data = json.loads(value.json())  # pydantic v1 encodes dates, decimals, enums, ...
    except (TypeError, ValueError):
        data = value.dict()  # let the walk say which field is the problem
    return _walk(data, path, active)

