"""No module under exporter/ holds a mutable cache or singleton: caches are objects the
composition root owns and passes down (`exporter/app.py`, e.g. `scrape.caches.ScrapeCaches`).

Every module-level assignment is read from the source (AST) and its value looked at once the
module is imported. Allowed: immutable values (numbers, strings, bytes, frozensets, compiled
regular expressions, MappingProxyType, functions and classes, enum members, loggers, tuples and
frozen dataclasses of allowed values), and plain dict/list/set constants that no code under
exporter/ ever changes (no item assignment or deletion, no mutating method, no `global`).
Anything else — a dict some function fills, an instance of a class with state — fails here
with its module and name.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import enum
import importlib
import logging
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "popitem",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "appendleft",
        "move_to_end",
        "__setitem__",
        "__delitem__",
    }
)
CONTAINERS = (dict, list, set, bytearray)

# (module, name) → why a value of this kind is not state
ALLOWED: dict[tuple[str, str], str] = {
    ("exporter.web.app", "STORE"): "an aiohttp AppKey: a typed name, no state",
    ("exporter.web.app", "REGISTRY"): "an aiohttp AppKey: a typed name, no state",
    ("exporter.parser.events", "UNPARSED"): "a sentinel: one instance by design, holds nothing",
}


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return names


def source(module: str) -> Path:
    path = PACKAGE.parent / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def assigned(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Names bound at module level (also inside top-level `if`/`try` blocks)."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.If | ast.Try):
            stack.extend(node.body + node.orelse + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    yield name.id, node.lineno


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _terminal_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def mutated_names() -> set[str]:
    """Names (bare or as `module.NAME`) changed in place anywhere under exporter/."""
    out: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Global):
                out.update(node.names)
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
                targets = (
                    node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                )
                for target in targets:
                    if isinstance(target, ast.Subscript):
                        name = _terminal_name(target.value)
                        if name:
                            out.add(name)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
            ):
                name = _terminal_name(node.func.value)
                if name:
                    out.add(name)
    return out


def immutable(value: object, depth: int = 0) -> bool:
    if depth > 5:
        return False
    if value is None or isinstance(
        value,
        bool
        | int
        | float
        | complex
        | str
        | bytes
        | range
        | slice
        | frozenset
        | re.Pattern
        | types.MappingProxyType
        | type
        | types.FunctionType
        | types.BuiltinFunctionType
        | types.MethodType
        | types.ModuleType
        | enum.Enum
        | logging.Logger
        | typing.TypeVar
        | datetime.date
        | datetime.timedelta
        | types.GenericAlias
        | types.UnionType,
    ):
        return True
    if type(value).__module__ in ("typing", "_collections_abc"):  # type aliases
        return True
    if isinstance(value, tuple):
        return all(immutable(v, depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = getattr(type(value), "__dataclass_params__", None)
        return bool(params and params.frozen) and all(
            immutable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        )
    return stateless(value)


def stateless(value: object) -> bool:
    """An instance that cannot hold state: no `__dict__`, and only empty `__slots__` (a
    sentinel such as parser.UNPARSED)."""
    if hasattr(value, "__dict__"):
        return False
    classes = [c for c in type(value).__mro__ if c is not object]
    return all(c.__dict__.get("__slots__", None) == () for c in classes)


def offenders() -> list[str]:
    mutated = mutated_names()
    found = []
    for module in modules():
        mod = importlib.import_module(module)
        tree = ast.parse(source(module).read_text(encoding="utf-8"))
        for name, line in assigned(tree):
            if name == "__all__" or (module, name) in ALLOWED or not hasattr(mod, name):
                continue
            value = getattr(mod, name)
            if immutable(value):
                continue
            if type(value) in CONTAINERS and name not in mutated:
                continue  # a constant table nobody changes
            found.append(f"{module}:{line} {name} ({type(value).__name__})")
    return found


def test_no_module_level_mutable_state() -> None:
    assert offenders() == []


def test_the_check_catches_a_cache_and_a_singleton(tmp_path: Path) -> None:
    """The rules above, on a module written the way the scrape caches used to be."""
    code = (
        "_CACHE: dict[str, int] = {}\n"
        "def get(k: str) -> int:\n"
        "    return _CACHE.setdefault(k, len(k))\n"
        "class Buffers:\n"
        "    def __init__(self) -> None:\n"
        "        self.free: list[bytearray] = []\n"
        "SHARED = Buffers()\n"
        "TABLE = {'a': 1}\n"
    )
    tree = ast.parse(code)
    namespace: dict[str, object] = {}
    exec(compile(tree, "<cache>", "exec"), namespace)
    mutated = {
        _terminal_name(n.func.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS
    }
    bad = [
        name
        for name, _ in assigned(tree)
        if not immutable(namespace[name])
        and not (type(namespace[name]) in CONTAINERS and name not in mutated)
    ]
    assert bad == ["_CACHE", "SHARED"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (frozenset({1}), True),
        (re.compile("x"), True),
        (types.MappingProxyType({}), True),
        ((1, ("a", 2.0)), True),
        ((1, []), False),
        (dict[str, int], True),
        (datetime.timedelta(seconds=1), True),
    ],
)
def test_immutable(value: object, ok: bool) -> None:
    assert immutable(value) is ok
