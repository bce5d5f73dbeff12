"""The ``ephys`` command line of ephys-core, run in-process with typer's CliRunner."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from ephys_core.cli import app

GOOD_MODEL = textwrap.dedent('''
    from typing import ClassVar
    from pydantic import BaseModel, Field

    class Net:
        """A fake network for CLI tests.

        Longer description.
        """
        class Config(BaseModel):
            model_config = {"extra": "forbid"}
            width: int = Field(8, description="Hidden width.")
        causal: ClassVar[bool] = True

        def __init__(self, config):
            self.config = config

        @classmethod
        def example_config(cls, workdir=None):
            return cls.Config(width=4)

        def example_input(self, batch_size=2):
            return None

        def output_shape(self, inputs):
            return ()
''')

COMMAND = textwrap.dedent('''
    import typer
    app = typer.Typer()

    @app.command()
    def hello(who: str = "world"):
        """Say hello."""
        typer.echo(f"hello {who}")
''')


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def plugins(fake_dist):
    fake_dist.add(
        "ephys-fake",
        "1.2",
        entry_points={
            "ephys.models": {"net": "cli_fake.models:Net"},
            "ephys.cli": {"hello": "cli_fake.cmd:app"},
        },
        files={
            "cli_fake/__init__.py": "",
            "cli_fake/models.py": GOOD_MODEL,
            "cli_fake/cmd.py": COMMAND,
        },
    )
    fake_dist.add(
        "ephys-broken",
        "0.3",
        entry_points={
            "ephys.losses": {"bad": "cli_broken:Loss"},
            "ephys.cli": {"crash": "cli_broken:app"},
        },
        files={"cli_broken.py": "raise ImportError('needs libfoo')\nLoss = app = None\n"},
    )
    return fake_dist


def test_help_lists_commands_without_importing_them(plugins):
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("plugins", "info", "config", "hello", "crash"):
        assert name in result.output
    # the help of a plugin command is read from its source, without importing it
    assert "Say hello." in result.output
    assert "Added by ephys-broken 0.3" in result.output  # its source says nothing
    assert "cli_fake.cmd" not in sys.modules and "cli_broken" not in sys.modules


def test_help_lists_only_installed_commands(plugins):
    """Only entry points make commands: nothing appears for a package that is not installed."""
    result = invoke("--help")
    listed = {line.strip("│ ").split(" ")[0] for line in result.output.splitlines()}
    assert {"plugins", "info", "config", "hello", "crash"} <= listed
    assert not listed & {"train", "preprocess", "tokenizer", "quickstart"}


def test_installed_help_matches_the_commands_own_help():
    """With the real packages, each listed summary is what the command's own --help says."""
    from ephys_core.cli._group import LazyGroup
    from ephys_core.plugins import current_host

    group = LazyGroup()
    specs = group._lazy_specs()
    names = {r.name for r in current_host().records("ephys.cli")}
    assert {
        "preprocess",
        "data",
        "train",
        "test",
        "export",
        "eval",
        "quickstart",
        "tokenizer",
    } <= names
    for name in names:
        own = invoke(name, "--help")
        assert own.exit_code == 0, own.output
        assert not specs[name].help.startswith("Added by"), name
        first = " ".join(specs[name].help.split()[:4])
        assert first in " ".join(own.output.split()), (name, specs[name].help)


def test_command_help_wraps_paragraphs_to_the_terminal():
    """A docstring's source lines are joined into paragraphs, not broken where the file was."""
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    # in the source this sentence spans two lines; at 200 columns it is one
    sentence = "(CSV by default), the resolved configuration and a summary"
    assert any(sentence in line for line in lines)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("ephys-core ")


def test_plugin_command_runs(plugins):
    result = invoke("hello", "--who", "lab")
    assert result.exit_code == 0 and "hello lab" in result.output


def test_broken_plugin_command_is_one_clear_line(plugins):
    result = invoke("crash")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "command 'crash' from ephys-broken 0.3" in lines[0] and "needs libfoo" in lines[0]


def test_debug_shows_the_traceback(plugins):
    result = invoke("--debug", "crash")
    assert result.exit_code == 1
    assert isinstance(result.exception, Exception) and "needs libfoo" in repr(
        result.exception.__cause__
    )


def test_plugins_json_marks_broken_plugins_and_exits_zero(plugins):
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    keys = {"kind", "name", "target", "distribution", "version", "status", "error"}
    assert all(keys <= set(row) for row in rows)
    by_name = {(row["kind"], row["name"]): row for row in rows}
    assert by_name["models", "net"]["status"] == "not loaded"
    assert by_name["models", "net"]["distribution"] == "ephys-fake"
    assert by_name["models", "net"]["target"] == "cli_fake.models:Net"
    assert by_name["cli", "hello"]["status"] == "not loaded"
    # an import-time failure is invisible without importing; --check finds it
    assert by_name["losses", "bad"]["status"] == "not loaded"


