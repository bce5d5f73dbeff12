"""The worked third-party plugin, installed into a temporary environment, is found and works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ephys-plugin-example"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """Build the example's wheel (offline, with hatchling) and install it into a new folder."""
    out = tmp_path_factory.mktemp("wheel")
    code = f"from hatchling.build import build_wheel; print(build_wheel({str(out)!r}))"
    name = (
        subprocess.run(
            [sys.executable, "-c", code], cwd=EXAMPLE, capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(out / name) as wheel:
        wheel.extractall(site)
    return site


def ephys(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-c", "from ephys_core.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_installed_example_plugin_is_listed(plugin_site):
    result = ephys(plugin_site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    for key in [("models", "tiny_tcn"), ("losses", "smooth_l1"), ("hooks", "ephys_plugin_example")]:
        assert rows[key]["distribution"] == "ephys-plugin-example"
        assert rows[key]["version"] == "0.1.0"
        assert rows[key]["status"] == "not loaded"


def test_installed_example_plugin_loads(plugin_site):
    result = ephys(plugin_site, "plugins", "--check", "--json", "--kind", "models")
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tiny_tcn"]["status"] == "ok", rows["tiny_tcn"]["error"]


def test_example_plugin_is_absent_when_not_installed():
    result = ephys(Path("/nonexistent"), "plugins", "--json")
    assert not any(r["distribution"] == "ephys-plugin-example" for r in json.loads(result.stdout))


def test_example_plugin_passes_its_own_tests(plugin_site):
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=EXAMPLE,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout


def test_example_plugin_model_trains_by_registry_name(plugin_site, tmp_path):
    from ephys_data.synthetic import write_example_dataset

    root = write_example_dataset(tmp_path / "prepared", seconds=6)
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "name": "plugin",
                "out_dir": str(tmp_path / "runs"),
                "data": {
                    "dataset": {
                        "name": "continuous_next_step",
                        "params": {"roots": [str(root)], "window_seconds": 0.5},
                    },
                    "batch_size": 4,
                },
                "model": {"name": "tiny_tcn"},
                "loss": {"name": "smooth_l1"},
                "trainer": {"max_steps": 4, "progress_bar": False, "log_every_n_steps": 2},
            }
        )
    )
    result = ephys(plugin_site, "-q", "train", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    stored = (tmp_path / "runs" / "plugin" / "config.yaml").read_text()
    assert "tiny_tcn" in stored and "n_channels: 8" in stored
    assert (tmp_path / "runs" / "plugin" / "checkpoints" / "last.ckpt").is_file()
