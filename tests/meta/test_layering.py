"""The data flow is visible in the imports: each part imports only what lies upstream of it.

kube → discovery → sources → parser → state → exposition → web; scrape feeds state too; diagnosis
reads state; `app` is the one composition root of `run` and nothing but the CLI imports it; the
`parse` command keeps its scanner and C extension to itself. Every module under exporter/ falls
under at least one rule (a new module without one fails `test_every_module_is_under_a_rule`), so
the rules have no holes to grow into.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"
ROOT = "exporter"


@dataclass(frozen=True)
class Rule:
    """What the modules of `covers` (it and everything under it) may import of the project.

    `only`: nothing of the project but these (and `covers` itself); `forbidden`: not these. Names
    are relative to exporter/, separated by spaces, and each stands for the module and everything
    under it, except `ROOT` (exporter/__init__.py), which stands for itself alone.
    """

    covers: str
    forbidden: str = ""
    only: str | None = None

    @property
    def forbidden_names(self) -> tuple[str, ...]:
        return tuple(self.forbidden.split())

    @property
    def only_names(self) -> tuple[str, ...] | None:
        return None if self.only is None else tuple(self.only.split())


LEAF = ""  # imports nothing of the project
RULES = (
    # the entry and the composition root
    Rule(ROOT, only=LEAF),
    Rule("__main__", only="cli"),
    Rule("cli", only=f"{ROOT} app commands settings runtime"),
    Rule("app", forbidden="cli commands"),
    Rule("preflight", forbidden="app sources scrape parser state exposition diagnosis supervisor"
                                " commands"),
    # shared vocabulary and plumbing
    Rule("model", only=LEAF),
    Rule("metrics", only=LEAF),
    Rule("durations", only=LEAF),
    Rule("runtime", only=LEAF),
    Rule("texttable", only=LEAF),
    Rule("backoff", only="model durations"),
    Rule("settings", only="durations model metrics"),
    Rule("tls", only="model"),
    Rule("kube", only="model settings backoff durations tls"),
    # the stages, upstream first
    Rule("discovery", forbidden="sources state web scrape exposition parser diagnosis supervisor"
                                " commands app cli"),
    Rule("sources", forbidden="scrape discovery web exposition diagnosis supervisor commands app"
                              " cli"),
    Rule("parser", only="model durations"),
    Rule("scrape", forbidden="parser sources discovery kube web exposition diagnosis supervisor"
                             " commands app cli"),
    Rule("state", only="model metrics durations"),
    Rule("supervisor", forbidden="web exposition diagnosis commands app cli"),
    Rule("exposition", forbidden="parser sources scrape discovery kube web diagnosis supervisor"
                                 " commands app cli"),
    Rule("diagnosis", forbidden="web app sources discovery commands cli"),
    Rule("web", forbidden="scrape sources discovery parser kube supervisor commands app cli"),
    # the one-shot commands
    Rule("commands", forbidden="app web supervisor cli"),
    Rule("commands.parse", only="parser model durations settings runtime texttable"),
    Rule("commands.diagnose", forbidden="exposition commands.parse"),
)  # fmt: skip

# module → the only package allowed to import it
PRIVATE = {
    "commands.parse.scanner": "commands.parse",
    "commands.parse._shapes": "commands.parse",  # the C extension
    "app": "cli",
}
# package → the one module of it that the named importers may use
DOORS = {"exposition": ("exposition.handler", ("web",))}


def full(name: str) -> str:
    return name if name == ROOT else f"{ROOT}.{name}"


def within(module: str, name: str) -> bool:
    """Whether `module` is `name` or under it (the root package stands for itself alone)."""
    prefix = full(name)
    return module == prefix or (prefix != ROOT and module.startswith(prefix + "."))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package: the .py files, and each C extension by its source."""
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found |= {module_name(p): p for p in PACKAGE.rglob("*.c")}
    return found


MODULES = modules()


