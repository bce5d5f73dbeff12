"""Import budget: the core, ``ephys --help`` and ``ephys plugins`` stay light.

Each check runs in a fresh interpreter with every package installed and lists which heavy
modules got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "mne",
    "lightning",
    "pytorch_lightning",
    "transformers",
    "matplotlib",
    "scipy",
    "osl_ephys",
)

PROBE = """
import json, sys
{body}
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps(heavy))
"""


def heavy_modules_after(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(*args: str) -> str:
    return (
        "from ephys_core.cli import app\n"
        "try:\n"
        f"    app({list(args)!r}, prog_name='ephys')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        "import ephys_core",
        "import ephys_core; ephys_core.get_registry('models').names()",
        "import ephys_core.config, ephys_core.protocols, ephys_core.registry, "
        "ephys_core.hooks, ephys_core.plugins, ephys_core.components, ephys_core.testing, "
        "ephys_core.testing.plugin",
        run_cli("--help"),
        run_cli("plugins"),
        run_cli("plugins", "--json"),
        run_cli("config", "--help"),
    ],
    ids=["import", "list-models", "core-modules", "help", "plugins", "plugins-json", "config-help"],
)
def test_stays_light(body):
    assert heavy_modules_after(body) == []


def test_lazy_names_resolve():
    import ephys_core
    from ephys_core._discovery import resolve_target
    from ephys_core.cli._group import BUILTIN

    for name in ephys_core.__all__:
        assert getattr(ephys_core, name) is not None
    for spec in BUILTIN.values():
        assert resolve_target(spec.target) is not None