def test_plugins_check_imports_everything_and_fails_on_broken(plugins):
    result = invoke("plugins", "--check", "--json")
    assert result.exit_code == 1
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    assert rows["models", "net"]["status"] == "ok"
    assert rows["losses", "bad"]["status"] == "error"
    assert "needs libfoo" in rows["losses", "bad"]["error"]
    assert rows["cli", "crash"]["status"] == "error"


def test_plugins_shows_statically_broken_plugins(fake_dist):
    fake_dist.add("ephys-stale", entry_points={"ephys.models": {"gone": "renamed_away:Net"}})
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    (row,) = json.loads(result.stdout)
    assert row["status"] == "error" and "No module named 'renamed_away'" in row["error"]
    table = invoke("plugins")
    assert table.exit_code == 0 and "1 broken" in table.output


def test_plugins_kind_filter(plugins):
    rows = json.loads(invoke("plugins", "--kind", "models", "--json").stdout)
    assert [(r["kind"], r["name"]) for r in rows] == [("models", "net")]
    result = invoke("plugins", "--kind", "modles")
    assert result.exit_code == 2 and "did you mean 'models'" in result.output


def test_info_describes_a_component(plugins):
    result = invoke("info", "models", "net")
    assert result.exit_code == 0
    assert "A fake network for CLI tests" in result.output
    assert "width" in result.output and "Hidden width." in result.output
    assert "causal" in result.output
    data = json.loads(invoke("info", "models", "net", "--json").stdout)
    assert data["example"] == {"model": {"name": "net", "params": {"width": 4}}}
    assert data["schema"]["properties"]["width"]["type"] == "integer"


def test_info_on_a_broken_component_shows_the_cause(plugins):
    result = invoke("info", "losses", "bad")
    assert result.exit_code == 1 and "needs libfoo" in result.output


def test_config_validate(plugins, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model: {name: net, params: {width: 3}}\n")
    result = invoke("config", "validate", str(good), "--show")
    assert result.exit_code == 0
    assert "valid" in result.output and "width: 3" in result.output
    result = invoke("config", "validate", str(good), "-o", "model.params.width=wide")
    assert result.exit_code == 1
    assert "model.params.width: Input should be a valid integer" in result.output
    assert "Traceback" not in result.output


def test_config_schema_is_typed_per_component(plugins, tmp_path):
    out = tmp_path / "schema.json"
    result = invoke("config", "schema", "--output", str(out))
    assert result.exit_code == 0
    schema = json.loads(out.read_text())
    assert schema["title"] == "ephys run configuration"
    assert "models_net" in schema["$defs"]
    # the broken loss is left out, the rest still works
    assert not any(key.startswith("losses_bad") for key in schema["$defs"])


def test_a_command_of_a_missing_package_is_unknown_with_a_hint(fake_dist):
    result = invoke("train", "config.yaml")
    assert result.exit_code == 2
    assert "No such command 'train'" in result.output and "pip install ephys" in result.output


def test_local_plugin_file_registers_components_and_hooks(ephys_registry, tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        GOOD_MODEL
        + textwrap.dedent("""
        from ephys_core import register
        register("models", "local_net", Net)
    """)
    )
    result = invoke("-p", str(plugin), "info", "models", "local_net", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "local_net"
    missing = invoke("-p", str(tmp_path / "nope.py"), "plugins")
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_no_plugin_option_disables_a_distribution(plugins):
    rows = json.loads(invoke("-p", "no:ephys-broken", "plugins", "--json").stdout)
    assert not any(r["distribution"] == "ephys-broken" for r in rows)
    rows = json.loads(invoke("plugins", "--json").stdout)
    assert any(r["distribution"] == "ephys-broken" for r in rows)


def test_unknown_command_suggests():
    result = invoke("plugin")
    assert result.exit_code == 2 and "plugins" in result.output


def test_plugins_lists_deprecated_aliases(fake_dist):
    fake_dist.add(
        "ephys-renamed",
        entry_points={
            "ephys.models": {"net": "renamed_pkg:Net"},
            "ephys.models.aliases": {"old_net": "net"},
        },
        files={"renamed_pkg.py": GOOD_MODEL},
    )
    rows = {(r["kind"], r["name"]): r for r in json.loads(invoke("plugins", "--json").stdout)}
    assert rows["models", "old_net"]["status"] == "alias"
    assert rows["models", "old_net"]["target"] == "net"
    assert "deprecated name of net" in invoke("plugins").output
