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
import json
import os
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

__all__ = ["preflight", "save_cache"]


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


@dataclass(frozen=True)
class _Facts:
    """What preflight needs from a module's source, cacheable as JSON."""

    error: str | None = None
    names: tuple[str, ...] = ()
    dynamic: bool = False
    imports: tuple[str, ...] = ()


def _analyse(path: str) -> _Facts:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except SyntaxError as err:
        return _Facts(error=f"{Path(path).name} line {err.lineno}: SyntaxError: {err.msg}")
    except OSError as err:
        return _Facts(error=f"cannot read {path}: {err}")
    names, dynamic = _top_level_names(tree)
    return _Facts(None, tuple(sorted(names)), dynamic, tuple(_required_imports(tree)))


class _FactCache:
    """Module facts keyed by path, size and modification time, kept between runs.

    Parsing every plugin module on each ``ephys plugins`` would cost a noticeable fraction of a
    second; the cache lives in ``$EPHYS_CACHE_DIR`` (default ``~/.cache/ephys``) and any
    problem reading or writing it just means parsing again.
    """

    def __init__(self) -> None:
        root = os.environ.get("EPHYS_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ephys"
        )
        self.path = Path(root) / "preflight.json"
        self.entries: dict[str, Any] | None = None
        self.dirty = False

    def _load(self) -> dict[str, Any]:
        if self.entries is None:
            try:
                self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}
        return self.entries

    def facts(self, path: str) -> _Facts:
        try:
            st = os.stat(path)
        except OSError:
            return _analyse(path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        entries = self._load()
        hit = entries.get(path)
        if hit and hit[0] == stamp:
            error, names, dynamic, imports = hit[1]
            return _Facts(error, tuple(names), dynamic, tuple(imports))
        facts = _analyse(path)
        entries[path] = [
            stamp,
            [facts.error, list(facts.names), facts.dynamic, list(facts.imports)],
        ]
        self.dirty = True
        return facts

    def save(self) -> None:
        if not self.dirty or self.entries is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries), encoding="utf-8")
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass


_cache = _FactCache()


def save_cache() -> None:
    """Persist module facts parsed in this process (called after a listing)."""
    _cache.save()


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
    facts = _cache.facts(origin)
    if facts.error is not None:
        return facts.error
    for name in facts.imports:
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
        if first not in facts.names and not facts.dynamic:
            return f"AttributeError: module {module!r} has no attribute {first!r}"
    return None
