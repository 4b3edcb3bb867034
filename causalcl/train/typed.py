"""Typed configuration values: every value is parsed to its declared type, or refused naming the key.

``coerce(key, hint, value)`` turns what a YAML file or ``--set key=value`` gave into the type ``hint`` of the
config field (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``tuple[float, ...]``, ``list[str]``,
``dict``): ``1e-3``, ``2E-4`` and ``1e2`` are numbers (YAML 1.1 readers keep an exponent without a dot as a
string), ``1e2`` and ``100.0`` are the integer 100, ``true``/``false`` are booleans, and a value of the wrong
type raises ``ValueError("optim.lr: expected a number, got 'abc'")``.

``YAML_LOADER`` is ``yaml.SafeLoader`` (no Python tags, no code) that also reads ``1e-3`` as a float.
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any, Union, get_args, get_origin

import yaml

__all__ = ["YAML_LOADER", "coerce", "coerce_kwargs", "parse_number", "show"]

_NUMBER = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?$")
_NONE_WORDS = ("null", "none", "~")
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also resolves ``1e-3`` / ``2E-4`` / ``1e2`` (no dot) as floats, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*)(?:\.[\d_]*)?[eE][-+]?\d+$"), list("-+0123456789"))
YAML_LOADER = _Loader


def show(value: Any) -> str:
    """A value as it reads in a message: ``0.002``, ``simclr``, ``[0.2, 1.0]``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    return str(value)


def parse_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number or a string that spells one (``'1e-3'``); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip().replace("_", ""))
    return None


def _expected(key: str, what: str, value: Any) -> ValueError:
    return ValueError(f"{key}: expected {what}, got {value!r}")


def _to_float(key: str, value: Any) -> float:
    number = parse_number(value)
    if number is None:
        raise _expected(key, "a number", value)
    if not math.isfinite(number):
        raise _expected(key, "a finite number", value)
    return number


def _to_int(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = parse_number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        raise _expected(key, "an integer", value)
    return int(number)


def _to_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise _expected(key, "true or false", value)


def _to_str(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):  # a folder named 2024, a device index
        return str(value)
    raise _expected(key, "a string", value)


def _to_sequence(key: str, hint: Any, value: Any) -> tuple | list:
    origin, args = get_origin(hint), get_args(hint)
    if isinstance(value, str) and origin is list:  # a bare word or a comma list: intervene_on=bg_texture,fg_hue
        value = [part.strip() for part in value.split(",") if part.strip()]
    fixed = origin is tuple and args and args[-1] is not Ellipsis
    if not isinstance(value, list | tuple) or (fixed and len(value) != len(args)):
        raise _expected(key, f"a list of {len(args) if fixed else ''} {_describe(hint)}".replace("  ", " "), value)
    if fixed:
        return tuple(coerce(f"{key}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    item = args[0] if args else Any
    items = [coerce(f"{key}[{i}]", item, v) for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    names = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
    if origin in (tuple, list) and args:
        return names.get(args[0], "values")
    return "values"


def coerce(key: str, hint: Any, value: Any) -> Any:
    """``value`` parsed to the type ``hint`` of config key ``key``; ``ValueError`` naming the key when it cannot be."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        optional = len(options) < len(args)
        if optional and (value is None or (str not in options and isinstance(value, str)
                                           and value.strip().lower() in _NONE_WORDS)):
            return None
        if len(options) == 1:
            return coerce(key, options[0], value)
        for option in options:
            try:
                return coerce(key, option, value)
            except ValueError:
                continue
        raise _expected(key, " or ".join(_describe(o) for o in options), value)
    if hint is Any:
        return value
    if value is None:
        raise _expected(key, {int: "an integer", float: "a number", bool: "true or false",
                              str: "a string"}.get(hint, "a value"), value)
    if hint is bool:
        return _to_bool(key, value)
    if hint is int:
        return _to_int(key, value)
    if hint is float:
        return _to_float(key, value)
    if hint is str:
        return _to_str(key, value)
    if origin in (tuple, list) or hint in (tuple, list):
        return _to_sequence(key, hint, value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _expected(key, "a mapping (key: value)", value)
        return value
    return value


def coerce_kwargs(prefix: str, func: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``func`` (a method's or dataset's constructor) parsed to its annotated types.

    ``values`` names only arguments ``func`` takes (the caller checks the names); an argument whose annotation
    cannot be resolved keeps its value. Messages name the key as ``<prefix><name>`` (``method.temperature``)."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an annotation that does not resolve at run time: leave the values to the constructor
        hints = {}
    return {name: coerce(f"{prefix}{name}", hints[name], value) if name in hints else value
            for name, value in values.items()}