def resolve(name: str) -> str | None:
    """The project module an imported dotted name refers to (the longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path) -> set[str]:
    """The project modules a file imports, anywhere in it (functions, TYPE_CHECKING blocks)."""
    if path.suffix != ".py":
        return set()
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from a import b`: the module a.b if it is one, else a
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in MODULES else node.module)
    return {m for n in names if (m := resolve(n)) is not None}


EDGES = {module: imports(path) for module, path in MODULES.items()}


def covering(module: str) -> list[Rule]:
    return [rule for rule in RULES if within(module, rule.covers)]


def breaks(rule: Rule, module: str, target: str) -> bool:
    if within(target, rule.covers):
        return False  # within the covered package
    only = rule.only_names
    if only is not None and not any(within(target, name) for name in only):
        return True
    return any(within(target, name) for name in rule.forbidden_names)


def violations(rule: Rule, edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in edges.items()
        if within(module, rule.covers)
        for target in targets
        if breaks(rule, module, target)
    )


def private_violations(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {full(private)} (only {full(owner)} may)"
        for module, targets in edges.items()
        for private, owner in PRIVATE.items()
        if full(private) in targets and not within(module, owner) and module != full(private)
    )


def door_violations(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {target} (only through {full(door)})"
        for package, (door, importers) in DOORS.items()
        for module, targets in edges.items()
        if any(within(module, importer) for importer in importers)
        for target in targets
        if within(target, package) and target != full(door)
    )


def rule_id(rule: Rule) -> str:
    return rule.covers


def test_the_walk_sees_the_whole_package() -> None:
    """Nested packages and the C extension included (a shallow walk would leave holes)."""
    assert {
        "exporter",
        "exporter.app",
        "exporter.commands.parse.scanner",
        "exporter.commands.parse._shapes",
        "exporter.commands.diagnose.command",
        "exporter.discovery.kubernetes",
        "exporter.exposition.handler",
    } <= set(MODULES)
    assert sum(len(targets) for targets in EDGES.values()) > 100


def test_every_module_is_under_a_rule() -> None:
    """A module no rule covers could import anything: add it to a rule (or a new one)."""
    assert [module for module in sorted(MODULES) if not covering(module)] == []


def test_every_rule_covers_a_module() -> None:
    """A rule about a module that is gone protects nothing: update it with the move."""
    names = [r.covers for r in RULES]
    names += [n for r in RULES for n in (*r.forbidden_names, *(r.only_names or ()))]
    names += [*PRIVATE, *PRIVATE.values(), *DOORS, *(d for d, _ in DOORS.values())]
    assert [n for n in names if not any(within(m, n) for m in MODULES)] == []


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_imports_follow_the_flow(rule: Rule) -> None:
    assert violations(rule, EDGES) == []


def test_private_modules_have_one_importer() -> None:
    """The scanner and the C extension serve only `parse`; only the CLI imports `app`."""
    assert private_violations(EDGES) == []


def test_web_reaches_exposition_only_through_the_handler() -> None:
    assert door_violations(EDGES) == []


def fake(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, target in edges:
        graph.setdefault(full(module), set()).add(full(target))
    return graph


def test_the_rules_catch_violations() -> None:
    """Each kind of rule fails on an edge it forbids, and passes its own package's edges."""
    [parser] = [r for r in RULES if r.covers == "parser"]
    [discovery] = [r for r in RULES if r.covers == "discovery"]
    [root] = [r for r in RULES if r.covers == ROOT]
    graph = fake([("parser.zap", "parser.events"), ("parser.zap", "model")])
    assert violations(parser, graph) == []
    assert violations(parser, fake([("parser.zap", "state")])) != []
    assert violations(discovery, fake([("discovery.kubernetes", "sources.kubelog")])) != []
    assert violations(discovery, fake([("discovery.kubernetes", "kube.client")])) == []
    assert violations(root, fake([(ROOT, "model")])) != []
    assert not within("exporter.webhooks", "web")
    assert not within("exporter.model", ROOT)
    assert private_violations(fake([("commands.parse.command", "commands.parse.scanner")])) == []
    assert private_violations(fake([("parser.zap", "commands.parse._shapes")])) != []
    assert private_violations(fake([("web.app", "app")])) != []
    assert door_violations(fake([("web.app", "exposition.handler")])) == []
    assert door_violations(fake([("web.app", "exposition.collector")])) != []


def test_imports_are_read_from_every_form() -> None:
    """`import a.b`, `from a import b` (module or name), imports inside functions."""
    edges = EDGES[full("commands.parse.scanner")]
    assert full("commands.parse._shapes") in edges  # imported inside a function
    assert full("diagnosis.humanize") in EDGES[full("web.status")]  # from a package import module
    assert ROOT in EDGES[full("cli")]  # from exporter import __version__
