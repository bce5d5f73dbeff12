"""Static checks of an entry point's target that import nothing.

``ephys plugins`` must answer fast and must not import torch, so it cannot import plugins to see
whether they work. Instead it checks, for each entry point, what can be seen without running any
plugin code: that its module exists, parses, defines the named attribute at top level, and that
the modules it imports unconditionally at top level are installed. Failures found this way are
certain; passing them does not prove the import will work (``ephys plugins --check`` does that).

The same source analysis gives what ``ephys --help`` shows for a plugin's command without
importing it (:func:`command_summary`), and follows a
:class:`~ephys_core.components.LazyComponent` declaration to the module it names.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

__all__ = ["command_summary", "preflight", "save_cache"]


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


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _callee(node: ast.AST) -> str | None:
    """``"Typer"`` for ``typer.Typer(...)`` or ``Typer(...)``; ``None`` for other nodes."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _summary(text: str | None) -> str | None:
    """The first paragraph of a docstring or help text, on one line."""
    if not text:
        return None
    paragraph = inspect.cleandoc(text).split("\n\n", 1)[0]
    return " ".join(paragraph.split()) or None


def _assigned_declaration(node: ast.Assign, lazy: dict[str, str], helps: dict[str, str]) -> None:
    """Record ``x = LazyComponent("m:a", ...)`` and ``app = typer.Typer(help="...")``."""
    target, value = node.targets[0], node.value
    if len(node.targets) != 1 or not isinstance(target, ast.Name):
        return
    kind = _callee(value)
    if kind == "LazyComponent" and isinstance(value, ast.Call) and value.args:
        declared = _string(value.args[0])
        if declared:
            lazy[target.id] = declared
    elif kind == "Typer" and isinstance(value, ast.Call):
        text = next((_string(k.value) for k in value.keywords if k.arg == "help"), None)
        if text:
            helps[target.id] = text


def _declarations(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Module-level ``name = LazyComponent("module:attr", ...)`` targets, and the help text
    of every command object the module defines (typer apps and decorated functions)."""
    lazy: dict[str, str] = {}
    helps: dict[str, str] = {}
    commands: dict[str, list[str]] = {}
    callbacks: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            _assigned_declaration(node, lazy, helps)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node) or ""
            if doc:
                helps.setdefault(node.name, doc)
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name):
                    if call.attr == "command":
                        commands.setdefault(call.value.id, []).append(doc)
                    elif call.attr == "callback" and doc:
                        callbacks[call.value.id] = doc
    for app, docs in commands.items():  # typer's own rule: help=, else callback, else one command
        if app not in helps:
            text = callbacks.get(app) or (docs[0] if len(docs) == 1 else None)
            if text:
                helps[app] = text
    return lazy, {name: _summary(text) or "" for name, text in helps.items()}


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
    lazy: tuple[tuple[str, str], ...] = ()
    helps: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> list[Any]:
        return [
            self.error,
            list(self.names),
            self.dynamic,
            list(self.imports),
            [list(p) for p in self.lazy],
            [list(p) for p in self.helps],
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> _Facts:
        error, names, dynamic, imports, lazy, helps = data
        return cls(
            error,
            tuple(names),
            dynamic,
            tuple(imports),
            tuple((a, b) for a, b in lazy),
            tuple((a, b) for a, b in helps),
        )


def _analyse(path: str) -> _Facts:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except SyntaxError as err:
        return _Facts(error=f"{Path(path).name} line {err.lineno}: SyntaxError: {err.msg}")
    except OSError as err:
        return _Facts(error=f"cannot read {path}: {err}")
    names, dynamic = _top_level_names(tree)
    lazy, helps = _declarations(tree)
    return _Facts(
        None,
        tuple(sorted(names)),
        dynamic,
        tuple(_required_imports(tree)),
        tuple(sorted(lazy.items())),
        tuple(sorted(helps.items())),
    )


_CACHE_VERSION = 2  # bump when _Facts changes


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
        self.path = Path(root) / f"preflight-{_CACHE_VERSION}.json"
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
            try:
                return _Facts.from_json(hit[1])
            except (TypeError, ValueError):
                pass  # written by another version: analyse again
        facts = _analyse(path)
        entries[path] = [stamp, facts.to_json()]
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


def _module_facts(module: str) -> tuple[_Facts | None, str | None]:
    """The facts of ``module``'s source, or ``(None, problem)``; ``(None, None)`` if unknown."""
    try:
        spec = _find_spec(module)
    except _Unknown:
        return None, None
    if spec is None:
        return None, f"ModuleNotFoundError: No module named {module!r}"
    origin = spec.origin
    if module in sys.modules or not origin or not origin.endswith(".py"):
        return None, None  # already imported, a namespace package or a compiled module
    facts = _cache.facts(origin)
    return (None, facts.error) if facts.error is not None else (facts, None)


def preflight(target: str, _depth: int = 0) -> str | None:
    """Return why ``"module:attr"`` certainly cannot load, or ``None`` if nothing is seen wrong.

    A target that is a :class:`~ephys_core.components.LazyComponent` declaration is followed
    to the module it names.
    """
    module, _, attr = target.partition(":")
    module = module.strip()
    facts, problem = _module_facts(module)
    if facts is None:
        return problem
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
        lazy = dict(facts.lazy).get(first)
        if lazy is not None and _depth < 3:
            return preflight(lazy, _depth + 1)
    return None


def command_summary(target: str) -> str | None:
    """The one-line help of the command object ``"module:attr"``, read from its source.

    Follows typer's rule: the app's ``help=``, else its callback's docstring, else the
    docstring of its only command; a plain function gives its docstring. ``None`` when the
    source does not say (or cannot be read without importing).
    """
    module, _, attr = target.partition(":")
    facts, _ = _module_facts(module.strip())
    if facts is None:
        return None
    return dict(facts.helps).get(attr.strip().split(".")[0]) or None
