"""Static checks that spot broken plugins without importing them."""

from __future__ import annotations

import sys

from fake_plugins import GOOD_MODEL, MISSING_DEPENDENCY

from ephys_core import get_registry

MODELS = "ephys.models"


def _status(fake_dist, target, files):
    fake_dist.add("ephys-fake", entry_points={MODELS: {"x": target}}, files=files)
    registry = get_registry("models")
    registry.preflight()
    return registry.info("x")


def test_working_plugin_passes_and_stays_unimported(fake_dist):
    entry = _status(fake_dist, "pf_ok.m:Net", {"pf_ok/__init__.py": "", "pf_ok/m.py": GOOD_MODEL})
    assert entry.status == "not loaded" and entry.error is None
    assert "pf_ok.m" not in sys.modules and "pf_ok" not in sys.modules


def test_missing_module(fake_dist):
    entry = _status(fake_dist, "pf_gone.models:Net", {})
    assert entry.status == "error" and "No module named 'pf_gone.models'" in entry.error


def test_missing_attribute(fake_dist):
    entry = _status(fake_dist, "pf_attr:Nett", {"pf_attr.py": GOOD_MODEL})
    assert entry.status == "error" and "has no attribute 'Nett'" in entry.error


def test_syntax_error(fake_dist):
    entry = _status(fake_dist, "pf_syntax:Net", {"pf_syntax.py": "def broken(:\n"})
    assert entry.status == "error" and "SyntaxError" in entry.error and "line 1" in entry.error


def test_missing_dependency(fake_dist):
    entry = _status(fake_dist, "pf_dep:Net", {"pf_dep.py": MISSING_DEPENDENCY})
    assert entry.status == "error"
    assert "'not_a_real_dependency_xyz', which is not installed" in entry.error


def test_optional_imports_and_module_getattr_are_not_flagged(fake_dist):
    source = (
        "try:\n    import not_installed_optional\nexcept ImportError:\n    pass\n"
        "def __getattr__(name):\n    return name\n"
    )
    entry = _status(fake_dist, "pf_lazy:Anything", {"pf_lazy.py": source})
    assert entry.status == "not loaded"


def test_module_facts_are_cached_between_runs_and_refreshed_on_change(
    fake_dist, tmp_path, monkeypatch
):
    from ephys_core import _preflight

    monkeypatch.setattr(_preflight, "_cache", _preflight._FactCache())
    cache_file = _preflight._cache.path
    entry = _status(fake_dist, "pf_cached:Net", {"pf_cached.py": GOOD_MODEL})
    assert entry.status == "not loaded"
    assert cache_file.is_file() and "pf_cached.py" in cache_file.read_text()
    # edit the module: the cached facts must not hide the new problem
    source = fake_dist.site / "pf_cached.py"
    source.write_text(GOOD_MODEL.replace("class Net", "class Renamed") + "\n# edited\n")
    monkeypatch.setattr(_preflight, "_cache", _preflight._FactCache())
    fake_dist.host.refresh()
    registry = get_registry("models")
    registry.preflight()
    assert registry.info("x").status == "error"
