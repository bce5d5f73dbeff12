"""The order in which ephys's packages and modules may import each other, checked on the source.

Like MNE's ``test_import_nesting.py``, this reads every module's abstract syntax tree, so
imports inside functions count too (a cycle closed by a deferred import is still a cycle);
only imports under ``if TYPE_CHECKING:`` are exempt, because they never run. It needs no
package installed beyond ephys-core, so it also runs in the core-only environment.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2] / "packages"

#: modules of a package's command line that other packages may use (the rendering helpers)
PUBLIC_CLI = {"ephys_core.cli.render"}

#: which first-party packages each package may import (beyond itself)
ALLOWED = {
    "ephys_core": set(),
    "ephys_tokenizers": {"ephys_core"},
    "ephys_data": {"ephys_core", "ephys_tokenizers"},
    "ephys_models": {"ephys_core", "ephys_tokenizers"},
    "ephys_eval": {"ephys_core", "ephys_tokenizers", "ephys_data", "ephys_models"},
}


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every first-party module."""
    found = {}
    for src in PACKAGES.glob("*/src"):
        for path in src.rglob("*.py"):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(module: str, path: Path) -> list[tuple[str, int]]:
    """``(imported dotted name, line)`` for every import that can run."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.append((source, node.lineno))
            found.extend((f"{source}.{alias.name}", node.lineno) for alias in node.names)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def _first_party(name: str) -> str | None:
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, dict[str, int]]:
    """Module -> {first-party module it imports: line}, without a package's own submodules
    imported by its ``__init__`` (lazy ``__getattr__`` maps)."""
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules().items():
        out: dict[str, int] = {}
        for name, line in _imported(module, path):
            target = _first_party(name)
            if target is None or target == module:
                continue
            if path.name == "__init__.py" and target.startswith(module + "."):
                continue
            out.setdefault(target, line)
        edges[module] = out
    return edges


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_every_package_is_known():
    assert {m.split(".")[0] for m in modules()} == set(ALLOWED)


def test_no_import_cycles():
    edges = graph()
    described = []
    for cycle in _cycles(edges):
        links = [f"{a} -> {b} (line {edges[a][b]})" for a in cycle for b in cycle if b in edges[a]]
        described.append("; ".join(links))
    assert not described, "import cycles:\n" + "\n".join(described)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_the_packages_below_them(package):
    wrong = [
        f"{module} imports {target} (line {line})"
        for module, targets in graph().items()
        if module.split(".")[0] == package
        for target, line in targets.items()
        if target.split(".")[0] not in ALLOWED[package] | {package}
    ]
    assert not wrong, "\n".join(wrong)


def test_other_packages_use_only_public_modules():
    """No package reaches into another's command-line modules or private (``_x``) modules."""
    wrong = []
    for module, targets in graph().items():
        for target, line in targets.items():
            if target.split(".")[0] == module.split(".")[0]:
                continue
            parts = target.split(".")
            if target in PUBLIC_CLI:
                continue
            if "cli" in parts or any(part.startswith("_") for part in parts):
                wrong.append(f"{module} imports {target} (line {line})")
    assert not wrong, "\n".join(wrong)
