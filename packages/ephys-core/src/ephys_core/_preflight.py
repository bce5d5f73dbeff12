"""Static checks of an entry point's target that import nothing.

``ephys plugins`` must answer fast and must not import torch, so it cannot import plugins to see
whether they work. Instead it checks, for each entry point, what can be seen without running any
plugin code: that its module exists, parses, defines the named attribute at top level, and that
the modules it imports unconditionally at top level are installed. Failures found this way are
certain; passing them does not prove the import will work (``ephys plugins --check`` does that).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import lru_cache
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

__all__ = ["preflight"]


class _Unknown(Exception):
    """The module's presence cannot be decided without importing something."""


def _find_spec(module: str) -> ModuleSpec | None:
    """Locate ``module`` without importing it or any of its parent packages.

    Raises :class:`_Unknown` when that is impossible (namespace packages, exotic finders).
    """
    if module in sys.modules:
        return getattr(sys.modules[module], "__spec__", None) or ModuleSpec(module, None)
    head, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(head)
    except (ImportError, ValueError):
        return None
    prefix = head
    for part in rest:
        if spec is None or spec.submodule_search_locations is None:
            return None
        prefix = f"{prefix}.{part}"
        if prefix in sys.modules:
            spec = getattr(sys.modules[prefix], "__spec__", None)
            continue
        try:
            spec = PathFinder.find_spec(prefix, list(spec.submodule_search_locations))
        except (ImportError, KeyError, ValueError, AttributeError) as err:
            raise _Unknown(prefix) from err
    return spec


def _is_type_checking_block(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_names(tree: ast.Module) -> tuple[set[str], bool]:
    """Names bound at module level, and whether the module defines ``__getattr__``."""
    names: set[str] = set()
    dynamic = False
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            dynamic |= node.name == "__getattr__"
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    dynamic = True
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return names, dynamic


def _required_imports(tree: ast.Module) -> list[str]:
    """Absolute top-level modules imported unconditionally at module level."""
    required: list[str] = []
    for node in tree.body:  # only direct children: imports in try/if/functions may be optional
        if isinstance(node, ast.Import):
            required.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            required.append(node.module.split(".")[0])
    return required


@lru_cache(maxsize=256)
def _parse(path: str) -> ast.Module | str:
    try:
        return ast.parse(Path(path).read_bytes(), filename=path)
    except SyntaxError as err:
        return f"{Path(path).name} line {err.lineno}: SyntaxError: {err.msg}"
    except OSError as err:
        return f"cannot read {path}: {err}"


def preflight(target: str) -> str | None:
    """Return why ``"module:attr"`` certainly cannot load, or ``None`` if nothing is seen wrong."""
    module, _, attr = target.partition(":")
    module = module.strip()
    try:
        spec = _find_spec(module)
    except _Unknown:
        return None
    if spec is None:
        return f"ModuleNotFoundError: No module named {module!r}"
    origin = spec.origin
    if module in sys.modules or not origin or not origin.endswith(".py"):
        return None  # already imported, a namespace package or a compiled module: cannot tell
    tree = _parse(origin)
    if isinstance(tree, str):
        return tree
    for name in _required_imports(tree):
        if name in sys.builtin_module_names or name in sys.stdlib_module_names:
            continue
        try:
            found = _find_spec(name) is not None
        except _Unknown:
            found = True
        if not found:
            return f"ModuleNotFoundError: {module} imports {name!r}, which is not installed"
    first = attr.strip().split(".")[0]
    if first:
        names, dynamic = _top_level_names(tree)
        if first not in names and not dynamic:
            return f"AttributeError: module {module!r} has no attribute {first!r}"
    return None
