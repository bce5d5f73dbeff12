"""The pluggy hooks and their typed facade; every hookspec has a test here."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ephys_core import get_hooks, get_registry, hookspecs
from ephys_core.config import load_config
from ephys_core.errors import ConfigError, HookError
from ephys_core.hookspecs import ReportSection, hookimpl

HOOKS = "ephys.hooks"


def test_every_hookspec_is_documented_and_tested():
    specs = [name for name in dir(hookspecs) if name.startswith("ephys_")]
    assert specs
    source = Path(__file__).read_text()
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Parameters" in doc and "Returns" in doc and "versionadded" in doc, name
        assert f"def test_hook_{name.removeprefix('ephys_')}" in source, name


class SiteDefaults:
    @hookimpl
    def ephys_configure_run(self, config):
        config.setdefault("trainer", {})["max_steps"] = 7


def test_hook_configure_run(ephys_registry):
    site = SiteDefaults()
    ephys_registry.hooks.register(site)
    config = load_config({"name": "x"})
    assert config.trainer.max_steps == 7
    assert load_config({"name": "x"}, hooks=False).trainer.max_steps == -1
    ephys_registry.hooks.unregister(site)

    # plugin changes are validated like the user's own settings
    class Bad:
        @hookimpl
        def ephys_configure_run(self, config):
            config["trainer"] = {"max_steps": "many"}

    ephys_registry.hooks.register(Bad())
    with pytest.raises(ConfigError, match=r"trainer\.max_steps"):
        load_config({"name": "x"})


def test_hook_training_callbacks(ephys_registry):
    class A:
        @hookimpl
        def ephys_training_callbacks(self, config):
            return ["cb-a1", "cb-a2"]

    class B:
        @hookimpl
        def ephys_training_callbacks(self, config):
            return None

    ephys_registry.hooks.register(A())
    ephys_registry.hooks.register(B())
    assert get_hooks().training_callbacks(load_config({})) == ["cb-a1", "cb-a2"]


def test_hook_report_sections(ephys_registry, tmp_path):
    class One:
        @hookimpl
        def ephys_report_sections(self, summary, run_dir):
            return ReportSection("one", body=f"{len(summary)} keys")

    class Many:
        @hookimpl
        def ephys_report_sections(self, summary, run_dir):
            return [ReportSection("two"), ReportSection("three")]

    ephys_registry.hooks.register(One())
    ephys_registry.hooks.register(Many())
    titles = [s.title for s in get_hooks().report_sections({"a": 1}, tmp_path)]
    assert sorted(titles) == ["one", "three", "two"]

    class Wrong:
        @hookimpl
        def ephys_report_sections(self, summary, run_dir):
            return ["not a section"]

    ephys_registry.hooks.register(Wrong())
    with pytest.raises(HookError, match="must return ReportSection"):
        get_hooks().report_sections({}, tmp_path)


def test_a_hook_that_raises_is_named_with_its_distribution(fake_dist):
    source = (
        "from ephys_core.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def ephys_configure_run(config):\n"
        "    raise KeyError('site_root')\n"
    )
    fake_dist.add(
        "ephys-site",
        "2.1",
        entry_points={HOOKS: {"site": "raising_hooks"}},
        files={"raising_hooks.py": source},
    )
    with pytest.raises(HookError) as info:
        load_config({})
    message = str(info.value)
    assert "ephys_configure_run" in message and "'site'" in message
    assert "ephys-site 2.1" in message and "KeyError" in message
    assert isinstance(info.value.__cause__, KeyError)


def test_a_hook_error_reaches_the_cli_as_one_line(fake_dist, tmp_path):
    from typer.testing import CliRunner

    from ephys_core.cli import app

    fake_dist.add(
        "ephys-site",
        entry_points={HOOKS: {"site": "raising_hooks2"}},
        files={
            "raising_hooks2.py": "from ephys_core.hookspecs import hookimpl\n"
            "@hookimpl\n"
            "def ephys_configure_run(config):\n"
            "    1 / 0\n"
        },
    )
    config = tmp_path / "run.yaml"
    config.write_text("name: x\n")
    result = CliRunner().invoke(app, ["config", "validate", str(config)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "plugin 'site'" in line and "ZeroDivisionError" in line


def test_hook_modules_are_discovered_from_entry_points(fake_dist):
    source = (
        "from ephys_core.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def ephys_configure_run(config):\n"
        "    config['name'] = 'from-plugin'\n"
    )
    fake_dist.add(
        "ephys-site", entry_points={HOOKS: {"site": "site_hooks"}}, files={"site_hooks.py": source}
    )
    assert load_config({}).name == "from-plugin"


def test_broken_hook_module_is_recorded_not_fatal(fake_dist, caplog):
    fake_dist.add(
        "ephys-badhooks",
        entry_points={HOOKS: {"bad": "bad_hooks"}},
        files={"bad_hooks.py": "raise RuntimeError('boom')\n"},
    )
    with caplog.at_level(logging.WARNING, logger="ephys"):
        config = load_config({"name": "still-works"})
    assert config.name == "still-works"
    (row,) = get_hooks().modules
    assert row.status == "error" and "boom" in row.error
    assert any("ephys-badhooks" in r.getMessage() for r in caplog.records)


def test_unknown_hook_name_is_rejected(fake_dist):
    source = (
        "from ephys_core.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def ephys_no_such_hook():\n"
        "    pass\n"
    )
    fake_dist.add(
        "ephys-typo", entry_points={HOOKS: {"typo": "typo_hooks"}}, files={"typo_hooks.py": source}
    )
    (row,) = get_hooks().modules
    assert row.status == "error" and "ephys_no_such_hook" in row.error


def test_hooks_do_not_need_any_registry(ephys_registry):
    assert get_registry("models").names() == []
    assert get_hooks().training_callbacks(load_config({})) == []


def test_tracing_logs_hook_calls(ephys_registry, caplog):
    from ephys_core._policy import PluginPolicy
    from ephys_core.plugins import PluginHost, use_host

    host = PluginHost(discover=False, policy=PluginPolicy(trace=True))
    with use_host(host), caplog.at_level(logging.DEBUG, logger="ephys"):
        host.hooks.register(SiteDefaults())
        load_config({})
    assert any("ephys_configure_run" in r.getMessage() for r in caplog.records)
