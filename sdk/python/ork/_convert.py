"""Turning JSON config and params into the types user code declares.

Supported annotations: pydantic models (v1; v2 outside the sandbox),
dataclasses (nested ones too), TypedDicts, ``dict``/``Mapping``/``Any`` or no
annotation (the JSON as is), and inside those ``str``, ``int``, ``float``,
``bool``, ``None``, ``Optional``/unions, ``Literal``, enums, ``list[...]``,
``tuple[...]``, ``set[...]`` and ``dict[str, ...]``. Other annotations are
passed the JSON value unchecked.

Every problem is reported with the path of the setting as the user wrote it,
e.g. ``executors.bigquery.config.location``; all problems are collected, not
just the first.
"""

import types
import typing

from ._errors import ConfigError, a_type

_MISSING = object()
_NoneType = type(None)


def is_pydantic_model(tp) -> bool:
    """Whether ``tp`` is a pydantic model class (v1 or v2), detected without
    importing pydantic."""
    if not isinstance(tp, type):
        return False
    return is_pydantic_v2(tp) or (hasattr(tp, "parse_obj") and hasattr(tp, "__fields__"))


def is_pydantic_v2(tp) -> bool:
    return hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__dataclass_fields__")


def is_typeddict(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def describe(value) -> str:
    """``value`` as the user wrote it in YAML/JSON, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({text!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return a_type(value)


def type_name(tp) -> str:
    if tp is _NoneType or tp is None:
        return "null"
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean (true/false)"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type):
        if tp in (dict,) or is_dataclass_type(tp) or is_typeddict(tp) or is_pydantic_model(tp):
            return "a mapping"
        if tp in (list, tuple, set, frozenset):
            return "a list"
        return tp.__name__
    origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        return "a list"
    if origin is dict:
        return "a mapping"
    return str(tp).replace("typing.", "")


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _suggest(word: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _hints(tp) -> dict:
    """The resolved annotations of a class, falling back to the raw ones."""
    try:
        return typing.get_type_hints(tp)
    except Exception:
        return dict(getattr(tp, "__annotations__", {}))


class Converter:
    """Converts one JSON value to a declared type, collecting problems."""

    def __init__(self) -> None:
        self.problems: "list[str]" = []

    def fail(self, path: str, message: str):
        self.problems.append(f"{path}: {message}")
        return _MISSING

    def convert(self, value, tp, path: str):
        if tp is None or tp is typing.Any or tp is object:
            return value  # no annotation, or one that accepts anything
        if isinstance(tp, str) or isinstance(tp, typing.ForwardRef):
            return value  # an annotation we could not resolve: unchecked
        if tp is _NoneType:
            return value if value is None else self.fail(path, f"expected null, got {describe(value)}")
        if isinstance(tp, typing.TypeVar):
            return value
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return self.convert(value, typing.get_args(tp)[0], path)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(value, typing.get_args(tp), path)
        if origin is typing.Literal:
            allowed = typing.get_args(tp)
            if value in allowed and not any(type(value) is bool and type(a) is not bool for a in allowed):
                return value
            return self.fail(path, f"expected one of {', '.join(map(_literal, allowed))}, got {describe(value)}")
        if is_pydantic_model(tp):
            return self._pydantic(value, tp, path)
        if is_dataclass_type(tp):
            return self._dataclass(value, tp, path)
        if is_typeddict(tp):
            return self._typeddict(value, tp, path)
        if origin is not None:
            return self._generic(value, tp, origin, typing.get_args(tp), path)
        if tp is bool:
            return value if isinstance(value, bool) else self.fail(path, f"expected {type_name(tp)}, got {describe(value)}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return self.fail(path, f"expected an integer, got {describe(value)}")
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            return self.fail(path, f"expected a number, got {describe(value)}")
        if tp is str:
            return value if isinstance(value, str) else self.fail(path, f"expected a string, got {describe(value)}")
        if tp in (dict, list, tuple, set, frozenset):
            return self._generic(value, tp, tp, (), path)
        if isinstance(tp, type):
            import enum

            if issubclass(tp, enum.Enum):
                try:
                    return tp(value)
                except ValueError:
                    members = ", ".join(_literal(m.value) for m in tp)
                    return self.fail(path, f"expected one of {members}, got {describe(value)}")
        return value  # a type we do not check

    def _union(self, value, args, path):
        if value is None and _NoneType in args:
            return None
        options = [a for a in args if a is not _NoneType]
        if len(options) == 1:
            return self.convert(value, options[0], path)
        for option in options:
            trial = Converter()
            result = trial.convert(value, option, path)
            if not trial.problems:
                return result
        names = " or ".join(dict.fromkeys(type_name(a) for a in args))
        return self.fail(path, f"expected {names}, got {describe(value)}")

    def _generic(self, value, tp, origin, args, path):
        import collections.abc as abc

        if origin in (dict, abc.Mapping, abc.MutableMapping):
            if not isinstance(value, dict):
                return self.fail(path, f"expected a mapping, got {describe(value)}")
            if len(args) != 2:
                return value
            out = {}
            for k, v in value.items():
                key = self.convert(k, args[0], path)
                item = self.convert(v, args[1], _join(path, k))
                if key is not _MISSING and item is not _MISSING:
                    out[key] = item
            return out
        if origin in (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set, abc.Iterable):
            if not isinstance(value, list):
                return self.fail(path, f"expected a list, got {describe(value)}")
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(args) != len(value):
                    return self.fail(path, f"expected a list of {len(args)} items, got {len(value)}")
                items = [self.convert(v, a, _join(path, i)) for i, (v, a) in enumerate(zip(value, args))]
            else:
                item_type = args[0] if args else typing.Any
                items = [self.convert(v, item_type, _join(path, i)) for i, v in enumerate(value)]
            if origin in (tuple, set, frozenset):
                return origin(items)
            return items
        return value

    def _pydantic(self, value, tp, path):
        if value is None:
            value = {}
        try:
            if is_pydantic_v2(tp):
                return tp.model_validate(value)
            return tp.parse_obj(value)
        except Exception as e:
            if type(e).__name__ != "ValidationError" or not hasattr(e, "errors"):
                raise
            for err in e.errors():
                loc = [part for part in err.get("loc", ()) if part != "__root__"]
                where = path
                for part in loc:
                    where = _join(where, part)
                self.fail(where, err.get("msg", "invalid value"))
            return _MISSING

    def _dataclass(self, value, tp, path):
        import dataclasses

        if value is None:
            value = {}
        if not isinstance(value, dict):
            return self.fail(path, f"expected a mapping, got {describe(value)}")
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        hints = _hints(tp)
        kwargs = {}
        ok = True
        for key in value:
            if key not in fields:
                hint = _suggest(key, fields) or f" (known fields: {', '.join(fields) or 'none'})"
                self.fail(_join(path, key), "unknown field" + hint)
                ok = False
        for name, f in fields.items():
            if name in value:
                item = self.convert(value[name], hints.get(name, typing.Any), _join(path, name))
                if item is _MISSING:
                    ok = False
                else:
                    kwargs[name] = item
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(_join(path, name), f"required field is missing (expected {type_name(hints.get(name, typing.Any))})")
                ok = False
        if not ok:
            return _MISSING
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as e:
            return self.fail(path, str(e))

    def _typeddict(self, value, tp, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return self.fail(path, f"expected a mapping, got {describe(value)}")
        hints = _hints(tp)
        out = {}
        ok = True
        for key, item in value.items():
            if key not in hints:
                hint = _suggest(key, hints) or f" (known keys: {', '.join(hints) or 'none'})"
                self.fail(_join(path, key), "unknown key" + hint)
                ok = False
                continue
            converted = self.convert(item, hints[key], _join(path, key))
            if converted is _MISSING:
                ok = False
            else:
                out[key] = converted
        for key in getattr(tp, "__required_keys__", ()):
            if key not in value:
                self.fail(_join(path, key), f"required key is missing (expected {type_name(hints.get(key, typing.Any))})")
                ok = False
        return out if ok else _MISSING


def _literal(value) -> str:
    if value is None or isinstance(value, bool):
        return describe(value)
    return repr(value)


def convert(value, tp, path: str, header: str):
    """Converts ``value`` to ``tp``; raises :class:`ConfigError` (headed by
    ``header``, one line per problem) when it does not fit."""
    converter = Converter()
    result = converter.convert(value, tp, path)
    if converter.problems or result is _MISSING:
        problems = converter.problems or [f"{path}: invalid value"]
        raise ConfigError(header + "\n" + "\n".join("  " + p for p in problems), problems)
    return result


def config_value(value, tp):
    """The ``None`` of an absent config, as the declared type wants it."""
    if value is not None:
        return value
    if tp is None or tp is typing.Any or tp is dict or typing.get_origin(tp) is dict:
        return {}
    return None
