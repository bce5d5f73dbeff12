"""Validating a run configuration costs a fraction of a second: no torch, Lightning,
transformers, MNE, SciPy or matplotlib is imported, with every package installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "configs").glob("*.yaml"))
HEAVY = {"torch", "lightning", "transformers", "mne", "scipy", "matplotlib", "osl_ephys"}

PROBE = """
import json, sys
from ephys_core.cli import app
try:
    app(["config", "validate", {path!r}], prog_name="ephys")
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r})]))
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_validating_an_example_configuration_imports_nothing_heavy(path):
    code = PROBE.format(path=str(path), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    status, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert status in (0, None), out.stderr
    assert heavy == []
